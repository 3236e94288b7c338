//! The components and the container relay built into this binary (see `build.rs`).

use clauderon_runtime::Source;

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The bundled components as runtime sources.
pub fn sources() -> Vec<Source> {
    BUNDLED.iter().map(|(name, bytes)| Source::Bundled { name: (*name).to_string(), bytes: (*bytes).into() }).collect()
}
