//! Watches: a list request with `watch=1`, answered with one JSON watch
//! event per line (`{"type":"ADDED","object":{…}}`) as the store changes,
//! held open until `timeoutSeconds` (30 minutes without it, as the real
//! server's minimum request timeout) or until the client goes.
//!
//! - `resourceVersion=N` resumes after version N from the store's history;
//!   a version older than the history gets one `ERROR` event carrying a 410
//!   `Expired` Status (in a 200 answer, as the real server sends it), and so
//!   does a watch that falls behind the store;
//! - no `resourceVersion` (or `0`), or `sendInitialEvents=true`, sends every
//!   current object as `ADDED` first;
//! - `allowWatchBookmarks=true` adds a `BOOKMARK` every few seconds carrying
//!   the version the watch has caught up to, and after the initial events of
//!   `sendInitialEvents=true` one annotated `k8s.io/initial-events-end`;
//! - with a selector, an object that stops matching is `DELETED` and one that
//!   starts matching is `ADDED`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::errors::Failure;
use crate::kinds::KINDS;
use crate::selector::Filter;
use crate::store::{Change, ChangeType, Store};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Start a watch of `kind` in `namespace` (all namespaces when empty): the
/// channel its events go to is the answer's body.
pub fn start(
    store: &Store,
    kind: usize,
    namespace: &str,
    query: &BTreeMap<String, String>,
    body: mpsc::Sender<Bytes>,
) -> Result<(), Failure> {
    let filter = Filter::from_query(query)?;
    let rv = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| Failure::bad_request(format!("invalid resourceVersion {v:?}")))?),
    };
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "true" || v == "1");
    let (send_initial, bookmarks) = (flag("sendInitialEvents"), flag("allowWatchBookmarks"));
    let timeout = match query.get("timeoutSeconds") {
        Some(t) => {
            Duration::from_secs(t.parse().map_err(|_| Failure::bad_request(format!("invalid timeoutSeconds {t:?}")))?)
        }
        None => Duration::from_secs(1800),
    };
    let start = match store.watch(kind, namespace, rv, send_initial) {
        Ok(start) => start,
        Err(Failure(StatusCode::GONE, status)) => {
            tokio::spawn(async move { body.send(line("ERROR", status)).await });
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    let watch = Watch { kind, namespace: namespace.to_string(), filter, body };
    tokio::spawn(watch.run(start, send_initial && bookmarks, bookmarks, timeout));
    Ok(())
}

struct Watch {
    kind: usize,
    namespace: String,
    filter: Filter,
    body: mpsc::Sender<Bytes>,
}

impl Watch {
    async fn run(self, start: crate::store::WatchStart, initial_end: bool, bookmarks: bool, timeout: Duration) {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut seen = start.from_rv;
        for change in &start.initial {
            if let Some(event) = self.event_for(change)
                && self.body.send(event).await.is_err()
            {
                return;
            }
        }
        if initial_end && self.body.send(self.bookmark(seen, true)).await.is_err() {
            return;
        }
        let mut live = start.live;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            let event = tokio::select! {
                _ = &mut deadline => return,
                () = self.body.closed() => return,
                _ = tick.tick(), if bookmarks => Some(self.bookmark(seen, false)),
                change = live.recv() => match change {
                    Ok(change) if change.rv <= start.from_rv => None,
                    Ok(change) => {
                        seen = change.rv;
                        self.event_for(&change)
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let gone = Failure::expired("the watch fell behind the store's changes; list again".into());
                        let _ = self.body.send(line("ERROR", gone.1)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Some(event) = event
                && self.body.send(event).await.is_err()
            {
                return;
            }
        }
    }

    /// The event this watch sends for `change`, if any.
    fn event_for(&self, change: &Change) -> Option<Bytes> {
        let (kind, namespace, _) = &change.key;
        if *kind != self.kind || (!self.namespace.is_empty() && *namespace != self.namespace) {
            return None;
        }
        let now = self.filter.matches(&change.object);
        let before = change.old.as_ref().map(|old| self.filter.matches(old));
        let kind_of_event = match (change.change, before, now) {
            (ChangeType::Modified, Some(false), true) => "ADDED",
            (ChangeType::Modified, Some(true), false) => "DELETED",
            (_, _, false) => return None,
            (change, _, true) => change.as_str(),
        };
        Some(line(kind_of_event, change.object.clone()))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let k = &KINDS[self.kind];
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line("BOOKMARK", json!({"kind": k.kind, "apiVersion": k.api_version(), "metadata": metadata}))
    }
}

/// One watch event, newline-terminated.
fn line(kind_of_event: &str, object: Value) -> Bytes {
    let mut text = json!({"type": kind_of_event, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}
