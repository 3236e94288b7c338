//! Backends: where sessions run.

use core::marker::PhantomData;

use crate::bindings::backend::exports::clauderon::plugin::backend_api as api;
use crate::types::{ResourceStatus, SessionInfo, SessionSpec};
use crate::{Error, Result};
pub use api::{BackendFeatures, BackendInfo};

/// A backend. Implement it on a unit struct and export it with
/// [`export_backend!`](crate::export_backend). Only `info`, `create`,
/// `delete` and `status` are required; the rest answer "unsupported".
pub trait Backend {
    /// Describe the backend.
    fn info() -> BackendInfo;
    /// Create the session's resource and start the agent in it.
    fn create(spec: SessionSpec) -> Result<SessionInfo>;
    /// Start a stopped resource again.
    fn start(resource_id: String, spec: SessionSpec) -> Result<SessionInfo> {
        let _ = (resource_id, spec);
        Err(Error::unsupported("this backend cannot start a stopped session"))
    }
    /// Stop the resource, keeping it.
    fn stop(resource_id: String) -> Result<()> {
        let _ = resource_id;
        Err(Error::unsupported("this backend cannot stop a session"))
    }
    /// Remove the resource for good (succeeds if already gone).
    fn delete(resource_id: String) -> Result<()>;
    /// Report the resource's state.
    fn status(resource_id: String) -> Result<ResourceStatus>;
    /// The last `lines` lines of output.
    fn output(resource_id: String, lines: u32) -> Result<String> {
        let _ = (resource_id, lines);
        Err(Error::unsupported("this backend cannot show output"))
    }
    /// The argv that attaches a terminal.
    fn attach_argv(resource_id: String) -> Result<Vec<String>> {
        let _ = resource_id;
        Err(Error::unsupported("this backend cannot attach"))
    }
    /// Bring the session's commits from where it runs into the user's
    /// repository (`kube::copy_out`); called only if `remote_workspace` is set.
    fn export_branch(resource_id: String) -> Result<()> {
        let _ = resource_id;
        Err(Error::unsupported("this backend works in the session's clone: there is nothing to export"))
    }
    /// Every resource this backend manages.
    fn list_resources() -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Adapter from [`Backend`] to the generated bindings; used by the export macro.
#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: Backend> api::Guest for Export<T> {
    fn info() -> BackendInfo {
        crate::__init();
        T::info()
    }
    fn create(spec: SessionSpec) -> Result<SessionInfo> {
        crate::__init();
        T::create(spec)
    }
    fn start(resource_id: String, spec: SessionSpec) -> Result<SessionInfo> {
        crate::__init();
        T::start(resource_id, spec)
    }
    fn stop(resource_id: String) -> Result<()> {
        crate::__init();
        T::stop(resource_id)
    }
    fn delete(resource_id: String) -> Result<()> {
        crate::__init();
        T::delete(resource_id)
    }
    fn status(resource_id: String) -> Result<ResourceStatus> {
        crate::__init();
        T::status(resource_id)
    }
    fn output(resource_id: String, lines: u32) -> Result<String> {
        crate::__init();
        T::output(resource_id, lines)
    }
    fn attach_argv(resource_id: String) -> Result<Vec<String>> {
        crate::__init();
        T::attach_argv(resource_id)
    }
    fn export_branch(resource_id: String) -> Result<()> {
        crate::__init();
        T::export_branch(resource_id)
    }
    fn list_resources() -> Result<Vec<String>> {
        crate::__init();
        T::list_resources()
    }
}

/// Export a type implementing [`Backend`] as this component's backend.
#[macro_export]
macro_rules! export_backend {
    ($ty:ty) => {
        type __ClauderonBackendExport = $crate::__backend_export::Export<$ty>;
        $crate::bindings::backend::__export_backend_world!(__ClauderonBackendExport with_types_in $crate::bindings::backend);
    };
}
