//! Embeds the built dashboard: every file under `web/dist` (what `npm run
//! build` in `web/` makes; `just web`), or `CLAUDERON_WEB_DIST`, each with
//! its content type and a gzip copy made here once, so the daemon never
//! compresses at request time. Without a built dashboard the table is empty
//! and the binary says at `/` how to build it.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-env-changed=CLAUDERON_WEB_DIST");
    let dist = match std::env::var_os("CLAUDERON_WEB_DIST") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("../../web/dist"),
    };
    println!("cargo:rerun-if-changed={}", dist.display());
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        walk(&dist, &mut files)?;
    } else {
        println!(
            "cargo:warning=the web dashboard is not built ({} has no index.html): this binary will say so at /; `just web` builds it",
            dist.display()
        );
    }
    files.sort();
    let mut code = String::from("/// Every file of the built dashboard.\npub static ASSETS: &[Asset] = &[\n");
    for (i, path) in files.iter().enumerate() {
        let rel = path.strip_prefix(&dist)?.to_str().ok_or("a non-UTF-8 file name in web/dist")?.replace('\\', "/");
        let bytes = std::fs::read(path)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        let gz = gz.finish()?;
        // Only where it saves something (not for images that are compressed already).
        let gzip = if gz.len() + 64 < bytes.len() {
            let gz_path = out.join(format!("asset-{i}.gz"));
            std::fs::write(&gz_path, gz)?;
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_string()
        };
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let content_type = match mime.type_() {
            mime_guess::mime::TEXT | mime_guess::mime::APPLICATION
                if ["html", "css", "javascript", "json", "plain", "manifest+json"]
                    .contains(&mime.subtype().as_str()) =>
            {
                format!("{}; charset=utf-8", mime.essence_str())
            }
            _ => mime.essence_str().to_string(),
        };
        code.push_str(&format!(
            "    Asset {{ path: {:?}, content_type: {content_type:?}, raw: include_bytes!({:?}), gzip: {gzip} }},\n",
            format!("/{rel}"),
            path.display().to_string(),
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code)?;
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
