//! The relay's way through the proxy's direct door, for a pod of a cluster
//! that can open connections to the daemon's machine (see
//! `clauderon_proxy::door`): each connection the agent makes to the proxy
//! port is passed over TLS to the door at `--direct IP:PORT`, first
//! presenting the line of the session's door file (`--door FILE`), which
//! names the session and holds its door key. Only the CA certificate in the
//! door file is trusted for the door (not the system's roots), and the
//! door's certificate must name its IP address. The file is read for each
//! connection, so the agent may start before it is in place. One
//! single-threaded runtime serves every connection.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::SandboxError;

/// How long the door may take to answer a connection and a TLS handshake.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the door is and the session's door file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    /// The door's address (`--direct`).
    pub address: SocketAddr,
    /// The session's door file (`--door`): its line, then clauderon's CA certificate.
    pub file: PathBuf,
}

/// Pass every connection on `listeners` through the door, in the background.
pub fn serve(listeners: Vec<TcpListener>, door: Door) -> Result<(), SandboxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| SandboxError::step("starting the direct door's runtime", e))?;
    for listener in &listeners {
        listener.set_nonblocking(true).map_err(|e| SandboxError::step("the proxy port's listener", e))?;
    }
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let dialer = Arc::new(Dialer { door, tls: Mutex::new(None) });
            for listener in listeners {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("clauderon-relay: the proxy port's listener: {e}");
                        continue;
                    }
                };
                tokio::spawn(accept(listener, dialer.clone()));
            }
            std::future::pending::<()>().await
        })
    });
    Ok(())
}

async fn accept(listener: tokio::net::TcpListener, dialer: Arc<Dialer>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let dialer = dialer.clone();
        tokio::spawn(async move {
            // Without the door (the daemon restarting, the file not there
            // yet) the client sees its connection closed and retries, as it
            // would with a proxy that is down.
            if let Err(e) = dialer.carry(client).await {
                eprintln!("clauderon-relay: through the direct door at {}: {e}", dialer.door.address);
            }
        });
    }
}

/// Dials the door; keeps the TLS config of the door file it last read (so
/// sessions resume).
struct Dialer {
    door: Door,
    tls: Mutex<Option<(String, Arc<ClientConfig>)>>,
}

impl Dialer {
    async fn carry(&self, mut client: TcpStream) -> Result<(), String> {
        let _ = client.set_nodelay(true);
        let text = tokio::fs::read_to_string(&self.door.file)
            .await
            .map_err(|e| format!("reading the door file {}: {e}", self.door.file.display()))?;
        let (line, ca) = text.split_once('\n').ok_or("the door file has no line")?;
        let tls = self.tls_for(&text, ca)?;
        let dialled = tokio::time::timeout(DIAL_TIMEOUT, async {
            let tcp = TcpStream::connect(self.door.address).await.map_err(|e| format!("connecting: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::IpAddress(self.door.address.ip().into());
            TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))
        });
        let mut door = dialled.await.map_err(|_| format!("no answer within {DIAL_TIMEOUT:?}"))??;
        door.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| format!("presenting the key: {e}"))?;
        tokio::io::copy_bidirectional(&mut client, &mut door).await.map_err(|e| format!("relaying: {e}"))?;
        Ok(())
    }

    /// The TLS config trusting only the door file's CA certificate.
    fn tls_for(&self, text: &str, ca: &str) -> Result<Arc<ClientConfig>, String> {
        let mut cached = self.tls.lock().map_err(|_| "the TLS config's lock is poisoned")?;
        if let Some((_, tls)) = cached.as_ref().filter(|(seen, _)| seen == text) {
            return Ok(tls.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            let cert = cert.map_err(|e| format!("the door file's CA certificate: {e}"))?;
            roots.add(cert).map_err(|e| format!("the door file's CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the door file has no CA certificate".into());
        }
        let tls = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tls = Arc::new(tls);
        *cached = Some((text.to_string(), tls.clone()));
        Ok(tls)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use clauderon_proxy::ca::Authority;
    use tokio::io::AsyncReadExt;

    use super::*;

    const LINE: &str = "clauderon-door/1 s1 00ff";

    /// A TLS server on 127.0.0.1 presenting `authority`'s certificate for
    /// `name`: what the first connection sent it, then `answer` back.
    fn door(authority: &Authority, name: &str) -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
        let tls = tokio_rustls::TlsAcceptor::from(authority.server_config(name).expect("a certificate"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let (sent, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                listener.set_nonblocking(true).expect("nonblocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let (tcp, _) = listener.accept().await.expect("accept");
                let mut got = vec![0u8; 64];
                let Ok(mut stream) = tls.accept(tcp).await else {
                    let _ = sent.send(Vec::new());
                    return;
                };
                let mut read = Vec::new();
                while !read.ends_with(b"hello") {
                    let n = stream.read(&mut got).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    read.extend_from_slice(&got[..n]);
                }
                let _ = sent.send(read);
                let _ = stream.write_all(b"world").await;
                let _ = stream.shutdown().await;
            });
        });
        (address, received)
    }

    /// The agent's side: one connection to a relay passing it through the
    /// door at `address` with a door file trusting `trusted`; what came back.
    fn agent(address: SocketAddr, trusted: &Authority) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("door");
        std::fs::write(&file, format!("{LINE}\n{}", trusted.ca_pem())).expect("door file");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        serve(vec![listener], Door { address, file }).expect("relay");
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        client.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        client.write_all(b"hello").expect("write");
        let mut back = Vec::new();
        let _ = client.read_to_end(&mut back);
        back
    }

    fn authority() -> (tempfile::TempDir, Authority) {
        let dir = tempfile::tempdir().expect("tempdir");
        let authority = Authority::load_or_create(dir.path()).expect("a CA");
        (dir, authority)
    }

    #[test]
    fn the_relay_presents_the_line_then_the_agents_bytes_to_the_door_its_ca_vouches_for() {
        let (_dir, ca) = authority();
        let (address, received) = door(&ca, "127.0.0.1");
        assert_eq!(agent(address, &ca), b"world", "the door's answer reaches the agent");
        let sent = received.recv_timeout(Duration::from_secs(20)).expect("the door heard");
        assert_eq!(String::from_utf8_lossy(&sent), format!("{LINE}\nhello"));
    }

    #[test]
    fn an_impostor_door_gets_no_key() {
        let (_dir, ca) = authority();
        // Another CA's certificate for the right address; the right CA's for another.
        let (_other_dir, other) = authority();
        for (impostor, name) in [(&other, "127.0.0.1"), (&ca, "10.9.9.9")] {
            let (address, received) = door(impostor, name);
            assert_eq!(agent(address, &ca), b"", "the agent's connection is closed");
            let sent = received.recv_timeout(Duration::from_secs(20)).expect("the impostor's accept ended");
            assert!(sent.is_empty(), "the impostor ({name}) read {:?}", String::from_utf8_lossy(&sent));
        }
    }
}
