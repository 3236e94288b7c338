//! Injection rules: which hosts get which credential in which header. Built-in
//! rules cover GitHub (API and git over HTTPS), Anthropic, OpenAI, Gemini,
//! PagerDuty, Sentry, npm, Docker Hub and Grafana; `config.toml` adds more
//! (`[[proxy.rules]]`). Credentials only ever go into request headers of the
//! matched hosts, never into bodies or URLs.

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// How a credential becomes a header value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `Bearer <credential>`.
    Bearer,
    /// The credential as it is.
    Raw,
    /// `Basic base64(<user>:<credential>)`, or `Basic base64(<credential>)`
    /// when the credential is already `user:password` (no user given).
    Basic,
    /// `<prefix><credential>`, e.g. PagerDuty's `Token token=`.
    Prefix,
}

/// One way to authenticate a request: a credential, a header, a format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    /// The credential's service name (what credential sources provide).
    pub service: String,
    /// The header to set.
    pub header: String,
    /// How to write the value.
    pub format: Format,
    /// The user for [`Format::Basic`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The prefix for [`Format::Prefix`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl Injection {
    fn new(service: &str, header: &str, format: Format) -> Self {
        Self { service: service.into(), header: header.into(), format, user: None, prefix: None }
    }

    /// The header value carrying `credential`.
    pub fn value(&self, credential: &str) -> Option<HeaderValue> {
        let text = match self.format {
            Format::Bearer => format!("Bearer {credential}"),
            Format::Raw => credential.to_string(),
            Format::Prefix => format!("{}{credential}", self.prefix.as_deref().unwrap_or("")),
            Format::Basic => {
                let pair = match &self.user {
                    Some(user) => format!("{user}:{credential}"),
                    None => credential.to_string(),
                };
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
            }
        };
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// A rule: the hosts it covers, the injections to try in order (the first
/// whose credential is available wins) and the placeholder headers removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name shown in the audit.
    pub name: String,
    /// Exact host names, or `*.example.com` for any subdomain.
    pub hosts: Vec<String>,
    /// What to inject, in order of preference.
    pub inject: Vec<Injection>,
    /// Headers the agent may have put a placeholder in; removed when a
    /// credential is injected. Each injection's own header is always replaced.
    #[serde(default)]
    pub strip: Vec<String>,
}

impl Rule {
    fn new(name: &str, hosts: &[&str], inject: Vec<Injection>, strip: &[&str]) -> Self {
        Self {
            name: name.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            inject,
            strip: strip.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// Whether the rule covers `host` (see [`crate::hosts::pattern_matches`]).
    pub fn covers(&self, host: &str) -> bool {
        self.hosts.iter().any(|pattern| crate::hosts::pattern_matches(pattern, host))
    }

    /// Remove the placeholders and set `injection`'s header. Returns false
    /// (and changes nothing) if the credential cannot be a header value.
    pub fn apply(&self, headers: &mut HeaderMap, injection: &Injection, credential: &str) -> bool {
        let Some(value) = injection.value(credential) else { return false };
        let Ok(name) = HeaderName::from_bytes(injection.header.as_bytes()) else { return false };
        for strip in self.strip.iter().chain(self.inject.iter().map(|i| &i.header)) {
            if let Ok(strip) = HeaderName::from_bytes(strip.as_bytes()) {
                headers.remove(strip);
            }
        }
        headers.insert(name, value);
        true
    }
}

/// Every rule in force, built-in first then configured.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// The built-in rules (Grafana only when its host is configured), then `extra`.
    /// A configured rule for a host a built-in covers takes precedence.
    pub fn new(grafana_host: Option<&str>, extra: Vec<Rule>) -> Self {
        let mut rules = extra;
        rules.extend(builtin(grafana_host));
        Self { rules }
    }

    /// The rule covering `host`, if any.
    pub fn find(&self, host: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.covers(host))
    }

    /// Every rule, in match order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every service any rule can inject, sorted and deduplicated.
    pub fn services(&self) -> Vec<String> {
        let mut out: Vec<String> = self.rules.iter().flat_map(|r| r.inject.iter().map(|i| i.service.clone())).collect();
        out.sort();
        out.dedup();
        out
    }
}

fn builtin(grafana_host: Option<&str>) -> Vec<Rule> {
    use Format::{Basic, Bearer, Raw};
    let mut github_git = Injection::new("github", "authorization", Basic);
    github_git.user = Some("x-access-token".into());
    let mut pagerduty = Injection::new("pagerduty", "authorization", Format::Prefix);
    pagerduty.prefix = Some("Token token=".into());
    let mut rules = vec![
        Rule::new(
            "github-api",
            &["api.github.com", "uploads.github.com"],
            vec![Injection::new("github", "authorization", Bearer)],
            &[],
        ),
        Rule::new("github-git", &["github.com"], vec![github_git], &[]),
        Rule::new(
            "anthropic",
            &["api.anthropic.com"],
            vec![
                Injection::new("anthropic", "x-api-key", Raw),
                Injection::new("claude-oauth", "authorization", Bearer),
            ],
            &[],
        ),
        Rule::new("openai", &["api.openai.com"], vec![Injection::new("openai", "authorization", Bearer)], &[]),
        Rule::new(
            "gemini",
            &["generativelanguage.googleapis.com"],
            vec![Injection::new("gemini", "x-goog-api-key", Raw)],
            &["authorization"],
        ),
        Rule::new("pagerduty", &["api.pagerduty.com"], vec![pagerduty], &[]),
        Rule::new(
            "sentry",
            &["sentry.io", "*.sentry.io"],
            vec![Injection::new("sentry", "authorization", Bearer)],
            &[],
        ),
        Rule::new("npm", &["registry.npmjs.org"], vec![Injection::new("npm", "authorization", Bearer)], &[]),
        Rule::new("docker-hub", &["auth.docker.io"], vec![Injection::new("docker-hub", "authorization", Basic)], &[]),
    ];
    if let Some(host) = grafana_host.filter(|h| !h.is_empty()) {
        rules.push(Rule::new("grafana", &[host], vec![Injection::new("grafana", "authorization", Bearer)], &[]));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn hosts_match_exactly_or_by_subdomain_wildcard() {
        let rules = RuleSet::new(Some("grafana.example.net"), Vec::new());
        assert_eq!(rules.find("API.GitHub.com.").map(|r| r.name.as_str()), Some("github-api"));
        assert_eq!(rules.find("github.com").map(|r| r.name.as_str()), Some("github-git"));
        assert_eq!(rules.find("o1.ingest.sentry.io").map(|r| r.name.as_str()), Some("sentry"));
        assert_eq!(rules.find("grafana.example.net").map(|r| r.name.as_str()), Some("grafana"));
        assert!(rules.find("evilgithub.com").is_none());
        assert!(rules.find("api.github.com.evil.net").is_none());
        assert!(RuleSet::new(None, Vec::new()).find("grafana.example.net").is_none());
    }

    /// Regression (fuzz/fuzz_targets/rules.rs): a non-ASCII host whose tail
    /// splits a character where a wildcard's suffix would start panicked.
    #[test]
    fn a_non_ascii_host_is_compared_not_split() {
        let rules = RuleSet::new(Some("grafana.example.com"), Vec::new());
        let crash = b"??\xcb\x91))A\x00I?\xcb\x91))A\x00Ievi";
        assert!(rules.find(&String::from_utf8_lossy(crash)).is_none());
        assert!(rules.find("ab\u{2d1}entry.io").is_none(), "the tail of `sentry.io` starts inside a character");
        assert_eq!(rules.find("\u{e9}.sentry.io").map(|r| r.name.as_str()), Some("sentry"), "a subdomain is still one");
    }

    #[test]
    fn anthropic_api_key_replaces_every_placeholder_header() {
        let rules = RuleSet::new(None, Vec::new());
        let rule = rules.find("api.anthropic.com").unwrap();
        let mut h = headers(&[("x-api-key", "placeholder"), ("authorization", "Bearer placeholder")]);
        assert!(rule.apply(&mut h, &rule.inject[0], "sk-real"));
        assert_eq!(h.get("x-api-key").unwrap(), "sk-real");
        assert!(h.get("authorization").is_none());
        let mut h = headers(&[("x-api-key", "placeholder")]);
        assert!(rule.apply(&mut h, &rule.inject[1], "oat-real"));
        assert_eq!(h.get("authorization").unwrap(), "Bearer oat-real");
        assert!(h.get("x-api-key").is_none());
    }

    #[test]
    fn git_over_https_gets_basic_x_access_token() {
        let rules = RuleSet::new(None, Vec::new());
        let rule = rules.find("github.com").unwrap();
        let mut h = HeaderMap::new();
        assert!(rule.apply(&mut h, &rule.inject[0], "ghp_real"));
        let expected = base64::engine::general_purpose::STANDARD.encode("x-access-token:ghp_real");
        assert_eq!(h.get("authorization").unwrap().to_str().unwrap(), format!("Basic {expected}"));
        assert!(h.get("authorization").unwrap().is_sensitive());
    }

    #[test]
    fn configured_rules_come_first_and_deserialize_from_toml() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "name": "internal", "hosts": ["api.github.com"],
            "inject": [{"service": "internal", "header": "x-token", "format": "raw"}],
        }))
        .unwrap();
        let rules = RuleSet::new(None, vec![rule]);
        assert_eq!(rules.find("api.github.com").unwrap().name, "internal");
        assert!(rules.services().contains(&"internal".to_string()));
        let mut h = headers(&[("x-token", "placeholder")]);
        let r = rules.find("api.github.com").unwrap();
        assert!(!r.apply(&mut h, &r.inject[0], "bad\nvalue"), "a value that is not a header is refused");
        assert_eq!(h.get("x-token").unwrap(), "placeholder");
    }
    #[test]
    fn a_pattern_with_a_trailing_dot_names_the_same_host() {
        let rule = |hosts: &[&str]| Rule {
            name: "r".into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            inject: Vec::new(),
            strip: Vec::new(),
        };
        assert!(rule(&["api.example.com."]).covers("api.example.com"));
        assert!(rule(&["api.example.com."]).covers("API.example.com."));
        assert!(rule(&["*.example.com."]).covers("a.example.com"));
        assert!(!rule(&["*.example.com."]).covers("example.com"));
    }
}
