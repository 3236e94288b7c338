//! agent-sandbox's controller (kubernetes-sigs/agent-sandbox), as the mock
//! runs it when started with `--agent-sandbox` (the CRD installed): for each
//! `Sandbox` (`agents.x-k8s.io/v1alpha1`) it keeps what the upstream
//! controller keeps, read from its source:
//!
//! - a claim `TEMPLATE-SANDBOX` per `volumeClaimTemplates[]` (the template's
//!   labels and annotations, the tracking label, owned by the Sandbox), kept
//!   while the Sandbox is paused;
//! - while `replicas` is 1 (the default), a pod named as the Sandbox: the
//!   pod template's spec, its labels and annotations (none under
//!   `agents.x-k8s.io/`, which the controller reserves), the tracking label
//!   `agents.x-k8s.io/sandbox-name-hash` (FNV-1a of the name, 8 hex digits),
//!   a volume per claim template named as the template (replacing one of
//!   that name), owned by the Sandbox; `replicas: 0` deletes it;
//! - an existing pod or claim of that name is used only if the Sandbox owns
//!   it, or adopted if it is unowned and carries the tracking label or
//!   `agents.x-k8s.io/adoptable: "true"` (as upstream; otherwise the
//!   Sandbox's `Ready` condition says `ReconcilerError`);
//! - at `shutdownTime` the pod is deleted and then, by `shutdownPolicy`,
//!   the Sandbox kept with `Ready` false, `SandboxExpired` (`Retain`, the
//!   default) or deleted (`Delete`);
//! - `status`: `Ready` (`DependenciesReady` once the pod runs, is ready and
//!   has an IP; else `DependenciesNotReady`, `SandboxSuspended`,
//!   `PodSucceeded`, `PodFailed`, `SandboxExpired`, `ReconcilerError`),
//!   `Suspended` while paused (`PodNotTerminated`, then `PodTerminated`),
//!   `Finished` once the pod ended, `replicas`, `selector`, `podIPs`,
//!   `nodeName`.
//!
//! A running pod follows its template's metadata (labels and annotations
//! set) and the Sandbox's template and pool labels (the pool's goes once the
//! pool no longer owns it): a claim's adoption rewrites them
//! ([`crate::extensions`]).
//!
//! As the cluster's garbage collector does, a deleted Sandbox takes the
//! objects it owns. Not done: headless Services (`service`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::kinds::{PODS, PVCS, SANDBOXES};
use crate::store::{Change, ChangeType, Store, now_rfc3339};

/// The label the controller tracks its pods and claims by.
const TRACKING: &str = "agents.x-k8s.io/sandbox-name-hash";
/// The Sandbox's labels the controller puts on its pod as they are: its
/// template's name hash (a template's network policy selects pods by it)
/// and, while a warm pool owns it, the pool's name hash.
const MARKS: [&str; 2] = ["agents.x-k8s.io/sandbox-template-ref-hash", "agents.x-k8s.io/warm-pool-sandbox"];
/// The label that lets the controller adopt an unowned object.
const ADOPTABLE: &str = "agents.x-k8s.io/adoptable";
/// Label and annotation prefixes the controller keeps for itself.
const RESERVED: [&str; 2] = ["agents.x-k8s.io/", "extensions.agents.x-k8s.io/"];

pub struct Controller {
    store: Arc<Store>,
    /// Each Sandbox's wake-up at its `shutdownTime`, by uid.
    timers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

/// The controller's tracking label value for a Sandbox named `name`.
pub fn name_hash(name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

impl Controller {
    /// Start acting on the store's changes (call before the first object).
    pub fn start(store: Arc<Store>) -> Arc<Self> {
        let changes = store.subscribe();
        let controller = Arc::new(Self { store, timers: Mutex::default() });
        tokio::spawn(controller.clone().run(changes));
        controller
    }

    async fn run(self: Arc<Self>, mut changes: broadcast::Receiver<Change>) {
        loop {
            match changes.recv().await {
                Ok(change) => self.on_change(&change),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("clauderon-mock-kube: the sandbox controller missed {n} changes");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn on_change(self: &Arc<Self>, change: &Change) {
        let (kind, namespace) = (change.key.0, change.key.1.as_str());
        match (kind, change.change) {
            (SANDBOXES, ChangeType::Deleted) => {
                let uid = change.object["metadata"]["uid"].as_str().unwrap_or_default();
                if let Some(timer) = self.timers.lock().ok().and_then(|mut t| t.remove(uid)) {
                    timer.abort();
                }
                self.collect(namespace, uid);
            }
            (SANDBOXES, _) => self.reconcile(namespace, &change.key.2),
            (PODS | PVCS, _) => {
                if let Some(owner) = controller_of(&change.object).filter(|o| o["kind"] == "Sandbox") {
                    self.reconcile(namespace, owner["name"].as_str().unwrap_or_default());
                }
            }
            _ => {}
        }
    }

    /// Delete what the Sandbox `uid` owned (the garbage collector's work).
    fn collect(&self, namespace: &str, uid: &str) {
        for kind in [PODS, PVCS] {
            let Ok((items, _)) = self.store.list(kind, namespace, &Default::default()) else { continue };
            for item in items.iter().filter(|i| controller_of(i).is_some_and(|o| o["uid"] == uid)) {
                let name = item["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let _ = self.store.delete((kind, namespace.to_string(), name), &Value::Null);
            }
        }
    }

    /// Bring Sandbox `name`'s pod and claims to what it asks, and say so in its status.
    fn reconcile(self: &Arc<Self>, namespace: &str, name: &str) {
        let Ok(sandbox) = self.store.get(SANDBOXES, namespace, name) else { return };
        let uid = sandbox["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let key = (SANDBOXES, namespace.to_string(), name.to_string());
        let expires = sandbox["spec"]["shutdownTime"].as_str().and_then(parse_time);
        let now = time::OffsetDateTime::now_utc();
        if expires.is_some_and(|at| at <= now) {
            if let Ok(pod) = self.store.get(PODS, namespace, name)
                && owned_by(&pod, &uid)
            {
                let _ = self.store.delete((PODS, namespace.to_string(), name.to_string()), &Value::Null);
            }
            if sandbox["spec"]["shutdownPolicy"] == "Delete" {
                let _ = self.store.delete(key, &Value::Null);
                return;
            }
            self.store.update(&key, &uid, |s| {
                let ready = condition(s, "Ready", false, "SandboxExpired", "Sandbox has expired");
                s["status"] = json!({"conditions": [ready], "replicas": 0});
            });
            return;
        }
        if let Some(at) = expires {
            self.wake_at(namespace, name, &uid, at - now);
        }
        let running = sandbox["spec"]["replicas"].as_i64().unwrap_or(1) != 0;
        let hash = name_hash(name);
        let outcome = self.claims(&sandbox, &uid, &hash).and_then(|()| self.pod(&sandbox, &uid, &hash, running));
        let pod = self.store.get(PODS, namespace, name).ok().filter(|p| owned_by(p, &uid));
        self.store.update(&key, &uid, |s| set_status(s, running, pod.as_ref(), &hash, outcome.err()));
    }

    /// Reconcile Sandbox `name` again at its `shutdownTime`, `after` from now.
    fn wake_at(self: &Arc<Self>, namespace: &str, name: &str, uid: &str, after: time::Duration) {
        let Ok(mut timers) = self.timers.lock() else { return };
        if timers.get(uid).is_some_and(|t| !t.is_finished()) {
            return;
        }
        let (this, namespace, name) = (self.clone(), namespace.to_string(), name.to_string());
        let after = Duration::try_from(after).unwrap_or_default() + Duration::from_millis(50);
        timers.insert(
            uid.to_string(),
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                this.reconcile(&namespace, &name);
            }),
        );
    }

    /// The Sandbox's claims, one per template: made, or found its own (or adoptable).
    fn claims(&self, sandbox: &Value, uid: &str, hash: &str) -> Result<(), String> {
        let (namespace, name) = names(sandbox);
        for template in sandbox["spec"]["volumeClaimTemplates"].as_array().into_iter().flatten() {
            let claim = format!("{}-{name}", template["metadata"]["name"].as_str().unwrap_or_default());
            match self.store.get(PVCS, namespace, &claim) {
                Ok(existing) => self.use_existing(PVCS, &existing, sandbox, uid, hash)?,
                Err(_) => {
                    let mut labels = template["metadata"]["labels"].clone();
                    if !labels.is_object() {
                        labels = json!({});
                    }
                    labels[TRACKING] = json!(hash);
                    let pvc = json!({
                        "metadata": {"name": claim, "labels": labels, "annotations": template["metadata"]["annotations"],
                                     "ownerReferences": [owner_reference(sandbox)]},
                        "spec": template["spec"]
                    });
                    self.store.create(PVCS, namespace, pvc).map_err(|e| format!("creating claim {claim}: {}", e.1))?;
                }
            }
        }
        Ok(())
    }

    /// The Sandbox's pod: made while it runs, deleted while it is paused.
    fn pod(&self, sandbox: &Value, uid: &str, hash: &str, running: bool) -> Result<(), String> {
        let (namespace, name) = names(sandbox);
        let key = (PODS, namespace.to_string(), name.to_string());
        match self.store.get(PODS, namespace, name) {
            Ok(existing) => {
                self.use_existing(PODS, &existing, sandbox, uid, hash)?;
                if !running {
                    let _ = self.store.delete(key, &Value::Null);
                    return Ok(());
                }
                // A running pod follows its template's metadata (a claim's
                // adoption rewrites it): its labels and annotations are set,
                // the pool's label goes once the pool no longer owns it.
                let template = &sandbox["spec"]["podTemplate"]["metadata"];
                let theirs = existing["metadata"]["uid"].as_str().unwrap_or_default();
                self.store.update(&key, theirs, |pod| {
                    for part in ["labels", "annotations"] {
                        for (k, v) in unreserved(&template[part]) {
                            pod["metadata"][part][k] = v;
                        }
                    }
                    for mark in MARKS {
                        match (&sandbox["metadata"]["labels"][mark], pod["metadata"]["labels"].as_object_mut()) {
                            (Value::Null, Some(labels)) => {
                                labels.remove(mark);
                            }
                            (value, _) => pod["metadata"]["labels"][mark] = value.clone(),
                        }
                    }
                });
                Ok(())
            }
            Err(_) if !running => Ok(()),
            Err(_) => {
                let template = &sandbox["spec"]["podTemplate"];
                let mut labels = unreserved(&template["metadata"]["labels"]);
                labels.insert(TRACKING.into(), json!(hash));
                for mark in MARKS {
                    if let Some(value) = sandbox["metadata"]["labels"][mark].as_str() {
                        labels.insert(mark.into(), json!(value));
                    }
                }
                let mut spec = template["spec"].clone();
                let templated: Vec<Value> = sandbox["spec"]["volumeClaimTemplates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        let volume = t["metadata"]["name"].as_str().unwrap_or_default();
                        json!({"name": volume, "persistentVolumeClaim": {"claimName": format!("{volume}-{name}")}})
                    })
                    .collect();
                let mut volumes: Vec<Value> = spec["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| !templated.iter().any(|t| t["name"] == v["name"]))
                    .cloned()
                    .collect();
                volumes.extend(templated);
                spec["volumes"] = json!(volumes);
                let pod = json!({
                    "metadata": {"name": name, "labels": labels, "annotations": unreserved(&template["metadata"]["annotations"]),
                                 "ownerReferences": [owner_reference(sandbox)]},
                    "spec": spec
                });
                self.store.create(PODS, namespace, pod).map(|_| ()).map_err(|e| format!("creating pod {name}: {}", e.1))
            }
        }
    }

    /// An existing pod or claim of the Sandbox's: its own, or adopted as
    /// upstream adopts (unowned, with the tracking or adoptable label).
    fn use_existing(
        &self,
        kind: usize,
        existing: &Value,
        sandbox: &Value,
        uid: &str,
        hash: &str,
    ) -> Result<(), String> {
        let what = format!("{} {}", if kind == PODS { "pod" } else { "claim" }, existing["metadata"]["name"]);
        match controller_of(existing) {
            Some(owner) if owner["uid"] == uid => Ok(()),
            Some(owner) => Err(format!("{what} is owned by {} {}, not by this sandbox", owner["kind"], owner["name"])),
            None => {
                let labels = &existing["metadata"]["labels"];
                if labels[ADOPTABLE] != "true" && labels[TRACKING] != hash {
                    return Err(format!(
                        "cannot adopt unowned {what}: missing required pool authorization label ({ADOPTABLE:?}) or sandbox tracking label ({TRACKING:?})"
                    ));
                }
                let key = (
                    kind,
                    existing["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
                    existing["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                );
                let theirs = existing["metadata"]["uid"].as_str().unwrap_or_default();
                self.store.update(&key, theirs, |o| {
                    o["metadata"]["ownerReferences"] = json!([owner_reference(sandbox)]);
                    o["metadata"]["labels"][TRACKING] = json!(hash);
                });
                Ok(())
            }
        }
    }
}

/// The labels or annotations in `map` the controller copies onto a pod
/// (none under the prefixes it reserves).
fn unreserved(map: &Value) -> serde_json::Map<String, Value> {
    map.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !RESERVED.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn names(sandbox: &Value) -> (&str, &str) {
    (
        sandbox["metadata"]["namespace"].as_str().unwrap_or_default(),
        sandbox["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(object: &Value) -> Option<&Value> {
    object["metadata"]["ownerReferences"].as_array()?.iter().find(|o| o["controller"] == true)
}

fn owned_by(object: &Value, uid: &str) -> bool {
    controller_of(object).is_some_and(|o| o["uid"] == uid)
}

fn owner_reference(sandbox: &Value) -> Value {
    json!({
        "apiVersion": sandbox["apiVersion"], "kind": "Sandbox", "name": sandbox["metadata"]["name"],
        "uid": sandbox["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
    })
}

fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// A status condition, keeping its transition time when its status is unchanged.
fn condition(sandbox: &Value, kind: &str, status: bool, reason: &str, message: &str) -> Value {
    let status = if status { "True" } else { "False" };
    let before = sandbox["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == kind);
    let since = match before {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now_rfc3339()),
    };
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since,
           "observedGeneration": 1})
}

/// The Sandbox's status from its pod (`pod`: the one it owns, if any).
fn set_status(sandbox: &mut Value, running: bool, pod: Option<&Value>, hash: &str, error: Option<String>) {
    let phase = pod.and_then(|p| p["status"]["phase"].as_str()).unwrap_or_default();
    let pod_ready = pod.is_some_and(|p| {
        phase == "Running"
            && p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
            && p["status"]["podIPs"].as_array().is_some_and(|ips| !ips.is_empty())
    });
    let ready = match (&error, running, phase) {
        (Some(e), _, _) => condition(sandbox, "Ready", false, "ReconcilerError", &format!("Error seen: {e}")),
        (None, false, _) => {
            let message = if pod.is_some() { "Sandbox is suspending" } else { "Sandbox is suspended" };
            condition(sandbox, "Ready", false, "SandboxSuspended", message)
        }
        (None, true, "Succeeded") => condition(sandbox, "Ready", false, "PodSucceeded", "Pod completed successfully"),
        (None, true, "Failed") => condition(sandbox, "Ready", false, "PodFailed", "Pod failed"),
        (None, true, _) if pod_ready => condition(sandbox, "Ready", true, "DependenciesReady", "Pod is Ready"),
        (None, true, _) if pod.is_some() => {
            condition(sandbox, "Ready", false, "DependenciesNotReady", &format!("Pod exists with phase: {phase}"))
        }
        (None, true, _) => condition(sandbox, "Ready", false, "DependenciesNotReady", "Pod does not exist"),
    };
    let mut conditions = vec![ready];
    if !running {
        conditions.push(match pod {
            Some(_) => condition(sandbox, "Suspended", false, "PodNotTerminated", "Pod is terminating"),
            None => condition(sandbox, "Suspended", true, "PodTerminated", "Pod has been terminated"),
        });
    }
    match phase {
        "Succeeded" => {
            conditions.push(condition(sandbox, "Finished", true, "PodSucceeded", "Pod completed successfully"))
        }
        "Failed" => conditions.push(condition(sandbox, "Finished", true, "PodFailed", "Pod failed")),
        _ => {}
    }
    let mut status = json!({
        "conditions": conditions,
        "replicas": i64::from(pod.is_some()),
        "selector": format!("{TRACKING}={hash}"),
    });
    if let Some(pod) = pod {
        let ips: Vec<&Value> = pod["status"]["podIPs"].as_array().into_iter().flatten().map(|ip| &ip["ip"]).collect();
        if !ips.is_empty() {
            status["podIPs"] = json!(ips);
        }
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            status["nodeName"] = json!(node);
        }
    }
    sandbox["status"] = status;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_hash_is_fnv1a_as_upstream() {
        // FNV-1a 32 of "" is its offset basis; of "a", 0xe40c292c.
        assert_eq!(name_hash(""), "811c9dc5");
        assert_eq!(name_hash("a"), "e40c292c");
    }
}
