//! What each store carries: which component it runs, its grants and limits,
//! the host services its capabilities use, and per-call bookkeeping.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::container::ContainerService;
use crate::capabilities::http::HttpService;
use crate::capabilities::kube::{KubeService, KubeSettings};
use crate::capabilities::kv::KvStore;
use crate::capabilities::log::LogService;
use crate::capabilities::process::ProcessService;
use crate::limits::{Limits, MemoryLimiter};
use crate::manifest::{Capabilities, Kind, Requirement};

/// Who a store belongs to.
#[derive(Debug)]
pub struct ComponentCtx {
    /// The component's id.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// What it was granted.
    pub grants: Capabilities,
    /// The programs its manifest says it needs, with their install commands.
    pub requires: BTreeMap<String, Requirement>,
    /// Its limits.
    pub limits: Limits,
}

/// Services shared by every store: what the capabilities act on, each
/// defined by its capability's module.
pub struct HostServices {
    /// Per-component key-value state (`kv`).
    pub kv: Arc<dyn KvStore>,
    /// clauderon's secrets directory (`secret-files`).
    pub secrets_dir: PathBuf,
    /// The Docker engine (`container`).
    pub container: ContainerService,
    /// Detached children (`process.spawn`).
    pub process: ProcessService,
    /// Each component's log use (`log`).
    pub log: LogService,
    /// Where components' requests go (`http`).
    pub http: HttpService,
    /// The configured Kubernetes cluster (`kube`).
    pub kube: KubeService,
    /// Progress of long operations (image pulls, pods starting), broadcast to watchers.
    pub progress: tokio::sync::broadcast::Sender<Progress>,
}

/// A progress line from a long host operation a component started (an image
/// pull, a pod being scheduled), for people watching the CLI or the WebSocket.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    /// The component that started it.
    pub component: String,
    /// What is happening, as a line for a person.
    pub message: String,
}

impl HostServices {
    /// Services over this kv store and secrets directory; `protected` paths
    /// are never mounted into a container; `routed`: component HTTP must go
    /// through the route the daemon sets; `kube`: the cluster, if one is configured.
    pub fn new(
        kv: Arc<dyn KvStore>,
        secrets_dir: PathBuf,
        protected: Vec<PathBuf>,
        routed: bool,
        kube: Option<KubeSettings>,
    ) -> Self {
        Self {
            kv,
            secrets_dir,
            container: ContainerService::new(protected),
            process: ProcessService::default(),
            log: LogService::default(),
            http: HttpService::new(routed),
            kube: KubeService::new(kube),
            progress: tokio::sync::broadcast::channel(256).0,
        }
    }

    /// Tell the log and the progress watchers (CLI, WebSocket) what a long
    /// operation `component` started is doing.
    pub fn say(&self, component: &str, message: String) {
        tracing::info!(component = %component, "{message}");
        let _ = self.progress.send(Progress { component: component.to_string(), message });
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
    /// What the component's panic hook said during the current call (the
    /// SDK's hook logs `panic: MESSAGE` at error level before it traps).
    pub(crate) panic: Option<String>,
    /// When the current call (or the instantiation) began: its deadline
    /// counts from here.
    pub(crate) call_started: std::time::Instant,
    /// The session's own paths (canonical), set by the host for a session's
    /// `create` and `start` ([`crate::Instance::serve_session`]); empty
    /// otherwise. The only sources `container` may mount, and where
    /// `process` may run.
    pub(crate) session_paths: Arc<[PathBuf]>,
    /// The session this instance serves, if the host said (its detached
    /// children are killed with it).
    pub(crate) session: Option<String>,
    /// The export the host is calling now (`create`, `export-branch`, …;
    /// empty during instantiation): capabilities allowed during one call
    /// only check it.
    pub(crate) call: &'static str,
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
            panic: None,
            call_started: std::time::Instant::now(),
            session_paths: Arc::from(Vec::new()),
            session: None,
            call: "",
            wasi: None,
        }
    }

    /// The component's id.
    pub fn component_id(&self) -> &str {
        &self.ctx.id
    }

    /// Reset per-call bookkeeping at the start of a call.
    pub(crate) fn begin_call(&mut self, function: &'static str) {
        self.call = function;
        self.call_started = std::time::Instant::now();
        self.log_used = 0;
        self.log_dropped = 0;
        self.panic = None;
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
