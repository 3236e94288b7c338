//! The zero-credential proxy at work, on a daemon assembled in this test
//! process (`clauderon-daemon`) with canary credentials: each session's
//! network path is opened as the session manager opens it, with the
//! environment a session gets, and real clients (curl, git, node) use it
//! against a local TLS mock upstream. No backend is involved, so these run
//! without zellij or Docker; `proxy.rs` runs the same proxy from inside real
//! sessions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clauderon_sessions::{AccessMode, EgressMode, EgressPolicy};
use clauderon_tests::{CANARIES, InProcess, base64, canary, command_in, curl_in, eventually, split_proxy, value};

#[test]
fn identity_is_required_and_one_session_cannot_use_another_ones() {
    let (mut w, _mock) = InProcess::with_mock();
    let a = w.session("ident-a", AccessMode::ReadWrite);
    let b = w.session("ident-b", AccessMode::ReadWrite);
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

#[test]
fn read_only_blocks_writes_and_graphql_mutations_live() {
    let (mut w, _mock) = InProcess::with_mock();
    let env = w.session("modes", AccessMode::ReadWrite);
    let name = value(&env, "CLAUDERON_SESSION_NAME");
    let url = "https://api.github.com/repos/o/r/issues";
    assert_eq!(curl_in(&env, &["-X", "POST", "-d", "{}", url]).0, 200, "read-write allows POST");
    w.set_access_mode(name, AccessMode::ReadOnly);
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let (code, body) = curl_in(&env, &["-X", method, "-d", "{}", url]);
        assert_eq!(code, 403, "{method}");
        assert!(
            body.contains("read-only") && body.contains(&format!("set-access-mode {name} --mode read-write")),
            "{body}"
        );
    }
    assert_eq!(curl_in(&env, &[url]).0, 200, "GET passes");
    let (code, body) = curl_in(&env, &["-I", url]);
    assert_eq!(code, 200, "HEAD passes: {body}");
    let gql = "https://api.github.com/graphql";
    assert_eq!(curl_in(&env, &["-d", r#"{"query":"query { viewer { login } }"}"#, gql]).0, 200, "a query passes");
    let (code, body) =
        curl_in(&env, &["-d", r#"{"query":"mutation AddStar { addStar(input:{}) { clientMutationId } }"}"#, gql]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("AddStar"), "{body}");
    w.set_access_mode(name, AccessMode::ReadWrite);
    assert_eq!(curl_in(&env, &["-X", "DELETE", url]).0, 200, "back to read-write");
    let audit = w.audit_settled(Some(name));
    assert_eq!(audit.iter().filter(|r| r["decision"] == "blocked").count(), 5, "{audit:?}");
    let cli = w.home.run(&["audit", "--session", name]).ok().stdout;
    assert!(cli.contains("blocked") && cli.contains("allowed") && cli.contains("/repos/o/r/issues"), "{cli}");
}

/// Read-only has no loopholes: a method override header, a GraphQL mutation
/// in the URL (with a harmless body, or on a GET), a REST write at a path
/// that merely ends in `graphql`, a "git fetch" without git's content type.
/// None reaches the upstream.
#[test]
fn read_only_has_no_loopholes_in_overrides_urls_or_paths() {
    let (mut w, mock) = InProcess::with_mock();
    let env = w.session("loopholes", AccessMode::ReadOnly);
    let mutation = "query=mutation%20AddStar%20%7B%20addStar(input%3A%7B%7D)%20%7B%20clientMutationId%20%7D%20%7D";
    let gql = "https://api.github.com/graphql";
    let tries: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-H".into(), "X-HTTP-Method-Override: DELETE".into(), "https://api.github.com/repos/o/r".into()],
            "x-http-method-override",
        ),
        (
            vec!["-H".into(), "X-Method-Override: PUT".into(), "https://api.github.com/repos/o/r".into()],
            "x-method-override",
        ),
        (vec!["-d".into(), r#"{"query":"{ viewer { login } }"}"#.into(), format!("{gql}?{mutation}")], "AddStar"),
        (vec![format!("{gql}?{mutation}")], "AddStar"),
        (
            vec![
                "-d".into(),
                r#"{"query":"{ a }","title":"opened read-only"}"#.into(),
                "https://api.github.com/repos/o/r/issues/graphql".into(),
            ],
            "`title`",
        ),
        (vec!["-d".into(), "0000".into(), "https://github.com/o/r.git/git-upload-pack".into()], "git fetch"),
    ];
    for (args, says) in &tries {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, body) = curl_in(&env, &args);
        assert_eq!(code, 403, "{args:?}: {body}");
        assert!(body.contains(says), "{args:?}: {body}");
    }
    assert_eq!(
        curl_in(&env, &[&format!("{gql}?query=%7B%20viewer%20%7B%20login%20%7D%20%7D")]).0,
        200,
        "a query in the URL passes"
    );
    let reached: Vec<String> = mock.requests().iter().filter_map(|r| r["path"].as_str().map(String::from)).collect();
    assert!(
        reached.iter().all(|p| !p.starts_with("/repos/o/r") && !p.ends_with("git-upload-pack")),
        "a refused request reached the upstream: {reached:?}"
    );
    let audit = w.audit_settled(Some(value(&env, "CLAUDERON_SESSION_NAME")));
    assert_eq!(audit.iter().filter(|r| r["decision"] == "blocked").count(), tries.len(), "{audit:?}");
}

#[test]
fn a_thousand_concurrent_requests_give_exactly_a_thousand_audit_records() {
    let (mut w, _mock) = InProcess::with_mock();
    let env = w.session("load", AccessMode::ReadWrite);
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
    let (mut w, mock) = InProcess::with_mock();
    let env = w.session("stream", AccessMode::ReadWrite);
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
    let seen = mock.last_request_to("api.openai.com", "/ws");
    assert_eq!(
        seen["headers"]["authorization"].as_str(),
        Some(format!("Bearer {}", canary("OPENAI_API_KEY")).as_str())
    );
}

/// No leaks through the side doors of a response: an upstream that echoes
/// the credential in a WebSocket frame, in the answer to an upgrade it
/// declined, or in an encoded form (the base64 of a Basic credential alone,
/// URL-encoded, JSON-escaped, decoded) hands the session only `*`s.
#[test]
fn no_credential_comes_back_through_websockets_upgrades_or_encodings() {
    let (mut w, _mock) = InProcess::with_mock();
    let env = w.session("leaks", AccessMode::ReadWrite);
    let (secret, port) = split_proxy(value(&env, "HTTPS_PROXY"));
    let ca = value(&env, "SSL_CERT_FILE").to_string();
    let canaries = |text: &str| CANARIES.iter().filter(|(_, c)| text.contains(c)).count();
    // A WebSocket frame echoing the upgrade request's headers.
    let frame = websocket_echo(&port, &secret, &ca, "echo-headers");
    let echoed: serde_json::Value = serde_json::from_str(&frame).expect("the echoed headers");
    let auth = echoed["headers"]["authorization"].as_str().expect("authorization echoed");
    assert!(!auth.is_empty() && auth.bytes().all(|b| b == b'*'), "{frame}");
    assert_eq!(canaries(&frame), 0, "{frame}");
    // An upgrade the upstream declines: its ordinary answer echoes the request.
    let (code, body) =
        curl_in(&env, &["-H", "Upgrade: websocket", "-H", "Connection: Upgrade", "https://api.github.com/user"]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(canaries(&body), 0, "the declined upgrade leaked: {body}");
    // Encoded forms: Basic on github.com (base64 of x-access-token:TOKEN), Bearer on api.github.com.
    for url in ["https://github.com/echo-forms", "https://api.github.com/echo-forms"] {
        let (code, body) = curl_in(&env, &["-H", "authorization: Bearer placeholder", url]);
        assert_eq!(code, 200, "{body}");
        assert!(body.lines().count() >= 3, "{body}");
        for line in body.lines().filter(|l| !l.starts_with("x-access-token:")) {
            assert!(line.bytes().all(|b| b == b'*'), "{url}: an encoded form came back: {line}");
        }
        assert_eq!(canaries(&body), 0, "{url}: {body}");
    }
}

/// A session's open connections end with it: a stream it opened (here SSE,
/// 20 events 250 ms apart, through its CONNECT tunnel) stops when the session
/// is closed (deleted, archived) or made read-only, instead of carrying on.
#[test]
fn a_sessions_open_streams_end_when_it_is_closed_or_made_read_only() {
    let (mut w, _mock) = InProcess::with_mock();
    for how in ["closed", "made-read-only"] {
        let env = w.session(how, AccessMode::ReadWrite);
        let name = value(&env, "CLAUDERON_SESSION_NAME").to_string();
        let mut child = command_in(&env, "curl")
            .args(["-sS", "-N", "https://api.openai.com/sse?n=20&ms=250"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a line").expect("read");
        assert!(first.starts_with("data:"), "{first}");
        match how {
            "closed" => w.close(&name),
            _ => w.set_access_mode(&name, AccessMode::ReadOnly),
        }
        let rest = lines.map_while(Result::ok).filter(|l| l.starts_with("data:")).count();
        let _ = child.wait();
        assert!(
            rest < 10,
            "{how}: the stream went on after the session ended its connections ({rest} more events of 19)"
        );
    }
}

/// The egress policy from the session's side: an allow-list session reaches
/// the daemon's list and its own hosts only. A refused host gets 403 — at
/// CONNECT, before any TLS, and over plain HTTP with the command that allows
/// it — and an audit record, and nothing reaches it (the mock would log it).
/// The policy changes live: allowing the host lets it through, taking it away
/// again ends a stream already open to it, and allow-all opens everything.
#[test]
fn a_session_reaches_only_the_hosts_its_egress_policy_allows_and_changes_apply_live() {
    let (mut w, mock) = InProcess::with_mock();
    let env = w.session("egress", AccessMode::ReadWrite);
    let name = value(&env, "CLAUDERON_SESSION_NAME").to_string();
    assert_eq!(curl_in(&env, &["https://api.github.com/user"]).0, 200, "the built-in list");
    assert_eq!(curl_in(&env, &["https://unruled.example.test/x"]).0, 200, "[egress] allow");
    assert_eq!(curl_in(&env, &["https://grafana.example.test/x"]).0, 200, "a configured rule's host");
    for url in
        ["https://blocked.example.test/tls", "https://BLOCKED.Example.TEST/upper", "https://blocked.example.test./dot"]
    {
        let (code, out) = curl_in(&env, &[url]);
        assert!(code == 0 && out.contains("403"), "{url}: the tunnel was not refused: {code} {out}");
    }
    let (code, body) = curl_in(&env, &["http://blocked.example.test/plain"]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains(&format!("clauderon set-egress {name} --allow-host blocked.example.test")), "{body}");
    // The Host header inside a tunnel to an allowed host does not choose the upstream.
    let (code, _) = curl_in(&env, &["-H", "host: blocked.example.test", "https://api.github.com/host-header"]);
    assert_eq!(code, 200);
    assert_eq!(mock.last_request_to("api.github.com", "/host-header")["path"], "/host-header");
    let reached = |mock: &clauderon_tests::Mock| {
        mock.requests().iter().filter(|r| r["host"].as_str().is_some_and(|h| h.starts_with("blocked."))).count()
    };
    assert_eq!(reached(&mock), 0, "a refused host was reached");
    let audit = w.audit_settled(Some(&name));
    let refused: Vec<_> = audit.iter().filter(|r| r["reason"].as_str().is_some_and(|r| r.contains("egress"))).collect();
    assert_eq!(refused.len(), 4, "each refusal is audited: {audit:?}");
    assert!(refused.iter().all(|r| r["decision"] == "blocked" && r["status"] == 403), "{refused:?}");

    // Allowed live, then taken away while a stream to it is open.
    let only = |hosts: &[&str]| EgressPolicy {
        mode: EgressMode::AllowList,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
    };
    w.set_egress(&name, &only(&["blocked.example.test"]));
    assert_eq!(curl_in(&env, &["https://blocked.example.test/allowed"]).0, 200);
    let mut child = command_in(&env, "curl")
        .args(["-sS", "-N", "https://blocked.example.test/sse?n=20&ms=250"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert!(lines.next().expect("a line").expect("read").starts_with("data:"));
    w.set_egress(&name, &only(&[]));
    let rest = lines.map_while(Result::ok).filter(|l| l.starts_with("data:")).count();
    let _ = child.wait();
    assert!(rest < 10, "the stream went on after its host was taken away ({rest} more events of 19)");
    let (code, out) = curl_in(&env, &["https://blocked.example.test/again"]);
    assert!(code == 0 && out.contains("403"), "{code} {out}");
    // Allow-all opens every host.
    w.set_egress(&name, &EgressPolicy { mode: EgressMode::AllowAll, hosts: Vec::new() });
    assert_eq!(curl_in(&env, &["https://blocked.example.test/everything"]).0, 200);
    assert_eq!(reached(&mock), 3, "allowed, the stream, allow-all");
}

/// The daemon raises its limit on open files to the hard limit at start (a
/// session holding many tunnels must not starve the API and the other
/// sessions at 1,024), and `GET /api/health` shows the use.
#[test]
fn the_daemon_raises_its_open_files_limit_and_shows_its_use() {
    let nofile = |column: usize| -> u64 {
        let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
        let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("the open files line");
        line.split_whitespace().nth(column).and_then(|v| v.parse().ok()).expect("a number")
    };
    let hard = nofile(4);
    // Lower this process's soft limit, as a default shell's 1,024 would be; the
    // in-process daemon runs in this process.
    let pid = std::process::id().to_string();
    let lowered = Command::new("prlimit").args(["--pid", &pid, "--nofile=256:"]).status().expect("prlimit");
    assert!(lowered.success() && nofile(3) == 256, "the soft limit was not lowered");
    let (w, _mock) = InProcess::with_mock();
    assert_eq!(nofile(3), hard, "the daemon did not raise the soft limit");
    let (code, health) = w.http("GET", "/api/health", None);
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["fds"]["limit"], hard, "{health}");
    assert!(health["fds"]["open"].as_u64().is_some_and(|n| n > 2 && n < hard), "{health}");
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
      if (upgraded && buf.length >= 2) {{
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) {{ if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }}
        if (buf.length >= off + len) {{ process.stdout.write(buf.slice(off, off + len).toString()); process.exit(0); }}
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
    let (mut w, _mock) = InProcess::with_mock();
    let env = w.session("bad-input", AccessMode::ReadWrite);
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
    assert_eq!(curl_in(&env, &["https://api.github.com/user"]).0, 200, "others are still served");
    drop(idle);
    let (code, _) = w.http("GET", "/api/health", None);
    assert_eq!(code, 200, "the daemon is fine");
}
