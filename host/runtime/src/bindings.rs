//! Host-side bindings generated from `wit/` by wasmtime's `bindgen!`, one
//! module per world. The shared interfaces (types, log, kv, process, http,
//! container, kube) are generated once, in `backend`, whose world imports
//! them all; the other worlds reuse them through `with`.
//!
//! Host functions that answer `result<_, plugin-error>` return
//! `Result<_, HostError>` ([`crate::error::HostError`]), so host code uses
//! `?`: a plugin error reaches the component as its result, a trap ends the
//! call.

/// The `backend` world, and the shared interfaces.
pub mod backend {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "clauderon:plugin/backend@0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize],
        trappable_error_type: { "clauderon:plugin/types.plugin-error" => crate::error::HostError },
    });
}

/// The `agent` world.
pub mod agent {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "clauderon:plugin/agent@0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize],
        trappable_error_type: { "clauderon:plugin/types.plugin-error" => crate::error::HostError },
        with: {
            "clauderon:plugin/types": super::backend::clauderon::plugin::types,
            "clauderon:plugin/log": super::backend::clauderon::plugin::log,
            "clauderon:plugin/kv": super::backend::clauderon::plugin::kv,
        },
    });
}

/// The `credential-source` world (and the `environment` and `secret-files` capabilities).
pub mod credential_source {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "clauderon:plugin/credential-source@0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize],
        trappable_error_type: { "clauderon:plugin/types.plugin-error" => crate::error::HostError },
        with: {
            "clauderon:plugin/types": super::backend::clauderon::plugin::types,
            "clauderon:plugin/log": super::backend::clauderon::plugin::log,
            "clauderon:plugin/process": super::backend::clauderon::plugin::process,
        },
    });
}

/// The `hook` world.
pub mod hook {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "clauderon:plugin/hook@0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize],
        trappable_error_type: { "clauderon:plugin/types.plugin-error" => crate::error::HostError },
        with: {
            "clauderon:plugin/types": super::backend::clauderon::plugin::types,
            "clauderon:plugin/log": super::backend::clauderon::plugin::log,
            "clauderon:plugin/kv": super::backend::clauderon::plugin::kv,
            "clauderon:plugin/http": super::backend::clauderon::plugin::http,
        },
    });
}

pub use backend::clauderon::plugin::types;
pub use backend::clauderon::plugin::types::PluginError;
pub use backend::clauderon::plugin::{container, http, kube, kv, log, process};
pub use credential_source::clauderon::plugin::{environment, secret_files};

impl types::SessionSpec {
    /// A session spec with nothing in it but `name` (read-write, `true` as
    /// its command, `/tmp` as its worktree): for tests of components and
    /// capabilities, which set the options they need.
    #[doc(hidden)]
    pub fn named(name: &str) -> Self {
        Self {
            id: "00000000-0000-0000-0000-000000000000".into(),
            name: name.into(),
            resource_name: format!("clauderon-{name}"),
            worktree: "/tmp".into(),
            workdir: "/tmp".into(),
            access_mode: types::AccessMode::ReadWrite,
            launch: types::LaunchPlan {
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
}
