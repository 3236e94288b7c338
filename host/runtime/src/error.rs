//! The runtime's errors. Every message names the component and says what to do.

use std::time::Duration;

use crate::bindings::PluginError;
use crate::manifest::{Kind, ManifestError};

/// How a host function fails. A [`HostError::Plugin`] reaches the component
/// as the `plugin-error` its call returns; a [`HostError::Trap`] ends the call
/// (and poisons the instance), for a host that cannot carry on with it.
/// Every `PluginError` converts into it, so capability code uses `?`.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// An error the component receives and may handle.
    #[error("{}", describe(.0))]
    Plugin(PluginError),
    /// A failure that ends the component's call.
    #[error("trap: {0:#}")]
    Trap(wasmtime::Error),
}

impl From<PluginError> for HostError {
    fn from(e: PluginError) -> Self {
        HostError::Plugin(e)
    }
}

/// A component that could not be loaded. The daemon carries on without it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{origin}: cannot read it: {reason}")]
    Read { origin: String, reason: String },
    #[error(
        "{origin}: has no clauderon manifest (custom section `clauderon-manifest`); build it with \
         `clauderon plugins build DIR` (or `just components`) from a crate with a component.toml"
    )]
    NoManifest { origin: String },
    #[error("{origin}: {source}")]
    Manifest { origin: String, source: ManifestError },
    #[error("{origin}: not a valid WebAssembly component: {reason}")]
    Compile { origin: String, reason: String },
    #[error(
        "component `{id}` ({origin}) imports `{import}` without the grant: in the [capabilities] \
         table of its component.toml, write {grant}, rebuild, and approve it with `clauderon plugins install`"
    )]
    Ungranted { id: String, origin: String, import: String, grant: String },
    #[error("component `{id}` ({origin}) imports `{import}`, which a {kind} component cannot use: {why}")]
    ForeignImport { id: String, origin: String, kind: Kind, import: String, why: String },
    #[error(
        "component `{id}` ({origin}) says it is a {kind} but does not export `{expected}`; \
         was it built with the SDK's export_{macro_kind}! macro?"
    )]
    WrongWorld { id: String, origin: String, kind: Kind, expected: String, macro_kind: String },
    #[error(
        "component `{id}` ({origin}) asks for more than was approved ({missing}); review and \
         approve it with `clauderon plugins install {origin}`"
    )]
    NotApproved { id: String, origin: String, missing: String },
    #[error("component `{id}` from {second} has the same id as the one from {first}; ids must be unique")]
    Duplicate { id: String, first: String, second: String },
    #[error("component `{id}` ({origin}) could not be linked: {reason}")]
    Link { id: String, origin: String, reason: String },
    #[error("component `{id}` ({origin}) could not describe itself: {reason}")]
    Info { id: String, origin: String, reason: String },
    #[error(
        "component `{id}` ({origin}) calls itself `{said}` in info() but `{id}` in its component.toml; \
         make them the same and rebuild"
    )]
    IdMismatch { id: String, origin: String, said: String },
    #[error("the wasmtime engine could not be created: {0}")]
    Engine(String),
}

/// Why a call into a component failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallErrorKind {
    /// The call ran past its deadline and was interrupted.
    #[error("timed out after {0:?} (the deadline for this kind of component)")]
    Timeout(Duration),
    /// The component tried to grow its memory past the cap.
    #[error("exceeded its memory cap of {0} bytes")]
    Memory(usize),
    /// The component returned more data than the cap allows.
    #[error("returned more than the output cap of {0} bytes")]
    OutputTooLarge(usize),
    /// The component panicked: its panic message (`panicked at FILE:LINE:COL:
    /// MESSAGE`, from the SDK's panic hook) and the component's own functions
    /// it was in.
    #[error("{message}{}", within(.frames))]
    Panic { message: String, frames: Vec<String> },
    /// The component trapped otherwise (an unreachable, a bad memory
    /// access…): the trap, and the component's own functions it was in.
    #[error("trapped: {0}")]
    Trap(String),
    /// An earlier call on this instance failed; make a new instance.
    #[error("this instance was thrown away after an earlier failure")]
    Poisoned,
    /// Instantiation failed.
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    /// The component ran fine and returned its own error.
    #[error("{}", describe(.0))]
    Plugin(PluginError),
}

/// A failed call: which component, which function, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("component `{component}` failed in `{function}`: {kind}")]
pub struct CallError {
    /// The component's id.
    pub component: String,
    /// The exported function called.
    pub function: String,
    /// What happened.
    pub kind: CallErrorKind,
}

impl CallError {
    /// Whether the component refused its input (`invalid-input`): by the
    /// WIT contract it did nothing.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self.kind, CallErrorKind::Plugin(PluginError::InvalidInput(_)))
    }

    /// Whether the component itself answered with an error (it is still healthy).
    pub fn is_plugin_error(&self) -> bool {
        matches!(self.kind, CallErrorKind::Plugin(_))
    }
}

/// ` (in f ← g ← h)`: the functions a trap happened in, innermost first.
pub(crate) fn within(frames: &[String]) -> String {
    if frames.is_empty() { String::new() } else { format!(" (in {})", frames.join(" ← ")) }
}

/// `text` on one line (line breaks as spaces), cut at `max` bytes.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > max {
        line.truncate(line.floor_char_boundary(max));
        line.push('…');
    }
    line
}

/// A plugin error as a sentence.
pub fn describe(e: &PluginError) -> String {
    match e {
        PluginError::InvalidInput(m) => format!("invalid input: {m}"),
        PluginError::NotFound(m) => format!("not found: {m}"),
        PluginError::Denied(m) => format!("denied: {m}"),
        PluginError::Unsupported(m) => format!("unsupported: {m}"),
        PluginError::Failed(m) => format!("failed: {m}"),
    }
}
