//! `secret-files`: a credential source reads files from clauderon's secrets
//! directory, by plain name only.

use crate::bindings::PluginError;
use crate::bindings::secret_files::Host;
use crate::state::HostState;

fn check_name(name: &str) -> Result<(), PluginError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(PluginError::InvalidInput(format!("`{name}` is not a plain secret file name"))) }
}

impl Host for HostState {
    async fn read(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, PluginError>> {
        if let Err(e) = check_name(&name) {
            return Ok(Err(e));
        }
        let path = self.services.secrets_dir.join(&name);
        Ok(match tokio::fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PluginError::Failed(format!("reading secret `{name}`: {e}"))),
        })
    }

    async fn names(&mut self) -> wasmtime::Result<Result<Vec<String>, PluginError>> {
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(&self.services.secrets_dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(out)),
            Err(e) => return Ok(Err(PluginError::Failed(format!("listing secrets: {e}")))),
        };
        while let Ok(Some(entry)) = dir.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_name(&name).is_ok() {
                out.push(name);
            }
        }
        out.sort();
        Ok(Ok(out))
    }
}
