//! agent-sandbox's extensions controllers (kubernetes-sigs/agent-sandbox,
//! `extensions.agents.x-k8s.io/v1beta1`, the version they store and act on),
//! as the mock runs them with `--agent-sandbox`: warm pools of ready
//! Sandboxes, and claims that adopt one. What each keeps, read from the
//! upstream controllers:
//!
//! - **SandboxTemplate**: labels itself `agents.x-k8s.io/sandbox-template-ref-hash`
//!   and keeps one shared NetworkPolicy `<template>-network-policy` for its
//!   pods (selected by that label), owned by it: `networkPolicyManagement:
//!   Unmanaged` → none; a `networkPolicy` → its ingress and egress; neither
//!   (the default) → upstream's default, which lets the pods out to the whole
//!   public internet (and their DNS is set to 8.8.8.8 and 1.1.1.1).
//! - **SandboxWarmPool**: keeps `replicas` (default 1) Sandboxes made from its
//!   template, `generateName: <pool>-`, owned by it and labelled
//!   `agents.x-k8s.io/warm-pool-sandbox=<hash of the pool>` (not with the
//!   pool's own labels); surplus goes unready and newest first; `status`:
//!   `replicas`, `readyReplicas`, `selector`. Without its template it makes
//!   nothing.
//! - **SandboxClaim**: `warmPoolRef.name` names the pool, whose template it
//!   uses (`WarmPoolNotFound`, `TemplateNotFound` otherwise). It keeps the
//!   Sandbox it has; else adopts the pool's oldest Sandbox that has an IP
//!   (a ready one first): the claim becomes its only owner, the pool's labels
//!   go, `agents.x-k8s.io/claim-uid` and the annotation
//!   `agents.x-k8s.io/pod-name` are set and its pod template's metadata
//!   becomes the template's with `additionalPodMetadata` (which the core
//!   controller copies onto the running pod, whose name does not change).
//!   The pool then makes another. With nothing to adopt, or with `env`, it
//!   makes a Sandbox named as the claim (cold); `env` only where the
//!   template's `envVarsInjectionPolicy` allows it. `additionalPodMetadata`
//!   is checked as upstream checks it (labels only under `sandbox.users.io`,
//!   no annotation under `kubernetes.io`, `k8s.io` or `agents.x-k8s.io`) →
//!   `InvalidMetadata`. `status`: `sandbox.name`, `sandbox.podIPs`, and the
//!   Sandbox's `Ready` condition. A deleted claimed Sandbox is replaced.
//! - As the garbage collector does, a deleted pool takes its unclaimed
//!   Sandboxes, a deleted claim its Sandbox, a deleted template its policy.
//!
//! Not done: `lifecycle` (shutdown and TTL), `volumeClaimTemplates` on the
//! claim, update strategies, `v1alpha1` and its conversion, the `scale`
//! subresource, and events. The Sandboxes are made as `agents.x-k8s.io/v1alpha1`
//! (with `replicas`), the version the mock serves.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::kinds::{NETWORK_POLICIES, SANDBOX_CLAIMS, SANDBOX_TEMPLATES, SANDBOX_WARM_POOLS, SANDBOXES};
use crate::sandboxes::{controller_of, name_hash};
use crate::store::{Change, ChangeType, Store, now_rfc3339};

const WARM_POOL: &str = "agents.x-k8s.io/warm-pool-sandbox";
const TEMPLATE_REF_HASH: &str = "agents.x-k8s.io/sandbox-template-ref-hash";
const TEMPLATE_HASH: &str = "agents.x-k8s.io/sandbox-template-hash";
const POD_TEMPLATE_HASH: &str = "agents.x-k8s.io/sandbox-pod-template-hash";
const LAUNCH_TYPE: &str = "agents.x-k8s.io/launch-type";
const CREATED_BY: &str = "agents.x-k8s.io/created-by";
const CLAIM_UID: &str = "agents.x-k8s.io/claim-uid";
/// On a claim: the Sandbox it is adopting or has adopted.
const SANDBOX_NAME: &str = "agents.x-k8s.io/sandbox-name";
const POD_NAME: &str = "agents.x-k8s.io/pod-name";
const TEMPLATE_REF: &str = "agents.x-k8s.io/sandbox-template-ref";
const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// The label domain upstream allows in `additionalPodMetadata` by default.
const LABEL_DOMAIN: &str = "sandbox.users.io";

pub struct Controller {
    store: Arc<Store>,
}

/// Why a claim has no ready Sandbox: its `Ready` condition's reason and message.
type NotReady = (&'static str, String);

impl Controller {
    /// Start acting on the store's changes (call before the first object).
    pub fn start(store: Arc<Store>) {
        let changes = store.subscribe();
        tokio::spawn(Arc::new(Self { store }).run(changes));
    }

    /// Reconcile claim `name` again `after` from now.
    fn again(self: &Arc<Self>, namespace: &str, name: &str, after: std::time::Duration) {
        let (this, namespace, name) = (self.clone(), namespace.to_string(), name.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            this.claim(&namespace, &name);
        });
    }

    async fn run(self: Arc<Self>, mut changes: broadcast::Receiver<Change>) {
        loop {
            match changes.recv().await {
                Ok(change) => self.on_change(&change),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("clauderon-mock-kube: the extensions controller missed {n} changes");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn on_change(self: &Arc<Self>, change: &Change) {
        let (kind, namespace, name) = (change.key.0, change.key.1.as_str(), change.key.2.as_str());
        let uid = change.object["metadata"]["uid"].as_str().unwrap_or_default();
        match (kind, change.change) {
            (SANDBOX_TEMPLATES, ChangeType::Deleted) => self.collect(NETWORK_POLICIES, namespace, uid),
            (SANDBOX_TEMPLATES, _) => {
                self.template(namespace, name);
                self.each(SANDBOX_WARM_POOLS, namespace, |pool| self.pool(namespace, pool));
                self.each(SANDBOX_CLAIMS, namespace, |claim| self.claim(namespace, claim));
            }
            (SANDBOX_WARM_POOLS, ChangeType::Deleted) => self.collect(SANDBOXES, namespace, uid),
            (SANDBOX_WARM_POOLS, _) => {
                self.pool(namespace, name);
                self.each(SANDBOX_CLAIMS, namespace, |claim| self.claim(namespace, claim));
            }
            (SANDBOX_CLAIMS, ChangeType::Deleted) => self.collect(SANDBOXES, namespace, uid),
            (SANDBOX_CLAIMS, _) => self.claim(namespace, name),
            (SANDBOXES, _) => {
                // Its owner now, and the one before (a pool whose Sandbox a claim took).
                let owners =
                    [Some(&change.object), change.old.as_ref()].into_iter().flatten().filter_map(controller_of);
                for owner in owners.map(|o| (o["kind"].clone(), o["name"].as_str().unwrap_or_default().to_string())) {
                    match owner {
                        (kind, pool) if kind == "SandboxWarmPool" => {
                            self.pool(namespace, &pool);
                            // A claim waiting for a Sandbox with an IP may take this one now.
                            self.each(SANDBOX_CLAIMS, namespace, |claim| self.claim(namespace, claim));
                        }
                        (kind, claim) if kind == "SandboxClaim" => self.claim(namespace, &claim),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Run `act` on the name of every object of `kind` in `namespace`.
    fn each(&self, kind: usize, namespace: &str, act: impl Fn(&str)) {
        let Ok((items, _)) = self.store.list(kind, namespace, &Default::default()) else { return };
        for item in &items {
            act(item["metadata"]["name"].as_str().unwrap_or_default());
        }
    }

    /// Delete the objects of `kind` the deleted owner `uid` controlled.
    fn collect(&self, kind: usize, namespace: &str, uid: &str) {
        let Ok((items, _)) = self.store.list(kind, namespace, &Default::default()) else { return };
        for item in items.iter().filter(|i| controller_of(i).is_some_and(|o| o["uid"] == uid)) {
            let name = item["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let _ = self.store.delete((kind, namespace.to_string(), name), &Value::Null);
        }
    }

    /// A template's own label and its shared network policy.
    fn template(&self, namespace: &str, name: &str) {
        let Ok(template) = self.store.get(SANDBOX_TEMPLATES, namespace, name) else { return };
        let uid = template["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let hash = name_hash(name);
        self.store.update(&(SANDBOX_TEMPLATES, namespace.to_string(), name.to_string()), &uid, |t| {
            t["metadata"]["labels"][TEMPLATE_REF_HASH] = json!(hash);
        });
        let policy_name = format!("{name}-network-policy");
        let key = (NETWORK_POLICIES, namespace.to_string(), policy_name.clone());
        let existing = self.store.get(NETWORK_POLICIES, namespace, &policy_name).ok();
        if existing.as_ref().is_some_and(|p| controller_of(p).is_none_or(|o| o["uid"] != uid.as_str())) {
            eprintln!("clauderon-mock-kube: refusing to update NetworkPolicy {policy_name}: not the template's");
            return;
        }
        let spec = &template["spec"];
        if spec["networkPolicyManagement"] == "Unmanaged" {
            if existing.is_some() {
                let _ = self.store.delete(key, &Value::Null);
            }
            return;
        }
        let (ingress, egress) = match spec["networkPolicy"].as_object() {
            Some(custom) => (
                custom.get("ingress").cloned().unwrap_or(json!([])),
                custom.get("egress").cloned().unwrap_or(json!([])),
            ),
            None => default_policy_rules(),
        };
        let policy_spec = json!({
            "podSelector": {"matchLabels": {TEMPLATE_REF_HASH: hash}},
            "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress
        });
        match existing {
            Some(policy) => {
                let theirs = policy["metadata"]["uid"].as_str().unwrap_or_default();
                self.store.update(&key, theirs, |p| p["spec"] = policy_spec);
            }
            None => {
                let policy = json!({
                    "metadata": {"name": policy_name, "ownerReferences": [owner_reference(&template)]},
                    "spec": policy_spec
                });
                if let Err(e) = self.store.create(NETWORK_POLICIES, namespace, policy) {
                    eprintln!("clauderon-mock-kube: the template's network policy: {:?}", e.1);
                }
            }
        }
    }

    /// A pool's Sandboxes: as many as it asks for, made from its template.
    fn pool(&self, namespace: &str, name: &str) {
        let Ok(pool) = self.store.get(SANDBOX_WARM_POOLS, namespace, name) else { return };
        let uid = pool["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let hash = name_hash(name);
        let mut members = self.members(namespace, &hash, &uid);
        let desired = usize::try_from(pool["spec"]["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
        let template_name = pool["spec"]["sandboxTemplateRef"]["name"].as_str().unwrap_or_default();
        if let Ok(template) = self.store.get(SANDBOX_TEMPLATES, namespace, template_name) {
            for _ in members.len()..desired {
                match self.store.create(SANDBOXES, namespace, warm_sandbox(&pool, &template)) {
                    Ok(made) => members.push(made),
                    Err(e) => eprintln!("clauderon-mock-kube: pool {name}: {:?}", e.1),
                }
            }
        }
        if members.len() > desired {
            // Unready first, newest first.
            members.sort_by_key(|s| (ready(s), std::cmp::Reverse(created(s))));
            for surplus in members.drain(..members.len() - desired) {
                let name = surplus["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let _ = self.store.delete((SANDBOXES, namespace.to_string(), name), &Value::Null);
            }
        }
        let ready_count = members.iter().filter(|s| ready(s)).count();
        self.store.update(&(SANDBOX_WARM_POOLS, namespace.to_string(), name.to_string()), &uid, |p| {
            p["status"] = json!({
                "replicas": members.len(), "readyReplicas": ready_count,
                "selector": format!("{WARM_POOL}={hash}"),
                "observedGeneration": p["metadata"]["generation"].as_i64().unwrap_or(1)
            });
        });
    }

    /// The Sandboxes pool `uid` (`hash`: of its name) has and no claim has taken.
    fn members(&self, namespace: &str, hash: &str, uid: &str) -> Vec<Value> {
        let Ok((items, _)) = self.store.list(SANDBOXES, namespace, &Default::default()) else { return Vec::new() };
        items
            .into_iter()
            .filter(|s| s["metadata"]["labels"][WARM_POOL] == hash && controller_of(s).is_some_and(|o| o["uid"] == uid))
            .collect()
    }

    /// A claim's Sandbox: kept, adopted from its pool or made; its status.
    fn claim(self: &Arc<Self>, namespace: &str, name: &str) {
        let Ok(claim) = self.store.get(SANDBOX_CLAIMS, namespace, name) else { return };
        let uid = claim["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let key = (SANDBOX_CLAIMS, namespace.to_string(), name.to_string());
        let outcome = self.claimed(&claim);
        self.store.update(&key, &uid, |c| {
            let (ready, sandbox) = match &outcome {
                Ok(sandbox) => {
                    let ready = ready_condition(sandbox)
                        .cloned()
                        .unwrap_or_else(|| condition(c, false, "SandboxNotReady", "Sandbox is not ready"));
                    let mut status = json!({"name": sandbox["metadata"]["name"]});
                    if let Some(ips) = sandbox["status"]["podIPs"].as_array().filter(|ips| !ips.is_empty()) {
                        status["podIPs"] = json!(ips);
                    }
                    (ready, Some(status))
                }
                Err((reason, message)) => (condition(c, false, reason, message), None),
            };
            let mut status = json!({"conditions": [ready]});
            if let Some(sandbox) = sandbox {
                status["sandbox"] = sandbox;
            }
            c["status"] = status;
        });
    }

    /// The claim's Sandbox, found, adopted or made (upstream's order).
    fn claimed(self: &Arc<Self>, claim: &Value) -> Result<Value, NotReady> {
        let namespace = claim["metadata"]["namespace"].as_str().unwrap_or_default();
        let claim_name = claim["metadata"]["name"].as_str().unwrap_or_default();
        let uid = claim["metadata"]["uid"].as_str().unwrap_or_default();
        check_metadata(&claim["spec"]["additionalPodMetadata"]).map_err(|e| ("InvalidMetadata", e))?;
        let pool_name = claim["spec"]["warmPoolRef"]["name"].as_str().unwrap_or_default();
        let pool = self
            .store
            .get(SANDBOX_WARM_POOLS, namespace, pool_name)
            .map_err(|_| ("WarmPoolNotFound", format!("SandboxWarmPool {pool_name:?} not found")))?;
        let template_name = pool["spec"]["sandboxTemplateRef"]["name"].as_str().unwrap_or_default();
        let template = self
            .store
            .get(SANDBOX_TEMPLATES, namespace, template_name)
            .map_err(|_| ("TemplateNotFound", format!("SandboxTemplate {template_name:?} not found")))?;
        let mine = |s: &Value| controller_of(s).is_some_and(|o| o["uid"] == uid);
        let get = |name: &str| self.store.get(SANDBOXES, namespace, name).ok();
        let metadata = pod_metadata(claim, &template);
        // The one it has, by its status, then by its annotation.
        let by_status = claim["status"]["sandbox"]["name"].as_str().and_then(get).filter(|s| mine(s));
        if let Some(sandbox) = by_status {
            return Ok(self.keep(sandbox, &metadata));
        }
        if let Some(named) = claim["metadata"]["annotations"][SANDBOX_NAME].as_str() {
            match get(named) {
                Some(sandbox) if mine(&sandbox) => return Ok(self.keep(sandbox, &metadata)),
                Some(sandbox) if controller_of(&sandbox).is_some_and(|o| o["uid"] == pool["metadata"]["uid"]) => {
                    return Ok(self.adopt(claim, sandbox, &metadata));
                }
                _ => self.annotate(claim, None),
            }
        }
        // One named as the claim: its own, or in the way.
        if let Some(sandbox) = get(claim_name) {
            if mine(&sandbox) {
                return Ok(self.keep(sandbox, &metadata));
            }
            return Err((
                "ReconcilerError",
                format!(
                    "Error seen: sandbox {claim_name:?} is not controlled by claim {claim_name:?}. Please use a different claim name or delete the sandbox manually"
                ),
            ));
        }
        let env = claim["spec"]["env"].as_array().filter(|e| !e.is_empty());
        if env.is_none() {
            let hash = name_hash(pool_name);
            let pool_uid = pool["metadata"]["uid"].as_str().unwrap_or_default();
            let mut candidates: Vec<Value> = self
                .members(namespace, &hash, pool_uid)
                .into_iter()
                .filter(|s| s["status"]["podIPs"].as_array().is_some_and(|ips| !ips.is_empty()))
                .collect();
            candidates.sort_by_key(|s| (!ready(s), created(s)));
            if let Some(sandbox) = candidates.into_iter().next() {
                self.annotate(claim, Some(sandbox["metadata"]["name"].as_str().unwrap_or_default()));
                return Ok(self.adopt(claim, sandbox, &metadata));
            }
            // A young claim waits a little for a warm Sandbox to get its IP
            // (upstream: 2 s, asking again every 500 ms), then starts cold.
            let age = claim["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
                .map(|at| time::OffsetDateTime::now_utc() - at);
            if age.is_some_and(|age| age < time::Duration::seconds(2))
                && !self.members(namespace, &hash, pool_uid).is_empty()
            {
                self.again(namespace, claim_name, std::time::Duration::from_millis(500));
                return Err(("SandboxNotReady", "waiting for a warm Sandbox of the pool".into()));
            }
        }
        self.cold(claim, &template, &metadata)
    }

    /// Set (or remove) the claim's annotation naming the Sandbox it adopts.
    fn annotate(&self, claim: &Value, sandbox: Option<&str>) {
        let key = key_of(SANDBOX_CLAIMS, claim);
        let uid = claim["metadata"]["uid"].as_str().unwrap_or_default();
        self.store.update(&key, uid, |c| match sandbox {
            Some(name) => c["metadata"]["annotations"][SANDBOX_NAME] = json!(name),
            None => {
                if let Some(annotations) = c["metadata"]["annotations"].as_object_mut() {
                    annotations.remove(SANDBOX_NAME);
                }
            }
        });
    }

    /// The claim's own Sandbox, its pod template's metadata put back to what the claim says.
    fn keep(&self, sandbox: Value, metadata: &Value) -> Value {
        let key = key_of(SANDBOXES, &sandbox);
        let uid = sandbox["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        self.store.update(&key, &uid, |s| s["spec"]["podTemplate"]["metadata"] = metadata.clone()).unwrap_or(sandbox)
    }

    /// Take the pool's `sandbox` for the claim.
    fn adopt(&self, claim: &Value, sandbox: Value, metadata: &Value) -> Value {
        let key = key_of(SANDBOXES, &sandbox);
        let uid = sandbox["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let name = key.2.clone();
        self.store
            .update(&key, &uid, |s| {
                if let Some(labels) = s["metadata"]["labels"].as_object_mut() {
                    for gone in [WARM_POOL, POD_TEMPLATE_HASH, TEMPLATE_HASH] {
                        labels.remove(gone);
                    }
                    labels.insert(LAUNCH_TYPE.into(), json!("warm"));
                    labels.insert(CLAIM_UID.into(), claim["metadata"]["uid"].clone());
                    match claim["metadata"]["labels"][CREATED_BY].as_str() {
                        Some(by) => labels.insert(CREATED_BY.into(), json!(by)),
                        None => labels.remove(CREATED_BY),
                    };
                }
                s["metadata"]["ownerReferences"] = json!([owner_reference(claim)]);
                s["metadata"]["annotations"][POD_NAME] = json!(name);
                s["spec"]["podTemplate"]["metadata"] = metadata.clone();
            })
            .unwrap_or(sandbox)
    }

    /// A Sandbox named as the claim, made from the template (a cold start).
    fn cold(&self, claim: &Value, template: &Value, metadata: &Value) -> Result<Value, NotReady> {
        let namespace = claim["metadata"]["namespace"].as_str().unwrap_or_default();
        let mut pod_template = template["spec"]["podTemplate"].clone();
        pod_template["metadata"] = metadata.clone();
        if let Some(env) = claim["spec"]["env"].as_array().filter(|e| !e.is_empty()) {
            let policy = template["spec"]["envVarsInjectionPolicy"].as_str().unwrap_or("Disallowed");
            if !matches!(policy, "Allowed" | "Overrides") {
                return Err((
                    "EnvVarsInjectionRejected",
                    "environment variable injection rejected: environment variable injection is not allowed by the template policy".into(),
                ));
            }
            if let Some(first) = pod_template["spec"]["containers"].get_mut(0) {
                let mut vars = first["env"].as_array().cloned().unwrap_or_default();
                vars.extend(env.iter().map(|e| json!({"name": e["name"], "value": e["value"]})));
                first["env"] = json!(vars);
            }
        }
        secure_defaults(&mut pod_template["spec"], template);
        let mut labels = json!({CLAIM_UID: claim["metadata"]["uid"], LAUNCH_TYPE: "cold",
                                TEMPLATE_REF_HASH: name_hash(template["metadata"]["name"].as_str().unwrap_or_default())});
        if let Some(by) = claim["metadata"]["labels"][CREATED_BY].as_str() {
            labels[CREATED_BY] = json!(by);
        }
        let sandbox = json!({
            "metadata": {"name": claim["metadata"]["name"], "labels": labels,
                         "annotations": {TEMPLATE_REF: template["metadata"]["name"]},
                         "ownerReferences": [owner_reference(claim)]},
            "spec": {"podTemplate": pod_template, "volumeClaimTemplates": template["spec"]["volumeClaimTemplates"],
                     "replicas": 1}
        });
        self.store.create(SANDBOXES, namespace, sandbox).map_err(|e| ("SandboxCreatePending", format!("{:?}", e.1)))
    }
}

/// A pool's new Sandbox: the template's blueprint, marked as the pool's.
fn warm_sandbox(pool: &Value, template: &Value) -> Value {
    let pool_name = pool["metadata"]["name"].as_str().unwrap_or_default();
    let template_name = template["metadata"]["name"].as_str().unwrap_or_default();
    let blueprint = json!({"podTemplate": template["spec"]["podTemplate"],
                           "volumeClaimTemplates": template["spec"]["volumeClaimTemplates"]});
    let marks = json!({
        WARM_POOL: name_hash(pool_name), TEMPLATE_REF_HASH: name_hash(template_name),
        POD_TEMPLATE_HASH: name_hash(&template["spec"]["podTemplate"].to_string()),
        TEMPLATE_HASH: name_hash(&blueprint.to_string())
    });
    let mut pod_template = template["spec"]["podTemplate"].clone();
    for (key, value) in marks.as_object().into_iter().flatten() {
        pod_template["metadata"]["labels"][key] = value.clone();
    }
    if pod_template["metadata"]["annotations"][SAFE_TO_EVICT].is_null() {
        pod_template["metadata"]["annotations"][SAFE_TO_EVICT] = json!("true");
    }
    secure_defaults(&mut pod_template["spec"], template);
    let mut labels = marks;
    labels[LAUNCH_TYPE] = json!("warm");
    labels[CREATED_BY] = json!("controller");
    json!({
        "metadata": {"generateName": format!("{pool_name}-"), "labels": labels,
                     "annotations": {TEMPLATE_REF: template_name}, "ownerReferences": [owner_reference(pool)]},
        "spec": {"podTemplate": pod_template, "volumeClaimTemplates": blueprint["volumeClaimTemplates"], "replicas": 1}
    })
}

/// Upstream's `ApplySandboxSecureDefaults`: no service-account token unless
/// asked; a Managed template without a policy of its own gets public DNS.
fn secure_defaults(pod_spec: &mut Value, template: &Value) {
    if pod_spec["automountServiceAccountToken"].is_null() {
        pod_spec["automountServiceAccountToken"] = json!(false);
    }
    let managed = template["spec"]["networkPolicyManagement"] != "Unmanaged";
    if managed && template["spec"]["networkPolicy"].is_null() && pod_spec["dnsPolicy"].is_null() {
        pod_spec["dnsPolicy"] = json!("None");
        pod_spec["dnsConfig"] = json!({"nameservers": ["8.8.8.8", "1.1.1.1"]});
    }
}

/// Upstream's default rules for a Managed template without a policy: in
/// from agent-sandbox's router alone; out to the public internet.
fn default_policy_rules() -> (Value, Value) {
    let ingress = json!([{"from": [{
        "podSelector": {"matchLabels": {"app": "sandbox-router"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agent-sandbox-system"}}
    }]}]);
    let egress = json!([{"to": [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}}
    ]}]);
    (ingress, egress)
}

/// The pod template metadata a claim's Sandbox has: the template's, the
/// claim's marks, and its `additionalPodMetadata`.
fn pod_metadata(claim: &Value, template: &Value) -> Value {
    let mut metadata = template["spec"]["podTemplate"]["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    let template_name = template["metadata"]["name"].as_str().unwrap_or_default();
    metadata["labels"][CLAIM_UID] = claim["metadata"]["uid"].clone();
    metadata["labels"][TEMPLATE_REF_HASH] = json!(name_hash(template_name));
    if let Some(by) = claim["metadata"]["labels"][CREATED_BY].as_str() {
        metadata["labels"][CREATED_BY] = json!(by);
    }
    let extra = &claim["spec"]["additionalPodMetadata"];
    for part in ["labels", "annotations"] {
        for (key, value) in extra[part].as_object().into_iter().flatten() {
            metadata[part][key] = value.clone();
        }
    }
    metadata
}

/// Upstream's check of a claim's `additionalPodMetadata`.
fn check_metadata(extra: &Value) -> Result<(), String> {
    let domain_of = |key: &str| key.split_once('/').map(|(d, _)| d.to_string());
    let under = |domain: &str, parent: &str| domain == parent || domain.ends_with(&format!(".{parent}"));
    for (key, value) in extra["labels"].as_object().into_iter().flatten() {
        match domain_of(key) {
            Some(domain) if under(&domain, LABEL_DOMAIN) => {}
            _ => {
                return Err(format!(
                    "invalid additionalPodMetadata: failed to validate label {key:?}: label domain is not in the allowed list [{LABEL_DOMAIN}]"
                ));
            }
        }
        if key == "app" && value == "sandbox-router" {
            return Err("invalid additionalPodMetadata: label app=sandbox-router is reserved".into());
        }
    }
    for key in extra["annotations"].as_object().map(Map::keys).into_iter().flatten() {
        let blocked =
            domain_of(key).is_some_and(|d| ["kubernetes.io", "k8s.io", "agents.x-k8s.io"].iter().any(|p| under(&d, p)));
        if blocked && key != SAFE_TO_EVICT {
            return Err(format!(
                "invalid additionalPodMetadata: failed to validate annotation {key:?}: its domain is reserved"
            ));
        }
    }
    Ok(())
}

fn key_of(kind: usize, object: &Value) -> (usize, String, String) {
    let meta = &object["metadata"];
    (kind, meta["namespace"].as_str().unwrap_or_default().into(), meta["name"].as_str().unwrap_or_default().into())
}

fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
    })
}

fn ready_condition(sandbox: &Value) -> Option<&Value> {
    sandbox["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")
}

fn ready(sandbox: &Value) -> bool {
    ready_condition(sandbox).is_some_and(|c| c["status"] == "True")
}

fn created(object: &Value) -> (String, String) {
    let meta = &object["metadata"];
    (meta["creationTimestamp"].as_str().unwrap_or_default().into(), meta["name"].as_str().unwrap_or_default().into())
}

/// A claim's `Ready` condition, keeping its transition time when its status is unchanged.
fn condition(claim: &Value, status: bool, reason: &str, message: &str) -> Value {
    let status = if status { "True" } else { "False" };
    let before = claim["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
    let since = match before {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now_rfc3339()),
    };
    json!({"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additional_pod_metadata_is_checked_as_upstream_checks_it() {
        assert!(check_metadata(&json!({"labels": {"sandbox.users.io/session": "a"}})).is_ok());
        assert!(check_metadata(&json!({"labels": {"team.sandbox.users.io/x": "a"}})).is_ok());
        assert!(check_metadata(&json!({"labels": {"dev.clauderon.resource": "a"}})).is_err());
        assert!(check_metadata(&json!({"labels": {"example.com/a": "b"}})).is_err());
        assert!(check_metadata(&json!({"annotations": {"note": "x", SAFE_TO_EVICT: "false"}})).is_ok());
        assert!(check_metadata(&json!({"annotations": {"agents.x-k8s.io/pod-name": "x"}})).is_err());
        assert!(check_metadata(&json!({"annotations": {"a.kubernetes.io/b": "x"}})).is_err());
    }

    #[test]
    fn a_managed_template_without_a_policy_lets_its_pods_out_to_the_internet() {
        let (_, egress) = default_policy_rules();
        assert_eq!(egress[0]["to"][0]["ipBlock"]["cidr"], "0.0.0.0/0");
        let mut spec = json!({});
        secure_defaults(&mut spec, &json!({"spec": {}}));
        assert_eq!(spec["dnsConfig"]["nameservers"][0], "8.8.8.8");
        let mut spec = json!({});
        secure_defaults(&mut spec, &json!({"spec": {"networkPolicyManagement": "Unmanaged"}}));
        assert!(spec["dnsPolicy"].is_null() && spec["automountServiceAccountToken"] == false);
    }
}
