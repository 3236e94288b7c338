//! Hooks: react to session events.

use core::marker::PhantomData;

use crate::Result;
use crate::bindings::hook::exports::clauderon::plugin::hook_api as api;
use crate::types::SessionEvent;
pub use api::HookInfo;

/// A hook. Implement it on a unit struct and export it with
/// [`export_hook!`](crate::export_hook).
pub trait Hook {
    /// Describe the hook.
    fn info() -> HookInfo;
    /// React to one event.
    fn on_event(event: SessionEvent) -> Result<()>;
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: Hook> api::Guest for Export<T> {
    fn info() -> HookInfo {
        crate::__init();
        T::info()
    }
    fn on_event(event: SessionEvent) -> Result<()> {
        crate::__init();
        T::on_event(event)
    }
}

/// Export a type implementing [`Hook`] as this component's hook.
#[macro_export]
macro_rules! export_hook {
    ($ty:ty) => {
        type __ClauderonHookExport = $crate::__hook_export::Export<$ty>;
        $crate::bindings::hook::__export_hook_world!(__ClauderonHookExport with_types_in $crate::bindings::hook);
    };
}
