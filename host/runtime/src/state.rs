//! What each store carries: which component it runs, its grants and limits,
//! the host services its capabilities use, and per-call bookkeeping.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::kv::KvStore;
use crate::limits::{Limits, MemoryLimiter};
use crate::manifest::{Capabilities, Kind};

/// Who a store belongs to.
#[derive(Debug)]
pub struct ComponentCtx {
    /// The component's id.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// What it was granted.
    pub grants: Capabilities,
    /// Its limits.
    pub limits: Limits,
}

/// A progress line from a long host operation a component started (an image
/// pull), for people watching the CLI or the WebSocket.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    /// The component that started it.
    pub component: String,
    /// What is happening, as a line for a person.
    pub message: String,
}

/// Services shared by every store: what the capabilities act on.
pub struct HostServices {
    /// Progress of long operations (image pulls), broadcast to watchers.
    pub progress: tokio::sync::broadcast::Sender<Progress>,
    /// Per-component key-value state.
    pub kv: Arc<dyn KvStore>,
    /// clauderon's secrets directory (for `secret-files`).
    pub secrets_dir: PathBuf,
    /// Paths no component may mount into a container (the CA key, the
    /// identity key, the secrets directory, the store, the config).
    pub protected: Vec<PathBuf>,
    http: OnceLock<Result<reqwest::Client, String>>,
    /// Where components' HTTP goes when the daemon routes it (see [`HttpRoute`]).
    route: OnceLock<Arc<dyn HttpRoute>>,
    /// Whether it must be routed: then a request before the route is set fails.
    routed: bool,
    /// Each component's client through the route.
    routed_clients: tokio::sync::Mutex<std::collections::HashMap<String, reqwest::Client>>,
    docker: tokio::sync::OnceCell<bollard::Docker>,
}

/// Where components' `http` requests go. The daemon routes them through its
/// proxy, under each component's own identity; without a route (the CLI's
/// `plugins` commands, the runtime's own tests) they go out directly.
pub trait HttpRoute: Send + Sync {
    /// The client for `component`'s requests, granted `credentials` (the
    /// services whose credentials may be added to them).
    fn client<'a>(
        &'a self,
        component: &'a str,
        credentials: &'a [String],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<reqwest::Client, String>> + Send + 'a>>;
}

impl HostServices {
    /// Services over this kv store and secrets directory.
    pub fn new(kv: Arc<dyn KvStore>, secrets_dir: PathBuf, protected: Vec<PathBuf>, routed: bool) -> Self {
        Self {
            progress: tokio::sync::broadcast::channel(256).0,
            kv,
            secrets_dir,
            protected,
            http: OnceLock::new(),
            route: OnceLock::new(),
            routed,
            routed_clients: Default::default(),
            docker: tokio::sync::OnceCell::new(),
        }
    }

    /// The Docker engine client (connected and version-negotiated on first
    /// success; an engine started later is found on the next call).
    pub async fn docker(&self) -> Result<&bollard::Docker, String> {
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
    }

    /// Send components' HTTP through `route` from now on (once; later calls are ignored).
    pub fn set_http_route(&self, route: Arc<dyn HttpRoute>) {
        let _ = self.route.set(route);
    }

    /// The client for `component`'s requests: through the route when there
    /// is one, else the direct client (unless routing is required).
    pub async fn http_for(&self, component: &str, credentials: &[String]) -> Result<reqwest::Client, String> {
        let Some(route) = self.route.get() else {
            if self.routed {
                return Err("component HTTP is not available yet: the daemon's proxy has not started".into());
            }
            return self.http().cloned();
        };
        let mut clients = self.routed_clients.lock().await;
        if let Some(client) = clients.get(component) {
            return Ok(client.clone());
        }
        let client = route.client(component, credentials).await?;
        clients.insert(component.to_string(), client.clone());
        Ok(client)
    }

    /// The direct HTTP client (built on first use).
    pub fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("the HTTP client could not be built: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The data of one store.
pub struct HostState {
    pub(crate) ctx: Arc<ComponentCtx>,
    pub(crate) services: Arc<HostServices>,
    pub(crate) limiter: MemoryLimiter,
    /// Log bytes written during the current call.
    pub(crate) log_used: usize,
    /// Log bytes dropped during the current call.
    pub(crate) log_dropped: usize,
    /// When the current call (or the instantiation) began: its deadline
    /// counts from here.
    pub(crate) call_started: std::time::Instant,
    wasi: Option<Box<WasiState>>,
}

/// The WASI context given to `wasm32-wasip2` components: nothing in it.
struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    logged: [usize; 2],
}

/// How much of a WASI component's stdout/stderr is kept per instance.
const WASI_PIPE_BYTES: usize = 64 << 10;

impl HostState {
    pub(crate) fn new(ctx: Arc<ComponentCtx>, services: Arc<HostServices>) -> Self {
        let limiter = MemoryLimiter::new(ctx.limits.memory_bytes);
        Self {
            ctx,
            services,
            limiter,
            log_used: 0,
            log_dropped: 0,
            call_started: std::time::Instant::now(),
            wasi: None,
        }
    }

    /// The component's id.
    pub fn component_id(&self) -> &str {
        &self.ctx.id
    }

    /// Reset per-call bookkeeping at the start of a call.
    pub(crate) fn begin_call(&mut self) {
        self.call_started = std::time::Instant::now();
        self.log_used = 0;
        self.log_dropped = 0;
    }

    /// Flush what a WASI component printed to the log, and report dropped log bytes.
    pub(crate) fn end_call(&mut self) {
        if let Some(w) = self.wasi.as_mut() {
            for (i, pipe) in [&w.stdout, &w.stderr].into_iter().enumerate() {
                let all = pipe.contents();
                if all.len() > w.logged[i] {
                    let text = String::from_utf8_lossy(&all[w.logged[i]..]).into_owned();
                    w.logged[i] = all.len();
                    let stream = if i == 0 { "stdout" } else { "stderr" };
                    for line in text.lines() {
                        tracing::info!(component = %self.ctx.id, stream, "{line}");
                    }
                }
            }
        }
        if self.log_dropped > 0 {
            tracing::warn!(
                component = %self.ctx.id,
                "dropped {} bytes of log output over the per-call cap of {} bytes",
                self.log_dropped,
                self.ctx.limits.log_bytes_per_call
            );
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let w = self.wasi.get_or_insert_with(|| {
            let stdout = MemoryOutputPipe::new(WASI_PIPE_BYTES);
            let stderr = MemoryOutputPipe::new(WASI_PIPE_BYTES);
            // No preopened directories, no environment, no arguments, no sockets.
            let ctx = WasiCtx::builder()
                .stdout(stdout.clone())
                .stderr(stderr.clone())
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build();
            Box::new(WasiState { ctx, table: ResourceTable::new(), stdout, stderr, logged: [0, 0] })
        });
        WasiCtxView { ctx: &mut w.ctx, table: &mut w.table }
    }
}
