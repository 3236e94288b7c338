//! The proxy's certificate authority: a P-256 CA generated at first start
//! (`proxy-ca.pem`, and `proxy-ca-key.pem` with mode 0600 that never leaves
//! the host), and leaf certificates minted per host on demand. Every leaf
//! shares one P-256 key made at start-up, so a cache miss costs one signature
//! (~20 µs), and the ready `ServerConfig`s are cached by host.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::ProxyError;

/// File name of the CA certificate under clauderon's home.
pub const CA_CERT_FILE: &str = "proxy-ca.pem";
/// File name of the CA key under clauderon's home (mode 0600).
pub const CA_KEY_FILE: &str = "proxy-ca-key.pem";
/// File name of the bundle sessions trust: clauderon's CA plus the system roots.
pub const CA_BUNDLE_FILE: &str = "proxy-ca-bundle.pem";

/// How many hosts' server configs are kept before the cache is emptied.
const CACHE_LIMIT: usize = 1024;

/// The CA, the shared leaf key and the per-host config cache.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    leaf_key: KeyPair,
    cache: Mutex<HashMap<String, Arc<ServerConfig>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Authority {
    /// Load the CA from `home`, or create it there on first start.
    pub fn load_or_create(home: &Path) -> Result<Self, ProxyError> {
        let cert_path = home.join(CA_CERT_FILE);
        let key_path = home.join(CA_KEY_FILE);
        let (cert_pem, key) = if cert_path.exists() && key_path.exists() {
            let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| ProxyError::io(p, e));
            let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| ProxyError::ca(&key_path, e))?;
            (read(&cert_path)?, key)
        } else {
            create(&cert_path, &key_path)?
        };
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| ProxyError::ca(&cert_path, e))?;
        let ca_der = pem_certs(&cert_pem)
            .into_iter()
            .next()
            .ok_or_else(|| ProxyError::Ca { path: cert_path.clone(), reason: "no certificate in the file".into() })?;
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| ProxyError::ca(home, e))?;
        Ok(Self {
            issuer,
            ca_der,
            ca_pem: cert_pem,
            leaf_key,
            cache: Mutex::new(HashMap::new()),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The CA certificate as PEM (safe to hand to sessions).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Write the bundle sessions trust (clauderon's CA, then `system_roots_pem`)
    /// to `home/proxy-ca-bundle.pem` and return its path.
    pub fn write_bundle(&self, home: &Path, system_roots_pem: &str) -> Result<PathBuf, ProxyError> {
        let path = home.join(CA_BUNDLE_FILE);
        let mut text = String::with_capacity(self.ca_pem.len() + system_roots_pem.len() + 1);
        text.push_str(&self.ca_pem);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(system_roots_pem);
        let tmp = home.join(format!("{CA_BUNDLE_FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| ProxyError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| ProxyError::io(&path, e))?;
        Ok(path)
    }

    /// The TLS server config presenting a certificate for `host` (cached).
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, ProxyError> {
        let host = host.to_ascii_lowercase();
        if let Some(hit) = self.cache.lock().map_err(|_| ProxyError::Poisoned)?.get(&host) {
            return Ok(hit.clone());
        }
        let config = Arc::new(self.mint(&host)?);
        let mut cache = self.cache.lock().map_err(|_| ProxyError::Poisoned)?;
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(host, config.clone());
        Ok(config)
    }

    fn mint(&self, host: &str) -> Result<ServerConfig, ProxyError> {
        let leaf_err = |e: rcgen::Error| ProxyError::Leaf { host: host.into(), reason: e.to_string() };
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if is_dns_name(host) => SanType::DnsName(host.try_into().map_err(leaf_err)?),
            Err(_) => return Err(ProxyError::Leaf { host: host.into(), reason: "not a host name".into() }),
        }];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 1, 1);
        let cert = params.signed_by(&self.leaf_key, &self.issuer).map_err(leaf_err)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Leaf { host: host.into(), reason: e.to_string() })?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone(), self.ca_der.clone()], key)
            .map_err(|e| ProxyError::Leaf { host: host.into(), reason: e.to_string() })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Whether `host` looks like a DNS name (letters, digits, `-`, `_`, dots).
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Generate a new CA and write it: certificate 0644, key 0600 (written
/// through a file created with that mode, so it is never readable by others).
fn create(cert_path: &Path, key_path: &Path) -> Result<(String, KeyPair), ProxyError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| ProxyError::ca(key_path, e))?;
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "clauderon proxy CA");
    dn.push(DnType::OrganizationName, "clauderon (local)");
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 1, 1);
    let cert = params.self_signed(&key).map_err(|e| ProxyError::ca(cert_path, e))?;
    if let Some(dir) = key_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ProxyError::io(dir, e))?;
    }
    write_private(key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem()).map_err(|e| ProxyError::io(cert_path, e))?;
    Ok((cert.pem(), key))
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ProxyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ProxyError::io(path, e))?;
    file.write_all(bytes).map_err(|e| ProxyError::io(path, e))
}

/// Every certificate in a PEM text.
pub fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn first_start_creates_a_ca_with_a_private_key_and_later_starts_reuse_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Authority::load_or_create(dir.path()).expect("create");
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE)).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = Authority::load_or_create(dir.path()).expect("load");
        assert_eq!(first.ca_pem(), second.ca_pem());
    }

    #[test]
    fn leaf_configs_are_cached_per_host_and_cover_ip_addresses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Authority::load_or_create(dir.path()).expect("create");
        let a = ca.server_config("api.github.com").expect("leaf");
        let b = ca.server_config("API.github.com").expect("leaf");
        assert!(Arc::ptr_eq(&a, &b));
        ca.server_config("127.0.0.1").expect("ip leaf");
        assert!(ca.server_config("bad host name!").is_err());
    }
}
