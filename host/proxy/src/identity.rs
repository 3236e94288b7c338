//! Session identities. Each session's proxy secret is derived from one key
//! the daemon keeps (`proxy-identity.key`, mode 0600) — HMAC-SHA256 of the
//! session id — so nothing secret is stored with the session, a restarted
//! daemon recognises the sessions it started, and no session can work out
//! another's secret.

use std::path::Path;

use ring::hmac;

use crate::ProxyError;

/// File name of the key under clauderon's home.
pub const KEY_FILE: &str = "proxy-identity.key";

/// The key sessions' secrets derive from.
pub struct IdentityKey(hmac::Key);

impl IdentityKey {
    /// Load the key from `home`, or make one.
    pub fn load_or_create(home: &Path) -> Result<Self, ProxyError> {
        let path = home.join(KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => bytes,
            Ok(_) => return Err(ProxyError::Ca { path, reason: "the identity key is too short".into() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes: [u8; 32] = rand::random();
                crate::ca::write_private(&path, &bytes)?;
                bytes.to_vec()
            }
            Err(e) => return Err(ProxyError::io(&path, e)),
        };
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// A key for tests (not persisted).
    #[cfg(test)]
    pub fn ephemeral() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// The secret of session `id` (hex).
    pub fn secret(&self, id: &str) -> String {
        let tag = hmac::sign(&self.0, id.as_bytes());
        tag.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_stable_per_key_and_differ_per_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = IdentityKey::load_or_create(dir.path()).expect("create");
        let b = IdentityKey::load_or_create(dir.path()).expect("load");
        assert_eq!(a.secret("s1"), b.secret("s1"));
        assert_ne!(a.secret("s1"), a.secret("s2"));
        assert_ne!(a.secret("s1"), IdentityKey::ephemeral().secret("s1"));
        assert_eq!(a.secret("s1").len(), 32);
    }
}
