//! `clauderon plugins …`: create, list, inspect, install, remove and build components.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use clauderon_runtime::{Approval, Manifest, Runtime, RuntimeConfig, Source, manifest};

use crate::{bundled, scaffold};
use clauderon_daemon::Home;

#[derive(Subcommand)]
pub enum PluginsCmd {
    /// Start a new plugin: write a crate from the SDK's template for KIND that
    /// builds, passes its own tests and loads as written. NAME is the
    /// component's id and the crate's name. The SDK is written once to
    /// CLAUDERON_HOME/sdk and the crate depends on it by path.
    ///
    /// Example: `clauderon plugins new --kind backend my-backend`, then in
    /// ./my-backend `cargo test` and `clauderon plugins build`.
    New {
        /// What kind of plugin.
        #[arg(long, value_enum)]
        kind: scaffold::Kind,
        /// Its name: lowercase letters, digits and dashes, starting with a letter.
        name: String,
        /// Where to write it (default ./NAME); must be absent or empty.
        dir: Option<PathBuf>,
        /// The name clauderon shows for it (default NAME).
        #[arg(long)]
        display_name: Option<String>,
        /// Use this SDK crate directory (e.g. a clauderon checkout's sdk/)
        /// instead of the one built into this binary.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// List the loaded plugins: the bundled ones and those installed in
    /// CLAUDERON_HOME/components, with their kinds and grants. Components that
    /// were refused are reported on stderr with the reason.
    List {
        /// Print a JSON array (id, kind, version, source, capabilities, …).
        #[arg(long)]
        json: bool,
    },
    /// Show what a component file is: its world, kind, version, imports,
    /// exports and requested capabilities, or what is wrong with it.
    /// Exits 1 if it could not be loaded as it is.
    Inspect {
        /// The component file (.wasm).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a component file: show the capabilities it asks for, ask for
    /// approval, then copy it (and the approved grants) into
    /// CLAUDERON_HOME/components.
    Install {
        /// The component file (.wasm), e.g. from `clauderon plugins build`.
        file: PathBuf,
        /// Approve the requested capabilities without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove an installed (user) component.
    Remove {
        /// The component's id.
        id: String,
    },
    /// Run one function of a component file, on a fresh instance with the
    /// capabilities it asks for and the usual limits, and print its answer as
    /// JSON: try a function without a session. Its log lines go to stderr.
    /// Components' HTTP goes out directly here, not through the proxy.
    ///
    /// ARGS is the function's parameters as a JSON array, or, for a function
    /// of one parameter, that parameter; `-` reads it from stdin. Records are
    /// objects with snake_case fields, enums their CamelCase names.
    ///
    /// Examples: `clauderon plugins call my-backend.wasm info`,
    /// `clauderon plugins call my-backend.wasm status '"clauderon-fix-bug"'`.
    Call {
        /// The component file (.wasm).
        file: PathBuf,
        /// The function's WIT name (`info`, `create`, `status`, `plan`…);
        /// a wrong one lists the kind's functions and their parameters.
        function: String,
        /// Its arguments as JSON (see above).
        args: Option<String>,
        /// Grant the capabilities it asks for without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Build the plugin crate(s) in DIR (a crate or a cargo workspace, each
    /// plugin crate with a component.toml) into DIR/target/clauderon/<id>.wasm.
    /// Uses rustup's wasm32-unknown-unknown target if installed, else Debian's
    /// rustc-web with -Zbuild-std. CLAUDERON_WASM_TARGET_DIR sets cargo's target dir.
    /// A component clauderon would not load (e.g. it imports a capability its
    /// component.toml does not grant) fails the build, saying what to change.
    Build {
        /// The crate or workspace directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the components (default DIR/target/clauderon).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(cmd: PluginsCmd) -> anyhow::Result<ExitCode> {
    let home = Home::locate()?;
    match cmd {
        PluginsCmd::New { kind, name, dir, display_name, sdk } => {
            scaffold::run(&home, scaffold::NewPlugin { kind, name, dir, display_name, sdk }, &bundled_ids())
        }
        PluginsCmd::List { json } => list(&home, json).await,
        PluginsCmd::Inspect { file, json } => inspect(&home, &file, json).await,
        PluginsCmd::Install { file, yes } => install(&home, &file, yes).await,
        PluginsCmd::Remove { id } => remove(&home, &id),
        PluginsCmd::Call { file, function, args, yes } => call(&home, &file, &function, args, yes).await,
        PluginsCmd::Build { dir, out } => build(&home, dir, out).await,
    }
}

fn new_runtime(home: &Home) -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig::under(&home.root)).context("starting the component runtime")
}

/// A runtime with every bundled and user component loaded (failures recorded).
pub async fn load_everything(home: &Home, config: RuntimeConfig) -> anyhow::Result<Runtime> {
    clauderon_daemon::load_components(home, config, bundled::sources()).await
}

async fn list(home: &Home, as_json: bool) -> anyhow::Result<ExitCode> {
    let runtime = load_everything(home, RuntimeConfig::under(&home.root)).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&runtime.inventory())?);
    } else {
        println!("{:<22} {:<18} {:<9} {:<8} CAPABILITIES", "ID", "KIND", "VERSION", "SOURCE");
        for p in runtime.plugins() {
            let grants = p.grants.describe();
            let grants = if grants.is_empty() { "none".to_string() } else { grants.join("; ") };
            let kind = p.kind().to_string();
            println!("{:<22} {:<18} {:<9} {:<8} {grants}", p.id(), kind, p.manifest.version, p.source);
        }
    }
    for f in runtime.failures() {
        eprintln!("refused {}: {}", f.origin, f.error);
    }
    Ok(ExitCode::SUCCESS)
}

fn read_component(file: &Path) -> anyhow::Result<Arc<[u8]>> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(bytes.into())
}

async fn inspect(home: &Home, file: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let bytes = read_component(file)?;
    let runtime = new_runtime(home)?;
    let found = runtime.inspect(bytes).await;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        println!("file:         {}", file.display());
        if let Some(m) = &found.manifest {
            println!("id:           {}", m.id);
            println!("kind:         {}", m.kind);
            println!("version:      {}", m.version);
            println!("description:  {}", m.description);
        }
        println!("world:        {}", found.world.as_deref().unwrap_or("(none recognised)"));
        if let Some(m) = &found.manifest {
            let asks = m.capabilities.explain();
            if asks.is_empty() {
                println!("capabilities: none (log and kv only)");
            } else {
                println!("capabilities:");
                print_grants(&asks);
            }
        }
        println!("imports:");
        for i in &found.imports {
            println!("  {i}");
        }
        println!("exports:");
        for e in &found.exports {
            println!("  {e}");
        }
        if found.problems.is_empty() {
            println!("problems:     none");
        } else {
            println!("problems:");
            for p in &found.problems {
                println!("  - {p}");
            }
        }
    }
    Ok(if found.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn bundled_ids() -> Vec<String> {
    bundled::BUNDLED
        .iter()
        .filter_map(|(_, bytes)| manifest::extract(bytes))
        .filter_map(|text| Manifest::parse(&text).ok())
        .map(|m| m.id)
        .collect()
}

async fn install(home: &Home, file: &Path, yes: bool) -> anyhow::Result<ExitCode> {
    let bytes = read_component(file)?;
    let mut runtime = new_runtime(home)?;
    let found = runtime.inspect(bytes.clone()).await;
    let Some(manifest) = found.manifest.clone().filter(|_| found.problems.is_empty()) else {
        bail!("{} cannot be installed:\n  - {}", file.display(), found.problems.join("\n  - "));
    };
    if bundled_ids().contains(&manifest.id) {
        bail!("`{}` is the id of a bundled component; give yours another id in its component.toml", manifest.id);
    }
    let approval = Approval::new(&manifest.id, &bytes, manifest.capabilities.clone());
    let trial = Source::User { path: file.to_path_buf(), bytes: bytes.clone(), approved: Some(approval.clone()) };
    runtime.load(trial).await.with_context(|| format!("{} does not load", file.display()))?;

    println!("{} {} ({}) — {}", manifest.id, manifest.version, manifest.kind, manifest.description);
    let asks = manifest.capabilities.explain();
    if asks.is_empty() {
        println!("It asks for no capabilities beyond logging and its own small key-value state.");
    } else {
        println!("It asks to:");
        print_grants(&asks);
    }
    if !yes && !confirm("Install it with these grants?")? {
        println!("Not installed.");
        return Ok(ExitCode::FAILURE);
    }
    let dir = home.components();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join(format!("{}.wasm", manifest.id));
    write_atomically(&target, &bytes)?;
    let grants = approval.to_toml().context("writing the approval")?;
    write_atomically(&target.with_extension("grants.toml"), grants.as_bytes())?;
    println!("Installed {} as {}.", manifest.id, target.display());
    Ok(ExitCode::SUCCESS)
}

async fn call(home: &Home, file: &Path, function: &str, args: Option<String>, yes: bool) -> anyhow::Result<ExitCode> {
    let bytes = read_component(file)?;
    let mut runtime = new_runtime(home)?;
    let found = runtime.inspect(bytes.clone()).await;
    let Some(manifest) = found.manifest.clone().filter(|_| found.problems.is_empty()) else {
        bail!("{} cannot be loaded:\n  - {}", file.display(), found.problems.join("\n  - "));
    };
    let asks = manifest.capabilities.explain();
    if !asks.is_empty() {
        eprintln!("{} asks to:", manifest.id);
        for g in &asks {
            eprintln!("  - {}", g.can);
        }
        if !yes && !confirm("Run it with these grants?")? {
            eprintln!("Not run.");
            return Ok(ExitCode::FAILURE);
        }
    }
    let args = match args.as_deref() {
        None => Vec::new(),
        Some(text) => {
            let text = if text == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the arguments from stdin")?
            } else {
                text.to_string()
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).context("the arguments are not JSON (a string is written '\"text\"')")?;
            let takes_one = clauderon_runtime::call::functions(manifest.kind)
                .iter()
                .any(|(name, sig)| *name == function && !sig.is_empty() && !sig.contains(", "));
            match value {
                serde_json::Value::Array(all) if !takes_one => all,
                one => vec![one],
            }
        }
    };
    let approval = Approval::new(&manifest.id, &bytes, manifest.capabilities.clone());
    let source = Source::User { path: file.to_path_buf(), bytes, approved: Some(approval) };
    runtime.load(source).await.with_context(|| format!("{} does not load", file.display()))?;
    let answer = clauderon_runtime::call::call_by_name(&runtime, &manifest.id, function, args).await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

/// Each grant: what it allows, and what it never allows.
fn print_grants(grants: &[clauderon_runtime::manifest::GrantText]) {
    for g in grants {
        println!("  - {}", g.can);
        println!("    never: {}", g.never);
    }
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not asking on a non-interactive stdin: pass --yes to approve these grants");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("moving {} into place", path.display()))?;
    Ok(())
}

fn remove(home: &Home, id: &str) -> anyhow::Result<ExitCode> {
    let path = home.components().join(format!("{id}.wasm"));
    if !path.exists() {
        if bundled_ids().iter().any(|b| b == id) {
            bail!("`{id}` is bundled with clauderon and cannot be removed");
        }
        bail!("no user component `{id}` in {}", home.components().display());
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    let grants = path.with_extension("grants.toml");
    if grants.exists() {
        std::fs::remove_file(&grants).with_context(|| format!("removing {}", grants.display()))?;
    }
    println!("Removed {id}.");
    Ok(ExitCode::SUCCESS)
}

async fn build(home: &Home, dir: PathBuf, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.canonicalize().with_context(|| format!("no such directory: {}", dir.display()))?;
    let out = out.unwrap_or_else(|| dir.join("target/clauderon"));
    // A shared target dir (as `just` sets) lets std for wasm32 be built once.
    let target_dir =
        std::env::var_os("CLAUDERON_WASM_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| dir.join("target"));
    let built = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let toolchain = clauderon_componentize::Toolchain::detect()?;
        Ok(clauderon_componentize::build_dir(&toolchain, &dir, &target_dir, &out)?)
    })
    .await??;
    if built.is_empty() {
        bail!("no plugin crate found: a plugin crate is a cdylib with a component.toml beside its Cargo.toml");
    }
    // A component clauderon would refuse to load is not a build: say why and
    // leave no file behind to install by mistake.
    let runtime = new_runtime(home)?;
    let mut refused = false;
    for b in built {
        let found = runtime.inspect(read_component(&b.path)?).await;
        if found.problems.is_empty() {
            println!("built {} ({}, {} bytes): {}", b.manifest.id, b.manifest.kind, b.size, b.path.display());
            continue;
        }
        refused = true;
        let _ = std::fs::remove_file(&b.path);
        eprintln!("{} built, but clauderon would not load it:", b.manifest.id);
        for p in &found.problems {
            eprintln!("  - {p}");
        }
    }
    Ok(if refused { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
