//! A malicious backend (the `mount-probe` fixture: only `container = true`)
//! tries to mount into a container what it was not given: `:` and `..`
//! tricks, a symlink out of the worktree, `/proc/self/root`, clauderon's
//! secrets, cache and components, the Docker socket, the home, `/`. The host
//! lets through only the exact sources it allowed for the call (the
//! session's own directories), and nothing at all outside `create`/`start`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use clauderon_runtime::{Runtime, RuntimeConfig};
use common::*;

/// What the host said to each attempted mount source: `denied` or `passed`.
fn outcomes(report: &str) -> BTreeMap<String, String> {
    // The report is the plugin error of `create`, after the host's own words.
    let (_, report) = report.split_once("`create`: failed: ").expect("the probe's report");
    report
        .lines()
        .filter_map(|l| l.split_once(" => "))
        .map(|(source, said)| (source.to_string(), said.split(':').next().unwrap_or_default().to_string()))
        .collect()
}

#[tokio::test]
async fn a_backend_mounts_only_the_exact_directories_the_host_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |rel: &str| dir.path().join(rel);
    let home = at("clauderon");
    for d in ["clauderon/secrets", "clauderon/cache", "clauderon/components", "worktree/sub", "agent-home"] {
        std::fs::create_dir_all(at(d)).expect("dirs");
    }
    std::fs::write(home.join("secrets/github"), "ghp_not_for_containers").expect("secret");
    std::fs::write(home.join("proxy-ca-key.pem"), "key").expect("ca key");
    std::os::unix::fs::symlink(home.join("secrets"), at("worktree/escape")).expect("symlink");
    let (worktree, config_home) = (at("worktree"), at("agent-home"));
    let s = |p: &Path| p.display().to_string();

    let mut config = RuntimeConfig::under(&home);
    config.cache_dir = None;
    let rt = Runtime::new(config).expect("runtime");
    rt.load(fixture("mount-probe")).await.expect("the probe loads");

    let attempts = [
        (s(&worktree), "passed"),
        (s(&config_home), "passed"),
        (format!("{}:/stolen", s(&home.join("secrets"))), "denied"),
        (format!("{}:/stolen", s(&worktree)), "denied"),
        (format!("{}/../clauderon/secrets", s(&worktree)), "denied"),
        (s(&worktree.join("escape")), "denied"),
        (s(&worktree.join("sub")), "denied"),
        (s(&home.join("secrets")), "denied"),
        (s(&home.join("proxy-ca-key.pem")), "denied"),
        (s(&home.join("cache")), "denied"),
        (s(&home.join("components")), "denied"),
        (s(&home), "denied"),
        (s(dir.path()), "denied"),
        ("/proc/self/root".into(), "denied"),
        ("/var/run/docker.sock".into(), "denied"),
        ("/dev".into(), "denied"),
        ("/".into(), "denied"),
        ("relative/path".into(), "denied"),
    ];
    let lines: Vec<String> = attempts.iter().map(|(source, _)| format!("{source}=>/target")).collect();
    let mut spec = spec("probe");
    spec.options = vec![("try-mounts".into(), lines.join("\n"))];

    let mut backend = rt.backend("mount-probe").await.expect("instance");
    backend.serve_session("probe-session", &[worktree.clone(), config_home.clone()]);
    let report = backend.create(&spec).await.expect_err("the probe fails with its report").to_string();
    let said = outcomes(&report);
    for (source, expected) in &attempts {
        assert_eq!(said.get(source).map(String::as_str), Some(*expected), "{source}:\n{report}");
    }
    assert!(report.contains("only its session's own directories"), "the refusal names the rule:\n{report}");

    // Outside a session's create or start, nothing is mounted at all.
    let mut other = rt.backend("mount-probe").await.expect("instance");
    let mut spec = spec.clone();
    spec.options = vec![("try-mounts".into(), format!("{}=>/workspace", s(&worktree)))];
    let report = other.create(&spec).await.expect_err("report").to_string();
    assert_eq!(outcomes(&report).get(&s(&worktree)).map(String::as_str), Some("denied"), "{report}");
}
