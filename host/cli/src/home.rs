//! Where clauderon keeps its state: `CLAUDERON_HOME`, or `~/.clauderon`.

use std::path::PathBuf;

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
}
