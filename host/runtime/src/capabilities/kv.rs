//! `kv`: small state private to each component, with size caps. The store
//! behind it is a [`KvStore`]; the daemon plugs in its redb store, tests and
//! one-shot commands use [`MemoryKv`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::bindings::PluginError;
use crate::bindings::kv::Host;
use crate::error::HostError;
use crate::state::HostState;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// Most bytes (keys + values) one component may keep.
pub const MAX_TOTAL_BYTES: usize = 1 << 20;

/// Where component state lives. Every method is scoped to one component id.
pub trait KvStore: Send + Sync {
    /// The value under `key`.
    fn get(&self, component: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Store a value.
    fn set(&self, component: &str, key: &str, value: &[u8]) -> Result<(), String>;
    /// Remove a key; whether it existed.
    fn delete(&self, component: &str, key: &str) -> Result<bool, String>;
    /// Keys with a prefix, sorted.
    fn keys(&self, component: &str, prefix: &str) -> Result<Vec<String>, String>;
    /// Bytes (keys + values) the component keeps.
    fn usage(&self, component: &str) -> Result<usize, String>;
}

/// A [`KvStore`] in memory.
#[derive(Default)]
pub struct MemoryKv {
    data: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryKv {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<(String, String), Vec<u8>>) -> R) -> Result<R, String> {
        let mut guard = self.data.lock().map_err(|_| "the kv store is unusable after a panic".to_string())?;
        Ok(f(&mut guard))
    }
}

impl KvStore for MemoryKv {
    fn get(&self, c: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.with(|m| m.get(&(c.to_string(), key.to_string())).cloned())
    }
    fn set(&self, c: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.with(|m| {
            m.insert((c.to_string(), key.to_string()), value.to_vec());
        })
    }
    fn delete(&self, c: &str, key: &str) -> Result<bool, String> {
        self.with(|m| m.remove(&(c.to_string(), key.to_string())).is_some())
    }
    fn keys(&self, c: &str, prefix: &str) -> Result<Vec<String>, String> {
        self.with(|m| m.keys().filter(|(cc, k)| cc == c && k.starts_with(prefix)).map(|(_, k)| k.clone()).collect())
    }
    fn usage(&self, c: &str) -> Result<usize, String> {
        self.with(|m| m.iter().filter(|((cc, _), _)| cc == c).map(|((_, k), v)| k.len() + v.len()).sum())
    }
}

fn check_key(key: &str) -> Result<(), PluginError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(PluginError::InvalidInput(format!("kv keys must be 1-{MAX_KEY_BYTES} bytes")));
    }
    Ok(())
}

/// Add `kv` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::kv::add_to_linker::<HostState, super::Data>(linker, super::state)
}

/// A failure of the store behind kv, as the component sees it.
fn store_failed(e: String) -> HostError {
    PluginError::Failed(e).into()
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        check_key(&key)?;
        self.services.kv.get(&self.ctx.id, &key).map_err(store_failed)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(PluginError::InvalidInput(format!(
                "kv values are at most {MAX_VALUE_BYTES} bytes; this one is {}",
                value.len()
            ))
            .into());
        }
        let (kv, id) = (&self.services.kv, &self.ctx.id);
        let old = kv.get(id, &key).map_err(store_failed)?.map(|v| key.len() + v.len()).unwrap_or(0);
        let total = kv.usage(id).map_err(store_failed)? - old + key.len() + value.len();
        if total > MAX_TOTAL_BYTES {
            return Err(PluginError::InvalidInput(format!(
                "a component may keep at most {MAX_TOTAL_BYTES} bytes in kv; this would make {total}"
            ))
            .into());
        }
        kv.set(id, &key, &value).map_err(store_failed)
    }

    async fn delete(&mut self, key: String) -> Result<bool, HostError> {
        self.services.kv.delete(&self.ctx.id, &key).map_err(store_failed)
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, HostError> {
        self.services.kv.keys(&self.ctx.id, &prefix).map_err(store_failed)
    }
}
