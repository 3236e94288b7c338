//! Components that misbehave fail their own call with a clear error; the
//! runtime and every other component carry on.

mod common;

use std::time::Instant;

use clauderon_runtime::bindings::PluginError;
use clauderon_runtime::error::CallErrorKind;
use clauderon_runtime::{LoadError, Runtime};
use common::*;

/// Another component's call, and a fresh instance of the same one, still work.
async fn assert_healthy(rt: &Runtime) {
    let mut fresh = rt.backend("misbehave").await.expect("fresh instance");
    let info = fresh.create(&spec("fine")).await.expect("a well-behaved call after the failure");
    assert_eq!(info.resource_id, "fine");
    let mut other = rt.agent("shell").await.expect("shell agent");
    assert_eq!(other.info().await.expect("shell info").id, "shell");
}

async fn loaded() -> Runtime {
    let rt = runtime();
    rt.load(fixture("misbehave")).await.expect("misbehave loads");
    rt.load(bundled("shell")).await.expect("shell loads");
    rt
}

#[tokio::test]
async fn infinite_loop_is_stopped_within_twice_the_deadline() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let started = Instant::now();
    let err = inst.create(&spec("loop")).await.expect_err("the loop must be stopped");
    let took = started.elapsed();
    assert!(matches!(err.kind, CallErrorKind::Timeout(_)), "{err}");
    assert!(took < TEST_LIMITS.deadline * 2, "stopped after {took:?}");
    assert!(took >= TEST_LIMITS.deadline, "stopped too early, after {took:?}");
    let msg = err.to_string();
    assert!(msg.contains("`misbehave`") && msg.contains("`create`"), "{msg}");
    assert!(inst.is_poisoned());
    assert!(matches!(inst.create(&spec("fine")).await.map_err(|e| e.kind), Err(CallErrorKind::Poisoned)));
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn unbounded_memory_growth_fails_at_the_cap() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let err = inst.create(&spec("grow")).await.expect_err("growth must be refused");
    assert!(matches!(err.kind, CallErrorKind::Memory(cap) if cap == TEST_LIMITS.memory_bytes), "{err}");
    assert!(err.to_string().contains("memory cap"), "{err}");
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn a_panic_says_its_message_and_the_components_functions() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let err = inst.create(&spec("panic")).await.expect_err("panic must fail the call");
    let CallErrorKind::Panic { message, frames } = &err.kind else { panic!("not a panic: {err}") };
    assert!(message.starts_with("panicked at misbehave/src/lib.rs:"), "{err}");
    assert!(message.ends_with("the fixture panicked on purpose"), "{err}");
    // Its own functions (inlined into the export by the release profile's LTO here).
    assert!(frames.iter().any(|f| f.contains("create")), "the component's own frames: {err}");
    assert!(!frames.iter().any(|f| f.starts_with("core::") || f.starts_with("std::")), "{err}");
    let said = err.to_string();
    assert!(said.starts_with("component `misbehave` failed in `create`: panicked at misbehave/src/lib.rs:"), "{said}");
    assert!(!said.contains('\n'), "one line: {said}");
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn an_output_flood_is_capped() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let err = inst.create(&spec("flood")).await.expect_err("4 MiB must be over the cap");
    assert!(matches!(err.kind, CallErrorKind::OutputTooLarge(cap) if cap == TEST_LIMITS.output_bytes), "{err}");
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn a_log_flood_is_cut_at_the_per_call_budget() {
    let (capture, _guard) = LogCapture::start();

    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let info = inst.create(&spec("log-flood")).await.expect("logging a lot is not an error");
    assert_eq!(info.resource_id, "logged");
    let logged = capture.text();
    let ys: usize = logged.lines().filter(|l| l.contains("yyyy")).map(|l| l.matches('y').count()).sum();
    assert!(ys <= TEST_LIMITS.log_bytes_per_call, "{ys} bytes of the flood reached the log");
    assert!(ys >= TEST_LIMITS.log_bytes_per_call / 2, "the budget should let most of it through, got {ys}");
    assert!(logged.contains("dropped") && logged.contains("over the per-call cap"), "no note about the cut");
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn an_ungranted_import_is_refused_at_load() {
    let rt = loaded().await;
    let err = rt.load(fixture("ungranted")).await.err().expect("must be refused");
    assert!(matches!(err, LoadError::Ungranted { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`ungranted`")
            && msg.contains("clauderon:plugin/http@0.1.0")
            && msg.contains(r#"write `http = ["HOST"]`"#),
        "{msg}"
    );
    assert!(rt.plugin("ungranted").is_none());
    assert_eq!(rt.failures().len(), 1);
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn a_process_outside_the_grant_is_denied() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let err = inst.create(&spec("exec-denied")).await.expect_err("sh is not granted");
    let CallErrorKind::Plugin(PluginError::Denied(msg)) = &err.kind else { panic!("expected a denial, got {err}") };
    // The fix is one line for the author's own component.toml: their grant
    // plus `sh`, which replaces theirs and parses into a manifest allowing it.
    let line = msg.split('`').find(|part| part.starts_with("process = ")).expect("the line to write");
    assert_eq!(line, r#"process = ["true", "echo", "sleep", "sh"]"#, "{msg}");
    let manifest_path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/components/misbehave/component.toml");
    let theirs = std::fs::read_to_string(manifest_path).expect("the fixture's component.toml");
    let fixed = theirs.replace(r#"process = ["true", "echo", "sleep"]"#, line);
    assert_ne!(fixed, theirs, "the line replaces theirs");
    let manifest = clauderon_runtime::Manifest::parse(&fixed).expect("the fixed file is a valid manifest");
    assert!(manifest.capabilities.process.contains(&"sh".to_string()));
    // A denial is an answer, not a failure: the same instance keeps working.
    assert!(!inst.is_poisoned());
    let ok = inst.create(&spec("exec-allowed")).await.expect("echo is granted");
    assert_eq!(ok.resource_id, "hello from echo");
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn kv_keeps_a_components_state() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    assert_eq!(inst.create(&spec("kv")).await.expect("kv").resource_id, "hello");
}

#[tokio::test]
async fn a_spawn_storm_is_capped_and_a_sessions_children_die_with_it() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    // The `sleep 300` processes on the machine (the storm's, once it ran).
    let sleeping = || -> Vec<u32> {
        let out = std::process::Command::new("pgrep").args(["-f", "^/[^ ]*/sleep 300$"]).output().expect("pgrep");
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.parse().ok()).collect()
    };
    let before = sleeping();
    inst.serve_session("storm-session", &[]);
    let said = inst.create(&spec("spawn-storm")).await.expect("the storm reports").resource_id;
    let max = clauderon_runtime::capabilities::process::MAX_SPAWNED;
    assert!(said.starts_with(&format!("spawned {max}; then: ")), "{said}");
    assert!(said.contains("the most it may have"), "the refusal says why: {said}");
    let ours: Vec<u32> = sleeping().into_iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(ours.len(), max, "the children run: {ours:?}");
    // Deleting the session kills them, and the component may spawn again.
    assert_eq!(rt.end_session("storm-session"), max);
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        sleeping().iter().all(|p| !ours.contains(p))
    });
    assert!(gone, "still running: {:?}", sleeping());
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn a_component_cannot_flood_the_log_however_often_it_is_called() {
    let (capture, _guard) = LogCapture::start();
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    // Each call logs up to its per-call cap (256 KiB); eight calls would be 2 MiB.
    for _ in 0..8 {
        assert_eq!(inst.create(&spec("log-flood")).await.expect("logging is not an error").resource_id, "logged");
    }
    let logged = capture.text();
    let ys: usize = logged.lines().filter(|l| l.contains("yyyy")).map(|l| l.matches('y').count()).sum();
    assert!(ys <= TEST_LIMITS.log_bytes_per_minute, "{ys} bytes reached the log");
    assert!(ys >= TEST_LIMITS.log_bytes_per_minute / 2, "the quota should let most of it through, got {ys}");
    assert_eq!(logged.matches("reached its log quota").count(), 1, "one warning, naming the quota");
    assert_healthy(&rt).await;
}

#[tokio::test]
async fn a_process_runs_only_inside_the_sessions_own_directories() {
    let rt = loaded().await;
    let session = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(session.path().join("sub")).expect("sub");
    std::os::unix::fs::symlink("/etc", session.path().join("out")).expect("symlink");
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let run_in = |dir: &str| spec(&format!("cwd:{dir}"));
    let inside = session.path().join("sub").display().to_string();
    let said = inst.create(&run_in(&inside)).await.expect("report").resource_id;
    assert!(said.contains("only inside its session's own directories"), "outside a session call: {said}");
    inst.serve_session("cwd-session", &[session.path().to_path_buf()]);
    assert_eq!(inst.create(&run_in(&inside)).await.expect("report").resource_id, "ran");
    for outside in ["/", "/root", &format!("{}/out", session.path().display()), &format!("{inside}/../..")] {
        let said = inst.create(&run_in(outside)).await.expect("report").resource_id;
        assert!(said.contains("only inside its session's own directories"), "{outside}: {said}");
    }
}

#[tokio::test]
async fn a_kv_flood_stops_at_the_components_quota_with_a_clear_error() {
    let rt = loaded().await;
    let mut inst = rt.backend("misbehave").await.expect("instance");
    let said = inst.create(&spec("kv-flood")).await.expect("the flood reports").resource_id;
    // 1 MiB holds 17 values of 60 KiB (plus their keys), not 18.
    assert!(said.starts_with("kept 17 values; then: "), "{said}");
    assert!(said.contains("a component may keep at most 1048576 bytes in kv"), "{said}");
    assert_healthy(&rt).await;
}
