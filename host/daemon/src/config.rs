//! `CLAUDERON_HOME/config.toml`: defaults and daemon settings.
//!
//! ```toml
//! [general]
//! default_backend = "zellij"      # backend when `create` names none
//! default_agent = "claude-code"   # agent when `create` names none
//!
//! [daemon]
//! http_port = 3030                # API port
//! bind_addr = "127.0.0.1"         # where the API listens
//! token = "…"                     # or CLAUDERON_API_TOKEN; default: made at first
//!                                 # start in CLAUDERON_HOME/api-token (0600)
//! hosts = ["devbox.lan"]          # more names the API answers to (Host/Origin);
//!                                 # always: 127.0.0.1, localhost, [::1] and bind_addr
//!
//! [proxy]                         # the zero-credential proxy
//! bind_addr = "127.0.0.1"         # where per-session listeners bind
//! allow_private_hosts = ["git.corp.example"]  # may resolve to private addresses
//!                                 # (loopback and this machine's own: never)
//! extra_root_certs = []           # PEM roots trusted for upstreams besides the system's
//! grafana_host = "grafana.example.net"  # enables the built-in Grafana rule
//! no_proxy = ["localhost", "127.0.0.1", "::1"]
//! audit_retention_days = 30
//! audit_max_records = 1000000      # the oldest beyond this are pruned
//! audit_records_per_minute = 6000 # per session, one by one; then a summary a minute
//! max_connections_per_session = 512   # tunnels included; over it: 429
//! max_requests_per_second = 1000  # per session (bursts of twice as many); over it: 429
//! idle_timeout_secs = 90          # a connection with nothing in flight, quiet this long, is closed
//! direct_listen = "0.0.0.0:7443"  # the direct door, for pods of a cluster that can reach this
//!                                 # machine (default: none; they come in through the tunnel)
//! direct_address = "192.0.2.10:7443"  # the IP and port they dial (default: direct_listen)
//! [proxy.upstreams]               # development/tests: send a host's traffic elsewhere
//! "api.github.com" = "127.0.0.1:9443"   # (still TLS; SNI and Host unchanged)
//! "*" = "127.0.0.1:9443"                # every host name without its own entry (not IPs, localhost)
//! [[proxy.rules]]                 # extra injection rules, checked before the built-in ones
//! name = "internal"
//! hosts = ["api.internal.example"]
//! inject = [{ service = "internal", header = "authorization", format = "bearer" }]
//!
//! [egress]                        # where sessions may connect through the proxy
//! default = "allow-list"          # or "allow-all": a session's mode when create does not say
//! builtin = true                  # the built-in list: agents' APIs, GitHub, package registries
//! allow = ["*.corp.example"]      # more hosts every allow-list session may reach
//!                                 # (the hosts of [[proxy.rules]] and grafana_host are allowed too)
//!
//! [backends.docker]               # options passed to a backend as they are
//! image = "clauderon/agent:latest" # default image
//! pull = "missing"                # missing | always | never
//! mounts = "/usr:/usr:ro"         # extra bind mounts, comma-separated src:dst[:ro]
//! path = "/usr/local/bin:/usr/bin:/bin"  # PATH inside the container
//!
//! [backends.kubernetes]           # the cluster components with `kube` use (kube-rs)
//! enabled = "true"                # the experimental Kubernetes backend is off unless
//!                                 # "true" (or `clauderon daemon --enable-kubernetes-backend`)
//! namespace = "clauderon"         # the one namespace they work in (default "default")
//! kubeconfig = "/home/me/.kube/config"  # default: KUBECONFIG, ~/.kube/config, then in-cluster
//! context = "prod"                # default: the kubeconfig's current context
//! service_account_token = "false" # "true": their pods may mount a service-account token
//! image = "clauderon/agent:latest" # the Kubernetes backend's pods: default image,
//! storage = "10Gi"                # the size of each session's claim,
//! storage_class = "fast"          # its storage class (default: the cluster's),
//! cpu = "2"                       # CPU and memory when create sets none,
//! memory = "4Gi"
//! start_timeout_ms = "60000"      # how long create waits for the pod to run
//! runtime_class = "gvisor"        # the pods' runtimeClassName (gVisor, Kata; default: none)
//! sandbox_crd = "auto"            # sessions as agent-sandbox Sandboxes: "auto" where the
//!                                 # cluster has the CRD, "true" (required), "false" (bare pods)
//! shutdown_after = "8h"           # a Sandbox's shutdownTime, this long after each start
//! warm_pool = "2"                 # Sandboxes agent-sandbox keeps ready for new sessions
//!
//! [push]                         # Web Push: the dashboard's notifications with no tab open
//! subject = "mailto:you@example.com"  # the contact push services see (Apple's wants a real one)
//! services = ["fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com", "notify.windows.com"]
//!                                 # hosts (and subdomains) a browser's push endpoint may be on
//!
//! [credentials]
//! order = ["env", "1password", "file"]  # credential sources, highest priority first
//!
//! [sandbox]                       # host sessions (zellij) run in clauderon's sandbox
//! enabled = true                  # false: run them unsandboxed (marked NONE in `list`)
//! required = true                 # false: run them unsandboxed where the sandbox cannot be built
//! hide = ["~/work/secrets"]       # more paths they must not see (credential stores are hidden already)
//!
//! [limits.backend]                # per plugin kind: backend, agent, credential-source, hook
//! deadline = 10000                # ms per call
//! memory_bytes = 67108864         # linear memory cap
//! output_bytes = 1048576          # data one call may return
//! log_bytes_per_call = 262144     # log text one call may write
//! log_bytes_per_minute = 4194304  # log text one component may write per minute
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clauderon_proxy::{EgressConfig, ProxyConfig};
use clauderon_runtime::{Kind, KubeSettings, Limits};
use serde::{Deserialize, Serialize};

/// The id of the (experimental, off unless enabled) Kubernetes backend.
pub const KUBERNETES: &str = "kubernetes";

/// How to turn the Kubernetes backend on, for a create that names it.
pub const ENABLE_KUBERNETES: &str = "it is experimental and off unless enabled: start the daemon with \
     `clauderon daemon --enable-kubernetes-backend`, or set `enabled = \"true\"` under [backends.kubernetes] in \
     config.toml (with namespace, and kubeconfig or context; see the README's Kubernetes section)";

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub general: General,
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Call limits per plugin kind (kinds not listed keep the defaults).
    #[serde(default)]
    pub limits: BTreeMap<Kind, Limits>,
    /// The proxy.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// Where sessions may connect through the proxy.
    #[serde(default)]
    pub egress: EgressConfig,
    /// Credential sources.
    #[serde(default)]
    pub credentials: CredentialsConfig,
    /// Web Push.
    #[serde(default)]
    pub push: clauderon_api::push::PushConfig,
    /// The sandbox host sessions run in.
    #[serde(default)]
    pub sandbox: clauderon_sessions::SandboxConfig,
    /// Options per backend (`[backends.docker] image = "…"`), passed to the backend as they are.
    #[serde(default, with = "backend_options")]
    pub backends: BTreeMap<String, Vec<(String, String)>>,
}

/// `[backends.<id>]` tables of string values ⇄ option lists.
mod backend_options {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Options = BTreeMap<String, Vec<(String, String)>>;

    pub fn serialize<S: Serializer>(v: &Options, s: S) -> Result<S::Ok, S::Error> {
        let tables: BTreeMap<&String, BTreeMap<&String, &String>> =
            v.iter().map(|(id, opts)| (id, opts.iter().map(|(k, v)| (k, v)).collect())).collect();
        tables.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Options, D::Error> {
        let tables = BTreeMap::<String, BTreeMap<String, String>>::deserialize(d)?;
        Ok(tables.into_iter().map(|(id, t)| (id, t.into_iter().collect())).collect())
    }
}

/// `[credentials]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// Credential-source component ids, highest priority first; sources not
    /// listed are asked after these, in id order.
    #[serde(default = "default_order")]
    pub order: Vec<String>,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        Self { order: default_order() }
    }
}

fn default_order() -> Vec<String> {
    ["env", "1password", "file"].map(String::from).to_vec()
}

/// `[general]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    #[serde(default = "default_backend")]
    pub default_backend: String,
    #[serde(default = "default_agent")]
    pub default_agent: String,
}

impl Default for General {
    fn default() -> Self {
        Self { default_backend: default_backend(), default_agent: default_agent() }
    }
}

fn default_backend() -> String {
    "zellij".into()
}
fn default_agent() -> String {
    "claude-code".into()
}

/// `[daemon]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    #[serde(default = "default_port")]
    pub http_port: u16,
    #[serde(default = "default_bind")]
    pub bind_addr: IpAddr,
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// More names (host or host:port) the API answers to, besides its own addresses.
    #[serde(default)]
    pub hosts: Vec<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self { http_port: default_port(), bind_addr: default_bind(), token: None, hosts: Vec::new() }
    }
}

fn default_port() -> u16 {
    3030
}
fn default_bind() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

impl Config {
    /// Read `path`, or the defaults if it does not exist. A broken file is an error naming it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<Config>(&text).with_context(|| format!("{} is not valid", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if let Some(token) = std::env::var("CLAUDERON_API_TOKEN").ok().filter(|t| !t.is_empty()) {
            config.daemon.token = Some(token);
        }
        Ok(config)
    }

    /// Whether the (experimental) Kubernetes backend is on: `[backends.kubernetes]
    /// enabled = "true"`, or `clauderon daemon --enable-kubernetes-backend`.
    pub fn kubernetes_enabled(&self) -> anyhow::Result<bool> {
        let options = self.backends.get(KUBERNETES).map(Vec::as_slice).unwrap_or_default();
        match options.iter().rev().find(|(k, _)| k == "enabled").map(|(_, v)| v.as_str()) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => anyhow::bail!("[backends.kubernetes] enabled must be \"true\" or \"false\", not {other:?}"),
        }
    }

    /// Turn the Kubernetes backend on (`--enable-kubernetes-backend`).
    pub fn enable_kubernetes(&mut self) {
        self.backends.entry(KUBERNETES.into()).or_default().push(("enabled".into(), "true".into()));
    }

    /// The cluster the `kube` capability uses, from `[backends.kubernetes]`;
    /// none without that table.
    pub fn kube_settings(&self) -> anyhow::Result<Option<KubeSettings>> {
        if !self.kubernetes_enabled()? {
            return Ok(None);
        }
        let options = self.backends.get(KUBERNETES).map(Vec::as_slice).unwrap_or_default();
        let get = |key: &str| options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let service_account_token = match get("service_account_token") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => anyhow::bail!(
                "[backends.kubernetes] service_account_token must be \"true\" or \"false\", not {other:?}"
            ),
        };
        let namespace = get("namespace").unwrap_or("default").to_string();
        if namespace.is_empty() {
            anyhow::bail!("[backends.kubernetes] namespace must not be empty");
        }
        Ok(Some(KubeSettings {
            kubeconfig: get("kubeconfig").map(PathBuf::from),
            context: get("context").map(str::to_string),
            namespace,
            service_account_token,
        }))
    }

    /// Where the daemon listens.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.daemon.bind_addr, self.daemon.http_port)
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_api_addr())
    }

    /// The API's address as seen from this machine.
    pub fn local_api_addr(&self) -> SocketAddr {
        let host = if self.daemon.bind_addr.is_unspecified() { default_bind() } else { self.daemon.bind_addr };
        SocketAddr::new(host, self.daemon.http_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_door_needs_an_address_sessions_can_dial() {
        let door = |text: &str| toml::from_str::<Config>(text).expect("config").proxy.door();
        assert_eq!(door("").expect("valid"), None, "no door unless configured");
        let (listen, address) =
            door("[proxy]\ndirect_listen = \"0.0.0.0:7443\"\ndirect_address = \"192.0.2.10:7443\"\n")
                .expect("valid")
                .expect("a door");
        assert_eq!((listen.to_string(), address.to_string()), ("0.0.0.0:7443".into(), "192.0.2.10:7443".into()));
        let (_, address) = door("[proxy]\ndirect_listen = \"10.1.2.3:0\"\n").expect("valid").expect("a door");
        assert_eq!(address.to_string(), "10.1.2.3:0", "the listen address is dialled when none is said");
        let why = door("[proxy]\ndirect_listen = \"0.0.0.0:7443\"\n").expect_err("cannot be dialled");
        assert!(why.contains("direct_address"), "{why}");
        let why = door("[proxy]\ndirect_listen = \"door.example:7443\"\n").expect_err("not an address");
        assert!(why.contains("IP address and port"), "{why}");
        assert!(door("[proxy]\ndirect_address = \"10.1.2.3:7443\"\n").is_err(), "an address without a door");
    }

    #[test]
    fn the_kubernetes_table_names_the_cluster_and_its_namespace() {
        assert!(Config::default().kube_settings().expect("none").is_none(), "no table, no cluster");
        let table = "[backends.kubernetes]\nnamespace = \"agents\"\nkubeconfig = \"/k/config\"\ncontext = \"prod\"\n";
        let off: Config = toml::from_str(table).expect("config");
        assert!(off.kube_settings().expect("valid").is_none(), "not enabled, no cluster");
        let mut config = off.clone();
        config.enable_kubernetes();
        assert!(config.kubernetes_enabled().expect("valid"));
        let settings = config.kube_settings().expect("valid").expect("a cluster");
        assert_eq!(settings.namespace, "agents");
        assert_eq!(settings.kubeconfig.as_deref(), Some(Path::new("/k/config")));
        assert_eq!(settings.context.as_deref(), Some("prod"));
        assert!(!settings.service_account_token);
        let on: Config = toml::from_str(&format!("{table}enabled = \"true\"\n")).expect("config");
        assert_eq!(on.kube_settings().expect("valid").expect("a cluster").namespace, "agents");
        let bad: Config = toml::from_str("[backends.kubernetes]\nenabled = \"yes\"\n").expect("config");
        assert!(bad.kube_settings().expect_err("refused").to_string().contains("enabled"));
        let bad: Config =
            toml::from_str("[backends.kubernetes]\nenabled = \"true\"\nservice_account_token = \"yes\"\n")
                .expect("config");
        let err = bad.kube_settings().expect_err("refused").to_string();
        assert!(err.contains("service_account_token"), "{err}");
    }
}
