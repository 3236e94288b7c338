//! What a sandbox's PID 1 (the host sandbox's init, a container's
//! `clauderon-relay`) does once the agent has exited: the processes it left
//! behind get a moment to finish before the init's exit makes the kernel kill
//! them. An agent's last act is often one of them — Codex runs its `notify`
//! hook (the command that posts "turn complete" to clauderon) without waiting
//! for it — and killed mid-request it would leave the session "working" for
//! ever. A leftover that keeps running (a server the agent started) is killed
//! when [`LINGER`] is up. The proxy relay keeps serving meanwhile.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How long the agent's leftovers may run after it exited.
pub const LINGER: Duration = Duration::from_secs(5);

/// How often the init looks for leftovers that ended.
const POLL: Duration = Duration::from_millis(20);

/// Reap the caller's children (in a sandbox: every process left in it) until
/// none is left or `limit` has passed.
pub(crate) fn leftovers(limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(WaitStatus::StillAlive) => return,
            Ok(_) | Err(Errno::EINTR) => continue,
            // ECHILD: nothing is left.
            Err(_) => return,
        }
    }
}
