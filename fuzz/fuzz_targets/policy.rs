//! The read-only policy on any request line: never a panic, and a read-only
//! session never gets a push or a method that can write past it.
#![no_main]

use clauderon_proxy::policy::{AccessMode, Verdict, check};
use http::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (method, path, query) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let Ok(method) = Method::from_bytes(method.as_bytes()) else { return };
    let verdict = check(AccessMode::ReadOnly, &method, path, query);
    let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if verdict == Verdict::Allow {
        assert!(!path.ends_with("/git-receive-pack"), "a push passed read-only: {path}");
        assert!(safe || (method == Method::POST && path.ends_with("/git-upload-pack")), "{method} {path} passed");
    }
    if verdict == Verdict::InspectGraphql {
        assert_eq!(method, Method::POST);
    }
    assert_eq!(check(AccessMode::ReadWrite, &method, path, query), Verdict::Allow);
});
