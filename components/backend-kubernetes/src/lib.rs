//! The Kubernetes backend (experimental: the daemon loads it only with
//! `--enable-kubernetes-backend` or `[backends.kubernetes] enabled = "true"`).
//!
//! Per session, in the namespace the user configured (the host's `kube`
//! capability holds the cluster's credentials and checks every object):
//! - a claim `<resource>-data` (`storage`, default `10Gi`; `storage_class`)
//!   holding the session's data at `/session`: the workspace at
//!   `/session/workspace`, the config home (`HOME`) at `/session/home`,
//!   clauderon's CA bundle in `/session/ca`;
//! - a pod `<resource>` running the agent: image `--image`, else
//!   `[backends.kubernetes] image`, else `clauderon/agent:latest`; requests
//!   and limits from `--cpu-limit`/`--memory-limit` (else `cpu`, `memory`);
//!   uid and gid 1000, `runAsNonRoot`, seccomp `RuntimeDefault`, every
//!   capability dropped, no privilege escalation, no service-account token;
//!   `restartPolicy: OnFailure`; stdin and a terminal for `kubectl attach -it`.
//!
//! Both are labelled with the session's id and the resource's name.
//! `create` waits for the pod to run (`start_timeout_ms`, default 60000,
//! within the call's deadline), while the host shows the cluster's events
//! as progress; a pod that cannot run (an image that cannot be pulled, a
//! crash loop) or does not run in time fails the create with the cluster's
//! reason. `stop` deletes the
//! pod and keeps the claim; `start` makes the pod again on the same claim;
//! `delete` removes everything labelled with the resource. `status` maps the
//! pod's state: Pending → starting, `ImagePullBackOff`/`CrashLoopBackOff`/
//! `OOMKilled`/`Evicted` → failed with the cluster's message, no pod but
//! the claim → stopped. The host watches the pod (`kube::watch-pod`) and
//! asks `status` whenever its state changes, so a session whose pod fails
//! (a crash loop, an eviction, the agent out of memory) is marked failed
//! with the cluster's message, and running again when the pod recovers.
//!
//! Once the pod runs, the session's files go into the claim, once (they and
//! the agent's work stay across stop and start): the session's branch,
//! cloned at the workspace from a bundle the host makes of it in the user's
//! repository (nothing of the repository needs pushing anywhere), the config
//! home and clauderon's CA bundle (`kube::copy-in`); then the agent starts
//! (the pod waits for `/session/.ready`).
//!
//! The pod's only way out is the session's proxy, through a reverse tunnel
//! (the cluster need not reach this machine, nor the pod anything): the
//! static `clauderon-relay` (copied into the claim at `/session/bin`) runs
//! the agent and listens on the proxy's port on the pod's loopback, where
//! the agent's `HTTPS_PROXY` points, and pairs each connection with one of
//! the port-forwards the host keeps open into the pod on the tunnel port
//! (`kube::open-tunnel`), which lead to the session's proxy alone. A
//! network policy `<resource>-isolated` denies the pod every other
//! connection, in and out (port-forwards do not pass through the pod
//! network, so the tunnel still works).
//!
//! Where the cluster can reach the daemon's machine and the daemon has a
//! direct door (`[proxy] direct_listen`, `kube::direct-door`), a new pod's
//! relay goes there instead (`--direct IP:PORT --door /session/door`): each
//! of the agent's connections over TLS to the door, presenting the session's
//! door file (`kube::copy-in` of `door`: its key, and clauderon's CA, the only
//! one trusted for the door), which passes it to the session's proxy alone.
//! The network policy then lets the pod out to the door's address and port,
//! and nowhere else. A pod keeps the route it was started with (its
//! command says which) until it is made again.
//!
//! The agent's commits come back on `export-branch` (`kube::copy-out`).
//!
//! Where the cluster has agent-sandbox (kubernetes-sigs/agent-sandbox: the
//! `Sandbox` kind, `agents.x-k8s.io/v1alpha1`, found by `kube::serves`) and
//! `sandbox_crd` is `auto` (the default) or `true`, a session is a
//! `Sandbox` instead of a bare pod and claim: the same pod as its
//! `podTemplate`, the claim as its `volumeClaimTemplates` entry `data` (the
//! controller names it `data-<resource>`), both made by agent-sandbox's
//! controller. `stop` pauses it (`replicas: 0`: the controller deletes the
//! pod and keeps the claim), `start` resumes it (`replicas: 1`), `delete`
//! deletes it (the cluster deletes what it owns; this backend deletes
//! everything labelled for the session too). `shutdown_after` (e.g. `8h`)
//! sets its `shutdownTime` that long after each start: the cluster then
//! deletes the pod even if nothing on this machine is left to stop it, and
//! the session shows stopped. `runtime_class` (e.g. `gvisor`, `kata`) is the
//! pod's `runtimeClassName`, for Sandboxes and bare pods alike.
//!
//! With `warm_pool = N` as well (and agent-sandbox's extensions,
//! `extensions.agents.x-k8s.io/v1beta1`), agent-sandbox keeps N Sandboxes
//! ready: this backend keeps the `SandboxTemplate` and `SandboxWarmPool`
//! `clauderon-warm` (pods like a session's but with nothing of one: each
//! waits for `/session/.launch-<its uid>`; agent-sandbox's network policy
//! off, the pool's own `clauderon-warm-isolated` instead, as a session's),
//! and a session is a `SandboxClaim` `<resource>` on it. Its pod is the
//! one the claim took (named by the pool; found through the claim's
//! Sandbox), which gets the session's files, then its launch script (the
//! agent's environment, the relay and the agent; the route is kept on the
//! claim for a restarted daemon). Stop and start pause and resume the
//! claim's Sandbox; delete deletes it and the claim. A session with its
//! own image or resources is a Sandbox of its own.

use clauderon_sdk::kube;
use clauderon_sdk::types::{ResourceState, ResourceStatus, SessionInfo, SessionSpec};
use clauderon_sdk::{Backend, BackendFeatures, BackendInfo, Error, PathMap, Result};
use serde_json::{Value, json};

const PREFIX: &str = "clauderon-";
const DEFAULT_IMAGE: &str = "clauderon/agent:latest";
/// Where the claim is mounted, and the session's paths on it.
const MOUNT: &str = "/session";
const WORKSPACE: &str = "/session/workspace";
const HOME: &str = "/session/home";
/// Where clauderon's CA bundle is copied (under its own file name).
const CA_DIR: &str = "/session/ca";
/// Made once the session's files are in the claim: the agent starts then.
const READY: &str = "/session/.ready";
/// Where the relay is copied (under its own file name).
const BIN_DIR: &str = "/session/bin";
/// The session's door file, where the pod reaches the proxy's direct door.
const DOOR: &str = "/session/door";
/// The port in the pod the host's tunnel connections arrive on (the other
/// one if the proxy's port is this one).
const TUNNEL_PORTS: [u16; 2] = [7070, 7071];
/// The user and group the agent runs as.
const USER: i64 = 1000;
/// Labels on every object of a session.
const SESSION_LABEL: &str = "dev.clauderon.session-id";
const RESOURCE_LABEL: &str = "dev.clauderon.resource";
/// The kinds a session has.
const POD: &str = "Pod";
const CLAIM: &str = "PersistentVolumeClaim";
const POLICY: &str = "NetworkPolicy";
const SANDBOX: &str = "Sandbox";
const SANDBOX_API: &str = "agents.x-k8s.io/v1alpha1";
/// The session's data volume in its pod: a bare pod's volume, or a
/// Sandbox's claim template (its controller names the claim
/// `data-<sandbox>` and gives the pod a volume of the template's name).
const DATA: &str = "data";
/// Every kind a session has, in the order they are deleted.
const SANDBOX_CLAIM: &str = "SandboxClaim";
const SANDBOX_TEMPLATE: &str = "SandboxTemplate";
const SANDBOX_WARM_POOL: &str = "SandboxWarmPool";
const EXTENSIONS_API: &str = "extensions.agents.x-k8s.io/v1beta1";
/// The warm pool's (and its template's and network policy's) name.
const WARM: &str = "clauderon-warm";
/// The label the warm pool's pods carry (its network policy selects them by it).
const POOL_LABEL: &str = "dev.clauderon.pool";
/// On a session's SandboxClaim: the route its agent's relay was launched with.
const ROUTE_ANNOTATION: &str = "dev.clauderon.route";
/// A warm pod's agent starts from `/session/.launch-<its pod's uid>`.
const LAUNCH_PREFIX: &str = "/session/.launch-";
/// Where agent-sandbox names a Sandbox's pod.
const POD_NAME_ANNOTATION: &str = "agents.x-k8s.io/pod-name";

const KINDS: [&str; 5] = [SANDBOX_CLAIM, SANDBOX, POD, CLAIM, POLICY];

struct Kubernetes;

/// What makes a session's pod: this backend (a bare pod), agent-sandbox's
/// controller (a `Sandbox`, where the cluster has the CRD), or a warm pool's
/// (a `SandboxClaim` taking a running Sandbox, with `warm_pool`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Pod,
    Sandbox,
    Claim,
}

impl Shape {
    /// The shape a new session takes: `sandbox_crd` `auto` (the default: a
    /// Sandbox where the cluster serves the kind), `true` (a Sandbox, or an
    /// error) or `false` (a bare pod).
    fn chosen(spec: &SessionSpec) -> Result<Self> {
        let shape = Self::sandbox_or_pod(spec)?;
        let warm = warm_pool_size(spec)?;
        if warm == 0 {
            return Ok(shape);
        }
        if shape != Self::Sandbox {
            return Err(Error::failed(format!(
                "warm_pool = \"{warm}\" needs agent-sandbox's Sandboxes, and sessions here are bare pods \
                 (sandbox_crd = \"{}\"{}): install agent-sandbox, or remove warm_pool from [backends.kubernetes]",
                spec.option("sandbox_crd").unwrap_or("auto"),
                if spec.option("sandbox_crd") == Some("false") { "" } else { " and the cluster has no Sandbox kind" }
            )));
        }
        if !kube::serves(SANDBOX_CLAIM)? {
            return Err(Error::failed(format!(
                "warm_pool = \"{warm}\" needs agent-sandbox's extensions (SandboxWarmPool and SandboxClaim, \
                 {EXTENSIONS_API}), which the cluster does not serve: install them (agent-sandbox's \
                 extensions manifest), or remove warm_pool from [backends.kubernetes]"
            )));
        }
        // The pool's pods are alike: a session asking for its own image or
        // resources is made for itself.
        let own = spec.image.is_some() || spec.cpu_limit.is_some() || spec.memory_limit.is_some();
        Ok(if own { Self::Sandbox } else { Self::Claim })
    }

    fn sandbox_or_pod(spec: &SessionSpec) -> Result<Self> {
        match spec.option("sandbox_crd").unwrap_or("auto") {
            "false" => Ok(Self::Pod),
            "auto" => Ok(if kube::serves(SANDBOX)? { Self::Sandbox } else { Self::Pod }),
            "true" if kube::serves(SANDBOX)? => Ok(Self::Sandbox),
            "true" => Err(Error::failed(format!(
                "sandbox_crd = \"true\" but the cluster does not serve agent-sandbox's Sandbox ({SANDBOX_API}): \
                 install agent-sandbox (github.com/kubernetes-sigs/agent-sandbox), or set sandbox_crd = \"auto\" \
                 under [backends.kubernetes] to use bare pods where it is missing"
            ))),
            other => Err(Error::invalid_input(format!(
                "[backends.kubernetes] sandbox_crd = {other:?} is not one of \"auto\", \"true\", \"false\""
            ))),
        }
    }

    /// The shape an existing session has: a SandboxClaim or a Sandbox if it
    /// has one.
    fn of(resource: &str) -> Result<Self> {
        Ok(if exists(SANDBOX_CLAIM, resource)? {
            Self::Claim
        } else if exists(SANDBOX, resource)? {
            Self::Sandbox
        } else {
            Self::Pod
        })
    }

    /// The session's claim (a warm pod's is its Sandbox's, named by the controller).
    fn claim_name(self, resource: &str) -> String {
        match self {
            Self::Pod => format!("{resource}-data"),
            Self::Sandbox | Self::Claim => format!("{DATA}-{resource}"),
        }
    }
}

/// `warm_pool`: how many ready Sandboxes agent-sandbox keeps for new
/// sessions (0, the default: none).
fn warm_pool_size(spec: &SessionSpec) -> Result<u32> {
    match spec.option("warm_pool") {
        None => Ok(0),
        Some(n) => n.parse().map_err(|_| {
            Error::invalid_input(format!(
                "[backends.kubernetes] warm_pool = {n:?} is not a number of Sandboxes (e.g. \"2\")"
            ))
        }),
    }
}

/// The Sandbox a session's SandboxClaim took (none before it took one).
fn claimed_sandbox(resource: &str) -> Result<Option<Value>> {
    let Some(claim) = kube::get(SANDBOX_CLAIM, resource)? else { return Ok(None) };
    let claim = parse(&claim)?;
    let Some(name) = claim["status"]["sandbox"]["name"].as_str() else { return Ok(None) };
    kube::get(SANDBOX, name)?.map(|s| parse(&s)).transpose()
}

/// The name of the session's pod: a warm pool's keeps the name it was made
/// with (agent-sandbox's `pod-name`); any other is named as the resource.
fn pod_of(resource: &str) -> Result<String> {
    Ok(pod_name(resource, claimed_sandbox(resource)?.as_ref()))
}

/// [`pod_of`], the session's Sandbox (claimed or its own; if any) known.
fn pod_name(resource: &str, claimed: Option<&Value>) -> String {
    claimed
        .and_then(|s| s["metadata"]["annotations"][POD_NAME_ANNOTATION].as_str().or(s["metadata"]["name"].as_str()))
        .unwrap_or(resource)
        .to_string()
}

fn labels(spec: &SessionSpec) -> Value {
    json!({SESSION_LABEL: spec.id, RESOURCE_LABEL: spec.resource_name})
}

fn claim_spec(spec: &SessionSpec) -> Value {
    let mut claim = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.option("storage").unwrap_or("10Gi")}}
    });
    if let Some(class) = spec.option("storage_class") {
        claim["storageClassName"] = json!(class);
    }
    claim
}

fn claim(spec: &SessionSpec) -> Value {
    json!({
        "apiVersion": "v1", "kind": CLAIM,
        "metadata": {"name": Shape::Pod.claim_name(&spec.resource_name), "labels": labels(spec)},
        "spec": claim_spec(spec)
    })
}

/// The session's Sandbox, running (`replicas: 1`): its pod template and its
/// claim template. With `shutdown_after` it expires that long from now (the
/// cluster deletes its pod then, even if nothing on this machine is left to
/// stop it).
fn sandbox(spec: &SessionSpec, way: Option<&WayOut>) -> Result<Value> {
    let mut sandbox = json!({
        "apiVersion": SANDBOX_API, "kind": SANDBOX,
        "metadata": {"name": spec.resource_name, "labels": labels(spec)},
        "spec": {
            "podTemplate": {"metadata": {"labels": labels(spec)}, "spec": pod_spec(spec, None, way)?},
            "volumeClaimTemplates": [{"metadata": {"name": DATA, "labels": labels(spec)}, "spec": claim_spec(spec)}],
            "replicas": 1
        }
    });
    if let Some(after) = spec.option("shutdown_after") {
        let after = humantime::parse_duration(after).map_err(|e| {
            Error::invalid_input(format!(
                "[backends.kubernetes] shutdown_after = {after:?}: {e} (e.g. \"8h\", \"30m\")"
            ))
        })?;
        // The cluster's clock: its controller is what acts on the time.
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(kube::cluster_time()?);
        let at = now + after;
        sandbox["spec"]["shutdownTime"] = json!(humantime::format_rfc3339_seconds(at).to_string());
    }
    Ok(sandbox)
}

fn policy_name(resource: &str) -> String {
    format!("{resource}-isolated")
}

/// No connection into or out of the session's pod through the pod network
/// (the host's port-forwards, the tunnel, do not pass through it), but to
/// the proxy's direct door when its route is the door.
fn policy(spec: &SessionSpec, way: Option<&WayOut>) -> Result<Value> {
    let resource = &spec.resource_name;
    isolation(&policy_name(resource), labels(spec), json!({RESOURCE_LABEL: resource}), way)
}

/// The network policy `name` (labelled `labels`) isolating the pods with
/// the labels `selected`, as [`policy`] says.
fn isolation(name: &str, labels: Value, selected: Value, way: Option<&WayOut>) -> Result<Value> {
    let mut policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": POLICY,
        "metadata": {"name": name, "labels": labels},
        "spec": {"podSelector": {"matchLabels": selected}, "policyTypes": ["Ingress", "Egress"]}
    });
    if let Some(WayOut { route: Route::Direct(address), .. }) = way {
        let door: std::net::SocketAddr = address
            .parse()
            .map_err(|_| Error::failed(format!("the host's direct door {address:?} is not an IP address and port")))?;
        let cidr = match door.ip() {
            std::net::IpAddr::V4(ip) => format!("{ip}/32"),
            std::net::IpAddr::V6(ip) => format!("{ip}/128"),
        };
        policy["spec"]["egress"] =
            json!([{"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": door.port()}]}]);
    }
    Ok(policy)
}

/// How the relay in the pod reaches the session's proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    /// Through the host's port-forwards into the pod on this port.
    Tunnel(u16),
    /// Through the proxy's direct door at this `IP:PORT`, with the door file.
    Direct(String),
}

impl Route {
    /// The relay's arguments for it.
    fn args(&self) -> Vec<String> {
        match self {
            Self::Tunnel(port) => vec!["--tunnel".into(), port.to_string()],
            Self::Direct(address) => vec!["--direct".into(), address.clone(), "--door".into(), DOOR.into()],
        }
    }

    /// The route a pod's relay was started with (its command says).
    fn of_pod(pod: &Value) -> Option<Self> {
        let command: Vec<&str> =
            pod["spec"]["containers"][0]["command"].as_array()?.iter().filter_map(Value::as_str).collect();
        Self::of_args(&command)
    }

    /// The route the relay's arguments `command` say.
    fn of_args(command: &[&str]) -> Option<Self> {
        let after = |flag: &str| command.iter().position(|a| *a == flag).and_then(|i| command.get(i + 1));
        if let Some(address) = after("--direct") {
            return Some(Self::Direct(address.to_string()));
        }
        after("--tunnel")?.parse().ok().map(Self::Tunnel)
    }
}

/// The session's way out: the proxy's port in the pod, the relay (on the
/// host) and its route; none without a proxy.
struct WayOut {
    proxy_port: u16,
    relay: String,
    route: Route,
}

impl WayOut {
    /// The way out a new pod gets: through the proxy's direct door where
    /// the daemon has one (the cluster can reach it), else the tunnel.
    fn of(spec: &SessionSpec) -> Result<Option<Self>> {
        let (Some(proxy_port), Some(relay)) =
            (spec.option("proxy-port").and_then(|p| p.parse::<u16>().ok()), spec.option("relay"))
        else {
            return Ok(None);
        };
        let route = match kube::direct_door()? {
            Some(address) => Route::Direct(address),
            None => match TUNNEL_PORTS.into_iter().find(|p| *p != proxy_port) {
                Some(port) => Route::Tunnel(port),
                None => return Ok(None),
            },
        };
        Ok(Some(Self { proxy_port, relay: relay.to_string(), route }))
    }

    /// The relay in the pod.
    fn relay_in_pod(&self) -> String {
        format!("{BIN_DIR}/{}", self.relay.rsplit('/').next().unwrap_or("clauderon-relay"))
    }
}

/// CPU and memory, as requests and limits both (the pod is then `Guaranteed`).
fn resources(spec: &SessionSpec) -> Value {
    let mut amounts = serde_json::Map::new();
    if let Some(cpu) = spec.cpu_limit.map(|c| format!("{}m", (c * 1000.0).round() as u64)) {
        amounts.insert("cpu".into(), json!(cpu));
    } else if let Some(cpu) = spec.option("cpu") {
        amounts.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = spec.memory_limit.map(|m| m.to_string()) {
        amounts.insert("memory".into(), json!(memory));
    } else if let Some(memory) = spec.option("memory") {
        amounts.insert("memory".into(), json!(memory));
    }
    if amounts.is_empty() { json!({}) } else { json!({"requests": amounts, "limits": amounts}) }
}

/// Where the session's host paths are in the pod.
fn path_map(spec: &SessionSpec) -> PathMap {
    let bundle = spec.env_value("SSL_CERT_FILE").and_then(|p| p.rsplit('/').next()).unwrap_or("ca-bundle.pem");
    PathMap::new(spec, WORKSPACE, HOME, &format!("{CA_DIR}/{bundle}"))
}

/// The agent's command in the pod: the relay (its way to the proxy) running
/// the agent's own; and the directory it runs in.
fn agent_command(spec: &SessionSpec, way: Option<&WayOut>) -> Result<(String, Vec<String>)> {
    if spec.launch.argv.is_empty() {
        return Err(Error::invalid_input("the agent's launch plan has no command"));
    }
    let map = path_map(spec);
    let mut command = Vec::new();
    if let Some(way) = way {
        command.push(way.relay_in_pod());
        command.extend(["--port".into(), way.proxy_port.to_string()]);
        command.extend(way.route.args());
        command.push("--".into());
    }
    command.extend(spec.launch.argv.iter().map(|a| map.rewrite(a)));
    Ok((map.rewrite(&spec.workdir), command))
}

/// The session's pod's spec; `claim`: the claim it mounts as its `data`
/// volume (none: the Sandbox's controller adds it from the claim template);
/// `way`: its relay's way to the proxy.
fn pod_spec(spec: &SessionSpec, claim: Option<&str>, way: Option<&WayOut>) -> Result<Value> {
    let (workdir, agent) = agent_command(spec, way)?;
    let env: Vec<Value> =
        path_map(spec).env(spec).into_iter().map(|e| json!({"name": e.name, "value": e.value})).collect();
    // The agent starts once the session's files are in the claim (`READY`).
    let wait = r#"until [ -e "$1" ]; do sleep 0.2; done; cd "$2" && shift 2 && exec "$@""#;
    let mut command: Vec<String> = ["sh", "-c", wait, "sh", READY].iter().map(|s| s.to_string()).collect();
    command.push(workdir);
    command.extend(agent);
    Ok(contained_pod(spec, command, env, claim))
}

/// A warm pool's pod's spec: nothing of a session's. It waits for its
/// launch script (`/session/.launch-<its uid>`, which the backend writes
/// once a claim has taken it and the session's files are in) and runs it.
fn warm_pod_spec(spec: &SessionSpec) -> Value {
    let wait = r#"until [ -e "$1$POD_UID" ]; do sleep 0.2; done; exec sh "$1$POD_UID""#;
    let command = ["sh", "-c", wait, "sh", LAUNCH_PREFIX].iter().map(|s| s.to_string()).collect();
    let env = vec![json!({"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}})];
    contained_pod(spec, command, env, None)
}

/// A pod spec running `command` with `env` as the agent's user, hardened
/// (see the module's doc), with the session's data at `/session`.
fn contained_pod(spec: &SessionSpec, command: Vec<String>, env: Vec<Value>, claim: Option<&str>) -> Value {
    let image = spec.image.clone().or_else(|| spec.option("image").map(String::from)).unwrap_or(DEFAULT_IMAGE.into());
    let mut pod = json!({
        "restartPolicy": "OnFailure",
        "automountServiceAccountToken": false,
        "securityContext": {
            "runAsUser": USER, "runAsGroup": USER, "fsGroup": USER, "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "containers": [{
            "name": "agent",
            "image": image,
            "command": command,
            "env": env,
            "stdin": true,
            "tty": true,
            "resources": resources(spec),
            "volumeMounts": [{"name": DATA, "mountPath": MOUNT}],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": true
            }
        }]
    });
    if let Some(claim) = claim {
        pod["volumes"] = json!([{"name": DATA, "persistentVolumeClaim": {"claimName": claim}}]);
    }
    if let Some(class) = spec.option("runtime_class") {
        pod["runtimeClassName"] = json!(class);
    }
    pod
}

/// The warm pool (`warm_pool` Sandboxes, kept ready by agent-sandbox), its
/// template and the network policy of its pods (as a session's: nowhere
/// but the door, when the daemon has one), applied as this daemon would
/// make them now.
fn ensure_pool(spec: &SessionSpec, way: Option<&WayOut>) -> Result<()> {
    let marks = json!({POOL_LABEL: WARM});
    kube::apply(&isolation(&policy_name(WARM), marks.clone(), marks.clone(), way)?.to_string())?;
    let template = json!({
        "apiVersion": EXTENSIONS_API, "kind": SANDBOX_TEMPLATE,
        "metadata": {"name": WARM, "labels": marks},
        "spec": {
            // The pods' isolation is the policy above, not agent-sandbox's.
            "networkPolicyManagement": "Unmanaged",
            "podTemplate": {"metadata": {"labels": marks}, "spec": warm_pod_spec(spec)},
            "volumeClaimTemplates": [{"metadata": {"name": DATA, "labels": marks}, "spec": claim_spec(spec)}]
        }
    });
    kube::apply(&template.to_string())?;
    let pool = json!({
        "apiVersion": EXTENSIONS_API, "kind": SANDBOX_WARM_POOL,
        "metadata": {"name": WARM, "labels": marks},
        "spec": {"replicas": warm_pool_size(spec)?, "sandboxTemplateRef": {"name": WARM}}
    });
    kube::apply(&pool.to_string())?;
    Ok(())
}

/// The session's SandboxClaim on the warm pool; `route`: its relay's, once launched.
fn sandbox_claim(spec: &SessionSpec, route: Option<&Route>) -> Value {
    let mut claim = json!({
        "apiVersion": EXTENSIONS_API, "kind": SANDBOX_CLAIM,
        "metadata": {"name": spec.resource_name, "labels": labels(spec)},
        "spec": {"warmPoolRef": {"name": WARM}}
    });
    if let Some(route) = route {
        claim["metadata"]["annotations"] = json!({ROUTE_ANNOTATION: route.args().join(" ")});
    }
    claim
}

/// `word` for `sh`: single-quoted.
fn quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The launch script of the session's warm pod: its environment, then the
/// agent (through the relay) in its directory.
fn launch_script(spec: &SessionSpec, way: Option<&WayOut>) -> Result<String> {
    let (workdir, agent) = agent_command(spec, way)?;
    let mut script = String::from("# clauderon: this session's agent\n");
    for var in path_map(spec).env(spec) {
        script.push_str(&format!("export {}={}\n", var.name, quoted(&var.value)));
    }
    let argv: Vec<String> = agent.iter().map(|a| quoted(a)).collect();
    script.push_str(&format!("cd {} && exec {}\n", quoted(&workdir), argv.join(" ")));
    Ok(script)
}

/// Start the agent in warm pod `pod` (uid `uid`) — once: a pod that has
/// its launch script runs it already (the daemon restarted). Returns its
/// relay's route.
fn launch_warm(spec: &SessionSpec, pod: &str, uid: &str) -> Result<Option<Route>> {
    let launch = format!("{LAUNCH_PREFIX}{uid}");
    if kube::exec(pod, None, &["test".into(), "-e".into(), launch.clone()], None)?.exit_code == Some(0) {
        let claim = kube::get(SANDBOX_CLAIM, &spec.resource_name)?.map(|c| parse(&c)).transpose()?;
        let route = claim.as_ref().and_then(|c| c["metadata"]["annotations"][ROUTE_ANNOTATION].as_str());
        return Ok(route.and_then(|r| Route::of_args(&r.split(' ').collect::<Vec<_>>())));
    }
    let way = WayOut::of(spec)?;
    let route = way.as_ref().map(|w| w.route.clone());
    fill_claim(spec, pod, route.as_ref(), false)?;
    // Written whole, then moved into place: the pod never runs half a script.
    let write =
        format!("rm -f {LAUNCH_PREFIX}*; umask 077; cat > \"$1.new\" && chmod 500 \"$1.new\" && mv \"$1.new\" \"$1\"");
    let script = launch_script(spec, way.as_ref())?;
    let wrote =
        kube::exec(pod, None, &["sh".into(), "-c".into(), write, "sh".into(), launch], Some(&script.into_bytes()))?;
    if wrote.exit_code != Some(0) {
        return Err(Error::failed(format!(
            "writing the agent's launch script in pod {pod} failed: {}",
            String::from_utf8_lossy(&wrote.stderr).trim()
        )));
    }
    kube::apply(&sandbox_claim(spec, route.as_ref()).to_string())?;
    Ok(route)
}

fn pod(spec: &SessionSpec, way: Option<&WayOut>) -> Result<Value> {
    let claim = Shape::Pod.claim_name(&spec.resource_name);
    Ok(json!({
        "apiVersion": "v1", "kind": POD,
        "metadata": {"name": spec.resource_name, "labels": labels(spec)},
        "spec": pod_spec(spec, Some(&claim), way)?
    }))
}

/// The first container's status, if the pod has one yet.
fn container(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

/// A pod's state as a session's, with the cluster's own words.
fn state_of(pod: &Value) -> ResourceStatus {
    let status = &pod["status"];
    let said = |reason: &str, message: &Value| match message.as_str().filter(|m| !m.is_empty()) {
        Some(message) => format!("{reason}: {message}"),
        None => reason.to_string(),
    };
    let c = container(pod);
    if status["reason"] == "Evicted" {
        return ResourceStatus::failed(said("Evicted", &status["message"]));
    }
    if let Some(reason) = c["state"]["waiting"]["reason"].as_str() {
        if c["lastState"]["terminated"]["reason"] == "OOMKilled" {
            return ResourceStatus::failed(format!(
                "OOMKilled: the agent ran out of memory (its limit: {}); {}",
                pod["spec"]["containers"][0]["resources"]["limits"]["memory"].as_str().unwrap_or("none"),
                said(reason, &c["state"]["waiting"]["message"])
            ));
        }
        if !matches!(reason, "ContainerCreating" | "PodInitializing") {
            return ResourceStatus::failed(said(reason, &c["state"]["waiting"]["message"]));
        }
    }
    if let Some(ended) = c["state"]["terminated"].as_object() {
        let reason = ended.get("reason").and_then(Value::as_str).unwrap_or("Terminated");
        let code = ended.get("exitCode").and_then(Value::as_i64).unwrap_or(-1);
        return match reason {
            "OOMKilled" => ResourceStatus::failed(format!("OOMKilled: the agent ran out of memory (exit {code})")),
            _ => ResourceStatus { state: ResourceState::Stopped, detail: Some(format!("{reason} (exit {code})")) },
        };
    }
    match status["phase"].as_str() {
        Some("Running") => ResourceStatus::running(),
        Some("Succeeded") => ResourceStatus::stopped(),
        Some("Failed") => ResourceStatus::failed(said("Failed", &status["message"])),
        _ => {
            let unscheduled = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "PodScheduled" && c["status"] == "False");
            let detail = match unscheduled {
                Some(c) => said(c["reason"].as_str().unwrap_or("Unschedulable"), &c["message"]),
                None => said("Pending", &c["state"]["waiting"]["reason"]),
            };
            ResourceStatus { state: ResourceState::Starting, detail: Some(detail) }
        }
    }
}

fn parse(json: &str) -> Result<Value> {
    serde_json::from_str(json).map_err(|e| Error::failed(format!("the cluster's answer is not JSON: {e}")))
}

/// Make the pod (the claim exists) or have the Sandbox run, with its
/// network policy for its way out, then [`settle`] it (`fresh`: its claim
/// was made by this create, so it is empty).
fn launch(spec: &SessionSpec, shape: Shape, fresh: bool) -> Result<SessionInfo> {
    let way = WayOut::of(spec)?;
    match shape {
        Shape::Pod => {
            kube::apply(&policy(spec, way.as_ref())?.to_string())?;
            kube::apply(&pod(spec, way.as_ref())?.to_string())?
        }
        Shape::Sandbox => {
            kube::apply(&policy(spec, way.as_ref())?.to_string())?;
            kube::apply(&sandbox(spec, way.as_ref())?.to_string())?
        }
        Shape::Claim => {
            ensure_pool(spec, way.as_ref())?;
            kube::apply(&sandbox_claim(spec, None).to_string())?
        }
    };
    settle(spec, shape, fresh)
}

/// How long create and start wait for the session's pod (`start_timeout_ms`).
fn start_timeout(spec: &SessionSpec) -> u32 {
    spec.option("start_timeout_ms").and_then(|t| t.parse().ok()).unwrap_or(60_000)
}

/// The pod the session's SandboxClaim took, waiting (within `timeout` ms)
/// for agent-sandbox to give it one.
fn wait_for_claim(resource: &str, timeout: u32) -> Result<String> {
    let claim = parse(&kube::wait_for_claim(resource, timeout)?)?;
    if claim["status"]["sandbox"]["name"].as_str().is_some() {
        return pod_of(resource);
    }
    let ready = claim["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
    let said = ready.map_or("nothing yet (is agent-sandbox's controller running?)".to_string(), |c| {
        format!("{}: {}", c["reason"].as_str().unwrap_or("?"), c["message"].as_str().unwrap_or_default())
    });
    Err(Error::failed(format!(
        "SandboxClaim {resource} got no Sandbox from the warm pool {WARM} in {timeout} ms; it says {said}"
    )))
}

/// Wait for the session's pod to run (a Sandbox's is made by its
/// controller meanwhile; a warm pool's is taken by its claim), fill its
/// claim (once; `fresh`: it is new), start a warm pod's agent, open its way
/// out and have the host follow its health.
fn settle(spec: &SessionSpec, shape: Shape, fresh: bool) -> Result<SessionInfo> {
    let timeout = start_timeout(spec);
    let pod = match shape {
        Shape::Claim => wait_for_claim(&spec.resource_name, timeout)?,
        Shape::Pod | Shape::Sandbox => spec.resource_name.clone(),
    };
    let seen = match kube::wait_for_pod(&pod, timeout) {
        // The Sandbox's controller says why it made no pod.
        Err(Error::NotFound(why)) => match sandbox_condition(&pod)? {
            Some(said) => return Err(Error::failed(format!("{why}; its Sandbox says {said}"))),
            None => return Err(Error::NotFound(why)),
        },
        seen => parse(&seen?)?,
    };
    let status = state_of(&seen);
    if matches!(status.state, ResourceState::Failed) {
        return Err(Error::failed(format!("pod {pod} cannot run: {}", status.detail.unwrap_or_default())));
    }
    if !matches!(status.state, ResourceState::Running) {
        return Err(Error::failed(format!(
            "pod {pod} did not run in the time create may wait (start_timeout_ms = {timeout}, within the call's \
             deadline): {}; a cluster that pulls images or provisions volumes may need longer: raise \
             start_timeout_ms under [backends.kubernetes] and [limits.backend] deadline",
            status.detail.unwrap_or_default()
        )));
    }
    // The pod's relay reaches the proxy the way it was started with.
    let route = match shape {
        Shape::Claim => launch_warm(spec, &pod, seen["metadata"]["uid"].as_str().unwrap_or_default())?,
        Shape::Pod | Shape::Sandbox => {
            let route = Route::of_pod(&seen);
            fill_claim(spec, &pod, route.as_ref(), fresh)?;
            route
        }
    };
    open_way(&pod, route.as_ref())?;
    kube::watch_pod(&pod)?;
    Ok(SessionInfo { resource_id: spec.resource_name.clone(), status })
}

/// Open the way out from the session's pod `pod` (see the module's doc):
/// its tunnel, or its proxy for the direct door (which leads only to an open one).
fn open_way(pod: &str, route: Option<&Route>) -> Result<()> {
    match route {
        Some(Route::Tunnel(port)) => Ok(kube::open_tunnel(pod, *port)?),
        Some(Route::Direct(_)) => match kube::direct_door()? {
            Some(_) => Ok(()),
            None => Err(Error::failed(format!(
                "pod {pod} reaches the proxy through the direct door, which this daemon no longer has \
                 ([proxy] direct_listen): stop and start the session to give it the tunnel"
            ))),
        },
        None => Ok(()),
    }
}

/// Copy the session's files into its claim, once (a claim that has them
/// keeps them, and the agent's work, across stop and start): the branch at
/// the workspace, the config home, clauderon's CA bundle, the relay. Then
/// the agent starts. The door file goes in every time the route is the
/// door (the session's pod may have had the tunnel before). A `fresh` claim
/// (made by this create) is not asked whether it has them: one exec less.
fn fill_claim(spec: &SessionSpec, pod: &str, route: Option<&Route>, fresh: bool) -> Result<()> {
    if let Some(Route::Direct(_)) = route {
        kube::copy_in(pod, None, &kube::CopySource::Door, DOOR)?;
    }
    if !fresh && kube::exec(pod, None, &["test".into(), "-e".into(), READY.into()], None)?.exit_code == Some(0) {
        return Ok(());
    }
    kube::copy_in(pod, None, &kube::CopySource::Branch, WORKSPACE)?;
    if let Some(home) = spec.env_value("HOME") {
        kube::copy_in(pod, None, &kube::CopySource::Path(home.to_string()), HOME)?;
    }
    if let Some(bundle) = spec.env_value("SSL_CERT_FILE") {
        kube::copy_in(pod, None, &kube::CopySource::Path(bundle.to_string()), CA_DIR)?;
    }
    if let (Some(_), Some(relay)) = (route, spec.option("relay")) {
        kube::copy_in(pod, None, &kube::CopySource::Path(relay.to_string()), BIN_DIR)?;
    }
    let done = kube::exec(pod, None, &["touch".into(), READY.into()], None)?;
    if done.exit_code != Some(0) {
        return Err(Error::failed(format!(
            "marking the session's files ready in pod {pod} failed: {}",
            String::from_utf8_lossy(&done.stderr).trim()
        )));
    }
    Ok(())
}

fn exists(kind: &str, name: &str) -> Result<bool> {
    Ok(kube::get(kind, name)?.is_some())
}

/// The component's objects of `kind` labelled with a resource; none when
/// the cluster does not serve the kind (a Sandbox without agent-sandbox).
fn listed(kind: &str, selector: &str) -> Result<Vec<Value>> {
    match kube::list_objects(kind, selector) {
        Err(Error::NotFound(_)) if kind == SANDBOX || kind == SANDBOX_CLAIM => Ok(Vec::new()),
        listed => listed?.iter().map(|o| parse(o)).collect(),
    }
}

/// A Sandbox's `Ready` condition, if its controller has written one.
fn ready_condition(sandbox: &Value) -> Option<&Value> {
    sandbox["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")
}

/// Sandbox `name`'s `Ready` condition when it is not ready, as
/// `REASON: message`; none without a Sandbox.
fn sandbox_condition(name: &str) -> Result<Option<String>> {
    let Some(found) = kube::get(SANDBOX, name)? else { return Ok(None) };
    Ok(Some(match ready_condition(&parse(&found)?) {
        Some(c) => format!("{}: {}", c["reason"].as_str().unwrap_or("?"), c["message"].as_str().unwrap_or_default()),
        None => "nothing yet (is agent-sandbox's controller running?)".into(),
    }))
}

/// A Sandbox's state (its pod's when it has one): paused or shut down at
/// its `shutdownTime` → stopped; a controller's error → failed.
fn sandbox_state(sandbox: &Value, pod: Option<&Value>) -> ResourceStatus {
    let ready = ready_condition(sandbox);
    let reason = ready.and_then(|c| c["reason"].as_str()).unwrap_or_default();
    let message = ready.and_then(|c| c["message"].as_str()).unwrap_or_default();
    if reason == "SandboxExpired" {
        let at = sandbox["spec"]["shutdownTime"].as_str().unwrap_or("its shutdownTime");
        return ResourceStatus {
            state: ResourceState::Stopped,
            detail: Some(format!("the cluster shut its Sandbox down at {at} (shutdown_after)")),
        };
    }
    if sandbox["spec"]["replicas"] == 0 {
        return ResourceStatus { state: ResourceState::Stopped, detail: Some("its Sandbox is paused".into()) };
    }
    match pod {
        Some(pod) => state_of(pod),
        None if reason == "ReconcilerError" => ResourceStatus::failed(format!("{reason}: {message}")),
        None => ResourceStatus {
            state: ResourceState::Starting,
            detail: Some(format!("its Sandbox's controller has not made its pod yet ({reason}: {message})")),
        },
    }
}

/// Pause (`replicas: 0`) or resume (`1`) Sandbox `found`, as it is (its
/// spec otherwise unchanged; what agent-sandbox's controller wrote in its
/// pod template's metadata is its own, and stays).
fn set_replicas(found: &Value, replicas: u8) -> Result<()> {
    let name = found["metadata"]["name"].as_str().unwrap_or_default();
    let mut spec = found["spec"].clone();
    spec["replicas"] = json!(replicas);
    for part in ["labels", "annotations"] {
        if let Some(map) = spec["podTemplate"]["metadata"][part].as_object_mut() {
            map.retain(|key, _| !key.starts_with("agents.x-k8s.io/"));
        }
    }
    let mut metadata = json!({"name": name});
    if let Some(labels) = found["metadata"]["labels"].as_object() {
        let own: serde_json::Map<String, Value> = labels
            .iter()
            .filter(|(k, _)| !k.starts_with("agents.x-k8s.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        metadata["labels"] = json!(own);
    }
    let changed = json!({"apiVersion": SANDBOX_API, "kind": SANDBOX, "metadata": metadata, "spec": spec});
    kube::apply(&changed.to_string())?;
    Ok(())
}

/// The session's Sandbox: the one its claim took, or its own (named as the
/// resource). Its pod is [`pod_name`]`(resource, it)`.
fn session_sandbox(resource: &str) -> Result<Option<Value>> {
    match claimed_sandbox(resource)? {
        Some(claimed) => Ok(Some(claimed)),
        None => kube::get(SANDBOX, resource)?.map(|s| parse(&s)).transpose(),
    }
}

impl Backend for Kubernetes {
    fn info() -> BackendInfo {
        BackendInfo {
            id: "kubernetes".into(),
            display_name: "Kubernetes (experimental)".into(),
            features: BackendFeatures { remote_workspace: true, ..BackendFeatures::CONTAINER },
        }
    }

    fn create(spec: SessionSpec) -> Result<SessionInfo> {
        let name = &spec.resource_name;
        if !name.starts_with(PREFIX) {
            return Err(Error::invalid_input(format!("`{name}` is not a pod name of clauderon")));
        }
        let shape = Shape::chosen(&spec)?;
        if exists(POD, name)?
            || exists(SANDBOX, name)?
            || exists(SANDBOX_CLAIM, name)?
            || exists(CLAIM, &shape.claim_name(name))?
            || exists(POLICY, &policy_name(name))?
        {
            return Err(Error::invalid_input(format!(
                "pod {name}, its Sandbox, its SandboxClaim, its claim or its network policy exists already and is not this session's"
            )));
        }
        if shape == Shape::Pod {
            kube::apply(&claim(&spec).to_string())?;
        }
        launch(&spec, shape, true)
    }

    fn start(resource_id: String, spec: SessionSpec) -> Result<SessionInfo> {
        let shape = Shape::of(&resource_id)?;
        let sandbox = session_sandbox(&resource_id)?;
        let pod = pod_name(&resource_id, sandbox.as_ref());
        if let Some(found) = kube::get(POD, &pod)? {
            if matches!(state_of(&parse(&found)?).state, ResourceState::Running | ResourceState::Starting) {
                // It runs on, or is about to (the daemon restarted): wait
                // for it as create does, and open its tunnel again.
                return settle(&spec, shape, false);
            }
            // A pod that ended or cannot run is made again (its spec cannot
            // change in place; a Sandbox's controller makes it again).
            kube::delete(POD, &pod)?;
        }
        if shape == Shape::Claim {
            // The claim's Sandbox resumes (its controller makes its pod again).
            if let Some(sandbox) = &sandbox {
                set_replicas(sandbox, 1)?;
            }
            return settle(&spec, shape, false);
        }
        if shape == Shape::Pod && !exists(CLAIM, &shape.claim_name(&resource_id))? {
            kube::apply(&claim(&spec).to_string())?;
        }
        launch(&spec, shape, false)
    }

    fn stop(resource_id: String) -> Result<()> {
        let sandbox = session_sandbox(&resource_id)?;
        // A Sandbox is paused (its controller deletes the pod and keeps the claim).
        if let Some(sandbox) = &sandbox {
            set_replicas(sandbox, 0)?;
        }
        let pod = pod_name(&resource_id, sandbox.as_ref());
        kube::delete(POD, &pod)?;
        Ok(())
    }

    fn delete(resource_id: String) -> Result<()> {
        let selector = format!("{RESOURCE_LABEL}={resource_id}");
        // A claim's Sandbox goes with it (the cluster deletes what it owns).
        if let Some(claimed) = claimed_sandbox(&resource_id)? {
            kube::delete(SANDBOX, claimed["metadata"]["name"].as_str().unwrap_or_default())?;
        }
        for kind in KINDS {
            for object in listed(kind, &selector)? {
                kube::delete(kind, object["metadata"]["name"].as_str().unwrap_or_default())?;
            }
        }
        // Objects that lost their labels still go by name.
        kube::delete(SANDBOX, &resource_id)?;
        kube::delete(POD, &resource_id)?;
        for shape in [Shape::Pod, Shape::Sandbox] {
            kube::delete(CLAIM, &shape.claim_name(&resource_id))?;
        }
        kube::delete(POLICY, &policy_name(&resource_id))?;
        Ok(())
    }

    fn status(resource_id: String) -> Result<ResourceStatus> {
        // (Asked often, by the host's watch: each object read once.)
        let sandbox = session_sandbox(&resource_id)?;
        let pod = kube::get(POD, &pod_name(&resource_id, sandbox.as_ref()))?.map(|p| parse(&p)).transpose()?;
        if let Some(sandbox) = sandbox {
            return Ok(sandbox_state(&sandbox, pod.as_ref()));
        }
        match pod {
            Some(pod) => Ok(state_of(&pod)),
            None if exists(CLAIM, &Shape::Pod.claim_name(&resource_id))? => Ok(ResourceStatus::stopped()),
            None if exists(SANDBOX_CLAIM, &resource_id)? => Ok(ResourceStatus {
                state: ResourceState::Starting,
                detail: Some(format!("its SandboxClaim has no Sandbox from the warm pool {WARM} yet")),
            }),
            None => Ok(ResourceStatus::missing(format!("neither pod {resource_id} nor its claim exists"))),
        }
    }

    fn output(resource_id: String, lines: u32) -> Result<String> {
        kube::logs(&pod_of(&resource_id)?, None, lines)
    }

    fn attach_argv(resource_id: String) -> Result<Vec<String>> {
        let pod = pod_of(&resource_id)?;
        if !exists(POD, &pod)? {
            return Err(Error::not_found(format!("pod {pod} is not running: start the session first")));
        }
        Ok(kube::attach_argv(&pod, None))
    }

    /// The agent's commits in the claim's workspace, brought to the
    /// session's clone on the host. A pod that is not running has nothing
    /// new: it was exported when it stopped.
    fn export_branch(resource_id: String) -> Result<()> {
        let pod = pod_of(&resource_id)?;
        let Some(found) = kube::get(POD, &pod)? else { return Ok(()) };
        if !matches!(state_of(&parse(&found)?).state, ResourceState::Running) {
            return Ok(());
        }
        kube::copy_out(&pod, None, WORKSPACE)?;
        Ok(())
    }

    fn list_resources() -> Result<Vec<String>> {
        let mut names = Vec::new();
        for kind in [SANDBOX_CLAIM, SANDBOX, POD, CLAIM] {
            for object in listed(kind, RESOURCE_LABEL)? {
                if let Some(resource) = object["metadata"]["labels"][RESOURCE_LABEL].as_str() {
                    names.push(resource.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

clauderon_sdk::export_backend!(Kubernetes);
