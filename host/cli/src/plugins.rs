//! `clauderon plugins …`: create, list, inspect, install, remove, reload, call, build and develop components.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use clauderon_client::Client;
use clauderon_runtime::{Approval, Inventory, Manifest, Reload, Runtime, RuntimeConfig, Source, manifest};
use reqwest::Method;

use crate::{bundled, plugin_dev, scaffold};
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
    /// List the plugins the running daemon has loaded (without a daemon: what
    /// it would load from the bundled ones and CLAUDERON_HOME/components),
    /// with their kinds and grants. Refused components are reported on stderr
    /// with the reason.
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
    /// approval (again only if it asks for more than you approved before),
    /// copy it and the approved grants into CLAUDERON_HOME/components, and
    /// load it into the running daemon (a new build replaces the old one;
    /// sessions keep running).
    Install {
        /// The component file (.wasm), e.g. from `clauderon plugins build`.
        file: PathBuf,
        /// Approve the requested capabilities without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove an installed (user) component; a running daemon unloads it.
    /// Refused while sessions (archived ones included) use it.
    Remove {
        /// The component's id.
        id: String,
        /// Remove it even though sessions use it.
        #[arg(long)]
        force: bool,
    },
    /// Make the running daemon load the components directory again: new
    /// components load, changed ones replace the running code (sessions keep
    /// running), removed ones unload. `install` and `remove` do this
    /// themselves. Credential sources change only when the daemon starts.
    Reload {
        /// Only this component (default: every user component).
        id: Option<String>,
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
    /// The author's loop: build DIR (as `build`), install what built into the
    /// running daemon (as `install`), then do it again whenever a source file
    /// in DIR changes, until Ctrl-C. Sessions on the plugin keep running and
    /// their next call runs the new code. A failed build is shown and the
    /// daemon keeps the last good one. Grants beyond those approved before
    /// are asked about at each install (or approved with --yes).
    ///
    /// Example: `clauderon plugins dev ./my-backend` in one terminal, your
    /// editor in another.
    Dev {
        /// The crate or workspace directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Approve the capabilities it asks for without asking.
        #[arg(long, short = 'y')]
        yes: bool,
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
        PluginsCmd::Remove { id, force } => remove(&home, &id, force).await,
        PluginsCmd::Reload { id } => reload(&home, id.as_deref()).await,
        PluginsCmd::Call { file, function, args, yes } => call(&home, &file, &function, args, yes).await,
        PluginsCmd::Build { dir, out } => build(&home, dir, out).await,
        PluginsCmd::Dev { dir, yes } => plugin_dev::run(&home, dir, yes).await,
    }
}

fn new_runtime(home: &Home) -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig::under(&home.root)).context("starting the component runtime")
}

/// A runtime with every bundled component the config turns on and every
/// user component loaded (failures recorded): what the daemon loads.
pub async fn load_everything(home: &Home, config: RuntimeConfig) -> anyhow::Result<Runtime> {
    let settings = clauderon_daemon::Config::load(&home.config())?;
    let bundled = clauderon_daemon::enabled_bundled(&settings, bundled::sources())?;
    clauderon_daemon::load_components(home, config, bundled.sources).await
}

/// The running daemon, if one answers (never started for a `plugins` command).
async fn running_daemon(home: &Home) -> Option<Client> {
    Client::if_running(home, std::time::Duration::from_secs(30)).await.ok()
}

async fn list(home: &Home, as_json: bool) -> anyhow::Result<ExitCode> {
    let inventory: Inventory = match running_daemon(home).await {
        Some(client) => client.call_as(Method::GET, "/api/plugins", None::<&()>).await?,
        None => {
            eprintln!("(the daemon is not running: this is what it would load when it starts)");
            load_everything(home, RuntimeConfig::under(&home.root)).await?.inventory()
        }
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&inventory)?);
    } else {
        println!("{:<22} {:<18} {:<9} {:<8} CAPABILITIES", "ID", "KIND", "VERSION", "SOURCE");
        for p in &inventory.plugins {
            let grants = if p.grants.is_empty() { "none".to_string() } else { p.grants.join("; ") };
            println!("{:<22} {:<18} {:<9} {:<8} {grants}", p.id, p.kind.to_string(), p.version, p.source);
        }
    }
    for f in &inventory.refused {
        eprintln!("refused {}: {}", f.origin, f.error);
    }
    Ok(ExitCode::SUCCESS)
}

/// Tell the running daemon to reload `id` (or every user component) and say
/// what it did; without a daemon, say when it will load.
async fn reload_in_daemon(home: &Home, id: Option<&str>) -> anyhow::Result<bool> {
    let Some(client) = running_daemon(home).await else {
        println!("The daemon is not running; it loads the components directory when it starts.");
        return Ok(true);
    };
    let path = match id {
        Some(id) => format!("/api/plugins/reload?id={}", clauderon_client::seg(id)),
        None => "/api/plugins/reload".to_string(),
    };
    let report: Reload = client.call_as(Method::POST, &path, None::<&()>).await?;
    for (ids, what) in [
        (&report.added, "loaded into the running daemon"),
        (&report.replaced, "replaced in the running daemon (sessions keep running; their next call runs the new code)"),
        (&report.removed, "unloaded from the running daemon"),
        (&report.unchanged, "unchanged in the running daemon"),
    ] {
        for id in ids {
            println!("{id}: {what}.");
        }
    }
    for id in &report.needs_restart {
        println!(
            "{id}: a credential source; the running daemon takes it up when it next starts \
             (it reads their variables from its environment then): restart the daemon to use it."
        );
    }
    for f in &report.refused {
        eprintln!("the daemon refused {}: {}", f.origin, f.error);
    }
    Ok(report.refused.is_empty())
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

/// A component file read and inspected in a fresh runtime: its bytes and
/// manifest, or an error listing what would stop it from being `what`.
async fn inspected(home: &Home, file: &Path, what: &str) -> anyhow::Result<(Runtime, Arc<[u8]>, Manifest)> {
    let bytes = read_component(file)?;
    let runtime = new_runtime(home)?;
    let found = runtime.inspect(bytes.clone()).await;
    let Some(manifest) = found.manifest.filter(|_| found.problems.is_empty()) else {
        bail!("{} cannot be {what}:\n  - {}", file.display(), found.problems.join("\n  - "));
    };
    Ok((runtime, bytes, manifest))
}

/// Load `file` into `runtime` with everything its manifest asks for
/// approved; the approval, if it loads.
async fn load_approved(
    runtime: &Runtime,
    file: &Path,
    bytes: &Arc<[u8]>,
    manifest: &Manifest,
) -> anyhow::Result<Approval> {
    let approval = Approval::new(&manifest.id, bytes, manifest.capabilities.clone());
    let source = Source::User { path: file.to_path_buf(), bytes: bytes.clone(), approved: Some(approval.clone()) };
    runtime.load(source).await.with_context(|| format!("{} does not load", file.display()))?;
    Ok(approval)
}

pub(crate) async fn install(home: &Home, file: &Path, yes: bool) -> anyhow::Result<ExitCode> {
    let (runtime, bytes, manifest) = inspected(home, file, "installed").await?;
    if bundled_ids().contains(&manifest.id) {
        bail!("`{}` is the id of a bundled component; give yours another id in its component.toml", manifest.id);
    }
    let approval = load_approved(&runtime, file, &bytes, &manifest).await?;

    println!("{} {} ({}) — {}", manifest.id, manifest.version, manifest.kind, manifest.description);
    let dir = home.components();
    let target = dir.join(format!("{}.wasm", manifest.id));
    // A new build asking for nothing beyond what was approved before is not asked about again.
    let before = Approval::read(&target.with_extension("grants.toml")).ok().flatten().filter(|a| a.id == manifest.id);
    let new_asks = before.as_ref().map(|b| b.capabilities.missing(&manifest.capabilities));
    let asks = manifest.capabilities.explain();
    match &new_asks {
        Some(new) if new.is_empty() => println!("It asks for nothing beyond the grants you approved before."),
        Some(new) => {
            println!("It asks for more than you approved before:");
            for n in new {
                println!("  + {n}");
            }
            println!("All it asks to do:");
            print_grants(&asks);
        }
        None if asks.is_empty() => {
            println!("It asks for no capabilities beyond logging and its own small key-value state.")
        }
        None => {
            println!("It asks to:");
            print_grants(&asks);
        }
    }
    let unchanged = new_asks.as_ref().is_some_and(Vec::is_empty);
    if !yes && !unchanged && !confirm("Install it with these grants?")? {
        println!("Not installed.");
        return Ok(ExitCode::FAILURE);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The grants first: a daemon reading the directory meanwhile never finds
    // new bytes beside an approval for the old ones (it would refuse them).
    let grants = approval.to_toml().context("writing the approval")?;
    write_atomically(&target.with_extension("grants.toml"), grants.as_bytes())?;
    write_atomically(&target, &bytes)?;
    println!("Installed {} as {}.", manifest.id, target.display());
    Ok(if reload_in_daemon(home, Some(&manifest.id)).await? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn call(home: &Home, file: &Path, function: &str, args: Option<String>, yes: bool) -> anyhow::Result<ExitCode> {
    let (runtime, bytes, manifest) = inspected(home, file, "loaded").await?;
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
    load_approved(&runtime, file, &bytes, &manifest).await?;
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

async fn remove(home: &Home, id: &str, force: bool) -> anyhow::Result<ExitCode> {
    let path = home.components().join(format!("{id}.wasm"));
    if !path.exists() {
        if bundled_ids().iter().any(|b| b == id) {
            bail!("`{id}` is bundled with clauderon and cannot be removed");
        }
        bail!("no user component `{id}` in {}", home.components().display());
    }
    if let Some(client) = running_daemon(home).await
        && !force
    {
        let (sessions, _) = client.sessions(true).await?;
        let users: Vec<&str> =
            sessions.iter().filter(|s| s.backend == id || s.agent == id).map(|s| s.name.as_str()).collect();
        if !users.is_empty() {
            bail!(
                "sessions use `{id}`: {}; delete them first (the daemon could no longer stop or delete them), \
                 or pass --force",
                users.join(", ")
            );
        }
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    let grants = path.with_extension("grants.toml");
    if grants.exists() {
        std::fs::remove_file(&grants).with_context(|| format!("removing {}", grants.display()))?;
    }
    println!("Removed {id}.");
    Ok(if reload_in_daemon(home, Some(id)).await? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn reload(home: &Home, id: Option<&str>) -> anyhow::Result<ExitCode> {
    if running_daemon(home).await.is_none() {
        bail!("the daemon is not running; it loads the components directory when it starts (`clauderon daemon`)");
    }
    Ok(if reload_in_daemon(home, id).await? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn build(home: &Home, dir: PathBuf, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, refused) = build_checked(home, &dir, out).await?;
    Ok(if refused { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Build the plugin crate(s) in `dir` and inspect each component, saying what
/// was built: the components clauderon would load, and whether any was
/// refused (its file removed, with the reasons on stderr, so that it cannot
/// be installed by mistake).
pub(crate) async fn build_checked(
    home: &Home,
    dir: &Path,
    out: Option<PathBuf>,
) -> anyhow::Result<(Vec<PathBuf>, bool)> {
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
    let runtime = new_runtime(home)?;
    let (mut good, mut refused) = (Vec::new(), false);
    for b in built {
        let found = runtime.inspect(read_component(&b.path)?).await;
        if found.problems.is_empty() {
            println!("built {} ({}, {} bytes): {}", b.manifest.id, b.manifest.kind, b.size, b.path.display());
            good.push(b.path);
            continue;
        }
        refused = true;
        let _ = std::fs::remove_file(&b.path);
        eprintln!("{} built, but clauderon would not load it:", b.manifest.id);
        for p in &found.problems {
            eprintln!("  - {p}");
        }
    }
    Ok((good, refused))
}
