//! `secret-files`: a credential source reads files from clauderon's secrets
//! directory, by plain name only.

use crate::bindings::PluginError;
use crate::bindings::secret_files::Host;
use crate::error::HostError;
use crate::state::HostState;

/// Add `secret-files` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::secret_files::add_to_linker::<HostState, super::Data>(linker, super::state)
}

fn check_name(name: &str) -> Result<(), PluginError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(PluginError::InvalidInput(format!("`{name}` is not a plain secret file name"))) }
}

impl Host for HostState {
    async fn read(&mut self, name: String) -> Result<Option<String>, HostError> {
        check_name(&name)?;
        let path = self.services.secrets_dir.join(&name);
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PluginError::Failed(format!("reading secret `{name}`: {e}")).into()),
        }
    }

    async fn names(&mut self) -> Result<Vec<String>, HostError> {
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(&self.services.secrets_dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(PluginError::Failed(format!("listing secrets: {e}")).into()),
        };
        while let Ok(Some(entry)) = dir.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_name(&name).is_ok() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}
