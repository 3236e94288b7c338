//! Session benchmarks against the real daemon (run by `just bench`):
//! - create → running latency on the Zellij and Docker backends (a local
//!   image, host networking) with the shell agent,
//!   measured at the API (one keep-alive connection, like a client would);
//! - `GET /api/sessions` with 1,000 sessions stored;
//! - the web dashboard on that daemon, in Chromium (`tests/web/bench.cjs`):
//!   navigation to the first screen and to all of a list of 1,000 sessions
//!   drawn (and where that time went), event-to-screen
//!   latency of a status change; and the bytes of JS and CSS it ships;
//! - `clauderon tui` on that daemon: start to its first frame with the list
//!   (the real binary on a pseudo-terminal, beside `clauderon list` printing
//!   the same list), the time to make a frame of 1,000 sessions (draw,
//!   diff and terminal bytes, in process), and keystroke-to-echo through
//!   its embedded terminal beside a plain `zellij attach` of the same session.
//!
//! - the Kubernetes backend against the local API server (`clauderon-mock-kube`,
//!   pods in Docker): create → running via the API beside the cluster's own
//!   time for a bare pod of the same image (so clauderon's share shows), and
//!   a proxied HTTPS request's round trip from the pod through the tunnel
//!   and through the proxy's direct door
//!   beside the same request sent straight to the session's proxy from this
//!   machine; and create → running as an agent-sandbox Sandbox (the mock
//!   with `--agent-sandbox`) beside the bare pod's, and from a warm pool
//!   (`warm_pool = "1"`) beside the cold Sandbox's.
//!
//! `-- create`, `-- list` (the list and the dashboard), `-- tui` or `-- kube` runs one part.
//!
//! Prints figures; never fails on a missed target.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use clauderon_sessions::{AccessMode, AgentStatus, Session, Status};
use clauderon_tests::{Home, git_repo};

/// A minimal HTTP/1.1 keep-alive client, so timings exclude process start-up.
struct Http {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    port: u16,
    token: String,
}

impl Http {
    fn connect(daemon: &clauderon_tests::Daemon) -> Self {
        let s = TcpStream::connect(("127.0.0.1", daemon.port)).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(s.try_clone().expect("clone"));
        Self { reader, writer: s, port: daemon.port, token: daemon.token.clone() }
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.port,
            self.token,
            body.len()
        );
        self.writer.write_all(req.as_bytes()).expect("send");
        let mut status = String::new();
        self.reader.read_line(&mut status).expect("status line");
        let code = status.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().expect("length");
            }
        }
        let mut buf = vec![0; len];
        self.reader.read_exact(&mut buf).expect("body");
        (code, String::from_utf8_lossy(&buf).into_owned())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, samples: Vec<Duration>, target: Duration) {
    report_at(what, samples, target, 0.5);
}

/// [`report`], the target judged at percentile `at` (0.99: p99).
fn report_at(what: &str, mut samples: Vec<Duration>, target: Duration, at: f64) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    let verdict = if percentile(&samples, at) <= target { "met" } else { "NOT met" };
    println!(
        "{what:<48} n={:<5} p50 {:>9.2?}  p99 {:>9.2?}  target ≤ {target:?} at p{} ({verdict})",
        samples.len(),
        p50,
        p99,
        (at * 100.0).round()
    );
}

/// What a create is timed until.
#[derive(Clone, Copy, PartialEq)]
enum Until {
    /// `POST /api/sessions` answered: the session is running.
    Running,
    /// The agent's first instruction ran (its command wrote a file): on
    /// zellij the sandbox starts in the session's pane, after `create` returns.
    FirstInstruction,
}

/// create → `until` through the API on `backend` (`extra_config` chooses its
/// options); 15 creates, each deleted before the next.
fn create_latency(backend: &str, label: &str, extra_config: &str, until: Until, target: Duration) {
    let (home, port) = Home::with_free_port();
    home.append_config(extra_config);
    let daemon = home.daemon(port);
    let repo = git_repo();
    let mut http = Http::connect(&daemon);
    let mut samples = Vec::new();
    for i in 0..15 {
        let name = format!("bench-{backend}-{}-{i}", std::process::id());
        let body = format!(
            r#"{{"repo": {:?}, "prompt": "touch started; exec sleep 600", "backend": "{backend}", "agent": "shell", "name": "{name}"}}"#,
            repo.path().display().to_string()
        );
        let marker = home.path("worktrees").join(&name).join("started");
        let started = Instant::now();
        let (code, text) = http.call("POST", "/api/sessions", &body);
        assert_eq!(code, 201, "{text}");
        while until == Until::FirstInstruction && !marker.exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "the agent never ran");
            std::thread::sleep(Duration::from_micros(500));
        }
        samples.push(started.elapsed());
        let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
        assert_eq!(code, 200, "{text}");
    }
    let what = match until {
        Until::Running => "running",
        Until::FirstInstruction => "first instruction",
    };
    report(&format!("create → {what} ({backend}{label}, shell agent, via API)"), samples, target);
}

/// create → the agent's first instruction on zellij, with and without the
/// sandbox: two daemons, their creates alternating (zellij's own start-up
/// varies by tens of milliseconds from minute to minute, so only pairs
/// taken side by side compare).
fn first_instruction_paired(unsandboxed: &str) {
    let start = |extra: &str| {
        let (home, port) = Home::with_free_port();
        home.append_config(extra);
        let daemon = home.daemon(port);
        let http = Http::connect(&daemon);
        (home, daemon, http)
    };
    let mut sides = [start(""), start(unsandboxed)];
    let repo = git_repo();
    let mut samples: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut extra = Vec::new();
    for i in 0..20 {
        let mut pair = [Duration::ZERO; 2];
        for (side, (home, _daemon, http)) in sides.iter_mut().enumerate() {
            let name = format!("bench-first-{side}-{}-{i}", std::process::id());
            let body = format!(
                r#"{{"repo": {:?}, "prompt": "touch started; exec sleep 600", "backend": "zellij", "agent": "shell", "name": "{name}"}}"#,
                repo.path().display().to_string()
            );
            let marker = home.path("worktrees").join(&name).join("started");
            let started = Instant::now();
            let (code, text) = http.call("POST", "/api/sessions", &body);
            assert_eq!(code, 201, "{text}");
            while !marker.exists() {
                assert!(started.elapsed() < Duration::from_secs(20), "the agent never ran");
                std::thread::sleep(Duration::from_micros(500));
            }
            pair[side] = started.elapsed();
            let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
            assert_eq!(code, 200, "{text}");
        }
        samples[0].push(pair[0]);
        samples[1].push(pair[1]);
        extra.push(pair[0].as_secs_f64() - pair[1].as_secs_f64());
    }
    let [boxed, plain] = samples;
    report("create → first instruction (zellij, sandboxed)", boxed, Duration::from_millis(400));
    report("create → first instruction (zellij, unsandboxed)", plain, Duration::from_millis(400));
    extra.sort_by(f64::total_cmp);
    let median = extra[extra.len() / 2] * 1e3;
    let verdict = if median <= 15.0 { "met" } else { "NOT met" };
    println!(
        "  the sandbox's share, median of the 20 side-by-side differences: {median:+.1} ms (budget ≤ +15 ms: {verdict})"
    );
}

/// The sandbox alone: `sh -c true` against `clauderon sandbox exec … -- sh -c
/// true` (a policy like a session's, minus its paths), same run.
fn sandbox_start() {
    let bin = clauderon_tests::clauderon_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("sandbox.json");
    let text = format!(
        r#"{{"session":"bench","workdir":"/","writable":[{w:?}],"readable":[],"hidden":[],"proxy":null}}"#,
        w = dir.path().display().to_string()
    );
    std::fs::write(&policy, text).expect("policy");
    let time = |cmd: &mut std::process::Command| {
        let mut samples = Vec::new();
        for _ in 0..50 {
            let started = Instant::now();
            assert!(cmd.status().expect("run").success());
            samples.push(started.elapsed());
        }
        samples
    };
    let plain = time(std::process::Command::new("sh").args(["-c", "true"]));
    report("sh -c true", plain, Duration::from_millis(15));
    let policy = policy.to_str().expect("utf-8");
    let boxed =
        time(std::process::Command::new(&bin).args(["sandbox", "exec", "--policy", policy, "--", "sh", "-c", "true"]));
    report("clauderon sandbox exec -- sh -c true", boxed, Duration::from_millis(15));
}

/// A home whose store holds 1,000 stopped sessions (`stored-0` … `stored-999`,
/// the last one the most recently active), and its API port.
fn home_with_1000_sessions() -> (Home, u16) {
    let (home, port) = Home::with_free_port();
    {
        let store = clauderon_store::Store::open(&home.path("clauderon.redb")).expect("store");
        for i in 0..1000 {
            let s = Session {
                id: format!("00000000-0000-4000-8000-{i:012}"),
                name: format!("stored-{i}"),
                repo: "/tmp/repo".into(),
                subdir: "".into(),
                worktree: format!("/tmp/wt/{i}").into(),
                branch: format!("clauderon/stored-{i}"),
                base_commit: "0".repeat(40),
                backend: "zellij".into(),
                agent: "shell".into(),
                model: None,
                access_mode: AccessMode::ReadWrite,
                egress: Default::default(),
                status: Status::Stopped,
                error: None,
                agent_status: AgentStatus::Idle,
                resource_id: Some(format!("clauderon-stored-{i}")),
                proxy_port: None,
                transcript_path: None,
                plan_mode: false,
                skip_permissions: false,
                isolation: None,
                image: None,
                cpu_limit: None,
                memory_limit: None,
                prompt: "a prompt of ordinary length describing some work to do".into(),
                print_mode: false,
                created_at: i,
                updated_at: i,
            };
            let json = serde_json::to_vec(&s).expect("json");
            store.insert_session(&s.id, &s.name, &json, b"{}").expect("insert");
        }
    }
    (home, port)
}

fn list_latency() {
    let (home, port) = home_with_1000_sessions();
    let daemon = home.daemon(port);
    let mut http = Http::connect(&daemon);
    let (code, text) = http.call("GET", "/api/sessions", "");
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&text).expect("json").as_array().map(Vec::len), Some(1000));
    let samples = (0..200)
        .map(|_| {
            let started = Instant::now();
            let (code, _) = http.call("GET", "/api/sessions", "");
            assert_eq!(code, 200);
            started.elapsed()
        })
        .collect();
    report("GET /api/sessions with 1,000 stored", samples, Duration::from_millis(10));
    dashboard(&home, &daemon);
}

/// The dashboard's figures against `daemon` (1,000 sessions stored).
fn dashboard(home: &Home, daemon: &clauderon_tests::Daemon) {
    let root = clauderon_tests::repo_root();
    let shipped: u64 = std::fs::read_dir(root.join("web/dist/assets"))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "js" || e == "css"))
        .map(|p| gzipped_len(p))
        .sum();
    let verdict = if shipped <= 300_000 { "met" } else { "NOT met" };
    println!(
        "{:<48} {:.1} KB gzip  target ≤ 300 KB ({verdict})",
        "dashboard JS + CSS shipped",
        shipped as f64 / 1000.0
    );
    let login = home.run(&["web", "--print"]).ok().stdout.trim().to_string();
    let (_, one) = daemon.http("GET", "/api/sessions/stored-500", None);
    let shots = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new("node")
        .arg(root.join("tests/web/bench.cjs"))
        .env("BASE", format!("http://127.0.0.1:{}", daemon.port))
        .env("LOGIN", &login)
        .env("SESSION", one["id"].as_str().expect("id"))
        .env("SESSION_NAME", "stored-500")
        .env("ROWS", "1000")
        .env("RUNS", "10")
        .env("EVENTS", "50")
        .env("SHOTS", shots.path())
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report_line: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_default();
    let Some(figures) = report_line["steps"].as_array().and_then(|s| s.iter().find(|s| s["name"] == "figures")) else {
        println!("dashboard figures: the browser run failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        return;
    };
    let ms = |key: &str, part: &str| -> Vec<Duration> {
        let values = figures[key].as_array().into_iter().flatten().filter_map(|v| v[part].as_f64());
        values.map(|m| Duration::from_secs_f64(m / 1000.0)).collect()
    };
    report(
        "dashboard: navigation to the list's first screen",
        ms("navigation_ms", "screen"),
        Duration::from_millis(300),
    );
    report("dashboard: navigation to all 1,000 rows drawn", ms("navigation_ms", "total"), Duration::from_millis(300));
    report("  of which: the page's script loaded", ms("navigation_ms", "script"), Duration::from_millis(300));
    report("  of which: the document parsed", ms("navigation_ms", "dom"), Duration::from_millis(300));
    let last_list = |v: &serde_json::Value| v["lists"].as_array().and_then(|l| l.last()).and_then(|l| l.as_f64());
    let lists = figures["navigation_ms"].as_array().into_iter().flatten().filter_map(last_list);
    let lists = lists.map(|m| Duration::from_secs_f64(m / 1000.0)).collect();
    report("  of which: the list's last answer arrived", lists, Duration::from_millis(300));
    report("  of which: the app had the list parsed", ms("navigation_ms", "parsed"), Duration::from_millis(300));
    report("  of which: React had the first rows in the DOM", ms("navigation_ms", "first"), Duration::from_millis(300));
    report("  of which: React had every row in the DOM", ms("navigation_ms", "committed"), Duration::from_millis(300));
    report("  of which: the page's load event ended", ms("navigation_ms", "load"), Duration::from_millis(300));
    let asked: Vec<usize> = figures["navigation_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["lists"].as_array().map_or(0, Vec::len))
        .collect();
    println!(
        "{:<48} {asked:?} (1 each: the preloaded answer is the one used)",
        "  requests for the list per navigation"
    );
    report("dashboard: event to screen (access mode)", ms("event_ms", "total"), Duration::from_millis(50));
    report("  of which: the API's answer to the change", ms("event_ms", "api"), Duration::from_millis(50));
}

/// The length of the file at `path` gzip-compressed (as the daemon serves it).
fn gzipped_len(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("gzip").arg("-9c").arg(path).output().expect("gzip");
    out.stdout.len() as u64
}

fn main() {
    if std::env::var_os("CLAUDERON_TEST_COMPONENTS").is_none() {
        eprintln!("run this with `just bench` (it builds the components and the binary first)");
        std::process::exit(2);
    }
    println!("clauderon sessions benchmark — real daemon, real zellij, real git");
    // `cargo bench --bench sessions -- list` runs only the parts named (create, list).
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    if wanted("create") {
        let unsandboxed = "[sandbox]\nenabled = false\n";
        create_latency("zellij", ", sandboxed", "", Until::Running, Duration::from_millis(150));
        create_latency("zellij", ", unsandboxed", unsandboxed, Until::Running, Duration::from_millis(150));
        first_instruction_paired(unsandboxed);
        sandbox_start();
        let docker = clauderon_tests::docker_test_backend();
        create_latency("docker", "", &docker, Until::Running, Duration::from_millis(600));
    }
    if wanted("list") {
        list_latency();
    }
    if wanted("tui") {
        tui();
    }
    if wanted("kube") {
        kube();
    }
}

/// Seconds from lines of `curl -w '%{time_total}'`, as durations.
fn curl_times(text: &str) -> Vec<Duration> {
    text.lines().filter_map(|l| l.trim().parse::<f64>().ok()).map(Duration::from_secs_f64).collect()
}

/// The Kubernetes figures (see the module's doc).
fn kube() {
    let kube = clauderon_tests::TestCluster::mock(&[]);
    let world = clauderon_tests::World::start_with(&kube_config(&kube));
    let mut http = Http::connect(&world.daemon);

    // The cluster's own time: a bare pod of the same image, created and
    // watched (polled every 5 ms) through the API server until it runs.
    let api = |method: &str, path: &str, body: &str| {
        let s = TcpStream::connect(kube.addr().trim_start_matches("http://")).expect("the API server");
        let mut c =
            Http { reader: BufReader::new(s.try_clone().expect("clone")), writer: s, port: 0, token: String::new() };
        c.call(method, path, body)
    };
    let mut cluster = Vec::new();
    for i in 0..10 {
        let name = format!("bare-{i}");
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"securityContext": {"runAsUser": 1000, "runAsNonRoot": true},
                     "containers": [{"name": "agent", "image": clauderon_tests::DOCKER_SESSION_IMAGE, "command": ["sleep", "600"]}]}});
        let started = Instant::now();
        let (code, text) = api("POST", "/api/v1/namespaces/default/pods", &pod.to_string());
        assert_eq!(code, 201, "{text}");
        loop {
            let (_, text) = api("GET", &format!("/api/v1/namespaces/default/pods/{name}"), "");
            if text.contains("\"phase\":\"Running\"") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the bare pod never ran: {text}");
            std::thread::sleep(Duration::from_millis(5));
        }
        cluster.push(started.elapsed());
        api("DELETE", &format!("/api/v1/namespaces/default/pods/{name}"), "");
    }
    cluster.sort();
    let cluster_p50 = percentile(&cluster, 0.5);
    report("kube: bare pod → Running (the cluster's own time)", cluster.clone(), Duration::from_secs(5));

    let (mut created, last) = kube_creates(&world, &mut http, "pod");
    created.sort();
    let own = percentile(&created, 0.5).saturating_sub(cluster_p50);
    report("kube: create → running (claim, pod, files, tunnel; via API)", created.clone(), Duration::from_secs(5));
    println!(
        "  clauderon's own share at p50: {own:.2?} of {:.2?} (the cluster's bare pod: {cluster_p50:.2?}; \
         clauderon's share also waits on the cluster for the claim, exec and copies)",
        percentile(&created, 0.5)
    );

    // A proxied HTTPS request's round trip (a new connection each: CONNECT,
    // TLS with clauderon's CA, the mock upstream), from the pod through the
    // tunnel, and from here straight to the session's proxy port.
    let (name, session) = last;
    let pod = session["resource_id"].as_str().expect("pod").to_string();
    let loop_of = |n: u32| {
        format!(
            "for i in $(seq {n}); do curl -s -o /dev/null -w '%{{time_total}}\\n' -H 'authorization: Bearer placeholder' https://api.github.com/user; done"
        )
    };
    // The relay starts a moment after create returns (the pod's command
    // polls for the session's files every 200 ms); warm up once it has.
    clauderon_tests::eventually(20, "the relay in the pod", || {
        kube.kubectl(&["exec", &pod, "--", "sh", "-c", &loop_of(3)]).status.success().then_some(())
    });
    let through = curl_times(&kube.ok(&["exec", &pod, "--", "sh", "-c", &loop_of(50)]));
    let env = kube.ok(&["exec", &pod, "--", "sh", "-c", "echo $HTTPS_PROXY"]);
    let proxy = env.trim().to_string();
    let ca = world.home.path(clauderon_proxy::ca::CA_BUNDLE_FILE);
    let direct_out = std::process::Command::new("sh")
        .args(["-c", &loop_of(50)])
        .env("HTTPS_PROXY", &proxy)
        .env("SSL_CERT_FILE", &ca)
        .env_remove("NO_PROXY")
        .output()
        .expect("curl");
    let direct = curl_times(&String::from_utf8_lossy(&direct_out.stdout));
    assert_eq!(direct.len(), 50, "direct curl: {}", String::from_utf8_lossy(&direct_out.stderr));
    let (mut t, mut d) = (through.clone(), direct.clone());
    t.sort();
    d.sort();
    let ratio = percentile(&t, 0.5).as_secs_f64() / percentile(&d, 0.5).as_secs_f64();
    report("kube: proxied HTTPS request through the tunnel", through, Duration::from_millis(100));
    report("kube: the same request straight to the proxy", direct, Duration::from_millis(100));
    println!("  the tunnel's cost: {ratio:.2}× the direct round trip at p50");
    let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
    assert_eq!(code, 200, "{text}");
    drop(world);

    // The same request from a pod that comes in through the proxy's direct
    // door (TLS to the daemon, the session's key, then its proxy).
    let reach = clauderon_tests::TestCluster::mock(&["--pods-reach-host"]);
    let host_ip = reach.host_ip();
    let port = std::net::TcpListener::bind((host_ip.as_str(), 0)).and_then(|l| l.local_addr()).expect("port").port();
    let world = clauderon_tests::World::start_configured(
        &format!("direct_listen = \"{host_ip}:{port}\"\n"),
        &kube_config(&reach),
    );
    let mut http = Http::connect(&world.daemon);
    let repo = world.repo.path().display().to_string();
    let name = format!("bench-kube-door-{}", std::process::id());
    let body = format!(
        r#"{{"repo": {repo:?}, "prompt": "exec sleep 600", "backend": "kubernetes", "agent": "shell", "name": "{name}"}}"#
    );
    let (code, text) = http.call("POST", "/api/sessions", &body);
    assert_eq!(code, 201, "{text}");
    let session: serde_json::Value = serde_json::from_str(&text).expect("session");
    let pod = session["resource_id"].as_str().expect("pod").to_string();
    clauderon_tests::eventually(20, "the relay in the pod", || {
        reach.kubectl(&["exec", &pod, "--", "sh", "-c", &loop_of(3)]).status.success().then_some(())
    });
    let mut door = curl_times(&reach.ok(&["exec", &pod, "--", "sh", "-c", &loop_of(50)]));
    door.sort();
    let ratio = percentile(&door, 0.5).as_secs_f64() / percentile(&d, 0.5).as_secs_f64();
    let against_tunnel = percentile(&door, 0.5).as_secs_f64() / percentile(&t, 0.5).as_secs_f64();
    report("kube: proxied HTTPS request through the direct door", door, Duration::from_millis(100));
    println!(
        "  the door's cost: {ratio:.2}× the direct round trip at p50 ({against_tunnel:.2}× the tunnel's; \
         its own TLS handshake to the daemon per connection)"
    );
    let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
    assert_eq!(code, 200, "{text}");
    drop(world);

    // The same sessions as agent-sandbox Sandboxes: the controller makes the
    // claim and the pod (its extra step over a bare pod).
    let boxes = clauderon_tests::TestCluster::mock(&["--agent-sandbox"]);
    let world = clauderon_tests::World::start_with(&kube_config(&boxes).replace("\"false\"", "\"true\""));
    let mut http = Http::connect(&world.daemon);
    let (mut boxed, (name, _)) = kube_creates(&world, &mut http, "box");
    boxed.sort();
    let ratio = percentile(&boxed, 0.5).as_secs_f64() / percentile(&created, 0.5).as_secs_f64();
    let boxed_p50 = percentile(&boxed, 0.5);
    report("kube: create → running as a Sandbox (via API)", boxed, Duration::from_secs(5));
    println!("  a Sandbox's create: {ratio:.2}× a bare pod's at p50");
    let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
    assert_eq!(code, 200, "{text}");
    drop(world);

    // From a warm pool (`warm_pool = "1"`): each create takes a Sandbox the
    // pool has ready (the wait for it to refill is not counted).
    let config = kube_config(&boxes).replace("\"false\"", "\"true\"") + "warm_pool = \"1\"\n";
    let world = clauderon_tests::World::start_with(&config);
    let mut http = Http::connect(&world.daemon);
    let pool_ready = || {
        clauderon_tests::eventually(60, "a ready Sandbox in the warm pool", || {
            (boxes.object(&["sandboxwarmpool", "clauderon-warm"])["status"]["readyReplicas"] == 1).then_some(())
        })
    };
    // The first create makes the pool.
    let (_, (name, _)) = kube_creates_with(&world, &mut http, "warm0", 1, &|| {});
    let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
    assert_eq!(code, 200, "{text}");
    let (mut warm, (name, _)) = kube_creates_with(&world, &mut http, "warm", 10, &pool_ready);
    warm.sort();
    let ratio = percentile(&warm, 0.5).as_secs_f64() / boxed_p50.as_secs_f64();
    let against_pod = percentile(&warm, 0.5).as_secs_f64() / percentile(&created, 0.5).as_secs_f64();
    report("kube: create → running from a warm pool (via API)", warm, Duration::from_secs(5));
    println!("  a warm create: {ratio:.2}× a cold Sandbox's at p50 ({against_pod:.2}× a bare pod's)");
    let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
    assert_eq!(code, 200, "{text}");
}

/// `[backends.kubernetes]` for the bench's cluster (bare pods).
fn kube_config(kube: &clauderon_tests::TestCluster) -> String {
    format!(
        "[backends.kubernetes]\nenabled = \"true\"\n{}storage = \"1Gi\"\nstart_timeout_ms = \"8000\"\nsandbox_crd = \"false\"\n",
        kube.backend_config()
    )
}

/// Create 10 Kubernetes sessions through the API, one after another (each
/// deleted but the last): how long each create took, and the last one.
fn kube_creates(
    world: &clauderon_tests::World,
    http: &mut Http,
    tag: &str,
) -> (Vec<Duration>, (String, serde_json::Value)) {
    kube_creates_with(world, http, tag, 10, &|| {})
}

/// [`kube_creates`] of `count` sessions, each once `ready` returns (its wait not counted).
fn kube_creates_with(
    world: &clauderon_tests::World,
    http: &mut Http,
    tag: &str,
    count: u32,
    ready: &dyn Fn(),
) -> (Vec<Duration>, (String, serde_json::Value)) {
    let repo = world.repo.path().display().to_string();
    let create = |http: &mut Http, i: u32| {
        let name = format!("bench-kube-{tag}-{}-{i}", std::process::id());
        let body = format!(
            r#"{{"repo": {repo:?}, "prompt": "exec sleep 600", "backend": "kubernetes", "agent": "shell", "name": "{name}"}}"#
        );
        let started = Instant::now();
        let (code, text) = http.call("POST", "/api/sessions", &body);
        assert_eq!(code, 201, "{text}");
        (started.elapsed(), name, text)
    };
    let mut created = Vec::new();
    for i in 0..count - 1 {
        ready();
        let (took, name, _) = create(http, i);
        created.push(took);
        let (code, text) = http.call("DELETE", &format!("/api/sessions/{name}"), "");
        assert_eq!(code, 200, "{text}");
    }
    ready();
    let (took, name, text) = create(http, count - 1);
    created.push(took);
    (created, (name, serde_json::from_str(&text).expect("session")))
}

/// Run `args` of the clauderon binary on a new 120×40 pseudo-terminal
/// ([`Pty`]), until its output holds `until`: the time that took.
fn on_a_terminal(home: &Home, args: &str, until: &str) -> Duration {
    let started = Instant::now();
    let mut pty = Pty::spawn(home, &format!("{} {args}", clauderon_tests::clauderon_bin().display()));
    pty.wait_more(until.as_bytes(), 0);
    let elapsed = started.elapsed();
    // `q` quits the TUI; `list` has ended by itself (then the write may fail).
    let _ = pty.stdin.write_all(b"q");
    elapsed
}

/// Where the bench's frames go: bytes counted, then dropped.
#[derive(Default)]
struct Counted(u64);

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A backend that makes real terminal bytes (crossterm's) at a fixed size:
/// a frame's whole cost without a terminal to show it.
struct MemoryTerminal {
    inner: ratatui::backend::CrosstermBackend<Counted>,
    size: ratatui::layout::Size,
}

impl ratatui::backend::Backend for MemoryTerminal {
    type Error = std::io::Error;
    fn draw<'a, I>(&mut self, content: I) -> std::io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> std::io::Result<()> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> std::io::Result<()> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> std::io::Result<ratatui::layout::Position> {
        Ok(ratatui::layout::Position::ORIGIN)
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(&mut self, position: P) -> std::io::Result<()> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> std::io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> std::io::Result<()> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> std::io::Result<ratatui::layout::Size> {
        Ok(self.size)
    }
    fn window_size(&mut self) -> std::io::Result<ratatui::backend::WindowSize> {
        Ok(ratatui::backend::WindowSize { columns_rows: self.size, pixels: ratatui::layout::Size::new(0, 0) })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        ratatui::backend::Backend::flush(&mut self.inner)
    }
}

/// The TUI's figures: start to first frame on a real pseudo-terminal, and
/// frame time with 1,000 sessions.
fn tui() {
    use clauderon_tui::app::{App, Update};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let (home, port) = home_with_1000_sessions();
    let daemon = home.daemon(port);
    // The most recently active session is the first row; `list` prints it last.
    let runs = 20;
    // One of each first, untimed: the daemon's first answer reads the store cold.
    on_a_terminal(&home, "tui", "stored-999");
    on_a_terminal(&home, "list", "stored-999");
    let tui: Vec<Duration> = (0..runs).map(|_| on_a_terminal(&home, "tui", "stored-999")).collect();
    let list: Vec<Duration> = (0..runs).map(|_| on_a_terminal(&home, "list", "stored-999")).collect();
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        percentile(&v, 0.5)
    };
    report("tui: start to the first frame of 1,000 sessions", tui.clone(), Duration::from_millis(100));
    report("  beside: `clauderon list` printing them", list.clone(), Duration::from_millis(100));
    println!(
        "  the TUI's first frame takes {:.2}× the time `clauderon list` takes to print the list",
        median(&tui).as_secs_f64() / median(&list).as_secs_f64()
    );

    // Frames: the list as the daemon answers it, then a frame per change —
    // the selection moving, and every tenth frame a session's state changing.
    let sessions: Vec<Session> =
        serde_json::from_value(daemon.http("GET", "/api/sessions?archived=true", None).1).expect("sessions");
    let now = clauderon_sessions::model::now_ms();
    let mut app = App::new(now, true);
    app.update(Update::Loaded(sessions.clone()));
    let size = ratatui::layout::Size::new(120, 40);
    let backend = MemoryTerminal { inner: ratatui::backend::CrosstermBackend::new(Counted::default()), size };
    let mut terminal = ratatui::Terminal::new(backend).expect("terminal");
    let mut samples = Vec::new();
    for i in 0..2000u64 {
        if i % 10 == 0 {
            let s = &sessions[(i as usize * 7) % sessions.len()];
            let to = if i % 20 == 0 { "working" } else { "idle" };
            let event = serde_json::json!({"seq": i, "at": now + i, "session_id": s.id, "type": "agent-status-changed", "to": to});
            app.update(Update::Event(event));
        }
        let key = if (i / 50) % 2 == 0 { KeyCode::Down } else { KeyCode::Up };
        app.key(KeyEvent::new(key, KeyModifiers::NONE));
        let started = Instant::now();
        terminal.draw(|f| clauderon_tui::view::draw(f, &mut app)).expect("draw");
        samples.push(started.elapsed());
    }
    report_at("tui: a frame of 1,000 sessions (120×40), p99", samples, Duration::from_millis(5), 0.99);
    drop(daemon);
    keystroke_echo();
}

/// A program on its own 120×40 pseudo-terminal (`script`), its output
/// gathered by a thread: type into it, and wait for what it draws.
struct Pty {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    output: std::sync::Arc<(std::sync::Mutex<Vec<u8>>, std::sync::Condvar)>,
}

impl Pty {
    fn spawn(home: &Home, command: &str) -> Self {
        let mut child = std::process::Command::new("script")
            .args(["-qfec", &format!("stty cols 120 rows 40; exec {command}"), "/dev/null"])
            .env("CLAUDERON_HOME", home.path(""))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("script (util-linux)");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = std::sync::Arc::new((std::sync::Mutex::new(Vec::new()), std::sync::Condvar::new()));
        let gathered = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (lock, ready) = &*gathered;
                lock.lock().expect("output").extend_from_slice(&buf[..n]);
                ready.notify_all();
            }
        });
        Self { child, stdin, output }
    }

    fn type_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).expect("type");
        self.stdin.flush().expect("flush");
    }

    fn count(&self, needle: &[u8]) -> usize {
        let out = self.output.0.lock().expect("output");
        out.windows(needle.len()).filter(|w| *w == needle).count()
    }

    /// Wait (10 s at most) until `needle` has been drawn more than `seen` times.
    fn wait_more(&self, needle: &[u8], seen: usize) {
        let (lock, ready) = &*self.output;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = lock.lock().expect("output");
        while out.windows(needle.len()).filter(|w| *w == needle).count() <= seen {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "`{}` never drew {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&out[out.len().saturating_sub(2000)..])
            );
            out = ready.wait_timeout(out, left).expect("output").0;
        }
    }

    /// Type one character and time until its echo is drawn; `n` times.
    fn echo_times(&mut self, n: usize) -> Vec<Duration> {
        // A character no escape sequence contains, so each echo is told apart.
        let mark = "ж".as_bytes();
        (0..n)
            .map(|_| {
                let seen = self.count(mark);
                let started = Instant::now();
                self.type_bytes(mark);
                self.wait_more(mark, seen);
                let took = started.elapsed();
                std::thread::sleep(Duration::from_millis(30));
                took
            })
            .collect()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keystroke to echo: a character typed into a session running `cat`,
/// until the terminal shows it — through the TUI's embedded terminal (the
/// console WebSocket, the daemon's pseudo-terminal, zellij's client, vt100
/// and ratatui) beside a plain `zellij attach` of the same session.
fn keystroke_echo() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    let repo = git_repo();
    let repo = repo.path().to_str().expect("utf-8").to_string();
    let args =
        ["create", "-r", &repo, "-a", "shell", "--name", "echo-bench", "-p", "echo cat-ready; exec cat", "--json"];
    let created = home.run(&args).ok().json();
    let zellij_session = created["resource_id"].as_str().expect("the zellij session").to_string();
    let bin = clauderon_tests::clauderon_bin();
    let n = 40;

    let mut plain = Pty::spawn(&home, &format!("zellij attach {zellij_session}"));
    plain.wait_more(b"cat-ready", 0);
    std::thread::sleep(Duration::from_millis(500));
    let plain_times = plain.echo_times(n);
    drop(plain);

    let mut tui = Pty::spawn(&home, &format!("{} tui", bin.display()));
    tui.wait_more(b"echo-bench", 0);
    tui.type_bytes(b"\r");
    tui.wait_more(b"Ctrl-Q detach", 0);
    tui.wait_more(b"cat-ready", 0);
    std::thread::sleep(Duration::from_millis(500));
    let tui_times = tui.echo_times(n);
    tui.type_bytes(b"\x11q");
    drop(tui);
    // zellij sessions outlive the daemon.
    daemon.http("DELETE", "/api/sessions/echo-bench?force=true", None);
    drop(daemon);

    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        percentile(&v, 0.5)
    };
    let ratio = median(&tui_times).as_secs_f64() / median(&plain_times).as_secs_f64();
    report("tui: keystroke to echo, attached in the TUI", tui_times, Duration::from_millis(50));
    report("  beside: plain `zellij attach`", plain_times, Duration::from_millis(50));
    println!("  the TUI's echo takes {ratio:.2}× a plain zellij attach's");
}
