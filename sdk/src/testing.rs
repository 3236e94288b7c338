//! A mock host for unit tests: run your component's functions natively with
//! `cargo test`, script what each host call answers, and assert what was called.
//!
//! Compiled for wasm32, the SDK's capability functions ([`crate::log`],
//! [`crate::kv`], [`crate::process`], [`crate::http`], [`crate::environment`],
//! [`crate::secret_files`]) call clauderon. Compiled natively (a test), they
//! call the [`MockHost`] the current test thread installed instead:
//!
//! ```
//! use clauderon_sdk::prelude::*;
//! use clauderon_sdk::testing::{MockHost, exited};
//!
//! let host = MockHost::new().on_process(|cmd| match cmd.args.first().map(String::as_str) {
//!     Some("has-session") => Ok(exited(1, "", "can't find session")),
//!     _ => Ok(exited(0, "", "")),
//! });
//! let out = process::Command::new("tmux").args(["has-session", "-t", "=x"]).output().unwrap();
//! assert_eq!(out.exit_code, Some(1));
//! assert_eq!(host.commands(), [vec!["tmux", "has-session", "-t", "=x"]]);
//! ```
//!
//! - `log` lines are kept ([`MockHost::logs`]) and also printed to stderr;
//! - `kv` is an in-memory map, empty unless seeded with [`MockHost::kv_entry`];
//! - `process` and `http` answer with the closure given to
//!   [`MockHost::on_process`] / [`MockHost::on_http`]; without one the call
//!   panics, naming the command, so an unexpected call fails the test;
//! - `environment` and `secret_files` read what [`MockHost::env`] and
//!   [`MockHost::secret_file`] set.
//!
//! The mock checks no grants: grants are checked by clauderon when it loads
//! and calls the component. `container` and `kube` are not mocked; calling
//! them natively panics.
//!
//! A `MockHost` belongs to the thread that created it (each `#[test]` runs on
//! its own thread) and is removed when dropped. Calling a capability natively
//! with no `MockHost` panics with a message saying to create one, except
//! `log`, which then only prints to stderr.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::Result;
use crate::bindings::imports::clauderon::plugin as raw;

pub use raw::http::{Header, Request, Response};
pub use raw::log::Level;
pub use raw::process::{Command, Output};

type ProcessScript = Box<dyn FnMut(&Command) -> Result<Output>>;
type HttpScript = Box<dyn FnMut(&Request) -> Result<Response>>;

/// One host call the component made, in order.
#[derive(Debug, Clone)]
pub enum Call {
    /// `process::run` (`spawned: false`) or `process::spawn` (`true`).
    Process { command: Command, spawned: bool },
    /// `http::send`.
    Http(Request),
    /// `kv::set`.
    KvSet { key: String, value: Vec<u8> },
    /// `kv::delete`.
    KvDelete(String),
}

#[derive(Default)]
struct State {
    kv: BTreeMap<String, Vec<u8>>,
    env: BTreeMap<String, String>,
    secret_files: BTreeMap<String, String>,
    process: Option<ProcessScript>,
    http: Option<HttpScript>,
    calls: Vec<Call>,
    logs: Vec<(Level, String)>,
    next_pid: u32,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// The host your component talks to in a native test. See the module docs.
pub struct MockHost {
    state: Rc<RefCell<State>>,
}

impl Default for MockHost {
    fn default() -> Self {
        Self::new()
    }
}

impl MockHost {
    /// A host with nothing scripted, installed for this thread until dropped
    /// (replacing any other on this thread).
    pub fn new() -> Self {
        let state = Rc::new(RefCell::new(State { next_pid: 1000, ..State::default() }));
        CURRENT.with(|c| *c.borrow_mut() = Some(state.clone()));
        Self { state }
    }

    /// Answer `process::run` and `process::spawn` with `script` (for `spawn`,
    /// an `Ok` answer means it started; it gets the next process id).
    pub fn on_process(self, script: impl FnMut(&Command) -> Result<Output> + 'static) -> Self {
        self.state.borrow_mut().process = Some(Box::new(script));
        self
    }

    /// Answer `http::send` with `script`.
    pub fn on_http(self, script: impl FnMut(&Request) -> Result<Response> + 'static) -> Self {
        self.state.borrow_mut().http = Some(Box::new(script));
        self
    }

    /// Set an environment variable `environment::get` answers.
    pub fn env(self, name: &str, value: &str) -> Self {
        self.state.borrow_mut().env.insert(name.into(), value.into());
        self
    }

    /// Add a file `secret_files` answers.
    pub fn secret_file(self, name: &str, text: &str) -> Self {
        self.state.borrow_mut().secret_files.insert(name.into(), text.into());
        self
    }

    /// Seed the key-value store.
    pub fn kv_entry(self, key: &str, value: &[u8]) -> Self {
        self.state.borrow_mut().kv.insert(key.into(), value.to_vec());
        self
    }

    /// Every recorded call, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.borrow().calls.clone()
    }

    /// The argv (program first) of every command run or spawned, in order.
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.state
            .borrow()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Process { command, .. } => {
                    Some(std::iter::once(command.program.clone()).chain(command.args.iter().cloned()).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// The log lines written, as `LEVEL message`.
    pub fn logs(&self) -> Vec<String> {
        self.state.borrow().logs.iter().map(|(level, msg)| format!("{} {msg}", level_name(*level))).collect()
    }

    /// The key-value store as it is now.
    pub fn kv(&self) -> BTreeMap<String, Vec<u8>> {
        self.state.borrow().kv.clone()
    }
}

impl Drop for MockHost {
    fn drop(&mut self) {
        CURRENT.with(|c| {
            let mut current = c.borrow_mut();
            if current.as_ref().is_some_and(|s| Rc::ptr_eq(s, &self.state)) {
                *current = None;
            }
        });
    }
}

/// A finished process's output: its exit code, stdout and stderr.
pub fn exited(code: i32, stdout: &str, stderr: &str) -> Output {
    Output {
        exit_code: Some(code),
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
        truncated: false,
        timed_out: false,
    }
}

/// An HTTP response with this status and body.
pub fn response(status: u16, body: &str) -> Response {
    Response { status, headers: Vec::new(), body: body.as_bytes().to_vec() }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
    }
}

/// The installed mock, or a panic saying how to install one.
fn with<T>(what: &str, f: impl FnOnce(&mut State) -> T) -> T {
    let state = CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "clauderon_sdk: `{what}` was called outside clauderon with no mock host; \
             create a `clauderon_sdk::testing::MockHost` at the start of the test"
        )
    });
    let mut state = state.borrow_mut();
    f(&mut state)
}

/// Calls a scripted closure without holding the state borrowed, so the script
/// may itself look at the host (or log).
fn scripted<I, O>(
    what: &str,
    input: &I,
    take: impl Fn(&mut State) -> Option<Box<dyn FnMut(&I) -> Result<O>>>,
    put: impl Fn(&mut State, Box<dyn FnMut(&I) -> Result<O>>),
    describe: impl Fn(&I) -> String,
) -> Result<O> {
    let Some(mut script) = with(what, &take) else {
        panic!(
            "clauderon_sdk: MockHost has no answer for {what} {}; script one with MockHost::on_{}",
            describe(input),
            what.split("::").next().unwrap_or(what)
        );
    };
    let answer = script(input);
    with(what, |s| put(s, script));
    answer
}

/// The capability functions the SDK's wrappers call when compiled natively;
/// same signatures as the wasm imports in [`crate::bindings`].
pub(crate) mod native {
    use super::*;

    pub mod log {
        use super::*;
        pub fn write(level: Level, message: &str) {
            eprintln!("[{}] {message}", level_name(level));
            if let Some(state) = CURRENT.with(|c| c.borrow().clone()) {
                state.borrow_mut().logs.push((level, message.to_string()));
            }
        }
    }

    pub mod kv {
        use super::*;
        pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
            with("kv::get", |s| Ok(s.kv.get(key).cloned()))
        }
        pub fn set(key: &str, value: &[u8]) -> Result<()> {
            with("kv::set", |s| {
                s.calls.push(Call::KvSet { key: key.into(), value: value.to_vec() });
                s.kv.insert(key.into(), value.to_vec());
                Ok(())
            })
        }
        pub fn delete(key: &str) -> Result<bool> {
            with("kv::delete", |s| {
                s.calls.push(Call::KvDelete(key.into()));
                Ok(s.kv.remove(key).is_some())
            })
        }
        pub fn list_keys(prefix: &str) -> Result<Vec<String>> {
            with("kv::list_keys", |s| Ok(s.kv.keys().filter(|k| k.starts_with(prefix)).cloned().collect()))
        }
    }

    pub mod process {
        use super::*;
        fn call(command: &Command, spawned: bool) -> Result<Output> {
            with("process::run", |s| s.calls.push(Call::Process { command: command.clone(), spawned }));
            scripted(
                "process::run",
                command,
                |s| s.process.take(),
                |s, f| s.process = Some(f),
                |c| format!("`{} {}`", c.program, c.args.join(" ")),
            )
        }
        pub fn run(command: &Command) -> Result<Output> {
            call(command, false)
        }
        pub fn spawn(command: &Command) -> Result<u32> {
            call(command, true)?;
            Ok(with("process::spawn", |s| {
                s.next_pid += 1;
                s.next_pid
            }))
        }
    }

    pub mod http {
        use super::*;
        pub fn send(req: &Request) -> Result<Response> {
            with("http::send", |s| s.calls.push(Call::Http(req.clone())));
            scripted(
                "http::send",
                req,
                |s| s.http.take(),
                |s, f| s.http = Some(f),
                |r| format!("`{} {}`", r.method, r.url),
            )
        }
    }

    pub mod environment {
        use super::*;
        pub fn get(name: &str) -> Option<String> {
            with("environment::get", |s| s.env.get(name).cloned())
        }
    }

    pub mod secret_files {
        use super::*;
        pub fn read(name: &str) -> Result<Option<String>> {
            with("secret_files::read", |s| Ok(s.secret_files.get(name).map(|t| t.trim().to_string())))
        }
        pub fn names() -> Result<Vec<String>> {
            with("secret_files::names", |s| Ok(s.secret_files.keys().cloned().collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{kv, log, process};

    #[test]
    fn kv_is_a_map_and_logs_and_writes_are_recorded() {
        let host = MockHost::new().kv_entry("seeded", b"1");
        assert_eq!(kv::get("seeded").expect("get"), Some(b"1".to_vec()));
        kv::set("a/x", b"2").expect("set");
        assert_eq!(kv::list_keys("a/").expect("list"), ["a/x"]);
        assert!(kv::delete("seeded").expect("delete"));
        assert!(!kv::delete("seeded").expect("delete again"));
        log::warn("careful");
        assert_eq!(host.logs(), ["WARN careful"]);
        assert_eq!(host.kv().keys().collect::<Vec<_>>(), ["a/x"]);
        assert!(
            matches!(&host.calls()[..], [Call::KvSet { key, .. }, Call::KvDelete(_), Call::KvDelete(_)] if key == "a/x")
        );
    }

    #[test]
    fn a_script_sees_each_command_and_spawn_gets_a_pid() {
        let host = MockHost::new().on_process(|cmd| Ok(exited(0, &cmd.args.join(","), "")));
        assert_eq!(process::Command::new("tmux").args(["a", "b"]).run().expect("run"), "a,b");
        let pid = process::Command::new("tmux").arg("c").spawn().expect("spawn");
        assert!(pid > 0);
        assert_eq!(host.commands(), [vec!["tmux", "a", "b"], vec!["tmux", "c"]]);
        assert!(matches!(host.calls()[1], Call::Process { spawned: true, .. }));
    }

    #[test]
    #[should_panic(expected = "no answer for process::run `tmux ls`; script one with MockHost::on_process")]
    fn an_unscripted_command_fails_the_test_naming_it() {
        let _host = MockHost::new();
        let _ = process::Command::new("tmux").arg("ls").output();
    }

    #[test]
    #[should_panic(expected = "create a `clauderon_sdk::testing::MockHost`")]
    fn a_capability_without_a_mock_host_says_how_to_get_one() {
        let _ = kv::get("x");
    }

    #[test]
    fn a_dropped_host_is_gone_and_a_later_one_starts_empty() {
        {
            let _host = MockHost::new().kv_entry("k", b"v");
        }
        let _host = MockHost::new();
        assert_eq!(kv::get("k").expect("get"), None);
    }
}
