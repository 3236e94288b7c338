//! `clauderon-componentize`: build plugin crates into components (used by `just components`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use clauderon_componentize::{Toolchain, build_dir};

/// Build every plugin crate in the given cargo workspaces into `OUT/<id>.wasm`.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Directory the components are written to.
    #[arg(long)]
    out: PathBuf,
    /// Cargo target directory for the wasm builds (shared across workspaces so std is built once).
    #[arg(long, env = "CLAUDERON_WASM_TARGET_DIR")]
    target_dir: PathBuf,
    /// Cargo workspaces (or single crates) holding plugin crates.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let toolchain = Toolchain::detect()?;
    eprintln!("building components with {toolchain:?}");
    for dir in &args.dirs {
        let built = build_dir(&toolchain, dir, &args.target_dir, &args.out)
            .with_context(|| format!("building the components in {}", dir.display()))?;
        for b in built {
            eprintln!(
                "  {:<20} {:<18} {:>8} bytes  {}",
                b.manifest.id,
                b.manifest.kind.to_string(),
                b.size,
                b.path.display()
            );
        }
    }
    Ok(())
}
