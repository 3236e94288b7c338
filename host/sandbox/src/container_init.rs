//! PID 1 of a session's container (`clauderon-relay`, a static binary the
//! host mounts into every container): the container has no network but its
//! own loopback, so this listens on the proxy's port there and relays each
//! connection to the proxy's unix socket (mounted in), runs the agent as its
//! child, passes it the signals `docker stop` and the terminal send, reaps
//! orphans, and exits with the agent's status once what the agent left
//! running has finished (for up to [`crate::LINGER`]).

use std::path::PathBuf;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::{SandboxError, reap, relay};

/// What `clauderon-relay` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The proxy's port (the agent's proxy URL names 127.0.0.1:PORT).
    pub port: u16,
    /// The proxy's unix socket inside the container.
    pub socket: PathBuf,
    /// The agent's command.
    pub command: Vec<String>,
}

impl Args {
    /// `--port PORT --socket PATH -- COMMAND…`
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let usage = "usage: clauderon-relay --port PORT --socket PATH -- COMMAND [ARGS…]";
        let split = args.iter().position(|a| a == "--").ok_or(usage)?;
        let (opts, command) = (&args[..split], &args[split + 1..]);
        let value = |name: &str| opts.iter().position(|a| a == name).and_then(|i| opts.get(i + 1)).ok_or(usage);
        let port = value("--port")?.parse().map_err(|_| format!("--port must be a port number; {usage}"))?;
        let socket = PathBuf::from(value("--socket")?);
        if command.is_empty() {
            return Err(usage.into());
        }
        Ok(Self { port, socket, command: command.to_vec() })
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
    for listener in relay::listen(args.port)? {
        relay::serve(listener, args.socket.clone());
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
    fn arguments_name_the_port_the_socket_and_the_command() {
        let args =
            Args::parse(&strings(&["--port", "4100", "--socket", "/run/clauderon/proxy.sock", "--", "claude", "-p"]))
                .expect("parsed");
        assert_eq!(args.port, 4100);
        assert_eq!(args.socket, PathBuf::from("/run/clauderon/proxy.sock"));
        assert_eq!(args.command, strings(&["claude", "-p"]));
        for bad in [
            &["--port", "x", "--socket", "/s", "--", "a"][..],
            &["--port", "1", "--", "a"],
            &["--port", "1", "--socket", "/s", "--"],
            &["a"],
        ] {
            let err = Args::parse(&strings(bad)).expect_err("refused");
            assert!(err.contains("usage"), "{err}");
        }
    }
}
