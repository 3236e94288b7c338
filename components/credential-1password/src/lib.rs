//! The 1Password credential source: resolves 1Password secret references
//! (`op://vault/item/field`) with the 1Password CLI, `op read`.
//!
//! References come from two places; for a service in both, the file wins (it
//! is clauderon's own configuration, while variables like `GITHUB_TOKEN` are
//! shared with other tools):
//! - `~/.clauderon/secrets/1password.toml`, one `service = "op://…"` per line;
//! - the env source's variables (`credential_common::SERVICES`) whose value
//!   starts with `op://`, e.g. `GITHUB_TOKEN=op://Private/GitHub/token`.
//!
//! `op` runs with the daemon's `OP_SERVICE_ACCOUNT_TOKEN`, `OP_CONNECT_HOST`
//! and `OP_CONNECT_TOKEN` when set (the host passes nothing else beyond PATH,
//! HOME, USER, LANG and TERM), so a service account works headless; otherwise
//! `op` uses its own sign-in (the desktop app integration).
//!
//! Values never reach a log line or an error message: errors carry the
//! reference and `op`'s stderr, never its stdout.

use std::collections::BTreeMap;

use clauderon_sdk::process::{Command, Output};
use clauderon_sdk::{CredentialSource, Error, Result, SourceInfo, environment, log, secret_files};
use credential_common::{OP_ENV, REFERENCES_FILE, SERVICES, is_reference, op_value, parse_references};

/// How long one `op` run may take (the host caps it at 90% of the call's deadline).
const TIMEOUT_MS: u32 = 10_000;
/// More than this on stdout is not a credential.
const MAX_OUTPUT: u32 = 64 << 10;
/// How much of `op`'s stderr an error message keeps.
const MAX_STDERR: usize = 1000;

struct OnePassword;

impl CredentialSource for OnePassword {
    fn info() -> SourceInfo {
        SourceInfo { id: "1password".into(), display_name: "1Password (op CLI)".into() }
    }

    fn available() -> Result<Vec<String>> {
        let references = references()?;
        if references.is_empty() {
            return Ok(Vec::new());
        }
        // One check that `op` runs at all, not an `op read` per service.
        let services = references.into_keys().collect::<Vec<_>>();
        match op().arg("--version").output() {
            Ok(out) if out.exit_code == Some(0) => Ok(services),
            Ok(out) => {
                log::warn(&format!(
                    "1Password references are set for {}, but `op --version` failed ({}), so none is offered",
                    services.join(", "),
                    failure(&out)
                ));
                Ok(Vec::new())
            }
            Err(Error::NotFound(_)) => {
                log::warn(&format!(
                    "1Password references are set for {}, but the 1Password CLI `op` is not installed \
                     (not on the daemon's PATH), so none is offered",
                    services.join(", ")
                ));
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn get(service: String) -> Result<Option<String>> {
        match references()?.remove(&service) {
            Some(reference) => read(&service, &reference).map(Some),
            None => Ok(None),
        }
    }
}

clauderon_sdk::export_credential_source!(OnePassword);

/// Every service with a reference: `1password.toml` first, then the environment.
fn references() -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let Some(text) = secret_files::read(REFERENCES_FILE)? {
        let parsed = parse_references(&text);
        for problem in &parsed.problems {
            log::warn(&format!("{REFERENCES_FILE}: {problem}"));
        }
        out.extend(parsed.entries.into_iter().map(|e| (e.service, e.reference)));
    }
    for (service, names) in SERVICES {
        if out.contains_key(*service) {
            continue;
        }
        for name in *names {
            let Some(value) = environment::get(name) else { continue };
            let Some(reference) = op_value(&value) else { continue };
            if is_reference(reference) {
                out.insert(service.to_string(), reference.to_string());
                break;
            }
            log::warn(&format!(
                "{name} starts with op:// but is not a 1Password reference of the form op://vault/item/field; \
                 it is ignored"
            ));
        }
    }
    Ok(out)
}

/// `op`, with the daemon's 1Password sign-in variables when set.
fn op() -> Command {
    let mut cmd = Command::new("op").timeout_ms(TIMEOUT_MS).max_output_bytes(MAX_OUTPUT);
    for name in OP_ENV {
        if let Some(value) = environment::get(name).filter(|v| !v.trim().is_empty()) {
            cmd = cmd.env(name, value);
        }
    }
    cmd
}

/// `op read --no-newline <reference>`: the value, trimmed.
fn read(service: &str, reference: &str) -> Result<String> {
    let what = format!("reading `{service}` from 1Password (`op read {reference}`)");
    let out = match op().args(["read", "--no-newline", reference]).output() {
        Ok(out) => out,
        Err(Error::NotFound(_)) => {
            return Err(Error::failed(format!(
                "{what}: the 1Password CLI `op` is not installed (not on the daemon's PATH)"
            )));
        }
        Err(e) => return Err(e),
    };
    if out.timed_out || out.exit_code != Some(0) {
        return Err(Error::failed(format!("{what} failed: {}", failure(&out))));
    }
    if out.truncated {
        return Err(Error::failed(format!("{what}: it printed more than {MAX_OUTPUT} bytes, not a credential")));
    }
    // Never put stdout (the value) in a message, not even in a UTF-8 error.
    let Ok(value) = String::from_utf8(out.stdout) else {
        return Err(Error::failed(format!("{what}: it printed something that is not text")));
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::failed(format!("{what}: it printed nothing (is the field empty?)")));
    }
    Ok(value.to_string())
}

/// Why a finished `op` run failed, from its exit and stderr (never stdout).
fn failure(out: &Output) -> String {
    if out.timed_out {
        return format!(
            "it did not finish within {} s; is 1Password locked or waiting for approval?",
            TIMEOUT_MS / 1000
        );
    }
    let code = out.exit_code.map_or_else(|| "it was killed by a signal".to_string(), |c| format!("exit code {c}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if stderr.is_empty() {
        return code;
    }
    let mut end = stderr.len().min(MAX_STDERR);
    while !stderr.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < stderr.len() { " […]" } else { "" };
    format!("{code}: {}{cut}", &stderr[..end])
}
