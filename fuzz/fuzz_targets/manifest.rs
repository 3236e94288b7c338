//! Component manifests (`component.toml`, carried in a component's
//! `clauderon-manifest` section) from any text: never a panic, and a manifest
//! that parses keeps every promise of `Manifest::validate` — an id of 1-63
//! lowercase letters, digits or dashes, a version, bare executable names,
//! host patterns, variable names, and no capability outside its kind's world
//! — re-validates, survives `to_toml` and a second parse unchanged, and is
//! found again by `extract` in a component that embeds it.
#![no_main]

use clauderon_runtime::manifest::{self, Capabilities, Capability, Kind, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The section's bytes go to `extract` as they are (not UTF-8: no manifest).
    let _ = manifest::extract(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert_eq!(manifest::extract(&component_with(data)), None, "a manifest that is not UTF-8 was extracted");
        return;
    };
    assert_eq!(
        manifest::extract(&component_with(data)).as_deref(),
        Some(text),
        "the embedded manifest came back changed"
    );
    let Ok(m) = Manifest::parse(text) else { return };
    if let Err(e) = m.validate() {
        panic!("a parsed manifest fails validation: {e}\n{m:?}");
    }

    let id = &m.id;
    assert!((1..=63).contains(&id.len()), "id length: {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "id chars: {id:?}");
    assert!(!id.starts_with('-'), "id starts with a dash: {id:?}");
    assert!(!m.version.trim().is_empty(), "blank version");

    let caps = &m.capabilities;
    for p in &caps.process {
        assert!(!p.is_empty() && !p.contains('/') && !p.contains(char::is_whitespace), "process: {p:?}");
    }
    for h in &caps.http {
        let bare = h.strip_prefix("*.").unwrap_or(h);
        assert!(
            !bare.is_empty()
                && bare.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')),
            "http pattern: {h:?}"
        );
        // A pattern admits what it names and nothing shorter.
        match h.strip_prefix("*.") {
            Some(suffix) => {
                assert!(manifest::host_matches(h, &format!("a.{suffix}")), "{h} refuses a subdomain");
                assert!(!manifest::host_matches(h, suffix), "{h} admits its bare suffix");
                assert!(!manifest::host_matches(h, &format!("a{suffix}")), "{h} admits a look-alike");
            }
            None => {
                assert!(manifest::host_matches(h, &h.to_ascii_uppercase()), "{h} is case-sensitive");
                assert!(!manifest::host_matches(h, &format!("a{h}")), "{h} admits a look-alike");
            }
        }
    }
    for e in &caps.env {
        assert!(!e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "env: {e:?}");
    }
    for cap in Capability::ALL {
        if cap.manifest_key().is_some() && caps.allows(cap) {
            assert!(m.kind.importable().contains(&cap), "a {} asks for {cap:?}", m.kind);
        }
        assert_eq!(Capability::from_interface(cap.interface()), Some(cap));
    }
    assert!(Kind::ALL.contains(&m.kind));

    // A grant covers itself; nothing is missing from a grant of everything asked.
    assert!(caps.missing(caps).is_empty(), "a grant does not cover itself: {caps:?}");
    assert_eq!(Capabilities::default().missing(caps).is_empty(), *caps == Capabilities::default());
    assert_eq!(caps.describe().is_empty(), *caps == Capabilities::default());

    // What is written back (the section componentize embeds) parses to the same manifest.
    let toml = m.to_toml();
    match Manifest::parse(&toml) {
        Ok(again) => assert_eq!(again, m, "to_toml changed the manifest:\n{toml}"),
        Err(e) => panic!("to_toml wrote a manifest that does not parse ({e}):\n{toml}\nfrom {m:?}"),
    }
    assert_eq!(Manifest::parse(text).ok().as_ref(), Some(&m), "a second parse differs");
});

/// A component binary with nothing but a `clauderon-manifest` custom section holding `data`.
fn component_with(data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    leb128(&mut payload, manifest::SECTION.len());
    payload.extend_from_slice(manifest::SECTION.as_bytes());
    payload.extend_from_slice(data);
    let mut out = b"\0asm\x0d\x00\x01\x00".to_vec();
    out.push(0);
    leb128(&mut out, payload.len());
    out.extend_from_slice(&payload);
    out
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
