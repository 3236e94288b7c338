//! `kube`'s `open-tunnel`: a session's way out from its pod on a cluster
//! that cannot open connections to this machine. The host keeps [`IDLE`]
//! Kubernetes port-forwards open into the pod on the tunnel port, where
//! `clauderon-relay --tunnel` holds them idle and pairs each connection the
//! agent makes to its proxy port with one of them; when the pod starts
//! speaking on one, the host connects it to the session's proxy (its unix
//! socket: the listener that knows the session) and opens another in its
//! place. Nothing but the session's proxy is ever at the host's end, and
//! only the pod the tunnel was opened to (its uid) is ever forwarded to.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::session_tasks::SessionTasks;

/// How many idle port-forwards each tunnel keeps open.
pub const IDLE: usize = 4;

/// The most connections a tunnel passes at once; more wait in the pod.
pub const MAX_CONNECTIONS: usize = 256;

/// The wait before trying again after a port-forward that failed at once
/// (the relay not listening yet, the API server busy); doubled up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// A port-forward that ends sooner than this without carrying anything
/// failed; a later end is an idle connection the pod closed.
const QUICK_END: Duration = Duration::from_secs(1);

/// Where a tunnel leads.
pub struct Target {
    /// Pods in the component's namespace.
    pub pods: Api<Pod>,
    /// The pod's name.
    pub pod: String,
    /// The pod's uid when the tunnel was opened: only that pod is forwarded to.
    pub uid: String,
    /// The tunnel port in the pod.
    pub port: u16,
    /// The session's proxy socket.
    pub socket: PathBuf,
}

/// Every session's tunnel (its slots).
#[derive(Default)]
pub struct Tunnels(SessionTasks);

impl Tunnels {
    /// Open session `session`'s tunnel to `target`, closing its earlier one.
    pub fn open(&self, session: &str, target: Target) {
        let target = Arc::new(target);
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let mut slots = JoinSet::new();
        for _ in 0..IDLE {
            slots.spawn(slot(target.clone(), connections.clone()));
        }
        tracing::debug!("kube: tunnel into pod {} port {} for session {session}", target.pod, target.port);
        self.0.replace(session, slots);
    }
}

/// Whether the target pod is still the one the tunnel was opened to; `None`
/// when the cluster could not be asked.
async fn same_pod(target: &Target) -> Option<bool> {
    match target.pods.get_opt(&target.pod).await {
        Ok(found) => Some(found.and_then(|p| p.metadata.uid).is_some_and(|uid| uid == target.uid)),
        Err(e) => {
            // In words that cannot carry the cluster's credentials (see `describe`).
            tracing::debug!("kube: tunnel into pod {}: reading it: {}", target.pod, super::kube::describe(&e));
            None
        }
    }
}

/// One idle port-forward at a time, kept open until the pod is gone: each
/// that the pod speaks on goes to the proxy, and another takes its place.
async fn slot(target: Arc<Target>, connections: Arc<tokio::sync::Semaphore>) {
    let mut retry = FIRST_RETRY;
    loop {
        match same_pod(&target).await {
            Some(true) => {}
            Some(false) => {
                tracing::debug!("kube: pod {} is gone; its tunnel ends", target.pod);
                return;
            }
            None => {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        }
        let opened = tokio::time::Instant::now();
        match carry_one(&target, &connections).await {
            Ok(true) => retry = FIRST_RETRY,
            Ok(false) if opened.elapsed() >= QUICK_END => retry = FIRST_RETRY,
            result => {
                if let Err(e) = result {
                    tracing::debug!("kube: tunnel into pod {}: {e}", target.pod);
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

/// Stops a port-forward's background task when dropped.
struct Forward(kube::api::Portforwarder);

impl Drop for Forward {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Open a port-forward and wait for the pod to speak on it; then pass it to
/// the proxy in the background. Whether it carried a connection.
async fn carry_one(target: &Target, connections: &Arc<tokio::sync::Semaphore>) -> Result<bool, String> {
    let mut forward = Forward(
        target
            .pods
            .portforward(&target.pod, &[target.port])
            .await
            .map_err(|e| format!("port-forward to port {}: {}", target.port, super::kube::describe(&e)))?,
    );
    let mut stream = forward.0.take_stream(target.port).ok_or("the port-forward has no stream")?;
    let failed = forward.0.take_error(target.port).ok_or("the port-forward has no error channel")?;
    let mut first = vec![0u8; 16 << 10];
    let n = tokio::select! {
        read = stream.read(&mut first) => read.map_err(|e| format!("reading the port-forward: {e}"))?,
        said = failed => return Err(format!("the cluster said: {}", said.unwrap_or_else(|| "the forward ended".into()))),
    };
    if n == 0 {
        return Ok(false);
    }
    let Ok(permit) = connections.clone().try_acquire_owned() else {
        return Err(format!("{MAX_CONNECTIONS} connections are open already; this one is closed"));
    };
    let socket = target.socket.clone();
    let pod = target.pod.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let _forward = forward;
        let carried = async {
            let mut proxy = tokio::net::UnixStream::connect(&socket).await?;
            proxy.write_all(&first[..n]).await?;
            tokio::io::copy_bidirectional(&mut stream, &mut proxy).await
        };
        if let Err(e) = carried.await {
            tracing::debug!("kube: a connection from pod {pod} to the session's proxy ended: {e}");
        }
    });
    Ok(true)
}
