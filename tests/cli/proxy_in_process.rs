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
use clauderon_tests::{
    CANARIES, InProcess, Mock, base64, canary, command_in, curl_in, eventually, repo_root, split_proxy, value,
};

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

/// The read-only suite against a real GraphQL server from npm
/// (express-graphql, which reads `query` from the URL before the body, even
/// on POST) standing in for api.github.com: queries pass, and no mutation
/// gets through by the body, the URL, the content type, a batch, an
/// operation name, a repeated parameter or a subscription. The same tricks
/// in read-write do reach the server and run, so each refusal is the
/// proxy's.
#[test]
fn read_only_holds_against_a_real_graphql_server_that_reads_the_url_first() {
    let mock = Mock::start();
    let server = GraphqlServer::start(&mock);
    let config = mock.proxy_config().replace(
        &format!("\"api.github.com\" = \"{}\"", mock.addr),
        &format!("\"api.github.com\" = \"{}\"", server.addr),
    );
    let mut w = InProcess::with_canaries(&config);
    let env = w.session("gql", AccessMode::ReadOnly);
    let url = "https://api.github.com/graphql";
    let json = "content-type: application/json";
    let counter = |env: &[(String, String)]| -> String {
        let (code, body) = curl_in(env, &["-H", json, "-d", r#"{"query":"{ counter }"}"#, url]);
        assert_eq!(code, 200, "a query passes: {body}");
        body
    };
    assert!(counter(&env).contains(r#"{"counter":0}"#), "the server answers");
    let (code, body) = curl_in(&env, &[&format!("{url}?query=%7B%20counter%20%7D")]);
    assert!(code == 200 && body.contains(r#"{"counter":0}"#), "a query in the URL passes: {code} {body}");

    let in_url = |q: &str| format!("{url}?query={q}");
    let tries: Vec<(&str, Vec<String>)> = vec![
        (
            "a mutation in the body",
            vec!["-H".into(), json.into(), "-d".into(), r#"{"query":"mutation { bump }"}"#.into(), url.into()],
        ),
        (
            "a mutation in the URL of a POST with a harmless body",
            vec![
                "-H".into(),
                json.into(),
                "-d".into(),
                r#"{"query":"{ counter }"}"#.into(),
                in_url("mutation%20%7B%20bump%20%7D"),
            ],
        ),
        ("a mutation in the URL of a GET", vec![in_url("mutation+%7B+bump+%7D")]),
        (
            "the mutation first of two `query` parameters",
            vec![
                "-H".into(),
                json.into(),
                "-d".into(),
                r#"{"query":"{ counter }"}"#.into(),
                format!("{}&query=%7Bcounter%7D", in_url("mutation%7Bbump%7D")),
            ],
        ),
        (
            "application/graphql",
            vec![
                "-H".into(),
                "content-type: application/graphql".into(),
                "-d".into(),
                "mutation { bump }".into(),
                url.into(),
            ],
        ),
        ("a form", vec!["-d".into(), "query=mutation%20%7B%20bump%20%7D".into(), url.into()]),
        (
            "a batch with one mutation",
            vec![
                "-H".into(),
                json.into(),
                "-d".into(),
                r#"[{"query":"{ counter }"},{"query":"mutation { bump }"}]"#.into(),
                url.into(),
            ],
        ),
        (
            "an operation name picking the mutation",
            vec![
                "-H".into(),
                json.into(),
                "-d".into(),
                r#"{"query":"query Q { counter } mutation M { bump }","operationName":"M"}"#.into(),
                url.into(),
            ],
        ),
        (
            "a subscription",
            vec!["-H".into(), json.into(), "-d".into(), r#"{"query":"subscription { ticks }"}"#.into(), url.into()],
        ),
        ("a GET overridden to POST", vec!["-H".into(), "X-HTTP-Method-Override: POST".into(), in_url("%7Bcounter%7D")]),
    ];
    for (what, args) in &tries {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, body) = curl_in(&env, &args);
        assert_eq!(code, 403, "{what}: {body}");
        assert!(body.contains("read-only"), "{what}: the proxy refused it: {body}");
    }
    assert!(counter(&env).contains(r#"{"counter":0}"#), "no mutation ran");
    let name = value(&env, "CLAUDERON_SESSION_NAME");
    let refused = w.audit_settled(Some(name)).iter().filter(|r| r["decision"] == "blocked").count();
    assert_eq!(refused, tries.len(), "each refusal is audited");

    // The server would have run them: in read-write the body's and the URL's mutations do.
    w.set_access_mode(name, AccessMode::ReadWrite);
    for (what, args) in &tries[..2] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, body) = curl_in(&env, &args);
        assert!(code == 200 && body.contains(r#""bump""#), "{what} in read-write: {code} {body}");
    }
    assert!(counter(&env).contains(r#"{"counter":2}"#), "both mutations ran");
}

/// `tests/fixtures/graphql/server.js` (express-graphql from npm, found on
/// `NODE_PATH`) with the mock's certificate, so it can stand in for
/// api.github.com; killed when dropped.
struct GraphqlServer {
    addr: String,
    child: std::process::Child,
}

impl GraphqlServer {
    fn start(mock: &Mock) -> Self {
        let dir = mock.dir.path();
        let addr_file = dir.join("graphql-addr");
        let child = Command::new("node")
            .arg(repo_root().join("tests/fixtures/graphql/server.js"))
            .args([dir.join("leaf.pem"), dir.join("leaf-key.pem"), addr_file.clone()])
            .stdin(Stdio::null())
            .spawn()
            .expect("node");
        let mut server = Self { addr: String::new(), child };
        server.addr = eventually(
            10,
            "the GraphQL server (express-graphql from npm: `./justw test` installs it)",
            || {
                if let Ok(Some(status)) = server.child.try_wait() {
                    panic!(
                        "the GraphQL server exited ({status}); is express-graphql on NODE_PATH? `./justw test` installs it"
                    );
                }
                std::fs::read_to_string(&addr_file).ok()
            },
        );
        server
    }
}

impl Drop for GraphqlServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_thousand_concurrent_requests_give_exactly_a_thousand_audit_records() {
    let (mut w, _mock) = InProcess::with_mock();
    let env = w.session("load", AccessMode::ReadWrite);
    let config = curl_config(&w.home.path(""), "load", (0..1000).map(|i| format!("https://api.github.com/n/{i}")));
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

/// A request goes upstream in the HTTP version the session spoke: HTTP/1.1
/// stays HTTP/1.1 (it does not pay for HTTP/2's framing and flow control),
/// HTTP/2 stays HTTP/2 (gRPC needs it); the credential goes in either way,
/// and the echo of it comes back masked.
#[test]
fn requests_go_upstream_in_the_http_version_the_session_spoke() {
    let (mut w, mock) = InProcess::with_mock();
    let env = w.session("versions", AccessMode::ReadWrite);
    let injected = format!("Bearer {}", canary("OPENAI_API_KEY"));
    for (flag, path, version) in [("--http1.1", "/v1", "HTTP/1.1"), ("--http2", "/v2", "HTTP/2.0")] {
        let (code, body) = curl_in(&env, &[flag, &format!("https://api.openai.com{path}")]);
        assert_eq!(code, 200, "{flag}: {body}");
        assert!(!body.contains(&injected) && body.contains("\"authorization\":\"*"), "{flag}: {body}");
        let seen = mock.last_request_to("api.openai.com", path);
        assert_eq!(seen["version"], version, "{flag}: {seen}");
        assert_eq!(seen["headers"]["authorization"].as_str(), Some(injected.as_str()), "{flag}");
    }
}

/// A tunnel's HTTP/1.1 requests go upstream over one connection of the
/// tunnel's own (the proxy's `Lane`), and one the upstream closes is opened
/// again: four requests through one tunnel, the second answered with
/// `Connection: close`.
#[test]
fn a_tunnels_requests_share_one_upstream_connection_and_a_closed_one_is_reopened() {
    let (mut w, mock) = InProcess::with_mock();
    let env = w.session("lane", AccessMode::ReadWrite);
    let paths = ["/lane-1", "/close", "/lane-2", "/lane-3"];
    let mut curl = command_in(&env, "curl");
    curl.args(["-sS", "--http1.1", "-w", "%{http_code} %{num_connects}\n"]);
    for path in paths {
        curl.args(["-o", "/dev/null", &format!("https://api.openai.com{path}")]);
    }
    let out = curl.output().expect("curl");
    let answers = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        answers.lines().collect::<Vec<_>>(),
        ["200 1", "200 0", "200 0", "200 0"],
        "every answer 200, all through the one tunnel curl opened: {answers} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let injected = format!("Bearer {}", canary("OPENAI_API_KEY"));
    let peer = |path: &str| {
        let seen = mock.last_request_to("api.openai.com", path);
        assert_eq!(seen["headers"]["authorization"].as_str(), Some(injected.as_str()), "{path}: {seen}");
        seen["peer"].as_u64().expect("the mock logs the connection's port")
    };
    let [first, closing, second, third] = paths.map(peer);
    assert_eq!(first, closing, "the tunnel's second request reused its upstream connection");
    assert_ne!(closing, second, "the upstream closed that one: the next request opened another");
    assert_eq!(second, third, "and reused it");
}

/// No leaks through the side doors of a response: an upstream that echoes
/// the credential in a WebSocket frame, in the answer to an upgrade it
/// declined, in a trailer, or in an encoded form (the base64 of a Basic
/// credential alone, URL-encoded, JSON-escaped, decoded) hands the session
/// only `*`s.
#[test]
fn no_credential_comes_back_through_websockets_upgrades_trailers_or_encodings() {
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
    // A trailer echoing the credential, after a body.
    let raw = raw_answer_with_trailers(&port, &secret, &ca);
    let trailer =
        raw.lines().find(|l| l.to_ascii_lowercase().starts_with("x-echo:")).unwrap_or_else(|| panic!("{raw}"));
    let echoed = trailer.split_once(':').map(|(_, v)| v.trim()).unwrap_or_default();
    assert!(echoed.len() > 10 && echoed.bytes().all(|b| b == b'*'), "the trailer: {trailer}");
    assert!(raw.contains("the body, then trailers") && canaries(&raw) == 0, "{raw}");
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

/// A large streamed answer echoing the credential across every read and
/// record boundary the proxy has (TLS records, its 4 KiB and 64 KiB reads,
/// the upstream's frames) comes back whole, with every echo masked.
#[test]
fn a_credential_echoed_across_every_boundary_of_a_large_stream_is_masked() {
    let (mut w, _mock) = InProcess::with_mock();
    let env = w.session("big-echo", AccessMode::ReadWrite);
    let (code, body) = curl_in(&env, &["-H", "authorization: Bearer placeholder", "https://api.github.com/echo-big"]);
    assert_eq!(code, 200, "{}", &body[..body.len().min(300)]);
    assert!(body.len() > 2 << 20, "the whole body: {} bytes", body.len());
    let echoes: Vec<&str> = body.split('[').skip(1).map(|rest| rest.split(']').next().unwrap_or_default()).collect();
    assert_eq!(echoes.len(), 512, "every echo arrived");
    for (i, echo) in echoes.iter().enumerate() {
        assert!(echo.len() > 10 && echo.bytes().all(|b| b == b'*'), "echo {i} came back unmasked: {echo}");
    }
    assert!(CANARIES.iter().all(|(_, c)| !body.contains(c)), "a canary came back");
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

/// One session holding thousands of connections (the attack that once took
/// the API and every other session down at 1,024 descriptors): it gets its
/// cap and a 429 for each connection over it, the API and another session
/// serve on, its flood of refusals fills the audit no further than its own
/// quota, and closing its connections gives them back.
#[test]
fn one_session_holding_thousands_of_connections_starves_neither_the_api_nor_another_session() {
    let (mut w, _mock) =
        InProcess::with_mock_and("max_connections_per_session = 200\naudit_records_per_minute = 100\n");
    let hog = w.session("hog", AccessMode::ReadWrite);
    let neighbour = w.session("neighbour", AccessMode::ReadWrite);
    let (secret, port) = split_proxy(value(&hog, "HTTPS_PROXY"));
    let connect = format!(
        "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nProxy-Authorization: Basic {}\r\n\r\n",
        base64(&format!("session:{secret}"))
    );
    let (mut held, mut refused) = (Vec::new(), 0);
    for _ in 0..5_000 {
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        stream.write_all(connect.as_bytes()).expect("CONNECT");
        let mut status = String::new();
        BufReader::new(&stream).read_line(&mut status).expect("status line");
        match status.split_whitespace().nth(1) {
            Some("200") => held.push(stream),
            Some("429") => refused += 1,
            _ => panic!("unexpected answer: {status}"),
        }
    }
    assert_eq!((held.len(), refused), (200, 4_800), "the cap, then 429");
    for i in 0..20 {
        let (code, body) = curl_in(&neighbour, &["https://api.github.com/neighbour"]);
        assert_eq!(code, 200, "the other session, request {i}: {body}");
    }
    assert_eq!(w.http("GET", "/api/health", None).0, 200, "the API");
    let (code, out) = curl_in(&hog, &["https://api.github.com/one-more"]);
    assert!(code == 0 && out.contains("429"), "the hog is told: {code} {out}");
    let hog_name = value(&hog, "CLAUDERON_SESSION_NAME");
    let audit = w.audit_settled(Some(hog_name));
    assert_eq!(audit.len(), 100, "one by one up to its quota, the rest counted");
    assert!(audit.iter().all(|r| r["status"] == 429), "{:?}", audit.first());
    assert_eq!(w.audit_settled(Some(value(&neighbour, "CLAUDERON_SESSION_NAME"))).len(), 20, "its own quota");
    drop(held);
    eventually(10, "the hog's connections to be given back", || {
        (curl_in(&hog, &["https://api.github.com/again"]).0 == 200).then_some(())
    });
}

/// Floods are bounded: requests over a session's rate get 429 with
/// Retry-After, and 5,000 attempts without the session's identity add
/// only the first 20 to the audit (the rest are summarised each minute).
#[test]
fn requests_over_the_rate_get_429_and_unauthenticated_floods_are_summarised() {
    let (mut w, _mock) = InProcess::with_mock_and("max_requests_per_second = 50\n");
    let env = w.session("flood", AccessMode::ReadWrite);
    let name = value(&env, "CLAUDERON_SESSION_NAME").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let headers = dir.path().join("headers");
    let urls = curl_config(dir.path(), "rate", (0..300).map(|i| format!("https://api.github.com/r{i}")));
    let out = command_in(&env, "curl")
        .args(["-s", "-w", "%{http_code}\n", "-D"])
        .arg(&headers)
        .arg("-K")
        .arg(&urls)
        .output()
        .expect("curl");
    let codes = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = codes.lines().filter(|c| *c == "200").count();
    let limited = codes.lines().filter(|c| *c == "429").count();
    assert_eq!(ok + limited, 300, "{codes}");
    assert!(ok >= 99 && limited > 0, "a burst of twice the rate, then 429: {ok} passed, {limited} refused");
    let dumped = std::fs::read_to_string(&headers).expect("headers").to_ascii_lowercase();
    assert!(dumped.contains("retry-after: 1"), "a 429 says when to retry");

    let (_, port) = split_proxy(value(&env, "HTTPS_PROXY"));
    let proxy = format!("http://127.0.0.1:{port}");
    let urls = curl_config(dir.path(), "flood", (0..5_000).map(|i| format!("http://unruled.example.test/u{i}")));
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}\n", "-x", &proxy, "-K"])
        .arg(&urls)
        .output()
        .expect("curl");
    let codes = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(codes.lines().filter(|c| *c == "407").count(), 5_000);
    let denied = w.audit_settled(Some(&name)).iter().filter(|r| r["decision"] == "denied").count();
    assert_eq!(denied, 20, "the first 20 a minute, one by one");
}

/// A curl config (`-K`) in `dir` fetching each of `urls` to /dev/null.
fn curl_config(dir: &std::path::Path, name: &str, urls: impl Iterator<Item = String>) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.curlrc"));
    let text: String = urls.map(|u| format!("url = \"{u}\"\noutput = \"/dev/null\"\n")).collect();
    std::fs::write(&path, text).expect("curl config");
    path
}

/// A connection with nothing in flight that stays quiet is closed — before
/// a request inside a tunnel (where no HTTP timer runs yet) and between
/// requests — but a slow answer in flight keeps its connection however
/// quiet it is.
#[test]
fn quiet_connections_are_closed_but_slow_answers_are_not() {
    let (mut w, _mock) = InProcess::with_mock_and("idle_timeout_secs = 2\n");
    let env = w.session("idle", AccessMode::ReadWrite);
    let (secret, port) = split_proxy(value(&env, "HTTPS_PROXY"));
    let ca = value(&env, "SSL_CERT_FILE");
    for request in [false, true] {
        let quiet = quiet_until_closed(&port, &secret, ca, request);
        assert!((1_500..10_000).contains(&quiet), "request={request}: closed after {quiet} ms of quiet");
    }
    // Three events 3 s apart: longer than the idle time, with a request in flight.
    let (code, body) = curl_in(&env, &["-N", "https://api.openai.com/sse?n=3&ms=3000"]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.matches("data:").count(), 3, "{body}");
}

/// A WebSocket outlives the HTTP serving of its connection: it still holds
/// the connection against the session's cap, so a session cannot get round
/// the cap by upgrading its connections.
#[test]
fn websockets_count_against_the_connection_cap() {
    let (mut w, _mock) = InProcess::with_mock_and("max_connections_per_session = 3\n");
    let env = w.session("sockets", AccessMode::ReadWrite);
    let (secret, port) = split_proxy(value(&env, "HTTPS_PROXY"));
    let status = websockets_then_connect(&port, &secret, value(&env, "SSL_CERT_FILE"), 3);
    assert!(status.starts_with("HTTP/1.1 429"), "a fourth connection with three WebSockets open: {status}");
}

/// Open a tunnel to api.github.com, finish TLS, send one request if asked
/// (and read its answer), then wait: how many ms of quiet until the proxy
/// closed it.
fn quiet_until_closed(port: &str, secret: &str, ca: &str, request: bool) -> u64 {
    let script = format!(
        r#"
tunnel('api.github.com', (t) => {{
  let last = Date.now();
  if ({request}) t.write('GET /before-idle HTTP/1.1\r\nHost: api.github.com\r\n\r\n');
  t.on('data', () => {{ last = Date.now(); }});
  t.on('close', () => {{ process.stdout.write(String(Date.now() - last)); process.exit(0); }});
}});
setTimeout(() => {{ process.stdout.write('60000'); process.exit(0); }}, 20000);
"#
    );
    node_through_proxy(port, secret, ca, &script).trim().parse().expect("ms")
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

/// `GET /trailers` on api.openai.com through the proxy with `TE: trailers`:
/// the raw HTTP/1.1 answer (chunked, trailers last) as the client reads it.
fn raw_answer_with_trailers(port: &str, secret: &str, ca: &str) -> String {
    let script = r#"
tunnel('api.openai.com', (t) => {
  t.write('GET /trailers HTTP/1.1\r\nHost: api.openai.com\r\nTE: trailers\r\nConnection: close\r\n' +
    'Authorization: Bearer placeholder\r\n\r\n');
  let raw = '';
  t.on('data', (c) => { raw += c.toString(); });
  t.on('end', () => { process.stdout.write(raw); process.exit(0); });
});
setTimeout(() => { console.error('timeout'); process.exit(1); }, 10000);
"#;
    node_through_proxy(port, secret, ca, script)
}

/// Send one text frame to `wss://api.openai.com/ws` through the proxy; the echo.
fn websocket_echo(port: &str, secret: &str, ca: &str, text: &str) -> String {
    let script = format!(
        r#"
tunnel('api.openai.com', (t) => websocket(t, (send, onFrame) => {{
  onFrame((payload) => {{ process.stdout.write(payload.toString()); process.exit(0); }});
  send({text:?});
}}));
setTimeout(() => {{ console.error('timeout'); process.exit(1); }}, 10000);
"#
    );
    node_through_proxy(port, secret, ca, &script)
}

/// Open `n` WebSockets through the proxy (each in its own tunnel), keep them
/// open, then try one more CONNECT: its status line.
fn websockets_then_connect(port: &str, secret: &str, ca: &str, n: usize) -> String {
    let script = format!(
        r#"
let open = 0;
for (let i = 0; i < {n}; i++) tunnel('api.openai.com', (t) => websocket(t, () => {{
  if (++open < {n}) return;
  connectTo('api.github.com', (status) => {{ process.stdout.write(status); process.exit(0); }});
}}));
setTimeout(() => {{ console.error('timeout with ' + open + ' open'); process.exit(1); }}, 10000);
"#
    );
    node_through_proxy(port, secret, ca, &script)
}

/// Run `script` under node with three helpers for talking to the proxy on
/// `port` as the session with `secret`:
/// - `connectTo(host, onStatus)`: a CONNECT; the status line of its answer;
/// - `tunnel(host, onTls)`: a CONNECT that must succeed, then TLS inside it
///   (trusting `ca`), its `host` noted on it;
/// - `websocket(t, onOpen)`: a WebSocket upgrade of `/ws` over `t`; `onOpen`
///   gets `send(text)` and `onFrame(cb)` (the payload of each frame).
///
/// What it printed; it must exit 0.
fn node_through_proxy(port: &str, secret: &str, ca: &str, script: &str) -> String {
    let prelude = format!(
        r#"
const tls = require('tls'); const net = require('net'); const fs = require('fs'); const crypto = require('crypto');
function connectTo(host, onStatus) {{
  const sock = net.connect({port}, '127.0.0.1', () => {{
    sock.write('CONNECT ' + host + ':443 HTTP/1.1\r\nHost: ' + host + ':443\r\nProxy-Authorization: Basic ' +
      Buffer.from('session:{secret}').toString('base64') + '\r\n\r\n');
  }});
  sock.once('data', (d) => onStatus(d.toString().split('\r\n')[0], sock));
  return sock;
}}
function tunnel(host, onTls) {{
  connectTo(host, (status, sock) => {{
    if (!status.startsWith('HTTP/1.1 200')) {{ console.error('CONNECT: ' + status); process.exit(1); }}
    const t = tls.connect({{ socket: sock, servername: host, ca: fs.readFileSync('{ca}'), ALPNProtocols: ['http/1.1'] }}, () => onTls(t));
    t.host = host;
    t.on('error', () => {{}});
  }});
}}
function websocket(t, onOpen) {{
  const key = crypto.randomBytes(16).toString('base64');
  t.write('GET /ws HTTP/1.1\r\nHost: ' + t.servername + '\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: ' + key + '\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer placeholder\r\n\r\n');
  let buf = Buffer.alloc(0); let upgraded = false; let onFrame = () => {{}};
  const send = (text) => {{
    const payload = Buffer.from(text); const mask = crypto.randomBytes(4);
    t.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]));
  }};
  t.on('data', (c) => {{
    buf = Buffer.concat([buf, c]);
    if (!upgraded) {{
      const end = buf.indexOf('\r\n\r\n'); if (end < 0) return;
      if (!buf.slice(0, end).toString().startsWith('HTTP/1.1 101')) {{ console.error(buf.toString()); process.exit(1); }}
      upgraded = true; buf = buf.slice(end + 4);
      onOpen(send, (cb) => {{ onFrame = cb; }});
    }}
    while (upgraded && buf.length >= 2) {{
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) {{ if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }}
      if (buf.length < off + len) return;
      const payload = buf.slice(off, off + len); buf = buf.slice(off + len);
      onFrame(payload);
    }}
  }});
}}
"#
    );
    let out = Command::new("node").arg("-e").arg(format!("{prelude}{script}")).output().expect("node");
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
