//! The agent-hook relay. Agents POST their hook events to
//! `http://clauderon.internal/api/sessions/{id}/hook?key=…` through their own
//! proxy listener (their `HTTP_PROXY`), and the proxy passes exactly that
//! request on to the daemon's API. Hooks therefore work wherever the session
//! reaches its proxy — a container on a bridge network included — without
//! exposing the API itself. Only the session's own hook path is served, and
//! only to a client that already proved it is the session.

use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::BoxError;
use crate::ProxyBody;
use crate::forward::text;
use crate::server::{SessionCtx, Shared};

/// The host name agents send hook events to (never resolved: the proxy answers it).
pub const HOOK_HOST: &str = "clauderon.internal";

/// The hook URL base sessions are given (`{base}/api/sessions/{id}/hook`).
pub fn hook_base() -> String {
    format!("http://{HOOK_HOST}")
}

/// Relay one hook request to the daemon's API, or refuse it.
pub(crate) async fn relay(req: Request<Incoming>, ctx: &SessionCtx, shared: &Shared) -> Response<ProxyBody> {
    let Some(target) = shared.hook_target.get() else {
        return text(StatusCode::NOT_FOUND, "clauderon proxy: this daemon takes no hook events.\n");
    };
    let expected = format!("/api/sessions/{}/hook", ctx.ident.id);
    if req.method() != Method::POST || req.uri().path() != expected {
        return text(
            StatusCode::NOT_FOUND,
            format!("clauderon proxy: only POST {expected} is served on {HOOK_HOST}.\n"),
        );
    }
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let uri: Uri = match format!("http://{target}{expected}{query}").parse() {
        Ok(uri) => uri,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("clauderon proxy: bad hook URL ({e}).\n")),
    };
    let (mut parts, body) = req.into_parts();
    parts.uri = uri;
    parts.headers.remove(header::PROXY_AUTHORIZATION);
    parts.headers.remove(header::HOST);
    let body = body.map_err(BoxError::from).boxed();
    match shared.hook_client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp.map(|b| b.map_err(BoxError::from).boxed()),
        Err(e) => {
            tracing::warn!(session = %ctx.ident.name, "relaying a hook event to the API: {e}");
            text(StatusCode::BAD_GATEWAY, "clauderon proxy: the daemon's API did not answer the hook event.\n")
        }
    }
}
