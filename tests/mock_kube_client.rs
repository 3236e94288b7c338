//! [`MockKube`]: a running `clauderon-mock-kube`, the local Kubernetes API
//! server the Kubernetes tests run against, and `kubectl` pointed at it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// A running `clauderon-mock-kube` (stopped with SIGTERM when dropped, so it removes what it ran).
pub struct MockKube {
    /// Where its kubeconfig and address are (and tests' manifests go).
    pub dir: tempfile::TempDir,
    child: Child,
}

impl MockKube {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
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
        Self { dir, child }
    }

    /// Its kubeconfig (context `mock`, namespace `default`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn addr(&self) -> String {
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

    /// Stop it as a test run does (SIGTERM), and wait until it has.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..300 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Run `kubectl ARGS` against the server (with a discovery cache of its
    /// own, so no other run's answers are reused).
    pub fn kubectl(&self, args: &[&str]) -> Output {
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
}

impl Drop for MockKube {
    fn drop(&mut self) {
        // SIGTERM, so it removes the containers and volumes it made.
        self.stop();
    }
}

/// Write `value` as JSON to `path`.
pub fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write manifest");
}
