//! The HTTP + WebSocket API served by the daemon (default 127.0.0.1:3030).
//!
//! REST JSON under `/api` for sessions, plugins, config, health, the proxy's
//! audit and credential status; a WebSocket at `/api/events` streaming every
//! session event and audit record; the OpenAPI
//! document at `/api/openapi.json`. Errors are `{"error": "..."}` with a
//! fitting status. [`guard`] decides who may call: the daemon's own Host and
//! Origin on every request, and its token on all but health and the
//! agent-status path.

pub mod console;
pub mod directories;
pub mod doctor;
pub mod guard;
mod openapi;
pub mod push;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use clauderon_proxy::{AuditLog, AuditRecord, CredentialStatus, Proxy};
use clauderon_sessions::{
    AccessMode, AgentStatus, CreateRequest, EgressPolicy, Manager, Session, SessionError, Synced,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// What the API serves.
pub struct ApiState {
    /// The session manager.
    pub manager: Arc<Manager>,
    /// Who may call (token, Host and Origin checks).
    pub guard: guard::Guard,
    /// The effective configuration, as shown by `GET /api/config`.
    pub config: serde_json::Value,
    /// The proxy (credential status).
    pub proxy: Arc<Proxy>,
    /// The proxy's audit log.
    pub audit: Arc<AuditLog>,
    /// Web Push to subscribed browsers.
    pub push: Arc<push::Push>,
}

type Shared = Arc<ApiState>;

/// An API error: a status and a sentence.
#[derive(Debug)]
pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        let status = match &e {
            SessionError::Invalid(_) => StatusCode::BAD_REQUEST,
            SessionError::NotFound(_) => StatusCode::NOT_FOUND,
            SessionError::Conflict(_) => StatusCode::CONFLICT,
            SessionError::Failed(_) => StatusCode::BAD_GATEWAY,
        };
        ApiError(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, format!("malformed request body: {}", e.body_text()))
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Every error answer: a sentence saying what went wrong and what to do.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The sentence.
    pub error: String,
}

/// The error answers of the API (each with an [`ErrorBody`]).
#[derive(IntoResponses)]
#[allow(dead_code)]
enum Errors {
    /// Malformed input (body, query or path), or a request the daemon cannot
    /// take (e.g. an option the backend cannot apply).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No or the wrong API token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The request names another site (`Host` or `Origin`), or a wrong status-event key.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such session.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The session is not in a state that allows this, or a name is taken.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// A backend, agent or git failed while doing it.
    #[response(status = 502)]
    BadGateway(ErrorBody),
}

/// The `{id}` path segment: a session's id or name.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
struct SessionId(
    /// The session's id or name.
    String,
);

impl<S: Send + Sync> FromRequestParts<S> for SessionId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(e) => Err(ApiError(StatusCode::BAD_REQUEST, format!("bad session id in the path: {}", e.body_text()))),
        }
    }
}

/// Query parameters; a malformed query is a JSON error like every other.
struct Q<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(Self(q)),
            Err(e) => Err(ApiError(StatusCode::BAD_REQUEST, format!("malformed query: {}", e.body_text()))),
        }
    }
}

/// The largest sequence number or byte offset a query takes (what the
/// document's int64 says; JSON clients lose precision beyond it anyway).
const MAX_SEQ: u64 = i64::MAX as u64;

/// `value` of query parameter `name`, if it lies in `min..=max`.
fn within(name: &str, value: u64, min: u64, max: u64) -> Result<u64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError(StatusCode::BAD_REQUEST, format!("`{name}` must be between {min} and {max}, not {value}")))
    }
}

/// `GET /api/health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: String,
    /// The daemon's version.
    version: String,
    /// Seconds since the daemon started serving.
    uptime_s: u64,
    /// The daemon's file descriptors: every session's tunnels and streams are some.
    fds: Fds,
    /// The start-up reconcile (every session compared with its backend, in
    /// the background) has finished; until then a session's state may be
    /// the one stored before the daemon started.
    reconciled: bool,
}

/// Open file descriptors and the limit on them.
#[derive(Serialize, ToSchema)]
pub struct Fds {
    /// Open now.
    open: u64,
    /// The most the daemon may have open (raised to the hard limit at start).
    limit: u64,
}

impl Fds {
    /// This process's, from `/proc/self`.
    async fn now() -> Self {
        let mut open = 0;
        if let Ok(mut dir) = tokio::fs::read_dir("/proc/self/fd").await {
            while let Ok(Some(_)) = dir.next_entry().await {
                open += 1;
            }
        }
        let limits = tokio::fs::read_to_string("/proc/self/limits").await.unwrap_or_default();
        // `Max open files            1024                 1048576              files`
        let limit = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
            .unwrap_or(0);
        Self { open, limit }
    }
}

/// What `DELETE` did.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    /// A sentence, e.g. which branch was kept.
    pub message: String,
}

/// The command that attaches a terminal.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Argv {
    /// Program and arguments.
    pub argv: Vec<String>,
}

/// The last lines a session showed.
#[derive(Serialize, ToSchema)]
pub struct Output {
    /// The text.
    output: String,
}

/// What reconcile changed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Changes {
    /// One sentence per session it touched.
    pub changes: Vec<String>,
}

/// What an agent's status event did.
#[derive(Serialize, ToSchema)]
pub struct StatusAnswer {
    /// The agent status it implied, if any.
    agent_status: Option<AgentStatus>,
}

/// Audit records after a sequence number.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// The records, oldest first.
    records: Vec<AuditRecord>,
    /// The last record's sequence number (pass it as `after` next time).
    last_seq: u64,
    /// Records the proxy has made but not stored yet: the writer gathers
    /// them for a moment before each commit, so they appear shortly.
    pending: u64,
}

/// What the proxy can inject.
#[derive(Serialize, ToSchema)]
pub struct CredentialsAnswer {
    /// The credential sources, in the order they are asked.
    sources: Vec<String>,
    /// Each service a rule can inject (never a credential's value).
    services: Vec<CredentialStatus>,
}

/// Loaded and refused plugins (`clauderon_runtime::Inventory`; `clauderon
/// plugins list --json` prints the same document).
/// `POST /api/login-links`: a one-time link that signs a browser in.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LoginLink {
    /// The path to open on the daemon's own address (`/login?ticket=…`).
    pub path: String,
    /// The daemon's own address (`127.0.0.1:3030`).
    pub host: String,
    /// Seconds left to open it; it works once.
    pub expires_in_s: u64,
}

/// The API's router.
pub fn router(state: Shared) -> Router {
    std::sync::LazyLock::force(&STARTED);
    let protected = Router::new()
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/config", get(config))
        .route("/api/plugins", get(plugins))
        .route("/api/plugins/reload", post(reload_plugins))
        .route("/api/sessions", get(list).post(create))
        .route("/api/sessions/{id}", get(show).delete(delete))
        .route("/api/sessions/{id}/stop", post(stop))
        .route("/api/sessions/{id}/sync", post(sync))
        .route("/api/sessions/{id}/start", post(start))
        .route("/api/sessions/{id}/archive", post(archive))
        .route("/api/sessions/{id}/unarchive", post(unarchive))
        .route("/api/sessions/{id}/access-mode", put(access_mode))
        .route("/api/sessions/{id}/egress", put(egress))
        .route("/api/sessions/{id}/attach", get(attach))
        .route("/api/sessions/{id}/output", get(output))
        .route("/api/sessions/{id}/console", get(console_ws))
        .route("/api/sessions/{id}/input", post(input))
        .route("/api/sessions/{id}/approval", post(approval))
        .route("/api/directories", get(list_directories))
        .route("/api/reconcile", post(reconcile))
        .route("/api/audit", get(audit))
        .route("/api/credentials", get(credentials))
        .route("/api/doctor", get(doctor))
        .route("/api/sessions/{id}/history", get(history))
        .route("/api/events", get(events))
        .route("/api/login-links", post(login_link))
        .route("/api/push", get(push::push_info))
        .route("/api/push/subscriptions", post(push::subscribe).delete(push::unsubscribe))
        .route("/api/push/test", post(push::test_message))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    // Open to any caller that names the daemon: health, and agents' status
    // events, which carry their session's own key instead of the API token.
    // The dashboard's files and its login page are open too: they hold no
    // secret, and every API call they make needs the login cookie.
    let open = Router::new()
        .route("/api/health", get(health))
        .route("/api/sessions/{id}/status-event", post(status_event))
        .route("/login", get(login));
    Router::new()
        .merge(protected)
        .merge(open)
        .fallback(dashboard)
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_own_site))
        .with_state(state)
}

async fn require_own_site(State(state): State<Shared>, req: Request, next: Next) -> Response {
    match state.guard.check_site(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn require_token(State(state): State<Shared>, req: Request, next: Next) -> Response {
    match state.guard.check_token(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Anything outside the routes: an unknown API endpoint, or a file of the
/// web dashboard.
async fn dashboard(req: Request) -> Response {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError(StatusCode::NOT_FOUND, "no such API endpoint (see /api/openapi.json)".into()).into_response();
    }
    clauderon_web::respond(req.method(), path, req.headers())
}

/// A one-time link that signs a browser in to the dashboard (what `clauderon
/// web` opens): the browser trades it for a login cookie at `/login`.
#[utoipa::path(post, path = "/api/login-links", responses((status = 200, body = LoginLink), Errors))]
async fn login_link(State(s): State<Shared>) -> Json<LoginLink> {
    let ticket = s.guard.issue_ticket();
    Json(LoginLink {
        path: format!("/login?ticket={ticket}"),
        host: s.guard.own_host().to_string(),
        expires_in_s: guard::TICKET_TTL.as_secs(),
    })
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    ticket: String,
}

/// `GET /login?ticket=…`: trade a login ticket for the login cookie and go
/// to the dashboard.
async fn login(State(s): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    let Some(value) = s.guard.redeem(&q.ticket) else {
        return clauderon_web::text(
            StatusCode::UNAUTHORIZED,
            "This login link has expired or was used already (each works once, for two minutes).\n\
             Run `clauderon web` in a terminal on this machine for a new one.\n",
        );
    };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        guard::COOKIE,
        guard::COOKIE_MAX_AGE.as_secs()
    );
    let mut resp = clauderon_web::text(StatusCode::SEE_OTHER, "Signed in; on to the dashboard.\n");
    let headers = resp.headers_mut();
    headers.insert(axum::http::header::LOCATION, axum::http::HeaderValue::from_static("/"));
    if let Ok(cookie) = axum::http::HeaderValue::from_str(&cookie) {
        headers.insert(axum::http::header::SET_COOKIE, cookie);
    }
    resp
}

/// When the API was made: the daemon's start, for its uptime.
static STARTED: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);

/// Whether the daemon is up (no token needed).
#[utoipa::path(get, path = "/api/health", security(()), responses((status = 200, body = Health), Errors))]
async fn health(State(s): State<Shared>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: STARTED.elapsed().as_secs(),
        fds: Fds::now().await,
        reconciled: s.manager.reconciled(),
    })
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "the OpenAPI document", body = Object), Errors))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi::document())
}

/// The effective configuration.
#[utoipa::path(get, path = "/api/config", responses((status = 200, description = "config.toml with defaults filled in", body = Object), Errors))]
async fn config(State(s): State<Shared>) -> Json<serde_json::Value> {
    Json(s.config.clone())
}

/// Loaded and refused plugins.
#[utoipa::path(get, path = "/api/plugins", responses((status = 200, body = clauderon_runtime::Inventory), Errors))]
async fn plugins(State(s): State<Shared>) -> Json<clauderon_runtime::Inventory> {
    Json(s.manager.runtime().inventory())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Include archived sessions.
    #[serde(default)]
    archived: bool,
}

/// The header of `GET /api/sessions` that carries the last event the list reflects.
const EVENT_SEQ_HEADER: &str = "x-clauderon-event-seq";

/// The sessions, oldest first. Its `x-clauderon-event-seq` header is the
/// sequence number of the last event the list reflects: `GET /api/events?after=`
/// that number follows on from the list with nothing missed or repeated.
#[utoipa::path(get, path = "/api/sessions", params(ListQuery), responses((status = 200, body = Vec<Session>,
    headers(("x-clauderon-event-seq" = u64, description = "The last event the list reflects (follow `/api/events?after=` it)"))), Errors))]
async fn list(State(s): State<Shared>, Q(q): Q<ListQuery>) -> Result<Response, ApiError> {
    let (sessions, seq) = s.manager.list_at(q.archived).await?;
    Ok(([(EVENT_SEQ_HEADER, seq.to_string())], Json(sessions)).into_response())
}

/// Create a session and start its agent.
#[utoipa::path(post, path = "/api/sessions", request_body = CreateRequest, responses((status = 201, body = Session), Errors))]
async fn create(
    State(s): State<Shared>,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let Json(req) = body?;
    Ok((StatusCode::CREATED, Json(s.manager.create(req).await?)))
}

/// One session.
#[utoipa::path(get, path = "/api/sessions/{id}", params(SessionId), responses((status = 200, body = Session), Errors))]
async fn show(State(s): State<Shared>, SessionId(id): SessionId) -> ApiResult<Session> {
    Ok(Json(s.manager.get(&id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Delete even if the backend cannot remove its resource.
    #[serde(default)]
    force: bool,
}

/// Delete a session: its resource, its clone, and its branch unless it has commits of its own.
#[utoipa::path(delete, path = "/api/sessions/{id}", params(SessionId, DeleteQuery), responses((status = 200, body = Deleted), Errors))]
async fn delete(State(s): State<Shared>, SessionId(id): SessionId, Q(q): Q<DeleteQuery>) -> ApiResult<Deleted> {
    Ok(Json(Deleted { message: s.manager.delete(&id, q.force).await? }))
}

/// Stop a running session (its resource is kept for start).
#[utoipa::path(post, path = "/api/sessions/{id}/stop", params(SessionId), responses((status = 200, body = Session), Errors))]
async fn stop(State(s): State<Shared>, SessionId(id): SessionId) -> ApiResult<Session> {
    Ok(Json(s.manager.stop(&id).await?))
}

/// Bring the session's commits into your repository now: from where it
/// runs (a Kubernetes pod's volume) to its clone, then into your branch.
#[utoipa::path(post, path = "/api/sessions/{id}/sync", params(SessionId), responses((status = 200, body = Synced), Errors))]
async fn sync(State(s): State<Shared>, SessionId(id): SessionId) -> ApiResult<Synced> {
    Ok(Json(s.manager.sync_now(&id).await?))
}

/// Start a stopped or failed session again.
#[utoipa::path(post, path = "/api/sessions/{id}/start", params(SessionId), responses((status = 200, body = Session), Errors))]
async fn start(State(s): State<Shared>, SessionId(id): SessionId) -> ApiResult<Session> {
    Ok(Json(s.manager.start(&id).await?))
}

/// Stop a session and hide it from the list.
#[utoipa::path(post, path = "/api/sessions/{id}/archive", params(SessionId), responses((status = 200, body = Session), Errors))]
async fn archive(State(s): State<Shared>, SessionId(id): SessionId) -> ApiResult<Session> {
    Ok(Json(s.manager.archive(&id).await?))
}

/// Bring an archived session back (stopped).
#[utoipa::path(post, path = "/api/sessions/{id}/unarchive", params(SessionId), responses((status = 200, body = Session), Errors))]
async fn unarchive(State(s): State<Shared>, SessionId(id): SessionId) -> ApiResult<Session> {
    Ok(Json(s.manager.unarchive(&id).await?))
}

/// The access mode to set.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    /// What the session may do through the proxy from its next request on.
    pub mode: AccessMode,
}

/// Change what a session may do through the proxy.
#[utoipa::path(put, path = "/api/sessions/{id}/access-mode", params(SessionId), request_body = ModeBody, responses((status = 200, body = Session), Errors))]
async fn access_mode(
    State(s): State<Shared>,
    SessionId(id): SessionId,
    body: Result<Json<ModeBody>, JsonRejection>,
) -> ApiResult<Session> {
    let Json(b) = body?;
    Ok(Json(s.manager.set_access_mode(&id, b.mode).await?))
}

/// Change where a session may connect through the proxy: `allow-all`, or
/// `allow-list` (the daemon's `[egress]` list) plus `hosts`. Taking a host
/// away ends the session's open connections.
#[utoipa::path(put, path = "/api/sessions/{id}/egress", params(SessionId), request_body = EgressPolicy, responses((status = 200, body = Session), Errors))]
async fn egress(
    State(s): State<Shared>,
    SessionId(id): SessionId,
    body: Result<Json<EgressPolicy>, JsonRejection>,
) -> ApiResult<Session> {
    let Json(policy) = body?;
    Ok(Json(s.manager.set_egress(&id, policy).await?))
}

/// The command that attaches a terminal to the session.
#[utoipa::path(get, path = "/api/sessions/{id}/attach", params(SessionId), responses((status = 200, body = Argv), Errors))]
async fn attach(State(s): State<Shared>, SessionId(id): SessionId) -> ApiResult<Argv> {
    Ok(Json(Argv { argv: s.manager.attach_argv(&id).await? }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OutputQuery {
    /// How many lines (default 50).
    #[serde(default = "default_lines")]
    #[param(minimum = 1, maximum = 10000)]
    lines: u32,
}

fn default_lines() -> u32 {
    50
}

/// The last lines the session's agent showed.
#[utoipa::path(get, path = "/api/sessions/{id}/output", params(SessionId, OutputQuery), responses((status = 200, body = Output), Errors))]
async fn output(State(s): State<Shared>, SessionId(id): SessionId, Q(q): Q<OutputQuery>) -> ApiResult<Output> {
    let lines = within("lines", q.lines.into(), 1, 10_000)? as u32;
    Ok(Json(Output { output: s.manager.output(&id, lines).await? }))
}

/// The most characters one `POST …/input` types.
const MAX_INPUT: usize = 65_536;

/// Text to type into a session's terminal.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputBody {
    /// What to type, at most 65,536 characters. Control characters are
    /// typed as they are (`\u001b` is Escape, `\r` is Enter).
    #[schema(max_length = 65536)]
    pub text: String,
    /// Press Enter after the text.
    #[serde(default)]
    pub submit: bool,
}

/// What `POST …/input` typed.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct Typed {
    /// Bytes typed (Enter included).
    pub bytes: u64,
}

/// Type text into the session's terminal, as a person at its keyboard
/// would: the daemon attaches with the backend's own attach command on a
/// pseudo-terminal, types, and detaches.
#[utoipa::path(post, path = "/api/sessions/{id}/input", params(SessionId), request_body = InputBody, responses((status = 200, body = Typed), Errors))]
async fn input(
    State(s): State<Shared>,
    SessionId(id): SessionId,
    body: Result<Json<InputBody>, JsonRejection>,
) -> ApiResult<Typed> {
    let Json(body) = body?;
    if body.text.chars().count() > MAX_INPUT {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("at most {MAX_INPUT} characters are typed at once")));
    }
    let session = s.manager.get(&id).await?;
    if body.text.is_empty() && !body.submit {
        // Nothing to type: no need to attach.
        return Ok(Json(Typed { bytes: 0 }));
    }
    if session.status != clauderon_sessions::Status::Running {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("session `{}` is {:?}, not running: start it first", session.name, session.status).to_lowercase(),
        ));
    }
    let mut text = body.text;
    if body.submit {
        text.push('\r');
    }
    console::type_into(|| async { Ok(s.manager.attach_argv(&session.id).await?) }, &text).await?;
    Ok(Json(Typed { bytes: text.len() as u64 }))
}

/// How to answer an agent's permission prompt.
#[derive(Debug, Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// Allow what the agent asked to do, once.
    Approve,
    /// Refuse it.
    Deny,
}

/// The answer to the permission prompt a session's agent is waiting on.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// Approve or deny.
    pub answer: Answer,
}

/// Answer the permission prompt the session's agent is waiting on (its agent
/// status is `waiting-for-approval`): the daemon types the keys the agent's
/// component names for the answer into the agent's terminal, as `POST
/// …/input` types text, and marks the agent working (approved) or waiting
/// for input (denied) until its next status event. 409 when the agent is not
/// waiting for approval or names no keys.
#[utoipa::path(post, path = "/api/sessions/{id}/approval", params(SessionId), request_body = ApprovalBody, responses((status = 200, body = Typed), Errors))]
async fn approval(
    State(s): State<Shared>,
    SessionId(id): SessionId,
    body: Result<Json<ApprovalBody>, JsonRejection>,
) -> ApiResult<Typed> {
    let Json(body) = body?;
    let approve = body.answer == Answer::Approve;
    let keys = s.manager.approval_keys(&id, approve).await?;
    console::type_into(|| async { Ok(s.manager.attach_argv(&id).await?) }, &keys).await?;
    s.manager.approval_answered(&id, approve).await?;
    Ok(Json(Typed { bytes: keys.len() as u64 }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsoleQuery {
    /// The viewer's terminal width in columns (default 80).
    #[serde(default = "default_cols")]
    #[param(minimum = 1, maximum = 1000)]
    cols: u64,
    /// The viewer's terminal height in rows (default 24).
    #[serde(default = "default_rows")]
    #[param(minimum = 1, maximum = 500)]
    rows: u64,
}

fn default_cols() -> u64 {
    80
}

fn default_rows() -> u64 {
    24
}

/// The session's terminal over a WebSocket: binary frames carry its bytes
/// both ways; a text frame `{"type":"resize","cols":C,"rows":R}` resizes
/// it. Each viewer runs its own attach (several at once are fine); the
/// socket closes when the attach command ends.
#[utoipa::path(get, path = "/api/sessions/{id}/console", params(SessionId, ConsoleQuery), responses((status = 101, description = "switching to the terminal's WebSocket"), Errors))]
async fn console_ws(
    State(s): State<Shared>,
    SessionId(id): SessionId,
    Q(q): Q<ConsoleQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let cols = within("cols", q.cols, 1, console::MAX_COLS.into())? as u16;
    let rows = within("rows", q.rows, 1, console::MAX_ROWS.into())? as u16;
    let session = s.manager.get(&id).await?;
    let Ok(ws) = ws else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "this is a WebSocket: connect with `Upgrade: websocket` (the dashboard's terminal does)".into(),
        ));
    };
    let argv = s.manager.attach_argv(&session.id).await?;
    let terminal = console::Terminal::open(&argv, cols, rows)?;
    // An attach command that failed at once runs again while the session runs.
    let again = move |cols, rows| {
        let (s, id) = (s.clone(), session.id.clone());
        async move {
            let running = s.manager.get(&id).await.ok()?.status == clauderon_sessions::Status::Running;
            let argv = s.manager.attach_argv(&id).await.ok().filter(|_| running)?;
            console::Terminal::open(&argv, cols, rows).ok()
        }
    };
    Ok(ws.on_upgrade(move |socket| terminal.bridge(socket, (cols, rows), again)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReloadQuery {
    /// Only the component with this id (`<id>.wasm` in the components directory).
    id: Option<String>,
}

/// Bring the loaded user components in line with the components directory
/// (what `clauderon plugins install`, `remove` and `reload` wrote there):
/// new files load, changed ones replace the loaded code once they load (a
/// refused one leaves the old code running), removed ones unload. Sessions
/// keep running; their next call uses the new code. Credential sources change
/// only when the daemon starts: a new or changed one is listed in
/// `needs_restart`, and the daemon keeps what it has until then.
#[utoipa::path(post, path = "/api/plugins/reload", params(ReloadQuery),
    responses((status = 200, body = clauderon_runtime::Reload), Errors))]
async fn reload_plugins(State(s): State<Shared>, Q(q): Q<ReloadQuery>) -> Json<clauderon_runtime::Reload> {
    Json(s.manager.reload_plugins(q.id.as_deref()).await)
}

/// Compare every session with its backend and fix what drifted.
#[utoipa::path(post, path = "/api/reconcile", responses((status = 200, body = Changes), Errors))]
async fn reconcile(State(s): State<Shared>) -> ApiResult<Changes> {
    Ok(Json(Changes { changes: s.manager.reconcile().await? }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Stored events after this sequence number: replayed first on the
    /// WebSocket; the answer to a plain GET (which starts at 0 without it).
    #[param(maximum = 9223372036854775807_u64)]
    after: Option<u64>,
}

/// Session events. With `Upgrade: websocket`: a stream of every session
/// event as JSON (an `Event`), live audit records as `{type: audit, record}`
/// and progress as `{type: progress}`. A plain GET answers the stored events
/// after `after` (at most 1000), for clients that poll.
#[utoipa::path(get, path = "/api/events", params(EventsQuery), responses((status = 200, description = "stored events after `after`, oldest first", body = Vec<clauderon_sessions::Event>), (status = 101, description = "switching to the WebSocket stream"), Errors))]
async fn events(
    State(s): State<Shared>,
    Q(q): Q<EventsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let after = match q.after {
        Some(a) => Some(within("after", a, 0, MAX_SEQ)?),
        None => None,
    };
    match ws {
        Ok(ws) => Ok(ws.on_upgrade(move |socket| stream_events(s, after, socket))),
        Err(_) => Ok(Json(s.manager.events_after(after.unwrap_or(0), 1000).await?).into_response()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Byte offset in the transcript to continue from (the last answer's `cursor`).
    #[serde(default)]
    #[param(maximum = 9223372036854775807_u64)]
    cursor: u64,
}

/// Chat messages from the agent's transcript after a cursor (incremental).
#[utoipa::path(get, path = "/api/sessions/{id}/history", params(SessionId, HistoryQuery), responses((status = 200, body = clauderon_sessions::history::History), Errors))]
async fn history(
    State(s): State<Shared>,
    SessionId(id): SessionId,
    Q(q): Q<HistoryQuery>,
) -> ApiResult<clauderon_sessions::history::History> {
    let cursor = within("cursor", q.cursor, 0, MAX_SEQ)?;
    Ok(Json(s.manager.history(&id, cursor).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StatusQuery {
    /// The session's secret (instead of the API token).
    #[serde(default)]
    key: String,
}

/// An agent's status event (what its CLI's own hooks send): its agent
/// component says what status it implies.
#[utoipa::path(post, path = "/api/sessions/{id}/status-event", security(()), params(("id" = String, Path, description = "the session's id"), StatusQuery), request_body(content = Object, description = "the event as the agent CLI sent it"), responses((status = 200, body = StatusAnswer), Errors))]
async fn status_event(
    State(s): State<Shared>,
    SessionId(id): SessionId,
    Q(q): Q<StatusQuery>,
    body: axum::body::Bytes,
) -> ApiResult<StatusAnswer> {
    if !s.manager.status_key_ok(&id, &q.key) {
        return Err(ApiError(StatusCode::FORBIDDEN, "wrong or missing session key for this status event".into()));
    }
    let body = String::from_utf8_lossy(&body);
    Ok(Json(StatusAnswer { agent_status: s.manager.status_event(&id, &body).await? }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this session's records (id or name).
    session: Option<String>,
    /// Records after this sequence number.
    #[serde(default)]
    #[param(maximum = 9223372036854775807_u64)]
    after: u64,
    /// At most this many (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u64>,
}

/// The proxy's audit records, oldest first.
#[utoipa::path(get, path = "/api/audit", params(AuditQuery), responses((status = 200, body = AuditPage), Errors))]
async fn audit(State(s): State<Shared>, Q(q): Q<AuditQuery>) -> ApiResult<AuditPage> {
    let after = within("after", q.after, 0, MAX_SEQ)?;
    let limit = within("limit", q.limit.unwrap_or(1000), 1, 10_000)? as usize;
    let pending = s.audit.pending();
    let records = s
        .audit
        .records_after(after, limit, q.session)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the audit failed: {e}")))?;
    let last = records.last().map(|r| r.seq).unwrap_or(after);
    Ok(Json(AuditPage { records, last_seq: last, pending }))
}

/// What this machine can run now: the daemon, the sandbox, each backend and
/// agent (and the command that installs what is missing), each credential.
/// `ok` says whether the default backend and agent can work.
#[utoipa::path(get, path = "/api/doctor", responses((status = 200, body = doctor::Doctor), Errors))]
async fn doctor(State(s): State<Shared>) -> Json<doctor::Doctor> {
    Json(doctor::report(&s).await)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DirectoriesQuery {
    /// The directory: absolute, `~`, `~/…` or relative to the home (the
    /// home when left out). It must be under the user's home.
    #[serde(default)]
    path: String,
    /// List hidden directories (names starting with `.`) too.
    #[serde(default)]
    hidden: bool,
}

/// The directories inside one directory under the user's home, git
/// repositories marked (the create dialog's directory browser). Files are
/// never named; a path outside the home is refused (403), `..` and symlinks
/// resolved first.
#[utoipa::path(get, path = "/api/directories", params(DirectoriesQuery), responses((status = 200, body = directories::Listing), Errors))]
async fn list_directories(Q(q): Q<DirectoriesQuery>) -> ApiResult<directories::Listing> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(|| {
        ApiError(StatusCode::NOT_FOUND, "the daemon has no HOME, so there is nothing to browse".into())
    })?;
    Ok(Json(directories::list(home.into(), q.path, q.hidden).await?))
}

/// Each service a rule can inject: available, from which source, masked (never the value).
#[utoipa::path(get, path = "/api/credentials", responses((status = 200, body = CredentialsAnswer), Errors))]
async fn credentials(State(s): State<Shared>) -> ApiResult<CredentialsAnswer> {
    let services = s.proxy.rules().services();
    let status = s.proxy.credentials().status(&services).await;
    Ok(Json(CredentialsAnswer { sources: s.proxy.credentials().source_ids(), services: status }))
}

async fn stream_events(s: Shared, after: Option<u64>, mut socket: WebSocket) {
    let mut audit = s.audit.subscribe();
    let mut progress = s.manager.runtime().progress();
    let mut rx = s.manager.subscribe();
    let mut last = 0;
    if let Some(after) = after {
        match s.manager.events_after(after, 10_000).await {
            Ok(old) => {
                for e in old {
                    last = e.seq;
                    if send(&mut socket, &e).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!("replaying events failed: {e}"),
        }
    }
    loop {
        let received = tokio::select! {
            e = rx.recv() => e,
            p = progress.recv() => {
                if let Ok(p) = p {
                    let text = json!({ "type": "progress", "component": p.component, "message": p.message });
                    if socket.send(Message::Text(text.to_string().into())).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            r = audit.recv() => match r {
                Ok(record) => {
                    if send_audit(&mut socket, &record).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let note = json!({ "type": "audit-lagged", "missed": n });
                    if socket.send(Message::Text(note.to_string().into())).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => continue,
            },
        };
        match received {
            Ok(e) if e.seq > last => {
                if send(&mut socket, &e).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                let note = json!({ "type": "lagged", "missed": n });
                if socket.send(Message::Text(note.to_string().into())).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn send_audit(socket: &mut WebSocket, record: &AuditRecord) -> Result<(), axum::Error> {
    let text = json!({ "type": "audit", "record": record }).to_string();
    socket.send(Message::Text(text.into())).await
}

async fn send(socket: &mut WebSocket, e: &clauderon_sessions::Event) -> Result<(), axum::Error> {
    let text = serde_json::to_string(e).unwrap_or_default();
    socket.send(Message::Text(text.into())).await
}
