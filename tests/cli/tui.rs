//! `clauderon tui` end to end: the real binary in a real terminal (tmux,
//! send-keys and capture-pane) against a real daemon and real zellij
//! sessions. What a user does with the keys reaches the daemon, what others
//! do (the CLI) shows up live, and the terminal is given back as it was.

use clauderon_tests::{
    CANARIES, MOCK_ANSWER, Sshd, Terminal, World, create_interactive, eventually, unique, wait_for_agent_status,
};
use serde_json::Value;

/// The session named `name`, as the API answers it (archived ones too).
fn session(world: &World, name: &str) -> Option<Value> {
    let (_, list) = world.daemon.http("GET", "/api/sessions?archived=true", None);
    list.as_array()?.iter().find(|s| s["name"] == name).cloned()
}

/// The screen's line for session `name` (empty if it is not shown).
fn row(screen: &str, name: &str) -> String {
    screen.lines().find(|l| l.contains(name)).unwrap_or_default().to_string()
}

/// Wait until the screen satisfies `done`, or fail showing it.
fn wait(terminal: &Terminal, what: &str, done: impl Fn(&str) -> bool) -> String {
    let (ok, screen) = terminal.wait_for(done);
    assert!(ok, "the TUI never showed {what}; its screen:\n{screen}");
    screen
}

/// `q`: the TUI exits with 0 and gives the terminal back as it found it.
fn quit(tui: &Terminal) {
    tui.send(&["q"]);
    let screen = wait(tui, "the TUI to exit", |s| s.contains("[clauderon exited: 0]"));
    assert!(screen.contains("[tty restored]"), "the terminal's settings changed:\n{screen}");
    assert_eq!(tui.pane("#{alternate_on}"), "0", "still on the alternate screen");
}

/// A zellij session running the shell agent with `prompt`; its name.
fn shell_session(world: &World, label: &str, prompt: &str) -> String {
    let name = unique(label);
    let repo = world.repo.path().to_str().expect("utf-8");
    world.home.run(&["create", "-r", repo, "-a", "shell", "--name", &name, "-p", prompt]).ok();
    name
}

#[test]
fn the_list_is_live_and_its_keys_act_through_the_api() {
    let world = World::start();
    let name = shell_session(&world, "tui", "echo ready; sleep 600");
    let other = shell_session(&world, "tui-other", "echo ready; sleep 600");
    let tui = Terminal::run(&world.home, &unique("tui"), &["tui"], &[]);
    let screen = wait(&tui, "both sessions, live", |s| {
        row(s, &name).contains("running") && row(s, &other).contains("running") && s.contains("● live")
    });
    assert!(screen.contains("Agent state") && screen.contains("? help"), "{screen}");
    // With colours on, a running session's state is green (colour 2; crossterm writes `38;5;2`).
    let styled = tui.screen_with_styles();
    assert!(styled.contains("[38;5;2mrunning") || styled.contains("[32mrunning"), "no green state:\n{styled:?}");

    // Something else (the CLI) stops a session: the row changes by itself.
    world.home.run(&["stop", &name]).ok();
    wait(&tui, "the stopped session", |s| row(s, &name).contains("stopped"));

    // Filters: `4` (idle) hides it, `5` (stopped or failed) shows it alone.
    tui.send(&["5"]);
    wait(&tui, "the stopped filter", |s| row(s, &name).contains("stopped") && !s.contains(&other));
    // Select it and start it again with `S`: the API is asked, the row follows.
    tui.send(&["S"]);
    eventually(60, "the session running again", || (session(&world, &name)?["status"] == "running").then_some(()));
    tui.send(&["1"]);
    wait(&tui, "it running in the list", |s| row(s, &name).contains("running"));

    // Search for the other one and act on it: `m` makes it read-only at once…
    tui.send(&["/"]);
    tui.send(&["-l", &other]);
    tui.send(&["Enter"]);
    wait(&tui, "the search's one row", |s| s.contains(&format!("search “{other}”")) && !s.contains(&name));
    tui.send(&["m"]);
    eventually(20, "read-only through the API", || {
        (session(&world, &other)?["access_mode"] == "read-only").then_some(())
    });
    wait(&tui, "read-only in the row", |s| row(s, &other).contains("read-only"));
    // …and read-write only after a yes: `n` leaves it, `y` does it.
    tui.send(&["m"]);
    wait(&tui, "the question", |s| s.contains("Are you sure?") && s.contains("(read-write)?"));
    tui.send(&["n"]);
    wait(&tui, "the question gone", |s| !s.contains("Are you sure?"));
    assert_eq!(session(&world, &other).expect("session")["access_mode"], "read-only");
    tui.send(&["m"]);
    wait(&tui, "the question again", |s| s.contains("Are you sure?"));
    tui.send(&["y"]);
    eventually(20, "read-write through the API", || {
        (session(&world, &other)?["access_mode"] == "read-write").then_some(())
    });

    // Esc clears the search (on its own: Esc and a key at once read as Alt-key).
    tui.send(&["Escape"]);
    wait(&tui, "the search cleared", |s| s.contains(&name) && !s.contains("search “"));
    // Archive it (`a`): it leaves "All" for "Archived".
    tui.send(&["a"]);
    wait(&tui, "it archived", |s| !s.contains(&other) && s.contains(&name));
    assert_eq!(session(&world, &other).expect("session")["status"], "archived");
    tui.send(&["6"]);
    wait(&tui, "the archive", |s| row(s, &other).contains("archived"));

    // Delete (`d`) asks first; `y` deletes through the API.
    tui.send(&["d"]);
    wait(&tui, "the delete question", |s| s.contains(&format!("Delete {other}?")));
    tui.send(&["y"]);
    eventually(30, "the session deleted", || session(&world, &other).is_none().then_some(()));
    wait(&tui, "the row gone", |s| !s.contains(&other));

    // Help lists the keys; q quits and gives the terminal back as it was.
    tui.send(&["?"]);
    wait(&tui, "the help", |s| s.contains("Keys") && s.contains("reconcile every session"));
    tui.send(&["Escape"]);
    wait(&tui, "the help closed", |s| !s.contains("reconcile every session"));
    quit(&tui);
}

/// `Enter` attaches inside the TUI (the console WebSocket): what is typed
/// reaches the session's shell, Ctrl-N / Ctrl-P switch sessions, a resize
/// reaches the session's terminal, Ctrl-L locks (Ctrl-Q then goes to the
/// session), Ctrl-Q detaches and the session keeps running.
#[test]
fn the_embedded_terminal_types_switches_resizes_and_detaches() {
    let world = World::start();
    let a = shell_session(&world, "tui-a", "echo a-ready; exec sh");
    let b = shell_session(&world, "tui-b", "echo b-ready; sleep 600");
    let tui = Terminal::run(&world.home, &unique("tui-attach"), &["tui"], &[]);
    wait(&tui, "both sessions", |s| row(s, &a).contains("running") && row(s, &b).contains("running"));
    // Sorted by name, the first row is `a`.
    tui.send(&["o", "g"]);
    wait(&tui, "a selected", |s| row(s, &a).starts_with('▌'));
    tui.send(&["Enter"]);
    wait(&tui, "a's terminal inside the TUI", |s| {
        s.lines().next().is_some_and(|l| l.contains(&a) && l.contains("Ctrl-Q detach")) && s.contains("a-ready")
    });
    tui.send(&["-l", "echo typed-$((6*7))"]);
    tui.send(&["Enter"]);
    wait(&tui, "the shell's answer", |s| s.contains("typed-42"));
    // Ctrl-N: the next session of the list, attached; Ctrl-P: back.
    tui.send(&["C-n"]);
    wait(&tui, "b attached", |s| s.lines().next().is_some_and(|l| l.contains(&b)) && s.contains("b-ready"));
    tui.send(&["C-p"]);
    wait(&tui, "a again", |s| s.lines().next().is_some_and(|l| l.contains(&a)) && s.contains("typed-42"));
    // A resize reaches the session's terminal: one line less than the window (the title).
    tui.resize(100, 25);
    std::thread::sleep(std::time::Duration::from_millis(500));
    tui.send(&["-l", "stty size"]);
    tui.send(&["Enter"]);
    wait(&tui, "the new size inside", |s| s.lines().any(|l| l.trim_end().ends_with("100") && l.contains(" 100")));
    // Locked: Ctrl-N goes to the session (zellij's resize mode, left with
    // Esc) instead of switching; Ctrl-L unlocks.
    tui.send(&["C-l"]);
    wait(&tui, "locked", |s| s.contains("LOCKED"));
    tui.send(&["C-n"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let screen = tui.screen();
    assert!(
        screen.lines().next().is_some_and(|l| l.contains(&a) && l.contains("LOCKED")),
        "Ctrl-N switched a locked terminal:\n{screen}"
    );
    tui.send(&["Escape"]);
    tui.send(&["C-l"]);
    wait(&tui, "unlocked", |s| !s.contains("LOCKED") && s.contains("Ctrl-Q detach"));
    tui.send(&["C-q"]);
    wait(&tui, "the list again", |s| row(s, &a).contains("running") && s.contains("? help"));
    assert_eq!(session(&world, &a).expect("a")["status"], "running", "detaching kept the session");
    quit(&tui);
}

/// Over SSH (a real OpenSSH server on 127.0.0.1, `ssh -tt`, in tmux): the
/// list, keys, a resize (SSH's window-change) and the embedded terminal
/// typed into, all through the connection; `q` gives the remote terminal
/// back as it was.
#[test]
fn over_ssh_keys_resize_and_attach_work() {
    let world = World::start();
    let name = shell_session(&world, "tui-ssh", "echo ssh-ready; exec sh");
    let sshd = Sshd::start();
    let tui = Terminal::over_ssh(&sshd, &world.home, &unique("tui-ssh"), &["tui"], &[]);
    wait(&tui, "the session, over SSH", |s| row(s, &name).contains("running"));
    tui.send(&["?"]);
    wait(&tui, "the help", |s| s.contains("Esc, ? or q closes"));
    tui.send(&["Escape"]);
    tui.resize(30, 6);
    wait(&tui, "the size sentence (SSH passed the resize)", |s| s.contains("needs at least"));
    tui.resize(120, 30);
    wait(&tui, "the list again", |s| row(s, &name).contains("running") && !s.contains("Esc, ? or q"));
    tui.send(&["Enter"]);
    wait(&tui, "the session's terminal", |s| s.contains("Ctrl-Q detach") && s.contains("ssh-ready"));
    tui.send(&["-l", "echo over-ssh-$((6*7))"]);
    tui.send(&["Enter"]);
    wait(&tui, "the shell's answer", |s| s.contains("over-ssh-42"));
    tui.send(&["C-q"]);
    wait(&tui, "the list", |s| s.contains("? help"));
    quit(&tui);
}

#[test]
fn sigterm_a_panic_a_tiny_terminal_and_no_color_are_handled() {
    let world = World::start();
    let name = shell_session(&world, "tui-term", "echo ready; sleep 600");
    let tui = Terminal::run(&world.home, &unique("tui-term"), &["tui"], &[("NO_COLOR", "1")]);
    wait(&tui, "the session", |s| row(s, &name).contains("running"));
    // A terminal too small gets a sentence, and the list comes back with the size.
    tui.resize(30, 6);
    wait(&tui, "the size sentence", |s| s.contains("needs at least"));
    tui.resize(120, 30);
    wait(&tui, "the list again", |s| row(s, &name).contains("running"));
    // NO_COLOR: the pane shows no colour (capture-pane -e gives its styles
    // as SGR sequences: 30–38, 40–48, 90–97 and 100–107 set colours; 39 and
    // 49 are the default ones), but the selection is still reverse video (7).
    let styled = tui.screen_with_styles();
    let params: Vec<u32> = styled
        .split("\x1b[")
        .skip(1)
        .filter_map(|seq| seq.split_once('m').map(|(p, _)| p))
        .flat_map(|p| p.split(';').filter_map(|n| n.parse().ok()).collect::<Vec<u32>>())
        .collect();
    let colours: Vec<&u32> = params.iter().filter(|p| matches!(p, 30..=38 | 40..=48 | 90..=97 | 100..=107)).collect();
    assert!(colours.is_empty(), "colours {colours:?} drawn under NO_COLOR:\n{styled:?}");
    assert!(params.contains(&7), "the selection is not shown (reverse video):\n{styled:?}");
    // SIGTERM ends it cleanly: exit 0 and the terminal restored.
    let pid = tui.pane("#{pane_pid}");
    let killed =
        std::process::Command::new("pkill").args(["-TERM", "-P", &pid, "-f", "clauderon tui"]).status().expect("pkill");
    assert!(killed.success(), "no clauderon tui under the pane's shell");
    let screen = wait(&tui, "the TUI to exit", |s| s.contains("[clauderon exited: 0]"));
    assert!(screen.contains("[tty restored]"), "{screen}");
    assert_eq!(tui.pane("#{alternate_on}"), "0");
    // A panic (a debug build's switch makes one once the list is drawn): the
    // terminal is given back once, before the panic's message is printed, so
    // the message stays whole on the screen, above what the shell prints next.
    let env = [("CLAUDERON_TUI_TEST_PANIC", "1"), ("RUST_BACKTRACE", "0")];
    let panics = Terminal::run(&world.home, &unique("tui-panic"), &["tui"], &env);
    let screen = wait(&panics, "the TUI to panic", |s| s.contains("[clauderon exited: 101]"));
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let at = |text: &str| lines.iter().position(|l| l.contains(text));
    let (panicked, message, exited) =
        (at("thread 'main'"), at("CLAUDERON_TUI_TEST_PANIC asked for a panic"), at("[clauderon exited: 101]"));
    assert!(
        panicked.is_some() && panicked < message && message < exited,
        "the panic's message is not shown whole:\n{screen}"
    );
    assert_eq!(lines.get(exited.unwrap_or(0) + 1), Some(&"[tty restored]"), "{screen}");
    assert_eq!(panics.pane("#{alternate_on}"), "0");
}

/// The chat (`c`) of a real Claude Code session against the mock model: the
/// approval banner while the agent asks to run `make test`, `y` approves it
/// (the tool call, its result and the answer follow live), `i` writes a
/// message that reaches the agent. Then, as an agent could, a line with
/// terminal control sequences goes into its transcript: the chat shows it,
/// and the user's terminal never obeys it (tmux, set to take clipboard
/// writes from programs, gets none).
#[test]
fn the_chat_follows_the_agent_and_answers_its_approval() {
    let world = World::start();
    let s = create_interactive(&world, "claude-code", "Run make test", &[]);
    let (id, name) = (s["id"].as_str().expect("id"), s["name"].as_str().expect("name"));
    wait_for_agent_status(&world, id, "waiting-for-approval");
    let tui = Terminal::run(&world.home, &unique("tui-chat"), &["tui"], &[]);
    tui.tmux(&["set-option", "-g", "set-clipboard", "on"]);
    wait(&tui, "the session waiting", |s| row(s, name).contains("waiting-for-approval"));
    tui.send(&["c"]);
    wait(&tui, "the approval banner and the call", |s| {
        s.contains(&format!("{name} is waiting for your approval")) && s.contains("▸ Bash") && s.contains("make test")
    });
    tui.send(&["y"]);
    wait_for_agent_status(&world, id, "waiting-for-input");
    wait(&tui, "the result and the answer, live", |s| {
        s.contains("◂ result") && s.contains(MOCK_ANSWER) && !s.contains("waiting for your approval")
    });

    // `i` writes to the agent; it answers again.
    tui.send(&["i"]);
    tui.send(&["-l", "Say hello"]);
    wait(&tui, "the draft", |s| s.contains("> Say hello"));
    tui.send(&["Enter"]);
    wait(&tui, "the message sent", |s| s.contains(&format!("Sent to {name}.")));
    let history = eventually(60, "the message and a second answer in the history", || {
        let (_, history) = world.daemon.http("GET", &format!("/api/sessions/{id}/history"), None);
        let messages = history["messages"].as_array()?;
        let said = messages.iter().any(|m| m["role"] == "user" && m["text"] == "Say hello");
        let answers = messages.iter().filter(|m| m["role"] == "assistant" && m["text"] == MOCK_ANSWER).count();
        (said && answers >= 2).then_some(history)
    });
    wait(&tui, "the message in the chat", |s| s.lines().any(|l| l.trim() == "Say hello"));

    // A hostile line in the transcript (what an agent in the session can write).
    let transcript = history["transcript"].as_str().expect("the transcript's path");
    let hostile = serde_json::json!({
        "type": "assistant",
        "message": {"role": "assistant", "content": [{"type": "text",
            "text": "\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\u{1b}]0;pwned-title\u{7}HOSTILE-MARK"}]}
    });
    let mut file = std::fs::OpenOptions::new().append(true).open(transcript).expect("the transcript");
    std::io::Write::write_all(&mut file, format!("{hostile}\n").as_bytes()).expect("append");
    let screen = wait(&tui, "the hostile text, shown", |s| s.contains("HOSTILE-MARK"));
    assert!(screen.contains("^[]52;c;cHduZWQ=^G^[[2J^[]0;pwned-title^GHOSTILE-MARK"), "{screen}");
    assert!(screen.contains(MOCK_ANSWER), "the screen was cleared:\n{screen}");
    assert_eq!(tui.tmux(&["list-buffers"]), "", "the transcript wrote the clipboard");
    assert!(!tui.pane("#{pane_title}").contains("pwned"), "the transcript retitled the terminal");

    tui.send(&["Escape"]);
    wait(&tui, "the list again", |s| row(s, name).contains("waiting-for-input") && s.contains("? help"));
    quit(&tui);
}

/// The audit view (`A`): the session's requests through the proxy, live —
/// an allowed one with the credential injected (by name), a blocked one
/// marked with the reason — and never a real credential on the screen.
#[test]
fn the_audit_view_marks_blocked_requests_and_shows_no_credential() {
    let world = World::start();
    // Two requests at once; a third once the test creates `go` in the worktree.
    let script = "curl -sS --max-time 10 -o /dev/null https://api.github.com/tui-allowed; \
                  curl -sS --max-time 10 -o /dev/null https://blocked.example.test/tui-blocked; \
                  while [ ! -f go ]; do sleep 0.2; done; \
                  curl -sS --max-time 10 -o /dev/null https://api.github.com/tui-live";
    let env = world.session("tui-audit", "read-write", script);
    let name = clauderon_tests::value(&env, "CLAUDERON_SESSION_NAME").to_string();
    let tui = Terminal::run(&world.home, &unique("tui-audit"), &["tui"], &[]);
    wait(&tui, "the session", |s| row(s, &name).contains("running"));
    tui.send(&["A"]);
    // The blocked one is refused at CONNECT (its path never reached the proxy).
    let screen = wait(&tui, "both requests", |s| s.contains("/tui-allowed") && s.contains("blocked.example.test"));
    let allowed = row(&screen, "/tui-allowed");
    assert!(
        allowed.contains("allowed") && allowed.contains("api.github.com") && allowed.contains("[github"),
        "{screen}"
    );
    let blocked = row(&screen, "blocked.example.test");
    assert!(blocked.contains("BLOCKED") && blocked.contains("egress allow-list"), "{screen}");
    // Live: a request made now appears without leaving the view.
    std::fs::write(world.home.path(&format!("worktrees/{name}/go")), "").expect("go");
    let screen = wait(&tui, "the new request, live", |s| s.contains("/tui-live"));
    for (_, canary) in CANARIES {
        assert!(!screen.contains(canary), "a real credential on the screen:\n{screen}");
    }
    // Tab goes to the chat (the shell agent keeps none) and back.
    tui.send(&["Tab"]);
    wait(&tui, "the chat pane", |s| s.contains("No chat yet"));
    tui.send(&["Escape"]);
    wait(&tui, "the list", |s| s.contains("? help"));
    quit(&tui);
}

/// The create dialog (`n`): the doctor's backends and agents, a missing
/// prompt said, the prompt written in the user's `$VISUAL` (Ctrl-E), the
/// repository picked in the directory browser (Ctrl-O; a path outside the
/// home typed in is not listed: the browser starts at the home instead), the
/// session created through the API and shown running; a second create with
/// the same name keeps the form and shows the API's words.
#[test]
fn create_through_the_dialog_with_the_prompt_from_the_editor() {
    // The daemon's HOME holds the repository, for the dialog's directory browser.
    let user_home = tempfile::tempdir().expect("tempdir");
    let home_dir = user_home.path().canonicalize().expect("home").to_str().expect("utf-8").to_string();
    let world = World::start_full(Some(user_home.path()), "", "", &[("HOME", &home_dir)]);
    // The "editor": writes the prompt into the file it is given, as a user would in vi.
    let editor = world.home.path("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nprintf 'echo from-the-editor; sleep 600\\n' > \"$1\"\n").expect("editor");
    std::process::Command::new("chmod").arg("+x").arg(&editor).status().expect("chmod");
    let editor = editor.to_str().expect("utf-8").to_string();
    let repo = world.repo.path().canonicalize().expect("repo").to_str().expect("utf-8").to_string();
    let repo_dir = repo.rsplit('/').next().expect("a name").to_string();
    let name = unique("tui-new");
    let tui = Terminal::run(&world.home, &unique("tui-new"), &["tui"], &[("VISUAL", &editor)]);
    wait(&tui, "the empty list", |s| s.contains("No sessions yet"));
    tui.send(&["n"]);
    wait(&tui, "the dialog with the doctor's choices", |s| s.contains("New session") && s.contains("‹ zellij ›"));
    tui.send(&["C-s"]);
    wait(&tui, "the missing prompt said", |s| s.contains("Write a prompt"));
    tui.send(&["C-e"]);
    wait(&tui, "the prompt from the editor", |s| s.contains("echo from-the-editor; sleep 600"));
    // The browser: `/etc` typed in is outside the home, so it starts at the home.
    tui.send(&["Tab"]);
    tui.send(&["-l", "/etc"]);
    tui.send(&["C-o"]);
    let screen = wait(&tui, "the home listed", |s| s.contains("Choose the repository") && s.contains(&home_dir));
    assert!(!screen.contains("passwd") && !screen.contains("apt/"), "/etc listed:\n{screen}");
    // The repository is a hidden directory (a temp dir's name): `.` shows it, marked git.
    tui.send(&["."]);
    wait(&tui, "the repository listed", |s| s.contains(&format!("{repo_dir}/  git")));
    let picked = (0..10).any(|_| {
        if tui.screen().contains(&format!("▌ {repo_dir}/")) {
            return true;
        }
        tui.send(&["j"]);
        std::thread::sleep(std::time::Duration::from_millis(150));
        false
    });
    assert!(picked, "the repository never selected:\n{}", tui.screen());
    tui.send(&["Space"]);
    wait(&tui, "the repository filled in", |s| s.contains("New session") && s.contains(&repo));
    tui.send(&["Tab"]);
    tui.send(&["-l", &name]);
    tui.send(&["Tab", "Tab"]);
    // The agent: → until the shell agent.
    let found = (0..10).any(|_| {
        if tui.screen().contains("‹ shell ›") {
            return true;
        }
        tui.send(&["Right"]);
        std::thread::sleep(std::time::Duration::from_millis(150));
        false
    });
    assert!(found, "no shell agent to pick:\n{}", tui.screen());
    tui.send(&["C-s"]);
    wait(&tui, "the new session, running", |s| {
        row(s, &name).contains("running") && s.contains(&format!("Created {name}"))
    });
    let created = session(&world, &name).expect("created through the API");
    assert_eq!((created["agent"].as_str(), created["backend"].as_str()), (Some("shell"), Some("zellij")));
    assert_eq!(created["prompt"], "echo from-the-editor; sleep 600");

    // The same name again: the API's words, and the form keeps what was typed.
    tui.send(&["n"]);
    wait(&tui, "the dialog, the repository filled in", |s| s.contains("New session") && s.contains(&repo));
    tui.send(&["-l", "again"]);
    tui.send(&["Tab", "Tab"]);
    tui.send(&["-l", &name]);
    tui.send(&["C-s"]);
    let screen = wait(&tui, "the API's error", |s| s.contains("already exists"));
    assert!(screen.contains("New session") && screen.contains("again"), "{screen}");
    tui.send(&["Escape"]);
    wait(&tui, "the dialog closed", |s| !s.contains("New session"));
    quit(&tui);
}
