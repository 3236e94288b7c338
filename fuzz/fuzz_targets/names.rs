//! Session names (`--name`, or made from the prompt) and everything made of
//! them: the branch `clauderon/<name>`, the clone `<home>/worktrees/<name>`
//! and the backend resource `clauderon-<name>` (the Docker container's name,
//! the zellij session's). The manager builds these with `format!` (in
//! `host/sessions/src/manager.rs`); this target builds them the same way.
//!
//! Properties: `valid_name` never panics; every name it accepts, and every
//! name `name_from_prompt` makes (with the `-2` … `-999` suffixes a create
//! tries), gives a branch name `git check-ref-format --branch` accepts, a
//! worktree path that is one plain component inside `worktrees/`, and a
//! resource name that is a valid Docker container name, a zellij session
//! name that fits its socket path, is never read as a command-line option,
//! and is one the zellij backend recognises as its own.
#![no_main]

use std::path::{Component, Path};

use clauderon_sessions::model::{name_from_prompt, valid_name};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../components/backend-zellij/src/lib.rs"]
mod zellij;

/// The longest directory zellij puts its sockets in on Linux
/// (`$XDG_RUNTIME_DIR/zellij/<version>/`); a socket path holds 107 bytes.
const ZELLIJ_SOCKET_DIR: &str = "/run/user/4294967295/zellij/0.45.0/";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if valid_name(&text) {
        check(&text);
    } else {
        assert!(
            text.is_empty()
                || text.len() > 48
                || text.starts_with('-')
                || text.chars().any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')),
            "{text:?} was refused for no reason"
        );
    }
    let base = name_from_prompt(&text);
    assert!(valid_name(&base), "name_from_prompt({text:?}) = {base:?} is not a valid name");
    check(&base);
    for n in [2, 10, 999] {
        let candidate = format!("{base}-{n}");
        assert!(valid_name(&candidate), "{candidate:?} (a create's retry name) is not valid");
        check(&candidate);
    }
});

/// What the manager makes of an accepted name.
fn check(name: &str) {
    let branch = format!("clauderon/{name}");
    if let Err(why) = check_ref_format_branch(&branch) {
        panic!("branch {branch:?}: {why}");
    }

    let worktrees = Path::new("/home/u/.clauderon/worktrees");
    let worktree = worktrees.join(name);
    assert_eq!(worktree.parent(), Some(worktrees), "{name:?} leaves worktrees/");
    assert_eq!(worktree.file_name().and_then(|f| f.to_str()), Some(name), "{name:?} is not one path component");
    assert!(matches!(worktree.components().next_back(), Some(Component::Normal(_))), "{name:?}");
    assert!(!name.contains(['/', '\0']) && name != "." && name != "..", "{name:?}");

    let resource = format!("clauderon-{name}");
    assert!(docker_name(&resource), "{resource:?} is not a Docker container name");
    assert!(!resource.starts_with('-'), "{resource:?} reads as an option");
    assert!(
        !resource.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control()),
        "{resource:?} is not a zellij session name"
    );
    assert!(ZELLIJ_SOCKET_DIR.len() + resource.len() < 108, "{resource:?} does not fit a zellij socket path");
    if let Err(e) = zellij::owned(&resource) {
        panic!("the zellij backend disowns {resource:?}: {e:?}");
    }
}

/// Docker's container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn docker_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The rules of `git check-ref-format --branch` (see git-check-ref-format(1))
/// for `refs/heads/<name>`.
fn check_ref_format_branch(name: &str) -> Result<(), &'static str> {
    if name.starts_with('-') {
        return Err("begins with a dash");
    }
    if name == "HEAD" || name == "@" {
        return Err("is HEAD or @");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("has an empty component");
    }
    if name.ends_with('.') {
        return Err("ends with a dot");
    }
    if name.contains("..") {
        return Err("contains ..");
    }
    if name.contains("@{") {
        return Err("contains @{");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b)) {
        return Err("contains a control character, a space or one of ~^:?*[\\");
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Err("a component begins with a dot");
        }
        if component.ends_with(".lock") {
            return Err("a component ends with .lock");
        }
    }
    Ok(())
}
