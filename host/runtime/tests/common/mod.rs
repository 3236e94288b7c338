//! Shared helpers for the runtime's tests: where the built components are,
//! and a runtime with short limits.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clauderon_runtime::bindings::agent::exports::clauderon::plugin::agent_api::LaunchRequest;
use clauderon_runtime::bindings::types::SessionSpec;
use clauderon_runtime::{Kind, Limits, Runtime, RuntimeConfig, Source};

/// A directory of built components, from an environment variable `just` sets.
pub fn built_dir(var: &str, sub: &str) -> PathBuf {
    let base = std::env::var_os(var).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run the tests with `just test` (or `./justw test`), which builds the components first"
        )
    });
    let dir = PathBuf::from(base).join(sub);
    assert!(dir.is_dir(), "{} does not exist: run `just components`", dir.display());
    dir
}

/// Bytes of a built component.
pub fn component(var: &str, sub: &str, id: &str) -> Arc<[u8]> {
    let path = built_dir(var, sub).join(format!("{id}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into()
}

/// A fixture component as a bundled source (granted what it asks for).
pub fn fixture(id: &str) -> Source {
    Source::Bundled { name: id.into(), bytes: component("CLAUDERON_TEST_COMPONENTS", "fixtures", id) }
}

/// A bundled component as a source.
pub fn bundled(id: &str) -> Source {
    Source::Bundled { name: id.into(), bytes: component("CLAUDERON_COMPONENTS_DIR", "", id) }
}

/// A built SDK template as a source.
pub fn template(id: &str) -> Source {
    Source::Bundled { name: id.into(), bytes: component("CLAUDERON_TEST_COMPONENTS", "templates", id) }
}

/// Limits short enough for tests.
pub const TEST_LIMITS: Limits = Limits {
    deadline: Duration::from_millis(500),
    memory_bytes: 32 << 20,
    output_bytes: 1 << 20,
    log_bytes_per_call: 256 << 10,
    log_bytes_per_minute: 1 << 20,
};

/// A runtime without a compile cache, with [`TEST_LIMITS`] for backends.
pub fn runtime() -> Runtime {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = RuntimeConfig::under(dir.path());
    config.cache_dir = None;
    config.limits = BTreeMap::from([(Kind::Backend, TEST_LIMITS), (Kind::Hook, TEST_LIMITS)]);
    Runtime::new(config).expect("runtime")
}

/// A session spec whose name tells the misbehaving fixture what to do.
pub fn spec(name: &str) -> SessionSpec {
    SessionSpec::named(name)
}

/// A print-mode launch request with this prompt.
pub fn launch_request(prompt: &str) -> LaunchRequest {
    LaunchRequest {
        session_id: "s".into(),
        prompt: prompt.into(),
        model: None,
        print_mode: true,
        plan_mode: false,
        skip_permissions: false,
        resume: false,
        config_home: "/tmp/home".into(),
        worktree: "/tmp".into(),
        workdir: "/tmp".into(),
        status_url: None,
        isolated: false,
    }
}

/// Everything written through `tracing` while its guard is alive (the
/// subscriber is per thread: use it in current-thread tokio tests).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Start capturing; keep the guard alive for as long as needed.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture lock")).into_owned()
    }
}
