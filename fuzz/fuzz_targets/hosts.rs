//! Egress host patterns (`clauderon_proxy::hosts`): never a panic; a pattern
//! that passes the check passes it again unchanged; the compiled set and the
//! one-pattern match agree on every host; a session's own policy is covered
//! by itself.
#![no_main]

use clauderon_proxy::hosts::{EgressMode, EgressPolicy, HostSet, check_pattern, pattern_matches};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // pattern \n host
    let (pattern, host) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(checked) = check_pattern(pattern) else { return };
    assert_eq!(check_pattern(&checked).as_deref(), Ok(checked.as_str()), "not stable: {pattern:?}");
    assert!(!checked.ends_with('.') && checked == checked.to_ascii_lowercase(), "not normalised: {checked:?}");
    if !host.contains(['[', ']']) {
        let set = HostSet::new([checked.as_str()]);
        assert_eq!(set.contains(host), pattern_matches(&checked, host), "{checked:?} vs {host:?}");
    }
    let policy = EgressPolicy { mode: EgressMode::AllowList, hosts: vec![pattern.to_string()] };
    let policy = policy.normalised().expect("a checked pattern normalises");
    assert!(policy.covers(&policy));
});
