//! The components built into this binary (see `build.rs`).

use clauderon_runtime::Source;

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The bundled components as runtime sources.
pub fn sources() -> Vec<Source> {
    BUNDLED.iter().map(|(name, bytes)| Source::Bundled { name: (*name).to_string(), bytes: (*bytes).into() }).collect()
}

/// Write the embedded container relay to `dir/clauderon-relay` (0755; done
/// again only when its contents changed); `None` if this build has none.
pub fn install_relay(dir: &std::path::Path) -> anyhow::Result<Option<std::path::PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    if RELAY.is_empty() {
        tracing::warn!("this build has no container relay: Docker sessions cannot start (build with `./justw build`)");
        return Ok(None);
    }
    let path = dir.join("clauderon-relay");
    if std::fs::read(&path).ok().as_deref() != Some(RELAY) {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("clauderon-relay.tmp");
        std::fs::write(&tmp, RELAY)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(Some(path))
}
