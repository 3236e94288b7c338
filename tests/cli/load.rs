//! The daemon under load. The proxy: 1,000 concurrent HTTPS requests through
//! the proxies of 50 sessions, with idle slow clients (half a request head,
//! then nothing) and garbage bytes mixed in; the daemon keeps serving,
//! answers every real request, audits each exactly once, and its memory
//! stays bounded (the peak is printed). The API: 200 concurrent creates,
//! then 200 concurrent deletes. Sessions run on the SDK's tmux backend: the
//! proxy and the API do not care where a session runs, and 200 tmux
//! sessions are light where 200 zellij servers are not.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

use clauderon_tests::{World, api_status, read_env_file, unique, value};

const SESSIONS: usize = 50;
const PER_SESSION: usize = 20;
const SLOW_CLIENTS: usize = 200;
const GARBAGE_CLIENTS: usize = 100;

/// The daemon's peak resident memory so far (VmHWM), in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

#[test]
fn a_thousand_concurrent_requests_with_slow_and_garbage_clients_are_all_served_and_audited_once() {
    let w = world_with_tmux();

    // 50 sessions; each writes its environment (proxy URL, CA bundle) and idles.
    let repo = w.repo.path().to_str().expect("utf-8").to_string();
    let mut proxies = Vec::new();
    for i in 0..SESSIONS {
        let name = unique(&format!("load{i}"));
        let created = w
            .home
            .run(&[
                "create",
                "-r",
                &repo,
                "-a",
                "shell",
                "-b",
                "example-backend",
                "--name",
                &name,
                "--json",
                "-p",
                "env > .session.env; exec sleep 600",
            ])
            .ok()
            .json();
        let env = read_env_file(&PathBuf::from(created["worktree"].as_str().expect("worktree")).join(".session.env"));
        proxies.push((value(&env, "HTTPS_PROXY").to_string(), value(&env, "CURL_CA_BUNDLE").to_string()));
    }
    let daemon_pid = w.daemon.child.id();
    let before = peak_mib(daemon_pid);

    // Idle slow clients and garbage, held open while the real requests run.
    let mut held = Vec::new();
    for i in 0..SLOW_CLIENTS + GARBAGE_CLIENTS {
        let (url, _) = &proxies[i % SESSIONS];
        let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { continue };
        let bytes: Vec<u8> = if i < SLOW_CLIENTS {
            b"CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.gi".to_vec()
        } else {
            (0..512u32).map(|j| (j.wrapping_mul(2654435761).wrapping_add(i as u32) >> 13) as u8).collect()
        };
        let _ = s.write_all(&bytes);
        held.push(s);
    }

    // 1,000 real requests at once: 20 in parallel through each session's proxy.
    let runs: Vec<_> =
        proxies
            .iter()
            .map(|(proxy, bundle)| {
                let mut cmd = Command::new("curl");
                cmd.args(["-sS", "--parallel", "--parallel-immediate", "--parallel-max", &PER_SESSION.to_string()])
                    .args(["--cacert", bundle, "--proxy", proxy, "--max-time", "120", "-w", "%{http_code}\n"]);
                for _ in 0..PER_SESSION {
                    cmd.args(["-o", "/dev/null", "https://api.github.com/user"]);
                }
                cmd.env_clear().spawn_output()
            })
            .collect();
    let mut codes = Vec::new();
    for run in runs {
        let out = run.join().expect("curl thread").expect("curl");
        codes.extend(String::from_utf8_lossy(&out.stdout).lines().map(String::from));
    }
    let ok = codes.iter().filter(|c| *c == "200").count();
    assert_eq!(
        ok,
        SESSIONS * PER_SESSION,
        "every request was answered 200: {:?}",
        codes.iter().filter(|c| *c != "200").take(10).collect::<Vec<_>>()
    );

    let (code, _) = w.daemon.http("GET", "/api/health", None);
    assert_eq!(code, 200, "the daemon serves on with slow and garbage clients still connected");
    let peak = peak_mib(daemon_pid);
    drop(held);

    let allowed: usize = w
        .audit_settled(None)
        .iter()
        .filter(|r| r["decision"] == "allowed" && r["path"] == "/user" && r["status"] == 200)
        .count();
    assert_eq!(allowed, SESSIONS * PER_SESSION, "each request is audited exactly once");
    println!(
        "load: {} requests over {SESSIONS} sessions with {SLOW_CLIENTS} slow and {GARBAGE_CLIENTS} garbage \
         clients: {ok} answered 200, {allowed} audit records, daemon peak RSS {peak} MiB ({before} MiB before the load)",
        SESSIONS * PER_SESSION
    );
    assert!(peak < 1024, "the daemon's memory stays bounded: peak {peak} MiB");
}

/// A world (daemon, mock upstream, repository) with the SDK's tmux backend installed.
fn world_with_tmux() -> World {
    let mut w = World::start();
    w.home.install_component("templates", "example-backend", "process = [\"tmux\"]\n");
    w.restart_daemon();
    w
}

#[test]
fn two_hundred_concurrent_creates_then_deletes_all_succeed_and_leave_nothing() {
    const N: usize = 200;
    let w = world_with_tmux();
    let repo = w.repo.path().display().to_string();
    let run = unique("api");
    let started = std::time::Instant::now();
    let creates: Vec<_> = (0..N)
        .map(|i| {
            let body = format!(
                r#"{{"repo": {repo:?}, "prompt": "exec sleep 600", "backend": "example-backend", "agent": "shell", "name": "{run}-{i}"}}"#
            );
            let (port, token) = (w.daemon.port, w.daemon.token.clone());
            std::thread::spawn(move || api_status(port, &token, "POST", "/api/sessions", Some(&body), 600))
        })
        .collect();
    let codes: Vec<u16> = creates.into_iter().map(|t| t.join().expect("create thread")).collect();
    let created = codes.iter().filter(|c| **c == 201).count();
    let create_secs = started.elapsed().as_secs_f64();
    assert_eq!(created, N, "every create succeeded: {:?}", codes.iter().filter(|c| **c != 201).collect::<Vec<_>>());
    let (_, list) = w.daemon.http("GET", "/api/sessions", None);
    let running = list.as_array().map(|l| l.iter().filter(|s| s["status"] == "running").count());
    assert_eq!(running, Some(N), "all {N} are running");

    let started = std::time::Instant::now();
    let deletes: Vec<_> = (0..N)
        .map(|i| {
            let (port, token, path) = (w.daemon.port, w.daemon.token.clone(), format!("/api/sessions/{run}-{i}"));
            std::thread::spawn(move || api_status(port, &token, "DELETE", &path, None, 600))
        })
        .collect();
    let codes: Vec<u16> = deletes.into_iter().map(|t| t.join().expect("delete thread")).collect();
    assert!(codes.iter().all(|c| *c == 200), "every delete succeeded: {codes:?}");
    let delete_secs = started.elapsed().as_secs_f64();
    let (_, list) = w.daemon.http("GET", "/api/sessions?archived=true", None);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "nothing left: {list}");
    let worktrees = std::fs::read_dir(w.home.path("worktrees")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(worktrees, 0, "no worktree left");
    let tmux = Command::new("tmux").args(["-L", "example-backend", "ls"]).output().expect("tmux");
    let left = String::from_utf8_lossy(&tmux.stdout).lines().filter(|l| l.contains(&run)).count();
    assert_eq!(left, 0, "no tmux session left");
    println!(
        "load: {N} concurrent creates in {create_secs:.1} s, {N} concurrent deletes in {delete_secs:.1} s, all succeeded"
    );
}

/// `Command::output` on a thread, so many run at once.
trait SpawnOutput {
    fn spawn_output(self) -> std::thread::JoinHandle<std::io::Result<std::process::Output>>;
}

impl SpawnOutput for &mut Command {
    fn spawn_output(self) -> std::thread::JoinHandle<std::io::Result<std::process::Output>> {
        let child = self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn();
        std::thread::spawn(move || child?.wait_with_output())
    }
}
