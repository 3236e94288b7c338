//! The sandbox's only way out: listeners on the session's proxy port on the
//! sandbox's own loopback (127.0.0.1 and [::1], so the proxy URL the agent
//! holds works unchanged), each connection passed byte for byte to the
//! proxy's unix socket. Plain threads: the init runs nothing else.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::SandboxError;

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
            std::thread::spawn(move || relay(client, &socket));
        }
    });
}

fn relay(client: TcpStream, socket: &std::path::Path) {
    let _ = client.set_nodelay(true);
    // Without the proxy (the daemon restarting) the client sees its
    // connection closed and retries, as it would with a proxy that is down.
    let Ok(upstream) = UnixStream::connect(socket) else { return };
    let (Ok(client_w), Ok(upstream_w)) = (client.try_clone(), upstream.try_clone()) else { return };
    let up = std::thread::spawn(move || pump(client, upstream_w, |s| s.shutdown(Shutdown::Write)));
    pump(upstream, client_w, |s| s.shutdown(Shutdown::Write));
    let _ = up.join();
}

/// Copy `from` into `to` until `from` ends, then end `to`'s writing side.
fn pump<R: Read, W: Write>(mut from: R, mut to: W, close: impl FnOnce(&W) -> std::io::Result<()>) {
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
    let _ = close(&to);
}
