//! The `file` credential source: service `X` is the file `X` in clauderon's
//! secrets directory (`~/.clauderon/secrets/X`), its contents trimmed.
//!
//! Only files named like a service (lowercase letters, digits, `-`) count, so
//! `1password.toml` (the 1Password source's references), hidden files and
//! editor backups are never offered. An empty file is no credential.
//!
//! Values never reach a log line or an error message.

use clauderon_sdk::{CredentialSource, Result, SourceInfo, log, secret_files};
use credential_common::{REFERENCES_FILE, is_service_name};

struct File;

impl CredentialSource for File {
    fn info() -> SourceInfo {
        SourceInfo { id: "file".into(), display_name: "Files in ~/.clauderon/secrets".into() }
    }

    fn available() -> Result<Vec<String>> {
        let mut services = Vec::new();
        for name in secret_files::names()? {
            if !is_service_file(&name) {
                continue;
            }
            // A file that cannot be read is skipped, not fatal: the others still count.
            match secret_files::read(&name) {
                Ok(Some(value)) if !value.is_empty() => services.push(name),
                Ok(_) => {}
                Err(e) => log::warn(&format!("skipping secret file `{name}`: {}", e.message())),
            }
        }
        services.sort();
        Ok(services)
    }

    fn get(service: String) -> Result<Option<String>> {
        // Another name is not an error: this source just has no such credential.
        if !is_service_file(&service) {
            return Ok(None);
        }
        Ok(secret_files::read(&service)?.filter(|value| !value.is_empty()))
    }
}

clauderon_sdk::export_credential_source!(File);

/// Whether the secret file `name` holds a service's credential.
fn is_service_file(name: &str) -> bool {
    is_service_name(name) && name != REFERENCES_FILE && !name.starts_with('.')
}
