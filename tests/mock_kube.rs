//! `clauderon-mock-kube`: a local Kubernetes API server standing in for a
//! cluster, which cannot run on the test machines. It speaks the API's wire
//! format — what the real `kubectl` and kube-rs need — over plain HTTP on
//! 127.0.0.1, and keeps its objects in memory.
//!
//! ```text
//! clauderon-mock-kube --dir DIR
//! ```
//! writes `DIR/kubeconfig` (context `mock`, namespace `default`), then
//! `DIR/addr` (`127.0.0.1:PORT`) once listening.
//!
//! What it serves (and says it serves, in discovery — nothing more):
//! - `/version`; discovery: `/api`, `/apis`, `/api/v1`, `/apis/GROUP` and
//!   `/apis/GROUP/VERSION` (the plain forms; a client asking for aggregated
//!   discovery gets them as the real server's fallback);
//! - `/openapi/v3` and one document per group-version, holding only what
//!   `kubectl apply`'s validation checks (each kind's PATCH operation and its
//!   `fieldValidation` parameter); `/openapi/v2` is 404, as `kubectl` allows;
//! - per kind (pods, persistentvolumeclaims, events, namespaces,
//!   networkpolicies): list (with `labelSelector` — `k=v`, `k==v`, `k!=v`,
//!   `k`, `!k`, `k in (a,b)`, `k notin (a,b)` — and `fieldSelector` on any
//!   dotted field such as `metadata.name` or `involvedObject.uid`), create
//!   (`generateName` too), get, replace (with `resourceVersion`
//!   preconditions), patch (`application/merge-patch+json`,
//!   `application/strategic-merge-patch+json` — merged as a merge patch, so
//!   a list is replaced whole — and server-side apply's
//!   `application/apply-patch+yaml` when its body is JSON) and delete;
//! - errors as `Status` objects: 404 NotFound, 409 AlreadyExists and
//!   Conflict, 422 Invalid, 405 MethodNotAllowed, 415 UnsupportedMediaType
//!   (bodies are JSON only: kubectl's generators, such as `kubectl create
//!   namespace`, send protobuf and get this answer; `kubectl apply` sends JSON).
//!
//! Every object gets a `uid`, a `resourceVersion` from one counter and a
//! `creationTimestamp`; a new pod's `status.phase` is `Pending` (nothing
//! runs it yet).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// One kind the server serves.
struct Kind {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
}

impl Kind {
    fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
}

const KINDS: &[Kind] = &[
    Kind { group: "", version: "v1", plural: "pods", singular: "pod", kind: "Pod", namespaced: true, short: &["po"] },
    Kind {
        group: "",
        version: "v1",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        kind: "PersistentVolumeClaim",
        namespaced: true,
        short: &["pvc"],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
    },
    Kind {
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        singular: "networkpolicy",
        kind: "NetworkPolicy",
        namespaced: true,
        short: &["netpol"],
    },
];

/// `KINDS`' index of namespaces (a namespaced object needs its namespace).
const NAMESPACES: usize = 3;

/// The verbs every kind supports here (no `watch` yet).
const VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update"];

/// The group-versions served, in discovery order (`""` is the core group).
fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

/// The objects, by (kind index, namespace — empty for cluster-scoped —, name).
#[derive(Default)]
struct State {
    last_rv: u64,
    objects: BTreeMap<(usize, String, String), Value>,
}

type Shared = Arc<Mutex<State>>;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            other => fail(&format!("unknown argument {other}; usage: clauderon-mock-kube --dir DIR")),
        }
    }
    let Some(dir) = dir else { fail("usage: clauderon-mock-kube --dir DIR") };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(&format!("address: {e}")));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: mock\n    namespace: default\ncurrent-context: mock\nusers:\n- name: mock\n  user: {{}}\n"
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap_or_else(|e| fail(&format!("kubeconfig: {e}")));
    let state: Shared = Arc::default();
    // The namespace every context starts in exists, as in a new cluster.
    create(&state, NAMESPACES, "", json!({"metadata": {"name": "default"}}))
        .unwrap_or_else(|_| fail("default namespace"));
    std::fs::write(dir.join("addr"), addr.to_string()).unwrap_or_else(|e| fail(&format!("addr: {e}")));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state, addr).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("clauderon-mock-kube: {msg}");
    std::process::exit(2)
}

async fn handle(req: Request<Incoming>, state: &Shared, addr: std::net::SocketAddr) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return status(StatusCode::BAD_REQUEST, "BadRequest", &format!("reading the body: {e}")).into_response();
        }
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (segments.as_slice(), &parts.method) {
        (["version"], &Method::GET) => ok(json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-clauderon-mock",
            "platform": "linux/amd64", "goVersion": "none", "compiler": "none"
        })),
        (["api"], &Method::GET) => ok(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}]
        })),
        (["apis"], &Method::GET) => {
            let groups: Vec<Value> =
                group_versions().iter().filter(|(g, _)| !g.is_empty()).map(|(g, _)| api_group(g)).collect();
            ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        (["apis", group], &Method::GET) if group_versions().iter().any(|(g, _)| g == group) => ok(api_group(group)),
        (["api", "v1"], &Method::GET) => ok(resource_list("", "v1")),
        (["apis", group, version], &Method::GET) if group_versions().contains(&(*group, *version)) => {
            ok(resource_list(group, version))
        }
        (["openapi", "v3"], &Method::GET) => {
            let paths: serde_json::Map<String, Value> = group_versions()
                .iter()
                .map(|(g, v)| {
                    let gv = gv_path(g, v);
                    (gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash=mock")}))
                })
                .collect();
            ok(json!({"paths": paths}))
        }
        (["openapi", "v3", rest @ ..], &Method::GET) => {
            match group_versions().iter().find(|(g, v)| gv_path(g, v) == rest.join("/")) {
                Some((g, v)) => ok(openapi_v3(g, v)),
                None => status(StatusCode::NOT_FOUND, "NotFound", "no such OpenAPI document").into_response(),
            }
        }
        _ => match Target::parse(&segments) {
            Some(target) => serve(state, target, &parts.method, &query, &content_type, &body),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            )
            .into_response(),
        },
    }
}

/// `api/v1` or `apis/GROUP/VERSION`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0]})
}

fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            json!({
                "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                "kind": k.kind, "verbs": VERBS, "shortNames": k.short
            })
        })
        .collect();
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// The part of a group-version's OpenAPI v3 document `kubectl apply` reads:
/// each kind's PATCH operation, which takes `fieldValidation`.
fn openapi_v3(group: &str, version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for k in KINDS.iter().filter(|k| k.group == group && k.version == version) {
        let item = if k.namespaced {
            format!("/{}/namespaces/{{namespace}}/{}/{{name}}", gv_path(group, version), k.plural)
        } else {
            format!("/{}/{}/{{name}}", gv_path(group, version), k.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": k.kind});
        paths.insert(
            item,
            json!({"patch": {
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}}
            }}),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "clauderon-mock-kube", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}}
    })
}

/// What a resource path names.
struct Target {
    kind: usize,
    /// Empty for a cluster-scoped kind, or a list across namespaces.
    namespace: String,
    name: Option<String>,
}

impl Target {
    fn parse(segments: &[&str]) -> Option<Self> {
        let (group, version, rest) = match segments {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (ns.to_string(), rest),
            _ => (String::new(), rest),
        };
        let (plural, name) = match rest {
            [plural] => (*plural, None),
            [plural, name] => (*plural, Some(name.to_string())),
            _ => return None,
        };
        let kind = KINDS.iter().position(|k| k.group == group && k.version == version && k.plural == plural)?;
        if !KINDS[kind].namespaced && !namespace.is_empty() {
            return None;
        }
        if KINDS[kind].namespaced && namespace.is_empty() && name.is_some() {
            return None;
        }
        Some(Self { kind, namespace, name })
    }
}

fn serve(
    state: &Shared,
    target: Target,
    method: &Method,
    query: &BTreeMap<String, String>,
    content_type: &str,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    let k = &KINDS[target.kind];
    let media = content_type.split(';').next().unwrap_or("").trim();
    let parsed = || -> Result<Value, Failure> {
        // JSON only (kubectl's typed clients may send protobuf).
        if !(media == "application/json" || media.ends_with("+json") || media == "application/apply-patch+yaml") {
            return Err(status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                &format!("the body's media type {media:?} is not supported by this mock: send JSON"),
            ));
        }
        serde_json::from_slice::<Value>(body)
            .ok()
            .filter(|v| v.is_object() && v.get("metadata").is_none_or(|m| m.is_object() || m.is_null()))
            .ok_or_else(|| {
                status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the body is not a JSON object with an object as its metadata",
                )
            })
    };
    let result = match (method, &target.name) {
        (&Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            Err(status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "watch is not served by this mock"))
        }
        (&Method::GET, None) => list(state, &target, query),
        (&Method::POST, None) => parsed().and_then(|obj| create(state, target.kind, &target.namespace, obj)),
        (&Method::GET, Some(name)) => get(state, &target, name),
        (&Method::PUT, Some(name)) => parsed().and_then(|obj| replace(state, &target, name, obj)),
        (&Method::PATCH, Some(name)) => match media {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                parsed().and_then(|patch| patch_existing(state, &target, name, &patch))
            }
            "application/apply-patch+yaml" => parsed().and_then(|patch| apply(state, &target, name, patch)),
            other => Err(status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                &format!("the patch type {other:?} is not supported by this mock"),
            )),
        },
        (&Method::DELETE, Some(name)) => delete(state, &target, name),
        _ => Err(status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} is not supported on {}", k.plural),
        )),
    };
    result.unwrap_or_else(Failure::into_response)
}

type Answer = Result<Response<Full<Bytes>>, Failure>;

fn list(state: &Shared, target: &Target, query: &BTreeMap<String, String>) -> Answer {
    let k = &KINDS[target.kind];
    let labels = query.get("labelSelector").map(|s| LabelSelector::parse(s)).transpose().map_err(bad_request)?;
    let fields = query.get("fieldSelector").map(|s| FieldSelector::parse(s)).transpose().map_err(bad_request)?;
    let state = state.lock().map_err(|_| internal())?;
    let items: Vec<&Value> = state
        .objects
        .iter()
        .filter(|((kind, ns, _), _)| *kind == target.kind && (target.namespace.is_empty() || *ns == target.namespace))
        .map(|(_, obj)| obj)
        .filter(|obj| labels.as_ref().is_none_or(|s| s.matches(obj)) && fields.as_ref().is_none_or(|s| s.matches(obj)))
        .collect();
    Ok(ok(json!({
        "kind": format!("{}List", k.kind),
        "apiVersion": k.api_version(),
        "metadata": {"resourceVersion": state.last_rv.to_string()},
        "items": items,
    })))
}

fn get(state: &Shared, target: &Target, name: &str) -> Answer {
    let state = state.lock().map_err(|_| internal())?;
    match state.objects.get(&(target.kind, target.namespace.clone(), name.to_string())) {
        Some(obj) => Ok(ok(obj.clone())),
        None => Err(not_found(target.kind, name)),
    }
}

fn create(state: &Shared, kind: usize, namespace: &str, mut obj: Value) -> Answer {
    let k = &KINDS[kind];
    let mut meta = obj.get("metadata").filter(|m| m.is_object()).cloned().unwrap_or_else(|| json!({}));
    let name = match (meta.get("name").and_then(Value::as_str), meta.get("generateName").and_then(Value::as_str)) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(prefix)) if !prefix.is_empty() => {
            format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5])
        }
        _ => return Err(invalid(kind, "", "metadata.name", "name or generateName is required")),
    };
    if !valid_name(&name) {
        return Err(invalid(
            kind,
            &name,
            "metadata.name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        ));
    }
    let namespace = if k.namespaced {
        let asked = meta.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
        if !namespace.is_empty() && asked != namespace {
            return Err(status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        asked.to_string()
    } else {
        String::new()
    };
    let mut state = state.lock().map_err(|_| internal())?;
    if k.namespaced && !state.objects.contains_key(&(NAMESPACES, String::new(), namespace.clone())) {
        return Err(status(StatusCode::NOT_FOUND, "NotFound", &format!("namespaces \"{namespace}\" not found")));
    }
    let key = (kind, namespace.clone(), name.clone());
    if state.objects.contains_key(&key) {
        return Err(status_for(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", k.plural),
            kind,
            &name,
        ));
    }
    state.last_rv += 1;
    meta["name"] = json!(name);
    if k.namespaced {
        meta["namespace"] = json!(namespace);
    }
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["resourceVersion"] = json!(state.last_rv.to_string());
    meta["creationTimestamp"] = json!(now_rfc3339());
    obj["metadata"] = meta;
    obj["apiVersion"] = json!(k.api_version());
    obj["kind"] = json!(k.kind);
    if k.kind == "Pod" {
        obj["status"] = json!({"phase": "Pending"});
    }
    if k.kind == "Namespace" {
        obj["status"] = json!({"phase": "Active"});
    }
    state.objects.insert(key, obj.clone());
    Ok(answer(StatusCode::CREATED, obj))
}

/// Store `obj` over the existing object, keeping what the server owns.
fn store_over(state: &mut State, key: (usize, String, String), existing: &Value, mut obj: Value) -> Value {
    state.last_rv += 1;
    let k = &KINDS[key.0];
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    for owned in ["uid", "creationTimestamp", "name", "namespace"] {
        if let Some(v) = existing["metadata"].get(owned) {
            obj["metadata"][owned] = v.clone();
        }
    }
    obj["metadata"]["resourceVersion"] = json!(state.last_rv.to_string());
    obj["apiVersion"] = json!(k.api_version());
    obj["kind"] = json!(k.kind);
    if obj.get("status").is_none()
        && let Some(s) = existing.get("status")
    {
        obj["status"] = s.clone();
    }
    state.objects.insert(key, obj.clone());
    obj
}

fn replace(state: &Shared, target: &Target, name: &str, obj: Value) -> Answer {
    let key = (target.kind, target.namespace.clone(), name.to_string());
    let mut state = state.lock().map_err(|_| internal())?;
    let existing = state.objects.get(&key).cloned().ok_or_else(|| not_found(target.kind, name))?;
    if let Some(rv) = obj["metadata"].get("resourceVersion").and_then(Value::as_str)
        && Some(rv) != existing["metadata"]["resourceVersion"].as_str()
    {
        return Err(status_for(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                KINDS[target.kind].plural
            ),
            target.kind,
            name,
        ));
    }
    Ok(ok(store_over(&mut state, key, &existing, obj)))
}

fn patch_existing(state: &Shared, target: &Target, name: &str, patch: &Value) -> Answer {
    let key = (target.kind, target.namespace.clone(), name.to_string());
    let mut state = state.lock().map_err(|_| internal())?;
    let existing = state.objects.get(&key).cloned().ok_or_else(|| not_found(target.kind, name))?;
    let mut merged = existing.clone();
    merge_patch(&mut merged, patch);
    Ok(ok(store_over(&mut state, key, &existing, merged)))
}

/// Server-side apply, simplified: create the object, or merge it into the
/// existing one (no field ownership is tracked).
fn apply(state: &Shared, target: &Target, name: &str, mut obj: Value) -> Answer {
    if obj["metadata"].get("name").and_then(Value::as_str).is_some_and(|n| n != name) {
        return Err(bad_request("the name of the object does not match the name on the URL".into()));
    }
    let exists = state.lock().map_err(|_| internal())?.objects.contains_key(&(
        target.kind,
        target.namespace.clone(),
        name.to_string(),
    ));
    if exists {
        patch_existing(state, target, name, &obj)
    } else {
        obj["metadata"]["name"] = json!(name);
        create(state, target.kind, &target.namespace, obj)
    }
}

fn delete(state: &Shared, target: &Target, name: &str) -> Answer {
    let key = (target.kind, target.namespace.clone(), name.to_string());
    let mut state = state.lock().map_err(|_| internal())?;
    let removed = state.objects.remove(&key).ok_or_else(|| not_found(target.kind, name))?;
    if KINDS[target.kind].kind == "Namespace" {
        state.objects.retain(|(_, ns, _), _| *ns != name);
    }
    Ok(ok(removed))
}

/// RFC 7386 JSON merge patch; a strategic merge patch's directives
/// (`$setElementOrder/…`, `$patch`, …) are left out.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in fields {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            if let Some(map) = target.as_object_mut() {
                map.remove(key);
            }
        } else {
            merge_patch(&mut target[key], value);
        }
    }
}

/// A label selector: requirements that must all hold.
struct LabelSelector(Vec<(String, Op)>);

enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest.trim().strip_prefix('(').and_then(|r| r.strip_suffix(')'));
                let inner = inner.ok_or_else(|| format!("unable to parse requirement: {part:?}: expected (values)"))?;
                Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
            };
            let requirement = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), Op::DoesNotExist)
            } else if let Some((key, value)) = part.split_once("!=") {
                (key.trim().to_string(), Op::NotIn(vec![value.trim().to_string()]))
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (key.trim().to_string(), Op::In(vec![value.trim().to_string()]))
            } else if let Some((key, rest)) = part.split_once(" notin ") {
                (key.trim().to_string(), Op::NotIn(set(rest)?))
            } else if let Some((key, rest)) = part.split_once(" in ") {
                (key.trim().to_string(), Op::In(set(rest)?))
            } else if part.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                (part.to_string(), Op::Exists)
            } else {
                return Err(format!("unable to parse requirement: {part:?}"));
            };
            out.push(requirement);
        }
        Ok(Self(out))
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.0.iter().all(|(key, op)| {
            let value = labels.get(key).and_then(Value::as_str);
            match op {
                Op::In(values) => value.is_some_and(|v| values.iter().any(|w| w == v)),
                Op::NotIn(values) => value.is_none_or(|v| values.iter().all(|w| w != v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// Split on commas outside parentheses (`a=b,c in (d,e)`).
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// A field selector: `path=value`, `path==value` or `path!=value`, all of them.
struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = part.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (p, true, v)
            } else {
                return Err(format!("invalid field selector: {part:?}"));
            };
            out.push((path.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(out))
    }

    fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let found = path.split('.').try_fold(obj, |v, key| v.get(key));
            let text = match found {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (text == *value) == *equal
        })
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Now, as the API writes times (`2026-12-06T04:20:00Z`).
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn ok(value: Value) -> Response<Full<Bytes>> {
    answer(StatusCode::OK, value)
}

fn answer(code: StatusCode, value: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    resp
}

/// An error answer: its code and its `Status` object.
struct Failure(StatusCode, Value);

impl Failure {
    fn into_response(self) -> Response<Full<Bytes>> {
        answer(self.0, self.1)
    }
}

/// A `Status` object, as the API server sends for every error.
fn status(code: StatusCode, reason: &str, message: &str) -> Failure {
    Failure(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn status_for(code: StatusCode, reason: &str, message: &str, kind: usize, name: &str) -> Failure {
    Failure(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason,
               "details": {"name": name, "kind": KINDS[kind].plural}, "code": code.as_u16()}),
    )
}

fn not_found(kind: usize, name: &str) -> Failure {
    status_for(StatusCode::NOT_FOUND, "NotFound", &format!("{} \"{name}\" not found", KINDS[kind].plural), kind, name)
}

fn invalid(kind: usize, name: &str, field: &str, message: &str) -> Failure {
    let k = &KINDS[kind];
    let message = format!("Invalid value: {name:?}: {message}");
    Failure(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{} \"{name}\" is invalid: {field}: {message}", k.kind),
               "reason": "Invalid",
               "details": {"name": name, "kind": k.kind, "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]},
               "code": 422}),
    )
}

fn bad_request(message: String) -> Failure {
    status(StatusCode::BAD_REQUEST, "BadRequest", &message)
}

fn internal() -> Failure {
    status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "the mock's state lock was poisoned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespaces_index_names_namespaces() {
        assert_eq!(KINDS[NAMESPACES].kind, "Namespace");
    }

    #[test]
    fn label_selectors_follow_the_apis_syntax() {
        let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let matches = |s: &str| LabelSelector::parse(s).expect(s).matches(&obj);
        for yes in [
            "app=web",
            "app==web",
            "app",
            "!missing",
            "app in (db, web)",
            "tier notin (back)",
            "app=web,tier!=back",
            "",
        ] {
            assert!(matches(yes), "{yes:?} should match");
        }
        for no in ["app=db", "app!=web", "missing", "!app", "app in (db)", "app notin (web,db)", "app=web,tier=back"] {
            assert!(!matches(no), "{no:?} should not match");
        }
        assert!(LabelSelector::parse("app in web").is_err(), "a set needs parentheses");
        assert!(LabelSelector::parse("a b c").is_err());
    }

    #[test]
    fn field_selectors_reach_any_dotted_field() {
        let obj = json!({"metadata": {"name": "p1"}, "involvedObject": {"uid": "u1", "kind": "Pod"}});
        let matches = |s: &str| FieldSelector::parse(s).expect(s).matches(&obj);
        assert!(matches("metadata.name=p1,involvedObject.uid=u1,involvedObject.kind==Pod"));
        assert!(matches("metadata.namespace!=x"));
        assert!(!matches("metadata.name=p2"));
        assert!(!matches("involvedObject.uid!=u1"));
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn a_merge_patch_merges_objects_replaces_lists_and_removes_nulls() {
        let mut obj = json!({"a": {"b": 1, "c": 2}, "l": [1, 2], "gone": true});
        merge_patch(
            &mut obj,
            &json!({"a": {"c": 3, "d": 4}, "l": [9], "gone": null, "$setElementOrder/l": [{"n": 9}]}),
        );
        assert_eq!(obj, json!({"a": {"b": 1, "c": 3, "d": 4}, "l": [9]}));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }
}
