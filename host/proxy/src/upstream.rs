//! The upstream side: pooled hyper clients over TLS verified against the
//! system roots plus the configured extra roots, with `TCP_NODELAY` — one
//! that speaks HTTP/1.1 and one that offers HTTP/2 by ALPN, so a request goes
//! upstream in the protocol the session spoke (an HTTP/1.1 request is not
//! paying for HTTP/2's framing and flow control; gRPC keeps its HTTP/2) —
//! and a dialer that honours
//! `[proxy.upstreams]` overrides (the host's traffic goes to another address,
//! still over TLS with SNI and Host unchanged; `"*"` catches every host name
//! without its own — not IP literals or `localhost` — so tests never reach a
//! real host) and otherwise connects only where [`crate::destination`] allows.
//!
//! A tunnel's HTTP/1.1 requests skip the pool: each tunnel has its own
//! [`Lane`], one upstream connection driven by the tunnel's own task
//! ([`drive_while`]), so a request and its response never hop between tasks
//! (the pool's connection task) or wait on the pool's lock.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::destination::Destinations;
use crate::read_ahead::ReadAhead;
use crate::{ProxyBody, ProxyError};

/// Opens TCP connections, honouring overrides.
#[derive(Clone, Default)]
pub struct Dialer {
    /// `host`, `host:port` or `*` (every other host) → `addr:port` to dial instead.
    overrides: Arc<HashMap<String, String>>,
    /// Where connections may go without an override.
    destinations: Arc<Destinations>,
}

impl Dialer {
    /// A dialer with these overrides and destination rule.
    pub fn new(overrides: HashMap<String, String>, destinations: Destinations) -> Self {
        let overrides = overrides.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        Self { overrides: Arc::new(overrides), destinations: Arc::new(destinations) }
    }

    /// Connect to `host:port` (or its override), with `TCP_NODELAY`. Without
    /// an override the name is resolved once, inward addresses are refused
    /// (`PermissionDenied`, with a sentence saying why), and the connection
    /// goes to an address that was checked.
    pub async fn dial(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let host = host.to_ascii_lowercase();
        let target = self.target(&host, port);
        let stream = match target {
            Some(addr) => TcpStream::connect(addr.as_str()).await?,
            None => {
                let addrs = self.destinations.resolve(&host, port).await?;
                TcpStream::connect(addrs.as_slice()).await?
            }
        };
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The override for `host:port`, then for `host`, then `*` — which
    /// catches host names only: an IP literal or `localhost` is dialled (and
    /// checked by [`Destinations`]) as always.
    fn target(&self, host: &str, port: u16) -> Option<&String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = bare.parse::<std::net::IpAddr>().is_err() && bare != "localhost" && !bare.ends_with(".localhost");
        (self.overrides.get(&format!("{host}:{port}")))
            .or_else(|| self.overrides.get(host))
            .or_else(|| self.overrides.get(WILDCARD).filter(|_| name))
    }
}

/// The override key that catches every host without one of its own.
const WILDCARD: &str = "*";

/// A dialled upstream connection, under its TLS: read ahead while a body streams.
pub type UpstreamIo = ReadAhead<TcpStream>;

type DialFuture = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<TokioIo<UpstreamIo>>> + Send>>;

impl tower_service::Service<http::Uri> for Dialer {
    type Response = TokioIo<UpstreamIo>;
    type Error = std::io::Error;
    type Future = DialFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| std::io::Error::other("the URI has no host"))?.to_string();
            let default = if uri.scheme_str() == Some("http") { 80 } else { 443 };
            Ok(TokioIo::new(ReadAhead::new(dialer.dial(&host, uri.port_u16().unwrap_or(default)).await?)))
        })
    }
}

/// A pooled upstream client.
pub type UpstreamClient = Client<HttpsConnector<Dialer>, ProxyBody>;

/// The upstream clients and what WebSocket tunnels need to dial by hand.
pub struct Upstream {
    /// Pooled client for HTTP/1.x requests (offers only HTTP/1.1).
    pub client: UpstreamClient,
    /// Pooled client for HTTP/2 requests (offers HTTP/2, then HTTP/1.1).
    pub multiplexed: UpstreamClient,
    /// TLS config offering only HTTP/1.1 (for WebSocket upgrades).
    pub h1_tls: Arc<ClientConfig>,
    /// The dialer.
    pub dialer: Dialer,
}

impl Upstream {
    /// Build the client: system roots plus the PEM files in `extra_roots`.
    pub fn new(
        extra_roots: &[impl AsRef<Path>],
        overrides: HashMap<String, String>,
        destinations: Destinations,
    ) -> Result<Self, ProxyError> {
        let roots = Arc::new(root_store(extra_roots)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let base = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // hyper-rustls sets the pooled clients' ALPN itself (it refuses a
        // config that has one); WebSocket upgrades dial with `h1` by hand.
        let mut h1 = base.clone();
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let dialer = Dialer::new(overrides, destinations);
        let pooled = |https| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build(https)
        };
        let client = pooled(
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(base.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(dialer.clone()),
        );
        let multiplexed = pooled(
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(base)
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(dialer.clone()),
        );
        Ok(Self { client, multiplexed, h1_tls: Arc::new(h1), dialer })
    }

    /// The client for a request the session sent as `version`.
    pub fn for_version(&self, version: http::Version) -> &UpstreamClient {
        if version == http::Version::HTTP_2 { &self.multiplexed } else { &self.client }
    }

    /// A TLS connection for a WebSocket upgrade (HTTP/1.1 only).
    pub async fn connect_h1(
        &self,
        host: &str,
        port: u16,
    ) -> Result<tokio_rustls::client::TlsStream<UpstreamIo>, ProxyError> {
        let tcp = self.dialer.dial(host, port).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => ProxyError::Refused(e.to_string()),
            _ => ProxyError::Upstream(format!("connecting: {e}")),
        })?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| ProxyError::Upstream(e.to_string()))?;
        tokio_rustls::TlsConnector::from(self.h1_tls.clone())
            .connect(name, ReadAhead::new(tcp))
            .await
            .map_err(|e| ProxyError::Upstream(format!("TLS: {e}")))
    }
}

/// A future that drives one upstream connection until it closes.
pub(crate) type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A tunnel's own HTTP/1.1 connection upstream. HTTP/1.1 requests through a
/// tunnel come one after another, so one connection serves them all; it is
/// opened at the first request, reopened when the upstream closes it, and
/// closed with the tunnel. Its connection future goes to the tunnel's task
/// (see [`drive_while`]), which polls it beside the session's side.
pub(crate) struct Lane {
    /// The connection's sender, while no request holds it.
    sender: Mutex<Option<SendRequest<ProxyBody>>>,
    /// Where a newly opened connection's future goes to be driven.
    drive: mpsc::UnboundedSender<Drive>,
}

impl Lane {
    /// A lane, and what [`drive_while`] must be given.
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Drive>) {
        let (drive, conns) = mpsc::unbounded_channel();
        (Arc::new(Self { sender: Mutex::new(None), drive }), conns)
    }

    /// Send `req` (origin-form, `Host` set) to `host:port` over the lane's
    /// connection, opening one when there is none or it was closed. A request
    /// that a kept connection refused before sending a byte (the upstream
    /// closed it while idle) is sent once more on a new one.
    pub(crate) async fn send(
        &self,
        upstream: &Upstream,
        host: &str,
        port: u16,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let mut kept = self.sender.lock().ok().and_then(|mut s| s.take());
        if let Some(sender) = kept.as_mut()
            && sender.ready().await.is_err()
        {
            kept = None;
        }
        loop {
            let reused = kept.is_some();
            let mut sender = match kept.take() {
                Some(sender) => sender,
                None => self.open(upstream, host, port).await?,
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    if let Ok(mut slot) = self.sender.lock() {
                        *slot = Some(sender);
                    }
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(ProxyError::Upstream(error_chain("the upstream request failed", e.error()))),
                },
            }
        }
    }

    async fn open(&self, upstream: &Upstream, host: &str, port: u16) -> Result<SendRequest<ProxyBody>, ProxyError> {
        let io = upstream.connect_h1(host, port).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| ProxyError::Upstream(error_chain("the upstream handshake failed", &e)))?;
        let drive: Drive = Box::pin(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream connection: {e}");
            }
        });
        self.drive.send(drive).map_err(|_| ProxyError::Upstream("the tunnel has ended".into()))?;
        Ok(sender)
    }
}

/// Run `serving` (a tunnel's connection with the session) to its end, and
/// drive the tunnel's [`Lane`] connections in the same task meanwhile. Each
/// part has its own waker, so a byte from upstream polls only its connection.
pub(crate) async fn drive_while<F: Future>(mut conns: mpsc::UnboundedReceiver<Drive>, serving: F) -> F::Output {
    let mut parts = FuturesUnordered::new();
    parts.push(Either::Left(serving.map(Some)));
    loop {
        tokio::select! {
            Some(done) = parts.next() => if let Some(out) = done {
                return out;
            },
            Some(conn) = conns.recv() => parts.push(Either::Right(conn.map(|()| None))),
        }
    }
}

/// `what`, then the error and each of its sources.
pub(crate) fn error_chain(what: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// The system roots (from the OS store) plus extra PEM roots.
fn root_store(extra_roots: &[impl AsRef<Path>]) -> Result<RootCertStore, ProxyError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!("reading a system root certificate: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!("no system root certificates were found; only the configured extra roots are trusted");
    }
    for path in extra_roots {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ProxyError::io(path, e))?;
        let certs = crate::ca::pem_certs(&text);
        if certs.is_empty() {
            return Err(ProxyError::Ca { path: path.into(), reason: "no PEM certificate in the file".into() });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ProxyError::Ca { path: path.into(), reason: e.to_string() })?;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_for_the_port_beats_the_host_and_the_wildcard_catches_the_rest() {
        let overrides =
            [("api.github.com:8443", "127.0.0.1:1"), ("api.github.com", "127.0.0.1:2"), ("*", "127.0.0.1:3")];
        let dialer = Dialer::new(
            overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            Destinations::default(),
        );
        assert_eq!(dialer.target("api.github.com", 8443).map(String::as_str), Some("127.0.0.1:1"));
        assert_eq!(dialer.target("api.github.com", 443).map(String::as_str), Some("127.0.0.1:2"));
        assert_eq!(dialer.target("chatgpt.com", 443).map(String::as_str), Some("127.0.0.1:3"));
        for inward in ["127.0.0.1", "[::1]", "::ffff:127.0.0.1", "0.0.0.0", "localhost", "api.localhost", "10.0.0.1"] {
            assert_eq!(dialer.target(inward, 443), None, "{inward} is checked as always, not sent to `*`");
        }
        let plain =
            Dialer::new(HashMap::from([("api.github.com".into(), "127.0.0.1:2".into())]), Destinations::default());
        assert_eq!(plain.target("chatgpt.com", 443), None);
    }
}
