//! The daemon's API client, shared by the CLI's session commands and the
//! TUI: it talks only to the daemon's API (with the API token), starts the
//! daemon in the background when none answers, and follows the event stream.
//! [`safe_text`] makes the text it brings (an agent's chat, paths) safe to
//! show on a terminal.

pub mod safe_text;

use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use clauderon_daemon::Config;
use clauderon_daemon::Home;
use clauderon_sessions::Session;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// `name` as one segment of an API path (`/api/sessions/{name}`) or a query
/// value: ASCII letters, digits, `-` and `_` as they are, every other byte
/// of its UTF-8 percent-encoded.
pub fn seg(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A value as the API spells it (`waiting-for-input`, `running`): its JSON string.
pub fn kebab(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// A WebSocket to the daemon.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The daemon's event stream (`GET /api/events` as a WebSocket): session
/// events (`{"seq":…,"type":"status-changed",…}`), progress lines
/// (`"type":"progress"`), audit records (`"type":"audit"`) and notes that
/// some were missed (`"lagged"`, `"audit-lagged"`).
pub struct Events {
    socket: Socket,
}

impl Events {
    /// The next message; `None` once the daemon closed the stream.
    pub async fn next(&mut self) -> Option<anyhow::Result<Value>> {
        loop {
            let message = match self.socket.next().await? {
                Ok(message) => message,
                Err(e) => return Some(Err(anyhow::Error::new(e).context("the event stream broke"))),
            };
            match message {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).context("the daemon sent an event that is not JSON"));
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }
}

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

    /// The daemon's address (`http://127.0.0.1:3030`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Open the event stream; with `after`, the stored session events after
    /// that number come first (the replay a reconnect needs).
    pub async fn events(&self, after: Option<u64>) -> anyhow::Result<Events> {
        let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
        let socket = self.websocket(&format!("/api/events{query}")).await.context("opening the event stream")?;
        Ok(Events { socket })
    }

    /// A session's terminal (`/api/sessions/{id}/console`) at `cols` × `rows`:
    /// binary frames carry its bytes both ways, a text frame
    /// `{"type":"resize","cols":C,"rows":R}` resizes it.
    pub async fn console(&self, id: &str, cols: u16, rows: u16) -> anyhow::Result<Socket> {
        self.websocket(&format!("/api/sessions/{}/console?cols={cols}&rows={rows}", seg(id)))
            .await
            .context("opening the session's terminal")
    }

    /// A WebSocket to `path` of the API, with the token.
    async fn websocket(&self, path: &str) -> anyhow::Result<Socket> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}{path}", self.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().context("the WebSocket's address")?;
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().context("the API token is not a valid header value")?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| match e {
            // The API's own words (a 404 for a gone session, a 502 for a backend that cannot attach).
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                let words =
                    serde_json::from_str::<Value>(&body).ok().and_then(|v| v["error"].as_str().map(String::from));
                anyhow::anyhow!("{}", words.unwrap_or_else(|| format!("the daemon answered {}", response.status())))
            }
            e => anyhow::Error::new(e).context(format!("the daemon at {} did not answer", self.base)),
        })?;
        Ok(socket)
    }

    /// Print the daemon's progress lines (image pulls…) on stderr until dropped.
    pub async fn watch_progress(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut events = self.events(None).await.ok()?;
        Some(tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                if event["type"] == "progress" {
                    eprintln!("  {}", event["message"].as_str().unwrap_or_default());
                }
            }
        }))
    }

    /// The sessions (archived ones too with `archived`), and the number of the
    /// last event the list reflects (`x-clauderon-event-seq`): follow the
    /// event stream from there and nothing is missed or applied twice.
    pub async fn sessions(&self, archived: bool) -> anyhow::Result<(Vec<Session>, u64)> {
        let path = if archived { "/api/sessions?archived=true" } else { "/api/sessions" };
        let (value, headers) = self.send(reqwest::Method::GET, path, None).await?;
        let seq = headers
            .get("x-clauderon-event-seq")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .context("the daemon's session list has no x-clauderon-event-seq (an older daemon?)")?;
        let sessions = serde_json::from_value(value)
            .context("the daemon's session list is not what this clauderon expects (a different version?)")?;
        Ok((sessions, seq))
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
        Ok(self.send(method, path, body).await?.0)
    }

    /// [`Client::call`], with the answer's headers.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(Value, reqwest::header::HeaderMap)> {
        let mut req = self.auth(self.http.request(method, format!("{}{path}", self.base)));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.with_context(|| format!("the daemon at {} did not answer", self.base))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.context("reading the daemon's answer")?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let msg =
                value["error"].as_str().map(String::from).unwrap_or_else(|| String::from_utf8_lossy(&bytes).into());
            bail!("{msg}");
        }
        Ok((value, headers))
    }
}

#[cfg(test)]
mod tests {
    use super::seg;

    #[test]
    fn a_segment_encodes_each_byte_of_its_utf8() {
        assert_eq!(seg("fix-login_2"), "fix-login_2");
        assert_eq!(seg("/home/ada/my src"), "%2Fhome%2Fada%2Fmy%20src");
        // Two bytes in UTF-8, not the code point (U+0436 would be `%436`).
        assert_eq!(seg("ж"), "%D0%B6");
        assert_eq!(seg("a&hidden=true"), "a%26hidden%3Dtrue");
    }
}
