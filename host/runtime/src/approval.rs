//! What a user approved for a user component, bound to its bytes.
//!
//! `clauderon plugins install` writes an [`Approval`] beside the component
//! (`<id>.grants.toml`): the component's id, the SHA-256 of its file, and
//! the grants shown to the user. The component loads only while all three
//! still hold: a file replaced by another component (a new id, or the same
//! id with other code) or changed in any byte is refused until it is
//! approved again, so no code ever runs with grants approved for other code.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::Capabilities;

/// An approval: these bytes, under this id, with these grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The id the approved component gave in its manifest.
    pub id: String,
    /// The SHA-256 of the approved file, in hex.
    pub sha256: String,
    /// The grants approved.
    pub capabilities: Capabilities,
}

/// The SHA-256 of a component file, in hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Approval {
    /// Approve `bytes`, whose manifest id is `id`, with `capabilities`.
    pub fn new(id: &str, bytes: &[u8], capabilities: Capabilities) -> Self {
        Self { id: id.to_string(), sha256: digest(bytes), capabilities }
    }

    /// Why `bytes` (whose manifest says `id`) are not what was approved, if they are not.
    pub fn mismatch(&self, id: &str, bytes: &[u8]) -> Option<String> {
        let now = digest(bytes);
        if self.id != id {
            return Some(format!("the approval is for `{}`, but this file is now `{id}`", self.id));
        }
        if self.sha256 != now {
            return Some(format!(
                "the file changed since it was approved (approved sha256 {}…, now {}…)",
                &self.sha256[..self.sha256.len().min(12)],
                &now[..12]
            ));
        }
        None
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        Ok(format!(
            "# Approved with `clauderon plugins install`: this file (its sha256), under this id,\n\
             # with these capabilities. A changed file or a request for more is refused.\n{}",
            toml::to_string(self)?
        ))
    }

    /// The approval in `path`: `Ok(None)` if there is none, `Err` (a
    /// sentence) if it cannot be read, including one written before
    /// approvals were bound to bytes.
    pub fn read(path: &Path) -> Result<Option<Self>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        toml::from_str(&text).map(Some).map_err(|e| {
            format!(
                "{} is not an approval this clauderon can read ({}); approve the component again with \
                 `clauderon plugins install`",
                path.display(),
                e.message()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_holds_only_for_the_same_bytes_and_id() {
        let caps = Capabilities { process: vec!["tmux".into()], ..Default::default() };
        let a = Approval::new("mine", b"component bytes", caps);
        assert_eq!(a.mismatch("mine", b"component bytes"), None);
        assert!(a.mismatch("mine", b"component bytez").is_some_and(|m| m.contains("changed")));
        assert!(a.mismatch("other", b"component bytes").is_some_and(|m| m.contains("now `other`")));
        let text = a.to_toml().expect("toml");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mine.grants.toml");
        std::fs::write(&path, &text).expect("write");
        assert_eq!(Approval::read(&path), Ok(Some(a)));
        std::fs::write(&path, "process = [\"tmux\"]\n").expect("an old, unbound approval");
        assert!(Approval::read(&path).is_err_and(|e| e.contains("approve the component again")));
        assert_eq!(Approval::read(&dir.path().join("none.grants.toml")), Ok(None));
    }
}
