//! `http`: outbound requests to the hosts a component was granted.
//!
//! Only `https://` leaves the machine; plain `http://` is allowed to
//! loopback hosts alone (local development and tests). Redirects are not
//! followed, so a granted host cannot bounce a request elsewhere.
//! In the daemon the requests go through clauderon's proxy under the
//! component's own identity (`component:<id>`, see [`crate::state::HttpRoute`]):
//! audited as that component, kept from private destinations like a
//! session's, and given only the credentials in its `credentials` grant.

use std::time::Duration;

use super::denied;
use crate::bindings::PluginError;
use crate::bindings::http::{Header, Host, Request, Response};
use crate::manifest::host_matches;
use crate::state::HostState;

const DEFAULT_TIMEOUT_MS: u32 = 30_000;
const MAX_TIMEOUT_MS: u32 = 300_000;
/// Largest response body handed to a component.
pub const MAX_BODY_BYTES: usize = 16 << 20;

impl HostState {
    fn check_url(&self, url: &str) -> Result<reqwest::Url, PluginError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| PluginError::InvalidInput(format!("`{url}` is not an absolute URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                return Err(PluginError::InvalidInput(format!(
                    "`{url}`: only https:// is allowed (plain http only to loopback), not {other}://"
                )));
            }
        }
        if !self.ctx.grants.http.iter().any(|p| host_matches(p, &host)) {
            return Err(denied(self, &format!("send HTTP requests to `{host}`"), &format!("http = [\"{host}\"]")));
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
    async fn send(&mut self, req: Request) -> wasmtime::Result<Result<Response, PluginError>> {
        let url = match self.check_url(&req.url) {
            Ok(url) => url,
            Err(e) => return Ok(Err(e)),
        };
        let (services, ctx) = (self.services.clone(), self.ctx.clone());
        let client = match services.http_for(&ctx.id, &ctx.grants.credentials).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(PluginError::Failed(e))),
        };
        let builder = match prepare(&client, url, &req) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(send_prepared(builder, &req.url).await)
    }
}
