//! The clauderon daemon, assembled from its parts: open the store, load every
//! component, start the proxy, the session manager and the hook workers,
//! reconcile the stored sessions with their backends, and serve the API.
//!
//! `clauderon daemon` runs it ([`Daemon::assemble`] then [`Daemon::serve`]);
//! tests and benches build the very same daemon in-process, with a temporary
//! [`Home`] and whatever [`Config`] they need.

pub mod config;
pub mod home;
mod kv;
pub mod network;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clauderon_api::ApiState;
use clauderon_proxy::{AuditLog, Proxy};
use clauderon_runtime::{Kind, Runtime, RuntimeConfig, Source, user_sources};
use clauderon_sessions::{Defaults, Egress, HostSandbox, Manager};
use clauderon_store::Store;

pub use config::Config;
pub use home::Home;

/// What a daemon is built from besides its home and config: what the
/// `clauderon` binary embeds.
pub struct Parts {
    /// Components built into the binary, loaded before the user's own.
    pub bundled: Vec<Source>,
    /// The static container relay Docker sessions run (installed into
    /// `<home>/bin`); empty when this build has none.
    pub relay: &'static [u8],
    /// The `clauderon` executable: host sessions run in its sandbox
    /// (`clauderon sandbox exec`).
    pub exe: PathBuf,
}

/// A daemon with everything started and its API listener bound, not yet serving.
pub struct Daemon {
    /// Where the API listens (the real port when the config asked for port 0).
    pub addr: SocketAddr,
    /// The API token callers must present.
    pub token: String,
    /// The loaded components.
    pub runtime: Arc<Runtime>,
    /// Sessions.
    pub manager: Arc<Manager>,
    /// The zero-credential proxy.
    pub proxy: Arc<Proxy>,
    /// The proxy's audit log.
    pub audit: Arc<AuditLog>,
    /// What a session is given to reach the proxy (its listener and environment).
    pub egress: Arc<dyn Egress>,
    state: Arc<ApiState>,
    listener: tokio::net::TcpListener,
}

impl Daemon {
    /// Open the store, load the components, start the proxy and the session
    /// manager, bind the API, and start reconciling the stored sessions (in
    /// the background: `GET /api/health` says when it has finished).
    ///
    /// The API is bound (after the token is made) before anything else, so
    /// a second daemon on the same port fails before it touches any session.
    pub async fn assemble(home: &Home, mut config: Config, parts: Parts) -> anyhow::Result<Self> {
        home.ensure_private()?;
        raise_fd_limit();
        // The token exists before the API port opens: whoever finds the port
        // open finds the token too.
        let token = home.load_or_create_token(config.daemon.token.as_deref())?;
        let addr = config.listen_addr();
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (is another clauderon daemon running? try --http-port)")
        })?;
        let addr = listener.local_addr().context("the API listener's address")?;
        config.daemon.http_port = addr.port();

        let path = home.store();
        let store = Arc::new(tokio::task::spawn_blocking(move || Store::open(&path)).await??);
        let mut runtime_config = RuntimeConfig::under(&home.root);
        runtime_config.kv = Arc::new(kv::StoreKv(store.clone()));
        runtime_config.limits = config.limits.clone();
        runtime_config.route_http = true;
        runtime_config.kube = config.kube_settings()?;
        let bundled = enabled_bundled(&config, parts.bundled)?;
        let disabled_backends = bundled.disabled;
        let runtime = load_components(home, runtime_config, bundled.sources).await?;
        for f in runtime.failures() {
            tracing::warn!("refused component {}: {}", f.origin, f.error);
        }
        // Credential sources read the snapshot taken at start; the variables
        // they may read leave this process's own environment now.
        let credential_vars: Vec<String> = runtime
            .plugins()
            .iter()
            .filter(|p| p.kind() == Kind::CredentialSource)
            .flat_map(|p| p.grants.env.iter().cloned())
            .collect();
        let wiped = clauderon_runtime::capabilities::environment::wipe(&credential_vars);
        tracing::info!("{wiped} credential variables wiped from the daemon's own environment");
        let runtime = Arc::new(runtime);
        let network = network::start(
            home,
            &config.proxy,
            &config.egress,
            &config.credentials.order,
            runtime.clone(),
            store.clone(),
        )
        .context("starting the proxy")?;
        network.proxy.set_status_target(config.local_api_addr());
        if let Some((listen, address)) = config.proxy.door().map_err(anyhow::Error::msg)? {
            network.proxy.open_door(listen, address).await.context("opening the proxy's direct door")?;
        }
        runtime.set_http_route(network.component_route.clone());
        let relay = install_relay(&home.root.join("bin"), parts.relay).context("installing the container relay")?;
        let defaults = Defaults {
            backend: config.general.default_backend.clone(),
            agent: config.general.default_agent.clone(),
            status_base: Some(clauderon_proxy::status_relay::status_base()),
            backend_options: config.backends.clone(),
            relay,
            egress: config.egress.default,
            disabled_backends,
        };
        let sandbox = host_sandbox(home, &config, parts.exe).await;
        let manager = Arc::new(
            Manager::new(store.clone(), runtime.clone(), home.root.clone(), defaults)
                .with_egress(network.egress.clone())
                .with_sandbox(sandbox),
        );
        runtime.set_session_support(Arc::new(clauderon_sessions::ManagerSupport(Arc::downgrade(&manager))));
        let hooks = clauderon_sessions::hooks::spawn(runtime.clone(), manager.subscribe());
        tracing::info!("{hooks} hook component(s) get session events");
        // In the background: a slow or failing backend must not hold up the API.
        manager.reconcile_in_background();
        let push = clauderon_api::push::Push::new(
            config.push.clone(),
            &home.push_key(),
            store,
            network.proxy.upstream_client(),
        )
        .context("setting up Web Push")?;
        let push = Arc::new(push);
        push.clone().spawn_notifier(manager.subscribe());
        let state = Arc::new(ApiState {
            manager: manager.clone(),
            guard: clauderon_api::guard::Guard::new(token.clone(), addr, &config.daemon.hosts),
            config: serde_json::to_value(&config)?,
            proxy: network.proxy.clone(),
            audit: network.audit.clone(),
            push,
        });
        Ok(Self {
            addr,
            token,
            runtime,
            manager,
            proxy: network.proxy,
            audit: network.audit,
            egress: network.egress,
            state,
            listener,
        })
    }

    /// Serve the API until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        axum::serve(self.listener, clauderon_api::router(self.state)).with_graceful_shutdown(shutdown).await?;
        Ok(())
    }
}

/// The bundled components the config turns on, and the backends it leaves off.
pub struct Enabled {
    /// The components to load.
    pub sources: Vec<Source>,
    /// The backends left off, each with how to turn it on.
    pub disabled: Vec<(String, String)>,
}

/// What of `bundled` `config` turns on (the experimental Kubernetes backend
/// is off unless enabled). The daemon and `clauderon plugins` load the same set.
pub fn enabled_bundled(config: &Config, mut bundled: Vec<Source>) -> anyhow::Result<Enabled> {
    let mut disabled = Vec::new();
    if !config.kubernetes_enabled()? {
        bundled.retain(|s| !matches!(s, Source::Bundled { name, .. } if name == config::KUBERNETES));
        disabled.push((config::KUBERNETES.to_string(), config::ENABLE_KUBERNETES.to_string()));
    }
    Ok(Enabled { sources: bundled, disabled })
}

/// A runtime with every bundled and user component loaded (failures recorded).
pub async fn load_components(home: &Home, config: RuntimeConfig, bundled: Vec<Source>) -> anyhow::Result<Runtime> {
    let runtime = Runtime::new(config).context("starting the component runtime")?;
    if bundled.is_empty() {
        tracing::warn!("this clauderon binary was built without bundled components (run `just components`)");
    }
    let (user, failures) = user_sources(&home.components());
    runtime.record_failures(failures);
    let mut sources = bundled;
    sources.extend(user);
    runtime.load_all(sources).await;
    Ok(runtime)
}

/// Raise the soft limit on open files to the hard limit: every session's
/// tunnels and streams are file descriptors, and a default of 1,024 is soon
/// reached (`GET /api/health` shows the use).
fn raise_fd_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max {
            return;
        }
        let old = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::info!("open files: the limit is raised from {old} to {}", limit.rlim_max);
        }
    }
}

/// Write the container relay to `dir/clauderon-relay` (0755; done again only
/// when its contents changed); `None` if this build has none.
fn install_relay(dir: &Path, relay: &[u8]) -> anyhow::Result<Option<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    if relay.is_empty() {
        tracing::warn!("this build has no container relay: Docker sessions cannot start (build with `./justw build`)");
        return Ok(None);
    }
    let path = dir.join("clauderon-relay");
    if std::fs::read(&path).ok().as_deref() != Some(relay) {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("clauderon-relay.tmp");
        std::fs::write(&tmp, relay)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(Some(path))
}

/// The host sandbox: `exe` runs it, and the probe says whether it can.
async fn host_sandbox(home: &Home, config: &Config, exe: PathBuf) -> HostSandbox {
    let support = if config.sandbox.enabled {
        let probe_exe = exe.clone();
        tokio::task::spawn_blocking(move || clauderon_sandbox::probe(&probe_exe))
            .await
            .unwrap_or_else(|e| clauderon_sandbox::Support::Missing(format!("the sandbox probe failed: {e}")))
    } else {
        clauderon_sandbox::Support::Missing("[sandbox] enabled = false".into())
    };
    match &support {
        _ if !config.sandbox.enabled => {
            tracing::warn!("host sessions run UNSANDBOXED ([sandbox] enabled = false)")
        }
        clauderon_sandbox::Support::Full => tracing::info!("host sessions run in the sandbox"),
        clauderon_sandbox::Support::Missing(why) if config.sandbox.required => tracing::warn!(
            "this machine cannot sandbox host sessions, so they will be refused ({why}); \
             set [sandbox] required = false to run them unsandboxed"
        ),
        clauderon_sandbox::Support::Missing(why) => {
            tracing::warn!("host sessions will run UNSANDBOXED ([sandbox] required = false): {why}")
        }
    }
    let user_home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| home.root.clone());
    HostSandbox { exe, support, config: config.sandbox.clone(), user_home }
}
