//! Attacks on the proxy as a way *in*: the agent of a real (read-only)
//! session asks its own proxy for the daemon's API and other loopback
//! services, by every spelling of loopback, over plain HTTP, CONNECT and a
//! WebSocket upgrade — even holding a stolen API token. Each must be refused
//! by the proxy (403, audited) before it connects, and the session stays
//! read-only.

use clauderon_tests::World;

#[test]
fn a_session_cannot_reach_the_daemon_or_loopback_through_its_own_proxy() {
    let world = World::start();
    let script = include_str!("scripts/proxy_inward.sh");
    let vars = [("API_PORT", world.daemon.port.to_string()), ("STOLEN_TOKEN", world.daemon.token.clone())];
    let attack = world.attack("inward", script, &vars, &["--access-mode", "read-only"]);
    for name in ["plain", "with-token", "localhost", "ipv6", "mapped", "unspecified", "other-loopback", "websocket"] {
        let result = attack.get(name);
        assert!(result.starts_with("403 ") && result.contains("refused"), "{name}: {result}\n{}", attack.output);
    }
    // A PUT from a read-only session is blocked by its access mode even before
    // the destination is checked; either way it never reaches the API.
    assert!(attack.get("flip-mode").starts_with("403 "), "{}", attack.output);
    // Through CONNECT the client first gets a tunnel, then the refusal inside it.
    let tls = attack.get("tls-connect");
    assert!(tls.starts_with("403 ") && tls.contains("refused"), "tls-connect: {tls}\n{}", attack.output);

    let id = attack.session["id"].as_str().expect("id");
    let (_, session) = world.daemon.http("GET", &format!("/api/sessions/{id}"), None);
    assert_eq!(session["access_mode"], "read-only", "the session could not flip its own mode");
    let (_, list) = world.daemon.http("GET", "/api/sessions", None);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "no session was created or deleted: {list}");
    let audit = world.audit_settled(Some(id));
    let refused = audit
        .iter()
        .filter(|r| r["decision"] == "blocked" && r["reason"].as_str().is_some_and(|s| s.contains("refused")))
        .count();
    assert!(refused >= 9, "every refusal is audited ({refused}): {audit:?}");
}
