//! Where clauderon keeps its state: `CLAUDERON_HOME`, or `~/.clauderon`.
//! The directory is private (0700) whatever made it first, and the files in
//! it that the daemon writes are 0600: it holds keys, the API token, secrets
//! and the store, and no other local user (and no session) may read them.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The clauderon home directory and the paths inside it.
pub struct Home {
    /// The directory itself.
    pub root: PathBuf,
}

impl Home {
    /// `CLAUDERON_HOME`, or `~/.clauderon`.
    pub fn locate() -> anyhow::Result<Self> {
        if let Some(dir) = std::env::var_os("CLAUDERON_HOME").filter(|d| !d.is_empty()) {
            return Ok(Self { root: PathBuf::from(dir) });
        }
        let home = std::env::var_os("HOME").context("neither CLAUDERON_HOME nor HOME is set")?;
        Ok(Self { root: PathBuf::from(home).join(".clauderon") })
    }

    /// Copies of the plugin SDK that `clauderon plugins new` wrote, one per
    /// SDK content: `<home>/sdk`.
    pub fn sdk(&self) -> PathBuf {
        self.root.join("sdk")
    }

    /// User components: `<home>/components`.
    pub fn components(&self) -> PathBuf {
        self.root.join("components")
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The redb store.
    pub fn store(&self) -> PathBuf {
        self.root.join("clauderon.redb")
    }

    /// The daemon's log when started in the background.
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    /// The API token file (0600), made at the daemon's first start.
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api-token")
    }

    /// The daemon's VAPID key for Web Push (PKCS#8, 0600), made when first needed.
    pub fn push_key(&self) -> PathBuf {
        self.root.join("push-vapid.pk8")
    }

    /// Create the home (0700), or make an existing one private again — e.g.
    /// after a `mkdir -p ~/.clauderon/secrets` left it 0755 — along with the
    /// secrets directory and the files clauderon keeps there.
    pub fn ensure_private(&self) -> anyhow::Result<()> {
        clauderon_runtime::cache::create_private_dir(&self.root)
            .with_context(|| format!("creating {}", self.root.display()))?;
        restrict(&self.root, 0o700)?;
        restrict(&self.root.join("secrets"), 0o700)?;
        for file in [self.config(), self.store(), self.daemon_log(), self.api_token(), self.push_key()] {
            restrict(&file, 0o600)?;
        }
        Ok(())
    }

    /// The API token: `[daemon] token` / `CLAUDERON_API_TOKEN` when set, else
    /// the token file, made now (random, 0600) if there is none.
    pub fn load_or_create_token(&self, configured: Option<&str>) -> anyhow::Result<String> {
        if let Some(token) = configured {
            return Ok(token.to_string());
        }
        if let Some(token) = self.read_token()? {
            return Ok(token);
        }
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let path = self.api_token();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut file, token.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(token)
    }

    /// The token in the token file, if there is one.
    pub fn read_token(&self) -> anyhow::Result<Option<String>> {
        let path = self.api_token();
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading the API token {}", path.display())),
        }
    }
}

/// Take group and other permissions off `path` (if it exists) down to `mode`.
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_symlink() => m,
        _ => return Ok(()),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    Ok(())
}
