//! # clauderon-sdk
//!
//! Everything a plugin author needs to write a clauderon component in Rust:
//! one trait per plugin kind ([`Backend`], [`Agent`], [`CredentialSource`],
//! [`Hook`]), one export macro per kind, the host capabilities as plain Rust
//! functions ([`log`], [`kv`], [`process`], [`http`], [`container`], [`kube`],
//! [`environment`], [`secret_files`]) and one error type, [`Error`].
//!
//! `use clauderon_sdk::prelude::*;` brings in what almost every plugin uses,
//! and [`testing`] (native builds only) is a mock host for unit tests.
//!
//! A panic inside your component is reported to clauderon's log with its
//! message and location before the call fails, instead of a bare "unreachable".
//!
//! See `sdk/README.md` for a walk from nothing to a loaded backend.

pub mod bindings;
mod error;
mod host;
mod kinds;
mod shorthand;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use error::{Error, Result};
pub use host::{container, environment, http, kube, kv, log, process, secret_files};
pub use kinds::agent::{Agent, AgentInfo, ApprovalKeys, ChatMessage, ChatRole, LaunchRequest};
pub use kinds::backend::{Backend, BackendFeatures, BackendInfo};
pub use kinds::credential_source::{CredentialSource, SourceInfo};
pub use kinds::hook::{Hook, HookInfo};
pub use shorthand::PathMap;

/// The types shared by every plugin kind (session spec, launch plan, events…).
pub mod types {
    pub use crate::bindings::imports::clauderon::plugin::types::{
        AccessMode, AgentStatus, CredentialNeed, EnvVar, EventKind, FileToPlace, LaunchPlan, ResourceState,
        ResourceStatus, SessionEvent, SessionInfo, SessionSpec, SessionStatus,
    };
}

/// What almost every plugin uses: `use clauderon_sdk::prelude::*;`.
///
/// The four traits and their info records, the error type, the shared types
/// (`SessionSpec`, `ResourceStatus`, …), the capability modules and the
/// export macros.
pub mod prelude {
    pub use crate::process::Command;
    pub use crate::types::*;
    pub use crate::{
        Agent, AgentInfo, ApprovalKeys, Backend, BackendFeatures, BackendInfo, ChatMessage, ChatRole, CredentialSource,
        Error, Hook, HookInfo, LaunchRequest, Result, SourceInfo,
    };
    pub use crate::{export_agent, export_backend, export_credential_source, export_hook};
    pub use crate::{http, kv, log, process};
}

/// Called at the start of every exported function: installs the panic hook once.
#[doc(hidden)]
pub fn __init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log::error(&format!("panic: {info}"));
        }));
    });
}

#[doc(hidden)]
pub use kinds::agent as __agent_export;
#[doc(hidden)]
pub use kinds::backend as __backend_export;
#[doc(hidden)]
pub use kinds::credential_source as __credential_source_export;
#[doc(hidden)]
pub use kinds::hook as __hook_export;
