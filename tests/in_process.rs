//! A whole daemon inside the test process, assembled by `clauderon-daemon`
//! exactly as `clauderon daemon` assembles it (store, bundled components,
//! proxy, session manager, API), and no backend: a session's network path is
//! opened the way the session manager opens it ([`Egress::open`]), so proxy
//! tests need neither zellij nor a container. The daemon's credentials are
//! the canaries, held by the `file` credential source.

use std::sync::Arc;

use clauderon_daemon::{Config, Daemon, Parts};
use clauderon_sessions::{AccessMode, Egress, EgressEnv, EgressPolicy, Session};

use crate::{CANARIES, Home, Mock, api_call, clauderon_bin};

/// The credential service each canary variable stands for (the `env`
/// source's table, `components/credential-common`).
const SERVICES: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "github"),
    ("ANTHROPIC_API_KEY", "anthropic"),
    ("OPENAI_API_KEY", "openai"),
    ("GEMINI_API_KEY", "gemini"),
    ("PAGERDUTY_TOKEN", "pagerduty"),
    ("SENTRY_AUTH_TOKEN", "sentry"),
    ("NPM_TOKEN", "npm"),
    ("DOCKER_HUB_TOKEN", "docker-hub"),
    ("GRAFANA_API_KEY", "grafana"),
];

/// The daemon in this process and the sessions opened so far.
pub struct InProcess {
    pub home: Home,
    /// More config.toml text (after `[daemon]`).
    config: String,
    rt: tokio::runtime::Runtime,
    served: Option<Served>,
    sessions: Vec<Session>,
}

/// One start of the daemon.
struct Served {
    port: u16,
    token: String,
    egress: Arc<dyn Egress>,
    audit: Arc<clauderon_proxy::audit::AuditLog>,
    stop: tokio::sync::oneshot::Sender<()>,
    _task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    /// The canaries as secret files, the mock upstream every known host is
    /// sent to, and the daemon serving.
    pub fn with_mock() -> (Self, Mock) {
        Self::with_mock_and("")
    }

    /// The same, with more `[proxy]` settings (TOML lines).
    pub fn with_mock_and(proxy_settings: &str) -> (Self, Mock) {
        let mock = Mock::start();
        let config = mock.proxy_config().replacen("[proxy]\n", &format!("[proxy]\n{proxy_settings}"), 1);
        (Self::with_canaries(&config), mock)
    }

    /// The canaries as secret files and the daemon serving with this
    /// config.toml text (e.g. a mock's [`Mock::proxy_config`], edited).
    pub fn with_canaries(config: &str) -> Self {
        let secrets: Vec<(&str, &str)> = SERVICES
            .iter()
            .map(|(var, service)| {
                let canary = CANARIES.iter().find(|(v, _)| v == var).map(|(_, c)| *c).expect("a canary");
                (*service, canary)
            })
            .collect();
        Self::start(config, &secrets)
    }

    /// A new home with this config.toml text (the API port is chosen here)
    /// and these (service, credential) pairs as files of the `file`
    /// credential source, the only source asked; the daemon serving.
    pub fn start(config: &str, secrets: &[(&str, &str)]) -> Self {
        let home = Home::new();
        std::fs::create_dir_all(home.path("secrets")).expect("secrets dir");
        for (service, value) in secrets {
            std::fs::write(home.path(&format!("secrets/{service}")), value).expect("secret file");
        }
        let config = format!("[credentials]\norder = [\"file\"]\n{config}");
        std::fs::write(home.path("config.toml"), config_text(0, &config)).expect("config");
        let mut this = Self { home, config, rt: new_runtime(), served: None, sessions: Vec::new() };
        this.serve();
        this
    }

    /// Assemble the daemon from this home and serve its API.
    fn serve(&mut self) {
        let home = clauderon_daemon::Home { root: self.home.dir.path().to_path_buf() };
        let config = Config::load(&home.config()).expect("config.toml");
        let parts = Parts { bundled: bundled_components(), relay: &[], exe: clauderon_bin() };
        let daemon = self.rt.block_on(Daemon::assemble(&home, config, parts)).expect("assembling the daemon");
        let (port, token, egress) = (daemon.addr.port(), daemon.token.clone(), daemon.egress.clone());
        let audit = daemon.audit.clone();
        // The CLI and a restart find the daemon on the port it got.
        std::fs::write(self.home.path("config.toml"), config_text(port, &self.config)).expect("config");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = self.rt.spawn(async move {
            if let Err(e) = daemon
                .serve(async {
                    let _ = stopped.await;
                })
                .await
            {
                eprintln!("the in-process daemon stopped: {e:#}");
            }
        });
        self.served = Some(Served { port, token, egress, audit, stop, _task: task });
    }

    fn served(&self) -> &Served {
        self.served.as_ref().expect("the daemon is serving")
    }

    /// Open a session's network path (its proxy listener) with this access
    /// mode; the environment the session would be given (as the manager
    /// gives it: the egress's variables and the session's name).
    pub fn session(&mut self, name: &str, mode: AccessMode) -> Vec<(String, String)> {
        let (name, opened) = self.open(name, mode);
        let mut env = opened.env;
        env.push(("CLAUDERON_SESSION_NAME".into(), name));
        env
    }

    /// The same, and all the egress gives (the listener's unix socket
    /// directory, the CA bundle): (the session's unique name, what it got).
    pub fn open(&mut self, name: &str, mode: AccessMode) -> (String, EgressEnv) {
        let session = Session {
            id: format!("in-process-{}", self.sessions.len()),
            name: crate::unique(name),
            access_mode: mode,
            ..Default::default()
        };
        let opened = self.rt.block_on(self.served().egress.open(&session)).expect("opening the session's proxy");
        let name = session.name.clone();
        self.sessions.push(Session { proxy_port: Some(opened.port), ..session });
        (name, opened)
    }

    /// Change a session's access mode, as the manager does on `set-access-mode`.
    pub fn set_access_mode(&self, name: &str, mode: AccessMode) {
        let session = self.sessions.iter().find(|s| s.name == name).expect("a session opened here");
        self.served().egress.set_access_mode(&session.id, mode);
    }

    /// Change a session's egress policy, as the manager does on `set-egress`.
    pub fn set_egress(&self, name: &str, policy: &EgressPolicy) {
        let session = self.sessions.iter().find(|s| s.name == name).expect("a session opened here");
        self.served().egress.set_egress(&session.id, policy);
    }

    /// Close a session's network path, as the manager does on delete and archive.
    pub fn close(&self, name: &str) {
        let session = self.sessions.iter().find(|s| s.name == name).expect("a session opened here");
        self.served().egress.close(&session.id);
    }

    /// Stop the daemon and assemble it again on the same home, as after a
    /// crash: its runtime goes, with every task it ran (so everything they
    /// held, the store first). The sessions' listeners are reopened on their
    /// ports, as reconcile reopens them.
    pub fn restart_daemon(&mut self) {
        self.served = None;
        let old = std::mem::replace(&mut self.rt, new_runtime());
        old.shutdown_timeout(std::time::Duration::from_secs(5));
        self.serve();
        for session in &self.sessions {
            self.rt.block_on(self.served().egress.open(session)).expect("reopening a session's proxy");
        }
    }

    /// An API call with the token: (HTTP status, body as JSON or string).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let served = self.served();
        api_call(served.port, &served.token, method, path, body)
    }

    /// Whether every audit record made so far is stored (read in this
    /// process, not through the API: the bench asks it often, and counts
    /// the daemon's CPU meanwhile).
    pub fn audit_stored(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let audit = self.served().audit.clone();
        move || audit.pending() == 0
    }

    /// Audit records (of one session by name), through the API.
    pub fn audit(&self, session: Option<&str>) -> Vec<serde_json::Value> {
        crate::audit_page(self.http("GET", &crate::audit_path(session), None)).0
    }

    /// How many audit records the daemon holds, paging through the API.
    pub fn audit_count(&self) -> u64 {
        let (mut count, mut after) = (0, 0);
        loop {
            let (code, page) = self.http("GET", &format!("/api/audit?after={after}&limit=10000"), None);
            let records = page["records"].as_array().cloned().unwrap_or_default();
            let Some(last) = records.last().and_then(|r| r["seq"].as_u64()) else {
                assert!(code == 200, "{page}");
                return count;
            };
            count += records.len() as u64;
            after = last;
        }
    }

    /// Audit records once the writer has caught up: the same answer twice, 150 ms apart.
    pub fn audit_settled(&self, session: Option<&str>) -> Vec<serde_json::Value> {
        crate::settled(|| crate::audit_page(self.http("GET", &crate::audit_path(session), None)))
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(served) = self.served.take() {
            let _ = served.stop.send(());
        }
    }
}

/// A runtime for one start of the daemon; its threads are named
/// `clauderond` (the bench reads their CPU time; Linux keeps 15 bytes of a
/// thread's name).
fn new_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clauderond")
        .build()
        .expect("a runtime for the daemon")
}

/// The daemon's config: the API on `port` (0: any), then `rest`.
fn config_text(port: u16, rest: &str) -> String {
    format!("[daemon]\nhttp_port = {port}\n{rest}")
}

/// The components `clauderon` embeds, read from where `just components` built them.
fn bundled_components() -> Vec<clauderon_runtime::Source> {
    let dir = std::env::var_os("CLAUDERON_COMPONENTS_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| clauderon_bin().parent().and_then(|p| p.parent()).map(|t| t.join("components")))
        .expect("CLAUDERON_COMPONENTS_DIR");
    let mut sources: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `just components`)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .map(|p| clauderon_runtime::Source::Bundled {
            name: p.file_stem().and_then(|s| s.to_str()).unwrap_or("component").to_string(),
            bytes: std::fs::read(&p).expect("a component").into(),
        })
        .collect();
    sources.sort_by_key(|s| s.origin());
    assert!(!sources.is_empty(), "no components in {}: run `just components`", dir.display());
    sources
}
