//! One request inside a session's tunnel (or a plain `http://` request):
//! access-mode check, credential injection, forwarding with both bodies
//! streamed, WebSocket relay, and the audit record — written when the
//! response body has been sent (or dropped), so its byte counts are real.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::audit::{AuditRecord, AuditSink, Decision, now_ms};
use crate::policy::{self, Verdict};
use crate::scrub::Needles;
use crate::server::{SessionCtx, Shared};
use crate::upstream::{Lane, error_chain};
use crate::{BoxError, ProxyBody, ProxyError};

/// The largest GraphQL body read to check a read-only request.
const MAX_GRAPHQL_BODY: usize = 1 << 20;

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    https: bool,
    host: String,
    port: u16,
}

impl Target {
    /// The target of a CONNECT tunnel.
    pub fn https(host: String, port: u16) -> Self {
        Self { https: true, host, port }
    }

    /// The target of an absolute-form `http://` request.
    pub fn from_absolute(uri: &Uri) -> Option<Self> {
        (uri.scheme_str() == Some("http")).then_some(())?;
        Some(Self { https: false, host: uri.host()?.to_string(), port: uri.port_u16().unwrap_or(80) })
    }

    fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default { self.host.clone() } else { format!("{}:{}", self.host, self.port) }
    }

    /// The upstream URI of a request for `path_and_query` on this target.
    pub fn uri(&self, path_and_query: Option<&http::uri::PathAndQuery>) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(if self.https { "https" } else { "http" })
            .authority(self.authority())
            .path_and_query(path_and_query.map(|p| p.as_str()).unwrap_or("/"))
            .build()
    }
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response<ProxyBody> {
    let mut resp = Response::new(full(Bytes::from(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// An empty body.
pub(crate) fn empty() -> ProxyBody {
    full(Bytes::new())
}

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A reader that adds every byte it reads to `count`.
struct CountedReader<T> {
    io: T,
    count: Arc<AtomicU64>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CountedReader<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        self.count.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        polled
    }
}

/// The audit record of one request, sent when dropped.
struct Pending {
    record: AuditRecord,
    started: Instant,
    up: Arc<AtomicU64>,
    sink: Arc<dyn AuditSink>,
}

impl Pending {
    fn finish(mut self, decision: Decision, status: u16, reason: Option<String>) {
        self.record.decision = decision;
        self.record.status = Some(status);
        if reason.is_some() {
            self.record.reason = reason;
        }
        drop(self);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.record.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.record.bytes_up = self.up.load(Ordering::Relaxed);
        self.sink.record(std::mem::replace(&mut self.record, blank()));
    }
}

pub(crate) fn blank() -> AuditRecord {
    AuditRecord {
        seq: 0,
        at_ms: 0,
        session_id: String::new(),
        session_name: String::new(),
        host: String::new(),
        method: String::new(),
        path: String::new(),
        decision: Decision::Failed,
        reason: None,
        credential: None,
        status: None,
        duration_ms: 0.0,
        bytes_up: 0,
        bytes_down: 0,
    }
}

/// A body that counts its bytes; the response side also carries the audit
/// record, sent when the body is done or dropped.
struct Counted {
    inner: ProxyBody,
    count: Arc<AtomicU64>,
    pending: Option<Pending>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
                    if let Some(p) = self.pending.as_mut() {
                        p.record.bytes_down += data.len() as u64;
                    }
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(p) = self.pending.as_mut() {
                    p.record.reason = Some(format!("the body broke off: {e}"));
                }
            }
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn counted(inner: ProxyBody, count: Arc<AtomicU64>, pending: Option<Pending>) -> ProxyBody {
    Counted { inner, count, pending }.boxed()
}

/// Handle one request for `target` from the session.
///
/// `lane` is the tunnel's own upstream connection, when the request came
/// through a tunnel: HTTP/1.1 requests go over it instead of the pool.
#[tracing::instrument(name = "proxy_request", level = "debug", skip_all, fields(session = %ctx.ident.name, host = %target.host, method = %req.method(), path = %req.uri().path()))]
pub(crate) async fn handle(
    req: Request<Incoming>,
    target: Target,
    lane: Option<Arc<Lane>>,
    ctx: Arc<SessionCtx>,
    shared: Arc<Shared>,
) -> Response<ProxyBody> {
    let up = Arc::new(AtomicU64::new(0));
    let mut pending = Pending {
        record: AuditRecord {
            at_ms: now_ms(),
            session_id: ctx.ident.id.clone(),
            session_name: ctx.ident.name.clone(),
            host: target.host.clone(),
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            ..blank()
        },
        started: Instant::now(),
        up: up.clone(),
        sink: shared.audit.clone(),
    };
    let (mut parts, body) = req.into_parts();
    let uri = match target.uri(parts.uri.path_and_query()) {
        Ok(uri) => uri,
        Err(e) => {
            drain(body).await;
            return failed(pending, StatusCode::BAD_REQUEST, format!("bad request target: {e}"));
        }
    };
    if !ctx.rate.take() {
        drain(body).await;
        let reason = over_rate(&ctx);
        let resp = too_many_requests(&reason);
        pending.finish(Decision::Blocked, 429, Some(reason));
        return resp;
    }
    if let Some(reason) = ctx.egress_refusal(&target.host, &shared) {
        drain(body).await;
        let resp = egress_refused(&ctx, &target.host, &reason);
        pending.finish(Decision::Blocked, 403, Some(reason));
        return resp;
    }
    let body = match policy::check(ctx.mode(), &parts.method, parts.uri.path(), parts.uri.query(), &parts.headers) {
        Verdict::Allow => counted(body.map_err(BoxError::from).boxed(), up.clone(), None),
        Verdict::Block(reason) => {
            drain(body).await;
            return blocked(pending, &ctx, reason);
        }
        Verdict::InspectGraphql => match Limited::new(body, MAX_GRAPHQL_BODY).collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                if let Verdict::Block(reason) = policy::graphql(&bytes) {
                    return blocked(pending, &ctx, reason);
                }
                up.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                full(bytes)
            }
            Err(e) => return blocked(pending, &ctx, format!("the GraphQL body could not be read to check it ({e})")),
        },
    };
    let websocket = is_websocket(&parts.headers);
    strip_hop_by_hop(&mut parts.headers, websocket);
    let needles = inject(&mut parts.headers, &target, &ctx, &shared, &mut pending).await;
    if websocket {
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        return relay_websocket(parts, body, uri, &target, upgrade, &shared, pending, needles, &ctx).await;
    }
    let sent = match lane.filter(|_| parts.version != Version::HTTP_2) {
        Some(lane) => {
            origin_form(&mut parts, &uri, &target);
            lane.send(&shared.upstream, &target.host, target.port, Request::from_parts(parts, body)).await
        }
        None => {
            parts.headers.remove(header::HOST);
            parts.uri = uri;
            let client = shared.upstream.for_version(parts.version);
            parts.version = Version::HTTP_11;
            client.request(Request::from_parts(parts, body)).await.map_err(|e| {
                match crate::destination::refusal_in(&e) {
                    Some(why) => ProxyError::Refused(why),
                    None => ProxyError::Upstream(error_chain("the upstream request failed", &e)),
                }
            })
        }
    };
    match sent {
        Ok(resp) => {
            let (mut rparts, rbody) = resp.into_parts();
            strip_hop_by_hop(&mut rparts.headers, false);
            pending.record.decision = Decision::Allowed;
            pending.record.status = Some(rparts.status.as_u16());
            let mut rbody = rbody.map_err(BoxError::from).boxed();
            if let Some(needles) = needles {
                needles.scrub_headers(&mut rparts.headers);
                rbody = needles.scrub_body(rbody);
            }
            let body = counted(rbody, Arc::new(AtomicU64::new(0)), Some(pending));
            Response::from_parts(rparts, body)
        }
        Err(ProxyError::Refused(why)) => refused(pending, why),
        Err(ProxyError::Upstream(why)) => failed(pending, StatusCode::BAD_GATEWAY, why),
        Err(e) => failed(pending, StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// Address the request to `target` in origin form (`Host` from the target,
/// never the session's own `Host`; the path and query from `uri`), as
/// HTTP/1.1 on a connection to the target itself wants it.
fn origin_form(parts: &mut http::request::Parts, uri: &Uri, target: &Target) {
    match HeaderValue::from_str(&target.authority()) {
        Ok(host) => parts.headers.insert(header::HOST, host),
        Err(_) => parts.headers.remove(header::HOST),
    };
    parts.uri = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse().unwrap_or_default();
    parts.version = Version::HTTP_11;
}

/// Put the rule's credential in the headers, and say so in the audit.
/// Returns what the response must be scrubbed of (the value and the header
/// value it was sent as), when a credential was injected; the request then
/// asks for an uncompressed response, so its body can be scrubbed.
///
/// A component's requests get only the services it was granted (`ctx.services`).
async fn inject(
    headers: &mut HeaderMap,
    target: &Target,
    ctx: &SessionCtx,
    shared: &Shared,
    pending: &mut Pending,
) -> Option<Arc<Needles>> {
    let rule = shared.rules.find(&target.host)?;
    if !target.https {
        pending.record.reason = Some(format!("rule `{}`: no credential is sent over plain HTTP", rule.name));
        return None;
    }
    let granted = |service: &str| ctx.services.as_ref().is_none_or(|s| s.iter().any(|g| g == service));
    if !rule.inject.iter().any(|i| granted(&i.service)) {
        let services: Vec<&str> = rule.inject.iter().map(|i| i.service.as_str()).collect();
        pending.record.reason = Some(format!(
            "rule `{}`: `{}` is not granted to {}; forwarded unchanged",
            rule.name,
            services.join("` or `"),
            ctx.ident.name
        ));
        return None;
    }
    for injection in rule.inject.iter().filter(|i| granted(&i.service)) {
        if let Some(credential) = shared.credentials.get(&injection.service).await
            && rule.apply(headers, injection, credential.value.expose())
        {
            let sent = headers.get(injection.header.as_str()).and_then(|v| v.to_str().ok());
            match shared.needles.get(&injection.service, &injection.header, credential.value.expose(), sent) {
                Ok(needles) => {
                    pending.record.credential = Some(format!("{} from {}", injection.service, credential.source));
                    headers.remove(header::ACCEPT_ENCODING);
                    return Some(needles);
                }
                Err(e) => {
                    // Never send what the response could not be scrubbed of.
                    headers.remove(injection.header.as_str());
                    pending.record.reason =
                        Some(format!("rule `{}`: {e}; forwarded without the credential", rule.name));
                    return None;
                }
            }
        }
    }
    let services: Vec<&str> = rule.inject.iter().map(|i| i.service.as_str()).collect();
    pending.record.reason = Some(format!(
        "rule `{}`: no `{}` credential available; forwarded unchanged",
        rule.name,
        services.join("` or `")
    ));
    None
}

/// Read and drop a refused request's body (bounded), so the client reads the
/// 403 instead of a connection reset while it is still sending.
async fn drain(body: Incoming) {
    let read = Limited::new(body, MAX_GRAPHQL_BODY).collect();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
}

fn blocked(pending: Pending, ctx: &SessionCtx, reason: String) -> Response<ProxyBody> {
    let body = format!(
        "clauderon proxy: blocked — this session is read-only and {reason}.\n\
         To allow writes: clauderon set-access-mode {} --mode read-write\n",
        ctx.ident.name
    );
    pending.finish(Decision::Blocked, 403, Some(reason));
    text(StatusCode::FORBIDDEN, body)
}

/// Why a request over the session's rate is refused.
pub(crate) fn over_rate(ctx: &SessionCtx) -> String {
    format!("this session is over its {} requests a second ([proxy] max_requests_per_second)", ctx.rate.per_second())
}

/// The 429 for a request over the session's rate.
pub(crate) fn too_many_requests(reason: &str) -> Response<ProxyBody> {
    let mut resp = text(StatusCode::TOO_MANY_REQUESTS, format!("clauderon proxy: {reason}; slow down.\n"));
    resp.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    resp
}

/// The 403 for a host the session's egress policy does not allow: what to
/// run to allow it.
pub(crate) fn egress_refused(ctx: &SessionCtx, host: &str, reason: &str) -> Response<ProxyBody> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    text(
        StatusCode::FORBIDDEN,
        format!(
            "clauderon proxy: blocked — {reason}.\n\
             To allow it for this session: clauderon set-egress {} --allow-host {host}\n\
             For every session: add it to `[egress] allow` in config.toml.\n",
            ctx.ident.name
        ),
    )
}

/// A destination the proxy never connects to (see [`crate::destination`]).
fn refused(pending: Pending, reason: String) -> Response<ProxyBody> {
    let body = format!("clauderon proxy: {reason}.\n");
    pending.finish(Decision::Blocked, 403, Some(reason));
    text(StatusCode::FORBIDDEN, body)
}

fn failed(pending: Pending, status: StatusCode, reason: String) -> Response<ProxyBody> {
    let body = format!("clauderon proxy: {reason}\n");
    pending.finish(Decision::Failed, status.as_u16(), Some(reason));
    text(status, body)
}

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Hop-by-hop headers the `http` crate has no constant for.
const PROXY_CONNECTION: header::HeaderName = header::HeaderName::from_static("proxy-connection");
const KEEP_ALIVE: header::HeaderName = header::HeaderName::from_static("keep-alive");

/// Remove hop-by-hop headers (keeping `Connection: upgrade` + `Upgrade` for a WebSocket).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, websocket: bool) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .filter(|s| !(websocket && s == "upgrade"))
        .collect();
    for name in listed {
        headers.remove(name.as_str());
    }
    // Not `Trailer`: it is end-to-end (RFC 9110 §6.6.2), naming the trailer
    // fields to come, and hyper sends a response's trailers only when named.
    for name in [&PROXY_CONNECTION, &KEEP_ALIVE, &header::PROXY_AUTHENTICATE, &header::PROXY_AUTHORIZATION] {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
    if headers.get(header::TE).is_some_and(|v| v != "trailers") {
        headers.remove(header::TE);
    }
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// Relay a WebSocket upgrade: send the handshake upstream over HTTP/1.1, and
/// on 101 join the two upgraded connections.
#[allow(clippy::too_many_arguments)]
async fn relay_websocket(
    mut parts: http::request::Parts,
    body: ProxyBody,
    uri: Uri,
    target: &Target,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    shared: &Shared,
    mut pending: Pending,
    needles: Option<Arc<Needles>>,
    ctx: &SessionCtx,
) -> Response<ProxyBody> {
    let Some(client_upgrade) = client_upgrade else {
        return failed(pending, StatusCode::BAD_REQUEST, "this connection cannot be upgraded".into());
    };
    // The WebSocket outlives its connection's serving: it keeps the slot.
    let slot = parts.extensions.remove::<crate::limits::Slot>();
    let io = match shared.upstream.connect_h1(&target.host, target.port).await {
        Ok(io) => io,
        Err(crate::ProxyError::Refused(why)) => return refused(pending, why),
        Err(e) => return failed(pending, StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(io)).await {
        Ok(pair) => pair,
        Err(e) => return failed(pending, StatusCode::BAD_GATEWAY, format!("WebSocket upstream handshake: {e}")),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("WebSocket upstream connection: {e}");
        }
    });
    origin_form(&mut parts, &uri, target);
    if needles.is_some() {
        // No compression of frames: the upstream's frames must be readable to scrub.
        parts.headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    }
    let mut resp = match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp,
        Err(e) => return failed(pending, StatusCode::BAD_GATEWAY, format!("WebSocket upgrade request: {e}")),
    };
    pending.record.status = Some(resp.status().as_u16());
    pending.record.decision = Decision::Allowed;
    if let Some(needles) = &needles {
        needles.scrub_headers(resp.headers_mut());
    }
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Not upgraded: an ordinary answer, scrubbed like any other.
        let (rparts, rbody) = resp.into_parts();
        let mut rbody = rbody.map_err(BoxError::from).boxed();
        if let Some(needles) = needles {
            rbody = needles.scrub_body(rbody);
        }
        let body = counted(rbody, Arc::new(AtomicU64::new(0)), Some(pending));
        return Response::from_parts(rparts, body);
    }
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    let relay = async move {
        match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok((client, upstream)) => {
                // Bytes are counted as they pass, so a relay that ends in an
                // error (an agent that exits mid-stream) is audited with them.
                let down = Arc::new(AtomicU64::new(0));
                let (client_r, mut client_w) = tokio::io::split(TokioIo::new(client));
                let (upstream_r, mut upstream_w) = tokio::io::split(TokioIo::new(upstream));
                let mut client_r = CountedReader { io: client_r, count: pending.up.clone() };
                let mut upstream_r = CountedReader { io: upstream_r, count: down.clone() };
                let up = async {
                    let n = tokio::io::copy(&mut client_r, &mut upstream_w).await;
                    tokio::io::AsyncWriteExt::shutdown(&mut upstream_w).await.ok();
                    n
                };
                let down_relay = async {
                    match needles {
                        None => {
                            let n = tokio::io::copy(&mut upstream_r, &mut client_w).await;
                            tokio::io::AsyncWriteExt::shutdown(&mut client_w).await.ok();
                            n
                        }
                        Some(needles) => crate::scrub::relay_scrubbed_frames(&mut upstream_r, client_w, needles).await,
                    }
                };
                let relayed = tokio::try_join!(up, down_relay);
                pending.record.bytes_down += down.load(Ordering::Relaxed);
                match relayed {
                    // A peer that goes away without TLS's close_notify (an
                    // agent exiting) has ended the WebSocket, not broken it.
                    Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
                        pending.record.reason = Some(format!("the WebSocket broke off: {e}"))
                    }
                    _ => {}
                }
            }
            Err(e) => pending.record.reason = Some(format!("the WebSocket upgrade failed: {e}")),
        }
        drop(pending);
        drop(slot);
    };
    tokio::spawn(ctx.until_ended("WebSocket", relay));
    let (rparts, _) = resp.into_parts();
    Response::from_parts(rparts, empty())
}
