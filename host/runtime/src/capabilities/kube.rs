//! `kube`: the configured Kubernetes cluster, over kube-rs. The host holds
//! the cluster's credentials (kubeconfig, `KUBECONFIG` or the in-cluster
//! service account) and the component never sees them: it sends and reads
//! objects as JSON, in the one configured namespace, and every object it
//! sends passes [`super::kube_policy`] first. It sees and changes only
//! objects labelled as its own.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, AttachParams, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch,
    PatchParams, PostParams, Preconditions,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::kube_health as health;
use super::kube_policy::{self, KindRef, Scope};
use super::kube_tunnel as tunnel;
use crate::bindings::PluginError;
use crate::bindings::kube::{CopySource, ExecOutput, Host};
use crate::error::HostError;
use crate::state::HostState;

type Res<T> = Result<T, HostError>;

/// The most log text `logs` returns.
const MAX_LOG: usize = 1 << 20;

/// The most of stdout, and of stderr, `exec` keeps.
const MAX_EXEC_OUTPUT: usize = 1 << 20;

/// How often `wait-for-pod` looks at the pod and its events.
const POLL: Duration = Duration::from_millis(250);

/// Events, which components read (about their own pods) but never write.
const EVENT: KindRef = KindRef { api_version: "v1", kind: "Event", plural: "events" };

/// The field manager of everything clauderon writes.
const FIELD_MANAGER: &str = "clauderon";

/// Where the cluster is and what components may do there: `[backends.kubernetes]`.
#[derive(Debug, Clone, Default)]
pub struct KubeSettings {
    /// A kubeconfig file; without one, `KUBECONFIG`, then `~/.kube/config`,
    /// then the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; without one, its current context.
    pub context: Option<String>,
    /// The one namespace every operation uses.
    pub namespace: String,
    /// Whether pods may mount a service-account token.
    pub service_account_token: bool,
}

/// A session's branch as `copy-in` sends it: a git bundle the daemon made
/// from the user's repository.
#[derive(Debug, Clone)]
pub struct BranchBundle {
    /// The bundle file, made for one copy and removed once opened (the
    /// component never sees the path).
    pub file: PathBuf,
    /// The branch it holds, checked out in the pod.
    pub branch: String,
    /// The repository's `origin`, given to the pod's clone.
    pub origin: Option<String>,
}

/// A session's branch as `copy-out` asks a pod for it.
#[derive(Debug, Clone)]
pub struct SessionBranch {
    /// The branch's name.
    pub branch: String,
    /// The commit the session started from (the pod's bundle leaves out
    /// what it has: the user's repository has it).
    pub base: String,
}

/// The proxy's direct door, as one session's pods use it.
#[derive(Debug, Clone)]
pub struct SessionDoor {
    /// Where they dial (`IP:PORT`).
    pub address: String,
    /// The session's door file: its line with its door key, then
    /// clauderon's CA certificate.
    pub file: String,
}

/// A reader of what a pod sends.
pub type Incoming = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// What the daemon does with sessions for `kube`: their branches (`copy-in`,
/// `copy-out`) and their proxy (`open-tunnel`).
pub trait SessionSupport: Send + Sync {
    /// A bundle of session `session_id`'s branch.
    fn bundle<'a>(
        &'a self,
        session_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<BranchBundle, String>> + Send + 'a>>;

    /// Session `session_id`'s branch and base commit.
    fn branch<'a>(
        &'a self,
        session_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<SessionBranch, String>> + Send + 'a>>;

    /// Take a bundle of the session's branch from where it runs (`bundle`,
    /// read to its end or to a limit) into the session's clone; the
    /// branch's commit there now.
    fn receive<'a>(
        &'a self,
        session_id: &'a str,
        bundle: Incoming,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

    /// The proxy's direct door for session `session_id`, its proxy opened
    /// if it was not; none where the daemon has no door.
    fn door<'a>(
        &'a self,
        session_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<SessionDoor>, String>> + Send + 'a>>;

    /// The unix socket of session `session_id`'s proxy, opened if it was not.
    fn proxy_socket<'a>(
        &'a self,
        session_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<PathBuf, String>> + Send + 'a>>;

    /// What session `session_id` runs on changed where it runs (its pod, as
    /// a watch saw it): ask its backend's `status` and record the answer.
    fn resource_changed<'a>(&'a self, session_id: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// The host service behind `kube`: the settings and, once connected, the
/// client; what the daemon does with sessions (set by it); and the
/// sessions' tunnels and watches.
pub struct KubeService {
    settings: Option<KubeSettings>,
    client: tokio::sync::OnceCell<kube::Client>,
    support: OnceLock<Arc<dyn SessionSupport>>,
    tunnels: tunnel::Tunnels,
    watches: health::Watches,
}

impl KubeService {
    /// A service for the cluster `settings` names; `None`: no cluster is
    /// configured and every call says how to configure one.
    pub fn new(settings: Option<KubeSettings>) -> Self {
        Self {
            settings,
            client: tokio::sync::OnceCell::new(),
            support: OnceLock::new(),
            tunnels: Default::default(),
            watches: Default::default(),
        }
    }

    /// What the daemon does with sessions (once; later calls are ignored).
    pub fn set_support(&self, support: Arc<dyn SessionSupport>) {
        let _ = self.support.set(support);
    }

    fn settings(&self) -> Result<&KubeSettings, PluginError> {
        self.settings.as_ref().ok_or_else(|| {
            PluginError::Unsupported(
                "no Kubernetes cluster is configured: set [backends.kubernetes] (namespace, and kubeconfig or context) in config.toml".into(),
            )
        })
    }

    /// The client (connected on first success; a cluster that was unreachable
    /// is tried again on the next call).
    async fn client(&self) -> Result<&kube::Client, PluginError> {
        let settings = self.settings()?;
        self.client
            .get_or_try_init(|| async {
                let options = KubeConfigOptions { context: settings.context.clone(), ..Default::default() };
                let mut config = match &settings.kubeconfig {
                    Some(path) => {
                        let file = {
                            let path = path.clone();
                            tokio::task::spawn_blocking(move || Kubeconfig::read_from(&path))
                                .await
                                .map_err(|e| format!("reading the kubeconfig: {e}"))?
                        }
                        .map_err(|e| format!("the kubeconfig {}: {}", path.display(), config_error(&e)))?;
                        kube::Config::from_custom_kubeconfig(file, &options)
                            .await
                            .map_err(|e| format!("the kubeconfig {}: {}", path.display(), config_error(&e)))?
                    }
                    None if settings.context.is_some() => kube::Config::from_kubeconfig(&options)
                        .await
                        .map_err(|e| format!("the kubeconfig (KUBECONFIG or ~/.kube/config): {}", config_error(&e)))?,
                    None => kube::Config::infer().await.map_err(|_| {
                        "no cluster found: no kubeconfig (KUBECONFIG, ~/.kube/config) and not inside a cluster; \
                         set [backends.kubernetes] kubeconfig"
                            .to_string()
                    })?,
                };
                config.connect_timeout = Some(Duration::from_secs(10));
                config.read_timeout = Some(Duration::from_secs(60));
                kube::Client::try_from(config).map_err(|e| format!("connecting to the cluster: {}", describe(&e)))
            })
            .await
            .map_err(|message| {
                tracing::warn!("kube: {message}");
                PluginError::Failed(message)
            })
    }

    fn api(client: &kube::Client, k: KindRef, namespace: &str) -> Api<DynamicObject> {
        let (group, version) = k.api_version.split_once('/').unwrap_or(("", k.api_version));
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, k.kind), k.plural);
        Api::namespaced_with(client.clone(), namespace, &resource)
    }

    /// The object `name` of kind `k`, whoever's it is.
    async fn lookup(&self, scope: &Scope, k: KindRef, name: &str) -> Result<Option<Value>, PluginError> {
        let api = Self::api(self.client().await?, k, &scope.namespace);
        let found = api.get_opt(name).await.map_err(|e| cluster_error(&format!("reading {} {name}", k.kind), e))?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or_default()))
    }

    /// The object `name` of kind `k` if it is the component's.
    async fn own(&self, scope: &Scope, k: KindRef, name: &str) -> Result<Option<Value>, PluginError> {
        let Some(found) = self.lookup(scope, k, name).await? else { return Ok(None) };
        Ok(self.is_own(scope, k, &found).await?.then_some(found))
    }

    /// Whether `object` (of kind `k`) is the component's: labelled as its
    /// own, or a Sandbox a claim of its own took from a warm pool (which
    /// carries the pool's and the claim's marks, not the component's label;
    /// the claim must be the one its owner reference names, by uid).
    async fn is_own(&self, scope: &Scope, k: KindRef, object: &Value) -> Result<bool, PluginError> {
        if kube_policy::owned(object, scope) {
            return Ok(true);
        }
        let Some((claim, uid)) = kube_policy::claimed_by(object).filter(|_| k == kube_policy::SANDBOX) else {
            return Ok(false);
        };
        let found = self.lookup(scope, kube_policy::SANDBOX_CLAIM, &claim).await?;
        Ok(found.is_some_and(|c| kube_policy::owned(&c, scope) && c["metadata"]["uid"].as_str() == Some(uid.as_str())))
    }

    /// What the daemon does with sessions; without a daemon, `unsupported`
    /// saying what this host `cannot` do.
    fn support(&self, cannot: &str) -> Result<&Arc<dyn SessionSupport>, PluginError> {
        self.support.get().ok_or_else(|| PluginError::Unsupported(format!("this host {cannot} (no daemon)")))
    }

    /// Pod `pod`, which must be the component's: to a component, another's
    /// pod does not exist.
    async fn own_pod(&self, scope: &Scope, pod: &str) -> Result<Value, PluginError> {
        self.own(scope, kube_policy::POD, pod)
            .await?
            .ok_or_else(|| PluginError::NotFound(format!("pod {pod} (of this component) does not exist")))
    }

    /// What a tunnel or a watch follows of pod `pod` (the component's:
    /// checked): the pods of its namespace and the pod's uid, the only pod
    /// it will ever follow.
    async fn followed_pod(&self, scope: &Scope, pod: &str) -> Result<(Api<Pod>, String), PluginError> {
        let found = self.own_pod(scope, pod).await?;
        let uid = found["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        Ok((Api::namespaced(self.client().await?.clone(), &scope.namespace), uid))
    }
}

/// Run `argv` in `pod` (the component's: checked) feeding it `input`, until
/// it ends or `budget` passes; stdout goes to `sink` if given (a sink that
/// stops taking it ends the command), else it is kept as stderr is, up to
/// [`MAX_EXEC_OUTPUT`] each.
#[allow(clippy::too_many_arguments)]
async fn run_in_pod(
    service: &KubeService,
    scope: &Scope,
    pod: &str,
    container: Option<String>,
    argv: Vec<String>,
    input: Option<Incoming>,
    sink: Option<Pin<Box<dyn tokio::io::AsyncWrite + Send>>>,
    budget: Duration,
) -> Result<ExecOutput, PluginError> {
    use tokio::io::AsyncWriteExt;
    service.own_pod(scope, pod).await?;
    let api: Api<Pod> = Api::namespaced(service.client().await?.clone(), &scope.namespace);
    let params = AttachParams { container, stdin: input.is_some(), stdout: true, stderr: true, ..Default::default() };
    let doing = format!("running {:?} in pod {pod}", argv.first().map(String::as_str).unwrap_or_default());
    let work = async {
        let mut process = api.exec(pod, argv, &params).await.map_err(|e| cluster_error(&doing, e))?;
        let stdin = process.stdin();
        let feed = async move {
            if let (Some(mut input), Some(mut writer)) = (input, stdin) {
                tokio::io::copy(&mut input, &mut writer).await?;
                // Dropping the writer closes the pod's stdin (v5.channel.k8s.io).
                writer.shutdown().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let stdout = process.stdout();
        let drain = async move {
            let Some(mut sink) = sink else { return Ok(read_capped(stdout).await) };
            if let Some(mut stdout) = stdout {
                tokio::io::copy(&mut stdout, &mut sink).await?;
            }
            sink.shutdown().await?;
            Ok::<_, std::io::Error>((Vec::new(), false))
        };
        let status = process.take_status();
        let (fed, drained, (stderr, cut_err)) = tokio::join!(feed, drain, read_capped(process.stderr()));
        let (stdout, cut_out) =
            drained.map_err(|e| PluginError::Failed(format!("{doing}: its output could not be taken: {e}")))?;
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        let _ = process.join().await;
        if let Err(e) = fed {
            tracing::debug!("{doing}: its stdin closed early: {e}");
        }
        Ok(ExecOutput { exit_code: exit_code(status.as_ref()), stdout, stderr, truncated: cut_out || cut_err })
    };
    tokio::time::timeout(budget, work)
        .await
        .map_err(|_| PluginError::Failed(format!("{doing}: it did not end within {} ms", budget.as_millis())))?
}

/// Everything `reader` gives, up to [`MAX_EXEC_OUTPUT`] (the rest is read and
/// dropped); whether it was cut.
async fn read_capped(reader: Option<impl tokio::io::AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let Some(mut reader) = reader else { return (Vec::new(), false) };
    let (mut kept, mut buf, mut cut) = (Vec::new(), vec![0u8; 16 << 10], false);
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = MAX_EXEC_OUTPUT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        cut |= n > room;
    }
    (kept, cut)
}

/// The exit code a remote command's final `Status` gives: 0 on success, the
/// `ExitCode` cause of a `NonZeroExitCode` failure.
fn exit_code(status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>) -> Option<i32> {
    let status = status?;
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    let causes = status.details.as_ref()?.causes.as_ref()?;
    causes.iter().find(|c| c.reason.as_deref() == Some("ExitCode"))?.message.as_deref()?.parse().ok()
}

/// A cluster's error as a plugin error: the API server's own message and
/// reason, or what went wrong on the way there (see [`describe`]). Said in
/// the daemon's log too, where the component's text may not reach the user.
fn cluster_error(doing: &str, err: kube::Error) -> PluginError {
    match err {
        kube::Error::Api(status) if status.code == 404 => PluginError::NotFound(format!("{doing}: {}", status.message)),
        kube::Error::Api(status) => PluginError::Failed(format!(
            "{doing}: the cluster said {} ({}, {})",
            status.message, status.reason, status.code
        )),
        other => {
            let message = format!("{doing}: {}", describe(&other));
            tracing::warn!("kube: {message}");
            PluginError::Failed(message)
        }
    }
}

/// What went wrong on the way to the cluster, in words that cannot carry a
/// credential: kube-rs's own text of an authentication failure includes
/// what the kubeconfig's exec plugin printed (a token, on success) and a
/// token file's value may appear in a parse error, so those are never
/// passed on, to the component or to the log; a transport error's causes
/// (refused, timed out, a certificate the cluster's CA did not sign) are.
pub(super) fn describe(err: &kube::Error) -> String {
    use std::error::Error as _;
    let auth = |e: &kube::client::AuthError| {
        match e {
        kube::client::AuthError::AuthExecStart(io) => format!("the kubeconfig's exec credential plugin did not start ({io})"),
        kube::client::AuthError::AuthExecRun { out, .. } => {
            format!("the kubeconfig's exec credential plugin failed ({}); run it yourself to see why", out.status)
        }
        _ => "the kubeconfig's credentials could not be used (its user entry: token, token file, exec plugin or client certificate)".into(),
    }
    };
    match err {
        kube::Error::Auth(e) => auth(e),
        kube::Error::Api(status) => format!("the cluster said {} ({}, {})", status.message, status.reason, status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            let mut causes = Vec::new();
            let mut source = err.source();
            while let Some(cause) = source {
                if let Some(e) = cause.downcast_ref::<kube::client::AuthError>() {
                    return auth(e);
                }
                causes.push(cause.to_string());
                source = cause.source();
            }
            causes.dedup();
            format!("cannot reach the cluster's API server ({})", causes.join(": "))
        }
        kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) | kube::Error::LinesCodecMaxLineLengthExceeded => {
            "the cluster's answer could not be read".into()
        }
        kube::Error::UpgradeConnection(e) => format!("the cluster refused the stream ({e})"),
        _ => "the request to the cluster could not be made".into(),
    }
}

/// A kubeconfig's error without anything read from the file (a YAML error
/// can quote it).
fn config_error(err: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as E;
    match err {
        E::Parse(_) => "not a valid kubeconfig (YAML)".into(),
        other => other.to_string(),
    }
}

/// `path` if it is absolute without `..` (`what` names it in the error).
fn absolute(what: &str, path: &str) -> Result<(), PluginError> {
    if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return Err(PluginError::InvalidInput(format!("the {what} {path:?} must be an absolute path without `..`")));
    }
    Ok(())
}

/// How a command in a pod ended, for an error: `exit N`, or that the
/// cluster did not say.
fn ended(code: Option<i32>) -> String {
    code.map_or("no exit code".to_string(), |c| format!("exit {c}"))
}

/// `path`, if it is inside one of the session's own paths (`own`),
/// wherever its links lead.
async fn session_path(own: &[PathBuf], path: &str) -> Result<PathBuf, PluginError> {
    let canonical = tokio::fs::canonicalize(path).await.map_err(|e| PluginError::NotFound(format!("{path}: {e}")))?;
    if !own.iter().any(|p| canonical.starts_with(p)) {
        return Err(PluginError::Denied(format!("{path} is not one of the session's own paths")));
    }
    Ok(canonical)
}

/// What `copy-in` streams into the pod.
enum Input {
    File(tokio::fs::File),
    Tar(Tar),
    Bytes(Vec<u8>),
}

/// The host's `tar -c` of one of the session's paths, and what it says on
/// stderr (an unreadable file makes a short archive: the copy fails).
struct Tar {
    child: tokio::process::Child,
    said: tokio::task::JoinHandle<String>,
    path: PathBuf,
}

impl Tar {
    /// Archive `path` (checked to be the session's, without links: see
    /// [`session_path`]). Its directory is opened once, refusing any link on
    /// the way, and tar archives from that open directory (its stdin), so a
    /// component of the path swapped for a link meanwhile cannot redirect it.
    async fn start(path: &Path) -> Result<Self, PluginError> {
        let is_dir = tokio::fs::symlink_metadata(path)
            .await
            .map_err(|e| PluginError::NotFound(format!("{}: {e}", path.display())))?
            .is_dir();
        let (dir, name) = match (is_dir, path.parent(), path.file_name()) {
            (true, _, _) => (path.to_path_buf(), ".".into()),
            (false, Some(parent), Some(name)) => (parent.to_path_buf(), name.to_os_string()),
            _ => return Err(PluginError::InvalidInput(format!("{} cannot be copied", path.display()))),
        };
        let opened = tokio::task::spawn_blocking(move || {
            use rustix::fs::{Mode, OFlags, ResolveFlags};
            rustix::fs::openat2(
                rustix::fs::CWD,
                &dir,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
            .map_err(|e| format!("opening {}: {e} (a link on the way is refused)", dir.display()))
        })
        .await
        .map_err(|e| PluginError::Failed(e.to_string()))?
        .map_err(PluginError::Denied)?;
        let mut child = tokio::process::Command::new("tar")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            // fd 0 is the opened directory; tar -c writes to stdout and never reads stdin.
            .args(["-c", "-C", "/proc/self/fd/0", "--"])
            .arg(&name)
            .stdin(std::process::Stdio::from(opened))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| PluginError::Failed(format!("could not start tar: {e}")))?;
        let stderr = child.stderr.take();
        let said = tokio::spawn(async move {
            let (text, _) = read_capped(stderr).await;
            String::from_utf8_lossy(&text).trim().to_string()
        });
        Ok(Self { child, said, path: path.to_path_buf() })
    }

    fn output(&mut self) -> Result<Incoming, PluginError> {
        let out = self.child.stdout.take().ok_or_else(|| PluginError::Failed("tar gave no output".into()))?;
        Ok(Box::pin(out))
    }

    /// Wait for tar; an error if it did not archive everything.
    async fn finish(&mut self) -> Result<(), PluginError> {
        let status = self.child.wait().await.map_err(|e| PluginError::Failed(format!("waiting for tar: {e}")))?;
        let said = (&mut self.said).await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        Err(PluginError::Failed(format!("reading {} for the copy failed ({status}): {said}", self.path.display())))
    }
}

impl HostState {
    /// 90% of what is left of the call's deadline (the call can still answer).
    fn time_left(&self) -> Duration {
        self.ctx.limits.deadline.mul_f64(0.9).saturating_sub(self.call_started.elapsed())
    }

    fn kube_scope(&self) -> Result<Scope, PluginError> {
        let settings = self.services.kube.settings()?;
        Ok(Scope {
            component: self.ctx.id.clone(),
            namespace: settings.namespace.clone(),
            service_account_token: settings.service_account_token,
        })
    }

    /// The session the host serves now, for `what` (a call allowed only
    /// then: its create, start or export-branch).
    fn served(&self, what: &str) -> Result<String, PluginError> {
        self.session.clone().ok_or_else(|| {
            PluginError::Denied(format!(
                "{what} works only while the host serves a session (its create, start or export-branch)"
            ))
        })
    }
}

/// Add `kube` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::kube::add_to_linker::<HostState, super::Data>(linker, super::state)
}

impl Host for HostState {
    async fn namespace(&mut self) -> wasmtime::Result<String> {
        Ok(self.services.kube.settings.as_ref().map(|s| s.namespace.clone()).unwrap_or_default())
    }

    async fn serves(&mut self, kind: String) -> Res<bool> {
        self.kube_scope()?;
        let k = kube_policy::kind(&kind).map_err(PluginError::InvalidInput)?;
        let client = self.services.kube.client().await?;
        let listed = match k.api_version.contains('/') {
            true => client.list_api_group_resources(k.api_version).await,
            false => client.list_core_api_resources(k.api_version).await,
        };
        match listed {
            Ok(list) => Ok(list.resources.iter().any(|r| r.name == k.plural)),
            // The group-version is not served at all (a CRD not installed).
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(cluster_error(&format!("asking the cluster whether it serves {}", k.kind), e).into()),
        }
    }

    async fn cluster_time(&mut self) -> Res<u64> {
        self.kube_scope()?;
        let client = self.services.kube.client().await?;
        let request = http::Request::get("/version")
            .body(kube::client::Body::from(Vec::new()))
            .map_err(|e| PluginError::Failed(format!("asking the cluster's time: {e}")))?;
        let answer = client.send(request).await.map_err(|e| cluster_error("asking the cluster's time", e))?;
        let date = answer
            .headers()
            .get(http::header::DATE)
            .and_then(|d| d.to_str().ok())
            .ok_or_else(|| PluginError::Failed("the cluster's API server gave no Date with its answer".into()))?;
        let at = httpdate::parse_http_date(date)
            .map_err(|_| PluginError::Failed(format!("the cluster's Date {date:?} is not an HTTP date")))?;
        Ok(at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
    }

    async fn apply(&mut self, manifest: String) -> Res<String> {
        let scope = self.kube_scope()?;
        let (k, object, references) = kube_policy::admit(&manifest, &scope).map_err(PluginError::Denied)?;
        let service = &self.services.kube;
        for (kind, name) in &references {
            if service.own(&scope, *kind, name).await?.is_none() {
                let names = match kind.kind {
                    "PersistentVolumeClaim" => "the pod mounts the claim",
                    "SandboxTemplate" => "the warm pool is made from the template",
                    _ => "the claim takes from the warm pool",
                };
                return Err(PluginError::Denied(format!(
                    "{names} {name:?}, which is not this component's (or does not exist yet: apply it first)"
                ))
                .into());
            }
        }
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let doing = format!("applying {} {name}", k.kind);
        let api = KubeService::api(service.client().await?, k, &scope.namespace);
        // What was checked is what is written: a new object is created (if one
        // of that name appeared meanwhile, the cluster refuses), and one of the
        // component's own is applied over at the version found to be its own
        // (if it changed meanwhile, the cluster refuses).
        let stored = match service.lookup(&scope, k, &name).await? {
            Some(existing) if !service.is_own(&scope, k, &existing).await? => {
                return Err(PluginError::Denied(format!("{} {name} exists and is not this component's", k.kind)).into());
            }
            Some(existing) => {
                let mut object = object;
                object["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"].clone();
                api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object)).await
            }
            None => {
                let object: DynamicObject =
                    serde_json::from_value(object).map_err(|e| PluginError::InvalidInput(format!("{doing}: {e}")))?;
                let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
                api.create(&params, &object).await
            }
        };
        let stored = stored.map_err(|e| match e {
            kube::Error::Api(status) if status.code == 409 => PluginError::Failed(format!(
                "{doing}: it was created or changed by someone else meanwhile; nothing was written (the cluster said {})",
                status.message
            )),
            e => cluster_error(&doing, e),
        })?;
        Ok(serde_json::to_string(&stored).map_err(|e| PluginError::Failed(e.to_string()))?)
    }

    async fn get(&mut self, kind: String, name: String) -> Res<Option<String>> {
        let scope = self.kube_scope()?;
        let k = kube_policy::kind(&kind).map_err(PluginError::InvalidInput)?;
        let found = self.services.kube.own(&scope, k, &name).await?;
        Ok(found.map(|o| o.to_string()))
    }

    async fn list_objects(&mut self, kind: String, label_selector: String) -> Res<Vec<String>> {
        let scope = self.kube_scope()?;
        let k = kube_policy::kind(&kind).map_err(PluginError::InvalidInput)?;
        let api = KubeService::api(self.services.kube.client().await?, k, &scope.namespace);
        let params = ListParams::default().labels(&kube_policy::selector(&label_selector, &scope));
        let list = api.list(&params).await.map_err(|e| cluster_error(&format!("listing {}", k.plural), e))?;
        Ok(list
            .items
            .iter()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .filter(|o| kube_policy::owned(o, &scope))
            .map(|o| o.to_string())
            .collect())
    }

    async fn delete(&mut self, kind: String, name: String) -> Res<bool> {
        let scope = self.kube_scope()?;
        let k = kube_policy::kind(&kind).map_err(PluginError::InvalidInput)?;
        let service = &self.services.kube;
        let Some(existing) = service.own(&scope, k, &name).await? else {
            // Absent, or another's: to this component it does not exist.
            return Ok(false);
        };
        // Only the object found to be the component's: if it was replaced
        // meanwhile (another uid), the cluster refuses and the new one stays.
        let uid = existing["metadata"]["uid"].as_str().map(String::from);
        let params =
            DeleteParams { preconditions: Some(Preconditions { uid, resource_version: None }), ..Default::default() };
        let api = KubeService::api(service.client().await?, k, &scope.namespace);
        match api.delete(&name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(false),
            Err(e) => Err(cluster_error(&format!("deleting {} {name}", k.kind), e).into()),
        }
    }

    async fn logs(&mut self, pod: String, container: Option<String>, tail: u32) -> Res<String> {
        let scope = self.kube_scope()?;
        let service = &self.services.kube;
        service.own_pod(&scope, &pod).await?;
        let api: Api<Pod> = Api::namespaced(service.client().await?.clone(), &scope.namespace);
        let params = LogParams { container, tail_lines: Some(i64::from(tail)), ..Default::default() };
        let mut text =
            api.logs(&pod, &params).await.map_err(|e| cluster_error(&format!("reading pod {pod}'s log"), e))?;
        if text.len() > MAX_LOG {
            let cut = text.len() - MAX_LOG;
            let cut = (cut..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.drain(..cut);
        }
        Ok(text)
    }

    async fn wait_for_claim(&mut self, claim: String, timeout_ms: u32) -> Res<String> {
        let scope = self.kube_scope()?;
        let until = tokio::time::Instant::now() + Duration::from_millis(timeout_ms.into()).min(self.time_left());
        let service = &self.services.kube;
        let mut said = false;
        loop {
            let Some(found) = service.own(&scope, kube_policy::SANDBOX_CLAIM, &claim).await? else {
                return Err(
                    PluginError::NotFound(format!("SandboxClaim {claim} (of this component) does not exist")).into()
                );
            };
            let taken = found["status"]["sandbox"]["name"].as_str().is_some_and(|n| !n.is_empty());
            if taken || tokio::time::Instant::now() >= until {
                return Ok(found.to_string());
            }
            if !said {
                said = true;
                self.services
                    .say(&self.ctx.id, format!("SandboxClaim {claim}: waiting for a Sandbox from its warm pool"));
            }
            tokio::time::sleep_until(until.min(tokio::time::Instant::now() + POLL)).await;
        }
    }

    async fn wait_for_pod(&mut self, pod: String, timeout_ms: u32) -> Res<String> {
        let scope = self.kube_scope()?;
        let budget = Duration::from_millis(timeout_ms.into()).min(self.time_left());
        let until = tokio::time::Instant::now() + budget;
        let service = &self.services.kube;
        let client = service.client().await?;
        let events: Api<DynamicObject> = KubeService::api(client, EVENT, &scope.namespace);
        let mut seen = std::collections::HashSet::new();
        let mut appeared = false;
        loop {
            // A pod a controller makes (a Sandbox's) may not be there yet.
            let found = match service.own(&scope, kube_policy::POD, &pod).await? {
                Some(found) => found,
                None if !appeared && tokio::time::Instant::now() < until => {
                    tokio::time::sleep_until(until.min(tokio::time::Instant::now() + POLL)).await;
                    continue;
                }
                None if appeared => return Err(PluginError::NotFound(format!("pod {pod} went away")).into()),
                None => {
                    return Err(PluginError::NotFound(format!(
                        "pod {pod} (of this component) does not exist (waited {} ms for it to be made)",
                        budget.as_millis()
                    ))
                    .into());
                }
            };
            appeared = true;
            let uid = found["metadata"]["uid"].as_str().unwrap_or_default();
            let selector = format!("involvedObject.name={pod},involvedObject.uid={uid}");
            let listed = events.list(&ListParams::default().fields(&selector)).await;
            // Events are a courtesy: a cluster that will not list them still runs the pod.
            for event in listed.map(|l| l.items).unwrap_or_default() {
                let event = serde_json::to_value(event).unwrap_or_default();
                if seen.insert(event["metadata"]["uid"].as_str().unwrap_or_default().to_string()) {
                    let (reason, message) =
                        (event["reason"].as_str().unwrap_or(""), event["message"].as_str().unwrap_or(""));
                    self.services.say(&self.ctx.id, format!("pod {pod}: {reason}: {message}"));
                }
            }
            if kube_policy::pod_settled(&found) || tokio::time::Instant::now() >= until {
                return Ok(found.to_string());
            }
            tokio::time::sleep_until(until.min(tokio::time::Instant::now() + POLL)).await;
        }
    }

    async fn exec(
        &mut self,
        pod: String,
        container: Option<String>,
        argv: Vec<String>,
        stdin: Option<Vec<u8>>,
    ) -> Res<ExecOutput> {
        let scope = self.kube_scope()?;
        if argv.is_empty() {
            return Err(PluginError::InvalidInput("exec needs a command".into()).into());
        }
        let input = stdin.map(|bytes| Box::pin(std::io::Cursor::new(bytes)) as Incoming);
        Ok(run_in_pod(&self.services.kube, &scope, &pod, container, argv, input, None, self.time_left()).await?)
    }

    async fn copy_in(
        &mut self,
        pod: String,
        container: Option<String>,
        source: CopySource,
        target: String,
    ) -> Res<String> {
        let scope = self.kube_scope()?;
        let session = self.served("copy-in")?;
        absolute("target", &target)?;
        // Only into the component's own pod, checked before anything is made.
        self.services.kube.own_pod(&scope, &pod).await?;
        let (argv, input) = match source {
            CopySource::Branch => {
                let branches = self.services.kube.support("cannot send sessions' branches")?;
                let bundle = branches.bundle(&session).await.map_err(PluginError::Failed)?;
                // The bundle to a file in the pod, cloned at the target, then gone.
                let script = r#"set -e; f=$(mktemp); trap 'rm -f "$f"' EXIT; cat > "$f"; git clone -q -b "$2" "$f" "$1"; if [ -n "$3" ]; then git -C "$1" remote set-url origin "$3"; else git -C "$1" remote remove origin; fi"#;
                let argv = ["sh", "-c", script, "sh", &target, &bundle.branch, bundle.origin.as_deref().unwrap_or("")];
                let file = tokio::fs::File::open(&bundle.file)
                    .await
                    .map_err(|e| PluginError::Failed(format!("reading the session's branch bundle: {e}")));
                // Made for this copy: the open file is all it is needed as.
                let _ = tokio::fs::remove_file(&bundle.file).await;
                (argv.map(String::from).to_vec(), Input::File(file?))
            }
            CopySource::Path(path) => {
                let path = session_path(&self.session_paths, &path).await?;
                let argv = ["sh", "-c", r#"set -e; mkdir -p "$1"; tar -x -o -C "$1""#, "sh", &target];
                (argv.map(String::from).to_vec(), Input::Tar(Tar::start(&path).await?))
            }
            CopySource::Door => {
                let support = self.services.kube.support("has no sessions' proxies")?;
                let door = support.door(&session).await.map_err(PluginError::Failed)?.ok_or_else(|| {
                    PluginError::Unsupported(
                        "this daemon has no direct door ([proxy] direct_listen); use the tunnel".into(),
                    )
                })?;
                // Readable by the pod's user alone, in place at once.
                let script = r#"set -e; umask 077; mkdir -p "$(dirname "$1")"; cat > "$1.new"; chmod 0400 "$1.new"; mv -f "$1.new" "$1""#;
                let argv = ["sh", "-c", script, "sh", &target];
                (argv.map(String::from).to_vec(), Input::Bytes(door.file.into_bytes()))
            }
        };
        let (reader, mut tar) = match input {
            Input::File(file) => (Box::pin(file) as Incoming, None),
            Input::Tar(mut tar) => (tar.output()?, Some(tar)),
            Input::Bytes(bytes) => (Box::pin(std::io::Cursor::new(bytes)) as Incoming, None),
        };
        let out = run_in_pod(&self.services.kube, &scope, &pod, container, argv, Some(reader), None, self.time_left())
            .await?;
        if let Some(tar) = tar.as_mut() {
            tar.finish().await?;
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        match out.exit_code {
            Some(0) => Ok(said),
            code => Err(PluginError::Failed(format!("copying into pod {pod} failed ({}): {said}", ended(code))).into()),
        }
    }

    async fn copy_out(&mut self, pod: String, container: Option<String>, repository: String) -> Res<String> {
        let scope = self.kube_scope()?;
        // Only in the export-branch of the session served (not its create or start).
        let (Some(session), "export-branch") = (self.session.clone(), self.call) else {
            return Err(PluginError::Denied("copy-out works only during a session's export-branch".into()).into());
        };
        absolute("repository", &repository)?;
        let service = &self.services.kube;
        service.own_pod(&scope, &pod).await?;
        let branches = service.support("cannot take sessions' branches")?;
        let wanted = branches.branch(&session).await.map_err(PluginError::Failed)?;
        // Only the session's branch, without what its base has. What the pod
        // sends is checked by the host as it takes it: whatever the pod's
        // repository holds, only this branch can move, and only forward.
        // (Nothing, when the branch is still at its base.)
        let script = r#"set -e; cd "$1"; [ "$(git rev-parse --verify -q "refs/heads/$2")" = "$3" ] && exit 0; git bundle create -q - "refs/heads/$2" "^$3""#;
        let argv = ["sh", "-c", script, "sh", &repository, &wanted.branch, &wanted.base].map(String::from).to_vec();
        let (writer, reader) = tokio::io::duplex(1 << 16);
        let (ran, received) = tokio::join!(
            run_in_pod(service, &scope, &pod, container, argv, None, Some(Box::pin(writer)), self.time_left()),
            branches.receive(&session, Box::pin(reader)),
        );
        let out = ran?;
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.exit_code != Some(0) {
            return Err(PluginError::Failed(format!(
                "bundling the branch {} in pod {pod} failed ({}): {said}",
                wanted.branch,
                ended(out.exit_code)
            ))
            .into());
        }
        Ok(received.map_err(PluginError::Failed)?)
    }

    async fn open_tunnel(&mut self, pod: String, port: u16) -> Res<()> {
        let scope = self.kube_scope()?;
        let session = self.served("open-tunnel")?;
        let service = &self.services.kube;
        let (pods, uid) = service.followed_pod(&scope, &pod).await?;
        let support = service.support("has no sessions' proxies")?;
        let socket = support.proxy_socket(&session).await.map_err(PluginError::Failed)?;
        service.tunnels.open(&session, tunnel::Target { pods, pod, uid, port, socket });
        Ok(())
    }

    async fn direct_door(&mut self) -> Res<Option<String>> {
        self.kube_scope()?;
        let session = self.served("direct-door")?;
        let support = self.services.kube.support("has no sessions' proxies")?;
        let door = support.door(&session).await.map_err(PluginError::Failed)?;
        Ok(door.map(|d| d.address))
    }

    async fn watch_pod(&mut self, pod: String) -> Res<()> {
        let scope = self.kube_scope()?;
        let session = self.served("watch-pod")?;
        let service = &self.services.kube;
        let (pods, uid) = service.followed_pod(&scope, &pod).await?;
        let support = service.support("cannot follow sessions' health")?.clone();
        service.watches.follow(health::Target { pods, pod, uid, session, support });
        Ok(())
    }

    async fn attach_argv(&mut self, pod: String, container: Option<String>) -> wasmtime::Result<Vec<String>> {
        let mut argv = vec!["kubectl".to_string()];
        if let Some(settings) = &self.services.kube.settings {
            if let Some(path) = &settings.kubeconfig {
                argv.extend(["--kubeconfig".into(), path.display().to_string()]);
            }
            if let Some(context) = &settings.context {
                argv.extend(["--context".into(), context.clone()]);
            }
            argv.extend(["--namespace".into(), settings.namespace.clone()]);
        }
        argv.extend(["attach".into(), "-it".into(), pod]);
        if let Some(c) = container {
            argv.extend(["-c".into(), c]);
        }
        Ok(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in the archive `tar` makes of `path`, or its error.
    async fn archived(path: &Path) -> Result<String, PluginError> {
        let mut tar = Tar::start(path).await?;
        let (listing, _) = read_capped(Some(tar.output()?)).await;
        tar.finish().await?;
        let mut list = tokio::process::Command::new("tar")
            .arg("-t")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("tar -t");
        let mut stdin = list.stdin.take().expect("stdin");
        tokio::io::AsyncWriteExt::write_all(&mut stdin, &listing).await.expect("write");
        drop(stdin);
        let out = list.wait_with_output().await.expect("tar -t");
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A path that passed the session check is read through the directory
    /// opened without links: a directory swapped for a link to elsewhere
    /// afterwards is refused, not followed; links inside stay links.
    #[tokio::test]
    async fn the_host_tar_reads_only_what_it_opened_without_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (own, elsewhere) = (dir.path().join("own"), dir.path().join("elsewhere"));
        std::fs::create_dir_all(&own).expect("own");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        std::fs::write(own.join("hello.txt"), "hi").expect("write");
        std::fs::write(elsewhere.join("secret.txt"), "no").expect("write");
        std::os::unix::fs::symlink(elsewhere.join("secret.txt"), own.join("link")).expect("link");

        let listing = archived(&own).await.expect("own directory");
        assert!(listing.contains("./hello.txt") && listing.contains("./link"), "{listing}");
        assert!(!listing.contains("secret"), "a link inside was followed: {listing}");
        assert_eq!(archived(&own.join("hello.txt")).await.expect("one file").trim(), "hello.txt");

        // As if `own` had been swapped for a link after the check: the link
        // itself is archived as a link, and nothing is read through it.
        let swapped = dir.path().join("swapped");
        std::os::unix::fs::symlink(&elsewhere, &swapped).expect("swap");
        assert_eq!(archived(&swapped).await.expect("the link").trim(), "swapped");
        match archived(&swapped.join("secret.txt")).await {
            Err(PluginError::Denied(why)) => assert!(why.contains("link"), "{why}"),
            other => panic!("a file was read through a link: {other:?}"),
        }
    }
}
