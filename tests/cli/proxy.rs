//! The zero-credential proxy end to end: a real daemon with canary
//! credentials in its environment, a real zellij session whose environment is
//! read back from inside it, real clients (curl, git over smart HTTP, the
//! Claude Code CLI) and a local TLS mock upstream standing in for the real
//! services (`[proxy.upstreams]` + `extra_root_certs`). `proxy_in_process.rs`
//! tests the proxy's own behaviour (identity, access modes, load, streams,
//! bad input) on an in-process daemon, without a backend.

use std::path::Path;

use clauderon_tests::{
    CANARIES, World, base64, canary, command_in, curl_in as curl, eventually, session_processes, value, walk,
    websocket_log,
};

#[test]
fn every_rule_injects_its_credential_and_strips_the_placeholder() {
    let w = World::start();
    let env = w.session("rules", "read-write", "true");
    assert_eq!(value(&env, "GITHUB_TOKEN"), "clauderon-placeholder-github", "the session holds only a placeholder");
    let basic = |pair: &str| format!("Basic {}", base64(pair));
    // (host, path, placeholder header sent, header expected upstream, expected value)
    let cases = [
        (
            "api.github.com",
            "/user",
            "authorization: Bearer placeholder",
            "authorization",
            format!("Bearer {}", canary("GITHUB_TOKEN")),
        ),
        (
            "github.com",
            "/o/r/releases",
            "authorization: Basic cGxhY2Vob2xkZXI=",
            "authorization",
            basic(&format!("x-access-token:{}", canary("GITHUB_TOKEN"))),
        ),
        (
            "api.anthropic.com",
            "/v1/models",
            "x-api-key: placeholder",
            "x-api-key",
            canary("ANTHROPIC_API_KEY").to_string(),
        ),
        (
            "api.openai.com",
            "/v1/models",
            "authorization: Bearer placeholder",
            "authorization",
            format!("Bearer {}", canary("OPENAI_API_KEY")),
        ),
        (
            "generativelanguage.googleapis.com",
            "/v1beta/models",
            "x-goog-api-key: placeholder",
            "x-goog-api-key",
            canary("GEMINI_API_KEY").to_string(),
        ),
        (
            "api.pagerduty.com",
            "/incidents",
            "authorization: Token token=placeholder",
            "authorization",
            format!("Token token={}", canary("PAGERDUTY_TOKEN")),
        ),
        (
            "sentry.io",
            "/api/0/projects/",
            "authorization: Bearer placeholder",
            "authorization",
            format!("Bearer {}", canary("SENTRY_AUTH_TOKEN")),
        ),
        (
            "registry.npmjs.org",
            "/-/whoami",
            "authorization: Bearer placeholder",
            "authorization",
            format!("Bearer {}", canary("NPM_TOKEN")),
        ),
        (
            "auth.docker.io",
            "/token",
            "authorization: Basic cGxhY2Vob2xkZXI=",
            "authorization",
            basic(canary("DOCKER_HUB_TOKEN")),
        ),
        (
            "grafana.example.test",
            "/api/dashboards",
            "authorization: Bearer placeholder",
            "authorization",
            format!("Bearer {}", canary("GRAFANA_API_KEY")),
        ),
    ];
    for (host, path, placeholder, header, expected) in &cases {
        let (code, body) = curl(&env, &["-H", placeholder, &format!("https://{host}{path}")]);
        assert_eq!(code, 200, "{host}: {body}");
        let seen = w.mock.last_request_to(host, path);
        assert_eq!(seen["headers"][*header].as_str(), Some(expected.as_str()), "{host}: {seen}");
        // The mock echoes what it was sent: the session gets it with the credential masked.
        let echoed: serde_json::Value = serde_json::from_str(&body).expect("the mock's JSON echo");
        let masked = echoed["headers"][*header].as_str().unwrap_or_default();
        assert!(masked.len() == expected.len() && masked.bytes().all(|b| b == b'*'), "{host}: {masked}");
        assert!(CANARIES.iter().all(|(_, c)| !body.contains(c)), "{host}: a credential came back: {body}");
        assert!(!seen.to_string().contains("placeholder"), "{host}: the placeholder reached upstream: {seen}");
    }
    // A host no rule covers gets nothing added.
    let (code, _) = curl(&env, &["-H", "authorization: Bearer mine", "https://unruled.example.test/x"]);
    assert_eq!(code, 200);
    assert_eq!(w.mock.last_request_to("unruled.example.test", "/x")["headers"]["authorization"], "Bearer mine");
    // The audit names each credential, never its value.
    let audit = w.audit_settled(Some(value(&env, "CLAUDERON_SESSION_NAME")));
    let github = audit.iter().find(|r| r["host"] == "api.github.com").expect("audited");
    assert_eq!(github["credential"], "github from env");
    assert_eq!(github["decision"], "allowed");
    assert_eq!(github["status"], 200);
    let text = serde_json::to_string(&audit).expect("json");
    for (_, c) in CANARIES {
        assert!(!text.contains(c), "a canary is in the audit");
    }
    // `config credentials` shows them masked.
    let creds = w.home.run(&["config", "credentials"]).ok().stdout;
    assert!(creds.contains("github") && creds.contains("env") && creds.contains("ghp_…6789"), "{creds}");
    for (_, c) in CANARIES {
        assert!(!creds.contains(c), "config credentials printed a value:\n{creds}");
    }
}

#[test]
fn git_clone_and_push_get_the_token_and_read_only_refuses_push_before_the_server() {
    let w = World::start();
    w.mock.git_repo("o/r.git");
    let rw = w.session("git-rw", "read-write", "true");
    let work = tempfile::tempdir().expect("tempdir");
    let git = |env: &[(String, String)], dir: &Path, args: &[&str]| {
        let out =
            command_in(env, "git").arg("-C").arg(dir).args(args).env("GIT_TERMINAL_PROMPT", "0").output().expect("git");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = git(&rw, work.path(), &["clone", "-q", "https://github.com/o/r.git", "rw"]);
    assert!(ok, "clone in a read-write session: {err}");
    let clone = work.path().join("rw");
    std::fs::write(clone.join("new.txt"), "pushed\n").expect("write");
    for args in
        [&["add", "new.txt"][..], &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "push me"]]
    {
        assert!(git(&rw, &clone, args).0);
    }
    let (ok, err) = git(&rw, &clone, &["push", "-q", "origin", "HEAD:main"]);
    assert!(ok, "push in a read-write session: {err}");
    let pushed = w
        .mock
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/o/r.git/git-receive-pack")
        .expect("push reached the server");
    assert!(pushed["headers"]["authorization"].as_str().is_some_and(|a| a.starts_with("Basic ")), "{pushed}");

    let ro = w.session("git-ro", "read-only", "true");
    let (ok, err) = git(&ro, work.path(), &["clone", "-q", "https://github.com/o/r.git", "ro"]);
    assert!(ok, "clone in a read-only session: {err}");
    assert!(work.path().join("ro/new.txt").exists(), "the clone has the pushed commit");
    let ro_clone = work.path().join("ro");
    let (ok, _) = git(&ro, &ro_clone, &["fetch", "-q", "origin"]);
    assert!(ok, "fetch in a read-only session");
    let before = w.mock.requests().len();
    std::fs::write(ro_clone.join("blocked.txt"), "no\n").expect("write");
    assert!(git(&ro, &ro_clone, &["add", "blocked.txt"]).0);
    assert!(git(&ro, &ro_clone, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "x"]).0);
    let (ok, err) = git(&ro, &ro_clone, &["push", "-q", "origin", "HEAD:main"]);
    assert!(!ok, "push in a read-only session must fail");
    assert!(err.contains("403"), "git reports the 403: {err}");
    let after: Vec<_> = w.mock.requests().into_iter().skip(before).collect();
    assert!(
        after.iter().all(|r| !r.to_string().contains("git-receive-pack")),
        "the push reached the server: {after:?}"
    );
    let audit = w.audit_settled(Some(value(&ro, "CLAUDERON_SESSION_NAME")));
    assert!(
        audit
            .iter()
            .any(|r| r["decision"] == "blocked" && r["reason"].as_str().is_some_and(|x| x.contains("git push"))),
        "{audit:?}"
    );
}

#[test]
fn claude_code_answers_through_the_proxy_and_no_canary_reaches_the_session() {
    let w = World::start();
    let events = w.home.path("events.jsonl");
    let mut ws = websocket_log(&w.daemon, &events);
    let script = "ANTHROPIC_API_KEY=sk-ant-placeholder CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
         claude -p 'Say hello' > claude.out 2>&1";
    let env = w.session("claude", "read-write", script);
    let out = w.home.path("worktrees").join(value(&env, "CLAUDERON_SESSION_NAME")).join("claude.out");
    let answer = eventually(60, "claude's answer", || {
        std::fs::read_to_string(&out).ok().filter(|t| t.contains("Hello from the mock upstream"))
    });
    assert!(answer.contains("Hello from the mock upstream"), "{answer}");
    let call = w.mock.last_request_to("api.anthropic.com", "/v1/messages");
    assert_eq!(call["headers"]["x-api-key"].as_str(), Some(canary("ANTHROPIC_API_KEY")), "{call}");
    assert!(!call.to_string().contains("sk-ant-placeholder"));
    let _ = ws.kill();
    let _ = ws.wait();

    // No canary anywhere in the session: its environment, its files, its processes,
    // the daemon's log, the audit, the WebSocket events.
    let env_text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let mut places = vec![("session env".to_string(), env_text)];
    for dir in [w.home.path("sessions"), w.home.path("worktrees")] {
        for file in walk(&dir) {
            places.push((
                file.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned(),
            ));
        }
    }
    places.push(("process list".into(), session_processes(value(&env, "CLAUDERON_SESSION_ID"))));
    places.push(("daemon log".into(), std::fs::read_to_string(&w.daemon.log).unwrap_or_default()));
    places.push(("audit".into(), serde_json::to_string(&w.audit_settled(None)).expect("json")));
    places.push(("websocket events".into(), std::fs::read_to_string(&events).unwrap_or_default()));
    assert!(places.last().is_some_and(|(_, t)| t.contains("\"audit\"")), "the WebSocket carried audit records");
    for (place, text) in &places {
        for (var, c) in CANARIES {
            assert!(!text.contains(c), "the {var} canary is in {place}");
        }
    }
}

#[test]
fn status_events_go_through_the_proxy_to_the_daemon_and_the_sessions_unix_socket() {
    let w = World::start();
    // Read-only: status events are the daemon's own traffic, not the agent's writes.
    let env = w.session("status", "read-only", "true");
    let proxy = value(&env, "HTTPS_PROXY").to_string();
    let secret = proxy.split_once("session:").and_then(|(_, r)| r.split_once('@')).map(|(s, _)| s).expect("secret");
    let (_, session) = w.daemon.http("GET", &format!("/api/sessions/{}", value(&env, "CLAUDERON_SESSION_NAME")), None);
    let id = session["id"].as_str().expect("id").to_string();
    let post = |proxy: &str, id: &str, key: &str| {
        let url = format!("http://clauderon.internal/api/sessions/{id}/status-event?key={key}");
        curl(&[], &["-x", proxy, "-X", "POST", "-H", "content-type: application/json", "--data", "{}", &url])
    };

    let (code, body) = post(&proxy, &id, secret);
    assert_eq!(code, 200, "the API answered through the proxy: {body}");
    assert!(body.contains("agent_status"), "{body}");
    let (code, body) = post(&proxy, &id, "wrong");
    assert_eq!(code, 403, "the API still checks the key: {body}");
    let (code, body) = post(&proxy, "another-session", secret);
    assert_eq!(code, 404, "only the session's own status-event path is relayed: {body}");
    let (code, body) = curl(&[], &["-x", &proxy, "http://clauderon.internal/api/sessions"]);
    assert_eq!(code, 404, "nothing else of the API is reachable: {body}");
    let anonymous = proxy.replace(&format!("session:{secret}@"), "");
    assert_eq!(post(&anonymous, &id, secret).0, 407, "status events need the session's identity");

    // The same listener answers on the session's unix socket (sandboxed
    // sessions and containers reach it there, through their relay).
    let socket = w.home.path("sessions").join(&id).join("run/proxy.sock");
    let url = format!("http://clauderon.internal/api/sessions/{id}/status-event?key={secret}");
    let over_socket = |extra: &[&str]| {
        // A proxy takes absolute-form request targets, as a relayed client sends them.
        let socket = socket.to_str().expect("utf-8");
        let mut args = vec!["--unix-socket", socket, "--request-target", &url, "-X", "POST", "--data", "{}"];
        args.extend_from_slice(extra);
        args.push("http://clauderon.internal/");
        curl(&[], &args)
    };
    let basic = format!("proxy-authorization: Basic {}", base64(&format!("session:{secret}")));
    let (code, body) = over_socket(&["-H", &basic]);
    assert_eq!(code, 200, "the listener on the unix socket: {body}");
    assert_eq!(over_socket(&[]).0, 407, "the socket asks for the identity too");
    // Relayed status events are the daemon's own traffic, not audited; the refused ones are.
    let audit = w.audit_settled(None);
    let relayed: Vec<_> = audit.iter().filter(|r| r["host"] == "clauderon.internal").collect();
    assert_eq!(relayed.len(), 2, "{relayed:?}");
    assert!(relayed.iter().all(|r| r["decision"] == "denied" && r["status"] == 407), "{relayed:?}");
}

/// A component's `http` requests leave through the proxy under its own
/// identity: audited as `component:<id>`, given the credential it was granted
/// and no other, and kept from loopback (the daemon's own API is there).
#[test]
fn a_components_http_goes_through_the_proxy_as_itself_with_only_its_granted_credential() {
    let mut w = World::start();
    let grants = "http = [\"api.github.com\", \"api.openai.com\"]\ncredentials = [\"github\"]\n";
    w.home.install_component("fixtures", "http-probe", grants);
    w.restart_daemon();
    // A session's events reach the hook, which sends its probes on each.
    let _env = w.session("probe", "read-write", "true");
    let probe_to = |host: &str| {
        w.mock.requests().into_iter().find(|r| {
            r["host"].as_str().is_some_and(|h| h.starts_with(host))
                && r["path"].as_str().is_some_and(|p| p.starts_with("/probe/"))
        })
    };
    let github = eventually(30, "the component's request to api.github.com", || probe_to("api.github.com"));
    let expected = format!("Bearer {}", canary("GITHUB_TOKEN"));
    assert_eq!(github["headers"]["authorization"].as_str(), Some(expected.as_str()), "{github}");
    let openai = eventually(30, "the component's request to api.openai.com", || probe_to("api.openai.com"));
    assert_eq!(
        openai["headers"]["authorization"], "Bearer mine",
        "a credential it was not granted was added: {openai}"
    );

    let audit = w.audit_settled(Some("component:http-probe"));
    let to = |host: &str| audit.iter().find(|r| r["host"] == host).cloned().unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(to("api.github.com")["credential"], "github from env");
    assert_eq!(to("api.github.com")["session_name"], "component:http-probe");
    let refused_credential = to("api.openai.com");
    assert!(refused_credential["credential"].is_null(), "{refused_credential}");
    assert!(
        refused_credential["reason"].as_str().is_some_and(|r| r.contains("not granted to component:http-probe")),
        "{refused_credential}"
    );
    let log = eventually(20, "the probe's loopback answer in the daemon log", || {
        std::fs::read_to_string(&w.daemon.log).ok().filter(|l| l.contains("probe loopback:"))
    });
    let refused = "probe loopback: error component `http-probe` may not send HTTP requests to `localhost`: it is \
                   this machine or a private network";
    assert!(log.contains(refused), "loopback was not refused:\n{log}");
    assert!(log.contains("probe github: 200"), "{log}");
    assert!(!log.contains(canary("GITHUB_TOKEN")), "the credential reached the component's log");
}
