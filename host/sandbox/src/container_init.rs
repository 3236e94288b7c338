//! PID 1 of a session's container (`clauderon-relay`, a static binary the
//! host mounts into every container, or copies into a pod): the container
//! has no network but its own loopback, so this listens on the proxy's port
//! there and relays each connection to the proxy — through its unix socket
//! (mounted in), or, in a pod of a remote cluster, through the reverse
//! tunnel the host keeps into the pod (see [`crate::relay`]), or over TLS
//! to the proxy's direct door where the cluster can reach the daemon (see
//! [`crate::door`]) — runs the agent as its
//! child, passes it the signals `docker stop` and the terminal send, reaps
//! orphans, and exits with the agent's status once what the agent left
//! running has finished (for up to [`crate::LINGER`]).

use std::path::PathBuf;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use std::sync::Arc;

use crate::{SandboxError, door, reap, relay};

/// Where the relay passes the agent's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WayOut {
    /// The proxy's unix socket inside the container (`--socket PATH`).
    Socket(PathBuf),
    /// Connections the host opens into the pod on this port (`--tunnel PORT`).
    Tunnel(u16),
    /// The proxy's direct door (`--direct IP:PORT --door FILE`).
    Direct(door::Door),
}

/// What `clauderon-relay` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The proxy's port (the agent's proxy URL names 127.0.0.1:PORT).
    pub port: u16,
    /// Where its connections go.
    pub way_out: WayOut,
    /// The agent's command.
    pub command: Vec<String>,
}

impl Args {
    /// `--port PORT (--socket PATH | --tunnel PORT | --direct IP:PORT --door FILE) -- COMMAND…`
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let usage = "usage: clauderon-relay --port PORT (--socket PATH | --tunnel PORT | --direct IP:PORT --door FILE) \
                     -- COMMAND [ARGS…]";
        let split = args.iter().position(|a| a == "--").ok_or(usage)?;
        let (opts, command) = (&args[..split], &args[split + 1..]);
        let value = |name: &str| opts.iter().position(|a| a == name).and_then(|i| opts.get(i + 1));
        let number = |name: &str| -> Result<u16, String> {
            value(name).ok_or(usage)?.parse().map_err(|_| format!("{name} must be a port number; {usage}"))
        };
        let port = number("--port")?;
        let way_out = match (value("--socket"), value("--tunnel"), value("--direct")) {
            (Some(socket), None, None) => WayOut::Socket(PathBuf::from(socket)),
            (None, Some(_), None) => match number("--tunnel")? {
                tunnel if tunnel == port => return Err(format!("--tunnel must differ from --port; {usage}")),
                tunnel => WayOut::Tunnel(tunnel),
            },
            (None, None, Some(address)) => WayOut::Direct(door::Door {
                address: address
                    .parse()
                    .map_err(|_| format!("--direct must be an IP address and port, not {address:?}; {usage}"))?,
                file: PathBuf::from(value("--door").ok_or_else(|| format!("--direct needs --door FILE; {usage}"))?),
            }),
            _ => return Err(format!("one of --socket, --tunnel and --direct; {usage}")),
        };
        if command.is_empty() {
            return Err(usage.into());
        }
        Ok(Self { port, way_out, command: command.to_vec() })
    }
}

/// Run as the container's init; returns the agent's exit status.
pub fn run(args: &Args) -> Result<i32, SandboxError> {
    // Signals are taken synchronously below; threads started from here on
    // inherit the mask, and the agent gets an empty one (std resets it).
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGCHLD, Signal::SIGWINCH] {
        signals.add(s);
    }
    signals.thread_block().map_err(|e| SandboxError::step("blocking signals", e))?;
    match &args.way_out {
        WayOut::Socket(socket) => {
            for listener in relay::listen(args.port)? {
                relay::serve(listener, socket.clone());
            }
        }
        WayOut::Tunnel(tunnel) => {
            let tunnels = Arc::new(relay::Tunnels::default());
            for listener in relay::listen(*tunnel)? {
                relay::serve_tunnels(listener, tunnels.clone());
            }
            for listener in relay::listen(args.port)? {
                relay::serve_through(listener, tunnels.clone());
            }
        }
        WayOut::Direct(door) => door::serve(relay::listen(args.port)?, door.clone())?,
    }
    let child = std::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .spawn()
        .map_err(|e| SandboxError::step(format!("running `{}`", args.command[0]), e))?;
    let agent = Pid::from_raw(child.id() as i32);
    loop {
        let signal = signals.wait().map_err(|e| SandboxError::step("waiting for signals", e))?;
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(agent, signal);
            continue;
        }
        // Reap every child that has ended (orphans are ours too); once the
        // agent has, give what it left behind its moment.
        loop {
            let code = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == agent => code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == agent => 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            reap::leftovers(reap::LINGER);
            return Ok(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn arguments_name_the_port_the_way_out_and_the_command() {
        let args =
            Args::parse(&strings(&["--port", "4100", "--socket", "/run/clauderon/proxy.sock", "--", "claude", "-p"]))
                .expect("parsed");
        assert_eq!(args.port, 4100);
        assert_eq!(args.way_out, WayOut::Socket(PathBuf::from("/run/clauderon/proxy.sock")));
        assert_eq!(args.command, strings(&["claude", "-p"]));
        let tunnel = Args::parse(&strings(&["--port", "4100", "--tunnel", "4101", "--", "claude"])).expect("parsed");
        assert_eq!(tunnel.way_out, WayOut::Tunnel(4101));
        let direct = Args::parse(&strings(&[
            "--port",
            "4100",
            "--direct",
            "10.0.0.5:7443",
            "--door",
            "/session/door",
            "--",
            "claude",
        ]))
        .expect("parsed");
        assert_eq!(
            direct.way_out,
            WayOut::Direct(door::Door {
                address: "10.0.0.5:7443".parse().expect("addr"),
                file: "/session/door".into()
            })
        );
        for bad in [
            &["--port", "x", "--socket", "/s", "--", "a"][..],
            &["--port", "1", "--", "a"],
            &["--port", "1", "--socket", "/s", "--"],
            &["--port", "1", "--socket", "/s", "--tunnel", "2", "--", "a"],
            &["--port", "1", "--tunnel", "1", "--", "a"],
            &["--port", "1", "--tunnel", "x", "--", "a"],
            &["--port", "1", "--direct", "door.example:7443", "--door", "/d", "--", "a"],
            &["--port", "1", "--direct", "10.0.0.5:7443", "--", "a"],
            &["--port", "1", "--direct", "10.0.0.5:7443", "--door", "/d", "--tunnel", "2", "--", "a"],
            &["a"],
        ] {
            let err = Args::parse(&strings(bad)).expect_err("refused");
            assert!(err.contains("usage"), "{err}");
        }
    }
}
