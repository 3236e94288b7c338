//! `environment`: a credential source reads the daemon's environment
//! variables, only those named in its grant.

use crate::bindings::environment::Host;
use crate::state::HostState;

impl Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        if !self.ctx.grants.env.contains(&name) {
            tracing::warn!(component = %self.ctx.id, "asked for environment variable `{name}`, which it was not granted");
            return Ok(None);
        }
        Ok(std::env::var(&name).ok())
    }
}
