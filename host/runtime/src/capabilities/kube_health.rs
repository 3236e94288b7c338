//! `kube`'s `watch-pod`: a session's health from a watch on its pod. The
//! host follows the pod with a Kubernetes watch (kube-rs's watcher: a list,
//! then a watch resumed from the last version it saw, listed again when the
//! cluster says the version is too old) and, whenever what health reads of
//! it changes, tells the daemon ([`SessionSupport::resource_changed`]),
//! which asks the backend's `status` — the one place a pod's state becomes
//! a session's. Only the pod the watch began for (its uid) counts: its
//! deletion, or another pod under its name, is told once and ends the watch.

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use super::kube::SessionSupport;
use super::session_tasks::SessionTasks;

/// What a watch follows.
pub struct Target {
    /// Pods in the component's namespace.
    pub pods: Api<Pod>,
    /// The pod's name.
    pub pod: String,
    /// The pod's uid when the watch began.
    pub uid: String,
    /// The session whose health it is.
    pub session: String,
    /// Told of each change.
    pub support: Arc<dyn SessionSupport>,
}

/// Every session's watch (a new one ends the earlier).
#[derive(Default)]
pub struct Watches(SessionTasks);

impl Watches {
    /// Follow `target` for its session, ending the session's earlier watch.
    pub fn follow(&self, target: Target) {
        let session = target.session.clone();
        let mut watch = tokio::task::JoinSet::new();
        watch.spawn(follow(target));
        self.0.replace(&session, watch);
    }
}

/// What a session's health reads of a pod: a change in anything else (its
/// annotations, a condition's timestamp) is not told.
fn health(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let containers: Vec<_> = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .map(|c| json!([c.name, c.state, c.last_state, c.restart_count, c.ready]))
        .collect();
    json!([status.phase, status.reason, status.message, containers]).to_string()
}

/// Watch one pod until it goes, telling the daemon of each change.
async fn follow(target: Target) {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", target.pod));
    let mut events = std::pin::pin!(watcher::watcher(target.pods.clone(), config).default_backoff());
    let mut last: Option<String> = None;
    // Whether the pod was seen since the watch (re)started with a list.
    let mut listed = true;
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(Event::Init) => {
                listed = false;
                continue;
            }
            Ok(Event::InitDone) if listed => continue,
            // The list no longer has it: it went while the watch was down.
            Ok(Event::InitDone) => None,
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => {
                listed = true;
                Some(pod).filter(|p| p.metadata.uid.as_deref() == Some(target.uid.as_str()))
            }
            Ok(Event::Delete(pod)) if pod.metadata.uid.as_deref() != Some(target.uid.as_str()) => continue,
            Ok(Event::Delete(_)) => None,
            Err(e) => {
                tracing::debug!("kube: watching pod {}: {}", target.pod, said(&e));
                continue;
            }
        };
        let Some(pod) = pod else {
            tracing::debug!("kube: pod {} is gone; its watch ends", target.pod);
            target.support.resource_changed(&target.session).await;
            return;
        };
        let now = health(&pod);
        if last.as_ref() != Some(&now) {
            last = Some(now);
            target.support.resource_changed(&target.session).await;
        }
    }
}

/// A watch error in words that cannot carry the cluster's credentials (see
/// [`super::kube::describe`]).
fn said(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            super::kube::describe(e)
        }
        watcher::Error::WatchError(status) => format!("the cluster said {} ({})", status.message, status.code),
        watcher::Error::NoResourceVersion => "the cluster's answer had no resourceVersion".into(),
    }
}
