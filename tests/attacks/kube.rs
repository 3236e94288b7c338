//! A malicious backend with `kube = true` (the `kube-probe` fixture) against
//! a cluster (the local API server, `clauderon-mock-kube`): it sends objects
//! for another namespace, pods that would reach the node (hostPath,
//! privileged, host network, host ports, added capabilities, root), pods
//! that would read the cluster's secrets (secretKeyRef, a service-account
//! token), claims that would bind or clone another's volume, pods mounting
//! another's claim, an object over another's of the same name, kinds it may
//! not use; and it reads, lists and deletes objects that are not its own.
//! The host refuses every one before the cluster sees it, and lets through
//! only the component's own, contained objects, labelled as its own.

use std::collections::BTreeMap;

use clauderon_runtime::bindings::types::SessionSpec;
use clauderon_runtime::{KubeSettings, Runtime, RuntimeConfig, Source};
use clauderon_tests::MockKube;
use serde_json::{Value, json};

fn fixture(id: &str) -> Source {
    let path = clauderon_tests::test_component("fixtures", id);
    Source::Bundled { name: id.into(), bytes: std::fs::read(&path).expect("fixture").into() }
}

/// A contained pod, as a backend should send it; `change` makes it hostile.
fn pod(name: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": true},
            "containers": [{
                "name": "agent", "image": "clauderon/agent:latest", "command": ["sleep", "infinity"],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    });
    change(&mut pod);
    pod
}

fn claim(name: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    });
    change(&mut claim);
    claim
}

/// A change making a pod mount `claim` at /workspace.
fn mount(claim: &'static str) -> impl FnOnce(&mut Value) {
    move |p: &mut Value| {
        p["spec"]["volumes"] = json!([{"name": "w", "persistentVolumeClaim": {"claimName": claim}}]);
        p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "w", "mountPath": "/workspace"}]);
    }
}

/// What the host said to each line of the probe's report.
fn outcomes(report: &str) -> BTreeMap<String, String> {
    let (_, report) = report.split_once("`create`: failed: ").expect("the probe's report");
    report
        .lines()
        .filter_map(|l| l.split_once(" => "))
        .map(|(what, said)| (what.to_string(), said.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_sends_the_cluster_only_its_own_contained_objects_and_sees_only_its_own() {
    let kube = MockKube::start();
    // Someone else's pod and claim in the same namespace, not labelled as the component's.
    kube.apply("theirs.json", &pod("theirs", |p| p["spec"]["containers"][0]["image"] = json!("clauderon/absent:1")));
    kube.apply("their-work.json", &claim("their-work", |_| {}));

    let home = tempfile::tempdir().expect("tempdir");
    let mut config = RuntimeConfig::under(home.path());
    config.cache_dir = None;
    config.kube = Some(KubeSettings {
        kubeconfig: Some(kube.kubeconfig()),
        context: None,
        namespace: "default".into(),
        service_account_token: false,
    });
    let rt = Runtime::new(config).expect("runtime");
    rt.load(fixture("kube-probe")).await.expect("the probe loads");

    let attempts: Vec<(Value, &str)> = vec![
        (claim("work", |_| {}), "passed"),
        (pod("agent", mount("work")), "passed"),
        (pod("elsewhere", |p| p["metadata"]["namespace"] = json!("kube-system")), "denied: namespace"),
        (
            pod("hosty", |p| {
                p["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
                p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "root", "mountPath": "/host"}]);
            }),
            "denied: spec.volumes[0] is a hostPath volume",
        ),
        (
            pod("privy", |p| p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)),
            "denied: spec.containers[0].securityContext.privileged",
        ),
        (pod("netty", |p| p["spec"]["hostNetwork"] = json!(true)), "denied: spec.hostNetwork"),
        (
            pod("porty", |p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 22, "hostPort": 22}])),
            "denied: spec.containers[0].ports[].hostPort",
        ),
        (
            pod("capsy", |p| {
                p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["SYS_ADMIN"])
            }),
            "denied: spec.containers[0].securityContext.capabilities.add",
        ),
        (
            pod("rooty", |p| p["spec"]["securityContext"]["runAsUser"] = json!(0)),
            "denied: spec.securityContext.runAsUser 0",
        ),
        (
            pod("secrety", |p| {
                p["spec"]["containers"][0]["env"] =
                    json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "cluster-admin", "key": "token"}}}]);
            }),
            "denied: spec.containers[0].env[0].valueFrom.secretKeyRef",
        ),
        (
            pod("tokeny", |p| p["spec"]["automountServiceAccountToken"] = json!(true)),
            "denied: spec.automountServiceAccountToken",
        ),
        (pod("thieving", mount("their-work")), "denied: the pod mounts the claim \"their-work\""),
        (
            claim("cloned", |c| {
                c["spec"]["dataSource"] = json!({"kind": "PersistentVolumeClaim", "name": "their-work"})
            }),
            "denied: spec.dataSource",
        ),
        (claim("bound", |c| c["spec"]["volumeName"] = json!("pvc-theirs")), "denied: spec.volumeName"),
        (pod("theirs", |_| {}), "denied: Pod theirs exists and is not this component's"),
        (
            pod("posing", |p| p["metadata"]["labels"] = json!({"dev.clauderon.component": "docker"})),
            "denied: the object is labelled",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "loot"}, "data": {}}),
            "denied: kind \"Secret\"",
        ),
        (
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "open"},
                   "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}}),
            "passed",
        ),
    ];
    let manifests: Vec<String> = attempts.iter().map(|(m, _)| m.to_string()).collect();
    let reads = [
        ("get Pod theirs", "passed: none"),
        ("get PersistentVolumeClaim their-work", "passed: none"),
        ("delete Pod theirs", "passed: false"),
        ("list Pod", "passed: agent"),
        ("list PersistentVolumeClaim", "passed: work"),
        ("get Pod agent", "passed: found"),
        ("logs theirs", "failed: pod theirs (of this component) does not exist"),
        ("get Secret loot", "denied: kind \"Secret\""),
        ("namespace", "default"),
    ];
    let mut spec = SessionSpec::named("probe");
    spec.options = vec![
        ("try-objects".into(), manifests.join("\n")),
        (
            "try-reads".into(),
            reads.iter().filter(|(r, _)| *r != "namespace").map(|(r, _)| *r).collect::<Vec<_>>().join("\n"),
        ),
    ];
    let mut backend = rt.backend("kube-probe").await.expect("instance");
    let report = backend.create(&spec).await.expect_err("the probe fails with its report").to_string();
    let said = outcomes(&report);
    for (i, (manifest, expected)) in attempts.iter().enumerate() {
        let got = said.get(&format!("apply {i}")).map(String::as_str).unwrap_or("(no line)");
        assert!(
            got.starts_with(expected),
            "apply {i} ({}): expected {expected:?}, got {got:?}\n{report}",
            manifest["metadata"]["name"]
        );
    }
    for (read, expected) in reads {
        let got = said.get(read).map(String::as_str).unwrap_or("(no line)");
        assert!(got.starts_with(expected), "{read}: expected {expected:?}, got {got:?}\n{report}");
    }

    // In the cluster: the component's objects, labelled and contained; nothing refused; theirs untouched.
    let agent = kube.object(&["pod", "agent"]);
    assert_eq!(agent["metadata"]["labels"]["dev.clauderon.component"], "kube-probe");
    assert_eq!(agent["spec"]["automountServiceAccountToken"], false, "no token unless configured");
    let names = kube.ok(&["get", "pods", "--all-namespaces", "-o", "jsonpath={.items[*].metadata.name}"]);
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["agent", "theirs"], "no refused pod reached the cluster");
    let theirs = kube.object(&["pod", "theirs"]);
    assert!(theirs["metadata"]["labels"].get("dev.clauderon.component").is_none(), "theirs is as it was");
    let claims = kube.ok(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(claims.split_whitespace().collect::<Vec<_>>(), ["their-work", "work"]);
    let policy = kube.object(&["networkpolicy", "open"]);
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["dev.clauderon.component"], "kube-probe",
        "a policy selects only the component's pods"
    );
}
