//! Components' key-value state (the `kv` capability), kept in the store.

use std::sync::Arc;

use clauderon_runtime::capabilities::kv::KvStore;
use clauderon_store::Store;

/// The store as the runtime's [`KvStore`].
pub struct StoreKv(pub Arc<Store>);

impl KvStore for StoreKv {
    fn get(&self, c: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.kv_get(c, key).map_err(|e| e.to_string())
    }
    fn set(&self, c: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.kv_set(c, key, value).map_err(|e| e.to_string())
    }
    fn delete(&self, c: &str, key: &str) -> Result<bool, String> {
        self.0.kv_delete(c, key).map_err(|e| e.to_string())
    }
    fn keys(&self, c: &str, prefix: &str) -> Result<Vec<String>, String> {
        let entries = self.0.kv_entries(c).map_err(|e| e.to_string())?;
        Ok(entries.into_iter().map(|(k, _)| k).filter(|k| k.starts_with(prefix)).collect())
    }
    fn usage(&self, c: &str) -> Result<usize, String> {
        let entries = self.0.kv_entries(c).map_err(|e| e.to_string())?;
        Ok(entries.iter().map(|(k, v)| k.len() + v.len()).sum())
    }
}
