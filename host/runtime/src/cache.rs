//! Compile once: compiled components are kept on disk, keyed by the
//! component's SHA-256 and the engine's compatibility hash, so a new
//! wasmtime version or a different engine configuration never reads a stale
//! artifact. Files are written whole (temp file + rename) with mode 0600, and
//! only files this cache wrote are ever deserialized.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a compiled component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Read from the cache.
    Hit,
    /// Compiled now (and written to the cache if there is one).
    Compiled,
}

/// The on-disk cache (or none: always compile).
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    /// A cache in `dir` for this engine; `None` compiles every time.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self { dir, engine_key: format!("{:016x}", h.finish()) }
    }

    /// The cache file for these component bytes.
    pub fn path_for(&self, bytes: &[u8]) -> Option<PathBuf> {
        let digest = hex::encode(Sha256::digest(bytes));
        self.dir.as_ref().map(|d| d.join(format!("{}-{}.cwasm", &digest[..32], self.engine_key)))
    }

    /// The compiled component, from the cache or compiled now. Blocking: call
    /// it from `spawn_blocking`.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Outcome)> {
        let path = self.path_for(bytes);
        if let Some(path) = path.as_deref().filter(|p| p.exists()) {
            // SAFETY: the file was written by `store` below from `Component::serialize`
            // of this engine's own compilation, in a directory only this user can write.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(c) => return Ok((c, Outcome::Hit)),
                Err(e) => tracing::warn!("ignoring unreadable cache entry {}: {e:#}", path.display()),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Some(path) = path
            && let Err(e) = store(&path, &component.serialize()?)
        {
            tracing::warn!("could not write the compile cache {}: {e}", path.display());
        }
        Ok((component, Outcome::Compiled))
    }
}

fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    create_private_dir(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(artifact)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = format!(".tmp-{}-{:x}", std::process::id(), rand_suffix());
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    Ok((path, file))
}

fn rand_suffix() -> u64 {
    let mut h = DefaultHasher::new();
    std::time::SystemTime::now().hash(&mut h);
    std::thread::current().id().hash(&mut h);
    h.finish()
}

/// Create `dir` (and parents) with mode 0700 for the last component.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}
