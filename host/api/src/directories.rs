//! The create dialog's directory browser, `GET /api/directories`: the
//! directories inside one directory under the user's home (the daemon's
//! `HOME`), each marked when it is a git repository, for picking a session's
//! repository without typing its path.
//!
//! Nothing outside the home is listed or named: the asked path is resolved
//! (`..` and symlinks included) before it is checked, a symlink inside the
//! home that leads out of it is left out of a listing, and files are never
//! named. The web dashboard and the TUI use it; it reads, never writes.

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiError;

/// The most directories one listing names (the rest are counted as left out).
pub const MAX_ENTRIES: usize = 2000;

/// One directory in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Directory {
    /// Its name.
    pub name: String,
    /// Its absolute path (resolved: no `..`, no symlink).
    pub path: String,
    /// It is a git repository (has `.git`): a session can start from it.
    pub repository: bool,
}

/// The directories inside one directory under the user's home.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    /// The directory listed (absolute, resolved).
    pub path: String,
    /// Its parent, unless it is the home itself.
    pub parent: Option<String>,
    /// The user's home: nothing above it is listed.
    pub home: String,
    /// The listed directory is itself a git repository.
    pub repository: bool,
    /// Its directories by name (hidden ones only when asked), at most 2,000.
    pub entries: Vec<Directory>,
    /// How many directories were left out past the 2,000.
    pub left_out: u64,
}

/// List the directories in `asked` (absolute, `~`, `~/…`, or relative to
/// the home; the home when empty) if it is under `home`.
pub async fn list(home: PathBuf, asked: String, hidden: bool) -> Result<Listing, ApiError> {
    tokio::task::spawn_blocking(move || list_blocking(&home, &asked, hidden))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("listing the directory failed: {e}")))?
}

fn list_blocking(home: &Path, asked: &str, hidden: bool) -> Result<Listing, ApiError> {
    let home = home.canonicalize().map_err(|e| {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("the daemon's home {} cannot be read: {e}", home.display()))
    })?;
    let wanted = match asked.trim() {
        "" | "~" => home.clone(),
        a => match a.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => home.join(a), // an absolute `a` replaces the home
        },
    };
    let outside =
        || ApiError(StatusCode::FORBIDDEN, format!("only directories under your home ({}) are listed", home.display()));
    let path = match wanted.canonicalize() {
        Ok(path) => path,
        // Saying whether a path outside the home exists would list it too.
        Err(_) if !wanted.starts_with(&home) => return Err(outside()),
        Err(e) => return Err(ApiError(StatusCode::NOT_FOUND, format!("{} cannot be opened: {e}", wanted.display()))),
    };
    if !path.starts_with(&home) {
        return Err(outside());
    }
    if !path.is_dir() {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("{} is not a directory", path.display())));
    }
    let unreadable =
        |e: std::io::Error| ApiError(StatusCode::FORBIDDEN, format!("{} cannot be read: {e}", path.display()));
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(&path).map_err(unreadable)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !hidden {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        let full = if kind.is_symlink() {
            // Followed only when it stays under the home.
            match entry.path().canonicalize() {
                Ok(target) if target.starts_with(&home) && target.is_dir() => target,
                _ => continue,
            }
        } else if kind.is_dir() {
            entry.path()
        } else {
            continue;
        };
        entries.push(Directory {
            name,
            repository: full.join(".git").exists(),
            path: full.to_string_lossy().into_owned(),
        });
    }
    entries.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.name.cmp(&b.name)));
    let left_out = entries.len().saturating_sub(MAX_ENTRIES) as u64;
    entries.truncate(MAX_ENTRIES);
    Ok(Listing {
        parent: (path != home).then(|| path.parent().unwrap_or(&home).to_string_lossy().into_owned()),
        repository: path.join(".git").exists(),
        home: home.to_string_lossy().into_owned(),
        path: path.to_string_lossy().into_owned(),
        entries,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(l: &Listing) -> Vec<&str> {
        l.entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn lists_only_directories_under_the_home_and_marks_repositories() {
        let root = tempfile::tempdir().expect("tempdir");
        let home = root.path().join("home");
        std::fs::create_dir_all(home.join("src/app/.git")).expect("dirs");
        std::fs::create_dir_all(home.join(".hidden")).expect("dirs");
        std::fs::create_dir_all(root.path().join("outside")).expect("dirs");
        std::fs::write(home.join("notes.txt"), "x").expect("file");
        std::os::unix::fs::symlink(root.path().join("outside"), home.join("escape")).expect("symlink");
        std::os::unix::fs::symlink(home.join("src"), home.join("code")).expect("symlink");

        let top = list_blocking(&home, "", false).expect("home");
        assert_eq!(names(&top), ["code", "src"], "no file, no hidden directory, no symlink out");
        assert_eq!(top.parent, None);
        let top = list_blocking(&home, "~", true).expect("home");
        assert_eq!(names(&top), [".hidden", "code", "src"]);
        let src = list_blocking(&home, "~/src", false).expect("src");
        assert_eq!((names(&src), src.entries[0].repository), (vec!["app"], true));
        assert_eq!(src.parent.as_deref(), Some(home.canonicalize().expect("home").to_str().expect("utf-8")));
        let code = list_blocking(&home, "code", false).expect("the symlink inside");
        assert_eq!(code.path, src.path, "resolved");

        for (asked, status) in [
            ("/etc", StatusCode::FORBIDDEN),
            ("..", StatusCode::FORBIDDEN),
            ("~/src/../..", StatusCode::FORBIDDEN),
            ("escape", StatusCode::FORBIDDEN),
            ("/nonexistent/place", StatusCode::FORBIDDEN),
            ("~/nope", StatusCode::NOT_FOUND),
            ("notes.txt", StatusCode::BAD_REQUEST),
        ] {
            let err = list_blocking(&home, asked, false).expect_err(asked);
            assert_eq!(err.0, status, "{asked}: {}", err.1);
            assert!(!err.1.contains("outside"), "{asked}: names nothing outside: {}", err.1);
        }
    }
}
