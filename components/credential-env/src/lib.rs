//! The `env` credential source: credentials from the clauderon daemon's
//! environment variables, e.g. `github` from `GITHUB_TOKEN` (or `GH_TOKEN`).
//! The table of services and variables is `credential_common::SERVICES`; the
//! first variable that holds a credential wins.
//!
//! A value starting with `op://` is a 1Password reference, not a credential:
//! this source treats it as unset and the 1Password source resolves it. Blank
//! values are unset too.
//!
//! Values never reach a log line or an error message.

use clauderon_sdk::{CredentialSource, Result, SourceInfo, environment};
use credential_common::{SERVICES, env_names, plain_value};

struct Env;

impl CredentialSource for Env {
    fn info() -> SourceInfo {
        SourceInfo { id: "env".into(), display_name: "Environment variables".into() }
    }

    fn available() -> Result<Vec<String>> {
        let mut services: Vec<String> =
            SERVICES.iter().filter(|(service, _)| value(service).is_some()).map(|(s, _)| s.to_string()).collect();
        services.sort();
        Ok(services)
    }

    fn get(service: String) -> Result<Option<String>> {
        Ok(value(&service))
    }
}

clauderon_sdk::export_credential_source!(Env);

/// The credential for `service`: the first of its variables that is set, not
/// blank and not a 1Password reference, trimmed.
fn value(service: &str) -> Option<String> {
    env_names(service)
        .iter()
        .find_map(|name| environment::get(name).as_deref().and_then(plain_value).map(str::to_owned))
}
