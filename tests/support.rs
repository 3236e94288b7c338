//! Helpers for the end-to-end tests: find the `clauderon` binary and the
//! built components, and run commands against a temporary `CLAUDERON_HOME`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod in_process;
mod test_cluster;
pub use in_process::InProcess;
pub use test_cluster::{TestCluster, write_json};

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

    /// A new, empty home under `base` (e.g. outside /tmp, which sandboxed
    /// sessions never see, so that what hides the home is the sandbox's rule).
    pub fn new_in(base: &Path) -> Self {
        std::fs::create_dir_all(base).expect("base dir");
        Self { dir: tempfile::tempdir_in(base).expect("tempdir") }
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

    /// Stop the daemon a client command started in the background (by the
    /// pid it wrote), as `home.daemon` children are stopped when dropped.
    pub fn stop_started_daemon(&self) {
        let pid = std::fs::read_to_string(self.path("daemon.pid")).expect("the daemon writes its pid");
        let _ = Command::new("kill").arg(pid.trim()).status();
    }

    /// A path inside the home.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Install the built test component `sub/id` (see [`test_component`]) as
    /// a user component, approved for its bytes with `grants` (capabilities
    /// as TOML, e.g. `process = ["tmux"]`), as `plugins install` would. The
    /// daemon loads it at its next start.
    pub fn install_component(&self, sub: &str, id: &str, grants: &str) {
        std::fs::create_dir_all(self.path("components")).expect("components dir");
        let bytes = std::fs::read(test_component(sub, id)).expect("read component");
        std::fs::write(self.path(&format!("components/{id}.wasm")), &bytes).expect("install component");
        let caps = toml::from_str(grants).expect("grants as capabilities");
        let approval = clauderon_runtime::Approval::new(id, &bytes, caps).to_toml().expect("approval");
        std::fs::write(self.path(&format!("components/{id}.grants.toml")), approval).expect("grants");
    }
}

/// An API call with the token `curl`ed to the daemon on `port`: (HTTP
/// status, body as JSON or string).
pub fn api_call(port: u16, token: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    curl_api(port, method, path, body, &["-H", &format!("authorization: Bearer {token}")])
}

/// A request `curl`ed to the daemon's API on `port` with these extra curl
/// arguments (no token unless they carry one): (status, body as JSON or string).
pub fn curl_api(port: u16, method: &str, path: &str, body: Option<&str>, extra: &[&str]) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    cmd.args(extra);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}{path}"));
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let value = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()));
    (code.trim().parse().unwrap_or(0), value)
}

/// One API call with curl, usable from any thread: its HTTP status (0 when
/// no answer came, e.g. the daemon was killed), giving up after `max_secs`.
pub fn api_status(port: u16, token: &str, method: &str, path: &str, body: Option<&str>, max_secs: u32) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", "-X", method]);
    cmd.args(["--max-time", &max_secs.to_string(), "-H", &format!("authorization: Bearer {token}")]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}{path}"));
    let out = cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    out.parse().unwrap_or(0)
}

impl Home {
    /// A home whose config uses a free port for the API; returns the port.
    pub fn with_free_port() -> (Self, u16) {
        Self::new().free_port()
    }

    /// This home, its config naming a free port for the API; returns the port.
    pub fn free_port(self) -> (Self, u16) {
        let home = self;
        let port = free_port();
        std::fs::write(home.path("config.toml"), format!("[daemon]\nhttp_port = {port}\n")).expect("config");
        (home, port)
    }

    /// Add `text` at the end of this home's `config.toml`.
    pub fn append_config(&self, text: &str) {
        let config = std::fs::read_to_string(self.path("config.toml")).expect("config");
        std::fs::write(self.path("config.toml"), format!("{config}{text}")).expect("config");
    }

    /// Start `clauderon daemon` in the foreground of a child process and wait until it answers.
    pub fn daemon(&self, port: u16) -> Daemon {
        self.daemon_with_env(port, &[])
    }

    /// The same, with extra environment variables for the daemon.
    pub fn daemon_with_env(&self, port: u16, env: &[(&str, &str)]) -> Daemon {
        self.daemon_via(port, env, &[])
    }

    /// The same, started through `wrapper` (a command line that ends by
    /// running its first argument, the `clauderon` binary, with `daemon`).
    pub fn daemon_via(&self, port: u16, env: &[(&str, &str)], wrapper: &[&str]) -> Daemon {
        let daemon = self.daemon_spawned(port, env, wrapper);
        daemon.wait_ready(true);
        daemon
    }

    /// A daemon whose API answers, its start-up reconcile (in the
    /// background) perhaps still running.
    pub fn daemon_answering(&self, port: u16) -> Daemon {
        let daemon = self.daemon_spawned(port, &[], &[]);
        daemon.wait_ready(false);
        daemon
    }

    fn daemon_spawned(&self, port: u16, env: &[(&str, &str)], wrapper: &[&str]) -> Daemon {
        let log = std::fs::File::create(self.path("daemon-test.log")).expect("log");
        let mut command = match wrapper.split_first() {
            None => self.command(&["daemon"]),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(clauderon_bin()).env("CLAUDERON_HOME", self.dir.path()).env_remove("CLAUDERON_LOG");
                c
            }
        };
        let child = command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start daemon");
        // The token is made before the API's port opens.
        let mut daemon = Daemon { child, port, log: self.path("daemon-test.log"), token: String::new() };
        daemon.wait_ready(false);
        daemon.token = self.token();
        daemon
    }

    /// The API token: the configured one, else the one the daemon made.
    pub fn token(&self) -> String {
        let config = std::fs::read_to_string(self.path("config.toml")).unwrap_or_default();
        let configured = config.lines().find_map(|l| {
            let v = l.trim().strip_prefix("token")?.trim_start().strip_prefix('=')?;
            Some(v.trim().trim_matches('"').to_string())
        });
        configured.unwrap_or_else(|| {
            std::fs::read_to_string(self.path("api-token")).expect("the daemon made its API token").trim().to_string()
        })
    }
}

/// A running daemon, killed when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub port: u16,
    pub log: PathBuf,
    /// The API token every call carries.
    pub token: String,
}

impl Daemon {
    /// Wait until the API answers and (with `reconciled`) its start-up
    /// reconcile, which runs in the background, has finished, so a test sees
    /// every session as reconciled.
    fn wait_ready(&self, reconciled: bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let (code, health) = self.curl("GET", "/api/health", None, &[]);
            if code == 200 && (!reconciled || health["reconciled"] == true) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "the daemon did not start (or its start-up reconcile did not finish); log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// `curl` a request with the API token: (HTTP status, body as JSON or string).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        api_call(self.port, &self.token, method, path, body)
    }

    /// `curl` a request with these extra curl arguments (and no token unless
    /// they carry one): (HTTP status, body as JSON or string).
    pub fn curl(&self, method: &str, path: &str, body: Option<&str>, extra: &[&str]) -> (u16, serde_json::Value) {
        curl_api(self.port, method, path, body, extra)
    }

    /// SIGKILL the daemon.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new git repository with one commit, in a temp dir.
pub fn git_repo() -> tempfile::TempDir {
    git_repo_at(tempfile::tempdir().expect("tempdir"))
}

/// The same, under `base`.
pub fn git_repo_in(base: &Path) -> tempfile::TempDir {
    std::fs::create_dir_all(base).expect("base dir");
    git_repo_at(tempfile::tempdir_in(base).expect("tempdir"))
}

fn git_repo_at(dir: tempfile::TempDir) -> tempfile::TempDir {
    let git = |args: &[&str]| {
        let ok = Command::new("git").arg("-C").arg(dir.path()).args(args).status().expect("git").success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.email", "t@example.invalid"]);
    git(&["config", "user.name", "t"]);
    std::fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
    std::fs::write(dir.path().join("sub/README"), "hi\n").expect("write");
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    dir
}

/// Poll `f` until it returns Some, for up to `secs` seconds.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `clauderon-mock-upstream` (killed when dropped): a local TLS
/// server standing in for GitHub, Anthropic, OpenAI, Gemini and the rest.
pub struct Mock {
    pub dir: tempfile::TempDir,
    pub addr: String,
    child: std::process::Child,
}

/// Every host the built-in rules cover, a Grafana host for the config rule,
/// and the hosts the agent CLIs call besides their model APIs (Codex asks
/// chatgpt.com for its model list and retries for seconds when that fails).
pub const MOCK_HOSTS: &[&str] = &[
    "api.github.com",
    "github.com",
    "api.anthropic.com",
    "api.openai.com",
    "chatgpt.com",
    "generativelanguage.googleapis.com",
    "api.pagerduty.com",
    "sentry.io",
    "registry.npmjs.org",
    "auth.docker.io",
    "grafana.example.test",
    "unruled.example.test",
    // A Web Push service (the daemon's [push] services, in tests).
    "push.example.test",
    // Sent to the mock like the others, but on no egress list: a proxy that
    // let a session through to it would show in the mock's log.
    "blocked.example.test",
];

impl Mock {
    /// Start the mock for [`MOCK_HOSTS`]; git repositories are served from `dir/git`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = clauderon_bin().with_file_name("clauderon-mock-upstream");
        let git_root = dir.path().join("git");
        std::fs::create_dir_all(&git_root).expect("git root");
        let child = Command::new(bin)
            .arg("--dir")
            .arg(dir.path())
            .args(["--hosts", &MOCK_HOSTS.join(",")])
            .arg("--git-root")
            .arg(&git_root)
            .stdin(Stdio::null())
            .spawn()
            .expect("start clauderon-mock-upstream");
        let addr_file = dir.path().join("addr");
        let addr = eventually(10, "the mock upstream", || std::fs::read_to_string(&addr_file).ok());
        Self { dir, addr, child }
    }

    /// `[proxy]` config sending every host here (the mock's hosts by name,
    /// any other by `"*"`, so no test reaches a real host: the mock refuses a
    /// name it has no certificate for) and trusting the mock's CA, and `[egress]` allowing `unruled.example.test` (the other mock
    /// hosts are on the built-in list or have rules; `blocked.example.test`
    /// is allowed nowhere), and `[push]` sending Web Push only to the mock's
    /// push service.
    pub fn proxy_config(&self) -> String {
        let mut text = format!(
            "[egress]\nallow = [\"unruled.example.test\"]\n[push]\nservices = [\"push.example.test\"]\n[proxy]\ngrafana_host = \"grafana.example.test\"\nextra_root_certs = [\"{}\"]\n[proxy.upstreams]\n",
            self.dir.path().join("ca.pem").display()
        );
        for host in MOCK_HOSTS.iter().chain(&["*"]) {
            text.push_str(&format!("\"{host}\" = \"{}\"\n", self.addr));
        }
        text
    }

    /// Every Web Push message the mock's push service received: host, path,
    /// headers and the encrypted body (base64).
    pub fn pushes(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("push.jsonl")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Every request the mock received, as JSON.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("requests.jsonl")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The last request the mock received for `host` (with any port) and `path`.
    pub fn last_request_to(&self, host: &str, path: &str) -> serde_json::Value {
        self.requests()
            .into_iter()
            .rev()
            .find(|r| r["host"].as_str().is_some_and(|h| h.starts_with(host)) && r["path"] == path)
            .unwrap_or_else(|| panic!("the mock saw no request to {host}{path}"))
    }

    /// A bare repository `name` served at `https://github.com/<name>`, holding one commit.
    pub fn git_repo(&self, name: &str) -> PathBuf {
        let bare = self.dir.path().join("git").join(name);
        let src = git_repo();
        let ok = Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(src.path())
            .arg(&bare)
            .status()
            .expect("git clone --bare")
            .success();
        assert!(ok, "making the bare repository");
        let ok = Command::new("git")
            .arg("-C")
            .arg(&bare)
            .args(["config", "http.receivepack", "true"])
            .status()
            .expect("git config")
            .success();
        assert!(ok);
        bare
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment a session runs with, as its own `env` printed it.
pub fn read_env_file(path: &Path) -> Vec<(String, String)> {
    let text = eventually(20, "the session's env file", || {
        std::fs::read_to_string(path).ok().filter(|t| t.contains("CLAUDERON_SESSION_ID="))
    });
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `curl ARGS` with exactly a session's environment (so through its proxy):
/// (status, body); status 0 and curl's error when no answer came.
pub fn curl_in(env: &[(String, String)], args: &[&str]) -> (u16, String) {
    let out =
        command_in(env, "curl").args(["-sS", "-o", "-", "-w", "\n%{http_code}"]).args(args).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let code = code.trim().parse().unwrap_or(0);
    if code == 0 {
        return (0, format!("curl failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    (code, body.to_string())
}

/// A session's proxy URL (`http://session:<secret>@host:port`) split into
/// (secret, port).
pub fn split_proxy(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://session:").expect("proxy URL with identity");
    let (secret, hostport) = rest.split_once('@').expect("@");
    (secret.to_string(), hostport.rsplit_once(':').expect("port").1.to_string())
}

/// Standard base64 of `text`.
pub fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A command that runs with exactly `env` (a session's environment).
pub fn command_in(env: &[(String, String)], program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// A session name no other test run uses (zellij session names are global).
pub fn unique(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{:x}", std::process::id(), nanos)
}

/// (daemon variable, canary value, service) — the canary must never leave the daemon.
pub const CANARIES: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "ghp_canaryGITHUB0123456789"),
    ("ANTHROPIC_API_KEY", "sk-ant-canaryANTHROPIC0123"),
    ("OPENAI_API_KEY", "sk-canaryOPENAI0123456789"),
    ("GEMINI_API_KEY", "canaryGEMINI0123456789"),
    ("PAGERDUTY_TOKEN", "canaryPAGERDUTY012345"),
    ("SENTRY_AUTH_TOKEN", "canarySENTRY0123456789"),
    ("NPM_TOKEN", "npm_canaryNPM0123456789"),
    ("DOCKER_HUB_TOKEN", "canaryuser:canaryDOCKER0123"),
    ("GRAFANA_API_KEY", "glsa_canaryGRAFANA0123"),
];

pub fn canary(var: &str) -> &'static str {
    CANARIES.iter().find(|(v, _)| *v == var).map(|(_, c)| *c).expect("canary")
}

/// A daemon with canaries, the mock upstream, a repository and ways to open sessions.
pub struct World {
    pub home: Home,
    pub daemon: Daemon,
    pub mock: Mock,
    pub repo: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        // Zellij sessions outlive the daemon: remove them.
        let (_, list) = self.daemon.http("GET", "/api/sessions", None);
        for s in list.as_array().into_iter().flatten() {
            let id = s["id"].as_str().unwrap_or_default();
            self.daemon.http("DELETE", &format!("/api/sessions/{id}?force=true"), None);
        }
    }
}

impl World {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// The same, with more `config.toml` text.
    pub fn start_with(extra_config: &str) -> Self {
        Self::start_configured("", extra_config)
    }

    /// The same, with more `[proxy]` settings too.
    pub fn start_configured(proxy_settings: &str, extra_config: &str) -> Self {
        Self::start_full(None, proxy_settings, extra_config, &[])
    }

    /// The whole set-up: the home and repository under `base` (default: the
    /// system's temp dir), more `[proxy]` settings, more config, and more
    /// environment for the daemon (besides the canaries).
    pub fn start_full(base: Option<&Path>, proxy_settings: &str, extra_config: &str, env: &[(&str, &str)]) -> Self {
        let (home, port) = base.map(Home::new_in).unwrap_or_default().free_port();
        let mock = Mock::start();
        let proxy = mock.proxy_config().replacen("[proxy]\n", &format!("[proxy]\n{proxy_settings}"), 1);
        home.append_config(&format!("{proxy}\n{extra_config}"));
        let all_env: Vec<(&str, &str)> = CANARIES.iter().copied().chain(env.iter().copied()).collect();
        let daemon = home.daemon_with_env(port, &all_env);
        let repo = match base {
            Some(base) => git_repo_in(base),
            None => git_repo(),
        };
        Self { home, daemon, mock, repo }
    }

    /// Create a zellij session running `script` after writing its env to a
    /// file in its worktree (the sandbox lets it write nowhere else); returns
    /// that environment. The session's name is `name` plus a unique suffix
    /// (read it back from `CLAUDERON_SESSION_NAME`).
    pub fn session(&self, name: &str, mode: &str, script: &str) -> Vec<(String, String)> {
        let name = &unique(name);
        let prompt = format!("env > .session.env; {script}; sleep 600");
        let repo = self.repo.path().to_str().expect("utf-8");
        let created = self
            .home
            .run(&["create", "-r", repo, "-a", "shell", "--name", name, "--access-mode", mode, "-p", &prompt, "--json"])
            .ok()
            .json();
        read_env_file(&PathBuf::from(created["worktree"].as_str().expect("worktree")).join(".session.env"))
    }

    /// Kill the daemon and start it again (same home, same canaries).
    pub fn restart_daemon(&mut self) {
        let port = self.daemon.port;
        let _ = self.daemon.child.kill();
        let _ = self.daemon.child.wait();
        self.daemon = self.home.daemon_with_env(port, CANARIES);
    }

    /// Audit records once the writer has caught up (it gathers records for a
    /// moment before each commit): the same answer twice, 150 ms apart.
    pub fn audit_settled(&self, session: Option<&str>) -> Vec<serde_json::Value> {
        settled(|| audit_page(self.daemon.http("GET", &audit_path(session), None)))
    }

    /// Audit records stored so far (optionally of one session).
    pub fn audit(&self, session: Option<&str>) -> Vec<serde_json::Value> {
        audit_page(self.daemon.http("GET", &audit_path(session), None)).0
    }
}

/// `GET /api/audit` for up to 10,000 records (of one session, when given).
pub fn audit_path(session: Option<&str>) -> String {
    format!("/api/audit?limit=10000{}", session.map(|s| format!("&session={s}")).unwrap_or_default())
}

/// An audit page's records and its `pending` count (asserting a 200).
pub fn audit_page((code, body): (u16, serde_json::Value)) -> (Vec<serde_json::Value>, u64) {
    assert_eq!(code, 200, "{body}");
    (body["records"].as_array().cloned().unwrap_or_default(), body["pending"].as_u64().unwrap_or(0))
}

/// The records `read()` gives once the audit has settled: nothing pending
/// in its writer (which gathers records for a moment before each commit)
/// and the same non-empty answer twice in a row, 150 ms apart — or whatever
/// it gives after 10 s. `read` answers the records and the API's `pending`.
pub fn settled<T>(read: impl Fn() -> (Vec<T>, u64)) -> Vec<T> {
    let (mut last, _) = read();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let (now, pending) = read();
        let still = now.len() == last.len() && !now.is_empty() && pending == 0;
        if still || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// A variable of a session environment.
pub fn value<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("{key} is not set"))
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_symlink() {
            continue;
        }
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// A shell agent's command that exits at once, leaving two processes behind
/// in its sandbox or container: one that asks the proxy for `/after-exit` a
/// second later (as Codex's `notify` hook posts the turn's end after Codex
/// exited) and one that would run for ten minutes.
pub const LEFTOVERS: &str =
    "(sleep 1; curl -sS https://api.github.com/after-exit > after-exit.json) & (sleep 600; echo) & echo exits";

/// After a [`LEFTOVERS`] session's agent exited: the leftover's request went
/// through the proxy and its answer was written into the worktree.
pub fn assert_leftover_request_done(world: &World, session: &serde_json::Value) {
    let worktree = PathBuf::from(session["worktree"].as_str().expect("worktree"));
    eventually(20, "the request a leftover made after the agent exited", || {
        std::fs::read_to_string(worktree.join("after-exit.json")).ok().filter(|t| t.contains("/after-exit"))
    });
    let seen = world.mock.last_request_to("api.github.com", "/after-exit");
    assert_eq!(seen["headers"]["authorization"].as_str(), Some(format!("Bearer {}", canary("GITHUB_TOKEN")).as_str()));
}

/// The command lines and environments of every process of the session.
pub fn session_processes(session_id: &str) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if String::from_utf8_lossy(&environ).contains(session_id) {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).unwrap_or_default()));
            text.push_str(&String::from_utf8_lossy(&environ));
        }
    }
    assert!(!text.is_empty(), "found the session's processes");
    text
}

/// Log every WebSocket event of the daemon to `path` (a node child process).
pub fn websocket_log(daemon: &Daemon, path: &Path) -> std::process::Child {
    let script = format!(
        "const s = new WebSocket('ws://127.0.0.1:{}/api/events?after=0', \
         {{ headers: {{ authorization: 'Bearer {}' }} }}); const fs = require('fs'); \
         s.onmessage = (m) => fs.appendFileSync('{}', m.data + '\\n');",
        daemon.port,
        daemon.token,
        path.display()
    );
    Command::new("node")
        .args(["--experimental-websocket", "-e"])
        .arg(script)
        .env("NO_PROXY", "*")
        .spawn()
        .expect("node")
}

/// The Docker backend's default session image, built from
/// `components/backend-docker/agent.Dockerfile` by `just tools`
/// (`build-image.sh --local-base`: a debootstrap Debian base, since no registry
/// is reachable here). The tests run the agent CLIs installed in it.
pub const DOCKER_SESSION_IMAGE: &str = "clauderon/agent:latest";

/// `[backends.docker]` options for tests: the session image as built (never
/// pulled). Containers have no network at all: their only way out is the
/// proxy's unix socket.
pub fn docker_test_backend() -> String {
    let present = Command::new("docker").args(["image", "inspect", DOCKER_SESSION_IMAGE]).output().expect("docker");
    assert!(
        present.status.success(),
        "{DOCKER_SESSION_IMAGE} is missing: build it with `./justw tools` \
         (or components/backend-docker/build-image.sh --local-base)"
    );
    "[backends.docker]\npull = \"never\"\n".to_string()
}

/// What the mock upstream's models answer.
pub const MOCK_ANSWER: &str = "Hello from the mock upstream";

/// Start `agent` interactively (as a user would; `extra` picks the backend and
/// so on) with a prompt: the agent's own hooks must report waiting-for-input
/// once its first turn is done, and the history must hold the answer.
/// First-run dialogs (onboarding, key approval, folder trust, sign-in) would
/// block the turn, so this also proves none appeared. On failure the session's
/// screen is shown. Returns the session (as `create --json` printed it).
pub fn interactive_turn(world: &World, agent: &str, extra: &[&str]) -> serde_json::Value {
    let created = create_interactive(world, agent, "Say hello", extra);
    let id = created["id"].as_str().expect("id").to_string();
    wait_for_agent_status(world, &id, "waiting-for-input");
    // The transcript may be flushed a moment after the hook fired.
    eventually(20, "the answer in the history", || {
        let (_, history) = world.daemon.http("GET", &format!("/api/sessions/{id}/history"), None);
        history.to_string().contains(MOCK_ANSWER).then_some(())
    });
    // What the agent wrote into the session's config home stays small (Codex's
    // TUI once installed its 700 MB app-server daemon there, per session).
    let bytes: u64 = walk(&world.home.path(&format!("sessions/{id}")))
        .iter()
        .filter_map(|f| std::fs::symlink_metadata(f).ok())
        .map(|m| m.len())
        .sum();
    assert!(bytes < 32 << 20, "{agent} wrote {} MB into the session's config home", bytes >> 20);
    created
}

/// Create an interactive `agent` session with `prompt`; the session as JSON.
pub fn create_interactive(world: &World, agent: &str, prompt: &str, extra: &[&str]) -> serde_json::Value {
    let name = unique(&format!("{agent}-i"));
    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let mut args = vec!["create", "-r", &repo, "-a", agent, "--name", &name, "-p", prompt, "--json"];
    args.extend_from_slice(extra);
    world.home.run(&args).ok().json()
}

/// Wait (60 s at most) until the session's agent status is `status`; on
/// timeout, fail showing the session's screen.
pub fn wait_for_agent_status(world: &World, id: &str, status: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, s) = world.daemon.http("GET", &format!("/api/sessions/{id}"), None);
        if s["agent_status"] == status {
            return;
        }
        if std::time::Instant::now() > deadline {
            let (_, screen) = world.daemon.http("GET", &format!("/api/sessions/{id}/output?lines=60"), None);
            panic!(
                "the agent's status is {}, not {status}; its screen:\n{}",
                s["agent_status"],
                screen["output"].as_str().unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// `cmd` as one line of `sh`: each word single-quoted.
fn shell_words(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tools `just tools` installs (`CLAUDERON_TOOLS_DIR`, else
/// `~/.cache/clauderon/tools`).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("CLAUDERON_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/clauderon/tools"))
}

/// A real OpenSSH server on 127.0.0.1 (Debian's `sshd`, which `just tools`
/// unpacks into the tools directory) for this test's user, with its own host key and a key only this
/// test holds; killed on drop. Running as root it needs sshd's privilege
/// separation directory, `/run/sshd`, which it makes if missing.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl Sshd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let keygen = |name: &str| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(name))
                .status()
                .expect("ssh-keygen (openssh-client)")
                .success();
            assert!(ok, "ssh-keygen");
        };
        keygen("host");
        keygen("user");
        std::fs::copy(dir.path().join("user.pub"), dir.path().join("authorized")).expect("authorized keys");
        let port = free_port();
        let d = dir.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized\n\
             PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        );
        std::fs::write(dir.path().join("sshd_config"), config).expect("sshd_config");
        if !Path::new("/run/sshd").exists() && Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n") {
            std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        }
        let unpacked = tools_dir().join("openssh");
        let sshd = unpacked.join("usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "{} is missing: run `./justw tools` (it unpacks Debian's openssh-server)",
            sshd.display()
        );
        let child = Command::new(sshd)
            .env("LD_LIBRARY_PATH", unpacked.join("usr/lib/x86_64-linux-gnu"))
            .args(["-D", "-e", "-f"])
            .arg(dir.path().join("sshd_config"))
            .stderr(std::fs::File::create(dir.path().join("sshd.log")).expect("log"))
            .spawn()
            .expect("sshd");
        let server = Self { dir, port, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(server.dir.path().join("sshd.log")).unwrap_or_default();
            assert!(std::time::Instant::now() < deadline, "sshd did not listen on {port}:\n{log}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    /// `ssh` to this server as this user, with `options` (no host key prompt, no agent, no config).
    pub fn command(&self, options: &[&str]) -> Command {
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout).expect("utf-8");
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes"])
            .arg("-i")
            .arg(self.dir.path().join("user"))
            .args(["-p", &self.port.to_string()])
            .args(options)
            .arg(format!("{}@127.0.0.1", user.trim()));
        cmd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A clauderon command (`attach NAME`, `tui`) in a real terminal: a
/// detached 120×30 tmux session on its own tmux server, killed on drop.
pub struct Terminal {
    /// Its own tmux server (`tmux -L`), so no other test's terminal can end it.
    socket: String,
    tmux: String,
}

impl Terminal {
    /// Attach to session `name` of `home`.
    pub fn attach(home: &Home, name: &str) -> Self {
        Self::run(home, &format!("attach-{name}"), &["attach", name], &[])
    }

    /// `clauderon ARGS` of `home` (with `env`) in a terminal named after
    /// `label`. When the command ends, the terminal keeps its last screen and
    /// says how it ended (`[clauderon exited: CODE]`) and whether the
    /// command left the terminal's settings as it found them
    /// (`[tty restored]` or `[tty changed]`).
    pub fn run(home: &Home, label: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start(label, &Self::script(home, args, env))
    }

    /// The same, on the other side of an SSH connection to `sshd` (`ssh -tt`:
    /// the command gets the pseudo-terminal sshd makes, and the terminal's
    /// size and keys go through SSH).
    pub fn over_ssh(sshd: &Sshd, home: &Home, label: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let remote = Self::script(home, args, env);
        let mut cmd = sshd.command(&["-tt"]);
        cmd.arg(remote);
        Self::start(label, &shell_words(&cmd))
    }

    /// The shell script [`Terminal::run`] runs.
    fn script(home: &Home, args: &[&str], env: &[(&str, &str)]) -> String {
        let vars: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
        format!(
            "S=$(stty -g); {vars}CLAUDERON_HOME={} {} {}; echo \"[clauderon exited: $?]\"; \
             if [ \"$(stty -g)\" = \"$S\" ]; then echo '[tty restored]'; else echo '[tty changed]'; fi; exec sleep 3600",
            home.dir.path().display(),
            clauderon_bin().display(),
            args.join(" ")
        )
    }

    /// `cmd` (a shell command line) in a new 120×30 terminal named after `label`.
    pub fn start(label: &str, cmd: &str) -> Self {
        let tmux = format!("clauderon-test-{label}");
        let terminal = Self { socket: tmux.clone(), tmux };
        let ok = terminal
            .command()
            .args(["new-session", "-d", "-s", &terminal.tmux, "-x", "120", "-y", "30", cmd])
            .status()
            .expect("tmux");
        assert!(ok.success(), "tmux new-session");
        terminal
    }

    /// Run a tmux command on the terminal's own server; its output.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tmux format's value for the terminal's pane (e.g. `#{alternate_on}`).
    pub fn pane(&self, format: &str) -> String {
        let out = self.command().args(["display-message", "-p", "-t", &self.tmux, format]).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Make the terminal `cols` × `rows` (as a user resizing their window).
    pub fn resize(&self, cols: u16, rows: u16) {
        let ok = self
            .command()
            .args(["resize-window", "-t", &self.tmux, "-x", &cols.to_string(), "-y", &rows.to_string()])
            .status()
            .expect("tmux");
        assert!(ok.success(), "tmux resize-window");
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        let out = self.command().args(["capture-pane", "-p", "-t", &self.tmux]).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything the terminal has shown on its normal screen: its scrollback
    /// and the screen, wrapped lines joined.
    pub fn history(&self) -> String {
        let out =
            self.command().args(["capture-pane", "-p", "-J", "-S", "-", "-t", &self.tmux]).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the terminal shows now, with its colours and styles as escape sequences.
    pub fn screen_with_styles(&self) -> String {
        let out = self.command().args(["capture-pane", "-p", "-e", "-t", &self.tmux]).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait (20 s at most) until the screen satisfies `done`; whether it did, and the last screen.
    pub fn wait_for(&self, done: impl Fn(&str) -> bool) -> (bool, String) {
        let mut last = String::new();
        let found = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            last = self.screen();
            done(&last)
        });
        (found, last)
    }

    /// Type `keys` (tmux key names, e.g. `Enter`).
    pub fn send(&self, keys: &[&str]) {
        let ok = self.command().args(["send-keys", "-t", &self.tmux]).args(keys).status().expect("tmux");
        assert!(ok.success(), "tmux send-keys");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

/// Attach to session `name` in a real terminal until its screen satisfies
/// `done` (20 s at most). Returns whether it did, and the last screen.
pub fn attach_in_terminal(home: &Home, name: &str, done: impl Fn(&str) -> bool) -> (bool, String) {
    Terminal::attach(home, name).wait_for(done)
}

/// What an attack script printed inside a session: its `RESULT <name> <value…>`
/// lines by name, and the whole output (shown when an assertion fails).
pub struct Attack {
    pub session: serde_json::Value,
    pub results: std::collections::BTreeMap<String, String>,
    pub output: String,
}

impl Attack {
    /// The value of result `name` (fails, showing the output, if the script never printed it).
    pub fn get(&self, name: &str) -> &str {
        self.results
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("the attack printed no RESULT {name}; its output:\n{}", self.output))
    }
}

impl World {
    /// Run `script` (sh) as the agent of a new `shell` session — where an
    /// attacker would be — with `vars` exported first and `extra` create
    /// arguments (backend, access mode…). The script writes its output into
    /// its own working directory; the session stays up (sleeping) afterwards.
    pub fn attack(&self, name: &str, script: &str, vars: &[(&str, String)], extra: &[&str]) -> Attack {
        let name = unique(name);
        let exports: String = vars.iter().map(|(k, v)| format!("export {k}='{v}'; ")).collect();
        let prompt =
            format!("{exports}( {script}\n) > attack.out 2>&1; echo ATTACK-DONE >> attack.out; exec sleep 600");
        let repo = self.repo.path().to_str().expect("utf-8").to_string();
        let mut args = vec!["create", "-r", &repo, "-a", "shell", "--name", &name, "-p", &prompt, "--json"];
        args.extend_from_slice(extra);
        let session = self.home.run(&args).ok().json();
        let out = PathBuf::from(session["worktree"].as_str().expect("worktree")).join("attack.out");
        let output = eventually(90, "the attack script to finish", || {
            std::fs::read_to_string(&out).ok().filter(|t| t.contains("ATTACK-DONE"))
        });
        println!("attack `{name}` inside the session printed:\n{output}");
        let results = output
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .filter_map(|l| l.split_once(' ').map(|(k, v)| (k.to_string(), v.trim().to_string())))
            .collect();
        Attack { session, results, output }
    }
}
