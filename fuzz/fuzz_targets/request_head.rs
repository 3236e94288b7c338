//! A request head as a session sends it to its proxy listener, parsed as
//! hyper parses it (httparse, then `http` types), through the proxy's own
//! code: the `Proxy-Authorization` identity, the CONNECT target and the leaf
//! certificate minted for it, the absolute-form target, the hop-by-hop
//! header strip and the credential rules' header injection (the head's
//! headers stand for those of a request inside a CONNECT tunnel too).
//!
//! Properties: never a panic; an identity read from the header survives
//! being written back; a CONNECT target is a host name and port with no
//! path, user or space in it, and a leaf is only ever minted for an IP
//! address or a DNS name (never a wildcard); a request is forwarded to the
//! host, port and path it named, whatever its spelling; nothing hop-by-hop
//! — the session's `Proxy-Authorization` first of all — is forwarded, and
//! every other header is; and an injected credential is the only value of
//! its header, with the placeholders the rule strips gone.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use base64::Engine;
use clauderon_proxy::ca::Authority;
use clauderon_proxy::server::{basic_password, connect_target};
use clauderon_proxy::{RuleSet, Target, is_websocket, status_relay, strip_hop_by_hop};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use libfuzzer_sys::fuzz_target;

/// The CA (made once in a fixed directory under the temporary directory).
fn authority() -> &'static Authority {
    static CA: OnceLock<Authority> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = std::env::temp_dir().join("clauderon-fuzz-request-head");
        std::fs::create_dir_all(&dir).expect("make the CA directory");
        Authority::load_or_create(&dir).expect("the fuzz CA")
    })
}

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::new(Some("grafana.example.com"), Vec::new()))
}

/// Never forwarded. (`Trailer` is end-to-end and is forwarded unchanged.)
const HOP_BY_HOP: [&str; 5] =
    ["proxy-authorization", "proxy-connection", "keep-alive", "proxy-authenticate", "transfer-encoding"];

fuzz_target!(|data: &[u8]| {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(data) else { return };
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else { return };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else { return };
    let Ok(uri) = Uri::try_from(path) else { return };
    let mut headers = HeaderMap::new();
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value))
        else {
            return;
        };
        headers.append(name, value);
    }

    // The identity: what is read back is what was written.
    if let Some(value) = headers.get(header::PROXY_AUTHORIZATION)
        && let Some(password) = basic_password(value)
    {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("session:{password}"));
        let again = HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a header value");
        assert_eq!(basic_password(&again).as_deref(), Some(password.as_str()), "{value:?}");
    }

    // Where the request goes.
    let target = if method == Method::CONNECT {
        let Ok((host, port)) = connect_target(&uri) else { return };
        assert!(!host.is_empty() && !host.contains(['/', '@', ' ']), "CONNECT to {host:?}");
        assert!(!uri.authority().is_some_and(|a| a.as_str().contains('@')), "userinfo passed in {uri}");
        assert_eq!((uri.host(), uri.port_u16()), (Some(host.as_str()), Some(port)), "{uri}");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        // No leaf, no tunnel: the proxy answers 400.
        if authority().server_config(bare).is_err() {
            return;
        }
        let dns = bare
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(bare.parse::<IpAddr>().is_ok() || dns, "a leaf was minted for {bare:?}");
        Some((Target::https(host.clone(), port), "https", host, port))
    } else if uri.host() == Some(status_relay::STATUS_HOST) {
        None
    } else {
        Target::from_absolute(&uri).map(|t| {
            assert_eq!(uri.scheme_str(), Some("http"), "{uri}");
            let host = uri.host().unwrap_or_default().to_string();
            (t, "http", host, uri.port_u16().unwrap_or(80))
        })
    };
    if let Some((target, scheme, host, port)) = &target
        && let Ok(upstream) = target.uri(uri.path_and_query())
    {
        let default = if *scheme == "https" { 443 } else { 80 };
        assert_eq!(upstream.scheme_str(), Some(*scheme));
        assert_eq!(upstream.host(), Some(host.as_str()), "{uri} went to {upstream}");
        assert_eq!(upstream.port_u16().unwrap_or(default), *port, "{uri} went to {upstream}");
        let want = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        assert_eq!(upstream.path_and_query().map(|p| p.as_str()), Some(want), "{uri} went to {upstream}");
    }

    // Hop-by-hop headers stay here; everything else goes on.
    let websocket = is_websocket(&headers);
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut stripped = headers.clone();
    strip_hop_by_hop(&mut stripped, websocket);
    for name in HOP_BY_HOP {
        assert!(!stripped.contains_key(name), "{name} was forwarded");
    }
    if let Some(te) = stripped.get(header::TE) {
        assert_eq!(te, "trailers");
    }
    if websocket {
        let values: Vec<&HeaderValue> = stripped.get_all(header::CONNECTION).iter().collect();
        assert_eq!(values, [&HeaderValue::from_static("upgrade")]);
        assert!(stripped.contains_key(header::UPGRADE));
    } else {
        assert!(!stripped.contains_key(header::CONNECTION) && !stripped.contains_key(header::UPGRADE));
    }
    for name in stripped.keys().filter(|n| *n != header::CONNECTION) {
        let n = name.as_str();
        assert!(!listed.iter().any(|l| l == n) || (websocket && n == "upgrade"), "{n} was named in Connection");
    }
    for name in headers.keys() {
        let n = name.as_str();
        let hop = HOP_BY_HOP.contains(&n)
            || [header::CONNECTION, header::UPGRADE, header::TE].contains(name)
            || listed.iter().any(|l| l == n);
        if !hop {
            let before: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
            let after: Vec<&HeaderValue> = stripped.get_all(name).iter().collect();
            assert_eq!(before, after, "{n} changed on the way");
        }
    }

    // An injected credential replaces whatever the session put in its header.
    let Some((_, "https", host, _)) = &target else { return };
    let Some(rule) = rules().find(host) else { return };
    for injection in &rule.inject {
        let mut sent = stripped.clone();
        assert!(rule.apply(&mut sent, injection, "real-credential"), "{injection:?}");
        let values: Vec<&HeaderValue> = sent.get_all(injection.header.as_str()).iter().collect();
        let want = injection.value("real-credential").expect("a header value");
        assert_eq!(values, [&want], "{} holds more than the credential", injection.header);
        let others = rule.inject.iter().map(|i| &i.header).filter(|h| !h.eq_ignore_ascii_case(&injection.header));
        for strip in rule.strip.iter().chain(others) {
            assert!(!sent.contains_key(strip.as_str()), "the placeholder in {strip} was sent");
        }
    }
});
