//! clauderon's zero-credential proxy. Sessions hold placeholders; every HTTP(S)
//! request they make goes through a listener of their own, which:
//!
//! - knows the session by its listener and refuses any other identity (407);
//! - intercepts TLS with clauderon's CA ([`ca`]), minting a leaf per host;
//! - forwards only to hosts the session's egress policy allows ([`hosts`]);
//! - enforces the session's access mode ([`policy`]) live;
//! - injects the real credential for the host ([`rules`], [`credentials`]),
//!   and masks it out of the response should the upstream echo it;
//! - forwards over a pooled, verified TLS client ([`upstream`]), streaming
//!   bodies both ways and relaying WebSocket upgrades;
//! - writes one [`audit`] record per request;
//! - lets sessions on other machines in through its direct door ([`door`]),
//!   each by its own key, to its own listener alone;
//! - relays the session's agent status events to the daemon ([`status_relay`]);
//! - bounds what each session holds: connections, request rate, idle time
//!   ([`limits`]), and its share of the audit ([`audit`]);
//! - serves each connection on one of its worker threads, a single-threaded
//!   runtime per CPU (`workers`), so a request never wakes a second thread.
//!
//! [`server::Proxy`] is the entry point; [`session_env`] is what a backend
//! puts in a session's environment.

pub mod audit;
pub mod ca;
pub mod credentials;
pub mod destination;
pub mod door;
pub mod hosts;
pub mod identity;
pub mod limits;
pub mod policy;
pub mod rules;
pub mod server;
pub mod status_relay;
pub mod upstream;

mod forward;
mod read_ahead;
mod scrub;
mod workers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use audit::{AuditLog, AuditRecord, AuditSink, Decision};
pub use credentials::{Credential, CredentialStatus, Credentials, Secret, Source};
/// How a request's target and headers are read (public for fuzz/).
#[doc(hidden)]
pub use forward::{Target, is_websocket, strip_hop_by_hop};
pub use hosts::{EgressConfig, EgressMode, EgressPolicy, HostSet};
pub use identity::IdentityKey;
pub use policy::AccessMode;
pub use rules::{Rule, RuleSet};
pub use server::{Proxy, SessionIdentity};

/// Error type of bodies flowing through the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A streamed body, either way.
pub type ProxyBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// What went wrong setting up or running the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the proxy CA at {path} cannot be used ({reason}); move it aside to have a new one made")]
    Ca { path: PathBuf, reason: String },
    #[error("minting a certificate for `{host}`: {reason}")]
    Leaf { host: String, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("{0}")]
    Refused(String),
    #[error("binding the proxy listener on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("a proxy lock was poisoned by a panic")]
    Poisoned,
}

impl ProxyError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    fn ca(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Ca { path: path.into(), reason: e.to_string() }
    }
}

/// `[proxy]` in `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address the per-session listeners bind (loopback by default).
    pub bind_addr: String,
    /// Extra PEM root certificates trusted for upstreams (besides the system's).
    pub extra_root_certs: Vec<PathBuf>,
    /// Host (or host:port, or `*` for every other host name) → address to connect to
    /// instead (TLS, SNI and Host unchanged).
    pub upstreams: BTreeMap<String, String>,
    /// Host of your Grafana, for the built-in Grafana rule.
    pub grafana_host: Option<String>,
    /// Extra injection rules (checked before the built-in ones).
    pub rules: Vec<Rule>,
    /// Hosts sessions reach directly, not through the proxy (`NO_PROXY`).
    pub no_proxy: Vec<String>,
    /// Hosts the proxy may reach at private addresses (10/8, 172.16/12,
    /// 192.168/16, fc00::/7 …). Loopback, link-local and this machine's own
    /// addresses are never reached, except through `upstreams`.
    pub allow_private_hosts: Vec<String>,
    /// Days audit records are kept.
    pub audit_retention_days: u64,
    /// Audit records kept at most (the oldest go first).
    pub audit_max_records: u64,
    /// Audit records one session adds one by one per minute; beyond that,
    /// one summary record a minute counts the rest (unauthenticated
    /// attempts on its listener: 20 a minute, then a summary).
    pub audit_records_per_minute: u32,
    /// Connections one session may have open at once (tunnels included).
    pub max_connections_per_session: usize,
    /// Requests one session may send per second (bursts of twice as many pass).
    pub max_requests_per_second: u32,
    /// Seconds a connection with no request in flight may stay quiet.
    pub idle_timeout_secs: u64,
    /// Where the direct door listens (see [`door`]), e.g. `0.0.0.0:7443`;
    /// none (the default): no door, and remote sessions use the tunnel.
    pub direct_listen: Option<String>,
    /// The address sessions dial to reach the door, an IP and port (its
    /// certificate's name, and what their network policy lets out); default:
    /// `direct_listen`, which then must name an address, not `0.0.0.0`.
    pub direct_address: Option<String>,
}

impl ProxyConfig {
    /// The per-session limits these settings give.
    pub fn limits(&self) -> limits::Limits {
        limits::Limits {
            connections: self.max_connections_per_session.max(1),
            requests_per_second: self.max_requests_per_second.max(1),
            idle: std::time::Duration::from_secs(self.idle_timeout_secs.max(1)),
        }
    }

    /// Where the direct door listens and the address sessions dial, if it
    /// is configured; an error says what is wrong.
    pub fn door(&self) -> Result<Option<(std::net::SocketAddr, std::net::SocketAddr)>, String> {
        let Some(listen) = &self.direct_listen else {
            return match &self.direct_address {
                Some(_) => {
                    Err("[proxy] direct_address is set but direct_listen is not: say where the door listens".into())
                }
                None => Ok(None),
            };
        };
        let parse = |key: &str, value: &str| {
            value.parse::<std::net::SocketAddr>().map_err(|e| {
                format!("[proxy] {key} = {value:?}: {e}; an IP address and port, e.g. \"192.0.2.10:7443\"")
            })
        };
        let listen = parse("direct_listen", listen)?;
        let address = match &self.direct_address {
            Some(address) => parse("direct_address", address)?,
            None => listen,
        };
        if address.ip().is_unspecified() {
            return Err(format!(
                "[proxy] the direct door listens on {listen}, which sessions cannot dial: set direct_address to \
                 the IP address and port they reach this machine on"
            ));
        }
        Ok(Some((listen, address)))
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            bind_addr: "127.0.0.1".into(),
            extra_root_certs: Vec::new(),
            upstreams: BTreeMap::new(),
            grafana_host: None,
            rules: Vec::new(),
            no_proxy: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allow_private_hosts: Vec::new(),
            audit_retention_days: 30,
            audit_max_records: 1_000_000,
            audit_records_per_minute: 6_000,
            max_connections_per_session: 512,
            max_requests_per_second: 1_000,
            idle_timeout_secs: 90,
            direct_listen: None,
            direct_address: None,
        }
    }
}

/// The environment a session needs to use the proxy: the proxy URL (with the
/// session's identity) in every spelling clients read, `NO_PROXY`, and the CA
/// bundle under every name a TLS stack looks for. Placeholders are added by
/// the session manager from the agent's launch plan.
pub fn session_env(proxy_url: &str, ca_bundle: &Path, no_proxy: &[String]) -> Vec<(String, String)> {
    let bundle = ca_bundle.display().to_string();
    let no_proxy = no_proxy.join(",");
    let mut env: Vec<(String, String)> = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
        .iter()
        .map(|k| (k.to_string(), proxy_url.to_string()))
        .collect();
    env.push(("NO_PROXY".into(), no_proxy.clone()));
    env.push(("no_proxy".into(), no_proxy));
    for var in [
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "CURL_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "CODEX_CA_CERTIFICATE",
        "GIT_SSL_CAINFO",
        "CARGO_HTTP_CAINFO",
    ] {
        env.push((var.into(), bundle.clone()));
    }
    env
}
