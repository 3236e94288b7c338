//! Embeds the bundled components (built by `just components`) and the static
//! container relay (built by `just relay`) into the binary.
//!
//! Components are read from `CLAUDERON_COMPONENTS_DIR`, or else from
//! `<cargo target dir>/components`; the relay from `CLAUDERON_RELAY_BIN`.
//! Without them the binary still builds, and says at run time what is missing.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=CLAUDERON_COMPONENTS_DIR");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = std::env::var_os("CLAUDERON_COMPONENTS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out
        out_dir.ancestors().nth(4).map(|t| t.join("components")).unwrap_or_default()
    });
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "wasm"));
    files.sort();
    if files.is_empty() {
        println!(
            "cargo:warning=no bundled components in {} — run `just components` first; this binary will have none",
            dir.display()
        );
    }
    let mut src =
        String::from("/// Bundled components: (file name, bytes).\npub static BUNDLED: &[(&str, &[u8])] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or("component");
        let _ = writeln!(src, "    ({name:?}, include_bytes!({:?})),", f.display().to_string());
    }
    src.push_str("];\n");
    println!("cargo:rerun-if-env-changed=CLAUDERON_RELAY_BIN");
    let relay = std::env::var_os("CLAUDERON_RELAY_BIN").map(PathBuf::from).filter(|p| p.is_file());
    match relay {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            let _ = writeln!(
                src,
                "/// The static container relay.\npub static RELAY: &[u8] = include_bytes!({:?});",
                path.display().to_string()
            );
        }
        None => {
            println!(
                "cargo:warning=no container relay (CLAUDERON_RELAY_BIN) — run `just relay` first; Docker sessions will not start"
            );
            src.push_str(
                "/// The static container relay (not built into this binary).\npub static RELAY: &[u8] = &[];\n",
            );
        }
    }
    std::fs::write(out_dir.join("bundled.rs"), src).expect("writing bundled.rs");
    embed_sdk(&out_dir);
}

/// Embeds the plugin SDK (`sdk/`, its templates, and `wit/`, which the SDK
/// reads as `../wit`) for `clauderon plugins new`, as `SDK_FILES`:
/// (path relative to the repository, text).
fn embed_sdk(out_dir: &std::path::Path) {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
        collect(&root, &root.join(dir), &mut files);
    }
    files.sort();
    let mut src = String::from(
        "/// The plugin SDK's files: (path in the repository, text).\npub static SDK_FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in &files {
        let _ = writeln!(src, "    ({rel:?}, include_str!({:?})),", abs.display().to_string());
    }
    src.push_str("];\n");
    std::fs::write(out_dir.join("sdk_files.rs"), src).expect("writing sdk_files.rs");
}

/// Every file under `dir` but build output (`target`), as (relative path, absolute path).
fn collect(root: &std::path::Path, dir: &std::path::Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "target" {
                collect(root, &path, files);
            }
        } else if let Ok(rel) = path.strip_prefix(root) {
            files.push((rel.display().to_string(), path.canonicalize().unwrap_or(path.clone())));
        }
    }
}
