//! The HTTP + WebSocket API served by the daemon (default 127.0.0.1:3030).
//!
//! REST JSON under `/api` for sessions, plugins, config, health, the proxy's
//! audit and credential status; a WebSocket at `/api/events` streaming every
//! session event and audit record; the OpenAPI
//! document at `/api/openapi.json`. Errors are `{"error": "..."}` with a
//! fitting status. [`guard`] decides who may call: the daemon's own Host and
//! Origin on every request, and its token on all but health and the
//! agent-status path.

pub mod guard;
mod openapi;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use clauderon_proxy::{AuditLog, AuditRecord, Proxy};
use clauderon_sessions::{AccessMode, CreateRequest, Manager, SessionError};
use serde::Deserialize;
use serde_json::json;

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
}

type Shared = Arc<ApiState>;

/// An API error: a status and a sentence.
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

/// The API's router.
pub fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/api/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/api/config", get(config))
        .route("/api/plugins", get(plugins))
        .route("/api/sessions", get(list).post(create))
        .route("/api/sessions/{id}", get(show).delete(delete))
        .route("/api/sessions/{id}/stop", post(stop))
        .route("/api/sessions/{id}/start", post(start))
        .route("/api/sessions/{id}/archive", post(archive))
        .route("/api/sessions/{id}/unarchive", post(unarchive))
        .route("/api/sessions/{id}/access-mode", put(access_mode))
        .route("/api/sessions/{id}/attach", get(attach))
        .route("/api/sessions/{id}/output", get(output))
        .route("/api/reconcile", post(reconcile))
        .route("/api/audit", get(audit))
        .route("/api/credentials", get(credentials))
        .route("/api/sessions/{id}/history", get(history))
        .route("/api/events", get(events))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    // Open to any caller that names the daemon: health, and agents' status
    // events, which carry their session's own key instead of the API token.
    let open = Router::new().route("/api/health", get(health)).route("/api/sessions/{id}/hook", post(hook));
    Router::new()
        .merge(protected)
        .merge(open)
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such API endpoint (see /api/openapi.json)".into()) })
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

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn config(State(s): State<Shared>) -> Json<serde_json::Value> {
    Json(s.config.clone())
}

async fn plugins(State(s): State<Shared>) -> Json<serde_json::Value> {
    let rt = s.manager.runtime();
    let loaded: Vec<_> = rt
        .plugins()
        .map(|p| {
            json!({
                "id": p.id(), "kind": p.kind(), "version": p.manifest.version,
                "description": p.manifest.description, "source": p.source,
                "capabilities": p.grants, "grants": p.grants.describe(),
            })
        })
        .collect();
    let refused: Vec<_> = rt.failures().iter().map(|f| json!({ "origin": f.origin, "error": f.error })).collect();
    Json(json!({ "plugins": loaded, "refused": refused }))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    archived: bool,
}

async fn list(State(s): State<Shared>, Query(q): Query<ListQuery>) -> ApiResult<Vec<clauderon_sessions::Session>> {
    Ok(Json(s.manager.list(q.archived).await?))
}

async fn create(
    State(s): State<Shared>,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<clauderon_sessions::Session>), ApiError> {
    let Json(req) = body?;
    Ok((StatusCode::CREATED, Json(s.manager.create(req).await?)))
}

async fn show(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult<clauderon_sessions::Session> {
    Ok(Json(s.manager.get(&id).await?))
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<serde_json::Value> {
    Ok(Json(json!({ "message": s.manager.delete(&id, q.force).await? })))
}

async fn stop(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult<clauderon_sessions::Session> {
    Ok(Json(s.manager.stop(&id).await?))
}

async fn start(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult<clauderon_sessions::Session> {
    Ok(Json(s.manager.start(&id).await?))
}

async fn archive(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult<clauderon_sessions::Session> {
    Ok(Json(s.manager.archive(&id).await?))
}

async fn unarchive(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult<clauderon_sessions::Session> {
    Ok(Json(s.manager.unarchive(&id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: AccessMode,
}

async fn access_mode(
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<ModeBody>, JsonRejection>,
) -> ApiResult<clauderon_sessions::Session> {
    let Json(b) = body?;
    Ok(Json(s.manager.set_access_mode(&id, b.mode).await?))
}

async fn attach(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult<serde_json::Value> {
    Ok(Json(json!({ "argv": s.manager.attach_argv(&id).await? })))
}

#[derive(Deserialize)]
struct OutputQuery {
    #[serde(default = "default_lines")]
    lines: u32,
}

fn default_lines() -> u32 {
    50
}

async fn output(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<OutputQuery>,
) -> ApiResult<serde_json::Value> {
    Ok(Json(json!({ "output": s.manager.output(&id, q.lines).await? })))
}

async fn reconcile(State(s): State<Shared>) -> ApiResult<serde_json::Value> {
    Ok(Json(json!({ "changes": s.manager.reconcile().await? })))
}

#[derive(Deserialize)]
struct EventsQuery {
    /// Replay stored events after this sequence number first.
    after: Option<u64>,
}

async fn events(State(s): State<Shared>, Query(q): Query<EventsQuery>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| stream_events(s, q.after, socket))
}

#[derive(Deserialize)]
struct HistoryQuery {
    /// Byte offset in the transcript to continue from (the last answer's `cursor`).
    #[serde(default)]
    cursor: u64,
}

async fn history(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<clauderon_sessions::history::History> {
    Ok(Json(s.manager.history(&id, q.cursor).await?))
}

#[derive(Deserialize)]
struct HookQuery {
    /// The session's secret.
    #[serde(default)]
    key: String,
}

async fn hook(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HookQuery>,
    body: String,
) -> ApiResult<serde_json::Value> {
    if !s.manager.hook_key_ok(&id, &q.key) {
        return Err(ApiError(StatusCode::FORBIDDEN, "wrong or missing session key for this hook".into()));
    }
    Ok(Json(json!({ "agent_status": s.manager.hook_event(&id, &body).await? })))
}

#[derive(Deserialize)]
struct AuditQuery {
    /// Only this session's records (id or name).
    session: Option<String>,
    /// Records after this sequence number.
    #[serde(default)]
    after: u64,
    /// At most this many (default 1000, max 10000).
    limit: Option<usize>,
}

async fn audit(State(s): State<Shared>, Query(q): Query<AuditQuery>) -> ApiResult<serde_json::Value> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let records = s
        .audit
        .records_after(q.after, limit, q.session)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the audit failed: {e}")))?;
    let last = records.last().map(|r| r.seq).unwrap_or(q.after);
    Ok(Json(json!({ "records": records, "last_seq": last })))
}

async fn credentials(State(s): State<Shared>) -> ApiResult<serde_json::Value> {
    let services = s.proxy.rules().services();
    let status = s.proxy.credentials().status(&services).await;
    Ok(Json(json!({ "sources": s.proxy.credentials().source_ids(), "services": status })))
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
