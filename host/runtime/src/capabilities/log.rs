//! `log`: component log lines into the host's tracing output, capped per
//! message, per call and per component per minute ([`LogService`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::bindings::log::{Host, Level};
use crate::state::HostState;

/// Each component's log use in the current minute, so that no component can
/// fill the daemon's log (and its disk) however often it is called.
#[derive(Default)]
pub struct LogService {
    windows: std::sync::Mutex<HashMap<String, Window>>,
}

struct Window {
    start: Instant,
    used: usize,
    warned: bool,
}

impl LogService {
    /// How many of `want` bytes `component` may still log this minute under
    /// `quota`, and whether this is the first refusal of the minute (to warn once).
    fn take(&self, component: &str, want: usize, quota: usize) -> (usize, bool) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let w = windows.entry(component.to_string()).or_insert(Window { start: now, used: 0, warned: false });
        if now.duration_since(w.start) >= Duration::from_secs(60) {
            *w = Window { start: now, used: 0, warned: false };
        }
        let granted = want.min(quota.saturating_sub(w.used));
        w.used += granted;
        let warn = granted < want && !w.warned;
        w.warned |= warn;
        (granted, warn)
    }
}

/// Longest message kept; the rest is cut with a note.
pub const MAX_MESSAGE_BYTES: usize = 8 << 10;

/// How an error line says the component is panicking (the SDK's panic hook
/// writes it); a trap that follows in the same call is reported with it.
pub const PANIC_PREFIX: &str = "panic: ";

/// Longest panic message carried into the call's error.
const MAX_PANIC_BYTES: usize = 1 << 10;

/// Add `log` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::log::add_to_linker::<HostState, super::Data>(linker, super::state)
}

impl Host for HostState {
    async fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        // Kept whatever the log budget: if the call traps next, this is why.
        if let (Level::Error, Some(said)) = (level, message.strip_prefix(PANIC_PREFIX)) {
            self.panic = Some(crate::error::one_line(said, MAX_PANIC_BYTES));
        }
        let budget = self.ctx.limits.log_bytes_per_call.saturating_sub(self.log_used);
        let keep = message.len().min(MAX_MESSAGE_BYTES).min(budget);
        let quota = self.ctx.limits.log_bytes_per_minute;
        let (keep, warn) = self.services.log.take(&self.ctx.id, keep, quota);
        if warn {
            tracing::warn!(
                component = %self.ctx.id,
                "reached its log quota of {quota} bytes per minute; its log lines are dropped until the minute is over"
            );
        }
        if keep < message.len() {
            self.log_dropped += message.len() - keep;
        }
        if keep == 0 {
            return Ok(());
        }
        self.log_used += keep;
        let end = message.floor_char_boundary(keep);
        let text = &message[..end];
        let cut = if end < message.len() { " […cut]" } else { "" };
        let id = &self.ctx.id;
        match level {
            Level::Trace => tracing::trace!(component = %id, "{text}{cut}"),
            Level::Debug => tracing::debug!(component = %id, "{text}{cut}"),
            Level::Info => tracing::info!(component = %id, "{text}{cut}"),
            Level::Warn => tracing::warn!(component = %id, "{text}{cut}"),
            Level::Error => tracing::error!(component = %id, "{text}{cut}"),
        }
        Ok(())
    }
}
