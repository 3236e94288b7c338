//! Components built for `wasm32-wasip2` import WASI: they load, and run with
//! an empty WASI context (no environment, no arguments, no preopened
//! directories), their stdout goes to the log, and WASI gives them no way
//! around their grants.

mod common;

use clauderon_runtime::{Capabilities, Kind, Source};
use common::*;

/// An environment variable set in the host process that must not reach a component.
const CANARY: &str = "CLAUDERON_CANARY_SECRET";
const CANARY_VALUE: &str = "canary-value-that-must-stay-in-the-host";

#[tokio::test]
async fn a_wasi_component_loads_and_is_marked_as_wasi() {
    let rt = runtime();
    let plugin = rt.load(fixture("wasi-probe")).await.expect("a component importing WASI loads");
    assert_eq!(plugin.kind(), Kind::Agent);
    assert!(plugin.wasi, "imports: {:?}", plugin.imports);
    for import in ["wasi:cli/environment@0.2.0", "wasi:filesystem/preopens@0.2.0", "wasi:cli/stdout@0.2.0"] {
        assert!(plugin.imports.iter().any(|i| i == import), "no {import} in {:?}", plugin.imports);
    }
    // WASI is not a capability: it grants nothing the manifest did not ask for.
    assert_eq!(plugin.grants, Capabilities::default());
    assert!(plugin.imports.iter().all(|i| i.starts_with("wasi:") || i.starts_with("clauderon:plugin/")));

    // Installed by a user, it needs no approval beyond its (empty) manifest:
    // importing WASI asks for nothing.
    let user = Source::User {
        path: "/tmp/wasi-probe.wasm".into(),
        bytes: fixture("wasi-probe").bytes().clone(),
        approved: Some(clauderon_runtime::Approval::new(
            "wasi-probe",
            fixture("wasi-probe").bytes(),
            Capabilities::default(),
        )),
    };
    let other = runtime();
    let plugin = other.load(user).await.expect("approved with nothing, it loads");
    assert!(plugin.wasi && plugin.source == "user");
    assert_eq!(plugin.grants, Capabilities::default());

    // The components that do not import WASI are not marked.
    rt.load(bundled("shell")).await.expect("shell loads");
    assert!(!rt.plugin("shell").expect("shell").wasi);
}

#[tokio::test]
async fn a_wasi_component_sees_no_environment_arguments_or_directories() {
    // SAFETY: no other thread of this test binary reads or writes the environment
    // (nextest runs each test in its own process).
    unsafe { std::env::set_var(CANARY, CANARY_VALUE) };
    assert_eq!(std::env::var(CANARY).as_deref(), Ok(CANARY_VALUE));

    let rt = runtime();
    rt.load(fixture("wasi-probe")).await.expect("loads");
    let mut agent = rt.agent("wasi-probe").await.expect("instance");
    assert_eq!(agent.info().await.expect("info").id, "wasi-probe");
    let plan = agent.plan(&launch_request("probe")).await.expect("plan");
    assert_eq!(plan.argv, vec!["env=0", "args=0", "preopens=0", "stdout=ok"], "what the component saw");
    assert!(!plan.argv.iter().any(|a| a.contains(CANARY) || a.contains(CANARY_VALUE)));

    // A second call on the same instance sees the same empty context.
    let again = agent.plan(&launch_request("probe")).await.expect("plan again");
    assert_eq!(again.argv, plan.argv);
}

#[tokio::test]
async fn a_wasi_components_stdout_reaches_the_log_under_its_id() {
    let (capture, _guard) = LogCapture::start();

    let rt = runtime();
    rt.load(fixture("wasi-probe")).await.expect("loads");
    let mut agent = rt.agent("wasi-probe").await.expect("instance");
    let plan = agent.plan(&launch_request("probe")).await.expect("plan");
    assert!(plan.argv.contains(&"stdout=ok".to_string()), "{:?}", plan.argv);

    let logged = capture.text();
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains("hello from wasi stdout")).collect();
    assert_eq!(lines.len(), 1, "the stdout line should be logged once:\n{logged}");
    assert!(lines[0].contains("component=wasi-probe") && lines[0].contains("stream=\"stdout\""), "{}", lines[0]);

    // Each call flushes only what was written since the last one.
    agent.plan(&launch_request("probe")).await.expect("plan again");
    let logged = capture.text();
    assert_eq!(logged.lines().filter(|l| l.contains("hello from wasi stdout")).count(), 2, "{logged}");
}
