//! Credential rules' host matching on any host name a session may send:
//! never a panic, case never matters, and a match is the host itself or a
//! subdomain of the pattern.
#![no_main]

use clauderon_proxy::rules::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(host) = std::str::from_utf8(data) else { return };
    let rules = RuleSet::new(Some("grafana.example.com"), Vec::new());
    let found = rules.find(host).map(|r| r.name.clone());
    if host.is_ascii() {
        let upper = rules.find(&host.to_ascii_uppercase()).map(|r| r.name.clone());
        assert_eq!(found, upper, "case changed the rule for {host:?}");
    }
    if let Some(rule) = rules.find(host) {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ok = rule.hosts.iter().any(|p| match p.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{}", suffix.to_ascii_lowercase())),
            None => host == p.to_ascii_lowercase(),
        });
        assert!(ok, "{host:?} matched {:?} without matching a pattern", rule.hosts);
    }
});
