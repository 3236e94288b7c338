//! Credential sources: where real credentials come from. Only the host calls them.

use core::marker::PhantomData;

use crate::Result;
use crate::bindings::credential_source::exports::clauderon::plugin::credential_source_api as api;
pub use api::SourceInfo;

/// A credential source. Implement it on a unit struct and export it with
/// [`export_credential_source!`](crate::export_credential_source).
pub trait CredentialSource {
    /// Describe the source.
    fn info() -> SourceInfo;
    /// Services this source can provide now (names only).
    fn available() -> Result<Vec<String>>;
    /// The credential for `service`, if this source has one.
    fn get(service: String) -> Result<Option<String>>;
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: CredentialSource> api::Guest for Export<T> {
    fn info() -> SourceInfo {
        crate::__init();
        T::info()
    }
    fn available() -> Result<Vec<String>> {
        crate::__init();
        T::available()
    }
    fn get(service: String) -> Result<Option<String>> {
        crate::__init();
        T::get(service)
    }
}

/// Export a type implementing [`CredentialSource`] as this component's source.
#[macro_export]
macro_rules! export_credential_source {
    ($ty:ty) => {
        type __ClauderonCredentialSourceExport = $crate::__credential_source_export::Export<$ty>;
        $crate::bindings::credential_source::__export_credential_source_world!(
            __ClauderonCredentialSourceExport with_types_in $crate::bindings::credential_source
        );
    };
}
