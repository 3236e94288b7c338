//! What the bundled credential sources (`env`, `file`, 1Password) share: the
//! table of services and the environment variables that hold them, the rule
//! for service names, and 1Password references.
//!
//! Pure functions over strings: the sources call the host, this crate only
//! decides what the text means. Nothing here logs, and no message built here
//! quotes a value or a line of a secret file (someone may have pasted a real
//! credential where a reference belongs).

use std::fmt;

/// The services the environment knows, each with the daemon's environment
/// variables that may hold its credential, most preferred first.
///
/// The `env` manifest grants exactly these variables and the 1Password one
/// these plus [`OP_ENV`]; a test below keeps the manifests in step.
pub const SERVICES: &[(&str, &[&str])] = &[
    ("github", &["GITHUB_TOKEN", "GH_TOKEN"]),
    ("anthropic", &["ANTHROPIC_API_KEY"]),
    ("claude-oauth", &["CLAUDE_CODE_OAUTH_TOKEN"]),
    ("openai", &["OPENAI_API_KEY", "CODEX_API_KEY"]),
    ("gemini", &["GEMINI_API_KEY", "GOOGLE_API_KEY"]),
    ("pagerduty", &["PAGERDUTY_TOKEN", "PAGERDUTY_API_KEY"]),
    ("sentry", &["SENTRY_AUTH_TOKEN"]),
    ("npm", &["NPM_TOKEN"]),
    // The value is `user:token`.
    ("docker-hub", &["DOCKER_HUB_TOKEN"]),
    ("grafana", &["GRAFANA_API_KEY", "GRAFANA_TOKEN"]),
];

/// The variables that may hold `service`'s credential, most preferred first
/// (none for a service the table does not know).
pub fn env_names(service: &str) -> &'static [&'static str] {
    SERVICES.iter().find(|(s, _)| *s == service).map_or(&[], |(_, names)| names)
}

/// Variables that tell `op` how to sign in without a person (service account,
/// Connect server); passed to `op` when the daemon has them.
pub const OP_ENV: [&str; 3] = ["OP_SERVICE_ACCOUNT_TOKEN", "OP_CONNECT_HOST", "OP_CONNECT_TOKEN"];

/// The secret file holding `service = "op://vault/item/field"` lines.
pub const REFERENCES_FILE: &str = "1password.toml";

/// How every 1Password secret reference starts.
pub const OP_SCHEME: &str = "op://";

/// A credential read from an environment variable, trimmed; `None` when it is
/// blank or a 1Password reference (`op://…`, which is not a credential: the
/// 1Password source resolves it).
pub fn plain_value(raw: &str) -> Option<&str> {
    let value = raw.trim();
    (!value.is_empty() && !value.starts_with(OP_SCHEME)).then_some(value)
}

/// A variable's value trimmed, if it is meant as a 1Password reference (starts
/// with `op://`); check it with [`is_reference`].
pub fn op_value(raw: &str) -> Option<&str> {
    let value = raw.trim();
    value.starts_with(OP_SCHEME).then_some(value)
}

/// Whether `name` can name a service: lowercase ASCII letters, digits and `-`.
pub fn is_service_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `s` is a 1Password secret reference `op://vault/item/field`: three
/// non-blank segments (spaces inside are fine), no control characters.
pub fn is_reference(s: &str) -> bool {
    let Some(path) = s.strip_prefix(OP_SCHEME) else { return false };
    let segments: Vec<&str> = path.split('/').collect();
    segments.len() == 3 && segments.iter().all(|seg| !seg.trim().is_empty()) && !path.chars().any(char::is_control)
}

/// One usable line of `1password.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The service, e.g. `github`.
    pub service: String,
    /// Its reference, e.g. `op://Private/GitHub/token`.
    pub reference: String,
    /// The line it is on (from 1).
    pub line: usize,
}

/// Why a line of `1password.toml` was skipped. The message names the line and,
/// when the key is a valid service name, the service; never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not `service = "…"` (or `'…'`), optionally followed by a `#` comment.
    Syntax { line: usize },
    /// The key is not a service name.
    BadService { line: usize },
    /// The value is not `op://vault/item/field`.
    BadReference { line: usize, service: String },
    /// The service already has a reference on an earlier line, which is used.
    Duplicate { line: usize, service: String, first: usize },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Syntax { line } => {
                write!(f, "line {line} is not `service = \"op://vault/item/field\"`; it is skipped")
            }
            Problem::BadService { line } => write!(
                f,
                "line {line}: the name before `=` must be a service name (lowercase letters, digits and dashes); \
                 it is skipped"
            ),
            Problem::BadReference { line, service } => write!(
                f,
                "line {line}: the value for `{service}` is not a 1Password reference of the form \
                 \"op://vault/item/field\"; it is skipped"
            ),
            Problem::Duplicate { line, service, first } => {
                write!(f, "line {line}: `{service}` already has a reference on line {first}, which is used")
            }
        }
    }
}

/// What `1password.toml` says: the usable references and the skipped lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Usable references, in file order, one per service.
    pub entries: Vec<Reference>,
    /// Lines that were skipped, and why.
    pub problems: Vec<Problem>,
}

/// Parse `1password.toml`: one `service = "op://vault/item/field"` per line
/// (single quotes work too; no escapes), blank lines and `#` comments ignored,
/// a `#` comment allowed after the value.
pub fn parse_references(text: &str) -> References {
    let mut out = References::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some((service, reference))) => {
                if let Some(first) = out.entries.iter().find(|e| e.service == service) {
                    let first = first.line;
                    out.problems.push(Problem::Duplicate { line: line_no, service: service.into(), first });
                } else {
                    out.entries.push(Reference { service: service.into(), reference: reference.into(), line: line_no });
                }
            }
            Err(LineError::Syntax) => out.problems.push(Problem::Syntax { line: line_no }),
            Err(LineError::BadService) => out.problems.push(Problem::BadService { line: line_no }),
            Err(LineError::BadReference(service)) => {
                out.problems.push(Problem::BadReference { line: line_no, service: service.into() })
            }
        }
    }
    out
}

enum LineError<'a> {
    Syntax,
    BadService,
    BadReference(&'a str),
}

/// `Ok(None)` for a blank or comment line, else (service, reference).
fn parse_line(line: &str) -> Result<Option<(&str, &str)>, LineError<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (key, rest) = line.split_once('=').ok_or(LineError::Syntax)?;
    let key = key.trim();
    let key = key.strip_prefix('"').and_then(|k| k.strip_suffix('"')).unwrap_or(key);
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\'')).ok_or(LineError::Syntax)?;
    let body = &rest[1..];
    let end = body.find(quote).ok_or(LineError::Syntax)?;
    let (value, after) = (&body[..end], body[end + 1..].trim_start());
    // A backslash in a double-quoted TOML string is an escape this parser does not do.
    if !(after.is_empty() || after.starts_with('#')) || (quote == '"' && value.contains('\\')) {
        return Err(LineError::Syntax);
    }
    if !is_service_name(key) {
        return Err(LineError::BadService);
    }
    let value = value.trim();
    if !is_reference(value) {
        return Err(LineError::BadReference(key));
    }
    Ok(Some((key, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_unique_valid_services_and_variables() {
        let mut names: Vec<&str> = SERVICES.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "a variable is listed twice");
        assert!(SERVICES.iter().all(|(s, n)| is_service_name(s) && !n.is_empty()));
        assert_eq!(env_names("github"), ["GITHUB_TOKEN", "GH_TOKEN"]);
        assert!(env_names("nope").is_empty());
    }

    /// The strings of `key = [ "…", … ]` in a manifest.
    fn manifest_list(manifest: &str, key: &str) -> Vec<String> {
        let start = manifest.find(&format!("\n{key} = [")).unwrap_or_else(|| panic!("no `{key} = [`"));
        let list = &manifest[start..];
        let list = &list[list.find('[').expect("[") + 1..list.find(']').expect("]")];
        list.split(',').map(|s| s.trim().trim_matches('"').to_string()).filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn the_manifests_grant_exactly_the_table() {
        let table: Vec<String> = SERVICES.iter().flat_map(|(_, n)| n.iter().map(|s| s.to_string())).collect();
        let env = manifest_list(include_str!("../../credential-env/component.toml"), "env");
        assert_eq!(env, table);
        let op = manifest_list(include_str!("../../credential-1password/component.toml"), "env");
        let expected: Vec<String> = table.iter().cloned().chain(OP_ENV.iter().map(|s| s.to_string())).collect();
        assert_eq!(op, expected);
        let process = manifest_list(include_str!("../../credential-1password/component.toml"), "process");
        assert_eq!(process, ["op"]);
    }

    #[test]
    fn plain_values_skip_blanks_and_references() {
        assert_eq!(plain_value("  ghp_x \n"), Some("ghp_x"));
        assert_eq!(plain_value("user:token"), Some("user:token"));
        assert_eq!(plain_value("   "), None);
        assert_eq!(plain_value(""), None);
        assert_eq!(plain_value(" op://Private/GitHub/token"), None);
        assert_eq!(plain_value("op://broken"), None);
        assert_eq!(op_value(" op://Private/GitHub/token "), Some("op://Private/GitHub/token"));
        assert_eq!(op_value("ghp_x"), None);
    }

    #[test]
    fn service_names() {
        for ok in ["github", "docker-hub", "claude-oauth", "k8s"] {
            assert!(is_service_name(ok), "{ok}");
        }
        for bad in ["", "GitHub", "my_token", "1password.toml", ".hidden", "a/b", "..", "a b"] {
            assert!(!is_service_name(bad), "{bad}");
        }
    }

    #[test]
    fn references_have_exactly_three_segments() {
        for ok in ["op://Private/GitHub/token", "op://Work Vault/Claude Code/credential", "op://v/i/f"] {
            assert!(is_reference(ok), "{ok}");
        }
        for bad in [
            "op://",
            "op://v/i",
            "op://v/i/s/f",
            "op://v//f",
            "op://v/i/",
            "op:// /i/f",
            "op://v/i/f\n",
            "OP://v/i/f",
            "ghp_x",
            "op:/v/i/f",
        ] {
            assert!(!is_reference(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_references_file_is_parsed_and_bad_lines_are_reported_without_values() {
        let text = "# clauderon's 1Password references\n\
                    github = \"op://Private/GitHub/token\"\n\
                    \n\
                    claude-oauth = 'op://Work Vault/Claude Code/credential'   # spaces are fine\n\
                    \"npm\"=\"op://Private/npm/token\"\n\
                    grafana = \"glsa_canary_value\"\n\
                    Bad_Name = \"op://Private/X/y\"\n\
                    ghp_canary_line\n\
                    sentry = op://Private/Sentry/token\n\
                    github = \"op://Private/Other/token\"\n\
                    openai = \"op://Private/OpenAI/key\" trailing\n\
                    [section]\n\
                    pagerduty = \"op://Private/Pager\\Duty/key\"\n";
        let parsed = parse_references(text);
        let entries: Vec<(&str, &str, usize)> =
            parsed.entries.iter().map(|e| (e.service.as_str(), e.reference.as_str(), e.line)).collect();
        assert_eq!(
            entries,
            [
                ("github", "op://Private/GitHub/token", 2),
                ("claude-oauth", "op://Work Vault/Claude Code/credential", 4),
                ("npm", "op://Private/npm/token", 5),
            ]
        );
        assert_eq!(
            parsed.problems,
            [
                Problem::BadReference { line: 6, service: "grafana".into() },
                Problem::BadService { line: 7 },
                Problem::Syntax { line: 8 },
                Problem::Syntax { line: 9 },
                Problem::Duplicate { line: 10, service: "github".into(), first: 2 },
                Problem::Syntax { line: 11 },
                Problem::Syntax { line: 12 },
                Problem::Syntax { line: 13 },
            ]
        );
        for p in &parsed.problems {
            let msg = p.to_string();
            assert!(!msg.contains("canary") && !msg.contains("op://Private"), "{msg}");
        }
    }
}
