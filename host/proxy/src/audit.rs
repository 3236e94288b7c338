//! The audit: one record for every request a session sends through the
//! proxy — allowed, blocked, failed upstream or refused for a bad identity.
//! Records name the credential injected, never its value, and carry the path
//! without its query string. [`AuditLog`] batches them into the redb store on
//! a background task and broadcasts each stored record to live followers.
//!
//! The audit is bounded: each session adds at most `per_minute` records one
//! by one (unauthenticated attempts on its listener: [`DENIED_PER_MINUTE`]),
//! and one summary record a minute counts the rest. Each write removes the
//! oldest records beyond `max_records`; records older than the retention
//! period are pruned at start and hourly.

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
    /// Not one request: a count of those over the session's audit quota in
    /// a minute, by decision (`reason` says how many of each).
    Summary,
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

/// Unauthenticated attempts on one session's listener recorded one by one
/// per minute; the rest are counted in a summary.
pub const DENIED_PER_MINUTE: u32 = 20;
/// The quota's window.
const WINDOW: Duration = Duration::from_secs(60);

/// How much of the audit is kept.
#[derive(Debug, Clone, Copy)]
pub struct AuditLimits {
    /// Records older than this are pruned.
    pub retention: Duration,
    /// At most this many records are kept (the oldest are pruned).
    pub max_records: u64,
    /// Records one session adds one by one per minute.
    pub per_minute: u32,
}

/// The audit log over the store.
pub struct AuditLog {
    inbox: Inbox,
    live: broadcast::Sender<AuditRecord>,
    store: Arc<Store>,
    quota: Arc<Quota>,
}

impl AuditLog {
    /// Start the writer task, the quota's sweeper and the pruner (at start
    /// and hourly).
    pub fn start(store: Arc<Store>, limits: AuditLimits) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (live, _) = broadcast::channel(4096);
        let inbox = Inbox { tx, pending: Arc::new(std::sync::atomic::AtomicU64::new(0)) };
        tokio::spawn(write_loop(store.clone(), rx, live.clone(), limits.max_records, inbox.pending.clone()));
        tokio::spawn(prune_loop(store.clone(), limits));
        let quota = Arc::new(Quota { per_minute: limits.per_minute.max(1), windows: Default::default() });
        tokio::spawn(sweep_loop(Arc::downgrade(&quota), inbox.clone()));
        Arc::new(Self { inbox, live, store, quota })
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

    /// How many records were made and are not stored yet (the writer
    /// gathers them for a moment before each commit).
    pub fn pending(&self) -> u64 {
        self.inbox.pending.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Follow records as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditRecord> {
        self.live.subscribe()
    }
}

impl AuditSink for AuditLog {
    fn record(&self, record: AuditRecord) {
        for record in self.quota.admit(record) {
            if !self.inbox.send(record) {
                tracing::error!("the audit writer has stopped; a record was lost");
            }
        }
    }
}

/// The writer's inbox: a record sent to it is pending until its commit.
#[derive(Clone)]
struct Inbox {
    tx: mpsc::UnboundedSender<AuditRecord>,
    /// Records sent and not yet stored.
    pending: Arc<std::sync::atomic::AtomicU64>,
}

impl Inbox {
    /// Send `record` to the writer; false if the writer has stopped.
    fn send(&self, record: AuditRecord) -> bool {
        self.pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let sent = self.tx.send(record).is_ok();
        if !sent {
            self.pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        sent
    }
}

/// The per-session quota: records one by one up to the limit in each
/// minute, then counted.
struct Quota {
    per_minute: u32,
    /// By (session id, whether the records are unauthenticated attempts).
    windows: std::sync::Mutex<std::collections::HashMap<(String, bool), Window>>,
}

/// One session's minute.
struct Window {
    started: tokio::time::Instant,
    recorded: u32,
    /// Counted, not recorded: by decision (allowed, blocked, failed, denied).
    over: [u64; 4],
    /// The first counted record (its session and time head the summary).
    first: Option<AuditRecord>,
}

impl Window {
    fn new() -> Self {
        Self { started: tokio::time::Instant::now(), recorded: 0, over: [0; 4], first: None }
    }

    /// The summary of what was counted, if anything was.
    fn summary(self, limit: u32) -> Option<AuditRecord> {
        let mut record = self.first?;
        let total: u64 = self.over.iter().sum();
        let kinds: Vec<String> = ["allowed", "blocked", "failed", "denied (no or wrong identity)"]
            .iter()
            .zip(self.over)
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        record.reason = Some(format!(
            "{total} more requests in a minute, over the {limit} a minute recorded one by one: {}",
            kinds.join(", ")
        ));
        record.decision = Decision::Summary;
        (record.host, record.method, record.path) = (String::new(), String::new(), String::new());
        (record.credential, record.status, record.duration_ms) = (None, None, 0.0);
        (record.bytes_up, record.bytes_down) = (0, 0);
        Some(record)
    }
}

impl Quota {
    fn limit(&self, denied: bool) -> u32 {
        if denied { DENIED_PER_MINUTE } else { self.per_minute }
    }

    /// What to write for `record`: itself, or nothing (counted), after the
    /// summary of the session's previous minute if that has ended.
    fn admit(&self, record: AuditRecord) -> Vec<AuditRecord> {
        let denied = record.decision == Decision::Denied;
        let limit = self.limit(denied);
        let Ok(mut windows) = self.windows.lock() else { return vec![record] };
        let window = windows.entry((record.session_id.clone(), denied)).or_insert_with(Window::new);
        let mut out = Vec::new();
        if window.started.elapsed() >= WINDOW {
            out.extend(std::mem::replace(window, Window::new()).summary(limit));
        }
        if window.recorded < limit {
            window.recorded += 1;
            out.push(record);
        } else {
            let slot = match record.decision {
                Decision::Allowed => 0,
                Decision::Blocked | Decision::Summary => 1,
                Decision::Failed => 2,
                Decision::Denied => 3,
            };
            window.over[slot] += 1;
            window.first.get_or_insert(record);
        }
        out
    }

    /// Summaries of every minute that has ended (its window is dropped).
    fn sweep(&self) -> Vec<AuditRecord> {
        let Ok(mut windows) = self.windows.lock() else { return Vec::new() };
        let ended: Vec<(String, bool)> =
            windows.iter().filter(|(_, w)| w.started.elapsed() >= WINDOW).map(|(k, _)| k.clone()).collect();
        ended
            .into_iter()
            .filter_map(|key| {
                let limit = self.limit(key.1);
                windows.remove(&key).and_then(|w| w.summary(limit))
            })
            .collect()
    }
}

/// Write the summaries of ended minutes, every few seconds, while the
/// audit log lives.
async fn sweep_loop(quota: std::sync::Weak<Quota>, inbox: Inbox) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Some(quota) = quota.upgrade() else { return };
        for summary in quota.sweep() {
            inbox.send(summary);
        }
    }
}

async fn write_loop(
    store: Arc<Store>,
    mut rx: mpsc::UnboundedReceiver<AuditRecord>,
    live: broadcast::Sender<AuditRecord>,
    keep: u64,
    pending: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // Gather for a moment, so a stream of requests shares one durable commit
        // (a commit is an fsync: ~200 µs of CPU when taken per request). The
        // writer sleeps meanwhile rather than waking for every record.
        if batch.len() < BATCH {
            tokio::time::sleep(GATHER).await;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
        }
        let records = std::mem::take(&mut batch);
        let bytes: Vec<Vec<u8>> = records.iter().filter_map(|r| serde_json::to_vec(r).ok()).collect();
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || store.append_audit(&bytes, keep)).await;
        pending.fetch_sub(records.len() as u64, std::sync::atomic::Ordering::SeqCst);
        match written {
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

async fn prune_loop(store: Arc<Store>, limits: AuditLimits) {
    loop {
        let cutoff = now_ms().saturating_sub(limits.retention.as_millis() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(session: &str, decision: Decision) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at_ms: 1,
            session_id: session.into(),
            session_name: session.into(),
            host: "api.github.com".into(),
            method: "GET".into(),
            path: "/".into(),
            decision,
            reason: None,
            credential: None,
            status: Some(200),
            duration_ms: 1.0,
            bytes_up: 0,
            bytes_down: 0,
        }
    }

    /// An audit log over a new store, recording `per_minute` records a
    /// session one by one, and a follower of what it stores.
    fn started(per_minute: u32) -> (tempfile::TempDir, Arc<AuditLog>, broadcast::Receiver<AuditRecord>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("store.redb")).expect("store"));
        let limits = AuditLimits { retention: Duration::from_secs(3600), max_records: 100, per_minute };
        let log = AuditLog::start(store, limits);
        let live = log.subscribe();
        (dir, log, live)
    }

    #[tokio::test]
    async fn a_record_is_pending_until_its_commit_then_stored_and_followed() {
        let (_dir, log, mut live) = started(100);
        log.record(record("s1", Decision::Allowed));
        assert_eq!(log.pending(), 1, "made, not yet stored");
        let followed =
            tokio::time::timeout(Duration::from_secs(10), live.recv()).await.expect("in time").expect("a record");
        assert_eq!((followed.seq, log.pending()), (1, 0), "stored, nothing pending");
        assert_eq!(log.records_after(0, 10, None).await.expect("read").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_minutes_summary_is_pending_like_any_record_until_stored() {
        let (_dir, log, mut live) = started(1);
        for _ in 0..3 {
            log.record(record("s1", Decision::Allowed));
        }
        assert_eq!(log.pending(), 1, "one recorded, two counted");
        tokio::time::sleep(Duration::from_secs(70)).await;
        let mut decisions = Vec::new();
        while decisions.len() < 2 {
            decisions.push(live.recv().await.expect("a record").decision);
        }
        assert_eq!(decisions, [Decision::Allowed, Decision::Summary]);
        assert_eq!(log.pending(), 0, "the summary was counted in and out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_over_its_quota_is_counted_then_summarised_once_a_minute() {
        let quota = Quota { per_minute: 5, windows: Default::default() };
        let mut written = Vec::new();
        for i in 0..50 {
            let decision = if i % 10 == 9 { Decision::Blocked } else { Decision::Allowed };
            written.extend(quota.admit(record("a", decision)));
        }
        for _ in 0..100 {
            written.extend(quota.admit(record("a", Decision::Denied)));
        }
        written.extend(quota.admit(record("b", Decision::Allowed)));
        assert_eq!(written.len(), 5 + DENIED_PER_MINUTE as usize + 1, "one by one up to each quota");
        assert!(quota.sweep().is_empty(), "nothing is summarised before the minute ends");

        tokio::time::advance(WINDOW).await;
        let summaries = quota.sweep();
        assert_eq!(summaries.len(), 2, "one summary per session and kind that went over: {summaries:?}");
        let reason = |denied: bool| {
            let s = summaries.iter().find(|s| (s.reason.as_deref().unwrap_or("").contains("denied")) == denied);
            s.and_then(|s| s.reason.clone()).unwrap_or_default()
        };
        assert!(reason(false).starts_with("45 more requests") && reason(false).contains("40 allowed, 5 blocked"));
        assert!(reason(true).starts_with("80 more requests") && reason(true).contains("80 denied"));
        assert!(summaries.iter().all(|s| s.decision == Decision::Summary && s.session_id == "a"));
        assert!(quota.sweep().is_empty(), "each minute is summarised once");
        assert_eq!(quota.admit(record("a", Decision::Allowed)).len(), 1, "a new minute records again");
    }
}
