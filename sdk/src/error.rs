//! The one error type of the SDK: the contract's `plugin-error`.

pub use crate::bindings::imports::clauderon::plugin::types::PluginError as Error;

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// The input was not acceptable.
    pub fn invalid_input(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }
    /// The thing asked for does not exist.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }
    /// This plugin does not support the operation.
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Self::Unsupported(msg.into())
    }
    /// Something external failed.
    pub fn failed(msg: impl Into<String>) -> Self {
        Self::Failed(msg.into())
    }
    /// The sentence inside, whatever the variant.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(m) | Self::NotFound(m) | Self::Denied(m) | Self::Unsupported(m) | Self::Failed(m) => m,
        }
    }
}
