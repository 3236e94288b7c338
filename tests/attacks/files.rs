//! Attacks on the daemon through the files a session writes, run by a real
//! Claude Code whose model (the mock, as a prompt injection would) tells it
//! to run a command: print terminal escape sequences (a clipboard write,
//! a screen clear) into its own history; swap its transcript for a symlink to
//! a host file the daemon can read but the session cannot; swap its
//! settings file for a symlink to a host file the daemon would overwrite at
//! the next start. The history must show the escapes, not obey them; the
//! daemon must never read or write through the symlinks.

use std::path::PathBuf;

use clauderon_tests::{World, create_interactive, eventually, wait_for_agent_status};

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("attacks")
}

#[test]
fn escape_sequences_from_a_session_are_shown_not_obeyed() {
    let world = World::start_full(Some(&base()), "", "", &[]);
    // OSC 52 writes the clipboard; CSI 2J clears the screen.
    let command = r"printf 'before \033]52;c;cHduZWQ=\007 \033[2J after\n'";
    let prompt = format!("Run exactly: {command}");
    let s = create_interactive(&world, "claude-code", &prompt, &["--skip-permissions"]);
    let id = s["id"].as_str().expect("id");
    wait_for_agent_status(&world, id, "waiting-for-input");
    let name = s["name"].as_str().expect("name");
    let history = eventually(20, "the tool result in the history", || {
        let out = world.home.run(&["history", name]);
        out.stdout.contains("[tool-result").then_some(out.stdout)
    });
    assert!(!history.contains('\u{1b}') && !history.contains('\u{7}'), "raw control characters: {history:?}");
    assert!(history.contains("^[]52;c;cHduZWQ=^G") && history.contains("^[[2J"), "shown visibly: {history}");
    let json = world.home.run(&["history", name, "--json"]).ok().stdout;
    assert!(!json.chars().any(|c| c == '\u{1b}' || c == '\u{9b}'), "{json:?}");
}

#[test]
fn the_daemon_never_reads_or_writes_through_a_symlink_a_session_planted() {
    let base = base();
    std::fs::create_dir_all(&base).expect("base");
    // The user's home: the session sees it read-only, and its `.ssh` not at all.
    let user_home = tempfile::tempdir_in(&base).expect("fake home");
    std::fs::create_dir_all(user_home.path().join(".ssh")).expect(".ssh");
    // A host file the session cannot read, written as a transcript line, so a
    // daemon that followed the symlink would show it as a chat message.
    let secret = user_home.path().join(".ssh/secret.jsonl");
    let line = r#"{"type":"user","message":{"role":"user","content":"canary-transcript-4f1e"},"timestamp":"2026-01-01T00:00:00Z"}"#;
    std::fs::write(&secret, format!("{line}\n")).expect("secret");
    // A host file the session can see but not write; the daemon could.
    let victim = user_home.path().join("victim.json");
    std::fs::write(&victim, "the user's own file\n").expect("victim");
    let home_var = user_home.path().display().to_string();
    let world = World::start_full(Some(&base), "", "", &[("HOME", &home_var)]);
    let command = format!(
        "(sleep 2; t=$(ls \"$HOME\"/.claude/projects/*/\"$CLAUDERON_SESSION_ID\".jsonl | head -n 1); \
         mv \"$t\" \"$t.moved\"; ln -s {secret} \"$t\"; ln -sf {victim} \"$HOME/.claude/settings.json\") \
         > /dev/null 2>&1 &",
        secret = secret.display(),
        victim = victim.display()
    );
    let s = create_interactive(&world, "claude-code", &format!("Run exactly: {command}"), &["--skip-permissions"]);
    let (id, name) = (s["id"].as_str().expect("id"), s["name"].as_str().expect("name"));
    wait_for_agent_status(&world, id, "waiting-for-input");
    let home = world.home.path("sessions").join(id).join("agent-home");
    eventually(20, "the planted symlinks", || {
        let transcript_swapped = std::fs::read_dir(home.join(".claude/projects")).ok()?.flatten().any(|d| {
            let t = d.path().join(format!("{id}.jsonl"));
            t.is_symlink() && d.path().join(format!("{id}.jsonl.moved")).exists()
        });
        (transcript_swapped && home.join(".claude/settings.json").is_symlink()).then_some(())
    });

    let (code, history) = world.daemon.http("GET", &format!("/api/sessions/{id}/history"), None);
    assert!(!history.to_string().contains("canary-transcript-4f1e"), "the daemon read through the symlink: {history}");
    assert!(code == 200 || code >= 400, "{code}");

    world.home.run(&["stop", name]).ok();
    world.home.run(&["start", name]).ok();
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "the user's own file\n",
        "written through the symlink"
    );
    let settings = home.join(".claude/settings.json");
    assert!(!settings.is_symlink(), "the planted symlink was replaced by the daemon's file");
    assert!(std::fs::read_to_string(&settings).expect("settings").contains("hooks"));
}
