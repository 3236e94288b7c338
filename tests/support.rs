//! Helpers for the end-to-end tests: find the `clauderon` binary and the
//! built components, and run commands against a temporary `CLAUDERON_HOME`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `clauderon` binary: `CLAUDERON_BIN`, or the one cargo built next to this test.
pub fn clauderon_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CLAUDERON_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/clauderon
    let bin = exe.parent().and_then(Path::parent).map(|d| d.join("clauderon")).expect("target dir");
    assert!(bin.exists(), "{} not found: run the tests with `just test` (it builds the binary)", bin.display());
    bin
}

/// A built component under `CLAUDERON_TEST_COMPONENTS/<sub>/<id>.wasm`.
pub fn test_component(sub: &str, id: &str) -> PathBuf {
    let base = std::env::var_os("CLAUDERON_TEST_COMPONENTS")
        .expect("CLAUDERON_TEST_COMPONENTS is not set: run the tests with `just test`");
    let path = PathBuf::from(base).join(sub).join(format!("{id}.wasm"));
    assert!(path.exists(), "{} not found: run `just components`", path.display());
    path
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// A temporary clauderon home and a way to run the CLI in it.
pub struct Home {
    pub dir: tempfile::TempDir,
}

/// What a command printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Assert it succeeded, showing its output if not.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl Home {
    /// A new, empty home.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// `clauderon ARGS` with `CLAUDERON_HOME` set to this home and stdin closed.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).stdin(Stdio::null()).output().map(Run::from).expect("run clauderon")
    }

    /// The command, for tests that need to adjust it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(clauderon_bin());
        cmd.args(args).env("CLAUDERON_HOME", self.dir.path()).env_remove("CLAUDERON_LOG");
        cmd
    }

    /// A path inside the home.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}
