//! The zero-credential proxy end to end: a real daemon with canary
//! credentials in its environment, a real zellij session whose environment is
//! read back from inside it, real clients (curl, git over smart HTTP, the
//! Claude Code CLI) and a local TLS mock upstream standing in for the real
//! services (`[proxy.upstreams]` + `extra_root_certs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clauderon_tests::{
    CANARIES, Mock, World, canary, command_in, eventually, session_processes, value, walk, websocket_log,
};

/// curl through the session's proxy; (status, body).
fn curl(env: &[(String, String)], args: &[&str]) -> (u16, String) {
    let out =
        command_in(env, "curl").args(["-sS", "-o", "-", "-w", "\n%{http_code}"]).args(args).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let code = code.trim().parse().unwrap_or(0);
    if code == 0 {
        return (0, format!("curl failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    (code, body.to_string())
}

fn last_request_to(mock: &Mock, host: &str, path: &str) -> serde_json::Value {
    mock.requests()
        .into_iter()
        .rev()
        .find(|r| r["host"].as_str().is_some_and(|h| h.starts_with(host)) && r["path"] == path)
        .unwrap_or_else(|| panic!("the mock saw no request to {host}{path}"))
}

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
        let seen = last_request_to(&w.mock, host, path);
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
    assert_eq!(last_request_to(&w.mock, "unruled.example.test", "/x")["headers"]["authorization"], "Bearer mine");
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
fn identity_is_required_and_one_session_cannot_use_another_ones() {
    let mut w = World::start();
    let a = w.session("ident-a", "read-write", "true");
    let b = w.session("ident-b", "read-write", "true");
    let url_a = value(&a, "HTTPS_PROXY").to_string();
    let url_b = value(&b, "HTTPS_PROXY").to_string();
    let (secret_a, port_a) = split_proxy(&url_a);
    let (secret_b, port_b) = split_proxy(&url_b);
    assert_ne!(secret_a, secret_b);
    let bundle = value(&a, "CURL_CA_BUNDLE");
    let probe = |proxy: &str| {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_connect}", "--cacert", bundle, "--proxy", proxy])
            .arg("https://api.github.com/user")
            .env_clear()
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(probe(&url_a), "200");
    assert_eq!(probe(&format!("http://127.0.0.1:{port_a}")), "407", "no identity");
    assert_eq!(probe(&format!("http://session:wrong@127.0.0.1:{port_a}")), "407", "a wrong identity");
    assert_eq!(probe(&format!("http://session:{secret_b}@127.0.0.1:{port_a}")), "407", "B's identity on A's listener");
    assert_eq!(probe(&format!("http://session:{secret_a}@127.0.0.1:{port_b}")), "407", "A's identity on B's listener");
    let denied = w
        .audit_settled(Some(value(&a, "CLAUDERON_SESSION_NAME")))
        .into_iter()
        .filter(|r| r["decision"] == "denied")
        .count();
    assert_eq!(denied, 3, "each refused attempt is audited");
    // A restarted daemon serves the running session on the same URL.
    w.restart_daemon();
    eventually(10, "the session's listener after a restart", || (probe(&url_a) == "200").then_some(()));
    assert_eq!(probe(&format!("http://session:{secret_b}@127.0.0.1:{port_a}")), "407");
}

fn split_proxy(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://session:").expect("proxy URL with identity");
    let (secret, hostport) = rest.split_once('@').expect("@");
    (secret.to_string(), hostport.rsplit_once(':').expect("port").1.to_string())
}

#[test]
fn read_only_blocks_writes_and_graphql_mutations_live() {
    let w = World::start();
    let env = w.session("modes", "read-write", "true");
    let name = value(&env, "CLAUDERON_SESSION_NAME");
    let url = "https://api.github.com/repos/o/r/issues";
    assert_eq!(curl(&env, &["-X", "POST", "-d", "{}", url]).0, 200, "read-write allows POST");
    w.home.run(&["set-access-mode", name, "--mode", "read-only"]).ok();
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let (code, body) = curl(&env, &["-X", method, "-d", "{}", url]);
        assert_eq!(code, 403, "{method}");
        assert!(
            body.contains("read-only") && body.contains(&format!("set-access-mode {name} --mode read-write")),
            "{body}"
        );
    }
    assert_eq!(curl(&env, &[url]).0, 200, "GET passes");
    let (code, body) = curl(&env, &["-I", url]);
    assert_eq!(code, 200, "HEAD passes: {body}");
    let gql = "https://api.github.com/graphql";
    assert_eq!(curl(&env, &["-d", r#"{"query":"query { viewer { login } }"}"#, gql]).0, 200, "a query passes");
    let (code, body) =
        curl(&env, &["-d", r#"{"query":"mutation AddStar { addStar(input:{}) { clientMutationId } }"}"#, gql]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("AddStar"), "{body}");
    w.home.run(&["set-access-mode", name, "--mode", "read-write"]).ok();
    assert_eq!(curl(&env, &["-X", "DELETE", url]).0, 200, "back to read-write");
    let audit = w.audit_settled(Some(name));
    assert_eq!(audit.iter().filter(|r| r["decision"] == "blocked").count(), 5, "{audit:?}");
    let cli = w.home.run(&["audit", "--session", name]).ok().stdout;
    assert!(cli.contains("blocked") && cli.contains("allowed") && cli.contains("/repos/o/r/issues"), "{cli}");
}

#[test]
fn a_thousand_concurrent_requests_give_exactly_a_thousand_audit_records() {
    let w = World::start();
    let env = w.session("load", "read-write", "true");
    let urls: String =
        (0..1000).map(|i| format!("url = \"https://api.github.com/n/{i}\"\noutput = \"/dev/null\"\n")).collect();
    let config = w.home.path("urls.curlrc");
    std::fs::write(&config, urls).expect("curl config");
    let out = command_in(&env, "curl")
        .args(["-sS", "--parallel", "--parallel-max", "100", "-w", "%{http_code}\n", "-K"])
        .arg(&config)
        .output()
        .expect("curl");
    let codes = String::from_utf8_lossy(&out.stdout);
    assert_eq!(codes.lines().filter(|c| *c == "200").count(), 1000, "{}", String::from_utf8_lossy(&out.stderr));
    let count = || {
        w.audit(Some(value(&env, "CLAUDERON_SESSION_NAME")))
            .iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/n/")))
            .count()
    };
    eventually(20, "1000 audit records", || (count() >= 1000).then_some(()));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(), 1000);
}

#[test]
fn streams_and_websockets_pass_through_unbuffered() {
    let w = World::start();
    let env = w.session("stream", "read-write", "true");
    // SSE: 3 events 400 ms apart; the first must arrive long before the last.
    let mut child = command_in(&env, "curl")
        .args(["-sS", "-N", "https://api.openai.com/sse?n=3&ms=400"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let started = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let first_at = started.elapsed();
    let rest: Vec<String> = lines.map_while(Result::ok).filter(|l| l.starts_with("data:")).collect();
    let total = started.elapsed();
    let _ = child.wait();
    assert!(first.starts_with("data:"), "{first}");
    assert_eq!(rest.len(), 2);
    assert!(total >= Duration::from_millis(800), "{total:?}");
    assert!(
        total - first_at >= Duration::from_millis(700),
        "the first event waited for the rest: {first_at:?} of {total:?}"
    );

    // WebSocket through CONNECT + TLS, with the session's identity.
    let (secret, port) = split_proxy(value(&env, "HTTPS_PROXY"));
    let ca = value(&env, "SSL_CERT_FILE").to_string();
    let echoed = websocket_echo(&port, &secret, &ca, "hello through the proxy");
    assert_eq!(echoed, "hello through the proxy");
    let seen = last_request_to(&w.mock, "api.openai.com", "/ws");
    assert_eq!(
        seen["headers"]["authorization"].as_str(),
        Some(format!("Bearer {}", canary("OPENAI_API_KEY")).as_str())
    );
}

/// Send one text frame to `wss://api.openai.com/ws` through the proxy; the echo.
fn websocket_echo(port: &str, secret: &str, ca: &str, text: &str) -> String {
    let script = format!(
        r#"
const tls = require('tls'); const net = require('net'); const fs = require('fs'); const crypto = require('crypto');
const sock = net.connect({port}, '127.0.0.1', () => {{
  sock.write('CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: Basic ' +
    Buffer.from('session:{secret}').toString('base64') + '\r\n\r\n');
}});
sock.once('data', (d) => {{
  if (!d.toString().startsWith('HTTP/1.1 200')) {{ console.error('CONNECT: ' + d); process.exit(1); }}
  const t = tls.connect({{ socket: sock, servername: 'api.openai.com', ca: fs.readFileSync('{ca}'), ALPNProtocols: ['http/1.1'] }}, () => {{
    const key = crypto.randomBytes(16).toString('base64');
    t.write('GET /ws HTTP/1.1\r\nHost: api.openai.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: ' + key + '\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer placeholder\r\n\r\n');
    let buf = Buffer.alloc(0); let upgraded = false;
    t.on('data', (c) => {{
      buf = Buffer.concat([buf, c]);
      if (!upgraded) {{
        const end = buf.indexOf('\r\n\r\n'); if (end < 0) return;
        if (!buf.slice(0, end).toString().startsWith('HTTP/1.1 101')) {{ console.error(buf.toString()); process.exit(1); }}
        upgraded = true; buf = buf.slice(end + 4);
        const payload = Buffer.from({text:?}); const mask = crypto.randomBytes(4);
        const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]);
        t.write(frame);
      }}
      if (upgraded && buf.length >= 2 && buf.length >= 2 + (buf[1] & 0x7f)) {{
        process.stdout.write(buf.slice(2, 2 + (buf[1] & 0x7f)).toString()); process.exit(0);
      }}
    }});
  }});
}});
setTimeout(() => {{ console.error('timeout'); process.exit(1); }}, 10000);
"#
    );
    let out = Command::new("node").arg("-e").arg(script).output().expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn malformed_input_gets_an_error_and_the_proxy_keeps_serving() {
    let w = World::start();
    let env = w.session("bad-input", "read-write", "true");
    let (secret, port) = split_proxy(value(&env, "HTTPS_PROXY"));
    let auth = format!("Proxy-Authorization: Basic {}\r\n", base64(&format!("session:{secret}")));
    let raw = |bytes: &[u8]| -> String {
        let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let _ = s.write_all(bytes);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    // An idle client holds a connection open while everything else goes on.
    let idle = TcpStream::connect(format!("127.0.0.1:{port}")).expect("idle client");
    let bad_target = raw(format!("CONNECT not-a-target HTTP/1.1\r\n{auth}\r\n").as_bytes());
    assert!(bad_target.starts_with("HTTP/1.1 400"), "{bad_target}");
    let bad_host = raw(format!("CONNECT bad_host!:443 HTTP/1.1\r\n{auth}\r\n").as_bytes());
    assert!(bad_host.starts_with("HTTP/1.1 400"), "{bad_host}");
    let garbage = raw(b"\x16\x03\x01\x00\xff garbage \r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400") || garbage.is_empty(), "{garbage}");
    let huge = format!("GET http://unruled.example.test/ HTTP/1.1\r\n{auth}X-Big: {}\r\n\r\n", "a".repeat(200_000));
    let oversized = raw(huge.as_bytes());
    assert!(
        oversized.starts_with("HTTP/1.1 431") || oversized.starts_with("HTTP/1.1 400") || oversized.is_empty(),
        "{oversized}"
    );
    let origin_form = raw(format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n").as_bytes());
    assert!(origin_form.starts_with("HTTP/1.1 400"), "{origin_form}");
    // TLS garbage inside an accepted tunnel.
    let tunnel = raw(format!("CONNECT api.github.com:443 HTTP/1.1\r\n{auth}\r\nthis is not TLS\r\n\r\n").as_bytes());
    assert!(tunnel.starts_with("HTTP/1.1 200"), "{tunnel}");
    assert_eq!(curl(&env, &["https://api.github.com/user"]).0, 200, "others are still served");
    drop(idle);
    let (code, _) = w.daemon.http("GET", "/api/health", None);
    assert_eq!(code, 200, "the daemon is fine");
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
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
    let call = last_request_to(&w.mock, "api.anthropic.com", "/v1/messages");
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
fn hook_events_go_through_the_proxy_to_the_daemon_and_the_sessions_unix_socket() {
    let w = World::start();
    // Read-only: hook events are the daemon's own traffic, not the agent's writes.
    let env = w.session("hooks", "read-only", "true");
    let proxy = value(&env, "HTTPS_PROXY").to_string();
    let secret = proxy.split_once("session:").and_then(|(_, r)| r.split_once('@')).map(|(s, _)| s).expect("secret");
    let (_, session) = w.daemon.http("GET", &format!("/api/sessions/{}", value(&env, "CLAUDERON_SESSION_NAME")), None);
    let id = session["id"].as_str().expect("id").to_string();
    let hook = |proxy: &str, id: &str, key: &str| {
        let url = format!("http://clauderon.internal/api/sessions/{id}/hook?key={key}");
        curl(&[], &["-x", proxy, "-X", "POST", "-H", "content-type: application/json", "--data", "{}", &url])
    };

    let (code, body) = hook(&proxy, &id, secret);
    assert_eq!(code, 200, "the API answered through the proxy: {body}");
    assert!(body.contains("agent_status"), "{body}");
    let (code, body) = hook(&proxy, &id, "wrong");
    assert_eq!(code, 403, "the API still checks the key: {body}");
    let (code, body) = hook(&proxy, "another-session", secret);
    assert_eq!(code, 404, "only the session's own hook path is relayed: {body}");
    let (code, body) = curl(&[], &["-x", &proxy, "http://clauderon.internal/api/sessions"]);
    assert_eq!(code, 404, "nothing else of the API is reachable: {body}");
    let anonymous = proxy.replace(&format!("session:{secret}@"), "");
    assert_eq!(hook(&anonymous, &id, secret).0, 407, "hooks need the session's identity");

    // The same listener answers on the session's unix socket (sandboxed
    // sessions and containers reach it there, through their relay).
    let socket = w.home.path("sessions").join(&id).join("run/proxy.sock");
    let url = format!("http://clauderon.internal/api/sessions/{id}/hook?key={secret}");
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
    // Relayed hooks are the daemon's own traffic, not audited; the refused ones are.
    let audit = w.audit_settled(None);
    let hooks: Vec<_> = audit.iter().filter(|r| r["host"] == "clauderon.internal").collect();
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert!(hooks.iter().all(|r| r["decision"] == "denied" && r["status"] == 407), "{hooks:?}");
}
