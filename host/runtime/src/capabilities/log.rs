//! `log`: component log lines into the host's tracing output, capped per
//! message and per call.

use crate::bindings::log::{Host, Level};
use crate::state::HostState;

/// Longest message kept; the rest is cut with a note.
pub const MAX_MESSAGE_BYTES: usize = 8 << 10;

/// Add `log` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::log::add_to_linker::<HostState, super::Data>(linker, super::state)
}

impl Host for HostState {
    async fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let budget = self.ctx.limits.log_bytes_per_call.saturating_sub(self.log_used);
        let keep = message.len().min(MAX_MESSAGE_BYTES).min(budget);
        if keep < message.len() {
            self.log_dropped += message.len() - keep;
        }
        if keep == 0 {
            return Ok(());
        }
        self.log_used += keep;
        let mut end = keep;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
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
