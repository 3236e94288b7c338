//! The proxy's direct door: the way in for sessions on machines that can
//! open connections to this one (a cluster's pods, where the cluster can
//! reach the daemon), beside the reverse tunnel for those that cannot.
//!
//! One TLS listener (`[proxy] direct_listen`), whose certificate clauderon's
//! CA issues for the address sessions dial (`direct_address`). A connection
//! first sends one line, `clauderon-door/1 SESSION-ID DOOR-KEY`, where the
//! key is the session's own (see [`crate::identity`]: derived from the
//! daemon's identity key, so it cannot be worked out from another's). The
//! door checks it in constant time and then passes the connection, byte for
//! byte, to that session's own listener — its proxy, which still wants the
//! session's proxy secret on every request, enforces its access mode and
//! egress, and audits. Anything else is closed without an answer: no TLS, a
//! missing or wrong key, another session's id, a session whose proxy is
//! closed (deleted, or not started since the daemon started), a line longer
//! than [`MAX_LINE`] or slower than [`LINE_TIMEOUT`]. At most
//! [`MAX_UNPROVEN`] connections may be between accept and a proven key at
//! once. Refusals are logged with the peer's address, never with what it
//! sent; one that named an open session is also in that session's audit
//! (decision `denied`, method `DOOR`).
//!
//! A pod holds its door *file* ([`Proxy::door_file`]): the line, then
//! clauderon's CA certificate, which alone the pod's relay trusts for the
//! door (not the system's roots).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::ProxyError;
use crate::server::Proxy;

/// What a connection's first line starts with.
pub const PROTOCOL: &str = "clauderon-door/1";

/// The longest first line accepted (the protocol, an id and a 64-digit key fit many times over).
pub const MAX_LINE: usize = 512;

/// How long a connection may take for its TLS handshake and first line.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections between accept and a proven key, at most, at once.
pub const MAX_UNPROVEN: usize = 256;

/// Where the door is: the address it listens on, and the one sessions dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Door {
    /// The bound address (with its port, when `direct_listen` said 0).
    pub listen: SocketAddr,
    /// The address sessions dial (its certificate's name).
    pub address: SocketAddr,
}

impl Proxy {
    /// Open the direct door on `listen`, its certificate for `address` (a
    /// port 0 in either means the port bound). Once per proxy.
    pub async fn open_door(self: &Arc<Self>, listen: SocketAddr, address: SocketAddr) -> Result<Door, ProxyError> {
        let listener =
            TcpListener::bind(listen).await.map_err(|e| ProxyError::Bind { addr: listen.to_string(), source: e })?;
        let bound = listener.local_addr().map_err(|e| ProxyError::Bind { addr: listen.to_string(), source: e })?;
        let address = if address.port() == 0 { SocketAddr::new(address.ip(), bound.port()) } else { address };
        // Only this door's own certificate; nothing is negotiated on top.
        let mut tls = (*self.authority().server_config(&address.ip().to_string())?).clone();
        tls.alpn_protocols.clear();
        let door = Door { listen: bound, address };
        if self.door.set(door).is_err() {
            return Err(ProxyError::Bind {
                addr: listen.to_string(),
                source: std::io::Error::other("the direct door is open already"),
            });
        }
        tokio::spawn(accept_loop(listener, TlsAcceptor::from(Arc::new(tls)), Arc::downgrade(self)));
        tracing::info!("the proxy's direct door listens on {bound}; sessions dial {address}");
        Ok(door)
    }

    /// The direct door, if open.
    pub fn door(&self) -> Option<Door> {
        self.door.get().copied()
    }

    /// What session `id`'s pods hold to come in through the door: its line
    /// (with its key), then clauderon's CA certificate. None without a door.
    pub fn door_file(&self, id: &str) -> Option<String> {
        self.door()?;
        Some(format!("{PROTOCOL} {id} {}\n{}", self.identity().door_key(id), self.authority().ca_pem()))
    }

    /// Whether `key` is session `id`'s door key.
    fn door_key_ok(&self, id: &str, key: &str) -> bool {
        let expected = self.identity().door_key(id);
        bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), key.as_bytes()))
    }
}

async fn accept_loop(listener: TcpListener, tls: TlsAcceptor, proxy: Weak<Proxy>) {
    let unproven = Arc::new(tokio::sync::Semaphore::new(MAX_UNPROVEN));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("the direct door's accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = unproven.clone().try_acquire_owned() else {
            tracing::warn!("direct door: {MAX_UNPROVEN} connections are proving a key already; {peer}'s is closed");
            continue;
        };
        let Some(proxy) = proxy.upgrade() else { return };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let proven = tokio::time::timeout(LINE_TIMEOUT, async {
                let mut stream = tls
                    .accept(stream)
                    .await
                    .map_err(|e| format!("no TLS handshake ({e}); the door speaks only TLS"))?;
                let proven = prove(&proxy, peer, &mut stream).await?;
                Ok::<_, String>((stream, proven))
            })
            .await
            .unwrap_or_else(|_| Err(format!("no TLS handshake and first line within {LINE_TIMEOUT:?}")));
            drop(permit);
            let (stream, proven) = match proven {
                Ok(proven) => proven,
                Err(why) => {
                    tracing::warn!("direct door: a connection from {peer} was closed: {why}");
                    return;
                }
            };
            let session = proven.session.clone();
            if let Err(e) = pass(&proxy, proven, stream).await {
                tracing::debug!(session = %session, "direct door: a connection from {peer} ended: {e}");
            }
        });
    }
}

/// A connection whose first line proved its session's key.
struct Proven {
    session: String,
    /// Where the session's listener is (see [`Proxy::listener_of`]).
    socket: Option<std::path::PathBuf>,
    port: u16,
    /// What came after the line: the session's first bytes.
    first: Vec<u8>,
}

/// Read the first line and check it: the session it names, whose proxy must be open.
async fn prove<S: AsyncRead + Unpin>(proxy: &Proxy, peer: SocketAddr, stream: &mut S) -> Result<Proven, String> {
    let mut read = Vec::with_capacity(1024);
    let end = loop {
        if let Some(end) = read.iter().position(|b| *b == b'\n') {
            break end;
        }
        if read.len() > MAX_LINE {
            return Err(format!("its first line is longer than {MAX_LINE} bytes"));
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.map_err(|e| format!("reading its first line: {e}"))?;
        if n == 0 {
            return Err("it ended before its first line".into());
        }
        read.extend_from_slice(&chunk[..n]);
    };
    let line = std::str::from_utf8(&read[..end]).map_err(|_| "its first line is not text".to_string())?;
    let mut words = line.trim_end_matches('\r').split(' ');
    let (Some(PROTOCOL), Some(session), Some(key), None) = (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(format!("its first line is not `{PROTOCOL} SESSION-ID DOOR-KEY`"));
    };
    if session.is_empty() || !proxy.door_key_ok(session, key) {
        let why = "its door key is not the session's it names";
        proxy.audit_door_refusal(session, &format!("direct door: a connection from {peer} was closed: {why}"));
        return Err(why.into());
    }
    let Some((socket, port)) = proxy.listener_of(session) else {
        return Err(format!("session {session}'s proxy is not open (the session is gone, or not started)"));
    };
    Ok(Proven { session: session.to_string(), socket, port, first: read[end + 1..].to_vec() })
}

/// Pass the proven connection to the session's own listener (its unix
/// socket, or its port), its first bytes first.
async fn pass<S: AsyncRead + AsyncWrite + Unpin>(proxy: &Proxy, proven: Proven, stream: S) -> std::io::Result<()> {
    match proven.socket {
        Some(socket) => splice(stream, tokio::net::UnixStream::connect(socket).await?, &proven.first).await,
        None => {
            let listener = tokio::net::TcpStream::connect(SocketAddr::new(proxy.local_ip(), proven.port)).await?;
            splice(stream, listener, &proven.first).await
        }
    }
}

/// Write `first` to `listener`, then pass bytes both ways until both end.
async fn splice<S, L>(mut stream: S, mut listener: L, first: &[u8]) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    L: AsyncRead + AsyncWrite + Unpin,
{
    listener.write_all(first).await?;
    tokio::io::copy_bidirectional(&mut stream, &mut listener).await?;
    Ok(())
}
