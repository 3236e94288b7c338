//! Compile once, and never run native code the daemon did not write.
//!
//! Compiled components are kept on disk, keyed by the component's SHA-256
//! and the engine's compatibility hash, so a new wasmtime version or a
//! different engine configuration never reads a stale artifact. A compiled
//! artifact is machine code the daemon will run as itself, so each entry is
//! authenticated: it is `tag || artifact`, where `tag` is an HMAC-SHA256,
//! under the cache key, of the engine key, the component's digest and the
//! artifact. The key is 32 random bytes in its own 0600 file (`cache.key`
//! beside the cache directory: a protected path, never mounted into a
//! container, hidden from host sessions). An entry is opened without
//! following symlinks, read whole into memory (never mapped, so a later
//! write to the file cannot reach loaded code), and handed to wasmtime only
//! if its tag verifies; anything else — a patched artifact, another
//! component's valid entry moved under this name, a symlink, a file this
//! cache did not write — is logged and recompiled. Files are written whole
//! (temp file + rename) with mode 0600.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ring::hmac;
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

/// Bytes of the tag in front of every entry.
const TAG_BYTES: usize = 32;
/// Bytes of the cache key.
const KEY_BYTES: usize = 32;

/// The on-disk cache (or none: always compile).
#[derive(Clone)]
pub struct CompileCache {
    /// The directory and the key entries are authenticated with; `None`
    /// when there is no cache or its key could not be read or made.
    store: Option<(PathBuf, hmac::Key)>,
    engine_key: String,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache").field("dir", &self.store.as_ref().map(|(d, _)| d)).finish_non_exhaustive()
    }
}

impl CompileCache {
    /// A cache in `dir` for this engine, authenticated with the key in
    /// [`key_path`]`(dir)` (made on first use); `None` compiles every time,
    /// and so does a cache whose key cannot be read or made (logged).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let store = dir.and_then(|dir| {
            let path = key_path(&dir);
            match load_or_make_key(&path) {
                Ok(key) => Some((dir, key)),
                Err(e) => {
                    tracing::warn!("the compile cache is off: its key {} is unusable: {e}", path.display());
                    None
                }
            }
        });
        Self { store, engine_key: format!("{:016x}", h.finish()) }
    }

    /// The cache file for these component bytes.
    pub fn path_for(&self, bytes: &[u8]) -> Option<PathBuf> {
        self.path_for_digest(&Sha256::digest(bytes))
    }

    /// The cache file for component bytes with this SHA-256.
    fn path_for_digest(&self, digest: &[u8]) -> Option<PathBuf> {
        let hex = hex::encode(digest);
        self.store.as_ref().map(|(d, _)| d.join(format!("{}-{}.cwasm", &hex[..32], self.engine_key)))
    }

    /// The tag of `artifact` compiled from the component with SHA-256 `digest`.
    fn tag(&self, key: &hmac::Key, digest: &[u8], artifact: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(self.engine_key.as_bytes());
        ctx.update(digest);
        ctx.update(artifact);
        ctx.sign()
    }

    /// The compiled component, from the cache or compiled now. Blocking: call
    /// it from `spawn_blocking`.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Outcome)> {
        // The component is hashed once: for its entry's name and its tag.
        let digest = Sha256::digest(bytes);
        let entry = self.store.as_ref().zip(self.path_for_digest(&digest));
        if let Some(((_, key), path)) = &entry {
            match self.read_verified(engine, key, &digest, path) {
                Ok(Some(c)) => return Ok((c, Outcome::Hit)),
                Ok(None) => {}
                Err(why) => tracing::warn!("recompiling: refused the cache entry {}: {why}", path.display()),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Some(((_, key), path)) = &entry {
            let artifact = component.serialize()?;
            let tag = self.tag(key, &digest, &artifact);
            if let Err(e) = store(path, tag.as_ref(), &artifact) {
                tracing::warn!("could not write the compile cache {}: {e}", path.display());
            }
        }
        Ok((component, Outcome::Compiled))
    }

    /// The entry at `path` if there is one this cache wrote for the
    /// component with SHA-256 `digest`: `Ok(None)` when there is no entry,
    /// `Err` saying why one is refused.
    fn read_verified(
        &self,
        engine: &Engine,
        key: &hmac::Key,
        digest: &[u8],
        path: &Path,
    ) -> Result<Option<Component>, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("it is a symlink".into()),
            Err(e) => return Err(format!("cannot open it: {e}")),
        };
        let meta = file.metadata().map_err(|e| format!("cannot read it: {e}"))?;
        if !meta.is_file() {
            return Err("it is not a regular file".into());
        }
        let mut data = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut data).map_err(|e| format!("cannot read it: {e}"))?;
        if data.len() <= TAG_BYTES {
            return Err("it is too short to hold a tag".into());
        }
        let (tag, artifact) = data.split_at(TAG_BYTES);
        let expected = self.tag(key, digest, artifact);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_ref(), tag)) {
            return Err("its tag does not verify: this cache did not write it for this component".into());
        }
        // SAFETY: `artifact` is exactly what `load` wrote from `Component::serialize`
        // of this engine's own compilation of these component bytes: its tag,
        // under a key only this user can read, verified above. It is in memory,
        // so nothing can change it between the check and the use.
        unsafe { Component::deserialize(engine, artifact) }
            .map(Some)
            .map_err(|e| format!("wasmtime cannot read it: {e:#}"))
    }
}

/// The file holding the key a cache in `dir` authenticates its entries with.
pub fn key_path(dir: &Path) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "cache".into());
    dir.with_file_name(format!("{name}.key"))
}

/// Read the key, or make one (0600, created exclusively) if there is none.
fn load_or_make_key(path: &Path) -> std::io::Result<hmac::Key> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let opened = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path);
    let bytes = match opened {
        Ok(mut file) => {
            let meta = file.metadata()?;
            // SAFETY: geteuid has no preconditions.
            if meta.uid() != unsafe { libc::geteuid() } || meta.permissions().mode() & 0o077 != 0 {
                return Err(std::io::Error::other("it must be owned by this user with mode 0600"));
            }
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            bytes
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; KEY_BYTES];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| std::io::Error::other("no randomness for a new key"))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            bytes
        }
        Err(e) => return Err(e),
    };
    if bytes.len() != KEY_BYTES {
        return Err(std::io::Error::other(format!("it holds {} bytes, not {KEY_BYTES}", bytes.len())));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

fn store(path: &Path, tag: &[u8], artifact: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    create_private_dir(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(tag)?;
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
