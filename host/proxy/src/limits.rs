//! What one session may hold of the proxy, so that no session can starve the
//! daemon or the others: open connections (tunnels included), requests per
//! second, and time a connection may sit idle. The numbers are `[proxy]`
//! settings ([`crate::ProxyConfig`]); the audit's own quota is in
//! [`crate::audit`].
//!
//! - A session over its connection cap gets `429` on the new connection,
//!   which is then closed; its open connections go on.
//! - A request over its rate gets `429` with `Retry-After`.
//! - A connection (the listener's, or a tunnel's TLS inside) with no request
//!   in flight and no byte either way for the idle time is closed. A request
//!   in flight — a long poll, a stream — keeps it open however quiet it is.
//!   A WebSocket, once upgraded, is not timed, but it holds its connection's
//!   [`Slot`] for as long as it lives.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{BoxError, ProxyBody};

/// A session's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once (a tunnel counts as the connection it came on).
    pub connections: usize,
    /// Requests per second, sustained; bursts of twice as many pass.
    pub requests_per_second: u32,
    /// How long a connection with nothing in flight may stay quiet.
    pub idle: Duration,
}

/// One of a session's connections, counted against its cap for as long as
/// anything holds it: the listener's connection, the tunnel a CONNECT opened
/// on it, a WebSocket relayed over either. It travels with each request in
/// the request's extensions.
#[derive(Clone)]
pub(crate) struct Slot(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

impl Slot {
    /// A slot of `connections`, or `None` if all are taken.
    pub(crate) fn take(connections: &Arc<tokio::sync::Semaphore>) -> Option<Self> {
        connections.clone().try_acquire_owned().ok().map(|permit| Self(Arc::new(permit)))
    }
}

/// Requests per second, as a token bucket.
pub(crate) struct Rate {
    per_second: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl Rate {
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self { per_second, bucket: Mutex::new((per_second * 2.0, Instant::now())) }
    }

    /// Take one request's token: false if the session is over its rate.
    pub(crate) fn take(&self) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else { return true };
        let (tokens, last) = *bucket;
        let now = Instant::now();
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.per_second * 2.0);
        let allowed = refilled >= 1.0;
        *bucket = (if allowed { refilled - 1.0 } else { refilled }, now);
        allowed
    }

    /// The sustained rate (for messages).
    pub(crate) fn per_second(&self) -> f64 {
        self.per_second
    }
}

/// One connection's activity: when a byte last moved, and how many requests
/// are in flight on it.
pub(crate) struct Activity {
    /// Tokio's clock, so tests can move it.
    started: tokio::time::Instant,
    /// Milliseconds after `started` of the last byte either way.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { started: tokio::time::Instant::now(), last: AtomicU64::new(0), in_flight: AtomicUsize::new(0) })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request begins; it is in flight until the guard (carried by its
    /// response body) is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Resolves once the connection has had nothing in flight and moved no
    /// byte for `idle`.
    pub(crate) async fn idle_for(self: Arc<Self>, idle: Duration) {
        let idle_ms = idle.as_millis() as u64;
        let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::time::sleep(tick).await;
            let quiet = self.now_ms().saturating_sub(self.last.load(Ordering::Relaxed));
            if self.in_flight.load(Ordering::Relaxed) == 0 && quiet >= idle_ms {
                return;
            }
        }
    }

    /// `io`, noting every byte it moves here.
    pub(crate) fn watch<T>(self: &Arc<Self>, io: T) -> Watched<T> {
        self.touch();
        Watched { io, activity: self.clone() }
    }

    /// The service for this connection's requests: each carries the
    /// connection's `slot` (a tunnel or WebSocket it opens keeps it) and is
    /// in flight, keeping the connection from idling out, until its response
    /// body ends.
    pub(crate) fn service<F, Fut>(
        self: &Arc<Self>,
        slot: Option<Slot>,
        handle: F,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<ProxyBody>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
    > + Clone
    + Send
    + 'static
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
    {
        let activity = self.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            if let Some(slot) = &slot {
                req.extensions_mut().insert(slot.clone());
            }
            let guard = activity.begin();
            let response = handle(req);
            async move { Ok::<_, Infallible>(response.await.map(|body| Activity::guard_body(guard, body))) }
        })
    }

    /// `body`, keeping `guard` until it ends or is dropped.
    fn guard_body(guard: InFlight, body: ProxyBody) -> ProxyBody {
        http_body_util::BodyExt::boxed(Guarded { body, _guard: guard })
    }
}

/// A request in flight on a connection (see [`Activity::begin`]).
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A response body holding its request's [`InFlight`].
struct Guarded {
    body: ProxyBody,
    _guard: InFlight,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An I/O stream whose every byte counts as activity.
pub(crate) struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_lets_a_burst_of_twice_the_rate_through_then_refuses() {
        let rate = Rate::new(10);
        let passed = (0..100).filter(|_| rate.take()).count();
        assert!((20..=21).contains(&passed), "{passed}");
        std::thread::sleep(Duration::from_millis(250));
        let refilled = (0..100).filter(|_| rate.take()).count();
        assert!((2..=4).contains(&refilled), "about 2.5 tokens in 250 ms: {refilled}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_with_nothing_in_flight() {
        let activity = Activity::new();
        let guard = activity.begin();
        let idle = tokio::spawn(activity.clone().idle_for(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!idle.is_finished(), "a request in flight keeps the connection");
        drop(guard);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!idle.is_finished(), "idle for less than the limit");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(idle.is_finished(), "idle past the limit");
    }
}
