//! The sandbox's only way out: listeners on the session's proxy port on the
//! sandbox's own loopback (127.0.0.1 and [::1], so the proxy URL the agent
//! holds works unchanged), each connection passed byte for byte to the
//! proxy. Plain threads: the init runs nothing else.
//!
//! Two ways to the proxy:
//! - **its unix socket** ([`serve`]), mounted into a container or a host
//!   sandbox on this machine;
//! - **a reverse tunnel** ([`serve_tunnels`], [`serve_through`]), for a pod
//!   on a cluster that cannot open connections to this machine: the host
//!   opens connections *into* the pod (Kubernetes port-forward) to the
//!   tunnel port, where they wait, idle, in [`Tunnels`]; each connection the
//!   agent makes to the proxy port is paired with one of them, and the host
//!   passes it to the session's proxy once the agent speaks. Whatever
//!   connects to the tunnel port (the agent itself could) reaches only this
//!   session's proxy, which is where the agent's connections go anyway.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::SandboxError;

/// How long an agent's connection waits for a tunnel connection before it
/// is closed (the host may be restarting; clients retry a closed proxy
/// connection as they would a proxy that is down).
pub const TUNNEL_WAIT: Duration = Duration::from_secs(30);

/// The most idle tunnel connections kept; beyond it the oldest is closed.
const MAX_IDLE: usize = 64;

/// Bind the relay's listeners inside the sandbox's network namespace.
pub fn listen(port: u16) -> Result<Vec<TcpListener>, SandboxError> {
    let v4 = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| SandboxError::step(format!("listening on the sandbox's 127.0.0.1:{port}"), e))?;
    let mut listeners = vec![v4];
    // IPv6 loopback may be disabled; the proxy URL names 127.0.0.1 anyway.
    if let Ok(v6) = TcpListener::bind(("::1", port)) {
        listeners.push(v6);
    }
    Ok(listeners)
}

/// Relay every connection on `listener` to the unix socket at `socket`, in
/// the background.
pub fn serve(listener: TcpListener, socket: PathBuf) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let _ = client.set_nodelay(true);
                // Without the proxy (the daemon restarting) the client sees its
                // connection closed and retries, as it would with a proxy that is down.
                if let Ok(upstream) = UnixStream::connect(&socket) {
                    splice(client, upstream);
                }
            });
        }
    });
}

/// Connections the host opened into the pod through the tunnel port, idle
/// until an agent's connection is paired with one.
#[derive(Default)]
pub struct Tunnels {
    idle: Mutex<VecDeque<TcpStream>>,
    arrived: Condvar,
}

impl Tunnels {
    fn add(&self, tunnel: TcpStream) {
        let Ok(mut idle) = self.idle.lock() else { return };
        idle.push_back(tunnel);
        while idle.len() > MAX_IDLE {
            idle.pop_front();
        }
        self.arrived.notify_one();
    }

    /// A live idle connection, waiting for one up to `wait`.
    fn take(&self, wait: Duration) -> Option<TcpStream> {
        let deadline = Instant::now() + wait;
        let mut idle = self.idle.lock().ok()?;
        loop {
            while let Some(tunnel) = idle.pop_front() {
                if idle_and_open(&tunnel) {
                    return Some(tunnel);
                }
            }
            let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            idle = self.arrived.wait_timeout(idle, left).ok()?.0;
        }
    }
}

/// Whether an idle tunnel connection is still open: the host sends nothing
/// on it until it is paired, so one with something to read has been closed
/// (or is not the host's to use).
fn idle_and_open(tunnel: &TcpStream) -> bool {
    if tunnel.set_nonblocking(true).is_err() {
        return false;
    }
    let quiet = matches!(tunnel.peek(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    quiet && tunnel.set_nonblocking(false).is_ok()
}

/// Keep every connection made to the tunnel port on `listener` for pairing,
/// in the background.
pub fn serve_tunnels(listener: TcpListener, tunnels: Arc<Tunnels>) {
    std::thread::spawn(move || {
        for tunnel in listener.incoming().flatten() {
            let _ = tunnel.set_nodelay(true);
            tunnels.add(tunnel);
        }
    });
}

/// Pass every connection on `listener` (the proxy port) through one of the
/// idle tunnel connections, in the background; one that finds none within
/// [`TUNNEL_WAIT`] is closed.
pub fn serve_through(listener: TcpListener, tunnels: Arc<Tunnels>) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let tunnels = tunnels.clone();
            std::thread::spawn(move || {
                let _ = client.set_nodelay(true);
                if let Some(tunnel) = tunnels.take(TUNNEL_WAIT) {
                    splice(client, tunnel);
                }
            });
        }
    });
}

/// A connection whose two directions two threads can use.
trait Duplex: Read + Write + Send + Sized + 'static {
    fn other_half(&self) -> std::io::Result<Self>;
    fn end_writing(&self);
}

impl Duplex for TcpStream {
    fn other_half(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
    fn end_writing(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Duplex for UnixStream {
    fn other_half(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
    fn end_writing(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// Pass bytes both ways between `a` and `b` until both directions end.
fn splice<A: Duplex, B: Duplex>(a: A, b: B) {
    let (Ok(a_writer), Ok(b_writer)) = (a.other_half(), b.other_half()) else { return };
    let there = std::thread::spawn(move || pump(a, b_writer));
    pump(b, a_writer);
    let _ = there.join();
}

/// Copy `from` into `to` until `from` ends, then end `to`'s writing side.
fn pump<R: Read, W: Duplex>(mut from: R, mut to: W) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    to.end_writing();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (TcpListener, u16) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        (l, port)
    }

    /// The host's side of a tunnel connection, accepted by the relay.
    fn host_connects(port: u16) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("tunnel");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s
    }

    #[test]
    fn each_agent_connection_goes_through_one_idle_tunnel_connection_and_closed_ones_are_skipped() {
        let tunnels = Arc::new(Tunnels::default());
        let (tunnel_listener, tunnel_port) = listener();
        let (proxy_listener, proxy_port) = listener();
        serve_tunnels(tunnel_listener, tunnels.clone());
        serve_through(proxy_listener, tunnels.clone());

        // One the host closed while idle, then one it keeps.
        drop(host_connects(tunnel_port));
        let mut host = host_connects(tunnel_port);
        std::thread::sleep(Duration::from_millis(100));

        let mut agent = TcpStream::connect(("127.0.0.1", proxy_port)).expect("agent");
        agent.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        agent.write_all(b"CONNECT api.example.test:443 HTTP/1.1\r\n\r\n").expect("write");
        let mut got = [0u8; 41];
        host.read_exact(&mut got).expect("the agent's bytes reach the host through the live one");
        assert_eq!(&got, b"CONNECT api.example.test:443 HTTP/1.1\r\n\r\n");
        host.write_all(b"HTTP/1.1 200 OK\r\n\r\n").expect("answer");
        let mut answer = [0u8; 19];
        agent.read_exact(&mut answer).expect("the host's answer reaches the agent");
        assert_eq!(&answer, b"HTTP/1.1 200 OK\r\n\r\n");

        // The host ends it: the agent sees its connection end.
        host.shutdown(Shutdown::Write).expect("shutdown");
        assert_eq!(agent.read(&mut [0u8; 8]).expect("eof"), 0);
        assert!(tunnels.idle.lock().expect("lock").is_empty(), "the tunnel connection was used once");
    }

    #[test]
    fn an_agent_connection_waits_for_a_tunnel_connection_and_none_means_closed() {
        let tunnels = Arc::new(Tunnels::default());
        let started = Instant::now();
        assert!(tunnels.take(Duration::from_millis(200)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));

        let (tunnel_listener, tunnel_port) = listener();
        serve_tunnels(tunnel_listener, tunnels.clone());
        let waiting = {
            let tunnels = tunnels.clone();
            std::thread::spawn(move || tunnels.take(Duration::from_secs(10)).is_some())
        };
        std::thread::sleep(Duration::from_millis(100));
        let _host = host_connects(tunnel_port);
        assert!(waiting.join().expect("join"), "a tunnel connection that arrives later is taken");
    }
}
