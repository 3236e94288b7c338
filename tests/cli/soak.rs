//! Crash safety, measured: SIGKILL the daemon at random moments while it
//! creates, deletes, stops, starts and changes access modes (zellij sessions
//! running the shell agent), restart it each time, and after every restart
//! check that the store opened and that reconcile left no orphan — no
//! worktree, branch, session directory, zellij session or listener without
//! its session — and that no session was lost or duplicated.
//!
//! CI runs a short soak (30 kills). `just soak` runs the full one:
//! `CLAUDERON_SOAK_KILLS` (default 30) kills, within `CLAUDERON_SOAK_SECONDS`
//! (default 1800); `CLAUDERON_SOAK_SEED` replays a run. It prints its figures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clauderon_tests::{Daemon, Home, api_status, git_repo};

/// A small deterministic PRNG (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the test knows for sure about a session: it exists (its create or
/// last change was answered before the kill) or it may or may not.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Known {
    Exists,
    Maybe,
}

fn zellij_sessions(prefix: &str) -> Vec<(String, bool)> {
    let out = Command::new("zellij").args(["list-sessions", "--no-formatting"]).output().expect("zellij");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            name.starts_with(prefix).then(|| (name.to_string(), l.contains("EXITED")))
        })
        .collect()
}

fn branches(repo: &Path, prefix: &str) -> BTreeSet<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["branch", "--list", "--format=%(refname:short)", &format!("{prefix}*")])
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect()
}

fn dir_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// TCP ports a process listens on.
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let out = Command::new("ss").args(["-ltnpH"]).output().expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3)?.rsplit(':').next()?.parse().ok())
        .collect()
}

/// Start a request in the background; the kill may land before, during or after it.
fn fire(daemon: &Daemon, method: &str, path: &str, body: Option<String>) -> std::thread::JoinHandle<u16> {
    let (port, token, method, path) = (daemon.port, daemon.token.clone(), method.to_string(), path.to_string());
    std::thread::spawn(move || api_status(port, &token, &method, &path, body.as_deref(), 60))
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_leaves_no_orphan() {
    let kills = env_u64("CLAUDERON_SOAK_KILLS", 30);
    let budget = Duration::from_secs(env_u64("CLAUDERON_SOAK_SECONDS", 1800));
    let seed = env_u64("CLAUDERON_SOAK_SEED", std::process::id() as u64 * 0x9E37_79B9 + 1);
    let mut rng = Rng(seed | 1);
    println!("soak: seed {seed}, {kills} kills, budget {budget:?}");

    let (home, port) = Home::with_free_port();
    let repo = git_repo();
    let run = format!("soak{:x}", rng.below(1 << 24));
    let zellij_prefix = format!("clauderon-{run}-");
    let mut known: BTreeMap<String, Known> = BTreeMap::new();
    let mut next = 0u32;
    let (mut done, mut orphans_found, mut max_sessions, mut interrupted) = (0u64, 0u64, 0usize, 0u64);
    let mut restart_ms = Vec::new();
    let started = Instant::now();
    let mut daemon = home.daemon(port);

    while done < kills && started.elapsed() < budget {
        // Pick an operation; keep the number of sessions small.
        let names: Vec<String> = known.keys().cloned().collect();
        let op = if names.is_empty() || (names.len() < 6 && rng.below(3) == 0) { 0 } else { 1 + rng.below(4) };
        let (handle, target) = match op {
            0 => {
                next += 1;
                let name = format!("{run}-{next}");
                let body = format!(
                    r#"{{"repo": {:?}, "prompt": "exec sleep 600", "backend": "zellij", "agent": "shell", "name": "{name}"}}"#,
                    repo.path().display().to_string()
                );
                known.insert(name.clone(), Known::Maybe);
                (fire(&daemon, "POST", "/api/sessions", Some(body)), name)
            }
            _ => {
                let name = names[rng.below(names.len() as u64) as usize].clone();
                let (method, path, body) = match op {
                    1 => ("DELETE", format!("/api/sessions/{name}?force=true"), None),
                    2 => ("POST", format!("/api/sessions/{name}/stop"), None),
                    3 => ("POST", format!("/api/sessions/{name}/start"), None),
                    _ => {
                        let mode = if rng.below(2) == 0 { "read-only" } else { "read-write" };
                        ("PUT", format!("/api/sessions/{name}/access-mode"), Some(format!(r#"{{"mode": "{mode}"}}"#)))
                    }
                };
                if op == 1 {
                    known.insert(name.clone(), Known::Maybe);
                }
                (fire(&daemon, method, &path, body), name)
            }
        };
        // Kill at a random moment: most land inside the operation (creates take
        // a few hundred ms here), some before it starts or after it ends.
        std::thread::sleep(Duration::from_millis(rng.below(600)));
        daemon.kill();
        done += 1;
        let code = handle.join().unwrap_or(0);
        if code == 0 {
            interrupted += 1; // the kill came before the answer
        }
        match (op, code) {
            (0, 201) => {
                known.insert(target, Known::Exists);
            }
            (1, 200 | 404) => {
                known.remove(&target);
            }
            _ => {}
        }

        let t = Instant::now();
        daemon = home.daemon(port);
        restart_ms.push(t.elapsed().as_millis() as u64);

        // The store opened and reconcile ran: now nothing may be orphaned.
        let (code, list) = daemon.http("GET", "/api/sessions?archived=true", None);
        assert_eq!(code, 200, "after kill {done}: {list}");
        let sessions = list.as_array().cloned().unwrap_or_default();
        let names: Vec<String> = sessions.iter().filter_map(|s| s["name"].as_str().map(String::from)).collect();
        let ids: BTreeSet<String> = sessions.iter().filter_map(|s| s["id"].as_str().map(String::from)).collect();
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "after kill {done}: a session is duplicated: {names:?}");
        assert_eq!(ids.len(), names.len(), "after kill {done}: an id is duplicated");
        for s in &sessions {
            assert_ne!(s["status"], "creating", "after kill {done}: reconcile left a create half-done: {s}");
        }
        for (name, k) in &known {
            if *k == Known::Exists {
                assert!(names.contains(name), "after kill {done} (seed {seed}): session {name} was lost: {names:?}");
            }
        }
        // Reconcile's answer is now the truth for the sessions in doubt.
        known = names.iter().map(|n| (n.clone(), Known::Exists)).collect();
        max_sessions = max_sessions.max(names.len());

        let name_set: BTreeSet<String> = names.iter().cloned().collect();
        let mut orphans = Vec::new();
        for wt in dir_names(&home.path("worktrees")) {
            if !name_set.contains(&wt) {
                orphans.push(format!("worktree {wt}"));
            }
        }
        for dir in dir_names(&home.path("sessions")) {
            if !ids.contains(&dir) {
                orphans.push(format!("session directory {dir}"));
            }
        }
        for b in branches(repo.path(), &format!("clauderon/{run}-")) {
            if !name_set.contains(b.trim_start_matches("clauderon/")) {
                orphans.push(format!("branch {b}"));
            }
        }
        for (z, _) in zellij_sessions(&zellij_prefix) {
            if !name_set.contains(z.trim_start_matches("clauderon-")) {
                orphans.push(format!("zellij session {z}"));
            }
        }
        for s in &sessions {
            if s["status"] == "running" {
                let z = format!("clauderon-{}", s["name"].as_str().unwrap_or_default());
                assert!(
                    zellij_sessions(&z).iter().any(|(n, _)| *n == z),
                    "after kill {done}: {z} is `running` without its zellij session"
                );
            }
        }
        let expected: BTreeSet<u16> = sessions
            .iter()
            .filter(|s| s["status"] != "archived")
            .filter_map(|s| s["proxy_port"].as_u64().map(|p| p as u16))
            .chain([port])
            .collect();
        for p in listening_ports(daemon.child.id()) {
            if !expected.contains(&p) {
                orphans.push(format!("listener on port {p}"));
            }
        }
        orphans_found += orphans.len() as u64;
        assert!(orphans.is_empty(), "after kill {done} (seed {seed}): orphans {orphans:?}");
    }

    restart_ms.sort_unstable();
    let p50 = restart_ms.get(restart_ms.len() / 2).copied().unwrap_or(0);
    println!(
        "soak: {done} kills and restarts in {:.0} s ({interrupted} before the operation answered), {} creates, \
         at most {max_sessions} sessions at once, orphans found {orphans_found}, sessions lost 0, restart p50 {p50} ms",
        started.elapsed().as_secs_f64(),
        next
    );
    assert!(done >= kills.min(10), "the soak ran ({done} kills)");

    for s in daemon.http("GET", "/api/sessions?archived=true", None).1.as_array().into_iter().flatten() {
        let id = s["id"].as_str().unwrap_or_default();
        daemon.http("DELETE", &format!("/api/sessions/{id}?force=true"), None);
    }
}
