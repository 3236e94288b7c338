//! `clauderon plugins dev DIR`: the author's loop. Build the plugin crate(s)
//! in DIR, install what built into the running daemon, then watch DIR's
//! sources and do it again on every change until Ctrl-C.
//!
//! A failed build or a refused install is reported and the watching goes on:
//! the daemon keeps running the last good build. Changes are noticed with
//! `notify` (inotify here), never by polling; `target/`, hidden files and
//! editors' scratch files are ignored, and a burst of changes (an editor's
//! save, a `git checkout`) is one rebuild.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::plugins;
use clauderon_daemon::Home;

/// How long the sources must be quiet before a change is built.
const SETTLE: Duration = Duration::from_millis(300);

pub async fn run(home: &Home, dir: PathBuf, yes: bool) -> anyhow::Result<ExitCode> {
    let dir = dir.canonicalize().with_context(|| format!("no such directory: {}", dir.display()))?;
    if !dir.join("Cargo.toml").is_file() {
        anyhow::bail!("{} has no Cargo.toml: give `plugins dev` a plugin crate (see `plugins new`)", dir.display());
    }
    let (tx, mut changes) = mpsc::unbounded_channel();
    let _watcher = watch(&dir, tx)?;
    // Registered once: a Ctrl-C during a build (which also stops cargo) is
    // kept and ends the loop right after it, not lost.
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("listening for Ctrl-C")?;

    cycle(home, &dir, yes, None).await;
    let mut pending = changed_meanwhile(&mut changes);
    loop {
        let waiting = pending.is_empty();
        if waiting {
            println!("Watching {} for changes (Ctrl-C to stop).", dir.display());
        }
        tokio::select! {
            biased;
            _ = interrupt.recv() => return Ok(ExitCode::SUCCESS),
            changed = changes.recv(), if waiting => pending.push(changed.context("the file watcher stopped")?),
            () = std::future::ready(()), if !waiting => {}
        }
        // Let a burst of changes settle into one rebuild.
        while let Ok(Some(more)) = tokio::time::timeout(SETTLE, changes.recv()).await {
            pending.push(more);
        }
        cycle(home, &dir, yes, Some(&pending)).await;
        pending = changed_meanwhile(&mut changes);
    }
}

/// What changed while a build ran (built again at once, since the build may
/// have read the old text), but the `Cargo.lock` cargo itself writes.
fn changed_meanwhile(changes: &mut mpsc::UnboundedReceiver<PathBuf>) -> Vec<PathBuf> {
    std::iter::from_fn(|| changes.try_recv().ok())
        .filter(|p| p.file_name().is_none_or(|name| name != "Cargo.lock"))
        .collect()
}

/// Build and install once, saying what happened; never fails the loop.
async fn cycle(home: &Home, dir: &Path, yes: bool, changed: Option<&[PathBuf]>) {
    let started = Instant::now();
    match changed {
        None => println!("Building {}…", dir.display()),
        Some(paths) => {
            let mut names: Vec<String> =
                paths.iter().map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string()).collect();
            names.sort();
            names.dedup();
            println!("Changed: {}; building…", names.join(", "));
        }
    }
    let outcome = async {
        let (built, refused) = plugins::build_checked(home, dir, None).await?;
        let mut all_good = !refused;
        for file in built {
            all_good &= plugins::install(home, &file, yes).await? == ExitCode::SUCCESS;
        }
        anyhow::Ok(all_good)
    }
    .await;
    let took = started.elapsed().as_secs_f64();
    match outcome {
        Ok(true) => println!("Ready in {took:.1} s."),
        Ok(false) => println!("Not everything was installed ({took:.1} s); the daemon keeps the last good build."),
        Err(e) => {
            eprintln!("error: {e:#}");
            println!("Failed after {took:.1} s; the daemon keeps the last good build.");
        }
    }
}

/// Watch `dir`'s sources: every file directly in it, and every directory in
/// it but `target` and hidden ones, recursively. Each change worth a rebuild
/// is sent to `tx` as its path.
fn watch(dir: &Path, tx: mpsc::UnboundedSender<PathBuf>) -> anyhow::Result<notify::RecommendedWatcher> {
    let root = dir.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
            return;
        }
        for path in event.paths.into_iter().filter(|p| worth_a_rebuild(&root, p)) {
            let _ = tx.send(path);
        }
    })
    .context("starting the file watcher")?;
    watcher.watch(dir, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", dir.display()))?;
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && worth_a_rebuild(dir, &path) {
            watcher.watch(&path, RecursiveMode::Recursive).with_context(|| format!("watching {}", path.display()))?;
        }
    }
    Ok(watcher)
}

/// Whether a change to `path` (inside `root`) can change what builds: not
/// under a `target` directory, not hidden, not an editor's scratch file.
fn worth_a_rebuild(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else { return false };
    let scratch = |name: &str| {
        name.starts_with('.')
            || name.ends_with('~')
            || name.ends_with(".swp")
            || name.ends_with(".swx")
            || name == "4913"
    };
    !rel.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        name == "target" || scratch(&name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_count_and_build_output_and_scratch_files_do_not() {
        let root = Path::new("/p");
        for yes in ["/p/src/lib.rs", "/p/component.toml", "/p/Cargo.toml", "/p/member/src/a.rs", "/p/wit/x.wit"] {
            assert!(worth_a_rebuild(root, Path::new(yes)), "{yes}");
        }
        for no in [
            "/p/target/release/x.wasm",
            "/p/member/target/x",
            "/p/.git/index",
            "/p/src/.lib.rs.swp",
            "/p/src/lib.rs~",
            "/p/src/4913",
            "/elsewhere/src/lib.rs",
        ] {
            assert!(!worth_a_rebuild(root, Path::new(no)), "{no}");
        }
    }
}
