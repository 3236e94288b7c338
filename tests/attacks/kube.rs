//! A malicious backend with `kube = true` (the `kube-probe` fixture) against
//! a cluster (the local API server, `clauderon-mock-kube`): it sends objects
//! for another namespace, pods that would reach the node (hostPath,
//! privileged, host network, host ports, added capabilities, root), pods
//! that would read the cluster's secrets (secretKeyRef, a service-account
//! token), claims that would bind or clone another's volume, pods mounting
//! another's claim, an object over another's of the same name, kinds it may
//! not use; and it reads, lists and deletes objects that are not its own.
//! The host refuses every one before the cluster sees it, and lets through
//! only the component's own, contained objects, labelled as its own. And
//! when the cluster's login fails, the component learns why in words but
//! never the credential (nor does the log). A session's tunnel leads only
//! to its own proxy and only from the pod it was opened to: a pod made
//! later under the same name, even labelled as the component's, gets
//! nothing.

use std::collections::BTreeMap;

use clauderon_runtime::bindings::types::SessionSpec;
use clauderon_runtime::{KubeSettings, Runtime, RuntimeConfig, Source};
use clauderon_tests::{TestCluster, eventually};
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
                "name": "agent", "image": TestCluster::agent_image(), "command": ["sleep", "infinity"],
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

/// A contained agent-sandbox `Sandbox` (its pod template as [`pod`]'s, a
/// claim template mounted at /workspace); `change` (on its spec) makes it hostile.
fn sandbox(name: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut template = pod(name, |_| {});
    template["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "work", "mountPath": "/workspace"}]);
    let mut sandbox = json!({
        "apiVersion": "agents.x-k8s.io/v1alpha1", "kind": "Sandbox", "metadata": {"name": name},
        "spec": {
            "podTemplate": {"metadata": {"labels": {"app": "agent"}}, "spec": template["spec"]},
            "volumeClaimTemplates": [{"metadata": {"name": "work"}, "spec": claim("work", |_| {})["spec"]}],
            "replicas": 1
        }
    });
    change(&mut sandbox["spec"]);
    sandbox
}

/// A change making a pod mount `claim` at /workspace.
fn mount(claim: &'static str) -> impl FnOnce(&mut Value) {
    move |p: &mut Value| {
        p["spec"]["volumes"] = json!([{"name": "w", "persistentVolumeClaim": {"claimName": claim}}]);
        p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "w", "mountPath": "/workspace"}]);
    }
}

/// A runtime with the `kube-probe` fixture loaded, for the cluster of
/// `kubeconfig` (in the mock's namespace, `default`).
async fn probe_runtime(kubeconfig: std::path::PathBuf) -> (tempfile::TempDir, Runtime) {
    probe_runtime_in(kubeconfig, "default").await
}

/// A runtime with the `kube-probe` fixture loaded, for `cluster`.
async fn probe_runtime_for(cluster: &TestCluster) -> (tempfile::TempDir, Runtime) {
    probe_runtime_in(cluster.kubeconfig(), cluster.namespace()).await
}

async fn probe_runtime_in(kubeconfig: std::path::PathBuf, namespace: &str) -> (tempfile::TempDir, Runtime) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut config = RuntimeConfig::under(home.path());
    config.cache_dir = None;
    config.kube = Some(KubeSettings {
        kubeconfig: Some(kubeconfig),
        context: None,
        namespace: namespace.into(),
        service_account_token: false,
    });
    let rt = Runtime::new(config).expect("runtime");
    rt.load(fixture("kube-probe")).await.expect("the probe loads");
    (home, rt)
}

/// What the host said to each line of the probe's report (of its `create`
/// or `export-branch`).
fn outcomes(report: &str) -> BTreeMap<String, String> {
    let (_, report) = report.split_once("`: failed: ").expect("the probe's report");
    report
        .lines()
        .filter_map(|l| l.split_once(" => "))
        .map(|(what, said)| (what.to_string(), said.to_string()))
        .collect()
}

/// The probe's reads, one per line.
fn read_lines<E>(reads: &[(&str, E)]) -> String {
    reads.iter().map(|(r, _)| *r).collect::<Vec<_>>().join("\n")
}

/// A spec asking the probe to apply `objects` (a manifest each) and then make `reads`.
fn probe_spec<E>(objects: &[String], reads: &[(&str, E)]) -> SessionSpec {
    let mut spec = SessionSpec::named("probe");
    spec.options = vec![("try-objects".into(), objects.join("\n")), ("try-reads".into(), read_lines(reads))];
    spec
}

/// Each manifest's outcome (`apply I`) in the probe's `report` begins as expected.
fn expect_applies(report: &str, attempts: &[(Value, &str)]) {
    let said = outcomes(report);
    for (i, (manifest, expected)) in attempts.iter().enumerate() {
        let got = said.get(&format!("apply {i}")).map(String::as_str).unwrap_or("(no line)");
        assert!(
            got.starts_with(expected),
            "apply {i} ({}): expected {expected:?}, got {got:?}\n{report}",
            manifest["metadata"]["name"]
        );
    }
}

/// Each read's outcome in the probe's `report` begins as expected.
fn expect_reads<E: AsRef<str> + std::fmt::Debug>(report: &str, reads: &[(&str, E)]) {
    let said = outcomes(report);
    for (read, expected) in reads {
        let got = said.get(*read).map(String::as_str).unwrap_or("(no line)");
        assert!(got.starts_with(expected.as_ref()), "{read}: expected {expected:?}, got {got:?}\n{report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_sends_the_cluster_only_its_own_contained_objects_and_sees_only_its_own() {
    let kube = TestCluster::start(&["--agent-sandbox"]);
    let namespace = kube.namespace().to_string();
    // Someone else's pod and claim in the same namespace, not labelled as the component's.
    kube.apply("theirs.json", &pod("theirs", |p| p["spec"]["containers"][0]["image"] = json!("clauderon/absent:1")));
    kube.apply("their-work.json", &claim("their-work", |_| {}));

    let (_home, rt) = probe_runtime_for(&kube).await;

    let attempts: Vec<(Value, &str)> = vec![
        (claim("work", |_| {}), "passed"),
        (pod("agent", mount("work")), "passed"),
        // Its own again: applied over at the version found to be its own.
        (claim("work", |c| c["metadata"]["labels"] = json!({"tier": "fast"})), "passed"),
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
        (
            pod("unarmored", |p| {
                p["metadata"]["annotations"] =
                    json!({"container.apparmor.security.beta.kubernetes.io/agent": "unconfined"})
            }),
            "denied: metadata.annotations[\"container.apparmor.security.beta.kubernetes.io/agent\"] = unconfined",
        ),
        (
            pod("unfiltered", |p| {
                p["metadata"]["annotations"] = json!({"seccomp.security.alpha.kubernetes.io/pod": "Unconfined"})
            }),
            "denied: metadata.annotations[\"seccomp.security.alpha.kubernetes.io/pod\"]",
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
        // agent-sandbox: the pod its controller would make is checked as a
        // pod, its claim templates as claims, and both labelled as the
        // component's.
        (
            sandbox("escaping", |s| s["podTemplate"]["spec"]["hostNetwork"] = json!(true)),
            "denied: spec.podTemplate.spec.hostNetwork",
        ),
        (
            sandbox("mounting", |s| {
                s["podTemplate"]["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}])
            }),
            "denied: spec.podTemplate.spec.volumes[0] is a hostPath volume",
        ),
        (
            sandbox("privy", |s| {
                s["podTemplate"]["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)
            }),
            "denied: spec.podTemplate.spec.containers[0].securityContext.privileged",
        ),
        (
            sandbox("cloning", |s| {
                s["volumeClaimTemplates"][0]["spec"]["dataSource"] =
                    json!({"kind": "PersistentVolumeClaim", "name": "their-work"})
            }),
            "denied: spec.volumeClaimTemplates[0].spec.dataSource",
        ),
        (
            sandbox("stealing", |s| {
                s["podTemplate"]["spec"]["volumes"] =
                    json!([{"name": "w", "persistentVolumeClaim": {"claimName": "their-work"}}])
            }),
            "denied: the pod mounts the claim \"their-work\"",
        ),
        (
            sandbox("disguised", |s| {
                s["podTemplate"]["metadata"]["labels"] = json!({"dev.clauderon.component": "docker"})
            }),
            "denied: spec.podTemplate.metadata is labelled dev.clauderon.component=docker",
        ),
        (sandbox("crowd", |s| s["replicas"] = json!(3)), "denied: spec.replicas 3"),
        (
            sandbox("unarmored", |s| {
                s["podTemplate"]["metadata"]["annotations"] =
                    json!({"container.apparmor.security.beta.kubernetes.io/agent": "unconfined"})
            }),
            "denied: spec.podTemplate.metadata.annotations[\"container.apparmor.security.beta.kubernetes.io/agent\"]",
        ),
        (
            sandbox("pointing", |s| {
                s["podTemplate"]["metadata"]["annotations"] = json!({"agents.x-k8s.io/pod-name": "theirs"})
            }),
            "denied: spec.podTemplate.metadata.annotations[\"agents.x-k8s.io/pod-name\"] is not allowed",
        ),
        (sandbox("boxed", |_| {}), "passed"),
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
        ("exec theirs true", "failed: pod theirs (of this component) does not exist"),
        ("copy agent /etc /tmp/etc", "denied: copy-in works only while the host serves a session"),
        ("out agent /session/workspace", "denied: copy-out works only during a session's export-branch"),
        ("tunnel agent 7070", "denied: open-tunnel works only while the host serves a session"),
        ("door", "denied: direct-door works only while the host serves a session"),
        ("copy agent door /tmp/door", "denied: copy-in works only while the host serves a session"),
        ("watch agent", "denied: watch-pod works only while the host serves a session"),
        ("serves Sandbox", "passed: true"),
        ("serves Secret", "denied: kind \"Secret\""),
        ("wait theirs 300", "failed: pod theirs (of this component) does not exist (waited 300 ms"),
        ("namespace", namespace.as_str()),
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
    expect_applies(&report, &attempts);
    expect_reads(&report, &reads);

    // In the cluster: the component's objects, labelled and contained; nothing refused; theirs untouched.
    let agent = kube.object(&["pod", "agent"]);
    assert_eq!(agent["metadata"]["labels"]["dev.clauderon.component"], "kube-probe");
    assert_eq!(agent["spec"]["automountServiceAccountToken"], false, "no token unless configured");
    let names = kube.ok(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]);
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    // (`boxed` is the pod agent-sandbox's controller made for the Sandbox.)
    assert_eq!(names, ["agent", "boxed", "theirs"], "no refused pod reached the cluster");
    let theirs = kube.object(&["pod", "theirs"]);
    assert!(theirs["metadata"]["labels"].get("dev.clauderon.component").is_none(), "theirs is as it was");
    let claims = kube.ok(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(claims.split_whitespace().collect::<Vec<_>>(), ["their-work", "work", "work-boxed"]);
    let policy = kube.object(&["networkpolicy", "open"]);
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["dev.clauderon.component"], "kube-probe",
        "a policy selects only the component's pods"
    );
    let sandboxes = kube.ok(&["get", "sandboxes", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(sandboxes.trim(), "boxed", "no refused sandbox reached the cluster");
    let boxed = kube.object(&["sandbox", "boxed"]);
    for labels in [
        &boxed["metadata"]["labels"],
        &boxed["spec"]["podTemplate"]["metadata"]["labels"],
        &boxed["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"],
    ] {
        assert_eq!(labels["dev.clauderon.component"], "kube-probe", "labelled as the component's: {boxed}");
    }
    assert_eq!(boxed["spec"]["podTemplate"]["spec"]["automountServiceAccountToken"], false, "{boxed}");
    // What the controller made of it is the component's, from its checked templates.
    let made = kube.object(&["pod", "boxed"]);
    assert_eq!(made["metadata"]["labels"]["dev.clauderon.component"], "kube-probe", "{made}");
    assert_eq!(made["metadata"]["ownerReferences"][0]["uid"], boxed["metadata"]["uid"], "{made}");
    assert_eq!(made["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "work-boxed", "{made}");
    assert_eq!(kube.object(&["pvc", "work-boxed"])["metadata"]["labels"]["dev.clauderon.component"], "kube-probe");
}

/// agent-sandbox's controller tracks a Sandbox's pod and claims by a label
/// (`agents.x-k8s.io/sandbox-name-hash`, the name's FNV-1a) and adopts an
/// unowned pod or claim of the right name that carries it (or
/// `agents.x-k8s.io/adoptable: "true"`). A component that could label its
/// own objects so would have another component's Sandbox run its pod — into
/// which the other's backend copies its session's branch and which it
/// tunnels to that session's proxy — or mount its claim, which it could
/// then mount and read. The host refuses those labels (and the pod-name
/// annotation pointing a Sandbox at another's pod): the other's Sandbox
/// gets a pod and a claim of its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_cannot_plant_a_pod_or_claim_for_anothers_sandbox_to_adopt() {
    let kube = TestCluster::start(&["--agent-sandbox"]);
    let (_home, rt) = probe_runtime_for(&kube).await;
    let victim = "clauderon-victim";
    let hash = {
        let mut h: u32 = 0x811c_9dc5;
        for b in victim.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        format!("{h:08x}")
    };
    let planted = [
        (
            pod(victim, |p| p["metadata"]["labels"] = json!({"agents.x-k8s.io/adoptable": "true"})),
            "denied: metadata.labels[\"agents.x-k8s.io/adoptable\"] is not allowed",
        ),
        (
            claim(&format!("work-{victim}"), |c| {
                c["metadata"]["labels"] = json!({"agents.x-k8s.io/sandbox-name-hash": hash})
            }),
            "denied: metadata.labels[\"agents.x-k8s.io/sandbox-name-hash\"] is not allowed",
        ),
    ];
    let objects: Vec<String> = planted.iter().map(|(o, _)| o.to_string()).collect();
    let reads: [(&str, &str); 0] = [];
    let mut backend = rt.backend("kube-probe").await.expect("instance");
    let report = backend.create(&probe_spec(&objects, &reads)).await.expect_err("the report").to_string();
    expect_applies(&report, &planted);

    // The other component's Sandbox, as its backend makes it.
    let theirs = json!({"dev.clauderon.component": "kubernetes"});
    let mut victims = sandbox(victim, |s| {
        s["podTemplate"]["metadata"]["labels"] = theirs.clone();
        s["volumeClaimTemplates"][0]["metadata"]["labels"] = theirs.clone();
    });
    victims["metadata"]["labels"] = theirs.clone();
    kube.apply("victim.json", &victims);
    let uid = kube.object(&["sandbox", victim])["metadata"]["uid"].clone();
    let pod = eventually(20, "the victim's pod", || {
        let out = kube.kubectl(&["get", "pod", victim, "-o", "json"]);
        out.status.success().then(|| serde_json::from_slice::<Value>(&out.stdout).expect("json"))
    });
    assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], uid, "{pod}");
    assert_eq!(
        pod["metadata"]["labels"]["dev.clauderon.component"], "kubernetes",
        "its own pod, not a planted one: {pod}"
    );
    let work = kube.object(&["pvc", &format!("work-{victim}")]);
    assert_eq!(work["metadata"]["labels"]["dev.clauderon.component"], "kubernetes", "its own claim: {work}");
    assert_eq!(work["metadata"]["ownerReferences"][0]["uid"], uid, "{work}");
}

/// agent-sandbox's extensions kind by kind: `SandboxTemplate`, `SandboxWarmPool`, `SandboxClaim`.
fn extension(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

/// A contained template (its pod template as [`sandbox`]'s, agent-sandbox
/// keeping no policy for it); `change` (on its spec) makes it hostile.
fn template(name: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut spec = sandbox(name, |_| {})["spec"].clone();
    if let Some(spec) = spec.as_object_mut() {
        spec.remove("replicas");
    }
    spec["networkPolicyManagement"] = json!("Unmanaged");
    change(&mut spec);
    extension("SandboxTemplate", name, spec)
}

/// A malicious component with warm pools: a template agent-sandbox would
/// give its internet-wide network policy, or whose pods reach the node; a
/// pool of another's template (its pods, its mounts); a claim on another's
/// pool (taking one of their running Sandboxes, with their session's files
/// in it), or adding env or agent-sandbox's own annotations to its pod. The
/// host refuses each; what it admits works with the cluster's controllers,
/// and the component's pods carry its label.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_warm_pool_never_opens_its_pods_and_takes_nothing_of_anothers() {
    let kube = TestCluster::start(&["--agent-sandbox"]);
    // Another's template and pool (another component's, as its backend makes them).
    let theirs = json!({"dev.clauderon.component": "kubernetes"});
    let mut their_template = template("their-template", |s| s["podTemplate"]["metadata"]["labels"] = theirs.clone());
    their_template["metadata"]["labels"] = theirs.clone();
    kube.apply("their-template.json", &their_template);
    let mut their_pool = extension(
        "SandboxWarmPool",
        "their-pool",
        json!({"replicas": 1, "sandboxTemplateRef": {"name": "their-template"}}),
    );
    their_pool["metadata"]["labels"] = theirs.clone();
    kube.apply("their-pool.json", &their_pool);
    let their_sandbox = eventually(60, "their pool's ready Sandbox", || {
        let pool = kube.object(&["sandboxwarmpool", "their-pool"]);
        let selector =
            pool["status"]["selector"].as_str().filter(|_| pool["status"]["readyReplicas"] == 1)?.to_string();
        let listed = kube.ok(&["get", "sandboxes", "-l", &selector, "-o", "name"]);
        listed.lines().next().map(|l| l.trim_start_matches("sandbox.agents.x-k8s.io/").to_string())
    });

    let (_home, rt) = probe_runtime_for(&kube).await;
    let pool = |name: &str, template: &str, replicas: i64| {
        extension("SandboxWarmPool", name, json!({"replicas": replicas, "sandboxTemplateRef": {"name": template}}))
    };
    let claim = |name: &str, pool: &str, change: &dyn Fn(&mut Value)| {
        let mut claim = extension("SandboxClaim", name, json!({"warmPoolRef": {"name": pool}}));
        change(&mut claim["spec"]);
        claim
    };
    let attempts: Vec<(Value, &str)> = vec![
        (template("warm", |_| {}), "passed"),
        (
            template("open", |s| {
                if let Some(s) = s.as_object_mut() {
                    s.remove("networkPolicyManagement");
                }
            }),
            "denied: spec.networkPolicyManagement must be \"Unmanaged\"",
        ),
        (
            template("fenced", |s| {
                s["networkPolicy"] = json!({"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})
            }),
            "denied: spec.networkPolicyManagement must be \"Unmanaged\"",
        ),
        (
            template("hosty", |s| {
                s["podTemplate"]["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}])
            }),
            "denied: spec.podTemplate.spec.volumes[0] is a hostPath volume",
        ),
        (template("envy", |s| s["envVarsInjectionPolicy"] = json!("Allowed")), "denied: spec.envVarsInjectionPolicy"),
        (pool("warm", "warm", 1), "passed"),
        (
            pool("borrowed", "their-template", 1),
            "denied: the warm pool is made from the template \"their-template\", which is not this component's",
        ),
        (pool("crowd", "warm", 500), "denied: spec.replicas 500 is not allowed"),
        (claim("mine", "warm", &|_| {}), "passed"),
        (
            claim("poaching", "their-pool", &|_| {}),
            "denied: the claim takes from the warm pool \"their-pool\", which is not this component's",
        ),
        (
            claim("envious", "warm", &|s| s["env"] = json!([{"name": "HTTPS_PROXY", "value": "http://elsewhere"}])),
            "denied: spec.env is not allowed",
        ),
        (
            claim("pointing", "warm", &|s| {
                s["additionalPodMetadata"] = json!({"annotations": {"agents.x-k8s.io/pod-name": their_sandbox.clone()}})
            }),
            "denied: spec.additionalPodMetadata.annotations[\"agents.x-k8s.io/pod-name\"] is not allowed",
        ),
    ];
    let objects: Vec<String> = attempts.iter().map(|(o, _)| o.to_string()).collect();
    let reads = [
        ("serves SandboxClaim", "passed: true"),
        ("get SandboxWarmPool their-pool", "passed: none"),
        ("get SandboxTemplate their-template", "passed: none"),
        ("get SandboxClaim mine", "passed: found"),
    ];
    let mut backend = rt.backend("kube-probe").await.expect("instance");
    let report = backend.create(&probe_spec(&objects, &reads)).await.expect_err("the report").to_string();
    expect_applies(&report, &attempts);
    expect_reads(&report, &reads);

    // In the cluster: the claim has a Sandbox whose pod is the component's;
    // agent-sandbox made no policy for its template; their Sandbox is theirs still.
    let sandbox = eventually(60, "the claim's ready Sandbox", || {
        let claim = kube.object(&["sandboxclaim", "mine"]);
        let ready = claim["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        claim["status"]["sandbox"]["name"].as_str().filter(|_| ready).map(str::to_string)
    });
    let pod = kube.object(&["pod", &sandbox]);
    assert_eq!(pod["metadata"]["labels"]["dev.clauderon.component"], "kube-probe", "{pod}");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert!(
        !kube.kubectl(&["get", "networkpolicy", "warm-network-policy"]).status.success(),
        "no policy of agent-sandbox's"
    );
    let still = kube.object(&["sandbox", &their_sandbox]);
    assert_eq!(still["metadata"]["ownerReferences"][0]["name"], "their-pool", "{still}");

    // A Sandbox its own claim took is the component's to read and pause;
    // one another's claim took, or still in another's pool, is not there.
    let mut their_claim = extension("SandboxClaim", "their-claim", json!({"warmPoolRef": {"name": "their-pool"}}));
    their_claim["metadata"]["labels"] = theirs.clone();
    kube.apply("their-claim.json", &their_claim);
    let theirs_taken = eventually(60, "their claim's Sandbox", || {
        kube.object(&["sandboxclaim", "their-claim"])["status"]["sandbox"]["name"].as_str().map(str::to_string)
    });
    let their_warm = eventually(60, "their pool refilled", || {
        let pool = kube.object(&["sandboxwarmpool", "their-pool"]);
        let selector = pool["status"]["selector"].as_str()?.to_string();
        let listed = kube.ok(&["get", "sandboxes", "-l", &selector, "-o", "name"]);
        let name = listed.lines().next()?.trim_start_matches("sandbox.agents.x-k8s.io/").to_string();
        (name != theirs_taken).then_some(name)
    });
    // (Each read once: the report is read by its lines' text.)
    let reads = [
        (format!("get Sandbox {sandbox}"), "passed: found"),
        (format!("get Sandbox {theirs_taken}"), "passed: none"),
        (format!("delete Sandbox {theirs_taken}"), "passed: false"),
        (format!("get Sandbox {their_warm}"), "passed: none"),
    ];
    let reads: Vec<(&str, &str)> = reads.iter().map(|(r, e)| (r.as_str(), *e)).collect();
    let mut backend = rt.backend("kube-probe").await.expect("instance");
    let report = backend.create(&probe_spec(&[], &reads)).await.expect_err("the report").to_string();
    expect_reads(&report, &reads);
    assert!(kube.kubectl(&["get", "sandbox", &theirs_taken]).status.success(), "their Sandbox is still there");
    for refused in ["open", "fenced", "hosty", "envy"] {
        assert!(!kube.kubectl(&["get", "sandboxtemplate", refused]).status.success(), "{refused} reached the cluster");
    }
    for refused in ["poaching", "envious", "pointing"] {
        assert!(!kube.kubectl(&["get", "sandboxclaim", refused]).status.success(), "{refused} reached the cluster");
    }
}

/// Everything the host logs, kept for the test to read.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A kubeconfig's cluster and context parts for the API server at `server`
/// (its user `u` follows).
fn cluster(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
    )
}

/// The kubeconfig user `u` whose token comes from the exec plugin at `plugin`.
fn exec_user(plugin: &std::path::Path) -> String {
    format!(
        "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
         interactiveMode: Never\n      command: {}\n",
        plugin.display()
    )
}

/// Make `script` an executable shell script at `path`.
fn script(path: &std::path::Path, script: &str) {
    std::fs::write(path, script).expect("script");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
}

/// Capture everything the host logs, down to debug, from here on.
fn capture_log() -> Log {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_ansi(false)
        .init();
    log
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log")).to_string()
    }
}

/// A cluster whose credentials fail: the kubeconfig's exec plugin prints a
/// token (as an `ExecCredential`, and on stderr) and fails; another
/// kubeconfig carries a token but is broken YAML; a third points at a port
/// nobody listens on. The component learns what went wrong, in words, and
/// neither it nor the daemon's log ever holds the token.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_cluster_login_tells_the_component_why_but_never_the_credential() {
    const CANARY: &str = "canary-kube-token-5f2b9e";
    let log = capture_log();
    let kube = TestCluster::mock(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let credential = format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{CANARY}"}}}}"#
    );
    let plugin = dir.path().join("credential-plugin");
    script(&plugin, &format!("#!/bin/sh\necho '{credential}'\necho {CANARY} >&2\nexit 1\n"));
    let exec = format!("{}{}", cluster(&format!("http://{}", kube.addr())), exec_user(&plugin));
    let broken =
        format!("{}users:\n- name: u\n  user:\n    token: {CANARY}\n  : [: {CANARY}\n", cluster("http://127.0.0.1:9"));
    let closed = format!("{}users:\n- name: u\n  user:\n    token: {CANARY}\n", cluster("http://127.0.0.1:9"));
    let cases = [
        ("exec", exec, "the kubeconfig's exec credential plugin failed (exit status: 1)"),
        ("broken", broken, "not a valid kubeconfig"),
        ("closed", closed, "cannot reach the cluster's API server"),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("kubeconfig");
        let (_home, rt) = probe_runtime(path).await;
        let mut spec = SessionSpec::named("probe");
        spec.options = vec![("try-objects".into(), claim("work", |_| {}).to_string())];
        let mut backend = rt.backend("kube-probe").await.expect("instance");
        let report = backend.create(&spec).await.expect_err("the probe fails with its report").to_string();
        let said = outcomes(&report);
        let got = said.get("apply 0").map(String::as_str).unwrap_or("(no line)");
        assert!(got.starts_with("failed: ") && got.contains(expected), "{name}: expected {expected:?}, got {got:?}");
        assert!(!report.contains(CANARY), "{name}: the component was told the token: {report}");
    }
    let log = log.text();
    assert!(log.contains("exec credential plugin"), "the daemon's log says what failed: {log}");
    assert!(!log.contains(CANARY), "the daemon's log holds the token: {log}");
    assert_eq!(kube.ok(&["get", "pvc", "-o", "name"]).trim(), "", "nothing reached the cluster");
}

/// `copy-in` sends only the session's own files, during its create: a path
/// outside them, or a link inside them to one outside, is refused; the
/// session's own directory arrives, and `exec` reads it back in the pod.
/// `copy-out` is refused in that create, served session or not: it works
/// only in the session's export-branch.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_copies_into_its_pod_only_the_sessions_own_files() {
    let kube = TestCluster::start(&[]);
    let (_home, rt) = probe_runtime_for(&kube).await;
    let session = tempfile::tempdir().expect("session dir");
    std::fs::write(session.path().join("hello.txt"), "hello from the session\n").expect("file");
    std::os::unix::fs::symlink("/etc/shadow", session.path().join("leak")).expect("symlink");
    let dir = session.path().display().to_string();
    let reads = [
        ("wait agent", "passed: seen".to_string()),
        ("copy agent /etc/passwd /tmp/passwd", "denied: /etc/passwd is not one of the session's own paths".into()),
        (&*format!("copy agent {dir}/leak /tmp/leak"), "denied: ".to_string() + &dir + "/leak is not one of"),
        (&*format!("copy agent {dir} /tmp/in"), "passed: copied".into()),
        ("exec agent cat /tmp/in/hello.txt", "passed: exit Some(0): hello from the session".into()),
        ("exec agent readlink /tmp/in/leak", "passed: exit Some(0): /etc/shadow".into()),
        ("exec agent false", "passed: exit Some(1)".into()),
        ("copy agent branch /tmp/w", "failed: this host cannot send sessions' branches".into()),
        ("copy agent /tmp /../x", "denied: the target".into()),
        ("out agent /tmp/w", "denied: copy-out works only during a session's export-branch".into()),
        ("tunnel theirs 7070", "failed: pod theirs (of this component) does not exist".into()),
        ("tunnel agent 7070", "failed: this host has no sessions' proxies".into()),
        ("door", "failed: this host has no sessions' proxies".into()),
        ("copy agent door /tmp/door", "failed: this host has no sessions' proxies".into()),
        ("watch theirs", "failed: pod theirs (of this component) does not exist".into()),
        ("watch agent", "failed: this host cannot follow sessions' health".into()),
        // As kubectl's discovery sees it (the mock: no agent-sandbox).
        ("serves Sandbox", format!("passed: {}", kube.has_agent_sandbox())),
        ("serves Pod", "passed: true".into()),
    ];
    let spec = probe_spec(&[claim("work", |_| {}).to_string(), pod("agent", mount("work")).to_string()], &reads);
    let mut backend = rt.backend("kube-probe").await.expect("instance");
    backend.serve_session("probe", &[session.path().to_path_buf()]);
    let report = backend.create(&spec).await.expect_err("the probe fails with its report").to_string();
    expect_reads(&report, &reads);

    // copy-out, during the session's export-branch: still only from a pod of
    // its own, and only into the session's branch.
    let reads = [
        ("out agent session/workspace", "denied: the repository"),
        ("out theirs /tmp/w", "failed: pod theirs (of this component) does not exist"),
        ("out agent /tmp/w", "failed: this host cannot take sessions' branches"),
    ];
    let report =
        backend.export_branch(&read_lines(&reads)).await.expect_err("the probe fails with its report").to_string();
    expect_reads(&report, &reads);
}

/// The door key the test's host gives the session it serves.
const DOOR_KEY: &str = "d00r-key-of-the-probe-session";

/// The session's proxy as a test sees it: a unix socket whose connections
/// are read line by line.
struct Proxy {
    socket: std::path::PathBuf,
    /// How often the host said the session's resource changed.
    told: std::sync::atomic::AtomicUsize,
}

impl Proxy {
    fn at(socket: std::path::PathBuf) -> std::sync::Arc<Proxy> {
        std::sync::Arc::new(Proxy { socket, told: Default::default() })
    }

    fn told(&self) -> usize {
        self.told.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl clauderon_runtime::SessionSupport for Proxy {
    fn bundle<'a>(
        &'a self,
        _: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<clauderon_runtime::BranchBundle, String>> + Send + 'a>> {
        Box::pin(async { Err("no branches here".to_string()) })
    }
    fn branch<'a>(
        &'a self,
        _: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<clauderon_runtime::SessionBranch, String>> + Send + 'a>> {
        Box::pin(async { Err("no branches here".to_string()) })
    }
    fn receive<'a>(
        &'a self,
        _: &'a str,
        _: clauderon_runtime::Incoming,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async { Err("no branches here".to_string()) })
    }
    fn door<'a>(
        &'a self,
        session_id: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<clauderon_runtime::SessionDoor>, String>> + Send + 'a>>
    {
        Box::pin(async move {
            assert_eq!(session_id, "probe", "the door is the session being served's");
            let file = format!("clauderon-door/1 {session_id} {DOOR_KEY}\n-----BEGIN CERTIFICATE-----\n");
            Ok(Some(clauderon_runtime::SessionDoor { address: "192.0.2.1:7443".into(), file }))
        })
    }
    fn proxy_socket<'a>(
        &'a self,
        session_id: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<std::path::PathBuf, String>> + Send + 'a>> {
        Box::pin(async move {
            assert_eq!(session_id, "probe", "the tunnel is for the session being served");
            Ok(self.socket.clone())
        })
    }
    fn resource_changed<'a>(&'a self, session_id: &'a str) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        assert_eq!(session_id, "probe", "the watch is for the session being served");
        self.told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {})
    }
}

/// A pod named `agent` whose port 7070 says `word` on the first connection
/// (`every`: on each) and then holds it open, as the relay would once the
/// agent speaks.
fn speaking_pod(word: &str, every: bool) -> Value {
    let server = "import socket, sys\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('127.0.0.1', 7070)); s.listen(64); said = False; held = []\n\
        while True:\n    c, _ = s.accept(); held.append(c)\n    \
        if sys.argv[2] == 'every' or not said:\n        c.sendall(sys.argv[1].encode() + b'\\n'); said = True\n";
    pod("agent", |p| {
        p["spec"]["containers"][0]["command"] =
            json!(["python3", "-c", server, word, if every { "every" } else { "once" }]);
    })
}

/// The tunnel carries what the pod says to the session's proxy socket and
/// nowhere else; when the pod is replaced by another of the same name (one
/// labelled as the component's, as a component or anyone with access to the
/// namespace could make), the new pod gets nothing through it, and the
/// session's health watch, which told of the deletion, says nothing of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_tunnel_leads_only_to_its_sessions_proxy_and_only_from_its_own_pod() {
    use tokio::io::AsyncBufReadExt;
    let kube = TestCluster::start(&[]);
    let (home, rt) = probe_runtime_for(&kube).await;
    let socket = home.path().join("proxy.sock");
    let listener = tokio::net::UnixListener::bind(&socket).expect("the session's proxy socket");
    let proxy = Proxy::at(socket);
    rt.set_session_support(proxy.clone());
    let (lines, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(conn).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = lines.send(line);
                }
            });
        }
    });

    let reads = [
        ("wait agent", "passed: seen"),
        ("tunnel agent 7070", "passed: open"),
        ("tunnel theirs 7070", "failed: pod theirs (of this component) does not exist"),
        ("watch agent", "passed: watching"),
        // The door is the served session's alone, into its own pods alone.
        ("door", "passed: 192.0.2.1:7443"),
        ("copy theirs door /tmp/door", "failed: pod theirs (of this component) does not exist"),
        ("copy agent door /tmp/door", "passed: copied"),
        ("exec agent stat -c %a /tmp/door", "passed: exit Some(0): 400"),
        (
            "exec agent head -n 1 /tmp/door",
            "passed: exit Some(0): clauderon-door/1 probe d00r-key-of-the-probe-session",
        ),
    ];
    let spec = probe_spec(&[speaking_pod("from-the-sessions-pod", false).to_string()], &reads);
    let mut backend = rt.backend("kube-probe").await.expect("instance");
    backend.serve_session("probe", &[]);
    let report = backend.create(&spec).await.expect_err("the probe fails with its report").to_string();
    expect_reads(&report, &reads);
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), heard.recv()).await;
    assert_eq!(first.expect("the pod's words reach the proxy").as_deref(), Some("from-the-sessions-pod"));

    // Another pod under the same name, labelled as the component's: it
    // speaks on every connection, and would be heard if the tunnel followed
    // the name.
    let old_uid = kube.object(&["pod", "agent"])["metadata"]["uid"].clone();
    eventually(10, "the watch telling the pod's state", || (proxy.told() > 0).then_some(()));
    let before = proxy.told();
    kube.ok(&["delete", "pod", "agent"]);
    let mut impostor = speaking_pod("from-a-pod-of-the-same-name", true);
    impostor["metadata"]["labels"] = json!({"dev.clauderon.component": "kube-probe"});
    kube.apply("impostor.json", &impostor);
    kube.ok(&["wait", "--for=condition=Ready", "pod/agent", "--timeout=60s"]);
    assert_ne!(kube.object(&["pod", "agent"])["metadata"]["uid"], old_uid, "a new pod");
    let check = "import socket; c = socket.create_connection(('127.0.0.1', 7070)); print(c.recv(100).decode().strip())";
    eventually(20, "the new pod listening", || {
        let out = kube.kubectl(&["exec", "agent", "--", "python3", "-c", check]);
        String::from_utf8_lossy(&out.stdout).contains("from-a-pod-of-the-same-name").then_some(())
    });
    let gone = proxy.told();
    assert!(gone > before, "the watch told of the pod's deletion");
    // The tunnel's retries (at most 5 s apart) would have reached it by now.
    let later = tokio::time::timeout(std::time::Duration::from_secs(8), heard.recv()).await;
    assert!(later.is_err(), "the tunnel carried another pod's connection: {later:?}");
    assert_eq!(proxy.told(), gone, "the watch followed another pod of the same name");
}

/// A session's tunnel keeps asking the cluster (is the pod still the one,
/// a new port-forward) long after `open-tunnel` returned, where nobody sees
/// the error but the daemon's log. Here the cluster's login starts failing
/// while the tunnel retries: the exec plugin handed out short-lived tokens
/// (kube-rs runs it again for every request when one expires within a
/// minute), and now prints the credential and fails. The log says what
/// failed, down to debug, and never holds the credential.
#[tokio::test(flavor = "multi_thread")]
async fn a_tunnels_retries_never_log_the_clusters_credential() {
    const CANARY: &str = "canary-kube-token-tunnel-8c41d7";
    let log = capture_log();
    let kube = TestCluster::mock(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let failing = dir.path().join("failing");
    let plugin = dir.path().join("credential-plugin");
    let credential = |token: &str, expires: &str| {
        format!(
            r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{token}"{expires}}}}}"#
        )
    };
    script(
        &plugin,
        &format!(
            "#!/bin/sh\nif [ -e {failing} ]; then\n  echo '{}'\n  echo {CANARY} >&2\n  exit 1\nfi\n\
             echo '{}'\n",
            credential(CANARY, ""),
            credential("short-lived", r#","expirationTimestamp":"'$(date -u -d '+20 sec' +%Y-%m-%dT%H:%M:%SZ)'""#),
            failing = failing.display(),
        ),
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, format!("{}{}", cluster(&format!("http://{}", kube.addr())), exec_user(&plugin)))
        .expect("kubeconfig");
    let (home, rt) = probe_runtime(kubeconfig).await;
    let socket = home.path().join("proxy.sock");
    let _listener = tokio::net::UnixListener::bind(&socket).expect("the session's proxy socket");
    rt.set_session_support(Proxy::at(socket));

    // Nothing listens on the tunnel port in this pod: every port-forward
    // fails, and the tunnel keeps trying.
    let reads = [("wait agent", "passed: seen"), ("tunnel agent 7070", "passed: open")];
    let spec = probe_spec(&[pod("agent", |_| {}).to_string()], &reads);
    let mut backend = rt.backend("kube-probe").await.expect("instance");
    backend.serve_session("probe", &[]);
    let report = backend.create(&spec).await.expect_err("the probe fails with its report").to_string();
    expect_reads(&report, &reads);

    std::fs::write(&failing, "").expect("the login fails from now on");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !log.text().contains("tunnel into pod agent: reading it") {
        assert!(tokio::time::Instant::now() < deadline, "the tunnel never retried: {}", log.text());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = log.text();
    assert!(log.contains("exec credential plugin"), "the daemon's log says what failed: {log}");
    assert!(!log.contains(CANARY), "the daemon's log holds the cluster's credential: {log}");
}
