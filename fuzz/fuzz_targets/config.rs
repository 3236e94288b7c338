//! The sections of `config.toml` that library crates own, from any text:
//! `[proxy]` (`clauderon_proxy::ProxyConfig`, with its `[[proxy.rules]]`),
//! `[limits.<kind>]` (`clauderon_runtime::Limits`) and `[sandbox]`
//! (`clauderon_sessions::SandboxConfig`). The file's own `Config` (and its
//! `[general]`, `[daemon]`, `[credentials]` and `[backends.*]`) lives in the
//! daemon's binary crate, which a fuzz target cannot depend on; those tables
//! are accepted here as they are.
//!
//! Properties: never a panic; what parses is written back by serde to text
//! that parses to the same settings (the daemon rewrites its config); a
//! configured rule wins over the built-in ones for every exact host it names;
//! and the sandbox's `hide` list only ever adds to what is hidden — whatever
//! it says, the credential stores and clauderon's home stay hidden.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use clauderon_proxy::{ProxyConfig, RuleSet};
use clauderon_runtime::{Kind, Limits};
use clauderon_sessions::SandboxConfig;
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

/// `config.toml` as the library crates see it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sections {
    #[serde(default)]
    proxy: ProxyConfig,
    #[serde(default)]
    limits: BTreeMap<Kind, Limits>,
    #[serde(default)]
    sandbox: SandboxConfig,
    /// The daemon's own tables, kept as they are.
    #[serde(flatten)]
    rest: BTreeMap<String, toml::Value>,
}

/// A user home with credential stores and clauderon's home in it (one
/// fixed directory under the temporary directory, shared by every run).
struct Homes {
    user: PathBuf,
    clauderon: PathBuf,
}

fn homes() -> &'static Homes {
    static HOMES: OnceLock<Homes> = OnceLock::new();
    HOMES.get_or_init(|| {
        let user = std::env::temp_dir().join("clauderon-fuzz-config").join("home");
        let clauderon = user.join(".clauderon");
        for d in [user.join(".ssh"), user.join(".config/gh"), clauderon.clone(), user.join("work")] {
            std::fs::create_dir_all(&d).expect("make the fuzz home");
        }
        Homes { user, clauderon }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sections) = toml::from_str::<Sections>(text) else { return };

    // Written back and read again, the settings are the same.
    let written = match toml::to_string(&sections) {
        Ok(t) => t,
        Err(e) => panic!("parsed settings cannot be written back: {e}\n{sections:?}"),
    };
    let again: Sections = match toml::from_str(&written) {
        Ok(s) => s,
        Err(e) => panic!("written settings do not parse: {e}\n{written}"),
    };
    assert_eq!(json(&sections), json(&again), "the settings changed on a round trip through:\n{written}");

    for (kind, limits) in &sections.limits {
        assert!(Kind::ALL.contains(kind));
        assert_eq!(sections.limits.get(kind), Some(limits));
    }

    // A configured rule takes precedence over the built-in ones for the hosts it names.
    let proxy = &sections.proxy;
    let rules = RuleSet::new(proxy.grafana_host.as_deref(), proxy.rules.clone());
    for (i, rule) in proxy.rules.iter().enumerate() {
        for host in rule.hosts.iter().filter(|h| !h.starts_with("*.") && !h.ends_with('.')) {
            let found = rules.find(host).map(|r| rules.rules().iter().position(|x| std::ptr::eq(x, r)));
            match found {
                Some(Some(at)) => assert!(at <= i, "`{host}` of configured rule {i} went to rule {at}"),
                other => panic!("`{host}` of configured rule {i} found {other:?}"),
            }
        }
    }
    let _ = rules.services();
    let _ =
        clauderon_proxy::session_env("http://session:x@127.0.0.1:1", std::path::Path::new("/ca.pem"), &proxy.no_proxy);

    // `hide` adds to the hidden paths and never removes one.
    let h = homes();
    let base = clauderon_sandbox::default_hidden(&h.user, &h.clauderon, &[]);
    let hidden = clauderon_sandbox::default_hidden(&h.user, &h.clauderon, &sections.sandbox.hide);
    for p in &base {
        assert!(hidden.contains(p), "hide = {:?} un-hid {}", sections.sandbox.hide, p.display());
    }
    assert!(hidden.windows(2).all(|w| w[0] < w[1]), "hidden paths are not sorted and unique: {hidden:?}");
});

fn json(s: &Sections) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or_else(|e| panic!("settings as JSON: {e}"))
}
