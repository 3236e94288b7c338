//! Shared helpers for the runtime's tests: where the built components are,
//! and a runtime with short limits.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clauderon_runtime::bindings::types::{AccessMode, LaunchPlan, SessionSpec};
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
    SessionSpec {
        id: "00000000-0000-0000-0000-000000000000".into(),
        name: name.into(),
        worktree: "/tmp".into(),
        workdir: "/tmp".into(),
        access_mode: AccessMode::ReadWrite,
        launch: LaunchPlan {
            argv: vec!["true".into()],
            env: Vec::new(),
            files: Vec::new(),
            credentials: Vec::new(),
            transcript_path: None,
        },
        image: None,
        cpu_limit: None,
        memory_limit: None,
        options: Vec::new(),
    }
}
