//! `environment`: a credential source reads the daemon's environment
//! variables, only those named in its grant — from a snapshot the daemon
//! takes first thing ([`capture`]), because it then wipes the values of every
//! variable a credential source may read from its own process environment
//! ([`wipe`]): there a child process, a crash dump or anyone reading
//! `/proc/<daemon>/environ` would find them.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::bindings::environment::Host;
use crate::state::HostState;

static SNAPSHOT: OnceLock<HashMap<String, String>> = OnceLock::new();

/// Take the snapshot credential sources read from. Call it before any thread
/// starts; without it, they read the live environment.
pub fn capture() {
    let _ = SNAPSHOT
        .set(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect());
}

fn lookup(name: &str) -> Option<String> {
    match SNAPSHOT.get() {
        Some(snapshot) => snapshot.get(name).cloned(),
        None => std::env::var(name).ok(),
    }
}

/// Overwrite, in place, the values of the variables `names` in this
/// process's environment — the block the kernel shows as
/// `/proc/self/environ`, and any entry of `environ` set later — with NULs,
/// so each reads as empty. Returns how many values were wiped. Lengths and
/// pointers never change, so a concurrent reader sees at worst an empty
/// value.
pub fn wipe(names: &[String]) -> usize {
    let prefixes: Vec<Vec<u8>> = names.iter().map(|n| format!("{n}=").into_bytes()).collect();
    let mut wiped = 0;
    // The original block: [env_start, env_end) from /proc/self/stat.
    if let Some((start, end)) = env_block() {
        let mut at = start;
        while at < end {
            // SAFETY: [env_start, env_end) is this process's own mapped,
            // writable environment block (on its stack), a run of
            // NUL-terminated strings; every read and write stays inside it.
            let len = (at..end).take_while(|p| unsafe { *(*p as *const u8) } != 0).count();
            let entry = unsafe { std::slice::from_raw_parts_mut(at as *mut u8, len) };
            if let Some(prefix) = prefixes.iter().find(|p| entry.starts_with(p)) {
                entry[prefix.len()..].fill(0);
                wiped += 1;
            }
            at += len + 1;
        }
    }
    // Entries outside that block (a variable set after start).
    // SAFETY: `environ` is a NULL-terminated array of NUL-terminated strings
    // owned by libc; values are overwritten within their own length.
    unsafe {
        let mut entry = libc::environ;
        while !entry.is_null() && !(*entry).is_null() {
            let text = std::ffi::CStr::from_ptr(*entry);
            let bytes = text.to_bytes();
            if let Some(prefix) = prefixes.iter().find(|p| bytes.starts_with(p)) {
                let value = (*entry).add(prefix.len()) as *mut u8;
                std::ptr::write_bytes(value, 0, bytes.len() - prefix.len());
            }
            entry = entry.add(1);
        }
    }
    wiped
}

/// `env_start` and `env_end` of this process (fields 50 and 51 of `/proc/self/stat`).
fn env_block() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is fields[N - 3].
    let start = fields.get(47)?.parse().ok()?;
    let end = fields.get(48)?.parse().ok()?;
    (start < end).then_some((start, end))
}

/// Add `environment` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::environment::add_to_linker::<HostState, super::Data>(linker, super::state)
}

impl Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        if !self.ctx.grants.env.contains(&name) {
            tracing::warn!(component = %self.ctx.id, "asked for environment variable `{name}`, which it was not granted");
            return Ok(None);
        }
        Ok(lookup(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_block_is_found() {
        let (start, end) = env_block().expect("env_start/env_end");
        assert!(end > start && end - start < 1 << 24, "{start:#x}..{end:#x}");
    }
}
