//! Turns plugin crates into clauderon components.
//!
//! A plugin crate is a `cdylib` with a `component.toml` beside its
//! `Cargo.toml`. Building one means: compile it to a core wasm module for
//! `wasm32-unknown-unknown`, wrap the module into a component with
//! `wit-component`, and append the manifest as the component's
//! `clauderon-manifest` custom section.
//!
//! The compiler is found like this ([`Toolchain::detect`]):
//! 1. `CLAUDERON_WASM_TOOLCHAIN=rustup|debian` forces a route;
//! 2. the active rustup toolchain, if its `wasm32-unknown-unknown` target is
//!    installed (`rustup target add wasm32-unknown-unknown`);
//! 3. Debian's `rustc-web` (`/usr/bin/rustc` with its std source), building
//!    std itself with `-Zbuild-std` — the route for machines where rustup
//!    cannot download targets.

use std::path::{Path, PathBuf};
use std::process::Command;

use clauderon_runtime::manifest::{self, Manifest};
use wasm_encoder::{ComponentSection, CustomSection};

/// The wasm target every plugin is compiled for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// What went wrong while building components.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "no Rust compiler for {TARGET} found. Either run `rustup target add {TARGET}`, or on Debian \
         `apt-get install rustc-web cargo-web rust-web-src rust-web-llvm lld-22` (then clauderon builds std itself)"
    )]
    NoToolchain,
    #[error("`{command}` failed ({status}); its output is above")]
    Cargo { command: String, status: String },
    #[error("could not run `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Crate { path: PathBuf, message: String },
    #[error("turning {path} into a component failed: {message}")]
    Encode { path: PathBuf, message: String },
    #[error("{0}")]
    Io(String),
}

/// How to invoke cargo for the wasm target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchain {
    /// The active rustup toolchain with the wasm target installed.
    Rustup,
    /// Debian's rustc-web + rust-web-src, building std with `-Zbuild-std`.
    Debian { rustc: PathBuf, cargo: PathBuf },
}

impl Toolchain {
    /// Find a toolchain that can build for [`TARGET`].
    pub fn detect() -> Result<Self, BuildError> {
        let forced = std::env::var("CLAUDERON_WASM_TOOLCHAIN").unwrap_or_default();
        let debian = Self::debian();
        match forced.as_str() {
            "rustup" => return Ok(Toolchain::Rustup),
            "debian" => return debian.ok_or(BuildError::NoToolchain),
            _ => {}
        }
        if rustup_has_target() {
            return Ok(Toolchain::Rustup);
        }
        debian.ok_or(BuildError::NoToolchain)
    }

    fn debian() -> Option<Self> {
        let rustc = PathBuf::from("/usr/bin/rustc");
        let cargo = PathBuf::from("/usr/bin/cargo");
        let std_src = Path::new("/usr/lib/rustlib/src/rust/library");
        (rustc.exists() && cargo.exists() && std_src.exists()).then_some(Toolchain::Debian { rustc, cargo })
    }

    /// A `cargo build --release --target wasm32-unknown-unknown` for this toolchain.
    fn cargo_build(&self, manifest_path: &Path, target_dir: &Path) -> Command {
        let mut cmd = match self {
            Toolchain::Rustup => Command::new("cargo"),
            Toolchain::Debian { rustc, cargo } => {
                let mut c = Command::new(cargo);
                c.env("RUSTC", rustc).env("RUSTC_BOOTSTRAP", "1");
                c
            }
        };
        // Variables cargo sets for a build script or `cargo run` would leak into the child.
        for var in ["RUSTC", "RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
            if !matches!((self, var), (Toolchain::Debian { .. }, "RUSTC")) {
                cmd.env_remove(var);
            }
        }
        if matches!(self, Toolchain::Debian { .. }) {
            cmd.env_remove("RUSTUP_TOOLCHAIN");
        }
        cmd.arg("build").arg("--release").arg("--workspace").arg("--target").arg(TARGET);
        cmd.arg("--manifest-path").arg(manifest_path).arg("--target-dir").arg(target_dir);
        if matches!(self, Toolchain::Debian { .. }) {
            cmd.arg("-Zbuild-std=std,panic_abort");
        }
        cmd
    }
}

fn rustup_has_target() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot).join("lib/rustlib").join(TARGET).join("lib").exists()
}

/// One component built.
#[derive(Debug, Clone)]
pub struct Built {
    /// Its manifest.
    pub manifest: Manifest,
    /// Where the component file was written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: usize,
}

/// Build every plugin crate of the cargo workspace (or single crate) at
/// `dir` and write `<out>/<id>.wasm` for each.
pub fn build_dir(toolchain: &Toolchain, dir: &Path, target_dir: &Path, out: &Path) -> Result<Vec<Built>, BuildError> {
    let manifest_path = dir.join("Cargo.toml");
    let mut cmd = toolchain.cargo_build(&manifest_path, target_dir);
    let command = format!("cargo build for {}", dir.display());
    let status = cmd.status().map_err(|source| BuildError::Spawn { command: command.clone(), source })?;
    if !status.success() {
        return Err(BuildError::Cargo { command, status: status.to_string() });
    }
    let crates = plugin_crates(&manifest_path)?;
    std::fs::create_dir_all(out).map_err(|e| BuildError::Io(format!("creating {}: {e}", out.display())))?;
    let release = target_dir.join(TARGET).join("release");
    crates.iter().map(|c| package(c, &release, out)).collect()
}

/// A `cdylib` member with a `component.toml`.
struct PluginCrate {
    dir: PathBuf,
    lib_name: String,
}

fn plugin_crates(manifest_path: &Path) -> Result<Vec<PluginCrate>, BuildError> {
    let out = Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(manifest_path)
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .map_err(|source| BuildError::Spawn { command: "cargo metadata".into(), source })?;
    if !out.status.success() {
        return Err(BuildError::Crate {
            path: manifest_path.to_path_buf(),
            message: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| BuildError::Io(format!("cargo metadata printed something unexpected: {e}")))?;
    let mut crates = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        let Some(pkg_manifest) = pkg["manifest_path"].as_str() else { continue };
        let dir = Path::new(pkg_manifest).parent().map(Path::to_path_buf).unwrap_or_default();
        let cdylib = pkg["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["crate_types"].as_array().is_some_and(|ts| ts.iter().any(|k| k == "cdylib")));
        if let (Some(target), true) = (cdylib, dir.join("component.toml").exists()) {
            let lib_name = target["name"].as_str().unwrap_or_default().replace('-', "_");
            crates.push(PluginCrate { dir, lib_name });
        }
    }
    Ok(crates)
}

fn package(c: &PluginCrate, release: &Path, out: &Path) -> Result<Built, BuildError> {
    let toml_path = c.dir.join("component.toml");
    let text = std::fs::read_to_string(&toml_path)
        .map_err(|e| BuildError::Crate { path: toml_path.clone(), message: e.to_string() })?;
    let manifest =
        Manifest::parse(&text).map_err(|e| BuildError::Crate { path: toml_path.clone(), message: e.to_string() })?;
    let core_path = release.join(format!("{}.wasm", c.lib_name));
    let core = std::fs::read(&core_path)
        .map_err(|e| BuildError::Crate { path: core_path.clone(), message: format!("no core module: {e}") })?;
    let component = encode(&core, &text).map_err(|message| BuildError::Encode { path: core_path, message })?;
    let path = out.join(format!("{}.wasm", manifest.id));
    std::fs::write(&path, &component).map_err(|e| BuildError::Io(format!("writing {}: {e}", path.display())))?;
    Ok(Built { manifest, path, size: component.len() })
}

/// Wrap a core module (built with wit-bindgen) into a component and embed
/// the manifest text.
pub fn encode(core: &[u8], manifest_toml: &str) -> Result<Vec<u8>, String> {
    let mut component = wit_component::ComponentEncoder::default()
        .module(core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{e:#}"))?;
    embed_manifest(&mut component, manifest_toml);
    Ok(component)
}

/// Append the manifest as a top-level custom section.
pub fn embed_manifest(component: &mut Vec<u8>, manifest_toml: &str) {
    let section = CustomSection { name: manifest::SECTION.into(), data: manifest_toml.as_bytes().into() };
    section.append_to_component(component);
}
