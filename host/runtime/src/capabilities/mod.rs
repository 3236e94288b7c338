//! The host side of each capability interface, one module per capability.
//! A module holds everything of its capability: the `Host` impl of its WIT
//! interface, its `link` (what adds it to a component's linker), the host
//! service it acts on (the Docker client, the HTTP route) and its grant
//! check, which runs on every call and answers a denial with a
//! `plugin-error::denied` that says which grant to add. Host functions
//! return [`HostError`], so their code uses `?`.
//!
//! Adding a capability: its WIT interface in `wit/`, a [`Capability`]
//! variant (manifest.rs: its interface name, manifest key, which kinds may
//! import it), a module here with `link` and the `Host` impl, one arm in
//! [`link`], and its service (if any) in [`crate::state::HostServices`].

pub mod container;
pub mod environment;
pub mod http;
pub mod kube;
mod kube_health;
pub mod kube_policy;
mod kube_tunnel;
pub mod kv;
pub mod log;
pub mod process;
pub mod secret_files;
mod session_tasks;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{self, PluginError};
use crate::error::HostError;
use crate::manifest::{Capabilities, Capability, Kind};
use crate::state::HostState;

impl bindings::types::Host for HostState {
    fn convert_plugin_error(&mut self, err: HostError) -> wasmtime::Result<PluginError> {
        match err {
            HostError::Plugin(e) => Ok(e),
            HostError::Trap(e) => Err(e),
        }
    }
}

/// The linker type every capability adds itself to.
pub(crate) type HostLinker = Linker<HostState>;
/// How generated `add_to_linker` functions reach the host state from the store.
pub(crate) type Data = HasSelf<HostState>;

/// Add to `linker` the interfaces `kind` may import and `grants` allow; nothing else.
pub fn link(linker: &mut Linker<HostState>, kind: Kind, grants: &Capabilities) -> wasmtime::Result<()> {
    bindings::types::add_to_linker::<HostState, Data>(linker, state)?;
    for cap in kind.importable().iter().copied().filter(|c| grants.allows(*c)) {
        match cap {
            Capability::Log => log::link(linker)?,
            Capability::Kv => kv::link(linker)?,
            Capability::Process => process::link(linker)?,
            Capability::Http => http::link(linker)?,
            Capability::Container => container::link(linker)?,
            Capability::Kube => kube::link(linker)?,
            Capability::Environment => environment::link(linker)?,
            Capability::SecretFiles => secret_files::link(linker)?,
        }
    }
    Ok(())
}

/// The host state of a store (what generated `add_to_linker` functions take).
pub(crate) fn state(s: &mut HostState) -> &mut HostState {
    s
}

/// A denial naming the component, what it asked for and the grant that would
/// allow it: `cap` with `item` added to what the component has, written as
/// the one `[capabilities]` line to put in its component.toml.
pub(crate) fn denied(state: &HostState, what: &str, cap: Capability, item: &str) -> PluginError {
    PluginError::Denied(format!(
        "component `{}` may not {what}: in the [capabilities] table of its component.toml, write `{}`, \
         rebuild, and approve it with `clauderon plugins install`",
        state.ctx.id,
        state.ctx.grants.line_granting(cap, Some(item))
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bindings::types::Host as _;
    use crate::state::{ComponentCtx, HostServices};

    fn state() -> HostState {
        let ctx = ComponentCtx {
            id: "t".into(),
            kind: Kind::Hook,
            grants: Capabilities::default(),
            requires: Default::default(),
            limits: crate::Limits::default(),
        };
        let kv = Arc::new(kv::MemoryKv::default());
        HostState::new(Arc::new(ctx), Arc::new(HostServices::new(kv, "/nonexistent".into(), vec![], false, None)))
    }

    #[test]
    fn a_plugin_error_reaches_the_component_and_a_trap_ends_the_call() {
        let mut s = state();
        let answered = s.convert_plugin_error(PluginError::NotFound("x".into()).into());
        assert!(matches!(answered, Ok(PluginError::NotFound(m)) if m == "x"));
        let trapped = s.convert_plugin_error(HostError::Trap(wasmtime::Error::msg("broken")));
        assert_eq!(trapped.expect_err("a trap is not a result").to_string(), "broken");
    }
}
