//! Attacks on the proxy as a way *in*: the agent of a real (read-only)
//! session asks its own proxy for the daemon's API and other loopback
//! services, by every spelling of loopback, over plain HTTP, CONNECT and a
//! WebSocket upgrade — even holding a stolen API token. Each must be refused
//! by the proxy (403, audited) before it connects, and the session stays
//! read-only. And as a way *out*: an allow-list session reaches no host
//! off its egress list, by any spelling or route, and cannot widen it.

use clauderon_tests::World;

#[test]
fn a_session_cannot_reach_the_daemon_or_loopback_through_its_own_proxy() {
    let world = World::start();
    let script = include_str!("scripts/proxy_inward.sh");
    let vars = [("API_PORT", world.daemon.port.to_string()), ("STOLEN_TOKEN", world.daemon.token.clone())];
    // Allow-all: the loopback defence must hold on its own, not because
    // 127.0.0.1 is on no egress list.
    let attack = world.attack("inward", script, &vars, &["--access-mode", "read-only", "--egress", "allow-all"]);
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

#[test]
fn a_session_reaches_no_host_off_its_egress_list_and_cannot_widen_it() {
    let world = World::start();
    let script = include_str!("scripts/proxy_egress.sh");
    let vars = [("API_PORT", world.daemon.port.to_string())];
    let attack = world.attack("egress", script, &vars, &[]);
    let result = |name: &str| attack.get(name);
    assert!(result("allowed").starts_with("200 "), "{}", attack.output);
    // Refused at CONNECT (no HTTP status inside; the tunnel's answer is 403).
    for name in ["connect", "upper-case", "trailing-dot", "connect-to"] {
        assert!(result(name).starts_with("000 403 "), "{name}: {}\n{}", result(name), attack.output);
    }
    let plain = result("plain");
    assert!(plain.starts_with("403 ") && plain.contains("egress allow-list"), "plain: {plain}");
    // Inside an allowed tunnel the upstream is the tunnel's host, whatever Host says.
    assert!(result("host-header").starts_with("200 "), "{}", attack.output);
    assert_eq!(world.mock.last_request_to("api.github.com", "/host-header")["path"], "/host-header");
    let reached: Vec<_> = world
        .mock
        .requests()
        .into_iter()
        .filter(|r| r["host"].as_str().is_some_and(|h| h.to_ascii_lowercase().starts_with("blocked.")))
        .collect();
    assert!(reached.is_empty(), "a host off the egress list was reached: {reached:?}");
    // Widening its own policy: through the proxy (loopback is refused), and
    // directly (the sandbox has no network but the proxy).
    assert!(result("widen-proxy").starts_with("403 "), "{}", attack.output);
    assert!(!result("widen-direct").starts_with('2'), "{}", attack.output);
    let id = attack.session["id"].as_str().expect("id");
    let (_, session) = world.daemon.http("GET", &format!("/api/sessions/{id}"), None);
    assert_eq!(session["egress"]["mode"], "allow-list", "the session widened its own egress: {session}");
    let audit = world.audit_settled(Some(id));
    let refused = audit.iter().filter(|r| r["reason"].as_str().is_some_and(|s| s.contains("egress"))).count();
    assert!(refused >= 6, "every refusal is audited ({refused}): {audit:?}");

    // The user widens it live with the CLI; the session sees it at once.
    let name = attack.session["name"].as_str().expect("name");
    let out = world.home.run(&["set-egress", name, "--allow-host", "blocked.example.test"]).ok().stdout;
    assert!(out.contains("allow-list + blocked.example.test"), "{out}");
    let shown = world.home.run(&["set-egress", name]).ok().stdout;
    assert!(shown.contains("blocked.example.test"), "{shown}");
    let bad = world.home.run(&["set-egress", name, "--allow-host", "https://x.example/path"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("is not a host name"), "{}", bad.stderr);
}
