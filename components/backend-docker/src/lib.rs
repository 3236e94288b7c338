//! The Docker backend: one container per session, named `clauderon-<name>`.
//!
//! - Image: `--image`, else `[backends.docker] image`, else
//!   `clauderon/agent:latest` (built from `agent.Dockerfile` beside this crate); pulled
//!   per `pull` = `missing` (default) | `always` | `never`.
//! - Mounts: the worktree (the session's own clone) at `/workspace` (the
//!   session's subdirectory is the working directory), the user's object
//!   store read-only at its own path (the clone reads it), the session's
//!   config home at `/home/clauderon`, clauderon's CA bundle read-only at
//!   `/etc/clauderon/ca-bundle.pem`, plus `[backends.docker] mounts`. The host
//!   refuses any mount of its keys, secrets or store.
//! - Environment: the agent's, with host paths rewritten to those mounts
//!   (`[backends.docker] path` sets the container's PATH).
//! - Runs as `host-user` (the host's choice: the user, never root), with
//!   `--cpu-limit` and `--memory-limit`, labelled with the session's id and
//!   name, with no network but its own loopback (the host enforces that, and
//!   drops every capability): `clauderon-relay` (mounted at
//!   `/run/clauderon-relay`) is PID 1, listens on the proxy's port on the
//!   container's 127.0.0.1 and passes each connection to the proxy's unix
//!   socket (its directory mounted at `/run/clauderon`), then runs the agent.
//!   Containers outlive the daemon; attach is `docker attach`.

use clauderon_sdk::container::{self, ContainerSpec, Mount};
use clauderon_sdk::types::{EnvVar, ResourceState, ResourceStatus, SessionInfo, SessionSpec};
use clauderon_sdk::{Backend, BackendFeatures, BackendInfo, Error, PathMap, Result};

const PREFIX: &str = "clauderon-";
const DEFAULT_IMAGE: &str = "clauderon/agent:latest";
const WORKSPACE: &str = "/workspace";
const HOME: &str = "/home/clauderon";
const CA_BUNDLE: &str = "/etc/clauderon/ca-bundle.pem";
/// Where the relay and the proxy's socket directory are mounted.
const RELAY: &str = "/run/clauderon-relay";
const SOCKET_DIR: &str = "/run/clauderon";

struct Docker;

/// Where the session's host paths are inside the container.
fn path_map(spec: &SessionSpec) -> PathMap {
    PathMap::new(spec, WORKSPACE, HOME, CA_BUNDLE)
}

fn mounts(spec: &SessionSpec) -> Result<Vec<Mount>> {
    let mut out: Vec<Mount> = path_map(spec)
        .0
        .into_iter()
        .map(|(source, target)| Mount { read_only: target == CA_BUNDLE, source, target })
        .collect();
    if let Some(objects) = spec.option("git-objects") {
        // The worktree is the session's own clone; it reads the user's objects
        // through alternates, at their own path, read-only. Nothing else of the
        // user's repository is mounted.
        out.push(Mount { source: objects.into(), target: objects.into(), read_only: true });
    }
    if let (Some(relay), Some(socket_dir)) = (spec.option("relay"), spec.option("proxy-socket-dir")) {
        out.push(Mount { source: relay.into(), target: RELAY.into(), read_only: true });
        out.push(Mount { source: socket_dir.into(), target: SOCKET_DIR.into(), read_only: true });
    }
    for extra in spec.option("mounts").unwrap_or_default().split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let parts: Vec<&str> = extra.split(':').collect();
        match parts.as_slice() {
            [src, dst] => out.push(Mount { source: (*src).into(), target: (*dst).into(), read_only: false }),
            [src, dst, "ro"] => out.push(Mount { source: (*src).into(), target: (*dst).into(), read_only: true }),
            _ => return Err(Error::invalid_input(format!("mount `{extra}` must be src:dst or src:dst:ro"))),
        }
    }
    Ok(out)
}

fn ensure_image(image: &str, policy: &str) -> Result<()> {
    match policy {
        "always" => container::pull(image),
        "never" if !container::image_exists(image)? => Err(Error::not_found(format!(
            "image `{image}` is not present and [backends.docker] pull = \"never\"; build it first \
             (the default one: components/backend-docker/build-image.sh)"
        ))),
        "never" => Ok(()),
        _ if container::image_exists(image)? => Ok(()),
        _ => container::pull(image).map_err(|e| {
            if image == DEFAULT_IMAGE {
                Error::failed(format!(
                    "{e}. The default session image is built locally: \
                     components/backend-docker/build-image.sh (add --local-base when no registry is reachable), \
                     or set --image / [backends.docker] image"
                ))
            } else {
                e
            }
        }),
    }
}

fn container_spec(spec: &SessionSpec) -> Result<ContainerSpec> {
    if spec.launch.argv.is_empty() {
        return Err(Error::invalid_input("the agent's launch plan has no command"));
    }
    if !spec.resource_name.starts_with(PREFIX) {
        return Err(Error::invalid_input(format!("`{}` is not a container name of clauderon", spec.resource_name)));
    }
    let image = spec.image.clone().or_else(|| spec.option("image").map(String::from)).unwrap_or(DEFAULT_IMAGE.into());
    ensure_image(&image, spec.option("pull").unwrap_or("missing"))?;
    if let Some(network) = spec.option("network") {
        return Err(Error::invalid_input(format!(
            "[backends.docker] network = \"{network}\" is no longer supported: a session's container has no network \
             but its own loopback, and reaches the world only through its proxy; remove the setting"
        )));
    }
    let map = path_map(spec);
    let mut env = map.env(spec);
    if let Some(path) = spec.option("path") {
        env.push(EnvVar { name: "PATH".into(), value: path.into() });
    }
    // The relay joins the container's loopback to the proxy, then runs the agent.
    let socket = format!("{SOCKET_DIR}/proxy.sock");
    let mut cmd: Vec<String> = match spec.option("proxy-port") {
        Some(port) => [RELAY, "--port", port, "--socket", &socket, "--"].iter().map(|s| s.to_string()).collect(),
        None => Vec::new(),
    };
    cmd.extend(spec.launch.argv.iter().cloned());
    Ok(ContainerSpec {
        name: spec.resource_name.clone(),
        image,
        cmd,
        env,
        working_dir: Some(map.rewrite(&spec.workdir)),
        mounts: mounts(spec)?,
        labels: vec![
            ("dev.clauderon.session-id".into(), spec.id.clone()),
            ("dev.clauderon.session-name".into(), spec.name.clone()),
        ],
        user: spec.option("host-user").map(String::from),
        network: None,
        extra_hosts: Vec::new(),
        cpu_limit: spec.cpu_limit,
        memory_limit: spec.memory_limit,
        interactive: true,
    })
}

fn state(name: &str) -> Result<ResourceStatus> {
    Ok(match container::inspect(name)? {
        None => ResourceStatus { state: ResourceState::Missing, detail: None },
        Some(c) if c.running => ResourceStatus { state: ResourceState::Running, detail: None },
        Some(c) => ResourceStatus {
            state: ResourceState::Stopped,
            detail: Some(format!("{}{}", c.status, c.exit_code.map(|x| format!(" (exit {x})")).unwrap_or_default())),
        },
    })
}

fn launch(spec: &SessionSpec) -> Result<SessionInfo> {
    let cspec = container_spec(spec)?;
    let name = cspec.name.clone();
    container::create(&cspec)?;
    if let Err(e) = container::start(&name) {
        let _ = container::remove(&name, true);
        return Err(e);
    }
    Ok(SessionInfo { resource_id: name.clone(), status: state(&name)? })
}

impl Backend for Docker {
    fn info() -> BackendInfo {
        BackendInfo { id: "docker".into(), display_name: "Docker".into(), features: BackendFeatures::CONTAINER }
    }

    fn create(spec: SessionSpec) -> Result<SessionInfo> {
        launch(&spec)
    }

    fn start(resource_id: String, spec: SessionSpec) -> Result<SessionInfo> {
        match container::inspect(&resource_id)? {
            Some(c) if c.running => Ok(SessionInfo { resource_id, status: state(&c.name)? }),
            Some(_) => {
                container::start(&resource_id)?;
                Ok(SessionInfo { status: state(&resource_id)?, resource_id })
            }
            None => launch(&spec),
        }
    }

    fn stop(resource_id: String) -> Result<()> {
        container::stop(&resource_id, Some(10))
    }

    fn delete(resource_id: String) -> Result<()> {
        container::remove(&resource_id, true)
    }

    fn status(resource_id: String) -> Result<ResourceStatus> {
        state(&resource_id)
    }

    fn output(resource_id: String, lines: u32) -> Result<String> {
        container::logs(&resource_id, lines)
    }

    fn attach_argv(resource_id: String) -> Result<Vec<String>> {
        // A stopped container is started first, so attach always lands in a live session.
        if container::inspect(&resource_id)?.is_some_and(|c| !c.running) {
            container::start(&resource_id)?;
        }
        Ok(container::attach_argv(&resource_id))
    }

    fn list_resources() -> Result<Vec<String>> {
        Ok(container::list_containers(&[])?.into_iter().map(|c| c.name).filter(|n| n.starts_with(PREFIX)).collect())
    }
}

clauderon_sdk::export_backend!(Docker);
