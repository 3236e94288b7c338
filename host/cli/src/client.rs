//! The API client used by every session command. It talks only to the
//! daemon's API, and starts the daemon in the background when none answers.

use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use clauderon_daemon::Config;
use clauderon_daemon::Home;

/// A connection to the daemon.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// Connect, starting the daemon first if it is not running.
    pub async fn connect(home: &Home) -> anyhow::Result<Self> {
        Self::open(home, None, true).await
    }

    /// Connect to the daemon only if it is already running (never start
    /// it); every request gives up after `timeout`.
    pub async fn if_running(home: &Home, timeout: Duration) -> anyhow::Result<Self> {
        Self::open(home, Some(timeout), false).await
    }

    async fn open(home: &Home, timeout: Option<Duration>, start: bool) -> anyhow::Result<Self> {
        let config = Config::load(&home.config())?;
        let mut http = reqwest::Client::builder().no_proxy();
        if let Some(timeout) = timeout {
            http = http.timeout(timeout);
        }
        let http = http.build().context("building the HTTP client")?;
        let mut client = Self { base: config.url(), token: None, http };
        if !client.healthy().await {
            if !start {
                bail!("the daemon at {} is not running", client.base);
            }
            client.start_daemon(home).await?;
        }
        // The daemon makes its token at first start; read it once it is up.
        client.token = match config.daemon.token {
            Some(token) => Some(token),
            None => Some(home.read_token()?.with_context(|| {
                format!(
                    "the daemon answers but there is no API token in {} (is that daemon using another CLAUDERON_HOME?)",
                    home.api_token().display()
                )
            })?),
        };
        Ok(client)
    }

    /// Print the daemon's progress lines (image pulls…) on stderr until dropped.
    pub async fn watch_progress(&self) -> Option<tokio::task::JoinHandle<()>> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/api/events", self.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().ok()?;
        if let Some(token) = &self.token {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().ok()?);
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        Some(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let Ok(text) = message.into_text() else { continue };
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                if event["type"] == "progress" {
                    eprintln!("  {}", event["message"].as_str().unwrap_or_default());
                }
            }
        }))
    }

    async fn healthy(&self) -> bool {
        let req = self.http.get(format!("{}/api/health", self.base)).timeout(Duration::from_secs(2));
        matches!(req.send().await, Ok(r) if r.status().is_success())
    }

    async fn start_daemon(&self, home: &Home) -> anyhow::Result<()> {
        home.ensure_private()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(home.daemon_log())
            .with_context(|| format!("opening {}", home.daemon_log().display()))?;
        let exe = std::env::current_exe().context("finding the clauderon binary")?;
        eprintln!("Starting the clauderon daemon (log: {})…", home.daemon_log().display());
        let mut child = tokio::process::Command::new(exe)
            .arg("daemon")
            .env("CLAUDERON_HOME", &home.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting the daemon")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.healthy().await {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("the daemon exited ({status}) right after starting; see {}", home.daemon_log().display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the daemon did not answer within 20 s; see {}", home.daemon_log().display())
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Send a request with a typed body and read a typed answer (the API's
    /// own types: `Session`, `CreateRequest`, …).
    pub async fn call_as<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> anyhow::Result<T> {
        let body = body.map(serde_json::to_value).transpose().context("encoding the request")?;
        let value = self.call(method, path, body).await?;
        serde_json::from_value(value).with_context(|| {
            format!("the daemon's answer to {path} is not what this clauderon expects (a different version?)")
        })
    }

    /// Send a request; an error status becomes an error with the API's message.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.auth(self.http.request(method, format!("{}{path}", self.base)));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.with_context(|| format!("the daemon at {} did not answer", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the daemon's answer")?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let msg =
                value["error"].as_str().map(String::from).unwrap_or_else(|| String::from_utf8_lossy(&bytes).into());
            bail!("{msg}");
        }
        Ok(value)
    }
}
