//! Who may call the API. Every request must name the daemon itself: its
//! `Host` must be one of the daemon's own addresses (a DNS-rebinding page
//! names its own host) and its `Origin`, when a browser sends one, must be the
//! daemon's own origin (a foreign page's form POST or WebSocket names its
//! own). Then every request carries the daemon's token
//! (`Authorization: Bearer …`) — except `GET /api/health` and the agent-status
//! path, which agents reach through their proxy with their session's own key.
//!
//! The token lives in `CLAUDERON_HOME/api-token` (0600); sessions never see
//! that directory, so no session can call the API.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, StatusCode, header};

use crate::ApiError;

/// The API's trust boundary: the token and the names the daemon answers to.
pub struct Guard {
    token: String,
    /// Acceptable `Host` values, lowercase (`127.0.0.1:3030`, `localhost:3030`, …).
    hosts: Vec<String>,
}

impl Guard {
    /// A guard for a daemon listening on `addr` with `token`; `extra_hosts`
    /// are more names (host or host:port) it is reached by, from the config.
    pub fn new(token: String, addr: SocketAddr, extra_hosts: &[String]) -> Self {
        let port = addr.port();
        let mut names: Vec<String> = vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into()];
        if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
            names.push(match addr.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            });
        }
        let mut hosts = Vec::new();
        for name in names.iter().chain(extra_hosts) {
            let name = name.to_ascii_lowercase();
            if name.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !name.ends_with(']') {
                hosts.push(name);
                continue;
            }
            hosts.push(format!("{name}:{port}"));
            if port == 80 {
                hosts.push(name);
            }
        }
        Self { token, hosts }
    }

    /// The `Host` and `Origin` checks, for every request.
    pub fn check_site(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        if !self.hosts.contains(&host) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "refused: this API answers only to its own address (Host: {}), not `{host}`",
                    self.hosts.first().map(String::as_str).unwrap_or("127.0.0.1")
                ),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
            let own = origin.strip_prefix("http://").is_some_and(|rest| self.hosts.iter().any(|h| h == rest));
            if !own {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    format!("refused: a request from another site (Origin: {origin}) cannot use this API"),
                ));
            }
        }
        Ok(())
    }

    /// The token check (constant-time), for every request but the open paths.
    pub fn check_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !given.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), self.token.as_bytes())) {
            return Ok(());
        }
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token: send `Authorization: Bearer <token>` with the token from \
             CLAUDERON_HOME/api-token (the clauderon CLI does this for you)"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn guard() -> Guard {
        Guard::new("s3cret-token".into(), "127.0.0.1:3030".parse().expect("addr"), &["box.lan".into()])
    }

    #[test]
    fn only_the_daemons_own_names_pass_the_host_check() {
        let g = guard();
        for ok in ["127.0.0.1:3030", "localhost:3030", "LOCALHOST:3030", "[::1]:3030", "box.lan:3030"] {
            assert!(g.check_site(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in ["attacker.example", "attacker.example:3030", "127.0.0.1:3031", "127.0.0.1", ""] {
            assert!(g.check_site(&headers(&[("host", bad)])).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_foreign_origin_is_refused_and_the_own_origin_passes() {
        let g = guard();
        let own = headers(&[("host", "127.0.0.1:3030"), ("origin", "http://127.0.0.1:3030")]);
        assert!(g.check_site(&own).is_ok());
        for bad in ["http://attacker.example", "null", "https://127.0.0.1:3030", "http://127.0.0.1:3030.evil"] {
            let h = headers(&[("host", "127.0.0.1:3030"), ("origin", bad)]);
            assert!(g.check_site(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_must_match_exactly() {
        let g = guard();
        assert!(g.check_token(&headers(&[("authorization", "Bearer s3cret-token")])).is_ok());
        for bad in ["Bearer s3cret-toke", "Bearer s3cret-token2", "Bearer ", "s3cret-token", "Basic s3cret-token"] {
            assert!(g.check_token(&headers(&[("authorization", bad)])).is_err(), "{bad}");
        }
        assert!(g.check_token(&HeaderMap::new()).is_err());
    }
}
