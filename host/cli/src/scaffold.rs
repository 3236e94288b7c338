//! `clauderon plugins new`: a new plugin crate from the SDK's template for its
//! kind, standing alone outside this repository.
//!
//! The SDK (`sdk/`, its templates and `wit/`) is embedded in the binary. The
//! first `plugins new` writes it to `CLAUDERON_HOME/sdk/<version>-<hash>/`,
//! one directory per SDK content, never rewritten, so crates made by an older
//! binary keep building. The new crate depends on it by path (or on the SDK
//! given with `--sdk`) and carries the templates' `Cargo.lock`, so it builds
//! with the dependency versions this SDK was tested with.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use clauderon_daemon::Home;

include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));

/// The kind of plugin to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Creates and manages where a session runs (the template: tmux).
    Backend,
    /// Says how to launch an AI coding agent and read its transcript.
    Agent,
    /// Provides real credentials by service name (the template: an environment variable).
    CredentialSource,
    /// Reacts to session events (the template: logs and counts them).
    Hook,
}

/// How a template names itself, replaced by the new plugin's names.
struct Template {
    /// Its directory under `sdk/templates`.
    dir: &'static str,
    /// Its component id, in component.toml and src/lib.rs.
    id: &'static str,
    /// The display name `info()` returns, as a string literal in src/lib.rs.
    display_name: &'static str,
}

impl Kind {
    fn template(self) -> Template {
        match self {
            Kind::Backend => Template { dir: "backend", id: "example-backend", display_name: "\"tmux (example)\"" },
            Kind::Agent => Template { dir: "agent", id: "example-agent", display_name: "\"My Agent (example)\"" },
            Kind::CredentialSource => Template {
                dir: "credential-source",
                id: "example-credentials",
                display_name: "\"EXAMPLE_TOKEN variable (example)\"",
            },
            Kind::Hook => Template { dir: "hook", id: "example-hook", display_name: "\"Event logger (example)\"" },
        }
    }
}

/// What `plugins new` was asked for.
pub struct NewPlugin {
    pub kind: Kind,
    pub name: String,
    pub dir: Option<PathBuf>,
    pub display_name: Option<String>,
    pub sdk: Option<PathBuf>,
}

/// One embedded file's text, or an error naming it (a binary built without it).
fn embedded(path: &str) -> anyhow::Result<&'static str> {
    SDK_FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .with_context(|| format!("this clauderon binary has no {path} built in"))
}

pub fn run(home: &Home, req: NewPlugin, bundled_ids: &[String]) -> anyhow::Result<ExitCode> {
    let name = req.name.as_str();
    if !clauderon_runtime::manifest::is_id(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        bail!(
            "`{name}` cannot be a plugin's name: use 1-63 lowercase letters, digits or dashes, starting with a letter \
             (it is the component's id and its crate's name), e.g. `my-backend`"
        );
    }
    if bundled_ids.iter().any(|b| b == name) {
        bail!("`{name}` is the id of a component bundled with clauderon; pick another name");
    }
    let dir = req.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} exists and is not empty; give another directory, or remove it first", dir.display());
    }
    let sdk = match &req.sdk {
        Some(path) => {
            let path = path.canonicalize().with_context(|| format!("no SDK at {}", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                bail!("{} is not the SDK's crate directory (it has no Cargo.toml)", path.display());
            }
            path
        }
        None => write_sdk(&home.sdk())?,
    };
    let files = render(&req, &sdk)?;
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let kind = req.kind.template().dir;
    println!("Created the {kind} `{name}` in {}, using the SDK in {}.", dir.display(), sdk.display());
    println!("Next:");
    println!("  cd {}", dir.display());
    println!("  cargo test                   # its unit tests, run natively against the SDK's mock host");
    println!("  clauderon plugins build      # builds target/clauderon/{name}.wasm");
    println!("  clauderon plugins install target/clauderon/{name}.wasm   # loads it into the running daemon");
    if req.kind == Kind::Backend {
        println!("  clauderon create --backend {name} --agent shell --repo PATH -p 'echo hello; sleep 600'");
    }
    Ok(ExitCode::SUCCESS)
}

/// The new crate's files: (path inside the crate, text).
fn render(req: &NewPlugin, sdk: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let t = req.kind.template();
    let name = req.name.as_str();
    let display = req.display_name.clone().unwrap_or_else(|| name.to_string());
    let from = |file: &str| embedded(&format!("sdk/templates/{}/{file}", t.dir));

    let lib = from("src/lib.rs")?;
    let display_literal = format!("{display:?}");
    let lib = replace_all(lib, "src/lib.rs", &[(t.id, name), (t.display_name, &display_literal)])?;
    let manifest = replace_all(from("component.toml")?, "component.toml", &[(t.id, name)])?;
    let template: toml::Table = toml::from_str(from("Cargo.toml")?).context("the built-in template's Cargo.toml")?;
    let cargo = cargo_toml(name, &template, sdk)?;
    let lock = replace_all(
        embedded("sdk/templates/Cargo.lock")?,
        "Cargo.lock",
        &[(&format!("name = \"template-{}\"", t.dir), &format!("name = \"{name}\""))],
    )?;
    Ok(vec![
        ("Cargo.toml", cargo),
        ("Cargo.lock", lock),
        ("component.toml", manifest),
        ("src/lib.rs", lib),
        (".gitignore", "/target\n".to_string()),
    ])
}

/// `text` with each `(from, to)` replaced; an error if a `from` is missing
/// (the template changed under this code).
fn replace_all(text: &str, file: &str, pairs: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut out = text.to_string();
    for (from, to) in pairs {
        if !out.contains(from) {
            bail!("the built-in template's {file} no longer contains {from}; this is a bug in clauderon");
        }
        out = out.replace(from, to);
    }
    Ok(out)
}

/// A standalone Cargo.toml: the templates' release profile, the SDK by path,
/// and an empty `[workspace]` so a parent directory's workspace does not claim it.
fn cargo_toml(name: &str, template: &toml::Table, sdk: &Path) -> anyhow::Result<String> {
    let workspace: toml::Table =
        toml::from_str(embedded("sdk/templates/Cargo.toml")?).context("the built-in templates' Cargo.toml")?;
    let profile = workspace.get("profile").cloned().context("the templates' Cargo.toml has no [profile]")?;
    let description = template.get("package").and_then(|p| p.get("description")?.as_str()).unwrap_or_default();
    let mut doc = toml::Table::new();
    let mut package = toml::Table::new();
    package.insert("name".into(), name.into());
    package.insert("description".into(), description.into());
    package.insert("version".into(), "0.1.0".into());
    package.insert("edition".into(), "2024".into());
    package.insert("publish".into(), false.into());
    doc.insert("package".into(), package.into());
    let mut lib = toml::Table::new();
    lib.insert("crate-type".into(), toml::Value::Array(vec!["cdylib".into()]));
    doc.insert("lib".into(), lib.into());
    let mut sdk_dep = toml::Table::new();
    sdk_dep.insert("path".into(), sdk.display().to_string().into());
    let mut deps = toml::Table::new();
    deps.insert("clauderon-sdk".into(), sdk_dep.into());
    // The template's other dependencies, `workspace = true` resolved from the templates' workspace.
    let shared = workspace.get("workspace").and_then(|w| w.get("dependencies"));
    for (dep, spec) in template.get("dependencies").and_then(toml::Value::as_table).into_iter().flatten() {
        if dep == "clauderon-sdk" {
            continue;
        }
        let inherited = spec.get("workspace").and_then(toml::Value::as_bool) == Some(true);
        let spec = if inherited { shared.and_then(|d| d.get(dep)).cloned() } else { Some(spec.clone()) };
        deps.insert(dep.clone(), spec.with_context(|| format!("the templates' workspace does not define {dep}"))?);
    }
    doc.insert("dependencies".into(), deps.into());
    doc.insert("workspace".into(), toml::Table::new().into());
    doc.insert("profile".into(), profile);
    let body = toml::to_string(&doc).context("writing Cargo.toml")?;
    Ok(format!(
        "# A clauderon plugin: `crate-type = [\"cdylib\"]` and component.toml beside this file.\n\
         # Build it with `clauderon plugins build`; test it with `cargo test`.\n{body}"
    ))
}

/// Writes the embedded SDK under `root` once per content; returns its crate directory.
fn write_sdk(root: &Path) -> anyhow::Result<PathBuf> {
    let files: Vec<_> = SDK_FILES.iter().filter(|(p, _)| !p.starts_with("sdk/templates/")).collect();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut hasher);
    let dir = root.join(format!("{}-{:016x}", env!("CARGO_PKG_VERSION"), hasher.finish()));
    if dir.join("sdk/Cargo.toml").is_file() {
        return Ok(dir.join("sdk"));
    }
    // Written beside, then renamed into place: never half an SDK.
    let tmp = root.join(format!(".writing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (rel, text) in &files {
        let path = tmp.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another `plugins new` may have written the same SDK meanwhile.
        if !dir.join("sdk/Cargo.toml").is_file() {
            return Err(e).with_context(|| format!("moving the SDK into {}", dir.display()));
        }
    }
    Ok(dir.join("sdk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [Kind; 4] = [Kind::Backend, Kind::Agent, Kind::CredentialSource, Kind::Hook];

    #[test]
    fn every_template_renders_with_its_own_names_and_none_of_the_templates() {
        for kind in KINDS {
            let req = NewPlugin {
                kind,
                name: "my-plugin".into(),
                dir: None,
                display_name: Some("Mine \"quoted\"".into()),
                sdk: None,
            };
            let files = render(&req, Path::new("/opt/sdk")).expect("renders");
            let text = |f: &str| files.iter().find(|(p, _)| *p == f).map(|(_, t)| t.clone()).expect(f);
            let t = kind.template();
            assert!(!text("src/lib.rs").contains(t.id) && !text("component.toml").contains(t.id), "{kind:?}");
            assert!(text("src/lib.rs").contains(r#""Mine \"quoted\"""#), "{kind:?}");
            assert!(text("component.toml").contains("id = \"my-plugin\""), "{kind:?}");
            let cargo: toml::Table = toml::from_str(&text("Cargo.toml")).expect("valid Cargo.toml");
            assert_eq!(cargo["package"]["name"].as_str(), Some("my-plugin"));
            assert_eq!(cargo["dependencies"]["clauderon-sdk"]["path"].as_str(), Some("/opt/sdk"));
            assert_eq!(cargo["profile"]["release"]["panic"].as_str(), Some("abort"));
            assert!(cargo.contains_key("workspace"));
            assert!(text("Cargo.lock").contains("name = \"my-plugin\""), "{kind:?}");
        }
    }

    #[test]
    fn the_embedded_sdk_stands_alone() {
        let cargo: toml::Table = toml::from_str(embedded("sdk/Cargo.toml").expect("sdk")).expect("toml");
        let package = cargo["package"].as_table().expect("[package]");
        assert!(package.values().all(|v| !v.is_table()), "no `key.workspace = true` in the SDK: {package:?}");
        assert!(embedded("wit/types.wit").is_ok() && embedded("sdk/src/testing.rs").is_ok());
    }

    #[test]
    fn the_sdk_is_written_once_per_content() {
        let root = tempfile::tempdir().expect("tempdir");
        let first = write_sdk(root.path()).expect("written");
        assert!(first.join("src/lib.rs").is_file() && first.join("../wit/backend.wit").is_file());
        assert!(!first.join("templates").exists());
        assert_eq!(write_sdk(root.path()).expect("again"), first);
        assert_eq!(std::fs::read_dir(root.path()).expect("dir").count(), 1, "nothing else left behind");
    }
}
