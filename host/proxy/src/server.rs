//! The proxy's listeners: one per session, each knowing its session. A client
//! must present the session's identity (`Proxy-Authorization: Basic`, from
//! the credentials in its proxy URL); anything else gets 407. `CONNECT`
//! tunnels are answered, then TLS is terminated with a leaf for the CONNECT
//! host and the requests inside are served (HTTP/1.1 or HTTP/2 by ALPN) by
//! [`crate::forward`]. Plain `http://` requests are forwarded as they are,
//! except those for [`crate::status_relay::STATUS_HOST`], which go to the daemon.
//! Neither kind ever reaches inward (see [`crate::destination`]).
//!
//! A listener binds the configured address and a unix socket (`proxy.sock`
//! in a directory of the session's): sandboxed host sessions and containers
//! have no network but their own loopback, where a relay passes each
//! connection to that socket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::audit::{AuditRecord, AuditSink, Decision, now_ms};
use crate::ca::Authority;
use crate::credentials::Credentials;
use crate::forward::{self, Target, text};
use crate::hosts::{EgressMode, EgressPolicy, HostSet};
use crate::identity::IdentityKey;
use crate::limits::{Activity, Limits, Rate, Slot};
use crate::policy::AccessMode;
use crate::rules::RuleSet;
use crate::upstream::{Lane, Upstream, drive_while};
use crate::workers::Workers;
use crate::{ProxyBody, ProxyError};

/// How long a client may take to send a request head or finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head accepted on the listener.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// Who a listener serves.
#[derive(Debug, Clone)]
pub struct SessionIdentity {
    /// Session id.
    pub id: String,
    /// Session name (for the audit).
    pub name: String,
}

/// A session's (or a component's) state as the proxy sees it.
pub(crate) struct SessionCtx {
    pub(crate) ident: SessionIdentity,
    secret: String,
    read_only: AtomicBool,
    /// The services whose credentials may be injected into its requests:
    /// `None` for a session (whatever the rules say), the granted ones for a
    /// component.
    pub(crate) services: Option<Vec<String>>,
    /// Where it may connect (see [`crate::hosts`]); replaced live.
    egress: std::sync::RwLock<Arc<SessionEgress>>,
    /// Its connections open now, against `[proxy] max_connections_per_session`.
    connections: Arc<tokio::sync::Semaphore>,
    /// Its requests per second (see [`crate::limits`]).
    pub(crate) rate: Rate,
    /// Bumped to end every open connection of the session (its tunnels,
    /// streams and WebSockets): when it is closed, when it is made
    /// read-only, and when its egress policy takes a host away.
    generation: tokio::sync::watch::Sender<u64>,
}

/// A session's egress policy, compiled.
struct SessionEgress {
    policy: EgressPolicy,
    own: HostSet,
}

impl SessionEgress {
    fn new(policy: &EgressPolicy) -> Arc<Self> {
        Arc::new(Self { own: HostSet::new(policy.hosts.iter().map(String::as_str)), policy: policy.clone() })
    }
}

impl SessionCtx {
    pub(crate) fn mode(&self) -> AccessMode {
        if self.read_only.load(Ordering::Relaxed) { AccessMode::ReadOnly } else { AccessMode::ReadWrite }
    }

    /// `work` (serving one of the session's connections), ended — dropped,
    /// closing what it holds — as soon as the session ends its connections
    /// (see `generation`), if it has not finished by then.
    pub(crate) fn until_ended(
        &self,
        what: &'static str,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut seen = self.generation.subscribe();
        let name = self.ident.name.clone();
        async move {
            tokio::select! {
                () = work => {}
                _ = seen.changed() => tracing::debug!(session = %name, "{what}: the session ended its connections"),
            }
        }
    }

    /// Why the session may not reach `host`, if it may not: not in the
    /// daemon's list nor its own, and not allowed every host.
    pub(crate) fn egress_refusal(&self, host: &str, shared: &Shared) -> Option<String> {
        let egress = self.egress.read().ok()?.clone();
        let allowed =
            egress.policy.mode == EgressMode::AllowAll || shared.egress.contains(host) || egress.own.contains(host);
        (!allowed).then(|| format!("`{host}` is not on this session's egress allow-list"))
    }

    /// End every connection open now.
    fn end_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    fn authorized(&self, headers: &http::HeaderMap) -> Result<(), &'static str> {
        if let Some(value) = headers.get(header::PROXY_AUTHORIZATION) {
            return match basic_password(value) {
                Some(p) if bool::from(subtle::ConstantTimeEq::ct_eq(p.as_bytes(), self.secret.as_bytes())) => Ok(()),
                _ => Err("the proxy credentials are not this session's"),
            };
        }
        Err("no proxy credentials: use the HTTPS_PROXY URL clauderon set for this session")
    }
}

/// The password of a `Basic` proxy authorization (public for fuzz/).
#[doc(hidden)]
pub fn basic_password(value: &http::HeaderValue) -> Option<String> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':')?.1.to_string())
}

/// What every listener shares.
pub(crate) struct Shared {
    pub(crate) ca: Authority,
    pub(crate) rules: RuleSet,
    pub(crate) upstream: Upstream,
    pub(crate) credentials: Arc<Credentials>,
    /// What responses to injected requests are scrubbed of, per credential.
    pub(crate) needles: crate::scrub::NeedleCache,
    pub(crate) audit: Arc<dyn AuditSink>,
    /// The daemon's egress list (every allow-list session may reach these).
    pub(crate) egress: HostSet,
    /// What each session may hold.
    pub(crate) limits: Limits,
    /// Where status events for [`crate::status_relay::STATUS_HOST`] go (the daemon's API).
    pub(crate) status_target: OnceLock<SocketAddr>,
    /// The client that relays status events there: plain HTTP to that one
    /// address, which the upstream client (never reaching loopback) refuses.
    pub(crate) status_client:
        hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, ProxyBody>,
}

struct Listener {
    ctx: Arc<SessionCtx>,
    port: u16,
    tasks: Vec<JoinHandle<()>>,
    /// The unix socket, removed on close.
    socket: Option<std::path::PathBuf>,
}

/// The unix socket's file name in the directory a session's proxy is given.
pub const SOCKET_NAME: &str = "proxy.sock";

/// The proxy: shared parts plus a listener per open session.
pub struct Proxy {
    shared: Arc<Shared>,
    identity: IdentityKey,
    bind: IpAddr,
    listeners: Mutex<HashMap<String, Listener>>,
    /// The threads connections are served on.
    workers: Arc<Workers>,
    /// The direct door, once open (see [`crate::door`]).
    pub(crate) door: OnceLock<crate::door::Door>,
}

/// What a [`Proxy`] is made of.
pub struct Parts {
    /// The CA that signs the leaves sessions see.
    pub ca: Authority,
    /// The injection rules.
    pub rules: RuleSet,
    /// The client to upstreams (and the destinations it never reaches).
    pub upstream: Upstream,
    /// Where real credentials come from.
    pub credentials: Arc<Credentials>,
    /// Where each request's record goes.
    pub audit: Arc<dyn AuditSink>,
    /// The key sessions' proxy secrets derive from.
    pub identity: IdentityKey,
    /// The address listeners bind.
    pub bind: IpAddr,
    /// The daemon's egress list (see [`crate::hosts`]).
    pub egress: HostSet,
    /// What each session may hold (see [`crate::limits`]).
    pub limits: Limits,
}

impl Proxy {
    /// A proxy of these parts.
    pub fn new(parts: Parts) -> Self {
        let Parts { ca, rules, upstream, credentials, audit, identity, bind, egress, limits } = parts;
        let status_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
        let shared = Arc::new(Shared {
            ca,
            rules,
            upstream,
            credentials,
            needles: Default::default(),
            audit,
            egress,
            limits,
            status_target: OnceLock::new(),
            status_client,
        });
        let workers = Arc::new(Workers::start());
        Self { shared, identity, bind, listeners: Mutex::new(HashMap::new()), workers, door: OnceLock::new() }
    }

    /// Relay status events (`http://clauderon.internal/api/sessions/{id}/status-event`)
    /// to the daemon's API at `api`. Set once; later calls are ignored.
    pub fn set_status_target(&self, api: SocketAddr) {
        let _ = self.shared.status_target.set(api);
    }

    /// The CA (for its PEM).
    pub fn authority(&self) -> &Authority {
        &self.shared.ca
    }

    /// The pooled client to upstreams, for the daemon's own requests (Web
    /// Push): it trusts the system's roots and `extra_root_certs`, honours
    /// `[proxy.upstreams]`, and never dials an inward address.
    pub fn upstream_client(&self) -> crate::upstream::UpstreamClient {
        self.shared.upstream.client.clone()
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.shared.credentials
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.shared.rules
    }

    /// Open (or reopen) the session's listener, on `port` when given and free
    /// (so a restarted daemon keeps the URL running sessions hold), else on a
    /// free port; with `socket_dir`, also on the unix socket
    /// `socket_dir/proxy.sock` (the directory is made, 0700). Returns the port.
    pub async fn open(
        &self,
        ident: SessionIdentity,
        mode: AccessMode,
        egress: &EgressPolicy,
        port: Option<u16>,
        socket_dir: Option<&std::path::Path>,
    ) -> Result<u16, ProxyError> {
        self.open_scoped(ident, mode, egress, port, socket_dir, None).await
    }

    /// Open the listener a component's `http` capability sends through: its
    /// identity is `component:<id>` (so the audit names it), it may write,
    /// and only the credentials of `services` (its grant) are ever injected
    /// into its requests. Its egress is not limited here: the runtime lets a
    /// component reach only the hosts it was granted. Its proxy URL (with its secret), as [`Self::url`].
    pub async fn open_component(&self, component: &str, services: Vec<String>) -> Result<String, ProxyError> {
        let name = format!("component:{component}");
        let ident = SessionIdentity { id: name.clone(), name: name.clone() };
        let everywhere = EgressPolicy { mode: EgressMode::AllowAll, hosts: Vec::new() };
        self.open_scoped(ident, AccessMode::ReadWrite, &everywhere, None, None, Some(services)).await?;
        self.url(&name).ok_or_else(|| ProxyError::Bind { addr: name, source: std::io::Error::other("closed at once") })
    }

    async fn open_scoped(
        &self,
        ident: SessionIdentity,
        mode: AccessMode,
        egress: &EgressPolicy,
        port: Option<u16>,
        socket_dir: Option<&std::path::Path>,
        services: Option<Vec<String>>,
    ) -> Result<u16, ProxyError> {
        if let Some(existing) = self.port(&ident.id) {
            self.set_mode(&ident.id, mode);
            self.set_egress(&ident.id, egress);
            return Ok(existing);
        }
        let listener = match port {
            Some(p) if p != 0 => match TcpListener::bind((self.bind, p)).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(session = %ident.name, "proxy port {p} is taken ({e}); the session gets a new port");
                    self.bind_any().await?
                }
            },
            _ => self.bind_any().await?,
        };
        let port =
            listener.local_addr().map_err(|e| ProxyError::Bind { addr: self.bind.to_string(), source: e })?.port();
        let ctx = Arc::new(SessionCtx {
            secret: self.identity.secret(&ident.id),
            read_only: AtomicBool::new(mode == AccessMode::ReadOnly),
            egress: std::sync::RwLock::new(SessionEgress::new(egress)),
            connections: Arc::new(tokio::sync::Semaphore::new(self.shared.limits.connections)),
            rate: Rate::new(self.shared.limits.requests_per_second),
            ident,
            services,
            generation: tokio::sync::watch::channel(0).0,
        });
        let mut tasks =
            vec![tokio::spawn(accept_loop(listener, ctx.clone(), self.shared.clone(), self.workers.clone()))];
        let socket = match socket_dir {
            Some(dir) => {
                let (path, unix) = bind_unix(dir)?;
                tasks.push(tokio::spawn(unix_accept_loop(
                    unix,
                    ctx.clone(),
                    self.shared.clone(),
                    self.workers.clone(),
                )));
                Some(path)
            }
            None => None,
        };
        let id = ctx.ident.id.clone();
        if let Ok(mut map) = self.listeners.lock() {
            map.insert(id, Listener { ctx, port, tasks, socket });
        }
        Ok(port)
    }

    async fn bind_any(&self) -> Result<TcpListener, ProxyError> {
        TcpListener::bind((self.bind, 0)).await.map_err(|e| ProxyError::Bind { addr: self.bind.to_string(), source: e })
    }

    /// The secret session `id` holds (in its proxy URL).
    pub fn session_secret(&self, id: &str) -> String {
        self.identity.secret(id)
    }

    /// The key sessions' secrets and door keys derive from.
    pub(crate) fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// Where session `id`'s listener is, if open: its unix socket (if it
    /// has one) and its port (on [`Self::local_ip`]).
    pub(crate) fn listener_of(&self, id: &str) -> Option<(Option<std::path::PathBuf>, u16)> {
        self.listeners.lock().ok()?.get(id).map(|l| (l.socket.clone(), l.port))
    }

    /// Put a refusal at the direct door in session `id`'s audit, if its
    /// proxy is open: someone came in under its name without its key.
    pub(crate) fn audit_door_refusal(&self, id: &str, reason: &str) {
        let Some(ctx) = self.listeners.lock().ok().and_then(|m| m.get(id).map(|l| l.ctx.clone())) else { return };
        let mut record = refused(&ctx, Decision::Denied, StatusCode::FORBIDDEN, reason);
        record.method = "DOOR".into();
        record.status = None;
        self.shared.audit.record(record);
    }

    /// The address this machine reaches the listeners on.
    pub(crate) fn local_ip(&self) -> IpAddr {
        match self.bind {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        }
    }

    /// The session's listener port, if open.
    pub fn port(&self, id: &str) -> Option<u16> {
        self.listeners.lock().ok()?.get(id).map(|l| l.port)
    }

    /// The session's proxy URL (with its identity), if open.
    pub fn url(&self, id: &str) -> Option<String> {
        let map = self.listeners.lock().ok()?;
        let l = map.get(id)?;
        let host = match self.bind {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        Some(format!("http://session:{}@{host}:{}", l.ctx.secret, l.port))
    }

    /// Change the session's access mode; takes effect on the next request.
    /// Made read-only, the session's open connections end (a stream or a
    /// WebSocket opened while it could write does not carry on).
    pub fn set_mode(&self, id: &str, mode: AccessMode) {
        if let Some(l) = self.listeners.lock().ok().and_then(|m| m.get(id).map(|l| l.ctx.clone())) {
            let was_read_only = l.read_only.swap(mode == AccessMode::ReadOnly, Ordering::Relaxed);
            if mode == AccessMode::ReadOnly && !was_read_only {
                l.end_connections();
            }
        }
    }

    /// Change the session's egress policy; takes effect on the next request.
    /// If it takes a host away, the session's open connections end (a tunnel
    /// to that host does not carry on).
    pub fn set_egress(&self, id: &str, policy: &EgressPolicy) {
        let Some(ctx) = self.listeners.lock().ok().and_then(|m| m.get(id).map(|l| l.ctx.clone())) else { return };
        let Ok(mut current) = ctx.egress.write() else { return };
        let narrower = !policy.covers(&current.policy);
        *current = SessionEgress::new(policy);
        drop(current);
        if narrower {
            ctx.end_connections();
        }
    }

    /// Close the session's listener and end every connection it has open.
    pub fn close(&self, id: &str) {
        if let Some(l) = self.listeners.lock().ok().and_then(|mut m| m.remove(id)) {
            l.ctx.end_connections();
            l.tasks.iter().for_each(JoinHandle::abort);
            if let Some(path) = l.socket {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Bind `dir/proxy.sock` (replacing a stale socket a previous daemon left).
fn bind_unix(dir: &std::path::Path) -> Result<(std::path::PathBuf, tokio::net::UnixListener), ProxyError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| ProxyError::io(dir, e))?;
    let path = dir.join(SOCKET_NAME);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            std::fs::remove_file(&path).map_err(|e| ProxyError::io(&path, e))?
        }
        Ok(_) => {
            return Err(ProxyError::Io {
                path,
                source: std::io::Error::other("exists and is not a socket; move it aside"),
            });
        }
        Err(_) => {}
    }
    // A socket path may hold at most 107 bytes, and homes can be deep: bind
    // through a short path to the directory's handle instead.
    let handle = std::fs::File::open(dir).map_err(|e| ProxyError::io(dir, e))?;
    let short = format!("/proc/self/fd/{}/{SOCKET_NAME}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    let unix = tokio::net::UnixListener::bind(&short)
        .map_err(|e| ProxyError::Bind { addr: path.display().to_string(), source: e })?;
    drop(handle);
    // Who may connect is decided by the directory (private to the session, or
    // given to its container's user); the socket itself is open to them.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).map_err(|e| ProxyError::io(&path, e))?;
    Ok((path, unix))
}

/// A session's TCP listener: each connection is served on one of the workers.
async fn accept_loop(listener: TcpListener, ctx: Arc<SessionCtx>, shared: Arc<Shared>, workers: Arc<Workers>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                hand_off(&workers, stream.into_std(), TcpStream::from_std, &ctx, &shared);
            }
            Err(e) => {
                tracing::warn!(session = %ctx.ident.name, "proxy accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The unix socket's accept loop: a sandboxed session's relay connects here.
async fn unix_accept_loop(
    listener: tokio::net::UnixListener,
    ctx: Arc<SessionCtx>,
    shared: Arc<Shared>,
    workers: Arc<Workers>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => hand_off(&workers, stream.into_std(), tokio::net::UnixStream::from_std, &ctx, &shared),
            Err(e) => {
                tracing::warn!(session = %ctx.ident.name, "proxy accept (unix socket) failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serve an accepted connection on one of the workers. A tokio stream
/// belongs to the runtime that made it, so the worker gets the std stream
/// (`accepted`, from `into_std`) and registers it with its own (`adopt`,
/// the stream type's `from_std`).
fn hand_off<Std, S>(
    workers: &Workers,
    accepted: std::io::Result<Std>,
    adopt: fn(Std) -> std::io::Result<S>,
    ctx: &Arc<SessionCtx>,
    shared: &Arc<Shared>,
) where
    Std: Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let stream = match accepted {
        Ok(stream) => stream,
        Err(e) => return tracing::warn!(session = %ctx.ident.name, "proxy connection: {e}"),
    };
    let (ctx, shared) = (ctx.clone(), shared.clone());
    workers.spawn(async move {
        match adopt(stream) {
            Ok(stream) => serve_client(stream, ctx, shared).await,
            Err(e) => tracing::warn!(session = %ctx.ident.name, "proxy connection: {e}"),
        }
    });
}

/// Serve one client connection (over TCP or the unix socket): one of the
/// session's connections (refused with 429 over its cap), closed when idle.
async fn serve_client<S>(mut stream: S, ctx: Arc<SessionCtx>, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Some(slot) = Slot::take(&ctx.connections) else {
        return too_many_connections(&mut stream, &ctx, &shared).await;
    };
    let ctx_name = ctx.ident.name.clone();
    let serving = ctx.clone();
    let activity = Activity::new();
    let idle = shared.limits.idle;
    let service = activity.service(Some(slot), move |req| outer(req, ctx.clone(), shared.clone()));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(activity.watch(stream)), service)
        .with_upgrades();
    let span = tracing::debug_span!("proxy_connection", session = %ctx_name);
    let served = async move {
        tokio::select! {
            served = tracing::Instrument::instrument(conn, span) => if let Err(e) = served {
                tracing::debug!(session = %ctx_name, "proxy client: {e}");
            },
            () = activity.idle_for(idle) => tracing::debug!(session = %ctx_name, "proxy client: idle, closed"),
        }
    };
    serving.until_ended("proxy client", served).await
}

/// Answer a connection over the session's cap with 429 and close it.
async fn too_many_connections<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S, ctx: &SessionCtx, shared: &Shared) {
    use tokio::io::AsyncWriteExt;
    let reason = format!(
        "this session has {} connections open, its limit ([proxy] max_connections_per_session)",
        shared.limits.connections
    );
    shared.audit.record(refused(ctx, Decision::Blocked, StatusCode::TOO_MANY_REQUESTS, &reason));
    let body = format!("clauderon proxy: {reason}; close some and try again.\n");
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A request on the listener itself: identity, then CONNECT or plain HTTP.
async fn outer(req: Request<Incoming>, ctx: Arc<SessionCtx>, shared: Arc<Shared>) -> Response<ProxyBody> {
    if let Err(reason) = ctx.authorized(req.headers()) {
        refusal(&req, &ctx, &shared, Decision::Denied, StatusCode::PROXY_AUTHENTICATION_REQUIRED, reason);
        let mut resp = text(StatusCode::PROXY_AUTHENTICATION_REQUIRED, format!("clauderon proxy: {reason}.\n"));
        resp.headers_mut()
            .insert(header::PROXY_AUTHENTICATE, http::HeaderValue::from_static("Basic realm=\"clauderon\""));
        return resp;
    }
    if req.method() == Method::CONNECT {
        return connect(req, ctx, shared);
    }
    if req.uri().host() == Some(crate::status_relay::STATUS_HOST) {
        return crate::status_relay::relay(req, &ctx, &shared).await;
    }
    match Target::from_absolute(req.uri()) {
        Some(target) => forward::handle(req, target, None, ctx, shared).await,
        None => text(
            StatusCode::BAD_REQUEST,
            "clauderon proxy: send absolute-form requests or CONNECT (set HTTP_PROXY/HTTPS_PROXY to this address).\n",
        ),
    }
}

/// Audit a request refused on the listener itself (before any tunnel).
fn refusal(
    req: &Request<Incoming>,
    ctx: &SessionCtx,
    shared: &Shared,
    decision: Decision,
    status: StatusCode,
    reason: &str,
) {
    let host = req.uri().host().unwrap_or_default().to_string();
    let path = if req.method() == Method::CONNECT { String::new() } else { req.uri().path().to_string() };
    let method = req.method().to_string();
    shared.audit.record(AuditRecord { host, method, path, ..refused(ctx, decision, status, reason) });
}

/// The audit record of something the session's listener refused itself
/// (nothing was forwarded); the caller adds what it knows of the request.
fn refused(ctx: &SessionCtx, decision: Decision, status: StatusCode, reason: &str) -> AuditRecord {
    AuditRecord {
        at_ms: now_ms(),
        session_id: ctx.ident.id.clone(),
        session_name: ctx.ident.name.clone(),
        decision,
        reason: Some(reason.to_string()),
        status: Some(status.as_u16()),
        ..forward::blank()
    }
}

/// The host and port a CONNECT asks for, or why it cannot be served (public for fuzz/).
#[doc(hidden)]
pub fn connect_target(uri: &http::Uri) -> Result<(String, u16), &'static str> {
    let Some((host, port)) = uri.authority().and_then(|a| Some((a.host().to_string(), a.port_u16()?))) else {
        return Err("CONNECT needs a host:port target");
    };
    // The `http` crate drops userinfo from `host()`: `evil@api.github.com:443`
    // must not pass as `api.github.com` (found by fuzz/fuzz_targets/request_head.rs).
    let userinfo = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
    let name = crate::hosts::check_pattern(&host).is_ok_and(|h| !h.starts_with("*."));
    if userinfo || !(ip || name) {
        return Err("the CONNECT target is not a host name");
    }
    Ok((host, port))
}

/// Answer a CONNECT and serve the TLS inside it.
fn connect(req: Request<Incoming>, ctx: Arc<SessionCtx>, shared: Arc<Shared>) -> Response<ProxyBody> {
    let (host, port) = match connect_target(req.uri()) {
        Ok(target) => target,
        Err(why) => return text(StatusCode::BAD_REQUEST, format!("clauderon proxy: {why}.\n")),
    };
    if !ctx.rate.take() {
        let reason = forward::over_rate(&ctx);
        refusal(&req, &ctx, &shared, Decision::Blocked, StatusCode::TOO_MANY_REQUESTS, &reason);
        return forward::too_many_requests(&reason);
    }
    if let Some(reason) = ctx.egress_refusal(&host, &shared) {
        refusal(&req, &ctx, &shared, Decision::Blocked, StatusCode::FORBIDDEN, &reason);
        return forward::egress_refused(&ctx, &host, &reason);
    }
    let config = match shared.ca.server_config(host.trim_start_matches('[').trim_end_matches(']')) {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("clauderon proxy: {e}.\n")),
    };
    let session = ctx.clone();
    let idle = shared.limits.idle;
    // The tunnel holds the connection's slot, and passes it to its requests.
    let slot = req.extensions().get::<Slot>().cloned();
    let tunnel = async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => return tracing::debug!("CONNECT upgrade failed: {e}"),
        };
        let started = Instant::now();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let activity = Activity::new();
        let io = crate::read_ahead::ReadAhead::new(activity.watch(TokioIo::new(upgraded)));
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return tracing::debug!(session = %ctx.ident.name, "TLS from the client to {host}: {e}"),
            Err(_) => return tracing::debug!(session = %ctx.ident.name, "TLS handshake for {host} timed out"),
        };
        tracing::trace!("TLS for {host} in {:?}", started.elapsed());
        let target_host = host.clone();
        let target = Target::https(host, port);
        let (lane, conns) = Lane::new();
        let service = activity.service(slot, move |req| {
            forward::handle(req, target.clone(), Some(lane.clone()), ctx.clone(), shared.clone())
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(HANDSHAKE_TIMEOUT);
        builder.http2().timer(TokioTimer::new());
        tokio::select! {
            served = drive_while(conns, builder.serve_connection_with_upgrades(TokioIo::new(tls), service)) => if let Err(e) = served {
                tracing::debug!("tunnelled connection: {e}");
            },
            () = activity.idle_for(idle) => tracing::debug!("tunnel to {}: idle, closed", target_host),
        }
    };
    tokio::spawn(session.until_ended("tunnel", tunnel));
    Response::new(forward::empty())
}

#[cfg(test)]
mod tests {
    use super::connect_target;

    #[test]
    fn a_connect_target_is_a_plain_host_and_port() {
        let target = |t: &str| connect_target(&t.parse::<http::Uri>().expect("a URI"));
        assert_eq!(target("api.github.com:443"), Ok(("api.github.com".to_string(), 443)));
        assert_eq!(target("[::1]:8443").map(|(_, p)| p), Ok(8443));
        assert!(target("api.github.com").is_err(), "no port");
        assert!(target("evil@api.github.com:443").is_err(), "userinfo is not dropped silently");
        assert!(target("user:pw@api.github.com:443").is_err());
        assert!(target("bad_host!:443").is_err());
        assert!(target("*.example.com:443").is_err());
    }
}
