//! The local Kubernetes API server the Kubernetes backend's tests run
//! against (`clauderon-mock-kube`), checked with the real `kubectl`: if
//! kubectl can apply, get, describe and delete through it and reads its
//! errors as a cluster's, it speaks the API's wire format.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

/// A running `clauderon-mock-kube` (killed when dropped).
struct MockKube {
    dir: tempfile::TempDir,
    child: Child,
}

impl MockKube {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(env!("CARGO_BIN_EXE_clauderon-mock-kube"))
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("start clauderon-mock-kube");
        let addr = dir.path().join("addr");
        clauderon_tests::eventually(10, "the mock API server", || std::fs::read_to_string(&addr).ok());
        Self { dir, child }
    }

    /// Run `kubectl ARGS` against the server (with a discovery cache of its
    /// own, so no other run's answers are reused).
    fn kubectl(&self, args: &[&str]) -> Output {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .output()
            .expect("kubectl must be on PATH: it checks the mock API server");
        eprintln!(
            "$ kubectl {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `kubectl ARGS`, which must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl ARGS`, which must fail; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(!out.status.success(), "kubectl {} should have failed", args.join(" "));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl apply -f` of `manifest`, written to a file named `name`.
    fn apply(&self, name: &str, manifest: &Value) -> String {
        let file = self.dir.path().join(name);
        write_json(&file, manifest);
        self.ok(&["apply", "-f", &file.to_string_lossy()])
    }
}

impl Drop for MockKube {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write manifest");
}

fn pod(name: &str, namespace: &str, session: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "clauderon", "clauderon.dev/session": session}},
        "spec": {"containers": [{"name": "agent", "image": "clauderon-session:latest", "command": ["sleep", "infinity"]}]}
    })
}

#[test]
fn kubectl_applies_gets_describes_and_deletes_through_the_mock_and_reads_its_errors() {
    let kube = MockKube::start();

    // Create, then find by label.
    assert_eq!(kube.apply("p1.json", &pod("p1", "default", "s1")).trim(), "pod/p1 created");
    assert_eq!(kube.ok(&["get", "pods", "-l", "clauderon.dev/session=s1", "-o", "name"]).trim(), "pod/p1");
    assert_eq!(kube.ok(&["get", "pods", "-l", "clauderon.dev/session in (s2,s3)", "-o", "name"]).trim(), "");
    let stored: Value = serde_json::from_str(&kube.ok(&["get", "pod", "p1", "-o", "json"])).expect("a pod as JSON");
    let uid = stored["metadata"]["uid"].as_str().expect("a uid").to_string();
    let rv: u64 =
        stored["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).expect("a resourceVersion");
    assert_eq!(stored["status"]["phase"], "Pending");
    assert_eq!(stored["metadata"]["namespace"], "default");

    // Apply a change: the same object, a new version.
    let mut changed = pod("p1", "default", "s1");
    changed["metadata"]["labels"]["clauderon.dev/state"] = json!("stopped");
    assert_eq!(kube.apply("p1.json", &changed).trim(), "pod/p1 configured");
    let stored: Value = serde_json::from_str(&kube.ok(&["get", "pod", "p1", "-o", "json"])).expect("json");
    assert_eq!(stored["metadata"]["labels"]["clauderon.dev/state"], "stopped");
    assert_eq!(stored["metadata"]["uid"], uid.as_str(), "the same object");
    let rv2: u64 = stored["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).expect("rv");
    assert!(rv2 > rv, "a new resourceVersion: {rv} then {rv2}");

    // describe finds the pod's events by field selector (involvedObject.*).
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "p1.pulling", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default", "uid": uid, "apiVersion": "v1"},
        "reason": "Pulling", "message": "Pulling image \"clauderon-session:latest\"", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1
    });
    kube.apply("event.json", &event);
    let other = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "p2.failed", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p2", "namespace": "default", "uid": "another", "apiVersion": "v1"},
        "reason": "Failed", "message": "an event of another pod", "type": "Warning", "count": 1
    });
    kube.apply("other-event.json", &other);
    let described = kube.ok(&["describe", "pod", "p1"]);
    assert!(described.contains("p1") && described.contains("clauderon.dev/session=s1"), "{described}");
    assert!(described.contains("Pulling image \"clauderon-session:latest\""), "its event: {described}");
    assert!(!described.contains("another pod"), "only its own events: {described}");

    // The API's errors, as kubectl reads them.
    let file = kube.dir.path().join("p1.json");
    let exists = kube.fails(&["create", "-f", &file.to_string_lossy()]);
    assert!(exists.contains("AlreadyExists"), "{exists}");
    write_json(&file, &pod("p1", "elsewhere", "s1"));
    let no_namespace = kube.fails(&["create", "-f", &file.to_string_lossy()]);
    assert!(no_namespace.contains("NotFound") && no_namespace.contains("elsewhere"), "{no_namespace}");
    write_json(&file, &pod("Bad_Name", "default", "s1"));
    let invalid = kube.fails(&["create", "-f", &file.to_string_lossy()]);
    assert!(invalid.contains("is invalid") && invalid.contains("metadata.name"), "{invalid}");

    // Namespaces, another kind's group, a list across namespaces.
    // kubectl's generators (`create namespace`) send protobuf, which the mock does not speak, and says so.
    assert!(kube.fails(&["create", "namespace", "elsewhere"]).contains("(UnsupportedMediaType)"));
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}});
    assert_eq!(kube.apply("ns.json", &namespace).trim(), "namespace/elsewhere created");
    kube.apply("p2.json", &pod("p2", "elsewhere", "s2"));
    let all = kube.ok(&[
        "get",
        "pods",
        "--all-namespaces",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
    ]);
    assert_eq!(all.split_whitespace().collect::<Vec<_>>(), ["default/p1", "elsewhere/p2"]);
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "s1-egress", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"clauderon.dev/session": "s1"}}, "policyTypes": ["Egress"], "egress": []}
    });
    assert_eq!(kube.apply("policy.json", &policy).trim(), "networkpolicy.networking.k8s.io/s1-egress created");

    // Delete: gone, and said so the API's way.
    assert_eq!(kube.ok(&["delete", "pod", "p1"]).trim(), "pod \"p1\" deleted");
    let gone = kube.fails(&["get", "pod", "p1"]);
    assert!(gone.contains("(NotFound)") && gone.contains("pods \"p1\" not found"), "{gone}");
    assert_eq!(kube.ok(&["delete", "namespace", "elsewhere"]).trim(), "namespace \"elsewhere\" deleted");
    assert!(
        kube.fails(&["get", "pod", "p2", "-n", "elsewhere"]).contains("NotFound"),
        "a namespace's objects go with it"
    );
}
