//! `process`: run an allow-listed executable on the host, with a timeout and
//! capped output, or start one detached. Detached children are tracked
//! ([`ProcessService`]): a component may have at most [`MAX_SPAWNED`] alive,
//! and those started for a session are killed when the session is deleted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::denied;
use crate::bindings::PluginError;
use crate::bindings::process::{Command, Host, Output};
use crate::error::HostError;
use crate::manifest::{Capability, not_installed};
use crate::state::HostState;

const DEFAULT_OUTPUT: u32 = 1 << 20;
const MAX_OUTPUT: u32 = 16 << 20;
/// Variables passed through from the daemon's environment.
const PASSED_ENV: [&str; 5] = ["PATH", "HOME", "USER", "LANG", "TERM"];
/// Most detached children one component may have alive at once.
pub const MAX_SPAWNED: usize = 16;

/// One detached child: who started it, for which session, and which process
/// it is (its start time tells it from a later process given the same pid).
struct Spawned {
    component: String,
    session: Option<String>,
    pid: u32,
    started: u64,
}

/// The host service behind `process`: every detached child still alive.
#[derive(Default)]
pub struct ProcessService {
    spawned: std::sync::Mutex<Vec<Spawned>>,
}

impl ProcessService {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Spawned>) -> R) -> R {
        let mut spawned = self.spawned.lock().unwrap_or_else(|p| p.into_inner());
        spawned.retain(|s| start_time(s.pid) == Some(s.started));
        f(&mut spawned)
    }

    /// Start a child for `component` with `start` (which returns its pid)
    /// and track it, unless the component already has [`MAX_SPAWNED`]
    /// alive. The count, the start and the tracking happen under one lock,
    /// so calls running at once (two sessions' creates on one backend)
    /// cannot pass the cap together.
    fn start(
        &self,
        component: &str,
        session: Option<&str>,
        start: impl FnOnce() -> Result<u32, PluginError>,
    ) -> Result<u32, PluginError> {
        self.with(|spawned| {
            let alive = spawned.iter().filter(|s| s.component == component).count();
            if alive >= MAX_SPAWNED {
                return Err(PluginError::Denied(format!(
                    "component `{component}` already has {alive} detached processes running, the most it may have"
                )));
            }
            let pid = start()?;
            if let Some(started) = start_time(pid) {
                let (component, session) = (component.to_string(), session.map(str::to_string));
                spawned.push(Spawned { component, session, pid, started });
            }
            Ok(pid)
        })
    }

    /// Kill (with its process group) every detached child started for
    /// `session` that is still alive; how many were killed.
    pub fn kill_session(&self, session: &str) -> usize {
        self.with(|spawned| {
            let mut killed = 0;
            spawned.retain(|s| {
                if s.session.as_deref() != Some(session) {
                    return true;
                }
                // SAFETY: kill has no memory preconditions; the group is the
                // child's own (spawned with process_group(0)), checked alive above.
                if unsafe { libc::kill(-(s.pid as libc::pid_t), libc::SIGKILL) } == 0 {
                    killed += 1;
                }
                false
            });
            killed
        })
    }

    /// How many detached children `component` has alive.
    pub fn alive(&self, component: &str) -> usize {
        self.with(|s| s.iter().filter(|s| s.component == component).count())
    }
}

/// A live (not zombie) process's start time (field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); field N is fields[N - 3].
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl HostState {
    /// Check `cmd.program` against the grant and resolve it on PATH.
    fn allowed_program(&self, cmd: &Command) -> Result<PathBuf, PluginError> {
        let granted = self.ctx.grants.process.iter().any(|p| p == &cmd.program);
        if cmd.program.contains('/') {
            return Err(PluginError::Denied(format!(
                "component `{}` may not run `{}`: name a program by its bare name (as in its `process` grant), \
                 never a path",
                self.ctx.id, cmd.program
            )));
        }
        if !granted {
            let may =
                if self.ctx.grants.process.is_empty() { "nothing".into() } else { self.ctx.grants.process.join(", ") };
            return Err(denied(
                self,
                &format!("run `{}` (it may run: {may})", cmd.program),
                Capability::Process,
                &cmd.program,
            ));
        }
        which(&cmd.program).ok_or_else(|| PluginError::NotFound(not_installed(&cmd.program, &self.ctx.requires)))
    }

    fn build(&self, path: &Path, cmd: &Command) -> Result<tokio::process::Command, PluginError> {
        let mut c = tokio::process::Command::new(path);
        c.args(&cmd.args).env_clear();
        for name in PASSED_ENV {
            if let Some(v) = std::env::var_os(name) {
                c.env(name, v);
            }
        }
        for v in &cmd.env {
            c.env(&v.name, &v.value);
        }
        if let Some(dir) = &cmd.cwd {
            if !Path::new(dir).is_absolute() {
                return Err(PluginError::InvalidInput(format!("cwd `{dir}` must be an absolute path")));
            }
            let canonical = std::fs::canonicalize(dir)
                .map_err(|e| PluginError::InvalidInput(format!("cwd `{dir}` cannot be resolved: {e}")))?;
            if !self.session_paths.iter().any(|p| canonical.starts_with(p)) {
                return Err(PluginError::Denied(format!(
                    "component `{}` may run commands only inside its session's own directories, during the \
                     session's create or start; `{dir}` is not one",
                    self.ctx.id
                )));
            }
            c.current_dir(canonical);
        }
        Ok(c)
    }
}

/// Find a bare program name on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Read everything, keeping at most `cap` bytes.
async fn read_capped(mut r: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

/// Add `process` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::process::add_to_linker::<HostState, super::Data>(linker, super::state)
}

impl Host for HostState {
    async fn run(&mut self, cmd: Command) -> Result<Output, HostError> {
        let path = self.allowed_program(&cmd)?;
        let mut c = self.build(&path, &cmd)?;
        // A child may use at most 90% of the call's deadline, so the call can still
        // report `timed-out` instead of being cut off as a whole.
        let budget = self.ctx.limits.deadline.mul_f64(0.9);
        let timeout = cmd.timeout_ms.map(|ms| Duration::from_millis(ms.into())).unwrap_or(budget).min(budget);
        let cap = cmd.max_output_bytes.unwrap_or(DEFAULT_OUTPUT).min(MAX_OUTPUT) as usize;
        c.stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_the_daemon(&mut c);
        let mut child =
            c.spawn().map_err(|e| PluginError::Failed(format!("could not start `{}`: {e}", cmd.program)))?;
        if let (Some(bytes), Some(mut stdin)) = (cmd.stdin, child.stdin.take()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(&bytes).await;
            });
        }
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(PluginError::Failed("the child's output pipes were not available".into()).into());
        };
        let work = async {
            let (o, e, status) = tokio::join!(read_capped(out, cap), read_capped(err, cap), child.wait());
            (o, e, status)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(((stdout, t1), (stderr, t2), status)) => Ok(Output {
                exit_code: status.ok().and_then(|s| s.code()),
                stdout,
                stderr,
                truncated: t1 || t2,
                timed_out: false,
            }),
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                Ok(Output {
                    exit_code: None,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    truncated: false,
                    timed_out: true,
                })
            }
        }
    }

    async fn spawn(&mut self, cmd: Command) -> Result<u32, HostError> {
        let path = self.allowed_program(&cmd)?;
        let mut c = self.build(&path, &cmd)?;
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
        let pid = self.services.process.start(&self.ctx.id, self.session.as_deref(), || {
            let child =
                c.spawn().map_err(|e| PluginError::Failed(format!("could not start `{}`: {e}", cmd.program)))?;
            child.id().ok_or_else(|| PluginError::Failed("the child exited at once".into()))
        })?;
        Ok(pid)
    }
}

/// A command the daemon waits for dies with it: if the daemon is killed
/// (SIGKILL skips `kill_on_drop`), the kernel kills the child too, so no
/// half-done `create` carries on behind a restarted daemon's back.
fn die_with_the_daemon(c: &mut tokio::process::Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the daemon exited while this command started"));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;

    use super::*;

    /// Many calls at once from one component (say, several sessions'
    /// creates on one backend) get exactly the cap between them.
    #[test]
    fn calls_at_once_cannot_pass_the_cap_together() {
        let service = std::sync::Arc::new(ProcessService::default());
        let started: Vec<_> = (0..MAX_SPAWNED * 3)
            .map(|_| {
                let service = service.clone();
                std::thread::spawn(move || {
                    service.start("racer", Some("s"), || {
                        // Slow to start, as a real exec can be: the window a
                        // check-then-record cap would let others through.
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        let child = std::process::Command::new("sleep")
                            .arg("30")
                            .process_group(0)
                            .spawn()
                            .map_err(|e| PluginError::Failed(e.to_string()))?;
                        Ok(child.id())
                    })
                })
            })
            .collect();
        let results: Vec<_> = started.into_iter().map(|t| t.join().expect("thread")).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), MAX_SPAWNED);
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, PluginError::Denied(_))));
        assert_eq!(service.alive("racer"), MAX_SPAWNED);
        assert_eq!(service.kill_session("s"), MAX_SPAWNED);
    }
}
