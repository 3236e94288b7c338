//! The kinds the mock API server serves, and the discovery and OpenAPI
//! documents that say so (nothing more than it serves). A CRD's kinds are
//! served only once it is installed ([`install_agent_sandbox`]).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

/// One kind the server serves.
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short: &'static [&'static str],
    /// Subresources served under `NAME/` and their verbs (`status`, `log`, …).
    pub subresources: &'static [(&'static str, &'static [&'static str])],
    /// A CRD's kind: served only once the CRD is installed.
    pub crd: bool,
}

/// Whether agent-sandbox's CRD is installed (`--agent-sandbox`).
static AGENT_SANDBOX: AtomicBool = AtomicBool::new(false);
/// Whether its extensions' CRDs are too (all but `--agent-sandbox-core`).
static EXTENSIONS: AtomicBool = AtomicBool::new(false);
/// The extensions' group.
const EXTENSIONS_GROUP: &str = "extensions.agents.x-k8s.io";

/// Install agent-sandbox's CRD, and with `extensions` its extensions'
/// (warm pools, claims, templates): serve their kinds (before anything is served).
pub fn install_agent_sandbox(extensions: bool) {
    AGENT_SANDBOX.store(true, Ordering::SeqCst);
    EXTENSIONS.store(extensions, Ordering::SeqCst);
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Whether the API server keeps this kind's `status` apart from what
    /// clients write (a write to the object leaves it; `NAME/status` writes it).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|(name, _)| *name == "status")
    }

    /// Whether the server serves this kind now (a CRD's, once installed).
    pub fn served(&self) -> bool {
        let installed = if self.group == EXTENSIONS_GROUP { &EXTENSIONS } else { &AGENT_SANDBOX };
        !self.crd || installed.load(Ordering::SeqCst)
    }
}

const STATUS: (&str, &[&str]) = ("status", &["get", "patch", "update"]);

pub const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        subresources: &[
            STATUS,
            ("log", &["get"]),
            ("exec", &["create", "get"]),
            ("attach", &["create", "get"]),
            ("portforward", &["create", "get"]),
        ],
        crd: false,
    },
    Kind {
        group: "",
        version: "v1",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        kind: "PersistentVolumeClaim",
        namespaced: true,
        short: &["pvc"],
        subresources: &[STATUS],
        crd: false,
    },
    Kind {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        subresources: &[],
        crd: false,
    },
    Kind {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        subresources: &[STATUS],
        crd: false,
    },
    Kind {
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        singular: "networkpolicy",
        kind: "NetworkPolicy",
        namespaced: true,
        short: &["netpol"],
        subresources: &[],
        crd: false,
    },
    // agent-sandbox's CRD, served as a cluster with it installed serves it
    // (with `--agent-sandbox`; its controller is [`crate::sandboxes`]).
    Kind {
        group: "agents.x-k8s.io",
        version: "v1alpha1",
        plural: "sandboxes",
        singular: "sandbox",
        kind: "Sandbox",
        namespaced: true,
        short: &[],
        subresources: &[STATUS],
        crd: true,
    },
    // agent-sandbox's extensions (warm pools and claims; their controllers
    // are [`crate::extensions`]), in the version they store and act on.
    Kind {
        group: "extensions.agents.x-k8s.io",
        version: "v1beta1",
        plural: "sandboxtemplates",
        singular: "sandboxtemplate",
        kind: "SandboxTemplate",
        namespaced: true,
        short: &[],
        subresources: &[],
        crd: true,
    },
    Kind {
        group: "extensions.agents.x-k8s.io",
        version: "v1beta1",
        plural: "sandboxwarmpools",
        singular: "sandboxwarmpool",
        kind: "SandboxWarmPool",
        namespaced: true,
        short: &["swp"],
        subresources: &[STATUS],
        crd: true,
    },
    Kind {
        group: "extensions.agents.x-k8s.io",
        version: "v1beta1",
        plural: "sandboxclaims",
        singular: "sandboxclaim",
        kind: "SandboxClaim",
        namespaced: true,
        short: &[],
        subresources: &[STATUS],
        crd: true,
    },
];

/// `KINDS`' index of each kind the server itself acts on.
pub const PODS: usize = 0;
pub const PVCS: usize = 1;
pub const EVENTS: usize = 2;
pub const NAMESPACES: usize = 3;
pub const NETWORK_POLICIES: usize = 4;
pub const SANDBOXES: usize = 5;
pub const SANDBOX_TEMPLATES: usize = 6;
pub const SANDBOX_WARM_POOLS: usize = 7;
pub const SANDBOX_CLAIMS: usize = 8;

/// The verbs every kind supports.
const VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];

/// The group-versions served, in discovery order (`""` is the core group).
pub static GROUP_VERSIONS: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS.iter().filter(|k| k.served()) {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
});

pub fn serves_group(group: &str) -> bool {
    !group.is_empty() && GROUP_VERSIONS.iter().any(|(g, _)| *g == group)
}

pub fn serves(group: &str, version: &str) -> bool {
    GROUP_VERSIONS.contains(&(group, version))
}

/// `api/v1` or `apis/GROUP/VERSION`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// `/apis`: every named group.
pub fn api_group_list() -> Value {
    let mut groups: Vec<&str> = GROUP_VERSIONS.iter().map(|(g, _)| *g).filter(|g| !g.is_empty()).collect();
    groups.dedup();
    let groups: Vec<Value> = groups.into_iter().map(api_group).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = GROUP_VERSIONS
        .iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0]})
}

/// `/api/v1` or `/apis/GROUP/VERSION`: the kinds and subresources served.
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for k in KINDS.iter().filter(|k| k.group == group && k.version == version && k.served()) {
        resources.push(json!({
            "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
            "kind": k.kind, "verbs": VERBS, "shortNames": k.short
        }));
        for (sub, verbs) in k.subresources {
            resources.push(json!({
                "name": format!("{}/{sub}", k.plural), "singularName": "", "namespaced": k.namespaced,
                "kind": k.kind, "verbs": verbs
            }));
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// `/openapi/v3`: one document per group-version.
pub fn openapi_index() -> Value {
    let paths: serde_json::Map<String, Value> = GROUP_VERSIONS
        .iter()
        .map(|(g, v)| {
            let gv = gv_path(g, v);
            (gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash=mock")}))
        })
        .collect();
    json!({"paths": paths})
}

/// The group-version whose OpenAPI v3 document is at `/openapi/v3/PATH`.
pub fn openapi_for(path: &str) -> Option<Value> {
    GROUP_VERSIONS.iter().find(|(g, v)| gv_path(g, v) == path).map(|(g, v)| openapi_v3(g, v))
}

/// The part of a group-version's OpenAPI v3 document `kubectl apply` reads:
/// each kind's PATCH operation, which takes `fieldValidation`.
fn openapi_v3(group: &str, version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for k in KINDS.iter().filter(|k| k.group == group && k.version == version && k.served()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indices_name_their_kinds() {
        assert_eq!(KINDS[PODS].kind, "Pod");
        assert_eq!(KINDS[PVCS].kind, "PersistentVolumeClaim");
        assert_eq!(KINDS[EVENTS].kind, "Event");
        assert_eq!(KINDS[NAMESPACES].kind, "Namespace");
        assert_eq!(KINDS[NETWORK_POLICIES].kind, "NetworkPolicy");
        assert_eq!(KINDS[SANDBOXES].kind, "Sandbox");
        assert_eq!(KINDS[SANDBOX_TEMPLATES].kind, "SandboxTemplate");
        assert_eq!(KINDS[SANDBOX_WARM_POOLS].kind, "SandboxWarmPool");
        assert_eq!(KINDS[SANDBOX_CLAIMS].kind, "SandboxClaim");
    }

    #[test]
    fn discovery_lists_subresources_with_their_own_verbs() {
        let list = resource_list("", "v1");
        let log = list["resources"].as_array().expect("resources").iter().find(|r| r["name"] == "pods/log");
        assert_eq!(log.expect("pods/log")["verbs"], json!(["get"]));
        assert_eq!(api_group_list()["groups"][0]["name"], "networking.k8s.io");
    }
}
