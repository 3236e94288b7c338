//! Where a session may connect: its egress policy. The proxy forwards a
//! session's request (a `CONNECT` tunnel, a plain `http://` request, every
//! request inside a tunnel) only to a host its policy allows, and answers
//! anything else with 403 naming the setting, audited as blocked.
//!
//! A session is either `allow-all` or `allow-list`. An allow-list session may
//! reach the daemon's list ([`EgressConfig`]: the built-in [`BUILTIN`] hosts
//! — the agents' APIs, GitHub, the common package registries — plus
//! `[egress] allow`, plus the hosts of the configured injection rules) and
//! the hosts its own [`EgressPolicy`] adds. The policy changes live, like the
//! access mode; a change that takes a host away ends the session's open
//! connections.
//!
//! This module also owns what a host pattern is (`api.example.com`, or
//! `*.example.com` for any subdomain) for the injection rules.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Hosts every allow-list session may reach unless `[egress] builtin = false`:
/// the agents' APIs and sign-in, GitHub, and the common package registries
/// (every host a built-in injection rule covers is here).
pub const BUILTIN: &[&str] = &[
    // Claude Code
    "api.anthropic.com",
    "console.anthropic.com",
    "statsig.anthropic.com",
    "claude.ai",
    // Codex
    "api.openai.com",
    "auth.openai.com",
    "chatgpt.com",
    // Gemini CLI
    "generativelanguage.googleapis.com",
    "cloudcode-pa.googleapis.com",
    "oauth2.googleapis.com",
    // GitHub
    "github.com",
    "api.github.com",
    "uploads.github.com",
    "codeload.github.com",
    "*.githubusercontent.com",
    "ghcr.io",
    // Services with built-in injection rules
    "api.pagerduty.com",
    "sentry.io",
    "*.sentry.io",
    // Package registries
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    "static.rust-lang.org",
    "proxy.golang.org",
    "sum.golang.org",
    "rubygems.org",
    "index.rubygems.org",
    "repo.maven.apache.org",
    "repo1.maven.org",
    "registry-1.docker.io",
    "auth.docker.io",
    "production.cloudflare.docker.com",
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "security.ubuntu.com",
    "dl-cdn.alpinelinux.org",
];

/// How a session's egress is decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EgressMode {
    /// Only the daemon's list and the session's own hosts.
    #[default]
    AllowList,
    /// Any host (the proxy's other checks still apply: never loopback or this
    /// machine, private addresses only where configured).
    AllowAll,
}

impl EgressMode {
    /// The name used in config, CLI and API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowList => "allow-list",
            Self::AllowAll => "allow-all",
        }
    }
}

impl std::str::FromStr for EgressMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow-list" => Ok(Self::AllowList),
            "allow-all" => Ok(Self::AllowAll),
            other => Err(format!("unknown egress mode `{other}` (allow-list or allow-all)")),
        }
    }
}

/// A session's egress policy: the one definition (the session model, the
/// API and the CLI use it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressPolicy {
    /// `allow-list`: the daemon's list plus `hosts`; `allow-all`: any host.
    #[serde(default)]
    pub mode: EgressMode,
    /// Hosts this session may reach besides the daemon's list: names
    /// (`api.example.com`) or `*.example.com` for any subdomain.
    #[serde(default)]
    #[schema(schema_with = host_list_schema)]
    pub hosts: Vec<String>,
}

impl EgressPolicy {
    /// The policy with its hosts checked, lower-cased, sorted and deduplicated.
    pub fn normalised(mut self) -> Result<Self, String> {
        for host in &mut self.hosts {
            *host = check_pattern(host)?;
        }
        self.hosts.sort();
        self.hosts.dedup();
        Ok(self)
    }

    /// Whether this policy allows every host `other` allows (so changing
    /// from `other` to this takes nothing away).
    pub fn covers(&self, other: &EgressPolicy) -> bool {
        match (self.mode, other.mode) {
            (EgressMode::AllowAll, _) => true,
            (EgressMode::AllowList, EgressMode::AllowAll) => false,
            (EgressMode::AllowList, EgressMode::AllowList) => other.hosts.iter().all(|h| self.hosts.contains(h)),
        }
    }

    /// One line for people: `allow-all`, or `allow-list` and the added hosts.
    pub fn describe(&self) -> String {
        match (self.mode, self.hosts.is_empty()) {
            (EgressMode::AllowAll, _) => "allow-all".into(),
            (EgressMode::AllowList, true) => "allow-list".into(),
            (EgressMode::AllowList, false) => format!("allow-list + {}", self.hosts.join(", ")),
        }
    }
}

/// `[egress]` in `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// The mode a session gets when its create does not choose one.
    pub default: EgressMode,
    /// Whether the built-in list ([`BUILTIN`]) is part of the daemon's list.
    pub builtin: bool,
    /// More hosts every allow-list session may reach.
    pub allow: Vec<String>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self { default: EgressMode::AllowList, builtin: true, allow: Vec::new() }
    }
}

impl EgressConfig {
    /// The daemon's list: the built-in hosts (unless turned off), `allow`,
    /// and `rule_hosts` (the configured injection rules' hosts: a host the
    /// user set a credential up for is meant to be reached).
    pub fn host_set<'a>(&'a self, rule_hosts: impl IntoIterator<Item = &'a str>) -> Result<HostSet, String> {
        let builtin = if self.builtin { BUILTIN } else { &[] };
        let mut patterns = Vec::new();
        for p in builtin.iter().copied().chain(self.allow.iter().map(String::as_str)).chain(rule_hosts) {
            patterns.push(check_pattern(p).map_err(|e| format!("[egress] allow: {e}"))?);
        }
        Ok(HostSet::new(patterns.iter().map(String::as_str)))
    }
}

/// A host as patterns see it: ASCII lower case, without a trailing dot or
/// an IPv6 literal's brackets.
fn normal(host: &str) -> String {
    host.trim_end_matches('.').trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()
}

/// Whether `pattern` (`api.example.com`, or `*.example.com` for any
/// subdomain of example.com, not example.com itself) names `host`; case and
/// a trailing dot do not matter.
pub fn pattern_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.trim_end_matches('.'), host.trim_end_matches('.'));
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            // Bytes, not str slices: a host with non-ASCII characters must
            // not split one (found by fuzz/fuzz_targets/rules.rs).
            let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host[host.len() - suffix.len() - 1] == b'.'
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

/// What [`check_pattern`] accepts, as the API's document states it
/// (ECMAScript syntax): DNS labels of letters, digits, `-` and `_`, an
/// optional `*.` first and an optional dot last; at most 253 characters.
pub const PATTERN_SYNTAX: &str =
    r"^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$";

/// `pattern` checked and normalised (lower case, no trailing dot): a DNS
/// name (an IPv4 address is one), or `*.` and a DNS name — exactly
/// [`PATTERN_SYNTAX`]. Nothing is trimmed: what is stored is what was meant.
pub fn check_pattern(pattern: &str) -> Result<String, String> {
    if pattern == "*" {
        return Err("`*` is not a host; use the allow-all egress mode to allow every host".into());
    }
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if pattern.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "`{pattern}` is not a host name (write `api.example.com`, or `*.example.com` for its subdomains; no scheme, port or path)"
        ));
    }
    Ok(pattern.trim_end_matches('.').to_ascii_lowercase())
}

/// The document's schema for a list of host patterns.
fn host_list_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(PATTERN_SYNTAX))
        .max_length(Some(253))
        .description(Some("`api.example.com`, or `*.example.com` for its subdomains"));
    ArrayBuilder::new().items(item).build()
}

/// Host patterns compiled for lookup: one hash probe per label of the host.
#[derive(Debug, Clone, Default)]
pub struct HostSet {
    exact: HashSet<String>,
    /// `example.com` for the pattern `*.example.com`.
    subdomains_of: HashSet<String>,
}

impl HostSet {
    /// The set of `patterns` (already checked with [`check_pattern`]).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Self::default();
        for p in patterns {
            let p = normal(p);
            match p.strip_prefix("*.") {
                Some(suffix) => set.subdomains_of.insert(suffix.to_string()),
                None => set.exact.insert(p),
            };
        }
        set
    }

    /// Whether a pattern in the set names `host`.
    pub fn contains(&self, host: &str) -> bool {
        let host = normal(host);
        if self.exact.contains(&host) {
            return true;
        }
        host.match_indices('.').any(|(i, _)| i > 0 && self.subdomains_of.contains(&host[i + 1..]))
    }

    /// How many patterns it holds.
    pub fn len(&self) -> usize {
        self.exact.len() + self.subdomains_of.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_hosts_and_their_subdomains() {
        assert!(pattern_matches("api.github.com", "API.GitHub.com."));
        assert!(pattern_matches("*.example.com", "a.b.example.com"));
        assert!(!pattern_matches("*.example.com", "example.com"));
        assert!(!pattern_matches("*.example.com", "evilexample.com"));
        assert!(!pattern_matches("example.com", "example.com.evil"));
    }

    #[test]
    fn a_host_set_agrees_with_the_patterns() {
        let patterns = ["api.github.com", "*.example.com", "10.1.2.3", "*.deep.example.org", "::1"];
        // (`::1` is not a pattern check_pattern accepts; the set still compares it as written.)
        let set = HostSet::new(patterns);
        for host in [
            "api.github.com",
            "API.GITHUB.COM.",
            "github.com",
            "example.com",
            "x.example.com",
            "x.y.example.com",
            ".example.com",
            "evilexample.com",
            "example.com.evil",
            "10.1.2.3",
            "10.1.2.4",
            "deep.example.org",
            "a.deep.example.org",
            "[::1]",
            "é.example.com",
        ] {
            let by_pattern = patterns.iter().any(|p| pattern_matches(p, &normal(host)));
            assert_eq!(set.contains(host), by_pattern, "{host}");
        }
        assert!(set.contains("x.example.com") && !set.contains("example.com"));
    }

    #[test]
    fn patterns_are_checked() {
        assert_eq!(check_pattern("Example.COM.").as_deref(), Ok("example.com"));
        assert_eq!(check_pattern("*.Example.com").as_deref(), Ok("*.example.com"));
        assert_eq!(check_pattern("10.1.2.3").as_deref(), Ok("10.1.2.3"));
        for bad in [
            "*",
            "",
            " example.com",
            "https://example.com",
            "example.com:443",
            "example.com/x",
            "a..b",
            "-a.com",
            "*.",
            "a b",
            "[2001:db8::1]",
            "é.com",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert!(check_pattern(&"a".repeat(254)).is_err() && check_pattern(&"a.".repeat(126)).is_ok());
    }

    #[test]
    fn every_built_in_host_is_a_valid_pattern_and_covers_the_built_in_rules() {
        for p in BUILTIN {
            assert_eq!(check_pattern(p).as_deref(), Ok(*p));
        }
        let set = EgressConfig::default().host_set([]).expect("the built-in list");
        for rule in crate::RuleSet::new(None, Vec::new()).rules() {
            for host in &rule.hosts {
                let probe = match host.strip_prefix("*.") {
                    Some(parent) => format!("x.{parent}"),
                    None => host.clone(),
                };
                assert!(set.contains(&probe), "{host}");
            }
        }
    }

    #[test]
    fn a_policy_covers_another_when_it_takes_nothing_away() {
        let list = |hosts: &[&str]| EgressPolicy {
            mode: EgressMode::AllowList,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        let all = EgressPolicy { mode: EgressMode::AllowAll, hosts: Vec::new() };
        assert!(all.covers(&list(&["a.com"])));
        assert!(!list(&["a.com"]).covers(&all));
        assert!(list(&["a.com", "b.com"]).covers(&list(&["a.com"])));
        assert!(!list(&["b.com"]).covers(&list(&["a.com"])));
        let normalised = list(&["B.com", "a.com", "b.com"]).normalised().expect("valid");
        assert_eq!(normalised.hosts, ["a.com", "b.com"]);
        assert!(list(&["https://x"]).normalised().is_err());
    }
}
