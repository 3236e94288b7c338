//! Session identities. Each session's proxy secret is derived from one key
//! the daemon keeps (`proxy-identity.key`, mode 0600) — HMAC-SHA256 of the
//! session id — so nothing secret is stored with the session, a restarted
//! daemon recognises the sessions it started, and no session can work out
//! another's secret. Each session's *door key* (what a pod presents at the
//! proxy's direct door, see [`crate::door`]) derives the same way from a
//! second key that derives from this one, so no door key is any session's
//! secret, nor the other way round.

use std::path::Path;

use ring::hmac;

use crate::ProxyError;

/// File name of the key under clauderon's home.
pub const KEY_FILE: &str = "proxy-identity.key";

/// The key sessions' secrets derive from.
pub struct IdentityKey {
    secrets: hmac::Key,
    doors: hmac::Key,
}

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
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let secrets = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let doors = hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&secrets, DOOR_DOMAIN).as_ref());
        Self { secrets, doors }
    }

    /// A key for tests (not persisted).
    #[cfg(test)]
    pub fn ephemeral() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self::from_bytes(&bytes)
    }

    /// The secret of session `id` (hex).
    pub fn secret(&self, id: &str) -> String {
        hex(&hmac::sign(&self.secrets, id.as_bytes()).as_ref()[..16])
    }

    /// The door key of session `id` (hex): what its pods present at the
    /// proxy's direct door.
    pub fn door_key(&self, id: &str) -> String {
        hex(hmac::sign(&self.doors, id.as_bytes()).as_ref())
    }
}

/// What the door keys' own key is derived with (no session id is this).
const DOOR_DOMAIN: &[u8] = b"clauderon direct door keys\0";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        assert_eq!(a.door_key("s1"), b.door_key("s1"));
        assert_ne!(a.door_key("s1"), a.door_key("s2"));
        assert!(!a.door_key("s1").starts_with(&a.secret("s1")), "a door key is not the session's secret");
        assert_eq!(a.door_key("s1").len(), 64);
    }
}
