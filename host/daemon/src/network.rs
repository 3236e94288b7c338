//! The daemon's proxy wiring: the CA and the bundle sessions trust, the
//! credential sources (credential-source components, in the configured
//! order), the audit log over the store, and the [`Egress`] the session
//! manager uses to open each session's listener and learn its environment.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clauderon_proxy::credentials::BoxFuture as SourceFuture;
use clauderon_proxy::{
    AuditLog, Credentials, EgressConfig, IdentityKey, Proxy, ProxyConfig, RuleSet, SessionIdentity, Source, ca,
    upstream,
};
use clauderon_runtime::{Kind, Runtime};
use clauderon_sessions::egress::BoxFuture;
use clauderon_sessions::{AccessMode, Egress, EgressEnv, EgressPolicy, Session};
use clauderon_store::Store;

use crate::home::Home;

/// Placeholders every session gets, whatever its agent: GitHub tools read these.
const GITHUB_PLACEHOLDER: &str = "clauderon-placeholder-github";

/// The running proxy and what the API needs of it.
pub struct Network {
    pub proxy: Arc<Proxy>,
    pub audit: Arc<AuditLog>,
    pub egress: Arc<dyn Egress>,
    /// Components' HTTP, through the proxy (see [`ComponentRoute`]).
    pub component_route: Arc<ComponentRoute>,
}

/// Build the proxy from the config, the runtime's credential sources and the store.
pub fn start(
    home: &Home,
    config: &ProxyConfig,
    egress: &EgressConfig,
    order: &[String],
    runtime: Arc<Runtime>,
    store: Arc<Store>,
) -> anyhow::Result<Network> {
    let authority = ca::Authority::load_or_create(&home.root)?;
    let ca_pem = authority.ca_pem().to_string();
    let bundle = authority.write_bundle(&home.root, &system_roots_pem())?;
    let bind: IpAddr = config.bind_addr.parse().with_context(|| format!("[proxy] bind_addr `{}`", config.bind_addr))?;
    let overrides = config.upstreams.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let destinations = clauderon_proxy::destination::Destinations::new(&config.allow_private_hosts);
    let upstream = upstream::Upstream::new(&config.extra_root_certs, overrides, destinations)?;
    let rules = RuleSet::new(config.grafana_host.as_deref(), config.rules.clone());
    // The configured rules' hosts are allowed whatever `[egress] builtin` says
    // (the built-in rules' hosts are on the built-in list).
    let rule_hosts = config.rules.iter().flat_map(|r| r.hosts.iter().map(String::as_str));
    let allowed = egress.host_set(rule_hosts.chain(config.grafana_host.as_deref())).map_err(anyhow::Error::msg)?;
    let credentials = Arc::new(Credentials::new(sources(&runtime, order)));
    let audit = AuditLog::start(
        store,
        clauderon_proxy::audit::AuditLimits {
            retention: Duration::from_secs(config.audit_retention_days.max(1) * 86_400),
            max_records: config.audit_max_records.max(1),
            per_minute: config.audit_records_per_minute,
        },
    );
    let identity = IdentityKey::load_or_create(&home.root)?;
    let proxy = Arc::new(Proxy::new(clauderon_proxy::server::Parts {
        ca: authority,
        rules,
        upstream,
        credentials,
        audit: audit.clone(),
        identity,
        bind,
        egress: allowed,
        limits: config.limits(),
    }));
    let egress = Arc::new(ProxyEgress {
        proxy: proxy.clone(),
        bundle,
        no_proxy: config.no_proxy.clone(),
        sessions: home.root.join("sessions"),
    });
    let component_route = Arc::new(ComponentRoute { proxy: Arc::downgrade(&proxy), ca_pem });
    Ok(Network { proxy, audit, egress, component_route })
}

/// Components' `http` requests through the proxy: each component gets its
/// own listener and identity (`component:<id>`, so the audit names it), the
/// proxy's destination checks, and only the credentials it was granted.
pub struct ComponentRoute {
    /// Weak: the proxy holds the runtime (its credential sources), which
    /// holds this route.
    proxy: std::sync::Weak<Proxy>,
    /// The proxy's CA: the only root a component's client trusts (the proxy
    /// checks the upstream's certificate against the real roots).
    ca_pem: String,
}

impl clauderon_runtime::HttpRoute for ComponentRoute {
    fn client<'a>(
        &'a self,
        component: &'a str,
        credentials: &'a [String],
    ) -> BoxFuture<'a, Result<reqwest::Client, String>> {
        Box::pin(async move {
            let proxy = self.proxy.upgrade().ok_or("the proxy has stopped")?;
            let url = proxy
                .open_component(component, credentials.to_vec())
                .await
                .map_err(|e| format!("opening the proxy for component `{component}`: {e}"))?;
            let root =
                reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).map_err(|e| format!("the proxy's CA: {e}"))?;
            let proxy = reqwest::Proxy::all(&url).map_err(|e| format!("the proxy URL: {e}"))?;
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .tls_built_in_root_certs(false)
                .add_root_certificate(root)
                .proxy(proxy)
                .build()
                .map_err(|e| format!("the HTTP client for component `{component}`: {e}"))
        })
    }
}

/// The system's root certificates as PEM (Debian's bundle, else the OS store).
fn system_roots_pem() -> String {
    for path in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
    }
    tracing::warn!("no system CA bundle found; sessions will trust only clauderon's CA");
    String::new()
}

/// Credential-source components, in `order` first, then the rest by id.
fn sources(runtime: &Arc<Runtime>, order: &[String]) -> Vec<Arc<dyn Source>> {
    let mut ids: Vec<String> =
        runtime.plugins().iter().filter(|p| p.kind() == Kind::CredentialSource).map(|p| p.id().to_string()).collect();
    ids.sort_by_key(|id| (order.iter().position(|o| o == id).unwrap_or(usize::MAX), id.clone()));
    for missing in order.iter().filter(|o| !ids.contains(o)) {
        tracing::warn!("[credentials] order names `{missing}`, which is not a loaded credential source");
    }
    ids.into_iter().map(|id| Arc::new(ComponentSource { runtime: runtime.clone(), id }) as Arc<dyn Source>).collect()
}

/// A credential-source component as a [`Source`].
struct ComponentSource {
    runtime: Arc<Runtime>,
    id: String,
}

impl Source for ComponentSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn get<'a>(&'a self, service: &'a str) -> SourceFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            let mut instance = self.runtime.credential_source(&self.id).await.map_err(|e| e.to_string())?;
            instance.get(service).await.map_err(|e| e.to_string())
        })
    }
}

/// The session manager's view of the proxy.
struct ProxyEgress {
    proxy: Arc<Proxy>,
    bundle: PathBuf,
    no_proxy: Vec<String>,
    /// `CLAUDERON_HOME/sessions`: each session's proxy socket is in `<id>/run/`.
    sessions: PathBuf,
}

impl Egress for ProxyEgress {
    fn open<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<EgressEnv, String>> {
        Box::pin(async move {
            let ident = SessionIdentity { id: session.id.clone(), name: session.name.clone() };
            let socket_dir = self.sessions.join(&session.id).join("run");
            let port = self
                .proxy
                .open(ident, session.access_mode, &session.egress, session.proxy_port, Some(&socket_dir))
                .await
                .map_err(|e| e.to_string())?;
            let url = self.proxy.url(&session.id).ok_or("the session's listener closed at once")?;
            let mut env = clauderon_proxy::session_env(&url, &self.bundle, &self.no_proxy);
            for var in ["GH_TOKEN", "GITHUB_TOKEN"] {
                env.push((var.into(), GITHUB_PLACEHOLDER.into()));
            }
            Ok(EgressEnv { port, env, socket_dir: Some(socket_dir), ca_bundle: Some(self.bundle.clone()) })
        })
    }

    fn set_access_mode(&self, id: &str, mode: AccessMode) {
        self.proxy.set_mode(id, mode);
    }

    fn set_egress(&self, id: &str, policy: &EgressPolicy) {
        self.proxy.set_egress(id, policy);
    }

    fn close(&self, id: &str) {
        self.proxy.close(id);
    }

    fn session_secret(&self, id: &str) -> Option<String> {
        Some(self.proxy.session_secret(id))
    }

    fn door(&self, id: &str) -> Option<(String, String)> {
        Some((self.proxy.door()?.address.to_string(), self.proxy.door_file(id)?))
    }
}
