//! The limits every call runs under, and the pieces that enforce them:
//! a memory limiter per store, and a byte counter for returned data.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits for one kind of component. In `config.toml` any field may be left
/// out to keep its default: `[limits.backend] deadline = 30000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline of one call, in milliseconds in the config (enforced
    /// with epochs, and by a timeout around the whole call for time spent in
    /// host functions).
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Largest linear memory an instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Most data one call may return, in bytes.
    pub output_bytes: usize,
    /// Most log text one call may write, in bytes.
    pub log_bytes_per_call: usize,
    /// Most log text one component may write per minute, over all its calls,
    /// in bytes; past it, its lines are dropped with one warning.
    pub log_bytes_per_minute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            output_bytes: 1 << 20,
            log_bytes_per_call: 256 << 10,
            log_bytes_per_minute: 4 << 20,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Caps linear memory (and tables) of one store; remembers that it refused.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    /// Set when a growth past the cap was refused.
    pub hit: bool,
}

impl MemoryLimiter {
    /// A limiter with this cap.
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, hit: false }
    }
}

/// Most table elements an instance may have (plenty for Rust guests).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} bytes reached (had {current}, asked for {desired})",
                self.max_bytes
            )));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Whether `value`, serialized as JSON, fits in `cap` bytes. Stops counting
/// as soon as it passes the cap, so a huge value costs no more than the cap.
pub fn fits<T: Serialize>(value: &T, cap: usize) -> bool {
    struct Counter {
        left: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.left {
                return Err(std::io::Error::other("over the cap"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Counter { left: cap }, value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_counts_serialized_bytes() {
        assert!(fits(&"abc", 5));
        assert!(!fits(&"abcd", 5));
        assert!(!fits(&vec!["x".repeat(1000)], 999));
    }
}
