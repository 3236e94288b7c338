//! The read-only policy on any request head: never a panic, and a read-only
//! session never gets a push, a method that can write, a method override to
//! one, or a GraphQL mutation in the URL past it (nor a `query` naming one
//! that could not be parsed: a server's parser may read it).
#![no_main]

use clauderon_proxy::policy::{AccessMode, METHOD_OVERRIDES, Verdict, check};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // method \n path \n query \n header lines (`name: value`)…
    let mut parts = text.splitn(4, '\n');
    let (method, path, query) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let Ok(method) = Method::from_bytes(method.as_bytes()) else { return };
    let mut headers = HeaderMap::new();
    for line in parts.next().unwrap_or("").lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.trim().as_bytes()), HeaderValue::from_str(value.trim()))
        else {
            continue;
        };
        headers.append(name, value);
    }
    let verdict = check(AccessMode::ReadOnly, &method, path, query, &headers);
    let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if verdict == Verdict::Allow {
        assert!(!path.ends_with("/git-receive-pack"), "a push passed read-only: {path}");
        assert!(safe || (method == Method::POST && path.ends_with("/git-upload-pack")), "{method} {path} passed");
        for name in METHOD_OVERRIDES {
            for v in headers.get_all(name) {
                let v = v.to_str().unwrap_or_default().trim().to_ascii_uppercase();
                assert!(["GET", "HEAD", "OPTIONS"].contains(&v.as_str()), "override {name}: {v} passed");
            }
        }
        // A `query` that begins with a write's keyword is a write, whether
        // this parser reads it or not.
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let text = value.trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == '\u{feff}');
            let first = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or_default();
            let writes = first == "mutation" || first == "subscription";
            assert!(key != "query" || !writes, "a `query` beginning with a write passed: {value:?}");
        }
    }
    if verdict == Verdict::InspectGraphql {
        assert_eq!(method, Method::POST);
    }
    assert_eq!(check(AccessMode::ReadWrite, &method, path, query, &headers), Verdict::Allow);
});
