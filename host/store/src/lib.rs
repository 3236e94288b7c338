//! clauderon's store: one redb file (`CLAUDERON_HOME/clauderon.redb`) holding
//! sessions (with unique names), the append-only event log, the proxy's audit
//! records, per-component kv state and the browsers subscribed to Web Push.
//! Opening it runs the schema migrations. Every change is one redb
//! transaction, so a crash never leaves half a change behind.
//!
//! Values are opaque bytes (JSON, written by the session manager); the store
//! owns durability, uniqueness and ordering, not the session model. All calls
//! block: async code calls them through [`Store::blocking`].

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clauderon_migrations::schema::{AUDIT, COMPONENT_KV, EVENTS, META, PUSH_SUBSCRIPTIONS, SESSION_NAMES, SESSIONS};
use clauderon_migrations::{MigrationError, run};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path} is not a clauderon store or is damaged ({reason}). It was left as it is: move it aside to \
         start with an empty store, or restore it from a backup"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("the store at {path} is in use by another clauderon daemon ({reason})")]
    Locked { path: PathBuf, reason: String },
    #[error(transparent)]
    Schema(#[from] MigrationError),
    #[error("a session named `{0}` already exists; choose another name")]
    NameTaken(String),
    #[error("no session with id {0}")]
    NotFound(String),
    #[error("store error: {0}")]
    Db(String),
    #[error("a store call crashed: {0}")]
    Crashed(String),
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into().to_string())
}

/// The open store.
pub struct Store {
    db: Database,
    path: PathBuf,
}

/// One event from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Its sequence number (increasing, gap-free).
    pub seq: u64,
    /// The event as written.
    pub data: Vec<u8>,
}

impl Store {
    /// Run `f` on tokio's blocking pool: every store call blocks, and async
    /// code must not block the runtime.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| StoreError::Crashed(e.to_string()))?
    }

    /// Open (or create, mode 0600) the store at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(format!("creating {}: {e}", dir.display())))?;
        }
        // A new store is private from its first byte (0600), not after a chmod.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Db(format!("creating {}: {e}", path.display())))?;
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StoreError::Locked { path: path.to_path_buf(), reason: e.to_string() }
            }
            other => StoreError::Corrupt { path: path.to_path_buf(), reason: other.to_string() },
        })?;
        run(&db)?;
        Ok(Self { db, path: path.to_path_buf() })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Add a session under a unique name, together with its first event.
    pub fn insert_session(&self, id: &str, name: &str, session: &[u8], event: &[u8]) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let seq = {
            let mut names = txn.open_table(SESSION_NAMES).map_err(db_err)?;
            if names.get(name).map_err(db_err)?.is_some() {
                return Err(StoreError::NameTaken(name.to_string()));
            }
            names.insert(name, id).map_err(db_err)?;
            txn.open_table(SESSIONS).map_err(db_err)?.insert(id, session).map_err(db_err)?;
            append(&txn, event)?
        };
        txn.commit().map_err(db_err)?;
        Ok(seq)
    }

    /// Replace a session's record, together with the event that explains why.
    pub fn update_session(&self, id: &str, session: &[u8], event: &[u8]) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let seq = {
            let mut sessions = txn.open_table(SESSIONS).map_err(db_err)?;
            if sessions.get(id).map_err(db_err)?.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
            sessions.insert(id, session).map_err(db_err)?;
            append(&txn, event)?
        };
        txn.commit().map_err(db_err)?;
        Ok(seq)
    }

    /// Replace a session's record without an event: bookkeeping that nobody
    /// watches, such as the resource a create is about to make.
    pub fn replace_session(&self, id: &str, session: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut sessions = txn.open_table(SESSIONS).map_err(db_err)?;
            if sessions.get(id).map_err(db_err)?.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
            sessions.insert(id, session).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Remove a session and free its name, together with an event.
    pub fn delete_session(&self, id: &str, name: &str, event: &[u8]) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let seq = {
            let removed = txn.open_table(SESSIONS).map_err(db_err)?.remove(id).map_err(db_err)?.is_some();
            if !removed {
                return Err(StoreError::NotFound(id.to_string()));
            }
            let mut names = txn.open_table(SESSION_NAMES).map_err(db_err)?;
            let owner = names.get(name).map_err(db_err)?.map(|v| v.value().to_string());
            if owner.as_deref() == Some(id) {
                names.remove(name).map_err(db_err)?;
            }
            append(&txn, event)?
        };
        txn.commit().map_err(db_err)?;
        Ok(seq)
    }

    /// A session's record.
    pub fn session(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SESSIONS).map_err(db_err)?;
        Ok(table.get(id).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// The id of the session with this name.
    pub fn session_id(&self, name: &str) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SESSION_NAMES).map_err(db_err)?;
        Ok(table.get(name).map_err(db_err)?.map(|v| v.value().to_string()))
    }

    /// Every session's record, and the sequence number of the last event
    /// they reflect (read together: an event and its session change are one
    /// transaction), so a client can follow the events after exactly that.
    pub fn sessions(&self) -> Result<(Vec<Vec<u8>>, u64), StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SESSIONS).map_err(db_err)?;
        let mut out = Vec::with_capacity(table.len().map_err(db_err)? as usize);
        for row in table.iter().map_err(db_err)? {
            out.push(row.map_err(db_err)?.1.value().to_vec());
        }
        let events = txn.open_table(EVENTS).map_err(db_err)?;
        let last = events.last().map_err(db_err)?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok((out, last))
    }

    /// Append an event that changes no session (e.g. a reconcile report).
    pub fn append_event(&self, event: &[u8]) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let seq = append(&txn, event)?;
        txn.commit().map_err(db_err)?;
        Ok(seq)
    }

    /// Events after `after` (exclusive), oldest first, at most `limit`.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(EVENTS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.range(after.saturating_add(1)..).map_err(db_err)?.take(limit) {
            let (k, v) = row.map_err(db_err)?;
            out.push(LoggedEvent { seq: k.value(), data: v.value().to_vec() });
        }
        Ok(out)
    }

    /// A component's kv value.
    pub fn kv_get(&self, component: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(COMPONENT_KV).map_err(db_err)?;
        Ok(table.get((component, key)).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Set a component's kv value.
    pub fn kv_set(&self, component: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(COMPONENT_KV).map_err(db_err)?.insert((component, key), value).map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Delete a component's kv key; whether it existed.
    pub fn kv_delete(&self, component: &str, key: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let existed = txn.open_table(COMPONENT_KV).map_err(db_err)?.remove((component, key)).map_err(db_err)?.is_some();
        txn.commit().map_err(db_err)?;
        Ok(existed)
    }

    /// A component's keys with values, in key order.
    pub fn kv_entries(&self, component: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(COMPONENT_KV).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.range((component, "")..).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let (c, key) = k.value();
            if c != component {
                break;
            }
            out.push((key.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }
}

impl Store {
    /// Every Web Push subscription: (endpoint, the subscription as written).
    pub fn push_subscriptions(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Keep a Web Push subscription (replacing one with the same endpoint).
    pub fn put_push_subscription(&self, endpoint: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(PUSH_SUBSCRIPTIONS).map_err(db_err)?.insert(endpoint, value).map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Forget a Web Push subscription; whether there was one.
    pub fn delete_push_subscription(&self, endpoint: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let existed = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(db_err)?.remove(endpoint).map_err(db_err)?.is_some();
        txn.commit().map_err(db_err)?;
        Ok(existed)
    }
}

impl Store {
    /// Append audit records in one transaction, removing the oldest beyond
    /// `keep` in it; returns their sequence numbers.
    pub fn append_audit(&self, records: &[Vec<u8>], keep: u64) -> Result<Vec<u64>, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut seqs = Vec::with_capacity(records.len());
        {
            // The last sequence number lives in META, so pruning every record never reuses one.
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let mut last = meta.get(AUDIT_LAST_SEQ).map_err(db_err)?.map(|v| v.value()).unwrap_or(0);
            let mut table = txn.open_table(AUDIT).map_err(db_err)?;
            for record in records {
                last += 1;
                table.insert(last, record.as_slice()).map_err(db_err)?;
                seqs.push(last);
            }
            let excess = table.len().map_err(db_err)?.saturating_sub(keep);
            for _ in 0..excess {
                table.pop_first().map_err(db_err)?;
            }
            meta.insert(AUDIT_LAST_SEQ, last).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(seqs)
    }

    /// Audit records after `after` (exclusive), oldest first, at most `limit`.
    pub fn audit_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(AUDIT).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.range(after.saturating_add(1)..).map_err(db_err)?.take(limit) {
            let (k, v) = row.map_err(db_err)?;
            out.push(LoggedEvent { seq: k.value(), data: v.value().to_vec() });
        }
        Ok(out)
    }

    /// Remove the oldest audit records while `expired` says so; returns how many went.
    pub fn prune_audit(&self, expired: impl Fn(&[u8]) -> bool) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut removed = 0;
        {
            let mut table = txn.open_table(AUDIT).map_err(db_err)?;
            loop {
                let Some((k, v)) = table.first().map_err(db_err)? else { break };
                let (seq, old) = (k.value(), expired(v.value()));
                drop((k, v));
                if !old {
                    break;
                }
                table.remove(seq).map_err(db_err)?;
                removed += 1;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(removed)
    }
}

/// The META key holding the last audit sequence number handed out.
const AUDIT_LAST_SEQ: &str = "audit_last_seq";

fn append(txn: &redb::WriteTransaction, event: &[u8]) -> Result<u64, StoreError> {
    let mut events = txn.open_table(EVENTS).map_err(db_err)?;
    let next = events.last().map_err(db_err)?.map(|(k, _)| k.value() + 1).unwrap_or(1);
    events.insert(next, event).map_err(db_err)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("clauderon.redb")).expect("open");
        (dir, store)
    }

    #[test]
    fn a_new_store_is_private_from_the_start_and_reopens() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, s) = store();
        let path = dir.path().join("clauderon.redb");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        drop(s);
        Store::open(&path).expect("an existing store opens again");
    }

    #[test]
    fn audit_records_append_in_order_and_prune_from_the_oldest() {
        let (_d, s) = store();
        let keep_all = u64::MAX;
        assert_eq!(s.append_audit(&[b"old1".to_vec(), b"old2".to_vec()], keep_all).expect("append"), vec![1, 2]);
        assert_eq!(s.append_audit(&[b"new3".to_vec()], keep_all).expect("append"), vec![3]);
        let all = s.audit_after(0, 10).expect("read");
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(s.prune_audit(|d| d.starts_with(b"old")).expect("prune"), 2);
        let left = s.audit_after(0, 10).expect("read");
        assert_eq!(left, vec![LoggedEvent { seq: 3, data: b"new3".to_vec() }]);
        assert_eq!(s.prune_audit(|_| true).expect("prune all"), 1);
        assert_eq!(
            s.append_audit(&[b"new4".to_vec()], keep_all).expect("append"),
            vec![4],
            "sequence numbers never reuse"
        );
        assert_eq!(s.append_audit(&[b"new5".to_vec(), b"new6".to_vec()], 2).expect("append"), vec![5, 6]);
        let kept: Vec<u64> = s.audit_after(0, 10).expect("read").iter().map(|r| r.seq).collect();
        assert_eq!(kept, [5, 6], "the oldest beyond `keep` go in the same transaction");
    }

    #[test]
    fn sessions_have_unique_names_and_every_change_logs_an_event() {
        let (_d, s) = store();
        assert_eq!(s.insert_session("a", "fix-bug", b"A1", b"created a").expect("insert"), 1);
        assert!(matches!(s.insert_session("b", "fix-bug", b"B1", b"created b"), Err(StoreError::NameTaken(_))));
        assert_eq!(s.update_session("a", b"A2", b"running a").expect("update"), 2);
        assert_eq!(s.session("a").expect("get"), Some(b"A2".to_vec()));
        assert_eq!(s.session_id("fix-bug").expect("by name"), Some("a".into()));
        assert_eq!(s.delete_session("a", "fix-bug", b"deleted a").expect("delete"), 3);
        assert_eq!(s.session_id("fix-bug").expect("by name"), None);
        s.insert_session("b", "fix-bug", b"B1", b"created b").expect("the name is free again");
        assert_eq!(s.sessions().expect("list").1, 4, "the list comes with its last event's number");
        let events = s.events_after(1, 10).expect("events");
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(events[0].data, b"running a");
        assert!(matches!(s.update_session("zzz", b"", b""), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn data_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clauderon.redb");
        {
            let s = Store::open(&path).expect("open");
            s.insert_session("a", "n", b"A", b"e").expect("insert");
            s.kv_set("zellij", "k", b"v").expect("kv");
        }
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.sessions().expect("list").0, vec![b"A".to_vec()]);
        assert_eq!(s.kv_get("zellij", "k").expect("kv"), Some(b"v".to_vec()));
        assert_eq!(s.events_after(0, 10).expect("events").len(), 1);
    }

    #[test]
    fn kv_is_scoped_per_component() {
        let (_d, s) = store();
        s.kv_set("a", "x", b"1").expect("set");
        s.kv_set("a", "y", b"2").expect("set");
        s.kv_set("b", "x", b"3").expect("set");
        let a: Vec<String> = s.kv_entries("a").expect("entries").into_iter().map(|(k, _)| k).collect();
        assert_eq!(a, vec!["x", "y"]);
        assert!(s.kv_delete("a", "x").expect("delete"));
        assert!(!s.kv_delete("a", "x").expect("delete again"));
        assert_eq!(s.kv_get("b", "x").expect("get"), Some(b"3".to_vec()));
    }

    #[test]
    fn a_corrupt_file_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clauderon.redb");
        let garbage = vec![0x5au8; 8192];
        std::fs::write(&path, &garbage).expect("write garbage");
        let err = Store::open(&path).err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("move it aside"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), garbage, "the file must not be rewritten");
    }
}
