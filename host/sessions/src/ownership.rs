//! Who a container runs as, and so who owns a container session's files.
//! Containers never run as root on the host's files: they run as the user
//! (the daemon's uid), or — when the daemon itself runs as root — as an
//! unprivileged uid, [`CONTAINER_UID`], which is then given the session's
//! clone, config home and proxy socket. Nothing a container writes is ever
//! root's on the host, so a setuid binary it plants in the worktree is
//! worthless.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::SessionError;

/// The uid (and gid) containers run as when the daemon runs as root
/// (distroless' "nonroot").
pub const CONTAINER_UID: u32 = 65532;

/// `uid:gid` a container of this daemon runs as.
pub fn container_user() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 { (CONTAINER_UID, CONTAINER_UID) } else { (uid, gid) }
}

/// Give every file under each of `paths` (not following symlinks) to the
/// container's user, when that is not the daemon's own.
pub async fn hand_over(paths: Vec<std::path::PathBuf>) -> Result<(), SessionError> {
    let (uid, gid) = container_user();
    // SAFETY: as above.
    if uid == unsafe { libc::getuid() } {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        for path in &paths {
            chown_tree(path, uid, gid)
                .map_err(|e| SessionError::Failed(format!("giving {} to uid {uid}: {e}", path.display())))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| SessionError::Failed(format!("changing ownership: {e}")))?
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
