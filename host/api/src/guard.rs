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
//!
//! A browser never holds the token. `clauderon web` asks for a one-time
//! login ticket ([`Guard::issue_ticket`], valid for [`TICKET_TTL`]); the
//! browser opens `/login?ticket=…`, which trades it ([`Guard::redeem`]) for
//! an HttpOnly, SameSite=Strict cookie: a random nonce and its HMAC under the
//! token, so it stays valid across daemon restarts and dies with the token.
//! A cookie counts only on a request the browser marks as from the daemon's
//! own origin (`Sec-Fetch-Site: same-origin`, or `none` for what the user
//! typed): a page on another port of this machine (say, a web server an
//! agent runs) is the same *site*, so SameSite alone would let its requests
//! carry the cookie.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ApiError;

/// The login cookie's name.
pub const COOKIE: &str = "clauderon_web";
/// How long a login cookie lasts in the browser (30 days).
pub const COOKIE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a login ticket can be redeemed.
pub const TICKET_TTL: Duration = Duration::from_secs(120);
/// Tickets outstanding at once; the oldest go first.
const MAX_TICKETS: usize = 64;

/// The API's trust boundary: the token and the names the daemon answers to.
pub struct Guard {
    token: String,
    /// Acceptable `Host` values, lowercase (`127.0.0.1:3030`, `localhost:3030`, …).
    hosts: Vec<String>,
    /// Unredeemed login tickets and when each expires.
    tickets: Mutex<HashMap<String, Instant>>,
    /// The login cookie's HMAC key: the token (made once, not per request).
    cookie_key: ring::hmac::Key,
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
        let cookie_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token.as_bytes());
        Self { token, hosts, tickets: Mutex::new(HashMap::new()), cookie_key }
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

    /// The daemon's own address as a browser should open it (`127.0.0.1:3030`).
    pub fn own_host(&self) -> &str {
        self.hosts.first().map(String::as_str).unwrap_or("127.0.0.1")
    }

    /// The token check (constant-time), for every request but the open
    /// paths: the bearer token, or a browser's login cookie.
    pub fn check_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !given.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), self.token.as_bytes())) {
            return Ok(());
        }
        if let Some(cookie) = cookie(headers, COOKIE) {
            let own_origin = headers
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .is_none_or(|site| site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
            if !own_origin {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "refused: the login cookie counts only on requests from the dashboard's own pages".into(),
                ));
            }
            if self.cookie_is_valid(cookie) {
                return Ok(());
            }
        }
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token: send `Authorization: Bearer <token>` with the token from \
             CLAUDERON_HOME/api-token (the clauderon CLI does this for you); in a browser, sign in \
             with the link `clauderon web` opens"
                .into(),
        ))
    }

    /// A new one-time login ticket, redeemable for [`TICKET_TTL`].
    pub fn issue_ticket(&self) -> String {
        let ticket = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut tickets = self.tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tickets.retain(|_, expires| *expires > now);
        while tickets.len() >= MAX_TICKETS {
            let Some(oldest) = tickets.iter().min_by_key(|(_, e)| **e).map(|(t, _)| t.clone()) else { break };
            tickets.remove(&oldest);
        }
        tickets.insert(ticket.clone(), now + TICKET_TTL);
        ticket
    }

    /// Trade a ticket (once, before it expires) for a login cookie's value.
    pub fn redeem(&self, ticket: &str) -> Option<String> {
        let expires = self.tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(ticket)?;
        (expires > Instant::now()).then(|| {
            let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
            let mac = self.mac(&nonce);
            format!("{nonce}.{mac}")
        })
    }

    fn mac(&self, nonce: &str) -> String {
        let tag = ring::hmac::sign(&self.cookie_key, format!("clauderon web login\0{nonce}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    fn cookie_is_valid(&self, value: &str) -> bool {
        let Some((nonce, mac)) = value.split_once('.') else { return false };
        !nonce.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(mac.as_bytes(), self.mac(nonce).as_bytes()))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
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

    #[test]
    fn a_ticket_buys_one_cookie_that_counts_only_from_the_dashboards_own_pages() {
        let g = guard();
        let ticket = g.issue_ticket();
        let value = g.redeem(&ticket).expect("a fresh ticket is redeemed");
        assert!(g.redeem(&ticket).is_none(), "a ticket is good once");
        assert!(g.redeem("made-up").is_none());
        let with = |site: Option<&str>, value: &str| {
            let cookie = format!("other=1; {COOKIE}={value}");
            let mut pairs = vec![("cookie", cookie.as_str())];
            if let Some(site) = site {
                pairs.push(("sec-fetch-site", site));
            }
            g.check_token(&headers(&pairs))
        };
        assert!(with(Some("same-origin"), &value).is_ok());
        assert!(with(Some("none"), &value).is_ok());
        assert!(with(None, &value).is_ok(), "a client that sends no fetch metadata");
        for site in ["same-site", "cross-site"] {
            assert!(with(Some(site), &value).is_err(), "{site}");
        }
        let (nonce, _) = value.split_once('.').expect("nonce.mac");
        for forged in [format!("{nonce}.AAAA"), format!("other{nonce}.{}", &value[nonce.len() + 1..]), nonce.into()] {
            assert!(with(Some("same-origin"), &forged).is_err(), "{forged}");
        }
        let other = Guard::new("another-token".into(), "127.0.0.1:3030".parse().expect("addr"), &[]);
        assert!(!other.cookie_is_valid(&value), "a new token ends every login");
    }
}
