//! The status-event relay. An agent reports what it is doing (its CLI's own
//! hooks run a command that POSTs the event) to
//! `http://clauderon.internal/api/sessions/{id}/status-event?key=…` through
//! its own proxy listener (its `HTTP_PROXY`), and the proxy passes exactly
//! that request on to the daemon's API. Status events therefore arrive
//! wherever the session reaches its proxy — a container on a bridge network
//! included — without exposing the API itself. Only the session's own
//! status-event path is served, and only to a client that already proved it
//! is the session. (Not to be confused with hook *plugins*, which get session
//! events: `clauderon_sessions::hooks`.)

use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::BoxError;
use crate::ProxyBody;
use crate::forward::text;
use crate::server::{SessionCtx, Shared};

/// The host name agents send status events to (never resolved: the proxy answers it).
pub const STATUS_HOST: &str = "clauderon.internal";

/// The status-event URL base sessions are given (`{base}/api/sessions/{id}/status-event`).
pub fn status_base() -> String {
    format!("http://{STATUS_HOST}")
}

/// Relay one status event to the daemon's API, or refuse it.
pub(crate) async fn relay(req: Request<Incoming>, ctx: &SessionCtx, shared: &Shared) -> Response<ProxyBody> {
    let Some(target) = shared.status_target.get() else {
        return text(StatusCode::NOT_FOUND, "clauderon proxy: this daemon takes no status events.\n");
    };
    let expected = format!("/api/sessions/{}/status-event", ctx.ident.id);
    if req.method() != Method::POST || req.uri().path() != expected {
        return text(
            StatusCode::NOT_FOUND,
            format!("clauderon proxy: only POST {expected} is served on {STATUS_HOST}.\n"),
        );
    }
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let uri: Uri = match format!("http://{target}{expected}{query}").parse() {
        Ok(uri) => uri,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("clauderon proxy: bad status-event URL ({e}).\n")),
    };
    let (mut parts, body) = req.into_parts();
    parts.uri = uri;
    parts.headers.remove(header::PROXY_AUTHORIZATION);
    parts.headers.remove(header::HOST);
    let body = body.map_err(BoxError::from).boxed();
    match shared.status_client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp.map(|b| b.map_err(BoxError::from).boxed()),
        Err(e) => {
            tracing::warn!(session = %ctx.ident.name, "relaying a status event to the API: {e}");
            text(StatusCode::BAD_GATEWAY, "clauderon proxy: the daemon's API did not answer the status event.\n")
        }
    }
}
