//! The zellij backend's layout (KDL, given to `zellij --layout-string`) for
//! any working directory, agent HOME and argv — the parts of it a session's
//! prompt, name and agent reach. The backend is compiled here from its own
//! source (`components/backend-zellij/src/lib.rs`, a wasm `cdylib`).
//!
//! Properties: never a panic; the layout parses as KDL v1 (the `kdl` crate
//! at 4.5.0, the version zellij 0.45 reads layouts with); its structure is
//! exactly the fixed one (one `layout`, the tab bar and status bar template,
//! one tab with one pane, at most one `args` node), so no value injects a
//! node, an entry or a property; and the pane's `command`, `cwd` and `args`
//! come out of the parsed document exactly as they went in (`env HOME=<home>`
//! first when the agent has its own HOME).
#![no_main]

use clauderon_sdk::types::{AccessMode, EnvVar, LaunchPlan, SessionSpec};
use kdl::{KdlDocument, KdlNode};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../components/backend-zellij/src/lib.rs"]
mod zellij;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xff (never in UTF-8): workdir, HOME (empty: none), argv…
    let fields: Vec<String> = data.split(|&b| b == 0xff).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let workdir = fields.first().cloned().unwrap_or_default();
    let home = fields.get(1).filter(|h| !h.is_empty()).cloned();
    let argv: Vec<String> = fields.iter().skip(2).cloned().collect();
    let spec = spec(&workdir, home.as_deref(), &argv);

    let text = zellij::layout(&spec);
    let doc: KdlDocument = match text.parse() {
        Ok(doc) => doc,
        Err(e) => panic!("the layout is not KDL: {e:?}\n{text}"),
    };

    let mut expected: Vec<String> = home.map(|h| vec!["env".into(), format!("HOME={h}")]).unwrap_or_default();
    expected.extend(argv);
    let (command, args) = expected.split_first().map(|(c, a)| (c.clone(), a.to_vec())).unwrap_or_default();

    let [layout] = doc.nodes() else { panic!("not one top-level node:\n{text}") };
    assert_eq!(name(layout), "layout");
    assert!(layout.entries().is_empty(), "{text}");
    let [template, tab] = children(layout) else { panic!("layout holds other nodes:\n{text}") };
    assert_eq!(name(template), "default_tab_template");
    assert_eq!(children(template).iter().map(name).collect::<Vec<_>>(), ["pane", "children", "pane"], "{text}");
    assert_eq!(name(tab), "tab");
    assert_eq!(tab.entries().len(), 2, "{text}");
    let [pane] = children(tab) else { panic!("the tab holds other nodes:\n{text}") };
    assert_eq!(name(pane), "pane");

    // `pane command=… cwd=…`: those two properties and nothing else.
    let props: Vec<(Option<&str>, Option<&str>)> =
        pane.entries().iter().map(|e| (e.name().map(|n| n.value()), e.value().as_string())).collect();
    assert_eq!(props, [(Some("command"), Some(command.as_str())), (Some("cwd"), Some(workdir.as_str()))], "{text}");

    match children(pane) {
        [] => assert!(args.is_empty(), "args {args:?} went missing:\n{text}"),
        [node] => {
            assert_eq!(name(node), "args", "{text}");
            assert!(node.children().is_none(), "{text}");
            let got: Vec<Option<&str>> =
                node.entries().iter().map(|e| if e.name().is_none() { e.value().as_string() } else { None }).collect();
            let want: Vec<Option<&str>> = args.iter().map(|a| Some(a.as_str())).collect();
            assert_eq!(got, want, "the args changed:\n{text}");
        }
        _ => panic!("the pane holds more than its args:\n{text}"),
    }
});

fn name(node: &KdlNode) -> &str {
    node.name().value()
}

fn children(node: &KdlNode) -> &[KdlNode] {
    node.children().map(|d| d.nodes()).unwrap_or_default()
}

fn spec(workdir: &str, home: Option<&str>, argv: &[String]) -> SessionSpec {
    let mut env = vec![EnvVar { name: "HTTPS_PROXY".into(), value: "http://session:s@127.0.0.1:1".into() }];
    if let Some(home) = home {
        env.push(EnvVar { name: "HOME".into(), value: home.into() });
    }
    SessionSpec {
        id: "00000000-0000-0000-0000-000000000000".into(),
        name: "fuzz".into(),
        resource_name: "clauderon-fuzz".into(),
        worktree: workdir.into(),
        workdir: workdir.into(),
        access_mode: AccessMode::ReadWrite,
        launch: LaunchPlan {
            argv: argv.to_vec(),
            env,
            files: Vec::new(),
            credentials: Vec::new(),
            transcript_path: None,
        },
        image: None,
        cpu_limit: None,
        memory_limit: None,
        options: Vec::new(),
    }
}
