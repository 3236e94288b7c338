//! The audit: one record for every request a session sends through the
//! proxy — allowed, blocked, failed upstream or refused for a bad identity.
//! Records name the credential injected, never its value, and carry the path
//! without its query string. [`AuditLog`] batches them into the redb store on
//! a background task and broadcasts each stored record to live followers.

use std::sync::Arc;
use std::time::Duration;

use clauderon_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

/// What the proxy did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Forwarded; `status` is the upstream's answer.
    Allowed,
    /// Refused by the session's access mode or egress policy, or for a
    /// destination the proxy never reaches (403).
    Blocked,
    /// Forwarding failed (502).
    Failed,
    /// Refused: no or wrong session identity (407).
    Denied,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Sequence number in the store (0 until stored).
    #[serde(default)]
    pub seq: u64,
    /// When the request arrived, in ms since the Unix epoch.
    pub at_ms: u64,
    /// The session's id.
    pub session_id: String,
    /// The session's name.
    pub session_name: String,
    /// The target host.
    pub host: String,
    /// The method (`CONNECT` for a refused tunnel).
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// What was decided.
    pub decision: Decision,
    /// Why (blocked, failed, denied, or a note such as a missing credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The credential injected: `<service> from <source>` — never the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The status sent to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// From arrival until the response body ended, in ms.
    pub duration_ms: f64,
    /// Request body bytes sent upstream.
    pub bytes_up: u64,
    /// Response body bytes sent to the client.
    pub bytes_down: u64,
}

/// Where the proxy sends records.
pub trait AuditSink: Send + Sync {
    /// Record one request (must not block).
    fn record(&self, record: AuditRecord);
}

/// How many records one store transaction takes at most.
const BATCH: usize = 512;
/// How long the writer gathers records before committing them.
const GATHER: Duration = Duration::from_millis(25);

/// The audit log over the store.
pub struct AuditLog {
    tx: mpsc::UnboundedSender<AuditRecord>,
    live: broadcast::Sender<AuditRecord>,
    store: Arc<Store>,
}

impl AuditLog {
    /// Start the writer task; records older than `retention` are pruned at
    /// start and every hour.
    pub fn start(store: Arc<Store>, retention: Duration) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (live, _) = broadcast::channel(4096);
        tokio::spawn(write_loop(store.clone(), rx, live.clone()));
        tokio::spawn(prune_loop(store.clone(), retention));
        Arc::new(Self { tx, live, store })
    }

    /// Stored records after `after`, oldest first: at most `limit` of those
    /// matching `session` (an id or a name) when given.
    pub async fn records_after(
        &self,
        after: u64,
        limit: usize,
        session: Option<String>,
    ) -> Result<Vec<AuditRecord>, String> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut cursor = after;
            while out.len() < limit {
                let page = store.audit_after(cursor, 1024).map_err(|e| e.to_string())?;
                let Some(last) = page.last() else { break };
                cursor = last.seq;
                for row in page {
                    let Ok(mut record) = serde_json::from_slice::<AuditRecord>(&row.data) else { continue };
                    record.seq = row.seq;
                    let wanted = session.as_deref().is_none_or(|s| s == record.session_id || s == record.session_name);
                    if wanted && out.len() < limit {
                        out.push(record);
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Follow records as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditRecord> {
        self.live.subscribe()
    }
}

impl AuditSink for AuditLog {
    fn record(&self, record: AuditRecord) {
        if self.tx.send(record).is_err() {
            tracing::error!("the audit writer has stopped; a record was lost");
        }
    }
}

async fn write_loop(
    store: Arc<Store>,
    mut rx: mpsc::UnboundedReceiver<AuditRecord>,
    live: broadcast::Sender<AuditRecord>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // Gather for a moment, so a stream of requests shares one durable commit
        // (a commit is an fsync: ~200 µs of CPU when taken per request).
        let window = tokio::time::sleep(GATHER);
        tokio::pin!(window);
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            tokio::select! {
                _ = &mut window => break,
                n = rx.recv_many(&mut batch, room) => if n == 0 { break },
            }
        }
        let records = std::mem::take(&mut batch);
        let bytes: Vec<Vec<u8>> = records.iter().filter_map(|r| serde_json::to_vec(r).ok()).collect();
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.append_audit(&bytes)).await {
            Ok(Ok(seqs)) => {
                for (mut record, seq) in records.into_iter().zip(seqs) {
                    record.seq = seq;
                    let _ = live.send(record);
                }
            }
            Ok(Err(e)) => tracing::error!("writing {} audit records failed: {e}", records.len()),
            Err(e) => tracing::error!("the audit write task failed: {e}"),
        }
    }
}

async fn prune_loop(store: Arc<Store>, retention: Duration) {
    loop {
        let cutoff = now_ms().saturating_sub(retention.as_millis() as u64);
        let s = store.clone();
        let expired =
            move |data: &[u8]| serde_json::from_slice::<AuditRecord>(data).map(|r| r.at_ms < cutoff).unwrap_or(true);
        match tokio::task::spawn_blocking(move || s.prune_audit(expired)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!("pruned {n} audit records older than the retention period"),
            Ok(Err(e)) => tracing::warn!("pruning the audit failed: {e}"),
            Err(e) => tracing::warn!("the audit prune task failed: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
