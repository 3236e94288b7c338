//! Loading: manifests, grants, approval of user components, the compile
//! cache, and every SDK template.

mod common;

use std::sync::Arc;

use clauderon_runtime::bindings::agent::exports::clauderon::plugin::agent_api::LaunchRequest;
use clauderon_runtime::bindings::types::{EventKind, SessionEvent};
use clauderon_runtime::cache::Outcome;
use clauderon_runtime::{Approval, Capabilities, Kind, LoadError, Runtime, RuntimeConfig, Source};
use common::*;

/// `source` as a user component, approved (for its own bytes) with `approved`.
fn user(source: Source, approved: Option<Capabilities>) -> Source {
    let bytes = source.bytes().clone();
    let approved = approved.map(|caps| Approval::new(&manifest_id(&bytes), &bytes, caps));
    Source::User { path: "/tmp/misbehave.wasm".into(), bytes, approved }
}

/// Bytes that change a component and keep it valid: a custom section
/// (id 0, size 5, name `p`, payload `xyz`) appended at the top level.
const PATCH: &[u8] = &[0x00, 0x05, 0x01, b'p', b'x', b'y', b'z'];

fn manifest_id(bytes: &[u8]) -> String {
    let text = clauderon_runtime::manifest::extract(bytes).expect("a manifest");
    clauderon_runtime::Manifest::parse(&text).expect("valid").id
}

#[tokio::test]
async fn an_approval_holds_only_for_the_bytes_it_was_given() {
    let rt = runtime();
    let full = Capabilities { process: vec!["true".into(), "echo".into(), "sleep".into()], ..Default::default() };
    // Approved for `misbehave`; then the file is replaced by another component
    // (here the bundled shell agent) under the same name.
    let approved = Approval::new("misbehave", fixture("misbehave").bytes(), full.clone());
    let swapped = Source::User {
        path: "/tmp/misbehave.wasm".into(),
        bytes: bundled("shell").bytes().clone(),
        approved: Some(approved),
    };
    let err = rt.load(swapped).await.err().expect("another component under an approval");
    assert!(matches!(err, LoadError::NotApproved { .. }) && err.to_string().contains("now `shell`"), "{err}");
    // The same id with bytes added (still a valid component with the same manifest).
    let mut changed = fixture("misbehave").bytes().to_vec();
    changed.extend_from_slice(PATCH);
    let approved = Approval::new("misbehave", fixture("misbehave").bytes(), full);
    let patched = Source::User { path: "/tmp/misbehave.wasm".into(), bytes: changed.into(), approved: Some(approved) };
    let err = rt.load(patched).await.err().expect("changed bytes under an approval");
    assert!(err.to_string().contains("the file changed since it was approved"), "{err}");
}

#[tokio::test]
async fn a_user_component_needs_approval_covering_what_it_asks() {
    let rt = runtime();
    let err = rt.load(user(fixture("misbehave"), None)).await.err().expect("unapproved");
    assert!(matches!(err, LoadError::NotApproved { .. }), "{err}");

    let partial = Capabilities { process: vec!["true".into()], ..Default::default() };
    let err = rt.load(user(fixture("misbehave"), Some(partial))).await.err().expect("approval too narrow");
    assert!(err.to_string().contains("process: executable `echo`"), "{err}");

    let full = Capabilities { process: vec!["true".into(), "echo".into(), "sleep".into()], ..Default::default() };
    let plugin = rt.load(user(fixture("misbehave"), Some(full))).await.expect("approved");
    assert_eq!(plugin.source, "user");
    assert_eq!(plugin.kind(), Kind::Backend);
}

#[tokio::test]
async fn duplicate_ids_are_refused() {
    let rt = runtime();
    rt.load(bundled("shell")).await.expect("first");
    let err = rt.load(bundled("shell")).await.err().expect("second");
    assert!(matches!(err, LoadError::Duplicate { .. }), "{err}");
}

/// A component whose manifest names it one thing and whose `info()` another
/// (here: the shell agent's manifest edited in place to say `shexl`) would be
/// granted and chosen under one id while calling itself another: refused.
#[tokio::test]
async fn a_component_whose_info_disagrees_with_its_manifest_is_refused() {
    let rt = runtime();
    let bytes = bundled("shell").bytes().to_vec();
    let (from, to) = (b"id = \"shell\"", b"id = \"shexl\"");
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the manifest names the component");
    let mut forged = bytes.clone();
    forged[at..at + to.len()].copy_from_slice(to);
    let err = rt.load(Source::Bundled { name: "forged".into(), bytes: forged.into() }).await.err().expect("refused");
    assert!(matches!(err, LoadError::IdMismatch { ref said, .. } if said == "shell"), "{err}");
    assert!(err.to_string().contains("calls itself `shell` in info() but `shexl` in its component.toml"), "{err}");
    assert!(rt.plugin("shexl").is_none() && rt.plugin("shell").is_none());
}

#[tokio::test]
async fn garbage_and_manifest_less_files_are_refused_with_a_reason() {
    let rt = runtime();
    let garbage = Source::User { path: "/tmp/junk.wasm".into(), bytes: Arc::from(&b"not wasm"[..]), approved: None };
    let err = rt.load(garbage).await.err().expect("garbage");
    assert!(matches!(err, LoadError::NoManifest { .. }), "{err}");

    let bare = wasmtime::component::Component::new(rt.engine(), "(component)").expect("empty component");
    let bytes: Arc<[u8]> = bare.serialize().expect("serialize").into();
    let err = rt.load(Source::Bundled { name: "bare".into(), bytes }).await.err().expect("no manifest");
    assert!(err.to_string().contains("no clauderon manifest"), "{err}");

    // The runtime still loads good components afterwards.
    rt.load(bundled("shell")).await.expect("shell still loads");
}

#[tokio::test]
async fn compiled_components_come_from_the_cache_the_second_time() {
    let home = tempfile::tempdir().expect("tempdir");
    let first = {
        let rt = Runtime::new(RuntimeConfig::under(home.path())).expect("runtime");
        rt.load(bundled("shell")).await.expect("load").cache
    };
    let second = {
        let rt = Runtime::new(RuntimeConfig::under(home.path())).expect("runtime");
        let p = rt.load(bundled("shell")).await.expect("load");
        let mut agent = rt.agent("shell").await.expect("instance");
        assert_eq!(agent.info().await.expect("info").id, "shell");
        p.cache
    };
    assert_eq!((first, second), (Outcome::Compiled, Outcome::Hit));
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(home.path().join("cache")).expect("cache dir") {
        let mode = entry.expect("entry").metadata().expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "cache files must be private");
    }
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_recompiled() {
    let home = tempfile::tempdir().expect("tempdir");
    let source = bundled("shell");
    {
        let rt = Runtime::new(RuntimeConfig::under(home.path())).expect("runtime");
        rt.load(source.clone()).await.expect("load");
    }
    for entry in std::fs::read_dir(home.path().join("cache")).expect("cache dir") {
        std::fs::write(entry.expect("entry").path(), b"corrupt").expect("corrupt it");
    }
    let rt = Runtime::new(RuntimeConfig::under(home.path())).expect("runtime");
    let p = rt.load(source).await.expect("recompiled");
    assert_eq!(p.cache, Outcome::Compiled);
}

/// The one cache entry in `home/cache` (after loading one component).
fn only_entry(home: &std::path::Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(home.join("cache"))
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().expect("one entry")
}

/// Load `source` in a fresh runtime over `home`, as a restarted daemon would.
async fn load_in(home: &std::path::Path, source: Source) -> Arc<clauderon_runtime::Plugin> {
    let rt = Runtime::new(RuntimeConfig::under(home)).expect("runtime");
    rt.load(source).await.expect("load")
}

#[tokio::test]
async fn a_cache_entry_with_patched_code_is_recompiled_never_run() {
    let home = tempfile::tempdir().expect("tempdir");
    assert_eq!(load_in(home.path(), bundled("shell")).await.cache, Outcome::Compiled);
    assert_eq!(load_in(home.path(), bundled("shell")).await.cache, Outcome::Hit, "an untouched entry is used");
    // An attacker who can write the cache directory patches the machine code
    // in place (the middle of the artifact is code; its header still parses).
    let entry = only_entry(home.path());
    let mut bytes = std::fs::read(&entry).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&entry, &bytes).expect("patch");
    let (capture, _guard) = LogCapture::start();
    let plugin = load_in(home.path(), bundled("shell")).await;
    assert_eq!(plugin.cache, Outcome::Compiled, "the patched entry was run");
    let logged = capture.text();
    assert!(
        logged.contains("component=shell") && logged.contains("its tag does not verify"),
        "the refusal is logged, naming the component and the rule:\n{logged}"
    );
    assert_ne!(std::fs::read(&entry).expect("read"), bytes, "the entry was rewritten by the daemon");
}

#[tokio::test]
async fn another_components_entry_moved_under_this_name_is_not_run() {
    // Both entries are genuine, written by this cache; moving the one of
    // `claude-code` to where `shell`'s belongs would run claude-code's code
    // with shell's grants.
    let home = tempfile::tempdir().expect("tempdir");
    load_in(home.path(), bundled("claude-code")).await;
    let theirs = only_entry(home.path());
    let taken = home.path().join("claude-code.cwasm.bak");
    std::fs::rename(&theirs, &taken).expect("set it aside");
    load_in(home.path(), bundled("shell")).await;
    let ours = only_entry(home.path());
    std::fs::copy(&taken, &ours).expect("swap");
    let plugin = load_in(home.path(), bundled("shell")).await;
    assert_eq!(plugin.cache, Outcome::Compiled, "another component's entry was run as shell");
    assert_eq!(plugin.id(), "shell");
}

#[tokio::test]
async fn a_symlinked_cache_entry_is_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    load_in(home.path(), bundled("shell")).await;
    let entry = only_entry(home.path());
    // A valid entry kept elsewhere (where the attacker can change it later), linked in.
    let elsewhere = home.path().join("elsewhere.cwasm");
    std::fs::rename(&entry, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &entry).expect("symlink");
    let plugin = load_in(home.path(), bundled("shell")).await;
    assert_eq!(plugin.cache, Outcome::Compiled, "the cache followed a symlink");
    assert!(!entry.symlink_metadata().expect("entry").file_type().is_symlink(), "the entry was replaced by a file");
}

#[tokio::test]
async fn a_cache_key_others_can_read_turns_the_cache_off() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().expect("tempdir");
    load_in(home.path(), bundled("shell")).await;
    let key = clauderon_runtime::cache::key_path(&home.path().join("cache"));
    assert_eq!(std::fs::metadata(&key).expect("key").permissions().mode() & 0o777, 0o600);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_eq!(load_in(home.path(), bundled("shell")).await.cache, Outcome::Compiled);
}

#[tokio::test]
async fn the_shell_agent_plans_sh_c_prompt() {
    let rt = runtime();
    rt.load(bundled("shell")).await.expect("shell");
    let mut agent = rt.agent("shell").await.expect("instance");
    let request = launch_request("echo hi > out.txt");
    let plan = agent.plan(&request).await.expect("plan");
    assert_eq!(plan.argv, vec!["sh", "-c", "echo hi > out.txt"]);
    assert!(plan.credentials.is_empty());
    let empty = LaunchRequest { prompt: "  ".into(), ..request };
    let err = agent.plan(&empty).await.expect_err("an empty prompt is refused");
    assert!(err.is_plugin_error() && err.to_string().contains("--prompt"), "{err}");
}

#[tokio::test]
async fn every_sdk_template_builds_and_loads() {
    let rt = runtime();
    let ids = ["example-backend", "example-agent", "example-credentials", "example-hook"];
    for id in ids {
        rt.load(template(id)).await.unwrap_or_else(|e| panic!("template {id}: {e}"));
    }
    let kinds: Vec<Kind> = ids.iter().map(|id| rt.plugin(id).expect("loaded").kind()).collect();
    assert_eq!(kinds, vec![Kind::Backend, Kind::Agent, Kind::CredentialSource, Kind::Hook]);
    assert_eq!(rt.backend("example-backend").await.expect("b").info().await.expect("info").id, "example-backend");
    assert_eq!(rt.agent("example-agent").await.expect("a").info().await.expect("info").id, "example-agent");
    let mut source = rt.credential_source("example-credentials").await.expect("c");
    assert_eq!(source.info().await.expect("info").id, "example-credentials");
    let mut hook = rt.hook("example-hook").await.expect("h");
    let event = SessionEvent {
        session_id: "s".into(),
        session_name: "n".into(),
        kind: EventKind::Created,
        timestamp_ms: 0,
        detail: None,
    };
    hook.on_event(&event).await.expect("hook handles an event");
}
