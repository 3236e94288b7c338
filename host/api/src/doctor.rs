//! `GET /api/doctor`: what this machine can run now, as the daemon sees it
//! (its PATH, its Docker engine, its sandbox probe, its credential sources),
//! one check per part, each with the exact command that fixes it when the
//! component or the host knows one. `clauderon doctor` prints it; `ok` says
//! whether the default path (the default backend with the default agent)
//! can work.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use clauderon_runtime::capabilities::process::which;
use clauderon_runtime::{Kind, Plugin, not_installed};
use clauderon_sandbox::Support;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;

/// The whole report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Doctor {
    /// Whether every required check passed: the default path can work.
    pub ok: bool,
    /// The default backend and agent, which `create` uses when it names none.
    pub default_backend: String,
    pub default_agent: String,
    /// Every check, in the order shown.
    pub checks: Vec<Check>,
}

/// One part of the machine.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// `daemon`, `proxy`, `sandbox`, `backend`, `agent` or `credential`.
    pub area: String,
    /// What was checked (a component id, a credential service, …).
    pub name: String,
    /// Whether it works.
    pub ok: bool,
    /// Whether the default path needs it (a failed required check fails the report).
    pub required: bool,
    /// What was found, or what is wrong.
    pub detail: String,
    /// The command (or setting) that fixes it, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A check that is not required, without a fix.
    pub fn new(area: &str, name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self { area: area.into(), name: name.into(), ok, required: false, detail: detail.into(), fix: None }
    }
}

/// How long a program's `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Run every check.
pub async fn report(s: &ApiState) -> Doctor {
    let manager = &s.manager;
    let defaults = manager.defaults();
    let runtime = manager.runtime();
    let mut checks = vec![daemon(s)];
    if let Some(door) = s.proxy.door() {
        checks.push(Check::new(
            "proxy",
            "direct door",
            true,
            format!(
                "listening on {}; a cluster's pods dial {} (TLS with clauderon's CA, each session by its own key)",
                door.listen, door.address
            ),
        ));
    }
    // Whether the default backend runs agents on this machine (then the
    // default agent's CLI and the sandbox must be here too).
    let default_on_host = match manager.features(&defaults.backend).await {
        Ok(f) => !f.isolated,
        Err(_) => true,
    };
    checks.push(sandbox(manager.sandbox(), default_on_host));
    let plugins = runtime.plugins();
    // The programs the daemon may run to ask their version, all at once:
    // those bundled components name, and those a user approved for a
    // component's `process` grant. A program only a user component's
    // `[requires]` names is looked for on PATH, never run.
    let mut programs: Vec<String> = plugins
        .iter()
        .flat_map(|p| {
            let named = (p.source == "bundled").then(|| p.manifest.requires.keys()).into_iter().flatten();
            p.grants.process.iter().chain(named).cloned()
        })
        .collect();
    programs.sort();
    programs.dedup();
    let services = s.proxy.rules().services();
    let (versions, docker, credentials) = tokio::join!(
        futures_util::future::join_all(programs.iter().map(|p| program_version(p))),
        runtime.docker_engine(),
        s.proxy.credentials().status(&services),
    );
    let version: HashMap<&str, Option<String>> = programs.iter().map(String::as_str).zip(versions).collect();
    let version = |program: &str| match version.get(program) {
        Some(answer) => answer.clone(),
        None => which(program).map(|path| format!("{program}: {} (not run)", path.display())),
    };
    // What a component's programs answered, and what is missing with its install command.
    let look = |plugin: &Plugin, programs: Vec<&String>| {
        let (mut found, mut problems) = (Vec::new(), Vec::new());
        for program in programs {
            match version(program) {
                Some(version) => found.push(version),
                None => {
                    problems.push((missing(program), plugin.manifest.requires.get(program).map(|r| r.install.clone())))
                }
            }
        }
        (found, problems)
    };
    for plugin in plugins.iter().filter(|p| p.kind() == Kind::Backend) {
        let (mut found, mut problems) = look(plugin, plugin.grants.process.iter().collect());
        if plugin.grants.container {
            match &docker {
                Ok(version) => found.push(format!("Docker engine {version}")),
                Err(why) => problems.push((why.clone(), Some(docker_fix()))),
            }
        }
        let mut check = component_check("backend", plugin.id(), found, problems);
        check.required = plugin.id() == defaults.backend;
        checks.push(check);
    }
    if !plugins.iter().any(|p| p.kind() == Kind::Backend && p.id() == defaults.backend) {
        let mut check = Check::new("backend", &defaults.backend, false, "the default backend is not loaded");
        check.required = true;
        check.fix = Some("set `default_backend` in config.toml to a backend `clauderon plugins list` shows".into());
        checks.push(check);
    }
    for plugin in plugins.iter().filter(|p| p.kind() == Kind::Agent) {
        let (found, problems) = look(plugin, plugin.manifest.requires.keys().collect());
        let mut check = component_check("agent", plugin.id(), found, problems);
        check.required = default_on_host && plugin.id() == defaults.agent;
        checks.push(check);
    }
    for status in credentials {
        let mut check = match (&status.source, &status.masked) {
            (Some(source), Some(masked)) => {
                Check::new("credential", &status.service, true, format!("{masked} from {source}"))
            }
            _ => {
                let mut c = Check::new("credential", &status.service, false, "no source has it");
                c.fix = Some(format!(
                    "put it in {} (or see docs/proxy.md)",
                    credential_file(manager.home(), &status.service)
                ));
                c
            }
        };
        if !status.errors.is_empty() {
            check.detail.push_str(&format!(" ({})", status.errors.join("; ")));
        }
        checks.push(check);
    }
    let ok = checks.iter().all(|c| c.ok || !c.required);
    Doctor { ok, default_backend: defaults.backend.clone(), default_agent: defaults.agent.clone(), checks }
}

fn daemon(s: &ApiState) -> Check {
    let mut check = Check::new(
        "daemon",
        "daemon",
        true,
        format!(
            "running, version {}, API token {}",
            env!("CARGO_PKG_VERSION"),
            if s.manager.home().join("api-token").is_file() { "in CLAUDERON_HOME/api-token" } else { "from config" }
        ),
    );
    check.required = true;
    check
}

fn sandbox(sandbox: Option<&clauderon_sessions::HostSandbox>, default_on_host: bool) -> Check {
    let mut check = match sandbox.map(|s| (&s.support, s.config.enabled, s.config.required)) {
        Some((Support::Full, true, _)) => Check::new(
            "sandbox",
            "host sandbox",
            true,
            "user, mount, PID and network namespaces and Landlock: host sessions run sandboxed",
        ),
        Some((Support::Missing(why), true, required)) => {
            let mut c = Check::new("sandbox", "host sandbox", !required, why.clone());
            c.fix = Some(
                "enable unprivileged user namespaces (sudo sysctl -w kernel.unprivileged_userns_clone=1) and use a \
                 kernel with Landlock (5.13 or newer), or use --backend docker"
                    .into(),
            );
            c
        }
        _ => Check::new(
            "sandbox",
            "host sandbox",
            true,
            "off (`[sandbox] enabled = false`): host sessions run unsandboxed",
        ),
    };
    check.required = default_on_host;
    check
}

/// A component's check from what was found and what is missing.
fn component_check(area: &str, id: &str, found: Vec<String>, problems: Vec<(String, Option<String>)>) -> Check {
    if problems.is_empty() {
        let detail = if found.is_empty() { "needs nothing on this machine".to_string() } else { found.join(", ") };
        return Check::new(area, id, true, detail);
    }
    let mut check =
        Check::new(area, id, false, problems.iter().map(|(why, _)| why.as_str()).collect::<Vec<_>>().join("; "));
    let fixes: Vec<String> = problems.into_iter().filter_map(|(_, fix)| fix).collect();
    check.fix = (!fixes.is_empty()).then(|| fixes.join(" && "));
    check
}

/// A missing program, without the install command (the check's fix has it).
fn missing(program: &str) -> String {
    not_installed(program, &Default::default())
}

/// `program --version`'s first line (or the program's path if it prints
/// nothing), or `None` if the program is not on PATH. A program's answer is
/// kept until its file changes (an agent CLI on node takes a second to say it).
async fn program_version(program: &str) -> Option<String> {
    static SEEN: Mutex<BTreeMap<PathBuf, (SystemTime, String)>> = Mutex::new(BTreeMap::new());
    let path = which(program)?;
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let seen = |seen: &BTreeMap<PathBuf, (SystemTime, String)>| {
        seen.get(&path).filter(|(at, _)| Some(*at) == modified).map(|(_, v)| v.clone())
    };
    if let Some(known) = SEEN.lock().ok().and_then(|s| seen(&s)) {
        return Some(known);
    }
    let run = tokio::process::Command::new(&path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let line = match tokio::time::timeout(VERSION_TIMEOUT, run).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_string(),
        _ => String::new(),
    };
    let line: String = line.chars().filter(|c| !c.is_control()).take(100).collect();
    let answer = if line.is_empty() { path.display().to_string() } else { format!("{program}: {line}") };
    if let (Some(at), Ok(mut seen)) = (modified, SEEN.lock()) {
        seen.insert(path, (at, answer.clone()));
    }
    Some(answer)
}

/// The command that installs and starts a Docker engine here.
fn docker_fix() -> String {
    if Path::new("/etc/debian_version").exists() {
        "sudo apt-get install -y docker.io && sudo systemctl enable --now docker".into()
    } else {
        "install Docker Engine (https://docs.docker.com/engine/install/) and start it".into()
    }
}

fn credential_file(home: &Path, service: &str) -> String {
    home.join("secrets").join(service).display().to_string()
}
