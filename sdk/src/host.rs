//! The host capabilities as plain Rust functions.
//!
//! A capability your component calls must be granted in its `component.toml`
//! (`process`, `http`, `container`, `kube`, `env`, `secret-files`); `log` and
//! `kv` are always granted. Calling an ungranted capability makes clauderon
//! refuse to load the component, naming what it asked for.

use crate::bindings::imports::clauderon::plugin as raw;
// Compiled natively (a unit test), the calls go to the test's mock host.
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::native as via;
#[cfg(target_arch = "wasm32")]
use raw as via;

/// Write to clauderon's log, tagged with your component's id.
pub mod log {
    use super::raw::log::Level;
    use super::via::log::write;

    /// Log at error level.
    pub fn error(msg: &str) {
        write(Level::Error, msg);
    }
    /// Log at warn level.
    pub fn warn(msg: &str) {
        write(Level::Warn, msg);
    }
    /// Log at info level.
    pub fn info(msg: &str) {
        write(Level::Info, msg);
    }
    /// Log at debug level.
    pub fn debug(msg: &str) {
        write(Level::Debug, msg);
    }
    /// Log at trace level.
    pub fn trace(msg: &str) {
        write(Level::Trace, msg);
    }
}

/// Small state private to your component (keys ≤ 256 bytes, values ≤ 64 KiB, 1 MiB in all).
pub mod kv {
    use crate::Result;

    /// The value under `key`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
        super::via::kv::get(key)
    }
    /// Store `value` under `key`.
    pub fn set(key: &str, value: &[u8]) -> Result<()> {
        super::via::kv::set(key, value)
    }
    /// Remove `key`; true if it existed.
    pub fn delete(key: &str) -> Result<bool> {
        super::via::kv::delete(key)
    }
    /// Keys starting with `prefix`, sorted.
    pub fn list_keys(prefix: &str) -> Result<Vec<String>> {
        super::via::kv::list_keys(prefix)
    }
}

/// Run granted executables on the host.
pub mod process {
    pub use super::raw::process::Output;
    use super::raw::process::{self as p};
    use crate::types::EnvVar;
    use crate::{Error, Result};

    /// A command to run, built step by step:
    /// `Command::new("zellij").arg("list-sessions").run()?`.
    #[derive(Debug, Clone)]
    pub struct Command(p::Command);

    impl Command {
        /// A command running `program`, a bare name from your `process` grant.
        pub fn new(program: impl Into<String>) -> Self {
            Self(p::Command {
                program: program.into(),
                args: Vec::new(),
                env: Vec::new(),
                cwd: None,
                stdin: None,
                timeout_ms: None,
                max_output_bytes: None,
            })
        }
        /// Add one argument.
        pub fn arg(mut self, arg: impl Into<String>) -> Self {
            self.0.args.push(arg.into());
            self
        }
        /// Add several arguments.
        pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
            self.0.args.extend(args.into_iter().map(Into::into));
            self
        }
        /// Set an environment variable for the child.
        pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.0.env.push(EnvVar { name: name.into(), value: value.into() });
            self
        }
        /// Set several environment variables.
        pub fn envs(mut self, vars: impl IntoIterator<Item = EnvVar>) -> Self {
            self.0.env.extend(vars);
            self
        }
        /// Run in this directory.
        pub fn cwd(mut self, dir: impl Into<String>) -> Self {
            self.0.cwd = Some(dir.into());
            self
        }
        /// Feed these bytes to stdin.
        pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
            self.0.stdin = Some(bytes.into());
            self
        }
        /// Kill the child after `ms` milliseconds.
        pub fn timeout_ms(mut self, ms: u32) -> Self {
            self.0.timeout_ms = Some(ms);
            self
        }
        /// Keep at most `bytes` of stdout and of stderr.
        pub fn max_output_bytes(mut self, bytes: u32) -> Self {
            self.0.max_output_bytes = Some(bytes);
            self
        }
        /// Run to completion, whatever the exit code.
        pub fn output(&self) -> Result<Output> {
            super::via::process::run(&self.0)
        }
        /// Run to completion and return stdout as text; a non-zero exit or a
        /// timeout is an error carrying stderr.
        pub fn run(&self) -> Result<String> {
            let out = self.output()?;
            if out.timed_out {
                return Err(Error::failed(format!("`{}` timed out", self.0.program)));
            }
            if out.exit_code != Some(0) {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(Error::failed(format!(
                    "`{} {}` exited with {:?}: {}",
                    self.0.program,
                    self.0.args.join(" "),
                    out.exit_code,
                    stderr.trim()
                )));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        /// Start detached; returns the process id.
        pub fn spawn(&self) -> Result<u32> {
            super::via::process::spawn(&self.0)
        }
    }
}

/// Outbound HTTPS to granted hosts. In the daemon it goes through clauderon's
/// proxy as `component:<id>`: audited, and carrying only the credentials in
/// the component's `credentials` grant, which the proxy adds (see
/// `wit/http.wit`).
pub mod http {
    pub use super::raw::http::{Header, Request, Response};
    use crate::Result;

    /// Send a request.
    pub fn send(req: &Request) -> Result<Response> {
        super::via::http::send(req)
    }
    /// `GET url`.
    pub fn get(url: &str) -> Result<Response> {
        send(&Request { method: "GET".into(), url: url.into(), headers: Vec::new(), body: None, timeout_ms: None })
    }
    /// `POST url` with a JSON body.
    pub fn post_json(url: &str, json: &str) -> Result<Response> {
        send(&Request {
            method: "POST".into(),
            url: url.into(),
            headers: vec![Header { name: "content-type".into(), value: "application/json".into() }],
            body: Some(json.as_bytes().to_vec()),
            timeout_ms: None,
        })
    }
}

/// The local Docker engine.
pub mod container {
    pub use super::raw::container::*;
}

/// The configured Kubernetes namespace.
pub mod kube {
    pub use super::raw::kube::*;
}

/// Granted environment variables of the daemon (credential sources only).
pub mod environment {
    pub use super::via::environment::get;
}

/// Files in clauderon's secrets directory (credential sources only).
pub mod secret_files {
    pub use super::via::secret_files::{names, read};
}
