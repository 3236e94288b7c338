//! GraphQL bodies from a read-only session: never a panic, and nothing passes
//! that is not JSON naming its query text in every request (persisted
//! queries, which cannot be checked, are refused).
#![no_main]

use clauderon_proxy::policy::{Verdict, graphql};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if graphql(data) != Verdict::Allow {
        return;
    }
    let value: serde_json::Value = serde_json::from_slice(data).expect("an allowed body is JSON");
    let requests = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    for r in requests {
        assert!(r.get("query").and_then(|q| q.as_str()).is_some(), "an allowed request names its query: {r}");
    }
});
