//! Where the proxy may open connections. A session's proxy is its only way
//! out, so it must never be a way *in*: no connection to a loopback,
//! unspecified, link-local or multicast address, to any address of this
//! machine (the daemon's API and every other local service live there), or
//! to a private range (the local network, cloud metadata) — whatever name
//! the session used, checked on the addresses the name resolves to, and the
//! connection made to exactly the address checked (no second lookup a DNS
//! rebinding could change).
//!
//! Two settings open it: `[proxy.upstreams]` sends a named host to a fixed
//! address (that is the operator speaking, so it is not checked), and
//! `[proxy] allow_private_hosts` lets named hosts resolve to private
//! addresses (never loopback or this machine's own).

use std::net::{IpAddr, SocketAddr};

/// Why an address is off limits, as a phrase ("a loopback address").
pub fn inward(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else if v4.is_link_local() {
                Some("a link-local address (cloud metadata lives there)")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("a multicast or broadcast address")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("a private address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if v6.is_unicast_link_local() {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if v6.is_unique_local() {
                Some("a private address")
            } else {
                None
            }
        }
    }
}

/// The rule in force: which hosts may use private addresses.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    allow_private: Vec<String>,
}

impl Destinations {
    /// Hosts (names or IP literals) allowed to resolve to private addresses.
    pub fn new(allow_private_hosts: &[String]) -> Self {
        Self { allow_private: allow_private_hosts.iter().map(|h| h.to_ascii_lowercase()).collect() }
    }

    /// Whether `host` may be reached at `ip`; if not, a sentence saying why.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if own_addresses().contains(&ip) {
            return Err(refusal(host, ip, "an address of this machine"));
        }
        match inward(ip) {
            None => Ok(()),
            Some("a private address") if self.allow_private.iter().any(|h| h.eq_ignore_ascii_case(host)) => Ok(()),
            Some(kind) => Err(refusal(host, ip, kind)),
        }
    }

    /// The addresses of `host:port` the proxy may connect to, resolved once.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let resolved: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port)).await?.collect(),
        };
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|a| match self.check(bare, a.ip()) {
                Ok(()) => true,
                Err(why) => {
                    first_refusal.get_or_insert(why);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (true, Some(why)) => Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why)),
            (true, None) => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} has no address"))),
            (false, _) => Ok(allowed),
        }
    }
}

fn refusal(host: &str, ip: IpAddr, kind: &str) -> String {
    format!(
        "refused: {host} is {ip}, {kind}; the proxy never connects into this machine or the local network \
         (for a private host you trust, add it to [proxy] allow_private_hosts)"
    )
}

/// Every address of this machine's interfaces (read each time: interfaces come and go).
fn own_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(ifaces) => ifaces.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::warn!("listing this machine's addresses: {e}");
            Vec::new()
        }
    }
}

/// The refusal in an error chain, if the connection was refused by [`Destinations`].
pub fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return Some(io.to_string());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn inward_addresses_are_named() {
        for (addr, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("10.1.2.3", "private"),
            ("172.17.0.1", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("fd00::1", "private"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
        ] {
            let found = inward(ip(addr)).unwrap_or_else(|| panic!("{addr} is inward"));
            assert!(found.contains(kind), "{addr}: {found}");
        }
        for public in ["93.184.216.34", "140.82.112.3", "2606:4700::1111", "100.128.0.1", "172.32.0.1"] {
            assert_eq!(inward(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn allow_private_hosts_opens_private_ranges_only_for_those_names() {
        let d = Destinations::new(&["git.corp.example".into()]);
        assert!(d.check("git.corp.example", ip("10.0.0.5")).is_ok());
        assert!(d.check("GIT.corp.example", ip("10.0.0.5")).is_ok());
        assert!(d.check("other.example", ip("10.0.0.5")).is_err());
        assert!(d.check("git.corp.example", ip("127.0.0.1")).is_err(), "never loopback");
        assert!(d.check("git.corp.example", ip("169.254.169.254")).is_err(), "never link-local");
    }

    #[tokio::test]
    async fn names_and_literals_resolving_inward_are_refused_before_any_connection() {
        let d = Destinations::default();
        for (host, port) in [("localhost", 3030), ("127.0.0.1", 80), ("[::1]", 443), ("169.254.169.254", 80)] {
            let err = d.resolve(host, port).await.expect_err(host);
            assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{host}: {err}");
            assert!(err.to_string().contains("refused"), "{err}");
        }
        let ok = d.resolve("93.184.216.34", 443).await.expect("a public literal is allowed");
        assert_eq!(ok, vec!["93.184.216.34:443".parse::<SocketAddr>().expect("addr")]);
    }
}
