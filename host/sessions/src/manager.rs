//! The session manager: every lifecycle operation, each change stored with its
//! event in one transaction and then broadcast.
//!
//! create: name → record (`creating`) → git worktree on `clauderon/<name>` →
//! the agent's launch plan → the backend creates and starts it → `running`.
//! A create that fails anywhere removes what it made (backend resource,
//! worktree, branch, record). Operations on one session are serialised.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clauderon_runtime::Runtime;
use clauderon_runtime::bindings::agent::exports::clauderon::plugin::agent_api::LaunchRequest;
use clauderon_runtime::bindings::backend::exports::clauderon::plugin::backend_api::BackendFeatures;
use clauderon_runtime::bindings::types::{self as wit, EnvVar, LaunchPlan, ResourceState, SessionSpec};
use clauderon_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::confined::Confined;
use crate::egress::{Egress, EgressEnv};
use crate::error::SessionError;
use crate::model::{
    AccessMode, AgentStatus, EgressMode, EgressPolicy, Event, EventKind, Session, Status, Synced, name_from_prompt,
    now_ms, valid_name,
};
use crate::sandbox::{HostSandbox, Isolation};
use crate::worktree;

/// The most bytes an agent component's approve or deny keys may be.
pub const MAX_APPROVAL_KEYS: usize = 16;

/// The most a session may send for its branch from where it runs (1 GiB).
pub const MAX_INCOMING: u64 = 1 << 30;

/// Defaults from the config file.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Backend used when a create names none.
    pub backend: String,
    /// Agent used when a create names none.
    pub agent: String,
    /// The API's base URL as sessions reach it (for agents' status events), if any.
    pub status_base: Option<String>,
    /// Per-backend options from the config (`[backends.<id>]`), passed in every spec.
    pub backend_options: std::collections::BTreeMap<String, Vec<(String, String)>>,
    /// The static container relay (`clauderon-relay`), which isolated
    /// backends run as their containers' PID 1; `None` if this build has none.
    pub relay: Option<PathBuf>,
    /// The egress mode a session gets when its create does not choose one
    /// (`[egress] default`).
    pub egress: EgressMode,
    /// Backends this build has but the user has not turned on, each with
    /// how to turn it on (a create naming one says so).
    pub disabled_backends: Vec<(String, String)>,
}

/// A request to create a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// A directory inside a git repository (an absolute path).
    #[schema(value_type = String)]
    pub repo: PathBuf,
    /// The prompt.
    pub prompt: String,
    /// A name; derived from the prompt if absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Backend id.
    #[serde(default)]
    pub backend: Option<String>,
    /// Agent id.
    #[serde(default)]
    pub agent: Option<String>,
    /// Model.
    #[serde(default)]
    pub model: Option<String>,
    /// Access mode (default read-write).
    #[serde(default)]
    pub access_mode: Option<AccessMode>,
    /// Egress mode (default: the daemon's `[egress] default`, allow-list
    /// unless configured).
    #[serde(default)]
    pub egress: Option<EgressMode>,
    /// Hosts this session may reach besides the daemon's egress list
    /// (`api.example.com`, or `*.example.com` for its subdomains).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Print mode: answer once and exit.
    #[serde(default)]
    pub print: bool,
    /// Plan mode: plan without changing files.
    #[serde(default)]
    pub plan_mode: bool,
    /// Let the agent act without asking for permission.
    #[serde(default)]
    pub skip_permissions: bool,
    /// Container image (container backends).
    #[serde(default)]
    pub image: Option<String>,
    /// CPU limit in cores (container backends).
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// Memory limit in bytes (container backends).
    #[serde(default)]
    pub memory_limit: Option<u64>,
}

/// The session manager.
pub struct Manager {
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    events: broadcast::Sender<Event>,
    home: PathBuf,
    defaults: Defaults,
    locks: Locks,
    egress: Option<Arc<dyn Egress>>,
    sandbox: Option<HostSandbox>,
    /// The start-up reconcile has finished.
    reconciled: std::sync::atomic::AtomicBool,
}

/// How many sessions reconcile checks at once.
pub const RECONCILE_AT_ONCE: usize = 8;

/// Named async locks, made on first use. A lock nobody holds or awaits
/// (only the registry has it) is dropped at the next call, so the registry
/// holds the locks in use rather than one for every session ever made.
#[derive(Default)]
struct Locks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Locks {
    fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|k, lock| k == key || Arc::strong_count(lock) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// What a create has made so far: undoing it touches these and nothing else.
#[derive(Debug, Default)]
struct Made {
    /// The session's clone and branch (`worktree::add` refuses existing ones).
    clone: bool,
    /// The backend resource the host named and recorded before the backend's
    /// `create` (checked absent first), so it is this create's even if
    /// `create` failed midway.
    resource: Option<String>,
    /// A resource a misbehaving backend made under another name.
    stray: Option<String>,
}

/// The backend resource of session `name`: the host names it, so that a
/// failed create can be undone by name without touching another's.
fn resource_name(name: &str) -> String {
    format!("clauderon-{name}")
}

/// Creates, starts and deletes are serialised per backend (keyed
/// `backend:<id>` in `locks`): a backend such as zellij can trip over two
/// sessions started or killed at the same instant, and none gains much from
/// doing them in parallel.
fn backend_key(backend: &str) -> String {
    format!("backend:{backend}")
}

/// git worktree operations are serialised per repository (keyed `repo:<path>`):
/// concurrent `git worktree add/remove` in one repository race on its lock files.
fn repo_key(repo: &Path) -> String {
    format!("repo:{}", repo.display())
}

impl Manager {
    /// A manager over a store and a runtime; worktrees go under `home/worktrees`.
    pub fn new(store: Arc<Store>, runtime: Arc<Runtime>, home: PathBuf, defaults: Defaults) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            store,
            runtime,
            events,
            home,
            defaults,
            locks: Default::default(),
            egress: None,
            sandbox: None,
            reconciled: Default::default(),
        }
    }

    /// Run host sessions (on backends that are not isolated) in the sandbox.
    pub fn with_sandbox(mut self, sandbox: HostSandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Route every session's traffic through `egress` (the proxy).
    pub fn with_egress(mut self, egress: Arc<dyn Egress>) -> Self {
        self.egress = Some(egress);
        self
    }

    /// Open the session's egress and remember its port.
    async fn open_egress(&self, session: &mut Session) -> Result<EgressEnv, SessionError> {
        let Some(egress) = &self.egress else { return Ok(EgressEnv::default()) };
        let opened = egress
            .open(session)
            .await
            .map_err(|e| SessionError::Failed(format!("opening the session's proxy failed: {e}")))?;
        session.proxy_port = Some(opened.port);
        Ok(opened)
    }

    /// The unix socket of session `id`'s proxy, opened if it was not (a
    /// remote pod's tunnel leads there).
    pub async fn proxy_socket(&self, id: &str) -> Result<PathBuf, SessionError> {
        let session = self.get(id).await?;
        let Some(egress) = &self.egress else {
            return Err(SessionError::Failed("this daemon gives sessions no proxy".into()));
        };
        let opened = egress
            .open(&session)
            .await
            .map_err(|e| SessionError::Failed(format!("opening the session's proxy failed: {e}")))?;
        let dir =
            opened.socket_dir.ok_or_else(|| SessionError::Failed("the session's proxy has no unix socket".into()))?;
        Ok(dir.join(clauderon_proxy::server::SOCKET_NAME))
    }

    /// The proxy's direct door for session `id`, its proxy opened if it was
    /// not (the door leads only to an open one); none without a door.
    pub async fn door(&self, id: &str) -> Result<Option<clauderon_runtime::SessionDoor>, SessionError> {
        let session = self.get(id).await?;
        let Some(egress) = &self.egress else { return Ok(None) };
        let Some((address, file)) = egress.door(&session.id) else { return Ok(None) };
        egress
            .open(&session)
            .await
            .map_err(|e| SessionError::Failed(format!("opening the session's proxy failed: {e}")))?;
        Ok(Some(clauderon_runtime::SessionDoor { address, file }))
    }

    fn close_egress(&self, session: &Session) {
        if let Some(egress) = &self.egress {
            egress.close(&session.id);
        }
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The runtime (plugins).
    /// Reload the user components from `home/components` (see
    /// [`Runtime::reload_user`]), logging what changed.
    pub async fn reload_plugins(&self, only: Option<&str>) -> clauderon_runtime::Reload {
        let report = self.runtime.reload_user(&self.home.join("components"), only).await;
        tracing::info!(
            added = ?report.added, replaced = ?report.replaced, removed = ?report.removed,
            refused = report.refused.len(), "reloaded user components"
        );
        report
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The defaults.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The host sandbox host sessions run in, if it is set up.
    pub fn sandbox(&self) -> Option<&HostSandbox> {
        self.sandbox.as_ref()
    }

    /// `CLAUDERON_HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, clauderon_store::StoreError> + Send + 'static,
    ) -> Result<T, SessionError> {
        Ok(self.store.blocking(f).await?)
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.get(key)
    }

    fn event(session: &Session, kind: EventKind, detail: Option<String>) -> Event {
        Event { seq: 0, at: now_ms(), session_id: session.id.clone(), session_name: session.name.clone(), kind, detail }
    }

    fn publish(&self, mut event: Event, seq: u64) {
        event.seq = seq;
        let _ = self.events.send(event);
    }

    /// Store a changed session with the event explaining it, then broadcast.
    async fn save(&self, session: &mut Session, kind: EventKind, detail: Option<String>) -> Result<(), SessionError> {
        session.updated_at = now_ms();
        let event = Self::event(session, kind, detail);
        let (id, record, ev) = (session.id.clone(), to_json(session)?, to_json(&event)?);
        let seq = self.blocking(move |s| s.update_session(&id, &record, &ev)).await?;
        self.publish(event, seq);
        Ok(())
    }

    async fn set_status(&self, session: &mut Session, to: Status, detail: Option<String>) -> Result<(), SessionError> {
        let from = session.status;
        session.status = to;
        self.save(session, EventKind::StatusChanged { from, to }, detail).await
    }

    /// All sessions (archived ones only if asked), oldest first.
    pub async fn list(&self, archived: bool) -> Result<Vec<Session>, SessionError> {
        Ok(self.list_at(archived).await?.0)
    }

    /// The sessions (as [`Manager::list`]) and the sequence number of the
    /// last event they reflect: following the events after it misses nothing.
    pub async fn list_at(&self, archived: bool) -> Result<(Vec<Session>, u64), SessionError> {
        let (records, seq) = self.blocking(|s| s.sessions()).await?;
        let mut sessions: Vec<Session> = records.iter().filter_map(|r| serde_json::from_slice(r).ok()).collect();
        sessions.retain(|s| archived || s.status != Status::Archived);
        sessions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.name.cmp(&b.name)));
        Ok((sessions, seq))
    }

    /// A session by id or name.
    pub async fn get(&self, id_or_name: &str) -> Result<Session, SessionError> {
        let key = id_or_name.to_string();
        let record = self
            .blocking(move |s| {
                let id = match s.session(&key)? {
                    Some(r) => return Ok(Some(r)),
                    None => s.session_id(&key)?,
                };
                id.map(|id| s.session(&id)).transpose().map(Option::flatten)
            })
            .await?;
        let record = record.ok_or_else(|| SessionError::NotFound(id_or_name.to_string()))?;
        serde_json::from_slice(&record)
            .map_err(|e| SessionError::Failed(format!("a stored session is unreadable: {e}")))
    }

    fn check_plugin(&self, id: &str, kind: clauderon_runtime::Kind) -> Result<(), SessionError> {
        if self.runtime.plugin(id).is_some_and(|p| p.kind() == kind) {
            return Ok(());
        }
        if kind == clauderon_runtime::Kind::Backend
            && let Some((_, how)) = self.defaults.disabled_backends.iter().find(|(b, _)| b == id)
        {
            return Err(SessionError::Invalid(format!("the {id} backend is off: {how}")));
        }
        let plugins = self.runtime.plugins();
        let known: Vec<&str> = plugins.iter().filter(|p| p.kind() == kind).map(|p| p.id()).collect();
        Err(SessionError::Invalid(format!("unknown {kind} `{id}` (available: {})", known.join(", "))))
    }

    async fn pick_name(&self, req: &CreateRequest) -> Result<String, SessionError> {
        if let Some(name) = &req.name {
            if !valid_name(name) {
                return Err(SessionError::Invalid(format!(
                    "session name `{name}` must be 1-48 lowercase letters, digits or dashes"
                )));
            }
            return Ok(name.clone());
        }
        let base = name_from_prompt(&req.prompt);
        for n in 1..1000 {
            let candidate = if n == 1 { base.clone() } else { format!("{base}-{n}") };
            let c = candidate.clone();
            if self.blocking(move |s| s.session_id(&c)).await?.is_none() {
                return Ok(candidate);
            }
        }
        Err(SessionError::Conflict(format!("too many sessions named like `{base}`; pass --name")))
    }

    /// Create a session and start its agent.
    #[tracing::instrument(skip_all, fields(name = ?req.name, backend = ?req.backend, agent = ?req.agent))]
    pub async fn create(&self, req: CreateRequest) -> Result<Session, SessionError> {
        let backend = req.backend.clone().unwrap_or_else(|| self.defaults.backend.clone());
        let agent = req.agent.clone().unwrap_or_else(|| self.defaults.agent.clone());
        self.check_plugin(&backend, clauderon_runtime::Kind::Backend)?;
        self.check_plugin(&agent, clauderon_runtime::Kind::Agent)?;
        let features = self.features(&backend).await?;
        let cannot = |what: &str, flags: &str| {
            SessionError::Invalid(format!(
                "the {backend} backend cannot apply {what}; leave out {flags} or pick a backend that can (--backend docker)"
            ))
        };
        if req.image.is_some() && !features.custom_image {
            return Err(cannot("a container image", "--image"));
        }
        if (req.cpu_limit.is_some() || req.memory_limit.is_some()) && !features.resource_limits {
            return Err(cannot("resource limits", "--cpu-limit and --memory-limit"));
        }
        let egress = EgressPolicy { mode: req.egress.unwrap_or(self.defaults.egress), hosts: req.allow_hosts.clone() }
            .normalised()
            .map_err(|e| SessionError::Invalid(format!("--allow-host: {e}")))?;
        let location = worktree::locate(&req.repo).await?;
        let (_base_name, base_commit) = worktree::base(&location.root).await?;
        let name = self.pick_name(&req).await?;
        let now = now_ms();
        let mut session = Session {
            id: uuid::Uuid::new_v4().to_string(),
            worktree: self.home.join("worktrees").join(&name),
            branch: format!("clauderon/{name}"),
            name,
            repo: location.root,
            subdir: location.subdir,
            base_commit,
            backend,
            agent,
            model: req.model.clone(),
            access_mode: req.access_mode.unwrap_or(AccessMode::ReadWrite),
            egress,
            status: Status::Creating,
            error: None,
            agent_status: AgentStatus::Unknown,
            resource_id: None,
            proxy_port: None,
            transcript_path: None,
            prompt: req.prompt.clone(),
            print_mode: req.print,
            plan_mode: req.plan_mode,
            skip_permissions: req.skip_permissions,
            isolation: None,
            image: req.image.clone(),
            cpu_limit: req.cpu_limit,
            memory_limit: req.memory_limit,
            created_at: now,
            updated_at: now,
        };
        let event = Self::event(&session, EventKind::Created, None);
        let (id, name, record, ev) = (session.id.clone(), session.name.clone(), to_json(&session)?, to_json(&event)?);
        let seq = self.blocking(move |s| s.insert_session(&id, &name, &record, &ev)).await?;
        self.publish(event, seq);

        let lock = self.lock_for(&session.id);
        let _guard = lock.lock().await;
        let mut made = Made::default();
        match self.provision(&mut session, &features, &mut made).await {
            Ok(()) => Ok(session),
            Err(e) => {
                self.undo_create(&session, &made, &e.to_string()).await;
                Err(e)
            }
        }
    }

    /// Make the session's clone, egress and backend resource, noting in
    /// `made` each thing as it is made (and the resource in the store before
    /// the backend is asked for it, for a restart to undo).
    async fn provision(
        &self,
        session: &mut Session,
        features: &BackendFeatures,
        made: &mut Made,
    ) -> Result<(), SessionError> {
        {
            let lock = self.lock_for(&repo_key(&session.repo));
            let _one_at_a_time = lock.lock().await;
            worktree::add(&session.repo, &session.worktree, &session.branch, &session.base_commit).await?;
            made.clone = true;
        }
        let egress = self.open_egress(session).await?;
        let (spec, paths) = self.spec(session, features, false, egress).await?;
        let mut backend = self.runtime.backend(&session.backend).await?;
        backend.serve_session(&session.id, &paths);
        let info = {
            let lock = self.lock_for(&backend_key(&session.backend));
            let _one_at_a_time = lock.lock().await;
            let name = spec.resource_name.clone();
            if backend.list_resources().await?.contains(&name) {
                return Err(SessionError::Conflict(format!(
                    "the {} backend already has a resource named `{name}` that this create did not make; \
                     remove it or pick another --name",
                    session.backend
                )));
            }
            session.resource_id = Some(name.clone());
            let (id, record) = (session.id.clone(), to_json(session)?);
            self.blocking(move |s| s.replace_session(&id, &record)).await?;
            made.resource = Some(name);
            match backend.create(&spec).await {
                Ok(info) => info,
                Err(e) => {
                    if e.is_invalid_input() {
                        // Refused before making anything (the name may be
                        // taken by what the listing missed): not ours to delete.
                        made.resource = None;
                    }
                    return Err(e.into());
                }
            }
        };
        if Some(&info.resource_id) != made.resource.as_ref() {
            made.stray = Some(info.resource_id.clone());
            return Err(SessionError::Failed(format!(
                "the {} backend made resource `{}`, not `{}` as it was asked",
                session.backend, info.resource_id, spec.resource_name
            )));
        }
        session.agent_status = AgentStatus::Working;
        self.set_status(session, Status::Running, None).await
    }

    /// Remove what a failed create made — only that — then the record.
    async fn undo_create(&self, session: &Session, made: &Made, why: &str) {
        self.close_egress(session);
        let resources = made.resource.iter().chain(made.stray.iter());
        if made.resource.is_some()
            && let Ok(mut backend) = self.runtime.backend(&session.backend).await
        {
            for r in resources {
                if let Err(e) = backend.delete(r).await {
                    tracing::warn!(session = %session.name, "could not delete backend resource {r}: {e}");
                }
            }
        }
        if made.clone
            && let Err(e) = self.remove_worktree(session).await
        {
            tracing::warn!(session = %session.name, "could not remove the worktree: {e}");
        }
        let _ = tokio::fs::remove_dir_all(self.session_dir(session)).await;
        let event = Self::event(session, EventKind::CreateFailed, Some(why.to_string()));
        let (id, name) = (session.id.clone(), session.name.clone());
        match to_json(&event) {
            Ok(ev) => match self.blocking(move |s| s.delete_session(&id, &name, &ev)).await {
                Ok(seq) => self.publish(event, seq),
                Err(e) => tracing::error!(session = %session.name, "could not remove the failed session: {e}"),
            },
            Err(e) => tracing::error!("{e}"),
        }
    }

    /// Remove a session's worktree (and branch unless it has commits of its own).
    async fn remove_worktree(&self, session: &Session) -> Result<bool, SessionError> {
        let lock = self.lock_for(&repo_key(&session.repo));
        let _one_at_a_time = lock.lock().await;
        worktree::remove(&session.repo, &session.worktree, &session.branch, &session.base_commit).await
    }

    /// Bring the session's branch back into the user's repository (from
    /// where it runs, or from its clone); a failure is logged and returned
    /// as a note (the work stays where it is).
    async fn sync(&self, session: &Session) -> Option<String> {
        Self::note(session, self.bring_back(session).await.err())
    }

    /// Bring the session's branch into the user's repository: from where it
    /// runs for a remote session, else from its clone.
    async fn bring_back(&self, session: &Session) -> Result<(), SessionError> {
        if self.remote(session).await? { self.export_branch(session).await } else { self.sync_clone(session).await }
    }

    /// A failure to bring a session's work back, logged, as a note.
    fn note(session: &Session, failed: Option<SessionError>) -> Option<String> {
        let note = failed?.to_string();
        tracing::warn!(session = %session.name, "{note}");
        Some(note)
    }

    /// Whether the session's agent works away from the host (its backend's
    /// `remote-workspace`): its commits come from there, not from its clone.
    async fn remote(&self, session: &Session) -> Result<bool, SessionError> {
        Ok(self.features(&session.backend).await?.remote_workspace)
    }

    /// Bring the session's branch from its clone into the user's repository.
    async fn sync_clone(&self, session: &Session) -> Result<(), SessionError> {
        let lock = self.lock_for(&repo_key(&session.repo));
        let _one_at_a_time = lock.lock().await;
        worktree::sync(&session.repo, &session.worktree, &session.branch).await
    }

    /// Have a backend whose agent works away from the host bring the
    /// session's commits into the user's repository (`export-branch`, whose
    /// `kube.copy-out` ends in [`Manager::receive_branch`]).
    async fn export_branch(&self, session: &Session) -> Result<(), SessionError> {
        let Some(resource) = &session.resource_id else { return Ok(()) };
        let mut backend = self.runtime.backend(&session.backend).await?;
        backend.serve_session(&session.id, &[]);
        backend
            .export_branch(resource)
            .await
            .map_err(|e| SessionError::Failed(format!("bringing the session's commits back from where it runs: {e}")))
    }

    /// Before a session's resource stops or goes: a remote session's commits
    /// come back while it is still there. After: the others' from their clone.
    async fn sync_around<F: Future<Output = Result<(), SessionError>>>(
        &self,
        session: &Session,
        stopping: F,
    ) -> Result<Option<String>, SessionError> {
        let remote = self.remote(session).await;
        let before = match remote {
            Ok(true) => self.export_branch(session).await.err(),
            Ok(false) => None,
            Err(ref e) => Some(SessionError::Failed(e.to_string())),
        };
        stopping.await?;
        let after = match remote {
            Ok(false) => self.sync_clone(session).await.err(),
            _ => None,
        };
        Ok(Self::note(session, before.or(after)))
    }

    /// Take a bundle of session `id`'s branch sent from where it runs (at
    /// most [`MAX_INCOMING`] bytes) into the user's repository, only
    /// forward; nothing sent means nothing new. The branch's commit now.
    pub async fn receive_branch(
        &self,
        id: &str,
        mut bundle: clauderon_runtime::Incoming,
    ) -> Result<String, SessionError> {
        use tokio::io::AsyncReadExt;
        let session = self.get(id).await?;
        let file = self.session_dir(&session).join(format!("incoming-{}.bundle", uuid::Uuid::new_v4().simple()));
        let written = async {
            let mut out = tokio::fs::File::create(&file).await?;
            let n = tokio::io::copy(&mut (&mut bundle).take(MAX_INCOMING + 1), &mut out).await?;
            out.sync_all().await?;
            Ok::<u64, std::io::Error>(n)
        }
        .await;
        let received = match written {
            Err(e) => Err(SessionError::Failed(format!("receiving the session's branch: {e}"))),
            Ok(n) if n > MAX_INCOMING => Err(SessionError::Failed(format!(
                "the session sent more than {} MiB for its branch; nothing was brought back",
                MAX_INCOMING >> 20
            ))),
            Ok(0) => worktree::head(&session.repo, &session.branch, &session.base_commit).await.map(|(c, _)| c),
            Ok(_) => {
                let lock = self.lock_for(&repo_key(&session.repo));
                let _one_at_a_time = lock.lock().await;
                worktree::receive(&session.repo, &file, &session.branch).await
            }
        };
        let _ = tokio::fs::remove_file(&file).await;
        received
    }

    /// Bring a session's commits into the user's repository now (`clauderon
    /// sync`): from where it runs (while it runs), or from its clone.
    #[tracing::instrument(skip(self))]
    pub async fn sync_now(&self, id_or_name: &str) -> Result<Synced, SessionError> {
        let (session, _g) = self.locked(id_or_name).await?;
        Self::require(&session, &[Status::Running, Status::Stopped, Status::Failed, Status::Archived], "sync")?;
        self.bring_back(&session).await?;
        let (commit, ahead) = worktree::head(&session.repo, &session.branch, &session.base_commit).await?;
        let short = &commit[..commit.len().min(12)];
        Ok(Synced {
            message: format!(
                "{}: your branch {} is at {short}, {ahead} commit{} beyond its base.",
                session.name,
                session.branch,
                if ahead == 1 { "" } else { "s" }
            ),
            branch: session.branch.clone(),
            commit,
            commits: ahead,
        })
    }

    /// A git bundle of session `id`'s branch, made from the user's
    /// repository into the session's directory, for a backend that copies
    /// the branch to where the session runs (`kube`'s `copy-in`).
    pub async fn branch_bundle(&self, id: &str) -> Result<clauderon_runtime::BranchBundle, SessionError> {
        let session = self.get(id).await?;
        // One file per call: two copies at once never share one.
        let file = self.session_dir(&session).join(format!("branch-{}.bundle", uuid::Uuid::new_v4().simple()));
        let origin = {
            let lock = self.lock_for(&repo_key(&session.repo));
            let _one_at_a_time = lock.lock().await;
            worktree::bundle(&session.repo, &session.branch, &file).await?
        };
        Ok(clauderon_runtime::BranchBundle { file, branch: session.branch.clone(), origin })
    }

    /// What `backend` says it can do (isolation, images, limits).
    pub async fn features(&self, backend: &str) -> Result<BackendFeatures, SessionError> {
        Ok(self.runtime.backend(backend).await?.info().await?.features)
    }

    fn session_dir(&self, session: &Session) -> PathBuf {
        self.home.join("sessions").join(&session.id)
    }

    /// The session's config home (the agent's HOME; the session can write it).
    fn config_home(&self, session: &Session) -> PathBuf {
        self.session_dir(session).join("agent-home")
    }

    /// The agent's launch plan and the backend spec for a session. The
    /// environment is the agent's, its credential placeholders, the proxy's
    /// (`egress`), HOME = the session's own config home (so an agent on the
    /// host never picks up the user's own login) and the user's git identity.
    /// A host session's agent program must be on the daemon's PATH (a
    /// container's image brings its own): if it is not, the error names the
    /// command that installs it, from the agent's manifest.
    fn check_installed(&self, agent: &str, argv: &[String]) -> Result<(), SessionError> {
        let Some(program) = argv.first().filter(|p| !p.contains('/')) else { return Ok(()) };
        if clauderon_runtime::capabilities::process::which(program).is_some() {
            return Ok(());
        }
        let requires = self.runtime.plugin(agent).map(|p| p.manifest.requires.clone()).unwrap_or_default();
        Err(SessionError::Invalid(format!("agent `{agent}`: {}", clauderon_runtime::not_installed(program, &requires))))
    }

    /// On a backend that is not isolated (`features`), the agent's command is wrapped in
    /// the host sandbox. With the spec come the session's own paths, the only
    /// ones the backend may mount or run in ([`Manager::session_paths`]).
    async fn spec(
        &self,
        session: &mut Session,
        features: &BackendFeatures,
        resume: bool,
        egress: EgressEnv,
    ) -> Result<(SessionSpec, Vec<PathBuf>), SessionError> {
        let session_dir = self.session_dir(session);
        let config_home = self.config_home(session);
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config_home)
            .await
            .map_err(|e| SessionError::Failed(format!("creating {}: {e}", config_home.display())))?;
        let backend_isolated = features.isolated;
        let workdir = workdir_of(session);
        let objects = worktree::objects_dir(&session.repo).await?;
        let policy = match (&self.sandbox, backend_isolated) {
            (Some(sandbox), false) => {
                let paths = crate::sandbox::Paths {
                    clauderon_home: &self.home,
                    config_home: &config_home,
                    worktree: &session.worktree,
                    workdir: &workdir,
                    objects: &objects,
                };
                let proxy = session.proxy_port.zip(egress.socket_dir.clone());
                let mut policy = sandbox.policy(&session.name, &paths, proxy)?;
                if let (Some(p), Some(bundle)) = (policy.as_mut(), &egress.ca_bundle) {
                    p.readable.push(bundle.clone());
                }
                policy
            }
            _ => None,
        };
        session.isolation = Some(match (backend_isolated, &policy) {
            (true, _) => Isolation::Backend,
            (false, Some(_)) => Isolation::Sandbox,
            (false, None) => Isolation::None,
        });
        let request = LaunchRequest {
            session_id: session.id.clone(),
            prompt: session.prompt.clone(),
            model: session.model.clone(),
            print_mode: session.print_mode,
            plan_mode: session.plan_mode,
            skip_permissions: session.skip_permissions,
            resume,
            config_home: config_home.to_string_lossy().into_owned(),
            worktree: session.worktree.to_string_lossy().into_owned(),
            workdir: workdir.to_string_lossy().into_owned(),
            status_url: self.status_url(session),
            // A sandboxed host session is as isolated as a container: an
            // agent's own sandbox (which needs namespaces of its own) is moot.
            isolated: backend_isolated || policy.is_some(),
        };
        let mut agent = self.runtime.agent(&session.agent).await?;
        let mut plan: LaunchPlan = agent.plan(&request).await.map_err(|e| {
            if e.is_plugin_error() { SessionError::Invalid(e.to_string()) } else { SessionError::Failed(e.to_string()) }
        })?;
        let blame = format!("agent `{}`", session.agent);
        if !backend_isolated {
            self.check_installed(&session.agent, &plan.argv)?;
        }
        place_files(&config_home, &plan).await.map_err(|e| e.blaming(&blame))?;
        if let Some(transcript) = &plan.transcript_path {
            crate::history::inside(&config_home, Path::new(transcript)).map_err(|e| e.blaming(&blame))?;
        }
        session.transcript_path = plan.transcript_path.clone();
        let placeholders: Vec<(String, String)> =
            plan.credentials.iter().map(|c| (c.env_name.clone(), c.placeholder.clone())).collect();
        let mut env = vec![("HOME".to_string(), config_home.to_string_lossy().into_owned())];
        env.extend(worktree::identity_env(&session.repo).await);
        env.extend(egress.env.iter().cloned());
        env.extend(placeholders);
        env.push(("CLAUDERON_SESSION_ID".into(), session.id.clone()));
        env.push(("CLAUDERON_SESSION_NAME".into(), session.name.clone()));
        for (name, value) in env {
            plan.env.retain(|v| v.name != name);
            plan.env.push(EnvVar { name, value });
        }
        if let (Some(sandbox), Some(policy)) = (&self.sandbox, &policy) {
            plan.argv = sandbox.wrap(&session_dir, policy, std::mem::take(&mut plan.argv))?;
        }
        let paths = self.session_paths(session, &config_home, &objects, &egress);
        let mut options = self.backend_options(session, &objects);
        if backend_isolated {
            options.extend(self.container_options(session, &egress)?);
            let mut owned = vec![session.worktree.clone(), config_home.clone()];
            owned.extend(egress.socket_dir.clone());
            crate::ownership::hand_over(owned).await?;
        }
        let spec = SessionSpec {
            id: session.id.clone(),
            name: session.name.clone(),
            resource_name: resource_name(&session.name),
            worktree: session.worktree.to_string_lossy().into_owned(),
            workdir: workdir.to_string_lossy().into_owned(),
            access_mode: match session.access_mode {
                AccessMode::ReadOnly => wit::AccessMode::ReadOnly,
                AccessMode::ReadWrite => wit::AccessMode::ReadWrite,
            },
            launch: plan,
            image: session.image.clone(),
            cpu_limit: session.cpu_limit,
            memory_limit: session.memory_limit,
            options,
        };
        Ok((spec, paths))
    }

    /// The session's own paths — the only sources a container backend may
    /// mount for it, and where its commands may run — from what the host
    /// knows (never from what an agent or backend component said): its worktree, its config home, the user's object store
    /// (read through alternates), the CA bundle, the proxy socket's
    /// directory, the relay, and the mounts the user declared in
    /// `[backends.<id>] mounts` (`src:dst[:ro]`, comma-separated).
    fn session_paths(&self, session: &Session, config_home: &Path, objects: &Path, egress: &EgressEnv) -> Vec<PathBuf> {
        let mut out = vec![session.worktree.clone(), config_home.to_path_buf(), objects.to_path_buf()];
        out.extend(egress.ca_bundle.iter().chain(egress.socket_dir.iter()).chain(self.defaults.relay.iter()).cloned());
        let configured = self.defaults.backend_options.get(&session.backend).into_iter().flatten();
        let declared = configured.filter(|(k, _)| k == "mounts").flat_map(|(_, v)| v.split(','));
        out.extend(declared.filter_map(|m| m.trim().split(':').next()).filter(|s| !s.is_empty()).map(PathBuf::from));
        out
    }

    /// The backend's options: the config's, plus what only the host knows —
    /// the user's object store (the session's clone reads it, read-only,
    /// through alternates).
    fn backend_options(&self, session: &Session, objects: &Path) -> Vec<(String, String)> {
        let mut options = self.defaults.backend_options.get(&session.backend).cloned().unwrap_or_default();
        options.push(("git-objects".into(), objects.to_string_lossy().into_owned()));
        options
    }

    /// What an isolated backend needs to give its container a way out and a
    /// user: the proxy's port and socket directory, the relay that joins them
    /// inside, and the (never root) user to run as.
    fn container_options(&self, session: &Session, egress: &EgressEnv) -> Result<Vec<(String, String)>, SessionError> {
        let relay = self.defaults.relay.as_ref().ok_or_else(|| {
            SessionError::Failed(
                "this clauderon binary was built without its container relay, so containers would have no way \
                 out; build it with `./justw build`"
                    .into(),
            )
        })?;
        let mut options = vec![("relay".to_string(), relay.to_string_lossy().into_owned())];
        if let (Some(port), Some(dir)) = (session.proxy_port, &egress.socket_dir) {
            options.push(("proxy-port".into(), port.to_string()));
            options.push(("proxy-socket-dir".into(), dir.to_string_lossy().into_owned()));
        }
        let (uid, gid) = crate::ownership::container_user();
        options.push(("host-user".into(), format!("{uid}:{gid}")));
        Ok(options)
    }

    /// Where the session's agent POSTs its status events (with the session's secret).
    fn status_url(&self, session: &Session) -> Option<String> {
        let base = self.defaults.status_base.as_ref()?;
        let key = self.egress.as_ref()?.session_secret(&session.id)?;
        Some(format!("{base}/api/sessions/{}/status-event?key={key}", session.id))
    }

    /// Whether `key` is the session's status-event secret.
    pub fn status_key_ok(&self, id: &str, key: &str) -> bool {
        let expected = self.egress.as_ref().and_then(|e| e.session_secret(id));
        expected
            .is_some_and(|k| !key.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(k.as_bytes(), key.as_bytes())))
    }

    /// An agent status event: the agent component says which status it implies;
    /// a change is stored with its event. In print mode, a finished turn is idle.
    #[tracing::instrument(skip(self, body))]
    pub async fn status_event(&self, id: &str, body: &str) -> Result<Option<AgentStatus>, SessionError> {
        let (mut session, _g) = self.locked(id).await?;
        let mut agent = self.runtime.agent(&session.agent).await?;
        let status = agent.status_from_event(body).await.map_err(|e| SessionError::Failed(e.to_string()))?;
        let Some(status) = status.map(crate::model::agent_status_from_wit) else { return Ok(None) };
        let status =
            if session.print_mode && status == AgentStatus::WaitingForInput { AgentStatus::Idle } else { status };
        if status != session.agent_status {
            session.agent_status = status;
            // A turn ended: the session's commits so far reach the user's branch.
            let note = if status == AgentStatus::Working { None } else { self.sync(&session).await };
            self.save(&mut session, EventKind::AgentStatusChanged { to: status }, note).await?;
        }
        Ok(Some(status))
    }

    /// Chat messages from the session's transcript after byte offset `cursor`;
    /// the new cursor (only whole lines are read).
    pub async fn history(&self, id_or_name: &str, cursor: u64) -> Result<crate::history::History, SessionError> {
        let session = self.get(id_or_name).await?;
        let mut agent = self.runtime.agent(&session.agent).await?;
        let config_home = self.config_home(&session);
        crate::history::read(&session, &config_home, &mut agent, cursor).await
    }

    async fn locked(&self, id_or_name: &str) -> Result<(Session, tokio::sync::OwnedMutexGuard<()>), SessionError> {
        let first = self.get(id_or_name).await?;
        let guard = self.lock_for(&first.id).lock_owned().await;
        // Re-read under the lock: another operation may have changed it.
        let session = self.get(&first.id).await?;
        Ok((session, guard))
    }

    fn require(session: &Session, allowed: &[Status], action: &str) -> Result<(), SessionError> {
        if allowed.contains(&session.status) {
            return Ok(());
        }
        Err(SessionError::Conflict(format!(
            "cannot {action} session `{}`: it is {}",
            session.name,
            serde_json::to_value(session.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        )))
    }

    /// Stop a running session (its resource is kept for `start`).
    #[tracing::instrument(skip(self))]
    pub async fn stop(&self, id_or_name: &str) -> Result<Session, SessionError> {
        let (mut session, _g) = self.locked(id_or_name).await?;
        Self::require(&session, &[Status::Running], "stop")?;
        let note = self
            .sync_around(&session, async {
                if let Some(r) = &session.resource_id {
                    self.runtime.backend(&session.backend).await?.stop(r).await?;
                }
                Ok(())
            })
            .await?;
        session.agent_status = AgentStatus::Idle;
        self.set_status(&mut session, Status::Stopped, note).await?;
        Ok(session)
    }

    /// Start a stopped (or failed) session again.
    #[tracing::instrument(skip(self))]
    pub async fn start(&self, id_or_name: &str) -> Result<Session, SessionError> {
        let (mut session, _g) = self.locked(id_or_name).await?;
        Self::require(&session, &[Status::Stopped, Status::Failed], "start")?;
        self.restart(&mut session).await?;
        Ok(session)
    }

    async fn restart(&self, session: &mut Session) -> Result<(), SessionError> {
        let features = self.features(&session.backend).await?;
        if !features.resume {
            return Err(SessionError::Conflict(format!(
                "the {} backend cannot start a stopped session again; delete `{}` and create a new one",
                session.backend, session.name
            )));
        }
        self.start_resource(session, &features).await?;
        session.error = None;
        session.agent_status = AgentStatus::Working;
        self.set_status(session, Status::Running, None).await
    }

    /// Ask the backend to start the session's resource (one that runs stays
    /// as it is; a remote backend opens its way to the proxy again).
    async fn start_resource(&self, session: &mut Session, features: &BackendFeatures) -> Result<(), SessionError> {
        let egress = self.open_egress(session).await?;
        let (spec, paths) = self.spec(session, features, true, egress).await?;
        let resource = session.resource_id.clone().unwrap_or_default();
        let info = {
            let lock = self.lock_for(&backend_key(&session.backend));
            let _one_at_a_time = lock.lock().await;
            let mut backend = self.runtime.backend(&session.backend).await?;
            backend.serve_session(&session.id, &paths);
            backend.start(&resource, &spec).await?
        };
        session.resource_id = Some(info.resource_id);
        Ok(())
    }

    /// Archive a session: stop it and hide it from `list`.
    #[tracing::instrument(skip(self))]
    pub async fn archive(&self, id_or_name: &str) -> Result<Session, SessionError> {
        let (mut session, _g) = self.locked(id_or_name).await?;
        Self::require(&session, &[Status::Running, Status::Stopped, Status::Failed], "archive")?;
        let note = self
            .sync_around(&session, async {
                if let (Status::Running, Some(r)) = (session.status, &session.resource_id) {
                    self.runtime.backend(&session.backend).await?.stop(r).await?;
                }
                Ok(())
            })
            .await?;
        session.agent_status = AgentStatus::Idle;
        self.close_egress(&session);
        self.set_status(&mut session, Status::Archived, note).await?;
        Ok(session)
    }

    /// Bring an archived session back (stopped).
    #[tracing::instrument(skip(self))]
    pub async fn unarchive(&self, id_or_name: &str) -> Result<Session, SessionError> {
        let (mut session, _g) = self.locked(id_or_name).await?;
        Self::require(&session, &[Status::Archived], "unarchive")?;
        self.set_status(&mut session, Status::Stopped, None).await?;
        Ok(session)
    }

    /// Change the access mode; the proxy applies it to the next request.
    #[tracing::instrument(skip(self))]
    pub async fn set_access_mode(&self, id_or_name: &str, mode: AccessMode) -> Result<Session, SessionError> {
        let (mut session, _g) = self.locked(id_or_name).await?;
        session.access_mode = mode;
        self.save(&mut session, EventKind::AccessModeChanged { to: mode }, None).await?;
        if let Some(egress) = &self.egress {
            egress.set_access_mode(&session.id, mode);
        }
        Ok(session)
    }

    /// Change where the session may connect; the proxy applies it to the
    /// next request, and ends open connections if a host was taken away.
    #[tracing::instrument(skip(self))]
    pub async fn set_egress(&self, id_or_name: &str, policy: EgressPolicy) -> Result<Session, SessionError> {
        let policy = policy.normalised().map_err(SessionError::Invalid)?;
        let (mut session, _g) = self.locked(id_or_name).await?;
        session.egress = policy.clone();
        self.save(&mut session, EventKind::EgressChanged { to: policy.clone() }, None).await?;
        if let Some(egress) = &self.egress {
            egress.set_egress(&session.id, &policy);
        }
        Ok(session)
    }

    /// Delete a session: its backend resource, worktree and branch (kept if it
    /// has commits of its own — the returned note says so). With `force`, a
    /// backend that cannot delete does not stop the rest.
    #[tracing::instrument(skip(self))]
    pub async fn delete(&self, id_or_name: &str, force: bool) -> Result<String, SessionError> {
        let (session, _g) = self.locked(id_or_name).await?;
        // A remote session's commits come back before its resource goes;
        // if they cannot, the resource (and the work in it) stays.
        let remote = matches!(self.remote(&session).await, Ok(true));
        if remote
            && let Some(why) = Self::note(&session, self.export_branch(&session).await.err())
            && !force
        {
            return Err(SessionError::Failed(format!(
                "{why}; the session's work is still where it runs (use --force to delete it anyway)"
            )));
        }
        if let Some(r) = &session.resource_id {
            // Serialised per backend like creates: zellij 0.45 has left a session
            // running when several were killed and deleted at the same instant.
            let lock = self.lock_for(&backend_key(&session.backend));
            let one_at_a_time = lock.lock().await;
            let deleted = match self.runtime.backend(&session.backend).await {
                Ok(mut b) => b.delete(r).await.map_err(SessionError::from),
                Err(e) => Err(e.into()),
            };
            drop(one_at_a_time);
            if let Err(e) = deleted {
                if !force {
                    return Err(SessionError::Failed(format!("{e} (use --force to delete the session anyway)")));
                }
                tracing::warn!(session = %session.name, "backend delete failed, continuing (--force): {e}");
            }
        }
        self.close_egress(&session);
        let killed = self.runtime.end_session(&session.id);
        if killed > 0 {
            tracing::info!(session = %session.name, "killed {killed} detached processes its backend had started");
        }
        if !remote
            && let Some(why) = Self::note(&session, self.sync_clone(&session).await.err())
            && !force
        {
            return Err(SessionError::Failed(format!(
                "{why}; the session's work is still in {} (use --force to delete it anyway)",
                session.worktree.display()
            )));
        }
        let kept = self.remove_worktree(&session).await?;
        let _ = tokio::fs::remove_dir_all(self.session_dir(&session)).await;
        let note = if kept {
            format!("Deleted {}; kept branch {} because it has commits not on its base.", session.name, session.branch)
        } else {
            format!("Deleted {}.", session.name)
        };
        let event = Self::event(&session, EventKind::Deleted, Some(note.clone()));
        let (id, name, ev) = (session.id.clone(), session.name.clone(), to_json(&event)?);
        let seq = self.blocking(move |s| s.delete_session(&id, &name, &ev)).await?;
        self.publish(event, seq);
        Ok(note)
    }

    /// Compare every stored session with its backend: finish interrupted
    /// creates, mark vanished resources, restart stopped ones where possible.
    /// Returns one line per change, by session name.
    ///
    /// Sessions are checked [`RECONCILE_AT_ONCE`] at a time, each on its own:
    /// a backend that fails, traps or runs out its deadline leaves its
    /// sessions as they were, with a line saying why, and never stops the
    /// others being checked (nor makes them wait behind it).
    #[tracing::instrument(skip(self))]
    pub async fn reconcile(&self) -> Result<Vec<String>, SessionError> {
        use futures_util::StreamExt;
        let sessions = self.list(false).await?;
        let mut notes: Vec<String> = futures_util::stream::iter(sessions)
            .map(|s| async move {
                let checked = async {
                    let (mut session, _g) = self.locked(&s.id).await?;
                    self.reconcile_one(&mut session).await
                };
                match checked.await {
                    Ok(note) => note.map(|note| format!("{}: {note}", s.name)),
                    // Deleted meanwhile: nothing to reconcile.
                    Err(SessionError::NotFound(_)) => None,
                    Err(e) => {
                        tracing::warn!(session = %s.name, backend = %s.backend, "reconcile: {e}");
                        Some(format!("{}: not checked, left as it was: {e}", s.name))
                    }
                }
            })
            .buffer_unordered(RECONCILE_AT_ONCE)
            .filter_map(std::future::ready)
            .collect()
            .await;
        notes.sort();
        Ok(notes)
    }

    /// Reconcile in the background, as the daemon does at start-up so its
    /// API answers at once; [`Manager::reconciled`] says when it has finished.
    pub fn reconcile_in_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let manager = self.clone();
        tokio::spawn(async move {
            match manager.reconcile().await {
                Ok(changes) => changes.iter().for_each(|c| tracing::info!("reconcile: {c}")),
                Err(e) => tracing::error!("reconciling the sessions failed: {e}"),
            }
            manager.reconciled.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    }

    /// Whether the start-up reconcile ([`Manager::reconcile_in_background`]) has finished.
    pub fn reconciled(&self) -> bool {
        self.reconciled.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn reconcile_one(&self, session: &mut Session) -> Result<Option<String>, SessionError> {
        if session.status == Status::Creating {
            let why = "the daemon stopped while this session was being created; it was cleaned up";
            // What the create made: its clone (removed only if it exists, its
            // branch only without commits of its own) and the resource it
            // recorded before asking the backend — nothing else.
            let made = Made { clone: true, resource: session.resource_id.clone(), stray: None };
            self.undo_create(session, &made, why).await;
            if let Some(resource) = &made.resource {
                self.settle_deleted(&session.backend, resource).await;
            }
            return Ok(Some(why.into()));
        }
        if matches!(session.status, Status::Running | Status::Stopped) && session.proxy_port.is_some() {
            // A restarted daemon reopens the listener on the port the session's agent already uses.
            if let Err(e) = self.open_egress(session).await {
                tracing::warn!(session = %session.name, "{e}");
            }
        }
        if session.status != Status::Running {
            return Ok(None);
        }
        let Some(resource) = session.resource_id.clone() else { return Ok(None) };
        let state = self.runtime.backend(&session.backend).await?.status(&resource).await?;
        match state.state {
            ResourceState::Running | ResourceState::Starting => {
                // A remote session's way out (its pod's tunnel) lives in the
                // daemon: a restarted one opens it again.
                let features = self.features(&session.backend).await?;
                if !features.remote_workspace {
                    return Ok(None);
                }
                self.start_resource(session, &features).await?;
                Ok(Some("runs on; its way to the proxy was opened again".into()))
            }
            ResourceState::Missing | ResourceState::Failed => Ok(Some(self.fail(session, &resource, &state).await?)),
            ResourceState::Stopped => match self.restart(session).await {
                Ok(()) => Ok(Some("was stopped; restarted".into())),
                Err(e) => {
                    self.set_status(session, Status::Stopped, Some(e.to_string())).await?;
                    Ok(Some(format!("was stopped and could not be restarted: {e}")))
                }
            },
        }
    }

    /// Mark a running session whose resource is gone or broken (`state`, as
    /// its backend said) failed; what its error says.
    async fn fail(
        &self,
        session: &mut Session,
        resource: &str,
        state: &wit::ResourceStatus,
    ) -> Result<String, SessionError> {
        let what = if state.state == ResourceState::Missing { "gone" } else { "broken" };
        let detail = state.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        let note =
            format!("its {} resource {resource} is {what}{detail}; start it again or delete it", session.backend);
        session.error = Some(note.clone());
        session.agent_status = AgentStatus::Unknown;
        self.set_status(session, Status::Failed, Some(note.clone())).await?;
        Ok(note)
    }

    /// What session `id` runs on changed where it runs (a backend's watch
    /// saw it): ask the backend, and mark a running session whose resource
    /// failed or went failed, one whose resource stopped stopped, a failed
    /// one whose resource runs again running.
    pub async fn resource_changed(&self, id: &str) -> Result<(), SessionError> {
        // A session deleted since has no health to follow.
        let Ok((mut session, _g)) = self.locked(id).await else { return Ok(()) };
        let Some(resource) = session.resource_id.clone() else { return Ok(()) };
        if !matches!(session.status, Status::Running | Status::Failed) {
            return Ok(());
        }
        let state = self.runtime.backend(&session.backend).await?.status(&resource).await?;
        match (session.status, state.state) {
            (Status::Running, ResourceState::Missing | ResourceState::Failed) => {
                let note = self.fail(&mut session, &resource, &state).await?;
                tracing::warn!(session = %session.name, "{note}");
            }
            (Status::Failed, ResourceState::Running) => {
                session.error = None;
                let note = format!("its {} resource runs again", session.backend);
                self.set_status(&mut session, Status::Running, Some(note)).await?;
            }
            // Ended where it runs (the agent exited; a Sandbox reached its
            // shutdownTime): stopped, as a stop leaves it.
            (Status::Running, ResourceState::Stopped) => {
                let detail = state.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
                let note =
                    format!("its {} resource {resource} stopped{detail}; start it again to go on", session.backend);
                session.agent_status = AgentStatus::Unknown;
                tracing::info!(session = %session.name, "{note}");
                self.set_status(&mut session, Status::Stopped, Some(note)).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// After undoing a create the daemon was killed in, make sure its resource
    /// stays gone: a backend may have started making it (a zellij server
    /// forked before the kill) and finish just after the delete. Deletes it
    /// again until it has been absent for a second (at most about 5 s).
    async fn settle_deleted(&self, backend_id: &str, resource: &str) {
        let Ok(mut backend) = self.runtime.backend(backend_id).await else { return };
        let (mut absent, mut tries) = (0, 0);
        while absent < 4 && tries < 20 {
            tries += 1;
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            match backend.list_resources().await {
                Ok(list) if list.iter().any(|r| r == resource) => {
                    absent = 0;
                    tracing::info!("{resource} appeared after its create was undone; deleting it again");
                    if let Err(e) = backend.delete(resource).await {
                        tracing::warn!("could not delete {resource}: {e}");
                    }
                }
                Ok(_) => absent += 1,
                Err(e) => {
                    tracing::warn!("could not list the backend's resources: {e}");
                    return;
                }
            }
            if backend.is_poisoned() {
                let Ok(fresh) = self.runtime.backend(backend_id).await else { return };
                backend = fresh;
            }
        }
    }

    /// A session and its backend resource id, for operations that need one.
    async fn with_resource(&self, id_or_name: &str) -> Result<(Session, String), SessionError> {
        let session = self.get(id_or_name).await?;
        let resource = session
            .resource_id
            .clone()
            .ok_or_else(|| SessionError::Conflict(format!("session `{}` has no backend resource", session.name)))?;
        Ok((session, resource))
    }

    /// The argv that attaches a terminal to a session.
    pub async fn attach_argv(&self, id_or_name: &str) -> Result<Vec<String>, SessionError> {
        let (session, resource) = self.with_resource(id_or_name).await?;
        let mut backend = self.runtime.backend(&session.backend).await?;
        if !backend.info().await?.features.attach {
            return Err(SessionError::Conflict(format!(
                "the {} backend gives no way to attach to a session; follow it with `clauderon history --follow {}`",
                session.backend, session.name
            )));
        }
        let argv = backend.attach_argv(&resource).await?;
        check_attach_argv(&session.backend, &backend.plugin().grants, &argv)?;
        Ok(argv)
    }

    /// What answers the permission prompt session `id_or_name`'s agent is
    /// waiting on: the keys the agent component names for allowing
    /// (`approve`) or refusing it, typed through [`Self::attach_argv`].
    pub async fn approval_keys(&self, id_or_name: &str, approve: bool) -> Result<String, SessionError> {
        let session = self.get(id_or_name).await?;
        if session.status != Status::Running || session.agent_status != AgentStatus::WaitingForApproval {
            let agent_status = serde_json::to_value(session.agent_status).unwrap_or_default();
            return Err(SessionError::Conflict(format!(
                "session `{}` is not waiting for approval (its agent is {})",
                session.name,
                agent_status.as_str().unwrap_or("unknown")
            )));
        }
        let keys = self.runtime.agent(&session.agent).await?.info().await?.approval_keys.ok_or_else(|| {
            SessionError::Conflict(format!(
                "the {} agent names no keys that answer its prompts: answer in its terminal (`clauderon attach {}`)",
                session.agent, session.name
            ))
        })?;
        let keys = if approve { keys.approve } else { keys.deny };
        if keys.is_empty() || keys.len() > MAX_APPROVAL_KEYS {
            return Err(SessionError::Failed(format!(
                "agent `{}` names {} bytes of keys to {} (1 to {MAX_APPROVAL_KEYS} allowed)",
                session.agent,
                keys.len(),
                if approve { "approve" } else { "deny" }
            )));
        }
        Ok(keys)
    }

    /// The keys of an approval were typed: until the agent's next status
    /// event says otherwise, it is working (approved) or waiting for the
    /// user's next message (denied). Claude Code, Codex and Gemini CLI send
    /// no status event when a prompt is refused, so without this the status
    /// would stay waiting-for-approval.
    pub async fn approval_answered(&self, id_or_name: &str, approve: bool) -> Result<(), SessionError> {
        let id = self.get(id_or_name).await?.id;
        let (mut session, _g) = self.locked(&id).await?;
        if session.agent_status != AgentStatus::WaitingForApproval {
            return Ok(()); // the agent already said what it does now
        }
        let status = if approve { AgentStatus::Working } else { AgentStatus::WaitingForInput };
        session.agent_status = status;
        let note = if approve { None } else { self.sync(&session).await };
        self.save(&mut session, EventKind::AgentStatusChanged { to: status }, note).await
    }

    /// The last `lines` lines of a session's output.
    pub async fn output(&self, id_or_name: &str, lines: u32) -> Result<String, SessionError> {
        let (session, resource) = self.with_resource(id_or_name).await?;
        Ok(self.runtime.backend(&session.backend).await?.output(&resource, lines).await?)
    }

    /// Stored events after `seq`, oldest first.
    pub async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, SessionError> {
        let logged = self.blocking(move |s| s.events_after(seq, limit)).await?;
        Ok(logged
            .into_iter()
            .filter_map(|l| serde_json::from_slice::<Event>(&l.data).ok().map(|e| Event { seq: l.seq, ..e }))
            .collect())
    }
}

/// Where the agent starts: the worktree, or its subdirectory (no trailing slash).
fn workdir_of(session: &Session) -> PathBuf {
    if session.subdir.as_os_str().is_empty() {
        session.worktree.clone()
    } else {
        session.worktree.join(&session.subdir)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, SessionError> {
    serde_json::to_vec(v).map_err(|e| SessionError::Failed(format!("encoding failed: {e}")))
}

/// Write the launch plan's files under the agent's config home (which
/// exists) — a directory the session can write, so through [`Confined`]: a
/// name the session turned into a symlink is replaced, never followed.
async fn place_files(config_home: &Path, plan: &LaunchPlan) -> Result<(), SessionError> {
    let home = config_home.to_path_buf();
    let files: Vec<(String, Vec<u8>, u32)> = plan
        .files
        .iter()
        .map(|f| (f.path.clone(), f.contents.clone(), if f.mode == 0 { 0o600 } else { f.mode & 0o777 }))
        .collect();
    tokio::task::spawn_blocking(move || -> Result<(), SessionError> {
        let dir = Confined::open(&home).map_err(|e| SessionError::Failed(e.to_string()))?;
        for (path, contents, mode) in files {
            dir.write(Path::new(&path), &contents, mode).map_err(|e| {
                SessionError::Failed(format!("placing the agent's file {path} in the session's config home: {e}"))
            })?;
        }
        Ok(())
    })
    .await
    .map_err(|e| SessionError::Failed(format!("placing the agent's files: {e}")))?
}

/// An attach argv runs in the user's own terminal, so it must start with an
/// executable the backend was granted: a bare name in its `process` grant, or
/// the engine client of its `container` (`docker`) or `kube` (`kubectl`) grant.
fn check_attach_argv(
    backend: &str,
    grants: &clauderon_runtime::Capabilities,
    argv: &[String],
) -> Result<(), SessionError> {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let mut allowed: Vec<&str> = grants.process.iter().map(String::as_str).collect();
    allowed.extend(grants.container.then_some("docker"));
    allowed.extend(grants.kube.then_some("kubectl"));
    if program.is_empty() || program.contains('/') || !allowed.contains(&program) {
        return Err(SessionError::Failed(format!(
            "the {backend} backend asked to attach by running `{program}`, which it was not granted (it may run: \
             {}); clauderon runs nothing else in your terminal",
            if allowed.is_empty() { "nothing".to_string() } else { allowed.join(", ") }
        )));
    }
    Ok(())
}

/// What the runtime's `kube` asks of sessions (branches, proxies), from a
/// manager that may be gone (the runtime outlives nothing it is given: no cycle).
pub struct ManagerSupport(pub std::sync::Weak<Manager>);

impl ManagerSupport {
    fn manager(&self) -> Result<Arc<Manager>, String> {
        self.0.upgrade().ok_or_else(|| "the daemon is stopping".to_string())
    }
}

impl clauderon_runtime::SessionSupport for ManagerSupport {
    fn bundle<'a>(
        &'a self,
        session_id: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<clauderon_runtime::BranchBundle, String>> + Send + 'a>> {
        Box::pin(async move {
            let manager = self.manager()?;
            manager.branch_bundle(session_id).await.map_err(|e| e.to_string())
        })
    }

    fn branch<'a>(
        &'a self,
        session_id: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<clauderon_runtime::SessionBranch, String>> + Send + 'a>> {
        Box::pin(async move {
            let manager = self.manager()?;
            let session = manager.get(session_id).await.map_err(|e| e.to_string())?;
            Ok(clauderon_runtime::SessionBranch { branch: session.branch, base: session.base_commit })
        })
    }

    fn receive<'a>(
        &'a self,
        session_id: &'a str,
        bundle: clauderon_runtime::Incoming,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            let manager = self.manager()?;
            manager.receive_branch(session_id, bundle).await.map_err(|e| e.to_string())
        })
    }

    fn door<'a>(
        &'a self,
        session_id: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<clauderon_runtime::SessionDoor>, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let manager = self.manager()?;
            manager.door(session_id).await.map_err(|e| e.to_string())
        })
    }

    fn proxy_socket<'a>(
        &'a self,
        session_id: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<PathBuf, String>> + Send + 'a>> {
        Box::pin(async move {
            let manager = self.manager()?;
            manager.proxy_socket(session_id).await.map_err(|e| e.to_string())
        })
    }
    fn resource_changed<'a>(&'a self, session_id: &'a str) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let Ok(manager) = self.manager() else { return };
            if let Err(e) = manager.resource_changed(session_id).await {
                tracing::warn!(session = %session_id, "following its resource's health: {e}");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lock_registry_keeps_only_locks_in_use() {
        let locks = Locks::default();
        for i in 0..100 {
            let lock = locks.get(&format!("session-{i}"));
            let _held = lock.lock().await;
        }
        assert!(locks.len() <= 1, "unused locks are dropped: {} kept", locks.len());

        // A held lock survives other calls and still excludes.
        let held = locks.get("busy").lock_owned().await;
        for i in 0..10 {
            let _ = locks.get(&format!("other-{i}"));
        }
        assert!(locks.get("busy").try_lock().is_err(), "the held lock is the one handed out");
        drop(held);
        assert!(locks.get("busy").try_lock().is_ok());
    }
}
