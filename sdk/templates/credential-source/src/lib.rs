//! Template credential source: provides the `example` credential from the
//! clauderon daemon's `EXAMPLE_TOKEN` environment variable.
//!
//! Only the host calls a credential source, and the values it returns stay in
//! the host: they never reach a session, another component or a log line. So
//! never log a value, and never put one in an error message.
//!
//! `component.toml` grants `env = ["EXAMPLE_TOKEN"]`; reading any other
//! variable returns `None`.

use clauderon_sdk::{CredentialSource, Result, SourceInfo, environment};

/// The service this source provides, as the proxy's rules and agents name it.
const SERVICE: &str = "example";

/// Where the credential comes from.
const VARIABLE: &str = "EXAMPLE_TOKEN";

struct ExampleCredentials;

impl CredentialSource for ExampleCredentials {
    fn info() -> SourceInfo {
        SourceInfo { id: "example-credentials".into(), display_name: "EXAMPLE_TOKEN variable (example)".into() }
    }

    fn available() -> Result<Vec<String>> {
        // Names only: say what we could provide, never the value.
        Ok(if token().is_some() { vec![SERVICE.into()] } else { Vec::new() })
    }

    fn get(service: String) -> Result<Option<String>> {
        // Another service is not an error: this source just has none.
        Ok(if service == SERVICE { token() } else { None })
    }
}

clauderon_sdk::export_credential_source!(ExampleCredentials);

/// The token, if the variable is set and not empty.
fn token() -> Option<String> {
    environment::get(VARIABLE).filter(|v| !v.trim().is_empty())
}
