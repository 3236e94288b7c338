//! [`Runtime`]: the engine, the compile cache, the host services, and every
//! loaded plugin. Loading never takes the runtime down: a component that
//! cannot be loaded is recorded as a [`LoadFailure`] and the rest carry on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use crate::approval::Approval;
use crate::bindings;
use crate::cache::CompileCache;
use crate::capabilities::kube::KubeSettings;
use crate::capabilities::kv::{KvStore, MemoryKv};
use crate::engine::EngineHandle;
use crate::error::{CallError, LoadError};
use crate::instance::{Instance, World};
use crate::limits::Limits;
use crate::loader::{self, Plugin, Source};
use crate::manifest::Kind;
use crate::state::{ComponentCtx, HostServices};

/// How to build a [`Runtime`].
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// clauderon's secrets directory (read by the `secret-files` capability).
    pub secrets_dir: PathBuf,
    /// Limits per kind (kinds not listed get [`Limits::default`]).
    pub limits: BTreeMap<Kind, Limits>,
    /// Use the pooling allocator when the machine allows it.
    pub pooling: bool,
    /// The component kv store.
    pub kv: Arc<dyn KvStore>,
    /// Paths no component may mount into a container.
    pub protected: Vec<PathBuf>,
    /// Components' HTTP must go through a route the daemon sets
    /// ([`Runtime::set_http_route`]); until then it fails. Off: it goes out
    /// directly (the CLI's `plugins` commands, tests of the runtime alone).
    pub route_http: bool,
    /// The Kubernetes cluster the `kube` capability uses (`[backends.kubernetes]`);
    /// `None`: none is configured and `kube` says so.
    pub kube: Option<KubeSettings>,
}

impl RuntimeConfig {
    /// Defaults under a clauderon home directory: cache in `HOME/cache`,
    /// secrets in `HOME/secrets`.
    pub fn under(home: &Path) -> Self {
        Self {
            cache_dir: Some(home.join("cache")),
            secrets_dir: home.join("secrets"),
            limits: BTreeMap::new(),
            pooling: true,
            kv: Arc::new(MemoryKv::default()),
            protected: [
                "proxy-ca-key.pem",
                "proxy-identity.key",
                "secrets",
                "clauderon.redb",
                "config.toml",
                "cache",
                "cache.key",
                "components",
            ]
            .iter()
            .map(|p| home.join(p))
            .collect(),
            route_http: false,
            kube: None,
        }
    }

    /// The limits for a kind.
    pub fn limits_for(&self, kind: Kind) -> Limits {
        self.limits.get(&kind).copied().unwrap_or_default()
    }
}

/// The loaded plugins and the refused components: one document for the CLI
/// and the API.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Inventory {
    /// Each loaded plugin.
    pub plugins: Vec<crate::PluginSummary>,
    /// Each component that was refused, and why.
    pub refused: Vec<LoadFailure>,
}

/// Why a reload leaves credential sources as they are.
const NOT_LIVE: &str = "a credential source changes only when the daemon starts (it reads their variables \
                        from its environment then); restart the daemon to take this one up";

/// What [`Runtime::reload_user`] changed, by component id.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Reload {
    /// Newly loaded.
    pub added: Vec<String>,
    /// Loaded again from a changed file.
    pub replaced: Vec<String>,
    /// Unloaded: their file is gone.
    pub removed: Vec<String>,
    /// Their file had not changed.
    pub unchanged: Vec<String>,
    /// Files that were refused (a replaced component keeps running its old code).
    pub refused: Vec<LoadFailure>,
    /// Credential sources added, changed or removed in the directory: the
    /// daemon takes them up only when it next starts (it reads their
    /// variables from its environment then), so until a restart it keeps
    /// what it has.
    pub needs_restart: Vec<String>,
}

/// A component that could not be loaded, and why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LoadFailure {
    /// Where it came from.
    pub origin: String,
    /// Why it was refused, as a sentence.
    pub error: String,
}

/// The loaded plugins and what runs them.
pub struct Runtime {
    engine: EngineHandle,
    cache: CompileCache,
    services: Arc<HostServices>,
    config: RuntimeConfig,
    /// Every loaded plugin by id. Calls take an `Arc` out and never hold the
    /// lock; a reload swaps entries while sessions keep running.
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    failures: RwLock<Vec<LoadFailure>>,
    /// One reload at a time: two would each swap against what they saw.
    reloading: tokio::sync::Mutex<()>,
}

impl Runtime {
    /// A runtime with no plugins yet.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let max_memory = Kind::ALL.iter().map(|k| config.limits_for(*k).memory_bytes).max().unwrap_or(64 << 20);
        let engine = EngineHandle::new(max_memory, config.pooling)?;
        let cache = CompileCache::new(&engine.engine, config.cache_dir.clone());
        let services = Arc::new(HostServices::new(
            config.kv.clone(),
            config.secrets_dir.clone(),
            config.protected.clone(),
            config.route_http,
            config.kube.clone(),
        ));
        Ok(Self {
            engine,
            cache,
            services,
            config,
            plugins: RwLock::default(),
            failures: RwLock::default(),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// What `kube` asks the session manager: sessions' branches (copy-in, copy-out), proxies (open-tunnel) and health (watch-pod).
    pub fn set_session_support(&self, support: Arc<dyn crate::SessionSupport>) {
        self.services.kube.set_support(support);
    }

    /// Send every component's `http` requests through `route` (the daemon's
    /// proxy) from now on.
    pub fn set_http_route(&self, route: Arc<dyn crate::HttpRoute>) {
        self.services.http.set_route(route);
    }

    /// Kill what components started detached for `session_id` (it is being
    /// deleted); how many processes were killed.
    pub fn end_session(&self, session_id: &str) -> usize {
        self.services.process.kill_session(session_id)
    }

    /// The Docker engine's version, or why it cannot be reached.
    pub async fn docker_engine(&self) -> Result<String, String> {
        self.services.container.engine_version().await
    }

    /// Follow the progress of long host operations components start (image
    /// pulls, pods starting).
    pub fn progress(&self) -> tokio::sync::broadcast::Receiver<crate::Progress> {
        self.services.progress.subscribe()
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.engine.engine
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.engine.pooling
    }

    /// Load one component and add it. A failure is returned and also recorded.
    pub async fn load(&self, source: Source) -> Result<Arc<Plugin>, LoadError> {
        let origin = source.origin();
        let prepared = self.prepare(source).await;
        let result = self.admit(prepared).await;
        if let Err(e) = &result {
            tracing::error!("{e}");
            self.failures_mut().push(LoadFailure { origin, error: e.to_string() });
        }
        result
    }

    /// Load many components, compiling them in parallel. Failures are recorded, not returned.
    pub async fn load_all(&self, sources: Vec<Source>) {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, source) in sources.into_iter().enumerate() {
            let prep = self.preparer();
            tasks.spawn(async move { (i, source.origin(), prep.run(source).await) });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(r) => done.push(r),
                Err(e) => tracing::error!("a component load task failed: {e}"),
            }
        }
        done.sort_by_key(|(i, _, _)| *i);
        for (_, origin, prepared) in done {
            if let Err(error) = self.admit(prepared).await {
                tracing::error!("{error}");
                self.failures_mut().push(LoadFailure { origin, error: error.to_string() });
            }
        }
    }

    async fn prepare(&self, source: Source) -> Result<Plugin, LoadError> {
        self.preparer().run(source).await
    }

    fn preparer(&self) -> Preparer {
        Preparer { engine: self.engine.engine.clone(), cache: self.cache.clone(), config: self.config.clone() }
    }

    /// Add a prepared component once its `info()` id checks out.
    async fn admit(&self, prepared: Result<Plugin, LoadError>) -> Result<Arc<Plugin>, LoadError> {
        let plugin = Arc::new(prepared?);
        self.check_id(&plugin).await?;
        self.add(plugin)
    }

    /// The id a component's `info()` gives must be its manifest's: the host
    /// and its users know it by that one id (grants, `--backend`, logs).
    async fn check_id(&self, plugin: &Arc<Plugin>) -> Result<(), LoadError> {
        let (engine, services) = (&self.engine.engine, &self.services);
        async fn said<W: World>(
            plugin: &Arc<Plugin>,
            engine: &wasmtime::Engine,
            services: &Arc<HostServices>,
        ) -> Result<String, CallError> {
            W::said_id(&mut plugin.instantiate::<W>(engine, services).await?).await
        }
        let said = match plugin.kind() {
            Kind::Backend => said::<bindings::backend::Backend>(plugin, engine, services).await,
            Kind::Agent => said::<bindings::agent::Agent>(plugin, engine, services).await,
            Kind::CredentialSource => {
                said::<bindings::credential_source::CredentialSource>(plugin, engine, services).await
            }
            Kind::Hook => said::<bindings::hook::Hook>(plugin, engine, services).await,
        }
        .map_err(|e| LoadError::Info {
            id: plugin.id().into(),
            origin: plugin.origin.clone(),
            reason: e.to_string(),
        })?;
        if said != plugin.id() {
            return Err(LoadError::IdMismatch { id: plugin.id().into(), origin: plugin.origin.clone(), said });
        }
        Ok(())
    }

    fn add(&self, plugin: Arc<Plugin>) -> Result<Arc<Plugin>, LoadError> {
        let mut plugins = self.plugins_mut();
        if let Some(existing) = plugins.get(plugin.id()) {
            return Err(LoadError::Duplicate {
                id: plugin.id().to_string(),
                first: existing.origin.clone(),
                second: plugin.origin.clone(),
            });
        }
        plugins.insert(plugin.id().to_string(), plugin.clone());
        Ok(plugin)
    }

    fn plugins_ref(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<Plugin>>> {
        // The map is only ever swapped whole-entry, so a panic elsewhere cannot leave it half-written.
        self.plugins.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn plugins_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<Plugin>>> {
        self.plugins.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn failures_mut(&self) -> RwLockWriteGuard<'_, Vec<LoadFailure>> {
        self.failures.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every loaded plugin, by id, as it is now.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.plugins_ref().values().cloned().collect()
    }

    /// A loaded plugin by id.
    pub fn plugin(&self, id: &str) -> Option<Arc<Plugin>> {
        self.plugins_ref().get(id).cloned()
    }

    /// Record failures found before loading (e.g. unreadable files).
    pub fn record_failures(&self, failures: Vec<LoadFailure>) {
        self.failures_mut().extend(failures);
    }

    /// The components that were refused.
    pub fn failures(&self) -> Vec<LoadFailure> {
        self.failures.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// What is loaded and what was refused, as `clauderon plugins list
    /// --json` and `GET /api/plugins` both show it.
    pub fn inventory(&self) -> Inventory {
        Inventory { plugins: self.plugins().iter().map(|p| p.summary()).collect(), refused: self.failures() }
    }

    fn find(&self, id: &str, kind: Kind) -> Result<Arc<Plugin>, CallError> {
        let plugins = self.plugins_ref();
        if let Some(p) = plugins.get(id).filter(|p| p.kind() == kind) {
            return Ok(p.clone());
        }
        let kinds: Vec<&str> = plugins.values().filter(|p| p.kind() == kind).map(|p| p.id()).collect();
        Err(CallError {
            component: id.into(),
            function: "instantiate".into(),
            kind: crate::error::CallErrorKind::Instantiate(format!(
                "no {kind} named `{id}` is loaded (loaded: {})",
                if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
            )),
        })
    }

    /// A new instance of the loaded plugin `id` in its world `W` (the
    /// shorthands below name `W` for each kind).
    pub async fn instance<W: World>(&self, id: &str) -> Result<Instance<W>, CallError> {
        self.find(id, W::KIND)?.instantiate::<W>(&self.engine.engine, &self.services).await
    }

    /// A new instance of the backend `id`.
    pub async fn backend(&self, id: &str) -> Result<Instance<bindings::backend::Backend>, CallError> {
        self.instance(id).await
    }

    /// A new instance of the agent `id`.
    pub async fn agent(&self, id: &str) -> Result<Instance<bindings::agent::Agent>, CallError> {
        self.instance(id).await
    }

    /// A new instance of the credential source `id`.
    pub async fn credential_source(
        &self,
        id: &str,
    ) -> Result<Instance<bindings::credential_source::CredentialSource>, CallError> {
        self.instance(id).await
    }

    /// A new instance of the hook `id`.
    pub async fn hook(&self, id: &str) -> Result<Instance<bindings::hook::Hook>, CallError> {
        self.instance(id).await
    }

    /// Bring the user components in line with the files in `dir` (the
    /// components directory) while everything keeps running: a new file is
    /// loaded, a changed one replaces the loaded one once it has loaded
    /// (until then the old one stays), one whose file is gone is unloaded.
    /// `only` limits this to the component of that id (`<id>.wasm`). Calls
    /// already running finish on the code they started with; the next call
    /// gets the new one. Credential sources are never changed live: the
    /// variables they read are taken from the daemon's environment when it
    /// starts (a restart loads, replaces or drops them), so a change to one
    /// is reported in [`Reload::needs_restart`] and not made.
    pub async fn reload_user(&self, dir: &Path, only: Option<&str>) -> Reload {
        let _one_at_a_time = self.reloading.lock().await;
        let listing = {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || user_sources(&dir)).await
        };
        let (mut sources, mut unreadable) = listing.unwrap_or_else(|e| {
            let failure = LoadFailure { origin: dir.display().to_string(), error: format!("listing crashed: {e}") };
            (Vec::new(), vec![failure])
        });
        let stem = |origin: &str| Path::new(origin).file_stem().and_then(|s| s.to_str()).map(String::from);
        if let Some(id) = only {
            sources.retain(|s| stem(&s.origin()).as_deref() == Some(id));
            unreadable.retain(|f| stem(&f.origin).as_deref() == Some(id));
        }
        let mut report = Reload::default();
        let origins: Vec<String> =
            sources.iter().map(Source::origin).chain(unreadable.iter().map(|f| f.origin.clone())).collect();
        // Old refusals of these files no longer hold; this pass says anew.
        self.failures_mut().retain(|f| !origins.contains(&f.origin));
        for failure in unreadable {
            report.refused.push(failure.clone());
            self.failures_mut().push(failure);
        }
        for source in sources {
            let origin = source.origin();
            let sha256 = crate::approval::digest(source.bytes());
            let current = self.plugins_ref().values().find(|p| p.origin == origin).cloned();
            if current.as_ref().is_some_and(|p| p.sha256 == sha256) {
                report.unchanged.extend(current.map(|p| p.id().to_string()));
                continue;
            }
            let outcome = match self.prepare(source).await {
                Ok(plugin)
                    if plugin.kind() == Kind::CredentialSource
                        || current.as_ref().is_some_and(|c| c.kind() == Kind::CredentialSource) =>
                {
                    tracing::info!(component = plugin.id(), "{NOT_LIVE}");
                    report.needs_restart.push(plugin.id().to_string());
                    continue;
                }
                Ok(plugin) => {
                    let plugin = Arc::new(plugin);
                    match self.check_id(&plugin).await {
                        Ok(()) => self.swap(plugin, current.as_ref()),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(plugin) if current.is_some() => report.replaced.push(plugin.id().to_string()),
                Ok(plugin) => report.added.push(plugin.id().to_string()),
                Err(e) => {
                    tracing::error!("{e}");
                    let failure = LoadFailure { origin, error: e.to_string() };
                    report.refused.push(failure.clone());
                    self.failures_mut().push(failure);
                }
            }
        }
        // User components whose file is gone.
        let mut plugins = self.plugins_mut();
        let gone: Vec<Arc<Plugin>> = plugins
            .values()
            .filter(|p| p.source == "user" && !origins.contains(&p.origin))
            .filter(|p| only.is_none_or(|id| p.id() == id))
            .cloned()
            .collect();
        for plugin in gone {
            if plugin.kind() == Kind::CredentialSource {
                tracing::info!(component = plugin.id(), "{NOT_LIVE}");
                report.needs_restart.push(plugin.id().to_string());
                continue;
            }
            plugins.remove(plugin.id());
            report.removed.push(plugin.id().to_string());
        }
        report
    }

    /// Put `plugin` in place of `current` (the one loaded from the same
    /// file), or add it; refused if its id belongs to another loaded plugin.
    fn swap(&self, plugin: Arc<Plugin>, current: Option<&Arc<Plugin>>) -> Result<Arc<Plugin>, LoadError> {
        let mut plugins = self.plugins_mut();
        if let Some(existing) = plugins.get(plugin.id())
            && current.is_none_or(|c| !Arc::ptr_eq(c, existing))
        {
            return Err(LoadError::Duplicate {
                id: plugin.id().to_string(),
                first: existing.origin.clone(),
                second: plugin.origin.clone(),
            });
        }
        if let Some(c) = current {
            plugins.remove(c.id());
        }
        plugins.insert(plugin.id().to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Read a component file's manifest and interfaces without loading it.
    pub async fn inspect(&self, bytes: Arc<[u8]>) -> Inspection {
        let prep = self.preparer();
        tokio::task::spawn_blocking(move || prep.inspect(&bytes)).await.unwrap_or_else(|e| Inspection {
            problems: vec![format!("inspection crashed: {e}")],
            ..Inspection::default()
        })
    }
}

/// What `inspect` found in a component file.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Inspection {
    /// The manifest, if present and valid.
    pub manifest: Option<crate::manifest::Manifest>,
    /// The world it implements, judged from its exports.
    pub world: Option<String>,
    /// Its imports.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
    /// Everything that would stop it from loading.
    pub problems: Vec<String>,
}

/// Everything needed to turn a [`Source`] into a [`Plugin`], off the runtime.
#[derive(Clone)]
struct Preparer {
    engine: wasmtime::Engine,
    cache: CompileCache,
    config: RuntimeConfig,
}

impl Preparer {
    async fn run(self, source: Source) -> Result<Plugin, LoadError> {
        // The caller's subscriber follows the work onto the blocking thread.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        tokio::task::spawn_blocking(move || {
            tracing::dispatcher::with_default(&dispatch, || self.prepare_blocking(source))
        })
        .await
        .map_err(|e| LoadError::Engine(format!("a load task crashed: {e}")))?
    }

    fn prepare_blocking(&self, source: Source) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        let origin = source.origin();
        let (manifest, grants) = loader::manifest_and_grants(&source)?;
        // What the cache logs (a refused entry) names the component.
        let _span = tracing::info_span!("load", component = %manifest.id).entered();
        let (component, outcome) = self
            .cache
            .load(&self.engine, source.bytes())
            .map_err(|e| LoadError::Compile { origin: origin.clone(), reason: format!("{e:#}") })?;
        let (imports, exports) = loader::interface_names(&self.engine, &component);
        let wasi = loader::check_interfaces(&manifest, &grants, &origin, &imports, &exports)?;
        let ctx = Arc::new(ComponentCtx {
            id: manifest.id.clone(),
            kind: manifest.kind,
            grants: grants.clone(),
            requires: manifest.requires.clone(),
            limits: self.config.limits_for(manifest.kind),
        });
        let pre = loader::pre_instantiate(&self.engine, &component, &ctx, wasi, &origin)?;
        tracing::debug!(id = %manifest.id, ?outcome, elapsed = ?started.elapsed(), "loaded component");
        Ok(Plugin {
            manifest,
            source: source.label(),
            sha256: crate::approval::digest(source.bytes()),
            origin,
            grants,
            cache: outcome,
            wasi,
            imports,
            exports,
            ctx,
            pre,
        })
    }

    fn inspect(&self, bytes: &[u8]) -> Inspection {
        let mut out = Inspection::default();
        match crate::manifest::extract(bytes) {
            None => out.problems.push("no clauderon manifest (custom section `clauderon-manifest`)".into()),
            Some(text) => match crate::manifest::Manifest::parse(&text) {
                Ok(m) => out.manifest = Some(m),
                Err(e) => out.problems.push(e.to_string()),
            },
        }
        let component = match self.cache.load(&self.engine, bytes) {
            Ok((c, _)) => c,
            Err(e) => {
                out.problems.push(format!("not a valid WebAssembly component: {e:#}"));
                return out;
            }
        };
        let (imports, exports) = loader::interface_names(&self.engine, &component);
        out.world = Kind::ALL
            .iter()
            .find(|k| exports.iter().any(|e| e.contains(&format!("/{}@", k.export_interface()))))
            .map(|k| k.world().to_string());
        if let Some(m) = &out.manifest
            && let Err(e) = loader::check_interfaces(m, &m.capabilities, "inspected file", &imports, &exports)
        {
            out.problems.push(e.to_string());
        }
        out.imports = imports;
        out.exports = exports;
        out
    }
}

/// The user components in `dir`: every `<id>.wasm`, with the user's
/// [`Approval`] in `<id>.grants.toml` beside it (none if it was never approved;
/// a file that cannot be read as one is a [`LoadFailure`]).
pub fn user_sources(dir: &Path) -> (Vec<Source>, Vec<LoadFailure>) {
    let mut sources = Vec::new();
    let mut failures = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (sources, failures);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    paths.sort();
    for path in paths {
        let origin = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                failures.push(LoadFailure { origin, error: format!("cannot read {}: {e}", path.display()) });
                continue;
            }
        };
        match Approval::read(&path.with_extension("grants.toml")) {
            Ok(approved) => sources.push(Source::User { path, bytes: bytes.into(), approved }),
            Err(error) => failures.push(LoadFailure { origin, error }),
        }
    }
    (sources, failures)
}
