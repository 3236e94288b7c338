//! [`TestCluster`]: the Kubernetes cluster a test runs against, and
//! `kubectl` pointed at it. Normally `clauderon-mock-kube`, the local API
//! server whose pods run in Docker. With `CLAUDERON_TEST_KUBECONFIG` set,
//! the backend's tests ([`TestCluster::start`]) run against that cluster
//! instead, each in a namespace of its own (`clauderon-test-…`, made for it
//! and deleted after), with the image `CLAUDERON_TEST_IMAGE` (one the
//! cluster can pull, with `sh`, `tar` and `git`; default
//! `clauderon/agent:latest`). Tests of the mock itself, and those that need
//! what only the mock can do (a kubeconfig written around its address),
//! always use the mock ([`TestCluster::mock`]). Tests of the proxy's direct
//! door need the cluster's pods to reach this machine: the mock's
//! `--pods-reach-host`, or on a real cluster `CLAUDERON_TEST_HOST_IP`, an
//! address of this machine its pods can reach ([`TestCluster::host_ip`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The variable naming a real cluster's kubeconfig for the tests.
pub const KUBECONFIG_VAR: &str = "CLAUDERON_TEST_KUBECONFIG";

/// A cluster for a test: a running `clauderon-mock-kube` (stopped with
/// SIGTERM when dropped, so it removes what it ran), or a namespace of a
/// real cluster (deleted when dropped).
pub struct TestCluster {
    /// Scratch space: the mock's kubeconfig and address, tests' manifests.
    pub dir: tempfile::TempDir,
    /// The mock; none for a real cluster.
    child: Option<Child>,
    kubeconfig: PathBuf,
    namespace: String,
}

impl TestCluster {
    /// The cluster the backend's tests run against: the mock, started with
    /// `mock_args` (e.g. `--agent-sandbox`), or with
    /// `CLAUDERON_TEST_KUBECONFIG`, a new namespace of that cluster.
    pub fn start(mock_args: &[&str]) -> Self {
        let Some(kubeconfig) = std::env::var_os(KUBECONFIG_VAR).filter(|v| !v.is_empty()) else {
            return Self::mock(mock_args);
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let namespace = format!("clauderon-test-{}", crate::unique("ns").to_lowercase().replace('_', "-"));
        let cluster = Self { dir, child: None, kubeconfig: kubeconfig.into(), namespace: namespace.clone() };
        // `kubectl create namespace` would do; apply works on the mock too.
        cluster.apply_cluster_wide(
            "namespace.json",
            &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        );
        if mock_args.contains(&"--agent-sandbox") {
            assert!(
                cluster.has_agent_sandbox(),
                "this test needs agent-sandbox installed in the cluster of {KUBECONFIG_VAR} \
                 (github.com/kubernetes-sigs/agent-sandbox)"
            );
        }
        cluster
    }

    /// `clauderon-mock-kube`, always (started with `args`).
    pub fn mock(args: &[&str]) -> Self {
        let bin = crate::clauderon_bin().with_file_name("clauderon-mock-kube");
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(bin)
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start clauderon-mock-kube");
        let addr = dir.path().join("addr");
        crate::eventually(10, "the mock API server", || std::fs::read_to_string(&addr).ok());
        let kubeconfig = dir.path().join("kubeconfig");
        Self { dir, child: Some(child), kubeconfig, namespace: "default".into() }
    }

    /// The image the tests' own pods run: `CLAUDERON_TEST_IMAGE` against a
    /// real cluster, else the one on this machine the mock runs.
    pub fn agent_image() -> String {
        let real = std::env::var_os(KUBECONFIG_VAR).is_some_and(|v| !v.is_empty());
        std::env::var("CLAUDERON_TEST_IMAGE").ok().filter(|_| real).unwrap_or_else(|| "clauderon/agent:latest".into())
    }

    /// Whether the cluster serves agent-sandbox's `Sandbox`, as kubectl's discovery sees it.
    pub fn has_agent_sandbox(&self) -> bool {
        let served = self.ok(&["api-resources", "--api-group=agents.x-k8s.io", "-o", "name"]);
        served.lines().any(|l| l.starts_with("sandboxes"))
    }

    /// Whether this is a real cluster (`CLAUDERON_TEST_KUBECONFIG`).
    pub fn is_real(&self) -> bool {
        self.child.is_none()
    }

    /// The namespace the test works in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `[backends.kubernetes]` lines for this cluster: its kubeconfig and
    /// namespace, and on a real one the test image.
    pub fn backend_config(&self) -> String {
        let mut lines = format!("kubeconfig = \"{}\"\nnamespace = \"{}\"\n", self.kubeconfig.display(), self.namespace);
        if self.is_real() {
            lines.push_str(&format!("image = \"{}\"\n", Self::agent_image()));
        }
        lines
    }

    /// An address of this machine the cluster's pods can reach: the mock's
    /// network's end here (started with `--pods-reach-host`), or a real
    /// cluster's `CLAUDERON_TEST_HOST_IP`.
    pub fn host_ip(&self) -> String {
        if self.is_real() {
            return std::env::var("CLAUDERON_TEST_HOST_IP").ok().filter(|ip| !ip.is_empty()).unwrap_or_else(|| {
                panic!("set CLAUDERON_TEST_HOST_IP to an address of this machine the cluster's pods can reach")
            });
        }
        std::fs::read_to_string(self.dir.path().join("host-ip"))
            .expect("host-ip: start the mock with --pods-reach-host")
    }

    /// Its kubeconfig (the mock's: context `mock`, namespace `default`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.kubeconfig.clone()
    }

    /// The mock's address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> String {
        assert!(!self.is_real(), "only the mock has an address of its own");
        std::fs::read_to_string(self.dir.path().join("addr")).expect("addr")
    }

    /// `curl` a path of the API (at most `secs` seconds): the body.
    pub fn curl(&self, path: &str, secs: u32) -> String {
        let out = Command::new("curl")
            .args(["-sN", "--max-time", &secs.to_string(), &format!("http://{}{path}", self.addr())])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ... -o json` of one object.
    pub fn object(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend(args);
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("an object as JSON")
    }

    /// Stop the mock as a test run does (SIGTERM), and wait until it has;
    /// delete a real cluster's test namespace.
    pub fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            let _ = self.kubectl_in(None, &["delete", "namespace", &self.namespace.clone(), "--wait=false"]);
            return;
        };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        for _ in 0..300 {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Run `kubectl ARGS` against the cluster, in the test's namespace (the
    /// mock's kubeconfig names it already; a real cluster's is given), with
    /// a discovery cache of its own, so no other run's answers are reused.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_in(self.is_real().then_some(self.namespace.as_str()), args)
    }

    fn kubectl_in(&self, namespace: Option<&str>, args: &[&str]) -> Output {
        let mut command = Command::new("kubectl");
        command.arg("--kubeconfig").arg(&self.kubeconfig).arg("--cache-dir").arg(self.dir.path().join("cache"));
        if let Some(namespace) = namespace {
            command.args(["--namespace", namespace]);
        }
        let out = command.args(args).output().expect("kubectl must be on PATH: the tests check the cluster with it");
        // Shown when a test fails, cut short: a failing test's own message
        // must not drown under the objects it read on the way.
        eprintln!("$ kubectl {}\n{}{}", args.join(" "), shortened(&out.stdout), shortened(&out.stderr));
        out
    }

    /// Condition `kind` (`Ready`, `Suspended`…) of the object `args` names
    /// (e.g. `["sandbox", NAME]`) as `STATUS REASON`; empty if it has none.
    pub fn condition(&self, args: &[&str], kind: &str) -> String {
        let object = self.object(args);
        let found =
            object["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == kind).cloned();
        found
            .map(|c| format!("{} {}", c["status"].as_str().unwrap_or(""), c["reason"].as_str().unwrap_or("")))
            .unwrap_or_default()
    }

    /// `kubectl ARGS`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl ARGS`, which must fail; its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(!out.status.success(), "kubectl {} should have failed", args.join(" "));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl apply -f` of `manifest`, written to a file named `name`.
    pub fn apply(&self, name: &str, manifest: &Value) -> String {
        let file = self.dir.path().join(name);
        write_json(&file, manifest);
        self.ok(&["apply", "-f", &file.to_string_lossy()])
    }

    /// `kubectl apply -f` of a cluster-wide object (a namespace).
    fn apply_cluster_wide(&self, name: &str, manifest: &Value) {
        let file = self.dir.path().join(name);
        write_json(&file, manifest);
        let out = self.kubectl_in(None, &["apply", "-f", &file.to_string_lossy()]);
        assert!(out.status.success(), "kubectl apply {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // The mock: SIGTERM, so it removes the containers and volumes it made.
        self.stop();
    }
}

/// Write `value` as JSON to `path`.
pub fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write manifest");
}

/// `bytes` as text for a test's log: at most 300 characters, then how much
/// more there was.
fn shortened(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}… ({} bytes in all)\n", &text[..cut], text.len()),
        None => text.into_owned(),
    }
}
