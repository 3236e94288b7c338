//! `clauderon daemon`: open the store, load every component, reconcile the
//! stored sessions with their backends, and serve the API until stopped.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use clauderon_runtime::RuntimeConfig;
use clauderon_runtime::capabilities::kv::KvStore;
use clauderon_sessions::{Defaults, HostSandbox, Manager};
use clauderon_store::Store;

use crate::config::Config;
use crate::home::Home;
use crate::plugins::load_everything;

#[derive(Args)]
pub struct DaemonArgs {
    /// API port (default from config.toml, else 3030).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// Address to bind (default 127.0.0.1; callers always need the API token).
    #[arg(long)]
    pub bind_addr: Option<IpAddr>,
    /// Allow the Kubernetes backend (it is not part of this build yet).
    #[arg(long)]
    pub enable_kubernetes_backend: bool,
}

/// Component kv state kept in the store.
struct StoreKv(Arc<Store>);

impl KvStore for StoreKv {
    fn get(&self, c: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.kv_get(c, key).map_err(|e| e.to_string())
    }
    fn set(&self, c: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.kv_set(c, key, value).map_err(|e| e.to_string())
    }
    fn delete(&self, c: &str, key: &str) -> Result<bool, String> {
        self.0.kv_delete(c, key).map_err(|e| e.to_string())
    }
    fn keys(&self, c: &str, prefix: &str) -> Result<Vec<String>, String> {
        let entries = self.0.kv_entries(c).map_err(|e| e.to_string())?;
        Ok(entries.into_iter().map(|(k, _)| k).filter(|k| k.starts_with(prefix)).collect())
    }
    fn usage(&self, c: &str) -> Result<usize, String> {
        let entries = self.0.kv_entries(c).map_err(|e| e.to_string())?;
        Ok(entries.iter().map(|(k, v)| k.len() + v.len()).sum())
    }
}

pub async fn run(home: &Home, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    home.ensure_private()?;
    let mut config = Config::load(&home.config())?;
    if let Some(port) = args.http_port {
        config.daemon.http_port = port;
    }
    if let Some(addr) = args.bind_addr {
        config.daemon.bind_addr = addr;
    }
    let addr = config.listen_addr();
    if args.enable_kubernetes_backend {
        tracing::warn!("--enable-kubernetes-backend: this build has no Kubernetes backend yet");
    }

    let path = home.store();
    let store = Arc::new(tokio::task::spawn_blocking(move || Store::open(&path)).await??);
    home.ensure_private()?; // the store file was just made with the default mode
    let token = home.load_or_create_token(config.daemon.token.as_deref())?;
    let mut runtime_config = RuntimeConfig::under(&home.root);
    runtime_config.kv = Arc::new(StoreKv(store.clone()));
    runtime_config.limits = config.limits.clone();
    let runtime = load_everything(home, runtime_config).await?;
    for f in runtime.failures() {
        tracing::warn!("refused component {}: {}", f.origin, f.error);
    }
    // Credential sources read the snapshot taken at start; the variables they
    // may read leave this process's own environment now.
    let credential_vars: Vec<String> = runtime
        .plugins()
        .filter(|p| p.kind() == clauderon_runtime::Kind::CredentialSource)
        .flat_map(|p| p.grants.env.iter().cloned())
        .collect();
    let wiped = clauderon_runtime::capabilities::environment::wipe(&credential_vars);
    tracing::info!("{wiped} credential variables wiped from the daemon's own environment");
    let runtime = Arc::new(runtime);
    let network = crate::network::start(home, &config.proxy, &config.credentials.order, runtime.clone(), store.clone())
        .context("starting the proxy")?;
    network.proxy.set_hook_target(config.local_api_addr());
    let relay = crate::bundled::install_relay(&home.root.join("bin")).context("installing the container relay")?;
    let defaults = Defaults {
        backend: config.general.default_backend.clone(),
        agent: config.general.default_agent.clone(),
        hook_base: Some(clauderon_proxy::hooks::hook_base()),
        backend_options: config.backends.clone(),
        relay,
    };
    let sandbox = host_sandbox(home, &config).await?;
    let manager = Arc::new(
        Manager::new(store, runtime.clone(), home.root.clone(), defaults)
            .with_egress(network.egress.clone())
            .with_sandbox(sandbox),
    );
    let hooks = clauderon_sessions::hooks::spawn(runtime, manager.subscribe());
    tracing::info!("{hooks} hook component(s) get session events");
    match manager.reconcile().await {
        Ok(changes) => changes.iter().for_each(|c| tracing::info!("reconcile: {c}")),
        Err(e) => tracing::error!("reconciling sessions at start-up failed: {e}"),
    }

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is another clauderon daemon running? try --http-port)"))?;
    let state = Arc::new(clauderon_api::ApiState {
        manager,
        guard: clauderon_api::guard::Guard::new(token, addr, &config.daemon.hosts),
        config: serde_json::to_value(&config)?,
        proxy: network.proxy.clone(),
        audit: network.audit.clone(),
    });
    let pid_file = home.root.join("daemon.pid");
    std::fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;
    eprintln!("clauderon daemon: API on http://{addr}, home {}", home.root.display());
    let served = axum::serve(listener, clauderon_api::router(state)).with_graceful_shutdown(shutdown()).await;
    let _ = std::fs::remove_file(&pid_file);
    served?;
    eprintln!("clauderon daemon: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The host sandbox: this binary runs it, and the probe says whether it can.
async fn host_sandbox(home: &Home, config: &Config) -> anyhow::Result<HostSandbox> {
    let exe = std::env::current_exe().context("finding the clauderon binary (it runs the sandbox)")?;
    let support = if config.sandbox.enabled {
        let probe_exe = exe.clone();
        tokio::task::spawn_blocking(move || clauderon_sandbox::probe(&probe_exe)).await?
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
    let user_home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(|| home.root.clone());
    Ok(HostSandbox { exe, support, config: config.sandbox.clone(), user_home })
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
