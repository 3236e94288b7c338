//! `clauderon-mock-kube`: a local Kubernetes API server standing in for a
//! cluster, which cannot run on the test machines. It speaks the API's wire
//! format — what the real `kubectl` and kube-rs need — over plain HTTP on
//! 127.0.0.1, keeps its objects in memory, and really runs its pods with the
//! local Docker engine.
//!
//! ```text
//! clauderon-mock-kube --dir DIR [--history N] [--agent-sandbox | --agent-sandbox-core] [--pods-reach-host]
//! ```
//! writes `DIR/kubeconfig` (context `mock`, namespace `default`), then
//! `DIR/addr` (`127.0.0.1:PORT`) once listening. `--history` is how many
//! changes a watch can resume from (default 1000). `--agent-sandbox`
//! installs agent-sandbox: its `Sandbox` kind and its extensions (warm
//! pools, claims, templates) are served and their controllers run (without
//! it, the cluster has no such kinds, as most do not); `--agent-sandbox-core`
//! installs the `Sandbox` kind alone.
//! `--pods-reach-host` puts pods on an internal Docker network of the
//! server's own, from which they reach this machine (at the address it
//! writes to `DIR/host-ip`, the network's gateway) and nothing else; without
//! it a pod has a loopback alone (a cluster that cannot reach the user's
//! machine). On SIGTERM or SIGINT it
//! removes every container and volume it made, then exits.
//!
//! Where things are:
//! - [`kinds`]: the kinds served (pods, persistentvolumeclaims, events,
//!   namespaces, networkpolicies, and with `--agent-sandbox` agent-sandbox's
//!   sandboxes), discovery and OpenAPI documents;
//! - [`store`]: the objects, their versions and history — create (with
//!   `generateName`), get, list, replace (with `resourceVersion`
//!   preconditions), patch (merge, strategic taken as merge, server-side
//!   apply with a JSON body), delete (a namespace takes its objects), the
//!   `status` subresource apart from the object;
//! - [`selector`]: `labelSelector` (`k=v`, `k!=v`, `k`, `!k`, `k in (…)`,
//!   `k notin (…)`) and `fieldSelector` on any dotted field;
//! - [`watch`]: `?watch=1`, resumable, with bookmarks and 410 Expired;
//! - [`kubelet`]: pods run by Docker, their status and events, claims bound
//!   to Docker volumes, `pods/NAME/log`;
//! - [`sandboxes`]: agent-sandbox's controller (a Sandbox's pod and claims,
//!   pause through `replicas`, `shutdownTime`, status conditions);
//! - [`streams`]: `exec`, `attach` (WebSocket `v5`/`v4.channel.k8s.io`) and
//!   `portforward` (WebSocket `v4.channel.k8s.io`, kube-rs's protocol) into pods;
//! - [`errors`]: `Status` objects (404 NotFound, 409 AlreadyExists and
//!   Conflict, 422 Invalid, 405 MethodNotAllowed, 415 UnsupportedMediaType
//!   — bodies are JSON only: kubectl's generators such as `kubectl create
//!   namespace` send protobuf and get this answer; `kubectl apply` sends JSON).

mod errors;
mod extensions;
mod kinds;
mod kubelet;
mod sandboxes;
mod selector;
mod store;
mod streams;
mod watch;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use errors::Failure;
use kinds::{KINDS, NAMESPACES, PODS};
use kubelet::Kubelet;
use selector::Filter;
use store::{Part, Store};

type Body = UnsyncBoxBody<Bytes, Infallible>;

struct Server {
    store: Arc<Store>,
    kubelet: Arc<Kubelet>,
    addr: SocketAddr,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut history, mut agent_sandbox, mut core_only, mut reach_host) = (None, 1000, false, false, false);
    let usage = "usage: clauderon-mock-kube --dir DIR [--history N] [--agent-sandbox | --agent-sandbox-core] [--pods-reach-host]";
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--history" => history = args.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| fail(usage)),
            "--agent-sandbox" => agent_sandbox = true,
            "--agent-sandbox-core" => (agent_sandbox, core_only) = (true, true),
            "--pods-reach-host" => reach_host = true,
            other => fail(&format!("unknown argument {other}; {usage}")),
        }
    }
    let Some(dir) = dir else { fail(usage) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(&format!("address: {e}")));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: mock\n    namespace: default\ncurrent-context: mock\nusers:\n- name: mock\n  user: {{}}\n"
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap_or_else(|e| fail(&format!("kubeconfig: {e}")));
    let store = Arc::new(Store::new(history));
    let instance = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let network = if reach_host {
        let (network, host_ip) =
            kubelet::internal_network(&instance).await.unwrap_or_else(|e| fail(&format!("the pods' network: {e}")));
        std::fs::write(dir.join("host-ip"), host_ip).unwrap_or_else(|e| fail(&format!("host-ip: {e}")));
        network
    } else {
        "none".to_string()
    };
    let kubelet = Kubelet::start(store.clone(), instance, network);
    if agent_sandbox {
        kinds::install_agent_sandbox(!core_only);
        sandboxes::Controller::start(store.clone());
        if !core_only {
            extensions::Controller::start(store.clone());
        }
    }
    // The namespace every context starts in exists, as in a new cluster.
    store
        .create(NAMESPACES, "", json!({"metadata": {"name": "default"}}))
        .unwrap_or_else(|_| fail("default namespace"));
    let server = Arc::new(Server { store, kubelet: kubelet.clone(), addr });
    std::fs::write(dir.join("addr"), addr.to_string()).unwrap_or_else(|e| fail(&format!("addr: {e}")));
    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            // As Go's net package does for the API server's connections.
            let _ = stream.set_nodelay(true);
            let server = server.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(&format!("signal: {e}")));
    tokio::select! {
        () = serve => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    kubelet.clean_up().await;
}

fn fail(msg: &str) -> ! {
    eprintln!("clauderon-mock-kube: {msg}");
    std::process::exit(2)
}

impl Server {
    async fn handle(&self, mut req: Request<Incoming>) -> Response<Body> {
        if let Some(answer) = self.stream(&mut req) {
            return answer.unwrap_or_else(error);
        }
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().trim_end_matches('/').to_string();
        let query: BTreeMap<String, String> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim().to_string();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return error(Failure::bad_request(format!("reading the body: {e}"))),
        };
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.method == Method::GET
            && let Some(document) = self.discovery(&segments)
        {
            return document.map_or_else(error, ok);
        }
        match Target::parse(&segments) {
            Some(target) => self.serve(target, &parts.method, &query, &media, &body).unwrap_or_else(error),
            None => error(Failure::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("the server could not find the requested resource ({path})"),
                None,
            )),
        }
    }

    /// An exec, attach or port-forward, if `req` asks for one.
    fn stream(&self, req: &mut Request<Incoming>) -> Option<Result<Response<Body>, Failure>> {
        let segments: Vec<&str> = req.uri().path().split('/').filter(|s| !s.is_empty()).collect();
        let target = Target::parse(&segments)?;
        let (Some(name), Some(sub)) = (&target.name, &target.sub) else { return None };
        if target.kind != PODS || !matches!(sub.as_str(), "exec" | "attach" | "portforward") {
            return None;
        }
        // `command` and `ports` repeat: the query as pairs.
        let query: Vec<(String, String)> =
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
        Some(self.store.get(PODS, &target.namespace, name).and_then(|pod| streams::upgrade(req, sub, &query, &pod)))
    }

    /// The discovery and OpenAPI documents, if `segments` names one.
    fn discovery(&self, segments: &[&str]) -> Option<Result<Value, Failure>> {
        Some(Ok(match segments {
            ["version"] => json!({
                "major": "1", "minor": "32", "gitVersion": "v1.32.0-clauderon-mock",
                "platform": "linux/amd64", "goVersion": "none", "compiler": "none"
            }),
            ["api"] => json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.addr.to_string()}]
            }),
            ["apis"] => kinds::api_group_list(),
            ["apis", group] if kinds::serves_group(group) => kinds::api_group(group),
            ["api", "v1"] => kinds::resource_list("", "v1"),
            ["apis", group, version] if kinds::serves(group, version) => kinds::resource_list(group, version),
            ["openapi", "v3"] => kinds::openapi_index(),
            ["openapi", "v3", rest @ ..] => {
                return Some(
                    kinds::openapi_for(&rest.join("/")).ok_or_else(|| {
                        Failure::new(StatusCode::NOT_FOUND, "NotFound", "no such OpenAPI document", None)
                    }),
                );
            }
            _ => return None,
        }))
    }

    fn serve(
        &self,
        target: Target,
        method: &Method,
        query: &BTreeMap<String, String>,
        media: &str,
        body: &Bytes,
    ) -> Result<Response<Body>, Failure> {
        let parsed = || parse_body(media, body);
        let Target { kind, namespace, name, sub } = target;
        let key = |name: &str| (kind, namespace.clone(), name.to_string());
        let part = if sub.as_deref() == Some("status") { Part::Status } else { Part::Object };
        let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
        match (method, name.as_deref(), sub.as_deref()) {
            (&Method::GET, None, None) if watching => {
                let (tx, body) = streaming();
                watch::start(&self.store, kind, &namespace, query, tx)?;
                Ok(stream_answer("application/json", body))
            }
            (&Method::GET, None, None) => {
                let (items, rv) = self.store.list(kind, &namespace, &Filter::from_query(query)?)?;
                let k = &KINDS[kind];
                Ok(ok(json!({
                    "kind": format!("{}List", k.kind), "apiVersion": k.api_version(),
                    "metadata": {"resourceVersion": rv.to_string()}, "items": items,
                })))
            }
            (&Method::POST, None, None) => {
                Ok(answer(StatusCode::CREATED, self.store.create(kind, &namespace, parsed()?)?))
            }
            (&Method::GET, Some(name), None | Some("status")) => Ok(ok(self.store.get(kind, &namespace, name)?)),
            (&Method::PUT, Some(name), None | Some("status")) => {
                Ok(ok(self.store.replace(key(name), part, parsed()?)?))
            }
            (&Method::PATCH, Some(name), None | Some("status")) => match media {
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    Ok(ok(self.store.patch(key(name), part, &parsed()?)?))
                }
                "application/apply-patch+yaml" if part == Part::Object => {
                    let (stored, created) = self.store.apply(key(name), parsed()?)?;
                    Ok(answer(if created { StatusCode::CREATED } else { StatusCode::OK }, stored))
                }
                "application/apply-patch+yaml" => Ok(ok(self.store.patch(key(name), part, &parsed()?)?)),
                other => Err(Failure::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!("the patch type {other:?} is not supported by this mock"),
                    None,
                )),
            },
            (&Method::DELETE, Some(name), None) => {
                // kubectl sends no body; kube-rs sends DeleteOptions, maybe with preconditions.
                let options = if body.is_empty() { Value::Null } else { parsed()? };
                Ok(ok(self.store.delete(key(name), &options["preconditions"])?))
            }
            (&Method::GET, Some(name), Some("log")) if kind == PODS => {
                let pod = self.store.get(kind, &namespace, name)?;
                let (tx, body) = streaming();
                self.kubelet.logs(&pod, query, tx)?;
                Ok(stream_answer("text/plain", body))
            }
            _ => Err(Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!(
                    "{method} is not supported on {}{}",
                    KINDS[kind].plural,
                    sub.map(|s| format!("/{s}")).unwrap_or_default()
                ),
                None,
            )),
        }
    }
}

/// A request body: a JSON object (kubectl's typed clients may send protobuf).
fn parse_body(media: &str, body: &Bytes) -> Result<Value, Failure> {
    if !(media == "application/json" || media.ends_with("+json") || media == "application/apply-patch+yaml") {
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the body's media type {media:?} is not supported by this mock: send JSON"),
            None,
        ));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| v.is_object() && v.get("metadata").is_none_or(|m| m.is_object() || m.is_null()))
        .ok_or_else(|| Failure::bad_request("the body is not a JSON object with an object as its metadata"))
}

/// What a resource path names.
struct Target {
    kind: usize,
    /// Empty for a cluster-scoped kind, or a list across namespaces.
    namespace: String,
    name: Option<String>,
    /// A subresource (`status`, `log`).
    sub: Option<String>,
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
        let (plural, name, sub) = match rest {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some(name.to_string()), None),
            [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
            _ => return None,
        };
        let kind =
            KINDS.iter().position(|k| k.group == group && k.version == version && k.plural == plural && k.served())?;
        let k = &KINDS[kind];
        if (!k.namespaced && !namespace.is_empty()) || (k.namespaced && namespace.is_empty() && name.is_some()) {
            return None;
        }
        if sub.as_deref().is_some_and(|s| !k.subresources.iter().any(|(name, _)| *name == s)) {
            return None;
        }
        Some(Self { kind, namespace, name, sub })
    }
}

fn ok(value: Value) -> Response<Body> {
    answer(StatusCode::OK, value)
}

fn answer(code: StatusCode, value: Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    resp
}

fn error(failure: Failure) -> Response<Body> {
    answer(failure.0, failure.1)
}

/// A body written as it goes: what is sent on the channel, until it closes.
fn streaming() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    (tx, StreamBody::new(frames).boxed_unsync())
}

fn stream_answer(content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    resp
}
