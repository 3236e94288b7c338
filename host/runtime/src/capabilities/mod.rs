//! The host side of each capability interface, one module per capability.
//! Each checks the calling component's grant on every call and answers a
//! denial with a `plugin-error::denied` that says which grant to add.

pub mod container;
pub mod environment;
pub mod http;
pub mod kube;
pub mod kv;
pub mod log;
pub mod process;
pub mod secret_files;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{self, PluginError};
use crate::manifest::{Capabilities, Capability, Kind};
use crate::state::HostState;

impl bindings::types::Host for HostState {}

/// Add to `linker` the interfaces `kind` may import and `grants` allow; nothing else.
pub fn link(linker: &mut Linker<HostState>, kind: Kind, grants: &Capabilities) -> wasmtime::Result<()> {
    type S = HasSelf<HostState>;
    bindings::types::add_to_linker::<HostState, S>(linker, id)?;
    for cap in kind.importable().iter().copied().filter(|c| grants.allows(*c)) {
        match cap {
            Capability::Log => bindings::log::add_to_linker::<HostState, S>(linker, id)?,
            Capability::Kv => bindings::kv::add_to_linker::<HostState, S>(linker, id)?,
            Capability::Process => bindings::process::add_to_linker::<HostState, S>(linker, id)?,
            Capability::Http => bindings::http::add_to_linker::<HostState, S>(linker, id)?,
            Capability::Container => bindings::container::add_to_linker::<HostState, S>(linker, id)?,
            Capability::Kube => bindings::kube::add_to_linker::<HostState, S>(linker, id)?,
            Capability::Environment => bindings::environment::add_to_linker::<HostState, S>(linker, id)?,
            Capability::SecretFiles => bindings::secret_files::add_to_linker::<HostState, S>(linker, id)?,
        }
    }
    Ok(())
}

fn id(s: &mut HostState) -> &mut HostState {
    s
}

/// A denial naming the component, what it asked for and the grant to add.
pub(crate) fn denied(state: &HostState, what: &str, grant: &str) -> PluginError {
    PluginError::Denied(format!(
        "component `{}` may not {what}: add {grant} to the [capabilities] of its component.toml \
         and approve it with `clauderon plugins install`",
        state.ctx.id
    ))
}
