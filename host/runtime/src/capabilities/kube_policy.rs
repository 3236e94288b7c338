//! What a component may ask of the cluster through `kube`: the kinds it may
//! touch, and the checks every object it sends passes before the cluster
//! sees it. Pure functions over the object's JSON, so each rule is tested on
//! its own; [`super::kube`] applies them.
//!
//! Every object is put in the configured namespace and labelled as the
//! component's ([`OWNER_LABEL`]); the component sees and changes only
//! objects carrying its label. A pod (or a Sandbox's pod template) may not
//! reach the node: no `hostPath` or other volume but its own claims and
//! `emptyDir`, no host network, PID or IPC namespace, no host ports, no
//! privileged container, no added capability, no privilege escalation, no
//! root user, no unconfined seccomp or AppArmor, no unmasked `/proc`; and it
//! reads no cluster secret: no `secretKeyRef`/`configMapKeyRef`, no
//! `envFrom`, no service-account token unless the user allowed it (the host
//! sets `automountServiceAccountToken: false`). A claim may not bind an
//! existing volume or clone another claim's data; a network policy selects
//! only the component's own pods. No object carries a label or annotation
//! agent-sandbox's controller acts on (`agents.x-k8s.io/…`): with them a
//! component could have another's Sandbox adopt its claim or pod. A warm
//! pool's template is checked as a Sandbox and keeps agent-sandbox from
//! making its (internet-wide) network policy; a pool's template and a
//! claim's pool must be the component's own.

use serde_json::{Value, json};

/// The label naming the component an object belongs to (the same key the
/// `container` capability puts on its containers).
pub const OWNER_LABEL: &str = super::container::OWNER_LABEL;

/// A kind a component may use: its API group-version, kind and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRef {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub const POD: KindRef = KindRef { api_version: "v1", kind: "Pod", plural: "pods" };
pub const CLAIM: KindRef =
    KindRef { api_version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims" };

/// An agent-sandbox `Sandbox` (kubernetes-sigs/agent-sandbox): a pod made
/// by the cluster's controller from its `podTemplate`, with claims from its
/// `volumeClaimTemplates`, paused and resumed through `replicas`.
pub const SANDBOX: KindRef = KindRef { api_version: "agents.x-k8s.io/v1alpha1", kind: "Sandbox", plural: "sandboxes" };

/// An agent-sandbox `SandboxTemplate`: the blueprint (pod template, claim
/// templates) of a warm pool's Sandboxes and of those its claims get.
pub const SANDBOX_TEMPLATE: KindRef =
    KindRef { api_version: "extensions.agents.x-k8s.io/v1beta1", kind: "SandboxTemplate", plural: "sandboxtemplates" };

/// An agent-sandbox `SandboxWarmPool`: Sandboxes made ahead from a template,
/// running and ready for a claim to take.
pub const SANDBOX_WARM_POOL: KindRef =
    KindRef { api_version: "extensions.agents.x-k8s.io/v1beta1", kind: "SandboxWarmPool", plural: "sandboxwarmpools" };

/// An agent-sandbox `SandboxClaim`: takes a Sandbox from a warm pool (or has
/// one made from the pool's template) and owns it from then on.
pub const SANDBOX_CLAIM: KindRef =
    KindRef { api_version: "extensions.agents.x-k8s.io/v1beta1", kind: "SandboxClaim", plural: "sandboxclaims" };

/// The most Sandboxes one warm pool may keep running ahead.
pub const MAX_WARM: i64 = 20;

/// Every kind `kube` serves.
pub const KINDS: &[KindRef] = &[
    POD,
    CLAIM,
    KindRef { api_version: "networking.k8s.io/v1", kind: "NetworkPolicy", plural: "networkpolicies" },
    SANDBOX,
    SANDBOX_TEMPLATE,
    SANDBOX_WARM_POOL,
    SANDBOX_CLAIM,
];

/// The kind named `kind` (as in a manifest: `Pod`, `PersistentVolumeClaim`, …).
pub fn kind(kind: &str) -> Result<KindRef, String> {
    KINDS.iter().copied().find(|k| k.kind == kind).ok_or_else(|| {
        let known: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
        format!("kind {kind:?} is not one a component may use (only {})", known.join(", "))
    })
}

/// Whose objects, where.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The component's id: the value of its objects' [`OWNER_LABEL`].
    pub component: String,
    /// The one namespace.
    pub namespace: String,
    /// Whether pods may mount a service-account token (`[backends.kubernetes]
    /// service_account_token = true`).
    pub service_account_token: bool,
}

/// Whether `object` is the component's.
pub fn owned(object: &Value, scope: &Scope) -> bool {
    object["metadata"]["labels"][OWNER_LABEL].as_str() == Some(scope.component.as_str())
}

/// The claim (name and uid) that controls `object`, per its owner
/// references: a Sandbox a `SandboxClaim` took from a warm pool (or had
/// made). Whether that claim is the component's only the cluster can tell.
pub fn claimed_by(object: &Value) -> Option<(String, String)> {
    let owner = object["metadata"]["ownerReferences"].as_array()?.iter().find(|o| o["controller"] == true)?;
    let group = owner["apiVersion"].as_str()?.split('/').next()?;
    if owner["kind"] != SANDBOX_CLAIM.kind || group != "extensions.agents.x-k8s.io" {
        return None;
    }
    Some((owner["name"].as_str()?.to_string(), owner["uid"].as_str()?.to_string()))
}

/// Why a container that cannot run is waiting (a cluster's own reasons).
const STUCK: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
];

/// Whether waiting for `pod` is over: it runs, or it cannot (a container
/// stuck as one of [`STUCK`] or terminated, or the pod finished).
pub fn pod_settled(pod: &Value) -> bool {
    let status = &pod["status"];
    if matches!(status["phase"].as_str(), Some("Running" | "Failed" | "Succeeded")) {
        return true;
    }
    let containers = status["containerStatuses"].as_array().into_iter().flatten();
    containers.into_iter().any(|c| {
        c["state"]["terminated"].is_object()
            || c["state"]["waiting"]["reason"].as_str().is_some_and(|r| STUCK.contains(&r))
    })
}

/// The label selector a list uses: the component's label and what it asked for.
pub fn selector(asked: &str, scope: &Scope) -> String {
    let own = format!("{OWNER_LABEL}={}", scope.component);
    if asked.trim().is_empty() { own } else { format!("{own},{}", asked.trim()) }
}

/// An object another names (a pod its claim, a pool its template, a claim
/// its pool): each must be the component's, which only the cluster can tell.
pub type Reference = (KindRef, String);

/// Check a manifest and make it the component's: its kind, namespace, owner
/// label and what it asks of the node. Returns the kind and the object to
/// send, and the objects it names ([`Reference`]).
pub fn admit(manifest: &str, scope: &Scope) -> Result<(KindRef, Value, Vec<Reference>), String> {
    let mut object: Value = serde_json::from_str(manifest).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if !object.is_object() {
        return Err("the manifest is not a JSON object".into());
    }
    let k = kind(object["kind"].as_str().unwrap_or_default())?;
    if object["apiVersion"].as_str() != Some(k.api_version) {
        return Err(format!("a {} has apiVersion {:?}, not {}", k.kind, k.api_version, object["apiVersion"]));
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty()
        || name.len() > 253
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err(format!("metadata.name {name:?} is not a valid object name (lowercase letters, digits, '-', '.')"));
    }
    let meta = &mut object["metadata"];
    match meta["namespace"].as_str() {
        None => meta["namespace"] = json!(scope.namespace),
        Some(ns) if ns == scope.namespace => {}
        Some(ns) => return Err(format!("namespace {ns:?} is not the configured namespace {:?}", scope.namespace)),
    }
    for field in ["ownerReferences", "finalizers"] {
        if meta[field].as_array().is_some_and(|a| !a.is_empty()) {
            return Err(format!("metadata.{field} is not allowed (an object of a component stands alone)"));
        }
    }
    own(meta, "metadata", scope)?;
    check_reserved(&object["metadata"], "metadata")?;
    let mut claims = Vec::new();
    let mut references = Vec::new();
    match k.kind {
        "Pod" => {
            check_pod_annotations(&object["metadata"], "metadata")?;
            check_pod(&mut object["spec"], "spec", &[], scope, &mut claims)?
        }
        "PersistentVolumeClaim" => check_claim(&object["spec"], "spec")?,
        "Sandbox" => check_sandbox(&mut object["spec"], scope, &mut claims)?,
        "SandboxTemplate" => check_template(&mut object["spec"], scope, &mut claims)?,
        "SandboxWarmPool" => references.push(check_warm_pool(&object["spec"])?),
        "SandboxClaim" => references.push(check_sandbox_claim(&object["spec"], scope)?),
        "NetworkPolicy" => {
            let spec = &mut object["spec"];
            if !spec["podSelector"]["matchLabels"].is_object() {
                spec["podSelector"]["matchLabels"] = json!({});
            }
            // It may select only the component's own pods.
            spec["podSelector"]["matchLabels"][OWNER_LABEL] = json!(scope.component);
        }
        _ => {}
    }
    references.extend(claims.into_iter().map(|c| (CLAIM, c)));
    Ok((k, object, references))
}

/// Label the object whose metadata is `meta` (at `at`) as the component's,
/// unless it is labelled as another's.
fn own(meta: &mut Value, at: &str, scope: &Scope) -> Result<(), String> {
    if let Some(owner) = meta["labels"][OWNER_LABEL].as_str().filter(|o| *o != scope.component) {
        let whose = if at == "metadata" { "the object".to_string() } else { at.to_string() };
        return Err(format!("{whose} is labelled {OWNER_LABEL}={owner}, another component's"));
    }
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    meta["labels"][OWNER_LABEL] = json!(scope.component);
    Ok(())
}

/// The claim checks, on a claim spec at `at` (`spec`, or a template's).
fn check_claim(spec: &Value, at: &str) -> Result<(), String> {
    for field in ["volumeName", "dataSource", "dataSourceRef", "selector"] {
        if !spec[field].is_null() {
            return Err(format!(
                "{at}.{field} is not allowed in a claim (it would bind or copy a volume that is not the component's)"
            ));
        }
    }
    Ok(())
}

/// A `Sandbox`'s checks: its blueprint ([`check_blueprint`]), and it runs
/// one pod or none.
fn check_sandbox(spec: &mut Value, scope: &Scope, claims: &mut Vec<String>) -> Result<(), String> {
    if !spec.is_object() {
        return Err("spec is missing".into());
    }
    if !spec["replicas"].is_null() && spec["replicas"] != 0 && spec["replicas"] != 1 {
        return Err(format!("spec.replicas {} is not allowed: a sandbox is paused (0) or runs (1)", spec["replicas"]));
    }
    check_blueprint(spec, scope, claims)
}

/// A `SandboxTemplate`'s checks: its blueprint ([`check_blueprint`]), and
/// nothing that would widen what its pods may do or be given. agent-sandbox
/// keeps no network policy for it (`networkPolicyManagement: Unmanaged`): its
/// default one lets the pods out to the whole internet and points their DNS
/// at public resolvers; the component isolates its pods with its own
/// NetworkPolicy. No claim may put environment variables or claim templates
/// into its pods, and no Service is made for them.
fn check_template(spec: &mut Value, scope: &Scope, claims: &mut Vec<String>) -> Result<(), String> {
    if !spec.is_object() {
        return Err("spec is missing".into());
    }
    if spec["networkPolicyManagement"] != "Unmanaged" || !spec["networkPolicy"].is_null() {
        return Err(
            "spec.networkPolicyManagement must be \"Unmanaged\" (and spec.networkPolicy unset): agent-sandbox's \
             default policy for a template lets its pods out to the whole internet; a component isolates its \
             pods with a NetworkPolicy of its own"
                .into(),
        );
    }
    for field in ["envVarsInjectionPolicy", "volumeClaimTemplatesPolicy"] {
        if !spec[field].is_null() && spec[field] != "Disallowed" {
            return Err(format!(
                "spec.{field} {} is not allowed: a claim may not add to the pods of a component's template \
                 (only \"Disallowed\")",
                spec[field]
            ));
        }
    }
    if spec["service"] == true {
        return Err("spec.service is not allowed: a session's pod is reached through the host alone".into());
    }
    check_blueprint(spec, scope, claims)
}

/// A `SandboxWarmPool`'s checks: at most [`MAX_WARM`] Sandboxes, from a
/// template that must be the component's (the reference returned).
fn check_warm_pool(spec: &Value) -> Result<Reference, String> {
    let replicas = &spec["replicas"];
    if !replicas.is_null() && !replicas.as_i64().is_some_and(|r| (0..=MAX_WARM).contains(&r)) {
        return Err(format!("spec.replicas {replicas} is not allowed: a warm pool keeps 0 to {MAX_WARM} Sandboxes"));
    }
    match spec["sandboxTemplateRef"]["name"].as_str().filter(|n| !n.is_empty()) {
        Some(template) => Ok((SANDBOX_TEMPLATE, template.to_string())),
        None => Err("spec.sandboxTemplateRef.name is missing: a warm pool is made from a template".into()),
    }
}

/// A `SandboxClaim`'s checks: it takes from a pool that must be the
/// component's (the reference returned); it adds no environment variables
/// or claims to the pod (they would skip the pool, and a template of the
/// component's refuses them), and what it adds to the pod's metadata is
/// checked as a pod's own.
fn check_sandbox_claim(spec: &Value, scope: &Scope) -> Result<Reference, String> {
    for field in ["env", "volumeClaimTemplates"] {
        if spec[field].as_array().is_some_and(|a| !a.is_empty()) {
            return Err(format!("spec.{field} is not allowed: a claim adds nothing to its pod's spec"));
        }
    }
    let extra = &spec["additionalPodMetadata"];
    check_pod_annotations(extra, "spec.additionalPodMetadata")?;
    check_reserved(extra, "spec.additionalPodMetadata")?;
    if let Some(owner) = extra["labels"][OWNER_LABEL].as_str().filter(|o| *o != scope.component) {
        return Err(format!("spec.additionalPodMetadata is labelled {OWNER_LABEL}={owner}, another component's"));
    }
    match spec["warmPoolRef"]["name"].as_str().filter(|n| !n.is_empty()) {
        Some(pool) => Ok((SANDBOX_WARM_POOL, pool.to_string())),
        None => Err("spec.warmPoolRef.name is missing: a claim takes from a warm pool".into()),
    }
}

/// A blueprint's checks (a Sandbox's spec, a template's): the pod the
/// controller makes from its pod template is checked as a pod, and labelled
/// as the component's (so it is its own to exec into and tunnel to); each
/// claim template as a claim, labelled too.
fn check_blueprint(spec: &mut Value, scope: &Scope, claims: &mut Vec<String>) -> Result<(), String> {
    // The controller mounts each claim template as a volume of its name.
    let mut templated = Vec::new();
    for (i, t) in spec["volumeClaimTemplates"].as_array_mut().into_iter().flatten().enumerate() {
        let at = format!("spec.volumeClaimTemplates[{i}]");
        own(&mut t["metadata"], &format!("{at}.metadata"), scope)?;
        check_reserved(&t["metadata"], &format!("{at}.metadata"))?;
        check_claim(&t["spec"], &format!("{at}.spec"))?;
        templated.extend(t["metadata"]["name"].as_str().map(str::to_string));
    }
    let template = &mut spec["podTemplate"];
    check_pod_annotations(&template["metadata"], "spec.podTemplate.metadata")?;
    check_reserved(&template["metadata"], "spec.podTemplate.metadata")?;
    own(&mut template["metadata"], "spec.podTemplate.metadata", scope)?;
    check_pod(&mut template["spec"], "spec.podTemplate.spec", &templated, scope, claims)
}

/// The pod checks, on a pod spec at `at` (`spec`, or a template's) whose
/// containers may also mount the volumes named `templated` (a controller's,
/// from claim templates checked apart).
pub fn check_pod(
    spec: &mut Value,
    at: &str,
    templated: &[String],
    scope: &Scope,
    claims: &mut Vec<String>,
) -> Result<(), String> {
    if !spec.is_object() {
        return Err(format!("{at} is missing"));
    }
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[field] == true {
            return Err(format!("{at}.{field} is not allowed: a session's pod does not share the node's namespaces"));
        }
    }
    if spec["automountServiceAccountToken"] == true && !scope.service_account_token {
        return Err(format!(
            "{at}.automountServiceAccountToken is not allowed: set [backends.kubernetes] service_account_token = true to give pods a token"
        ));
    }
    if !scope.service_account_token {
        if spec["serviceAccountName"].as_str().is_some_and(|s| s != "default") {
            return Err(format!("{at}.serviceAccountName is not allowed without service_account_token = true"));
        }
        spec["automountServiceAccountToken"] = json!(false);
    }
    check_security_context(&spec["securityContext"], &format!("{at}.securityContext"))?;
    if spec["securityContext"]["sysctls"].as_array().is_some_and(|a| !a.is_empty()) {
        return Err(format!("{at}.securityContext.sysctls is not allowed"));
    }
    let volumes: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .chain(templated.iter().cloned())
        .collect();
    for (i, volume) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let sources: Vec<&String> =
            volume.as_object().into_iter().flatten().map(|(k, _)| k).filter(|k| *k != "name").collect();
        match sources.as_slice() {
            [source] if *source == "emptyDir" => {}
            [source] if *source == "persistentVolumeClaim" => {
                let claim = volume["persistentVolumeClaim"]["claimName"].as_str().unwrap_or_default();
                claims.push(claim.to_string());
            }
            [source] => {
                return Err(format!(
                    "{at}.volumes[{i}] is a {source} volume: only the component's own persistentVolumeClaims and emptyDir are allowed"
                ));
            }
            _ => return Err(format!("{at}.volumes[{i}] must have exactly one source")),
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            let at = format!("{at}.{list}[{i}]");
            check_security_context(&c["securityContext"], &format!("{at}.securityContext"))?;
            if c["ports"].as_array().into_iter().flatten().any(|p| !p["hostPort"].is_null()) {
                return Err(format!("{at}.ports[].hostPort is not allowed"));
            }
            if !c["envFrom"].is_null() {
                return Err(format!("{at}.envFrom is not allowed (it reads the cluster's config maps and secrets)"));
            }
            for (j, env) in c["env"].as_array().into_iter().flatten().enumerate() {
                for source in ["secretKeyRef", "configMapKeyRef"] {
                    if !env["valueFrom"][source].is_null() {
                        return Err(format!(
                            "{at}.env[{j}].valueFrom.{source} is not allowed (the cluster's secrets are not a component's)"
                        ));
                    }
                }
            }
            if c["volumeDevices"].as_array().is_some_and(|a| !a.is_empty()) {
                return Err(format!("{at}.volumeDevices is not allowed"));
            }
            for (j, mount) in c["volumeMounts"].as_array().into_iter().flatten().enumerate() {
                let name = mount["name"].as_str().unwrap_or_default();
                if !volumes.iter().any(|v| v == name) {
                    return Err(format!("{at}.volumeMounts[{j}] names no volume of the pod ({name:?})"));
                }
            }
        }
    }
    Ok(())
}

/// The label and annotation prefixes agent-sandbox's controller acts on: its
/// tracking label and `adoptable` make it adopt an unowned claim or pod into
/// a Sandbox (another component's, named to match), `pod-name` points a
/// Sandbox at another pod. No component object may carry them (at `at`).
fn check_reserved(meta: &Value, at: &str) -> Result<(), String> {
    const RESERVED: &[&str] = &["agents.x-k8s.io/", "extensions.agents.x-k8s.io/"];
    for map in ["labels", "annotations"] {
        for key in meta[map].as_object().into_iter().flatten().map(|(k, _)| k) {
            if RESERVED.iter().any(|p| key.starts_with(p)) {
                return Err(format!(
                    "{at}.{map}[{key:?}] is not allowed: agent-sandbox's controller acts on it (it could hand one component's claim or pod to another's Sandbox)"
                ));
            }
        }
    }
    Ok(())
}

/// The annotations through which a pod's metadata (at `at`) still sets its
/// containers' AppArmor and seccomp profiles on clusters that honour them
/// (the fields' older form): none may be `unconfined`.
fn check_pod_annotations(meta: &Value, at: &str) -> Result<(), String> {
    const PROFILES: &[&str] = &[
        "container.apparmor.security.beta.kubernetes.io/",
        "seccomp.security.alpha.kubernetes.io/pod",
        "container.seccomp.security.alpha.kubernetes.io/",
    ];
    for (key, value) in meta["annotations"].as_object().into_iter().flatten() {
        if PROFILES.iter().any(|p| key.starts_with(p))
            && value.as_str().is_some_and(|v| v.trim().eq_ignore_ascii_case("unconfined"))
        {
            return Err(format!(
                "{at}.annotations[{key:?}] = unconfined is not allowed: a session's pod gets no power over the node"
            ));
        }
    }
    Ok(())
}

fn check_security_context(sc: &Value, at: &str) -> Result<(), String> {
    let refuse = |what: &str| Err(format!("{at}.{what} is not allowed: a session's pod gets no power over the node"));
    if sc["privileged"] == true {
        return refuse("privileged");
    }
    if sc["allowPrivilegeEscalation"] == true {
        return refuse("allowPrivilegeEscalation");
    }
    if sc["capabilities"]["add"].as_array().is_some_and(|a| !a.is_empty()) {
        return refuse("capabilities.add");
    }
    if sc["runAsUser"] == 0 {
        return Err(format!("{at}.runAsUser 0 is not allowed: a session's pod never runs as root"));
    }
    if sc["runAsNonRoot"] == false {
        return refuse("runAsNonRoot: false");
    }
    if sc["procMount"] == "Unmasked" {
        return refuse("procMount: Unmasked");
    }
    for profile in ["seccompProfile", "appArmorProfile"] {
        if sc[profile]["type"] == "Unconfined" {
            return refuse(&format!("{profile}: Unconfined"));
        }
    }
    if sc["windowsOptions"]["hostProcess"] == true {
        return refuse("windowsOptions.hostProcess");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope { component: "kubernetes".into(), namespace: "sessions".into(), service_account_token: false }
    }

    fn pod(spec: Value) -> String {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}).to_string()
    }

    fn base() -> Value {
        json!({"containers": [{"name": "agent", "image": "clauderon/agent:latest"}]})
    }

    fn refused(spec: Value) -> String {
        admit(&pod(spec), &scope()).expect_err("refused")
    }

    #[test]
    fn an_admitted_object_is_in_the_namespace_labelled_and_without_a_token() {
        let (k, object, claims) = admit(&pod(base()), &scope()).expect("admitted");
        assert_eq!(k.plural, "pods");
        assert_eq!(object["metadata"]["namespace"], "sessions");
        assert_eq!(object["metadata"]["labels"][OWNER_LABEL], "kubernetes");
        assert_eq!(object["spec"]["automountServiceAccountToken"], false);
        assert!(claims.is_empty());
    }

    #[test]
    fn another_namespace_kind_or_owner_is_refused() {
        let mut other = serde_json::from_str::<Value>(&pod(base())).expect("json");
        other["metadata"]["namespace"] = json!("kube-system");
        assert!(admit(&other.to_string(), &scope()).expect_err("namespace").contains("not the configured namespace"));
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}).to_string();
        assert!(admit(&secret, &scope()).expect_err("kind").contains("not one a component may use"));
        let mut theirs = serde_json::from_str::<Value>(&pod(base())).expect("json");
        theirs["metadata"]["labels"] = json!({OWNER_LABEL: "docker"});
        assert!(admit(&theirs.to_string(), &scope()).expect_err("owner").contains("another component's"));
        assert!(admit("not json", &scope()).is_err());
    }

    #[test]
    fn a_pod_cannot_reach_the_node_or_the_clusters_secrets() {
        let with = |patch: Value| {
            let mut spec = base();
            merge(&mut spec, &patch);
            spec
        };
        for (patch, says) in [
            (json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}), "hostPath volume"),
            (json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}), "secret volume"),
            (json!({"volumes": [{"name": "t", "projected": {"sources": []}}]}), "projected volume"),
            (json!({"hostNetwork": true}), "hostNetwork"),
            (json!({"hostPID": true}), "hostPID"),
            (json!({"hostIPC": true}), "hostIPC"),
            (json!({"automountServiceAccountToken": true}), "automountServiceAccountToken"),
            (json!({"serviceAccountName": "admin"}), "serviceAccountName"),
            (json!({"securityContext": {"runAsUser": 0}}), "runAsUser 0"),
            (json!({"securityContext": {"sysctls": [{"name": "kernel.x", "value": "1"}]}}), "sysctls"),
            (
                json!({"containers": [{"name": "a", "image": "i", "securityContext": {"privileged": true}}]}),
                "privileged",
            ),
            (
                json!({"containers": [{"name": "a", "image": "i", "securityContext": {"allowPrivilegeEscalation": true}}]}),
                "allowPrivilegeEscalation",
            ),
            (
                json!({"containers": [{"name": "a", "image": "i", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}),
                "capabilities.add",
            ),
            (
                json!({"containers": [{"name": "a", "image": "i", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]}),
                "seccompProfile",
            ),
            (
                json!({"containers": [{"name": "a", "image": "i", "ports": [{"containerPort": 80, "hostPort": 80}]}]}),
                "hostPort",
            ),
            (
                json!({"containers": [{"name": "a", "image": "i", "envFrom": [{"secretRef": {"name": "x"}}]}]}),
                "envFrom",
            ),
            (
                json!({"containers": [{"name": "a", "image": "i", "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]}]}),
                "secretKeyRef",
            ),
            (
                json!({"initContainers": [{"name": "a", "image": "i", "securityContext": {"privileged": true}}]}),
                "initContainers[0]",
            ),
            (
                json!({"ephemeralContainers": [{"name": "a", "image": "i", "securityContext": {"procMount": "Unmasked"}}]}),
                "procMount",
            ),
        ] {
            let why = refused(with(patch.clone()));
            assert!(why.contains(says), "{patch} refused saying {says:?}: {why}");
        }
        let allowed = Scope { service_account_token: true, ..scope() };
        assert!(admit(&pod(with(json!({"automountServiceAccountToken": true}))), &allowed).is_ok());
    }

    #[test]
    fn claims_are_collected_and_may_not_bind_or_clone_other_volumes() {
        let spec = json!({"volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "work"}}, {"name": "t", "emptyDir": {}}],
                          "containers": [{"name": "a", "image": "i", "volumeMounts": [{"name": "w", "mountPath": "/w"}]}]});
        let (_, _, claims) = admit(&pod(spec), &scope()).expect("admitted");
        assert_eq!(claims, [(CLAIM, "work".to_string())]);
        for field in ["volumeName", "dataSource", "dataSourceRef", "selector"] {
            let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
                               "spec": {field: {"name": "theirs"}}});
            assert!(admit(&claim.to_string(), &scope()).expect_err(field).contains(field));
        }
    }

    #[test]
    fn a_network_policy_selects_only_the_components_pods() {
        let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
                            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}});
        let (_, object, _) = admit(&policy.to_string(), &scope()).expect("admitted");
        assert_eq!(object["spec"]["podSelector"]["matchLabels"][OWNER_LABEL], "kubernetes");
        assert_eq!(selector("", &scope()), format!("{OWNER_LABEL}=kubernetes"));
        assert_eq!(selector("a=b", &scope()), format!("{OWNER_LABEL}=kubernetes,a=b"));
    }

    #[test]
    fn no_object_carries_what_agent_sandboxs_controller_acts_on() {
        let claim = |meta: Value| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": {}}).to_string()
        };
        for (meta, says) in [
            (
                json!({"name": "data-x", "labels": {"agents.x-k8s.io/sandbox-name-hash": "0a1b2c3d"}}),
                "sandbox-name-hash",
            ),
            (json!({"name": "data-x", "labels": {"agents.x-k8s.io/adoptable": "true"}}), "adoptable"),
            (json!({"name": "data-x", "annotations": {"extensions.agents.x-k8s.io/x": "y"}}), "extensions"),
        ] {
            let why = admit(&claim(meta), &scope()).expect_err(says);
            assert!(why.contains(says) && why.contains("agent-sandbox"), "{why}");
        }
        let sandbox = |patch: Value| {
            let mut spec = json!({"podTemplate": {"spec": base()}, "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]});
            merge(&mut spec, &patch);
            json!({"apiVersion": SANDBOX.api_version, "kind": "Sandbox", "metadata": {"name": "s"}, "spec": spec})
                .to_string()
        };
        assert!(admit(&sandbox(json!({})), &scope()).is_ok());
        let named = admit(
            &sandbox(json!({"podTemplate": {"metadata": {"annotations": {"agents.x-k8s.io/pod-name": "theirs"}}}})),
            &scope(),
        );
        assert!(named.expect_err("pod-name").contains("spec.podTemplate.metadata.annotations"));
        let mut tracked = serde_json::from_str::<Value>(&sandbox(json!({}))).expect("json");
        tracked["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"] = json!({"agents.x-k8s.io/adoptable": "true"});
        assert!(admit(&tracked.to_string(), &scope()).expect_err("template").contains("volumeClaimTemplates[0]"));
    }

    #[test]
    fn a_warm_pool_never_opens_its_pods_to_the_internet_and_names_only_the_components_own() {
        let object = |k: KindRef, spec: Value| {
            json!({"apiVersion": k.api_version, "kind": k.kind, "metadata": {"name": "w"}, "spec": spec}).to_string()
        };
        let template = |patch: Value| {
            let mut spec = json!({"networkPolicyManagement": "Unmanaged", "podTemplate": {"spec": base()},
                                  "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]});
            merge(&mut spec, &patch);
            object(SANDBOX_TEMPLATE, spec)
        };
        let (_, admitted, references) = admit(&template(json!({})), &scope()).expect("a contained template");
        assert_eq!(admitted["spec"]["podTemplate"]["metadata"]["labels"][OWNER_LABEL], "kubernetes");
        assert_eq!(admitted["spec"]["podTemplate"]["spec"]["automountServiceAccountToken"], false);
        assert!(references.is_empty());
        for (patch, says) in [
            (json!({"networkPolicyManagement": "Managed"}), "networkPolicyManagement"),
            (json!({"networkPolicy": {"egress": [{}]}}), "networkPolicyManagement"),
            (json!({"envVarsInjectionPolicy": "Allowed"}), "spec.envVarsInjectionPolicy"),
            (json!({"volumeClaimTemplatesPolicy": "Overrides"}), "spec.volumeClaimTemplatesPolicy"),
            (json!({"service": true}), "spec.service"),
            (json!({"podTemplate": {"spec": {"hostNetwork": true}}}), "spec.podTemplate.spec.hostNetwork"),
            (
                json!({"podTemplate": {"metadata": {"labels": {"agents.x-k8s.io/warm-pool-sandbox": "x"}}}}),
                "agents.x-k8s.io/warm-pool-sandbox",
            ),
        ] {
            let why = admit(&template(patch.clone()), &scope()).expect_err(says);
            assert!(why.contains(says), "{patch}: {why}");
        }
        // Managed by default: a template that does not say is refused.
        let unsaid = object(SANDBOX_TEMPLATE, json!({"podTemplate": {"spec": base()}}));
        assert!(admit(&unsaid, &scope()).expect_err("default").contains("whole internet"));

        let pool = |spec: Value| admit(&object(SANDBOX_WARM_POOL, spec), &scope());
        let (_, _, references) = pool(json!({"replicas": 3, "sandboxTemplateRef": {"name": "t"}})).expect("a pool");
        assert_eq!(references, [(SANDBOX_TEMPLATE, "t".to_string())]);
        assert!(
            pool(json!({"replicas": 21, "sandboxTemplateRef": {"name": "t"}})).expect_err("21").contains("0 to 20")
        );
        assert!(pool(json!({"replicas": 1})).expect_err("no template").contains("sandboxTemplateRef"));

        let claim = |spec: Value| admit(&object(SANDBOX_CLAIM, spec), &scope());
        let (_, _, references) = claim(json!({"warmPoolRef": {"name": "p"}})).expect("a claim");
        assert_eq!(references, [(SANDBOX_WARM_POOL, "p".to_string())]);
        for (spec, says) in [
            (json!({"warmPoolRef": {"name": "p"}, "env": [{"name": "T", "value": "x"}]}), "spec.env"),
            (json!({"warmPoolRef": {"name": "p"}, "volumeClaimTemplates": [{"spec": {}}]}), "volumeClaimTemplates"),
            (
                json!({"warmPoolRef": {"name": "p"}, "additionalPodMetadata": {"annotations": {"agents.x-k8s.io/pod-name": "theirs"}}}),
                "spec.additionalPodMetadata.annotations",
            ),
            (
                json!({"warmPoolRef": {"name": "p"}, "additionalPodMetadata": {"labels": {OWNER_LABEL: "docker"}}}),
                "another component's",
            ),
            (
                json!({"warmPoolRef": {"name": "p"}, "additionalPodMetadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/agent": "unconfined"}}}),
                "unconfined",
            ),
            (json!({}), "warmPoolRef"),
        ] {
            let why = claim(spec.clone()).expect_err(says);
            assert!(why.contains(says), "{spec}: {why}");
        }
    }

    #[test]
    fn a_sandbox_is_claimed_only_by_the_claim_controlling_it() {
        let with = |owners: Value| json!({"metadata": {"ownerReferences": owners}});
        let claim = json!({"apiVersion": SANDBOX_CLAIM.api_version, "kind": "SandboxClaim", "name": "c", "uid": "u1", "controller": true});
        assert_eq!(claimed_by(&with(json!([claim]))), Some(("c".into(), "u1".into())));
        let mut not_controller = claim.clone();
        not_controller["controller"] = json!(false);
        assert_eq!(claimed_by(&with(json!([not_controller]))), None);
        let pool = json!({"apiVersion": SANDBOX_WARM_POOL.api_version, "kind": "SandboxWarmPool", "name": "p", "uid": "u2", "controller": true});
        assert_eq!(claimed_by(&with(json!([pool]))), None, "a pool's Sandbox is nobody's");
        let mut elsewhere = claim.clone();
        elsewhere["apiVersion"] = json!("example.com/v1");
        assert_eq!(claimed_by(&with(json!([elsewhere]))), None, "another group's SandboxClaim");
        assert_eq!(claimed_by(&json!({"metadata": {}})), None);
    }

    /// A JSON merge (objects merged, everything else replaced), for building specs.
    pub(super) fn merge(target: &mut Value, patch: &Value) {
        match (target.as_object_mut(), patch.as_object()) {
            (Some(t), Some(p)) => {
                for (k, v) in p {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            _ => *target = patch.clone(),
        }
    }

    #[test]
    fn a_pod_is_settled_when_it_runs_or_cannot() {
        let pod = |status: Value| json!({"status": status});
        assert!(!pod_settled(&pod(json!({"phase": "Pending"}))), "still scheduling");
        let waiting = |reason: &str| {
            pod(json!({"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": reason}}}]}))
        };
        assert!(!pod_settled(&waiting("ContainerCreating")), "still starting");
        assert!(pod_settled(&waiting("ImagePullBackOff")));
        assert!(pod_settled(&waiting("CrashLoopBackOff")));
        assert!(pod_settled(&pod(json!({"phase": "Running"}))));
        assert!(pod_settled(&pod(json!({"phase": "Failed"}))));
        let ended = json!({"phase": "Pending", "containerStatuses": [{"state": {"terminated": {"exitCode": 1}}}]});
        assert!(pod_settled(&pod(ended)), "a container that ended");
    }
}
