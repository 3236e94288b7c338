//! Template hook: logs every session event and counts how many it has seen.
//!
//! clauderon calls a hook on a fresh instance for every event, so nothing
//! survives in memory between calls: state that must last goes in `kv`, the
//! small key-value store private to each component. A hook that fails is
//! logged by clauderon and never blocks the session.

use clauderon_sdk::types::{EventKind, SessionEvent};
use clauderon_sdk::{Hook, HookInfo, Result, kv, log};

/// The kv key holding the count, a `u64` as 8 little-endian bytes.
const COUNTER: &str = "events-seen";

struct ExampleHook;

impl Hook for ExampleHook {
    fn info() -> HookInfo {
        HookInfo { id: "example-hook".into(), display_name: "Event logger (example)".into() }
    }

    fn on_event(event: SessionEvent) -> Result<()> {
        let seen = decode(kv::get(COUNTER)?.as_deref()).wrapping_add(1);
        kv::set(COUNTER, &seen.to_le_bytes())?;
        log::info(&format!(
            "event #{seen}: session `{}` ({}) {}{}",
            event.session_name,
            event.session_id,
            describe(&event.kind),
            event.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
        ));
        Ok(())
    }
}

clauderon_sdk::export_hook!(ExampleHook);

/// The stored count; 0 if there is none yet (or it is not 8 bytes).
fn decode(bytes: Option<&[u8]>) -> u64 {
    bytes.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_le_bytes)
}

/// What happened, in a few words.
fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Created => "was created".into(),
        EventKind::StatusChanged(s) => format!("changed status to {s:?}"),
        EventKind::AgentStatusChanged(s) => format!("has an agent status of {s:?}"),
        EventKind::AccessModeChanged(m) => format!("changed access mode to {m:?}"),
        EventKind::EgressChanged(e) if e.allow_all => "may now reach any host".to_string(),
        EventKind::EgressChanged(e) => format!("may now reach the allow-list and {:?}", e.hosts),
        EventKind::Deleted => "was deleted".into(),
        EventKind::CreateFailed => "could not be created".into(),
        EventKind::Reconciled(note) => format!("was reconciled: {note}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_counter() {
        assert_eq!(decode(None), 0);
        assert_eq!(decode(Some(&41u64.to_le_bytes())), 41);
        assert_eq!(decode(Some(b"bad")), 0);
    }
}
