//! Files in a directory a session can write — its config home, where the
//! daemon places an agent's settings and reads its transcript. The daemon
//! touches them only relative to a handle on that directory, with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`
//! and one path component at a time when creating, so a symlink or `..` the
//! session planted can never make the daemon read or write anything outside
//! it. A file the daemon writes replaces whatever is at its name (a planted
//! symlink is removed, never followed).

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

/// A directory the daemon treats as the session's: nothing outside it is reachable through it.
pub struct Confined {
    dir: OwnedFd,
    root: PathBuf,
}

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

fn err(e: rustix::io::Errno, what: &str, path: &Path) -> io::Error {
    let hint = if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::XDEV {
        " (a symlink or a path leaving the session's directory; refused)"
    } else {
        ""
    };
    io::Error::new(io::Error::from(e).kind(), format!("{what} {}: {e}{hint}", path.display()))
}

/// The components of a relative path, or an error if it is not one.
fn parts(rel: &Path) -> io::Result<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a plain path inside the session's directory", rel.display()),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path"));
    }
    Ok(out)
}

impl Confined {
    /// A handle on `root` (which must itself be a directory, not a symlink).
    pub fn open(root: &Path) -> io::Result<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = rustix::fs::open(root, flags, Mode::empty()).map_err(|e| err(e, "opening", root))?;
        Ok(Self { dir, root: root.to_path_buf() })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Open the directory `rel` beneath the root (each component a real directory).
    fn open_dir(&self, rel: &[&OsStr]) -> io::Result<OwnedFd> {
        let path: PathBuf = rel.iter().collect();
        if rel.is_empty() {
            return rustix::fs::openat2(
                &self.dir,
                ".",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve(),
            )
            .map_err(|e| err(e, "opening", &self.root));
        }
        rustix::fs::openat2(
            &self.dir,
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            resolve(),
        )
        .map_err(|e| err(e, "opening", &self.root.join(&path)))
    }

    /// Write `contents` to `rel` (mode `mode`), making its directories (0700)
    /// and replacing whatever is at that name.
    pub fn write(&self, rel: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
        let parts = parts(rel)?;
        let (name, dirs) = parts.split_last().ok_or_else(|| io::Error::other("an empty path"))?;
        let mut parent = self.open_dir(&[])?;
        for (i, dir) in dirs.iter().enumerate() {
            match rustix::fs::mkdirat(&parent, *dir, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(err(e, "creating", &self.root.join(dirs[..=i].iter().collect::<PathBuf>()))),
            }
            parent = rustix::fs::openat2(
                &parent,
                *dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve(),
            )
            .map_err(|e| err(e, "opening", &self.root.join(dirs[..=i].iter().collect::<PathBuf>())))?;
        }
        let target = self.root.join(rel);
        match rustix::fs::unlinkat(&parent, *name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(err(e, "replacing", &target)),
        }
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let fd = rustix::fs::openat2(&parent, *name, flags, Mode::from_raw_mode(mode), resolve())
            .map_err(|e| err(e, "creating", &target))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| err(e, "setting the mode of", &target))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(contents)
    }

    /// Open the regular file `rel` for reading.
    pub fn open_file(&self, rel: &Path) -> io::Result<std::fs::File> {
        parts(rel)?;
        let fd = rustix::fs::openat2(&self.dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty(), resolve())
            .map_err(|e| err(e, "opening", &self.root.join(rel)))?;
        let file = std::fs::File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file", rel.display())));
        }
        Ok(file)
    }

    /// The most recently modified regular file matching `pattern` (relative,
    /// `*` within segments), reached without any symlink.
    pub fn newest_match(&self, pattern: &Path) -> Option<PathBuf> {
        let parts = parts(pattern).ok()?;
        let mut candidates: Vec<Vec<std::ffi::OsString>> = vec![Vec::new()];
        for part in &parts {
            let text = part.to_string_lossy();
            let mut next = Vec::new();
            for dir in &candidates {
                if !text.contains('*') {
                    let mut p = dir.clone();
                    p.push(part.to_os_string());
                    next.push(p);
                    continue;
                }
                let refs: Vec<&OsStr> = dir.iter().map(|s| s.as_os_str()).collect();
                let Ok(fd) = self.open_dir(&refs) else { continue };
                let Ok(listing) =
                    rustix::fs::openat(&fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                else {
                    continue;
                };
                let Ok(entries) = rustix::fs::Dir::new(listing) else { continue };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name == "." || name == ".." || !wildcard(&text, &name) {
                        continue;
                    }
                    let mut p = dir.clone();
                    p.push(name.into());
                    next.push(p);
                }
            }
            candidates = next;
        }
        candidates
            .into_iter()
            .map(|p| p.iter().collect::<PathBuf>())
            .filter_map(|p| {
                let meta = self.open_file(&p).ok()?.metadata().ok()?;
                Some((meta.modified().ok()?, p))
            })
            .max_by_key(|(modified, _)| *modified)
            .map(|(_, p)| p)
    }
}

/// Whether `name` matches `pattern` with `*` for any run of characters.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("home");
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "the user's file\n").expect("outside");
        (dir, home, outside)
    }

    #[test]
    fn writing_replaces_a_planted_symlink_instead_of_following_it() {
        let (_dir, home, outside) = setup();
        std::fs::create_dir_all(home.join(".claude")).expect("mkdir");
        symlink(&outside, home.join(".claude/settings.json")).expect("symlink");
        let c = Confined::open(&home).expect("open");
        c.write(Path::new(".claude/settings.json"), b"{}", 0o600).expect("write");
        assert_eq!(std::fs::read_to_string(&outside).expect("read"), "the user's file\n", "the target is untouched");
        assert!(!home.join(".claude/settings.json").is_symlink());
        assert_eq!(std::fs::read_to_string(home.join(".claude/settings.json")).expect("read"), "{}");
    }

    #[test]
    fn a_symlinked_directory_or_dotdot_is_refused() {
        let (dir, home, _outside) = setup();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        symlink(&elsewhere, home.join(".codex")).expect("symlink");
        let c = Confined::open(&home).expect("open");
        let e = c.write(Path::new(".codex/config.toml"), b"x", 0o600).expect_err("refused");
        assert!(e.to_string().contains("refused"), "{e}");
        assert!(!elsewhere.join("config.toml").exists(), "nothing was written through the link");
        assert!(c.write(Path::new("../escape"), b"x", 0o600).is_err());
        assert!(c.write(Path::new("/etc/x"), b"x", 0o600).is_err());
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn reading_never_follows_a_symlink_anywhere_on_the_path() {
        let (_dir, home, outside) = setup();
        std::fs::create_dir_all(home.join("projects/p")).expect("mkdir");
        std::fs::write(home.join("projects/p/real.jsonl"), "{}\n").expect("write");
        symlink(&outside, home.join("projects/p/stolen.jsonl")).expect("symlink");
        let c = Confined::open(&home).expect("open");
        let mut text = String::new();
        c.open_file(Path::new("projects/p/real.jsonl")).expect("real").read_to_string(&mut text).expect("read");
        assert_eq!(text, "{}\n");
        assert!(c.open_file(Path::new("projects/p/stolen.jsonl")).is_err(), "a symlinked transcript is refused");
        // The newest match skips the symlink, even though it is newer.
        assert_eq!(c.newest_match(Path::new("projects/*/*.jsonl")), Some(PathBuf::from("projects/p/real.jsonl")));
    }

    #[test]
    fn wildcards_match_within_a_segment() {
        assert!(wildcard("rollout-*.jsonl", "rollout-2026-x.jsonl"));
        assert!(wildcard("*", "anything"));
        assert!(!wildcard("rollout-*.jsonl", "rollout.json"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxc"));
    }
}
