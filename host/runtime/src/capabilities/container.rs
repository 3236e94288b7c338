//! `container`: the local Docker engine, over bollard (the API version is
//! negotiated, so an older engine works). Every container a component creates
//! is labelled with the component's id, and a component can only see and
//! touch its own. Mounts are structured (never `src:dst` strings) and
//! allow-listed: only the sources the host allowed for the call (the
//! session's own directories and the user's declared mounts, [`check_mount`]),
//! never a protected path — whatever the component asks for. And every container is contained, whatever the
//! component asks for ([`contain`]): no capabilities, `no-new-privileges`,
//! the default seccomp profile, a process limit, never root, no network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::bindings::PluginError;
use crate::bindings::container::{ContainerSpec, ContainerState, ExecOutput, Host, Mount};
use crate::bindings::types::EnvVar;
use crate::error::HostError;
use crate::state::HostState;

/// The label naming the component that owns a container.
pub const OWNER_LABEL: &str = "dev.clauderon.component";
/// The most output `logs` and `exec` return.
const MAX_OUTPUT: usize = 1 << 20;

type Res<T> = Result<T, HostError>;

/// The host service behind `container`: the Docker client and the paths no
/// mount may expose.
pub struct ContainerService {
    docker: tokio::sync::OnceCell<bollard::Docker>,
    /// Paths no component may mount into a container (the CA key, the
    /// identity key, the secrets directory, the store, the config).
    protected: Vec<std::path::PathBuf>,
}

impl ContainerService {
    /// A service that refuses mounts of `protected`.
    pub fn new(protected: Vec<std::path::PathBuf>) -> Self {
        Self { docker: tokio::sync::OnceCell::new(), protected }
    }

    /// The Docker engine client (connected and version-negotiated on first
    /// success; an engine started later is found on the next call).
    async fn docker(&self) -> Result<&bollard::Docker, PluginError> {
        self.docker
            .get_or_try_init(|| async {
                let docker = bollard::Docker::connect_with_local_defaults()
                    .map_err(|e| format!("cannot reach the Docker engine: {e}"))?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| format!("the Docker engine does not answer (is dockerd running?): {e}"))
            })
            .await
            .map_err(PluginError::Failed)
    }
}

impl ContainerService {
    /// The Docker engine's version, or why it cannot be reached (for `clauderon doctor`).
    pub async fn engine_version(&self) -> Result<String, String> {
        let docker = self.docker().await.map_err(|e| e.to_string())?;
        let version = docker.version().await.map_err(|e| format!("the Docker engine does not answer: {e}"))?;
        Ok(version.version.unwrap_or_else(|| "(version unknown)".into()))
    }
}

/// Add `container` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::container::add_to_linker::<HostState, super::Data>(linker, super::state)
}

fn failed(what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::Failed(format!("{what}: {e}"))
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// Paths no container may mount, nor anything inside them or holding them:
/// the kernel's views, the devices, and the Docker engine's socket and state
/// (with either, a container is root on the host).
const NEVER_MOUNTED: &[&str] =
    &["/proc", "/sys", "/dev", "/var/run/docker.sock", "/run/docker.sock", "/var/lib/docker", "/run/containerd"];

/// Check a mount against what the host allowed for this call and return the
/// source to give Docker: the canonical path (symlinks resolved).
///
/// `allowed` holds the only sources a container may mount — the calling
/// session's own directories and the mounts the user declared — set by the
/// host for `create` and `start` ([`crate::Instance::serve_session`]); outside
/// them it is empty and every mount is refused. A source must be one of them
/// exactly (not a path inside one, which the session could have swapped for
/// a symlink), and never is, holds or lies inside a protected path (the CA
/// key, the identity key, the secrets, the store, the config, the compile
/// cache, the components), [`NEVER_MOUNTED`], or the user's home itself.
pub fn check_mount(protected: &[PathBuf], allowed: &[PathBuf], mount: &Mount) -> Result<String, PluginError> {
    let refuse = |why: String| PluginError::Denied(format!("mounting `{}` into a container: {why}", mount.source));
    let source = Path::new(&mount.source);
    if !source.is_absolute() || !Path::new(&mount.target).is_absolute() {
        return Err(PluginError::InvalidInput(format!(
            "mount `{}` → `{}`: source and target must be absolute paths",
            mount.source, mount.target
        )));
    }
    let canonical = std::fs::canonicalize(source)
        .map_err(|e| refuse(format!("it cannot be resolved ({e}); only existing paths are mounted")))?;
    for p in protected.iter().map(PathBuf::as_path).chain(NEVER_MOUNTED.iter().map(Path::new)) {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if canonical.starts_with(&p) || p.starts_with(&canonical) {
            return Err(refuse(format!(
                "it would expose {} (clauderon never mounts its keys, secrets, store or cache, devices, the \
                 kernel's views or the Docker engine)",
                p.display()
            )));
        }
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from).and_then(|h| std::fs::canonicalize(h).ok())
        && home.starts_with(&canonical)
    {
        return Err(refuse(format!("it would expose your home directory {}", home.display())));
    }
    if !allowed.iter().any(|a| a == &canonical) {
        return Err(refuse(format!(
            "a container may mount only its session's own directories (worktree, config home, CA bundle, git \
             objects, proxy socket, relay) and the mounts declared in config.toml (`[backends.<id>] mounts`), \
             and only in `create` and `start`; `{}` is none of them",
            canonical.display()
        )));
    }
    Ok(canonical.to_string_lossy().into_owned())
}

/// The most processes a container may run.
pub const PIDS_LIMIT: i64 = 4096;

/// The containment every container gets: every capability dropped,
/// `no-new-privileges` (Docker's default seccomp profile stays: nothing here
/// can turn it off), a process limit, no network but loopback, not privileged.
pub fn contain(config: HostConfig) -> HostConfig {
    HostConfig {
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: None,
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        pids_limit: Some(PIDS_LIMIT),
        network_mode: Some("none".into()),
        extra_hosts: None,
        privileged: Some(false),
        ..config
    }
}

/// A container never runs as root: the user must be a non-zero numeric uid.
pub fn check_user(user: Option<&str>) -> Result<(), PluginError> {
    let uid = user.and_then(|u| u.split(':').next()).map(str::trim).unwrap_or_default();
    match uid.parse::<u32>() {
        Ok(0) | Err(_) => Err(PluginError::Denied(format!(
            "containers never run as root or an unnamed user (asked for `{}`); give a non-zero numeric `uid:gid`",
            user.unwrap_or("the image's default")
        ))),
        Ok(_) => Ok(()),
    }
}

/// The calling component's view of the engine: every helper acts only on
/// containers labelled with its id. It owns what it needs, because a
/// `&HostState` cannot be held across an `.await` (WASI's context in it is
/// not `Sync`), and every operation awaits Docker.
struct Containers {
    services: std::sync::Arc<crate::state::HostServices>,
    ctx: std::sync::Arc<crate::state::ComponentCtx>,
    session_paths: std::sync::Arc<[PathBuf]>,
}

impl HostState {
    fn containers(&self) -> Containers {
        Containers { services: self.services.clone(), ctx: self.ctx.clone(), session_paths: self.session_paths.clone() }
    }
}

impl Containers {
    async fn docker(&self) -> Result<&bollard::Docker, PluginError> {
        self.services.container.docker().await
    }

    fn owner(&self) -> &str {
        &self.ctx.id
    }

    /// The container, if it exists and belongs to this component.
    async fn owned(&self, id: &str) -> Result<Option<ContainerState>, PluginError> {
        let docker = self.docker().await?;
        let info = match docker.inspect_container(id, None::<InspectContainerOptions>).await {
            Ok(info) => info,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(failed("inspecting the container", e)),
        };
        let config = info.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        if labels.get(OWNER_LABEL).map(String::as_str) != Some(self.owner()) {
            return Err(PluginError::Denied(format!("container `{id}` was not created by `{}`", self.owner())));
        }
        let state = info.state.unwrap_or_default();
        Ok(Some(ContainerState {
            id: info.id.unwrap_or_default(),
            name: info.name.unwrap_or_default().trim_start_matches('/').to_string(),
            image: config.image.unwrap_or_default(),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            labels: labels.into_iter().collect(),
        }))
    }

    /// Tell the log and the progress watchers (CLI, WebSocket).
    fn say(&self, message: String) {
        self.services.say(self.owner(), message);
    }

    async fn require_owned(&self, id: &str) -> Result<ContainerState, PluginError> {
        self.owned(id).await?.ok_or_else(|| PluginError::NotFound(format!("no container `{id}`")))
    }

    fn body(&self, spec: ContainerSpec) -> Result<ContainerCreateBody, PluginError> {
        let mut mounts = Vec::with_capacity(spec.mounts.len());
        for m in &spec.mounts {
            let source = check_mount(&self.services.container.protected, &self.session_paths, m)?;
            // Structured, never a `src:dst` string a `:` in a path could split.
            mounts.push(bollard::models::Mount {
                source: Some(source),
                target: Some(m.target.clone()),
                typ: Some(bollard::models::MountType::BIND),
                read_only: Some(m.read_only),
                ..Default::default()
            });
        }
        check_user(spec.user.as_deref())?;
        if spec.network.as_deref().is_some_and(|n| n != "none") || !spec.extra_hosts.is_empty() {
            return Err(PluginError::Denied(format!(
                "containers get no network but their own loopback (asked for network `{}`{}); a session's way out \
                 is its proxy's unix socket, relayed inside by clauderon-relay",
                spec.network.as_deref().unwrap_or("none"),
                if spec.extra_hosts.is_empty() { "" } else { " and extra hosts" }
            )));
        }
        let mut labels: HashMap<String, String> = spec.labels.into_iter().collect();
        labels.insert(OWNER_LABEL.into(), self.owner().to_string());
        let host_config = contain(HostConfig {
            mounts: Some(mounts),
            nano_cpus: spec.cpu_limit.map(|c| (c * 1e9) as i64),
            memory: spec.memory_limit.and_then(|m| i64::try_from(m).ok()),
            ..Default::default()
        });
        Ok(ContainerCreateBody {
            image: Some(spec.image),
            cmd: (!spec.cmd.is_empty()).then_some(spec.cmd),
            env: Some(spec.env.into_iter().map(|e| format!("{}={}", e.name, e.value)).collect()),
            working_dir: spec.working_dir,
            labels: Some(labels),
            user: spec.user,
            tty: Some(spec.interactive),
            open_stdin: Some(spec.interactive),
            attach_stdin: Some(spec.interactive),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(host_config),
            ..Default::default()
        })
    }
}

impl Host for HostState {
    async fn create(&mut self, spec: ContainerSpec) -> Res<String> {
        let c = self.containers();
        let name = spec.name.clone();
        let body = c.body(spec)?;
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = c.docker().await?.create_container(Some(options), body).await;
        Ok(created.map(|r| r.id).map_err(|err| match err {
            // The name is taken: nothing was created (the backend's `create` says so in turn).
            bollard::errors::Error::DockerResponseServerError { status_code: 409, .. } => PluginError::InvalidInput(
                format!("a container named `{name}` already exists; remove it or pick another --name"),
            ),
            err => failed("creating the container", err),
        })?)
    }

    async fn start(&mut self, id: String) -> Res<()> {
        let c = self.containers();
        c.require_owned(&id).await?;
        let started = c.docker().await?.start_container(&id, None::<StartContainerOptions>).await;
        Ok(started.map_err(|err| failed("starting", err))?)
    }

    async fn stop(&mut self, id: String, timeout_secs: Option<u32>) -> Res<()> {
        let c = self.containers();
        c.require_owned(&id).await?;
        let options = StopContainerOptionsBuilder::default().t(timeout_secs.unwrap_or(10) as i32).build();
        Ok(c.docker().await?.stop_container(&id, Some(options)).await.map_err(|err| failed("stopping", err))?)
    }

    async fn remove(&mut self, id: String, force: bool) -> Res<()> {
        let c = self.containers();
        if c.owned(&id).await?.is_none() {
            return Ok(());
        }
        let options = RemoveContainerOptionsBuilder::default().force(force).build();
        Ok(c.docker().await?.remove_container(&id, Some(options)).await.map_err(|err| failed("removing", err))?)
    }

    async fn inspect(&mut self, id: String) -> Res<Option<ContainerState>> {
        let c = self.containers();
        Ok(c.owned(&id).await?)
    }

    async fn list_containers(&mut self, labels: Vec<(String, String)>) -> Res<Vec<ContainerState>> {
        let c = self.containers();
        let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        wanted.push(format!("{OWNER_LABEL}={}", c.owner()));
        let filters = HashMap::from([("label".to_string(), wanted)]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list =
            c.docker().await?.list_containers(Some(options)).await.map_err(|err| failed("listing containers", err))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let status = c.state.map(|s| s.to_string()).unwrap_or_default();
                let name = c.names.unwrap_or_default().first().cloned().unwrap_or_default();
                ContainerState {
                    id: c.id.unwrap_or_default(),
                    name: name.trim_start_matches('/').into(),
                    image: c.image.unwrap_or_default(),
                    running: status == "running",
                    status,
                    exit_code: None,
                    labels: c.labels.unwrap_or_default().into_iter().collect(),
                }
            })
            .collect())
    }

    async fn logs(&mut self, id: String, tail: u32) -> Res<String> {
        let c = self.containers();
        c.require_owned(&id).await?;
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).tail(&tail.to_string()).build();
        let mut stream = c.docker().await?.logs(&id, Some(options));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(|err| failed("reading logs", err))?.into_bytes());
            if out.len() > MAX_OUTPUT {
                out.drain(..out.len() - MAX_OUTPUT);
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    async fn exec(&mut self, id: String, cmd: Vec<String>, env: Vec<EnvVar>) -> Res<ExecOutput> {
        let c = self.containers();
        use bollard::exec::{CreateExecOptions, StartExecResults};
        c.require_owned(&id).await?;
        let docker = c.docker().await?;
        let options = CreateExecOptions {
            cmd: Some(cmd),
            env: Some(env.into_iter().map(|v| format!("{}={}", v.name, v.value)).collect()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = docker.create_exec(&id, options).await.map_err(|err| failed("exec", err))?;
        let mut out = Vec::new();
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec.id, None).await.map_err(|err| failed("exec", err))?
        {
            while let Some(Ok(chunk)) = output.next().await {
                if out.len() < MAX_OUTPUT {
                    out.extend_from_slice(&chunk.into_bytes());
                }
            }
        }
        let exit_code = docker.inspect_exec(&exec.id).await.ok().and_then(|i| i.exit_code);
        out.truncate(MAX_OUTPUT);
        Ok(ExecOutput { exit_code, output: String::from_utf8_lossy(&out).into_owned() })
    }

    async fn image_exists(&mut self, image: String) -> Res<bool> {
        let c = self.containers();
        match c.docker().await?.inspect_image(&image).await {
            Ok(_) => Ok(true),
            Err(err) if not_found(&err) => Ok(false),
            Err(err) => Err(failed("inspecting the image", err).into()),
        }
    }

    async fn pull(&mut self, image: String) -> Res<()> {
        let c = self.containers();
        let docker = c.docker().await?;
        c.say(format!("pulling {image}"));
        let options = CreateImageOptionsBuilder::default().from_image(&image).build();
        let mut stream = docker.create_image(Some(options), None, None);
        let mut last = String::new();
        while let Some(progress) = stream.next().await {
            match progress {
                Ok(p) => {
                    // One line per layer and status change, not per byte.
                    let line = format!("{} {}", p.id.unwrap_or_default(), p.status.unwrap_or_default());
                    if line != last {
                        c.say(format!("pulling {image}: {}", line.trim()));
                        last = line;
                    }
                }
                Err(err) => {
                    c.say(format!("pulling {image} failed: {err}"));
                    return Err(failed(&format!("pulling {image}"), err).into());
                }
            }
        }
        c.say(format!("pulled {image}"));
        Ok(())
    }

    async fn attach_argv(&mut self, id: String) -> wasmtime::Result<Vec<String>> {
        Ok(vec!["docker".into(), "attach".into(), id])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_is_contained_whatever_was_asked() {
        let asked = HostConfig {
            privileged: Some(true),
            cap_add: Some(vec!["SYS_ADMIN".into()]),
            network_mode: Some("host".into()),
            security_opt: Some(vec!["seccomp=unconfined".into()]),
            memory: Some(1 << 30),
            ..Default::default()
        };
        let got = contain(asked);
        assert_eq!(got.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(got.cap_add, None);
        assert_eq!(got.privileged, Some(false));
        assert_eq!(got.network_mode.as_deref(), Some("none"));
        assert_eq!(got.security_opt, Some(vec!["no-new-privileges:true".to_string()]));
        assert_eq!(got.pids_limit, Some(PIDS_LIMIT));
        assert_eq!(got.memory, Some(1 << 30), "limits the component set are kept");
    }

    #[test]
    fn root_or_no_user_is_refused() {
        for bad in [None, Some("0"), Some("0:0"), Some("root"), Some(""), Some(":1000")] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
        for ok in [Some("1000:1000"), Some("65532:65532"), Some("1000")] {
            assert!(check_user(ok).is_ok(), "{ok:?}");
        }
    }
}
