//! # clauderon-runtime
//!
//! Loads clauderon's plugin components into one wasmtime [`Engine`] and calls
//! them under limits. It owns:
//! - [`manifest`]: what a component is and which capabilities it asks for;
//! - [`approval`]: what the user approved for a user component, bound to its bytes;
//! - [`engine`]: the engine (pooling allocator, epoch ticker);
//! - [`cache`]: compile-once, on-disk cache of compiled components;
//! - [`loader`]: checking a component's imports against its grants and
//!   pre-instantiating it with a linker holding only what was granted;
//! - [`capabilities`]: the host side of each capability interface;
//! - [`instance`]: calling a component with a deadline, a memory cap and an
//!   output cap, turning traps into errors that name the component and function;
//! - [`call`]: calling an export by name with JSON (`clauderon plugins call`);
//! - [`Runtime`]: every loaded component, bundled and user.
//!
//! [`Engine`]: wasmtime::Engine

pub mod approval;
pub mod bindings;
pub mod cache;
pub mod call;
pub mod capabilities;
pub mod engine;
pub mod error;
pub mod instance;
pub mod limits;
pub mod loader;
pub mod manifest;
mod runtime;
pub mod state;
pub use capabilities::http::HttpRoute;
pub use capabilities::kube::KubeSettings;
pub use capabilities::kube::{BranchBundle, Incoming, SessionBranch, SessionDoor, SessionSupport};
pub use state::Progress;

pub use approval::Approval;
pub use error::{CallError, HostError, LoadError};
pub use instance::{Instance, World};
pub use limits::Limits;
pub use loader::{Plugin, PluginSummary, Source};
pub use manifest::{Capabilities, Kind, Manifest, Requirement, not_installed};
pub use runtime::{Inspection, Inventory, LoadFailure, Reload, Runtime, RuntimeConfig, user_sources};
