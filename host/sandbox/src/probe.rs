//! Can this machine build the sandbox? The only reliable answer is to build
//! one: `clauderon sandbox probe` runs `true` inside a sandbox with an empty
//! policy, in a fresh single-threaded process (a multi-threaded daemon cannot
//! enter a user namespace itself). The daemon asks once at start.

use std::path::Path;

use crate::policy::Policy;

/// Whether host sessions can be sandboxed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Every part works.
    Full,
    /// Something is missing; the sentence says what and how to fix it.
    Missing(String),
}

/// The policy the probe uses: nothing writable, no proxy.
pub fn probe_policy() -> Policy {
    Policy {
        session: "probe".into(),
        workdir: "/".into(),
        writable: Vec::new(),
        readable: Vec::new(),
        hidden: Vec::new(),
        proxy: None,
    }
}

/// Run `exe sandbox probe` and read its verdict. Blocks for the few
/// milliseconds the probe takes (call it off the async runtime).
pub fn probe(exe: &Path) -> Support {
    let out = std::process::Command::new(exe)
        .args(["sandbox", "probe"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => Support::Full,
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Support::Missing(if text.is_empty() { format!("the sandbox probe failed ({})", out.status) } else { text })
        }
        Err(e) => Support::Missing(format!("running {} sandbox probe: {e}", exe.display())),
    }
}
