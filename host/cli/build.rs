//! Embeds the bundled components (built by `just components`) into the binary.
//!
//! They are read from `CLAUDERON_COMPONENTS_DIR`, or else from
//! `<cargo target dir>/components`. Without them the binary still builds, with
//! no bundled components, and says so at run time.

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
    std::fs::write(out_dir.join("bundled.rs"), src).expect("writing bundled.rs");
}
