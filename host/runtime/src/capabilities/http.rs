//! `http`: outbound requests to the hosts a component was granted.
//!
//! Only `https://`, only to granted hosts (which the manifest keeps to
//! public names: no IP addresses, `localhost` or private suffixes). Redirects
//! are not followed, so a granted host cannot bounce a request elsewhere.
//! In the daemon the requests go through clauderon's proxy under the
//! component's own identity (`component:<id>`, see [`HttpRoute`]):
//! audited as that component, kept from private destinations like a
//! session's, and given only the credentials in its `credentials` grant.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::denied;
use crate::bindings::PluginError;
use crate::bindings::http::{Header, Host, Request, Response};
use crate::error::HostError;
use crate::manifest::{Capability, host_matches};
use crate::state::HostState;

/// Where components' `http` requests go. The daemon routes them through its
/// proxy, under each component's own identity; without a route (the CLI's
/// `plugins` commands, the runtime's own tests) they go out directly.
pub trait HttpRoute: Send + Sync {
    /// The client for `component`'s requests, granted `credentials` (the
    /// services whose credentials may be added to them).
    fn client<'a>(
        &'a self,
        component: &'a str,
        credentials: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<reqwest::Client, String>> + Send + 'a>>;
}

/// The host service behind `http`: the route (once the daemon sets it), each
/// component's client through it, and the direct client.
pub struct HttpService {
    direct: OnceLock<Result<reqwest::Client, String>>,
    route: OnceLock<Arc<dyn HttpRoute>>,
    /// Whether requests must be routed: then a request before the route is set fails.
    routed: bool,
    /// Each component's client through the route.
    routed_clients: tokio::sync::Mutex<HashMap<String, reqwest::Client>>,
}

impl HttpService {
    /// A service whose requests must wait for a route (`routed`) or may go out directly.
    pub fn new(routed: bool) -> Self {
        Self { direct: OnceLock::new(), route: OnceLock::new(), routed, routed_clients: Default::default() }
    }

    /// Send components' HTTP through `route` from now on (once; later calls are ignored).
    pub fn set_route(&self, route: Arc<dyn HttpRoute>) {
        let _ = self.route.set(route);
    }

    /// The client for `component`'s requests: through the route when there
    /// is one, else the direct client (unless routing is required).
    pub async fn client_for(&self, component: &str, credentials: &[String]) -> Result<reqwest::Client, String> {
        let Some(route) = self.route.get() else {
            if self.routed {
                return Err("component HTTP is not available yet: the daemon's proxy has not started".into());
            }
            return self.direct().cloned();
        };
        let mut clients = self.routed_clients.lock().await;
        if let Some(client) = clients.get(component) {
            return Ok(client.clone());
        }
        let client = route.client(component, credentials).await?;
        clients.insert(component.to_string(), client.clone());
        Ok(client)
    }

    /// The direct HTTP client (built on first use).
    fn direct(&self) -> Result<&reqwest::Client, String> {
        self.direct
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("the HTTP client could not be built: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Add `http` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::http::add_to_linker::<HostState, super::Data>(linker, super::state)
}

const DEFAULT_TIMEOUT_MS: u32 = 30_000;
const MAX_TIMEOUT_MS: u32 = 300_000;
/// Largest response body handed to a component.
pub const MAX_BODY_BYTES: usize = 16 << 20;

impl HostState {
    fn check_url(&self, url: &str) -> Result<reqwest::Url, PluginError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| PluginError::InvalidInput(format!("`{url}` is not an absolute URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        if parsed.scheme() != "https" {
            return Err(PluginError::InvalidInput(format!(
                "`{url}`: only https:// is allowed, not {}://",
                parsed.scheme()
            )));
        }
        if let Some(why) = crate::manifest::local_host(&host) {
            return Err(PluginError::Denied(format!(
                "component `{}` may not send HTTP requests to `{host}`: it {why}, and a component's HTTP \
                 reaches public hosts only",
                self.ctx.id
            )));
        }
        if !self.ctx.grants.http.iter().any(|p| host_matches(p, &host)) {
            return Err(denied(self, &format!("send HTTP requests to `{host}`"), Capability::Http, &host));
        }
        Ok(parsed)
    }
}

/// Prepare the checked request (its `url` from `HostState::check_url`) on `client`.
fn prepare(client: &reqwest::Client, url: reqwest::Url, req: &Request) -> Result<reqwest::RequestBuilder, PluginError> {
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| PluginError::InvalidInput(format!("`{}` is not an HTTP method", req.method)))?;
    let timeout = Duration::from_millis(req.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).min(MAX_TIMEOUT_MS).into());
    let mut builder = client.request(method, url).timeout(timeout);
    for h in &req.headers {
        builder = builder.header(&h.name, &h.value);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    Ok(builder)
}

async fn send_prepared(builder: reqwest::RequestBuilder, url: &str) -> Result<Response, PluginError> {
    let failed = |e: reqwest::Error| PluginError::Failed(format!("request to {url} failed: {e}"));
    let mut resp = builder.send().await.map_err(failed)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| Header { name: k.to_string(), value: String::from_utf8_lossy(v.as_bytes()).into_owned() })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(PluginError::Failed(format!("the response from {url} is larger than {MAX_BODY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response { status, headers, body })
}

impl Host for HostState {
    async fn send(&mut self, req: Request) -> Result<Response, HostError> {
        let url = self.check_url(&req.url)?;
        let client = self
            .services
            .http
            .client_for(&self.ctx.id, &self.ctx.grants.credentials)
            .await
            .map_err(PluginError::Failed)?;
        let builder = prepare(&client, url, &req)?;
        Ok(send_prepared(builder, &req.url).await?)
    }
}
