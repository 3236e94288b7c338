//! The real agent CLIs (Claude Code, Codex, Gemini CLI, from npm) in zellij
//! sessions, in print mode, through the proxy to the local TLS mock upstream
//! speaking each API's streaming wire format: the agent prints the mock's
//! answer, the mock sees the real (canary) key in the right header, the
//! history endpoint returns the exchange, the status ends idle (from the
//! agent's status events, sent by its own hooks), and no canary reaches the session.

use std::path::Path;

use clauderon_tests::{
    CANARIES, MOCK_ANSWER, World, canary, create_interactive, eventually, interactive_turn, session_processes, unique,
    wait_for_agent_status, walk, websocket_log,
};
use serde_json::Value;

struct Run {
    world: World,
    session: Value,
    events: std::path::PathBuf,
}

/// Create a print-mode session of `agent` and wait until its status is idle.
fn run_agent(agent: &str) -> Run {
    run_agent_in(agent, |_| {})
}

/// The same, after `prepare` changed and committed the repository.
fn run_agent_in(agent: &str, prepare: impl FnOnce(&Path)) -> Run {
    let world = World::start();
    prepare(world.repo.path());
    let events = world.home.path("events.jsonl");
    let mut ws = websocket_log(&world.daemon, &events);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let name = unique(agent);
    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let created = world
        .home
        .run(&["create", "-r", &repo, "-a", agent, "--print", "--name", &name, "-p", "Say hello", "--json"])
        .ok()
        .json();
    let id = created["id"].as_str().expect("id").to_string();
    let session = eventually(90, &format!("{agent} to finish (agent status idle)"), || {
        let (_, s) = world.daemon.http("GET", &format!("/api/sessions/{id}"), None);
        (s["agent_status"] == "idle").then_some(s)
    });
    // The WebSocket (which replays stored events) has carried the status changes.
    eventually(10, "agent status changes on the WebSocket", || {
        std::fs::read_to_string(&events).ok().filter(|t| t.contains("\"agent-status-changed\""))
    });
    let _ = ws.kill();
    let _ = ws.wait();
    Run { world, session, events }
}

impl Run {
    fn id(&self) -> &str {
        self.session["id"].as_str().expect("id")
    }

    /// The chat, read through the API's cursor until it stops growing.
    fn history(&self) -> Vec<Value> {
        let mut cursor = 0;
        let mut messages = Vec::new();
        loop {
            let (code, page) =
                self.world.daemon.http("GET", &format!("/api/sessions/{}/history?cursor={cursor}", self.id()), None);
            assert_eq!(code, 200, "{page}");
            let got = page["messages"].as_array().cloned().unwrap_or_default();
            let next = page["cursor"].as_u64().expect("cursor");
            if got.is_empty() && next == cursor {
                return messages;
            }
            messages.extend(got);
            cursor = next;
        }
    }

    fn assert_exchange(&self) {
        let history = eventually(20, "the history to hold the answer", || {
            let h = self.history();
            h.iter()
                .any(|m| m["role"] == "assistant" && m["text"].as_str().is_some_and(|t| t.contains(MOCK_ANSWER)))
                .then_some(h)
        });
        assert!(
            history.iter().any(|m| m["role"] == "user" && m["text"] == "Say hello"),
            "the user's prompt is in the history: {history:?}"
        );
        let cli = self.world.home.run(&["history", self.session["name"].as_str().expect("name")]).ok().stdout;
        assert!(cli.contains("[user] Say hello") && cli.contains(&format!("[assistant] {MOCK_ANSWER}")), "{cli}");
        let events = std::fs::read_to_string(&self.events).unwrap_or_default();
        assert!(events.contains("\"agent-status-changed\""), "agent status changes reach the WebSocket");
    }

    /// The mock saw the real key in `header` (with `prefix`) on `path`.
    fn assert_injected(&self, path_end: &str, header: &str, expected: &str) {
        let requests = self.world.mock.requests();
        let call = requests
            .iter()
            .rev()
            .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(path_end)))
            .unwrap_or_else(|| panic!("no request to …{path_end}: {requests:?}"));
        assert_eq!(call["headers"][header].as_str(), Some(expected), "{call}");
        assert!(!call.to_string().contains("clauderon-placeholder"), "a placeholder reached upstream: {call}");
    }

    /// No canary in the session's environment, files or processes.
    fn assert_no_canary(&self) {
        let mut places = vec![("session processes".to_string(), session_processes(self.id()))];
        for dir in [self.world.home.path("sessions"), self.world.home.path("worktrees")] {
            for file in walk(&dir) {
                let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
                places.push((file.display().to_string(), text));
            }
        }
        places.push(("daemon log".into(), std::fs::read_to_string(&self.world.daemon.log).unwrap_or_default()));
        places.push(("events".into(), std::fs::read_to_string(&self.events).unwrap_or_default()));
        for (place, text) in &places {
            for (var, c) in CANARIES {
                assert!(!text.contains(c), "the {var} canary is in {place}");
            }
        }
    }
}

#[test]
fn claude_code_in_print_mode_answers_with_history_and_idle_status() {
    let project_settings = r#"{"permissions":{"allow":["Bash(make test)"]}}"#;
    let run = run_agent_in("claude-code", |repo| {
        std::fs::create_dir_all(repo.join(".claude")).expect("mkdir");
        std::fs::write(repo.join(".claude/settings.json"), project_settings).expect("write");
        let git = |args: &[&str]| {
            assert!(std::process::Command::new("git").arg("-C").arg(repo).args(args).status().expect("git").success())
        };
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "project settings"]);
    });
    run.assert_exchange();
    run.assert_injected("/v1/messages", "x-api-key", canary("ANTHROPIC_API_KEY"));
    run.assert_no_canary();
    // Its hooks live in the session's own config home: the project's settings are untouched.
    let worktree = run.session["worktree"].as_str().expect("worktree");
    let settings =
        std::fs::read_to_string(Path::new(worktree).join(".claude/settings.json")).expect("project settings");
    assert_eq!(settings, project_settings);
}

#[test]
fn codex_in_print_mode_answers_over_its_websocket_transport() {
    let run = run_agent("codex");
    run.assert_exchange();
    run.assert_injected("/v1/responses", "authorization", &format!("Bearer {}", canary("OPENAI_API_KEY")));
    run.assert_no_canary();
    let audit = run.world.audit_settled(run.session["name"].as_str());
    let ws = audit.iter().find(|r| r["path"] == "/v1/responses" && r["status"] == 101);
    let ws = ws.unwrap_or_else(|| panic!("the WebSocket was audited: {audit:?}"));
    // Codex exits without TLS's close_notify: the WebSocket ended, with its bytes counted.
    assert!(ws["bytes_up"].as_u64() > Some(0) && ws["bytes_down"].as_u64() > Some(0), "{ws}");
    assert!(ws.get("reason").is_none(), "a client that went away did not break the WebSocket: {ws}");
}

#[test]
fn gemini_in_print_mode_answers_with_history_and_idle_status() {
    let run = run_agent("gemini");
    run.assert_exchange();
    run.assert_injected(":generateContent", "x-goog-api-key", canary("GEMINI_API_KEY"));
    run.assert_no_canary();
}

#[test]
fn claude_code_interactive_answers_without_first_run_dialogs_and_waits_for_input() {
    interactive_turn(&World::start(), "claude-code", &[]);
}

#[test]
fn codex_interactive_answers_without_first_run_dialogs_and_waits_for_input() {
    let world = World::start();
    let session = interactive_turn(&world, "codex", &[]);
    // On the host it runs in clauderon's sandbox, where Codex's own cannot nest.
    let processes = session_processes(session["id"].as_str().expect("id"));
    assert!(processes.contains("--no-daemon") && processes.contains("danger-full-access"), "{processes}");
    assert!(processes.contains("sandbox\0exec"), "Codex runs in clauderon's sandbox: {processes}");
}

#[test]
fn gemini_interactive_answers_without_first_run_dialogs_and_waits_for_input() {
    interactive_turn(&World::start(), "gemini", &[]);
}

/// The mock answers "Run make test" with a shell tool call, which needs the
/// user's approval: the status says waiting-for-approval and the agent's
/// screen shows the question. `clauderon approve` (the API's approval, which
/// types the keys the agent's component names) lets the command run, its
/// result goes back to the model, the answer comes, the agent waits for input
/// again, and the history holds the tool use, its result and the answer.
/// (Gemini CLI writes a tool call to its transcript only once it has run.)
fn approval_flow(agent: &str) {
    let world = World::start();
    let s = create_interactive(&world, agent, "Run make test", &[]);
    let id = s["id"].as_str().expect("id");
    let name = s["name"].as_str().expect("name");
    wait_for_agent_status(&world, id, "waiting-for-approval");
    eventually(30, "the permission prompt on the agent's screen", || {
        let (_, output) = world.daemon.http("GET", &format!("/api/sessions/{id}/output?lines=40"), None);
        output["output"].as_str().filter(|o| o.contains("make test")).map(str::to_owned)
    });
    let approved = world.home.run(&["approve", name]).ok().stdout;
    assert!(approved.contains("Approved"), "{approved}");
    wait_for_agent_status(&world, id, "waiting-for-input");
    eventually(20, "the tool use, its result and the answer in the history", || {
        let (_, history) = world.daemon.http("GET", &format!("/api/sessions/{id}/history"), None);
        let messages = history["messages"].as_array().cloned().unwrap_or_default();
        let has = |role: &str, check: &dyn Fn(&str) -> bool| {
            messages.iter().any(|m| m["role"] == role && m["text"].as_str().is_some_and(check))
        };
        (has("tool-use", &|t| t.contains("make test"))
            && has("tool-result", &|_| true)
            && has("assistant", &|t| t == MOCK_ANSWER))
        .then_some(())
    });
    // Nothing waits any more: a second answer is refused, naming the state.
    let again = world.home.run(&["approve", name]);
    assert!(
        again.code != 0 && again.stderr.contains("not waiting for approval (its agent is waiting-for-input)"),
        "{}",
        again.stderr
    );
}

#[test]
fn claude_code_asks_approval_for_a_command_and_goes_on_once_approved() {
    approval_flow("claude-code");
}

#[test]
fn gemini_asks_approval_for_a_command_and_goes_on_once_approved() {
    approval_flow("gemini");
}

/// Denied (`clauderon deny`, the agent's own "no" keys): the command never
/// runs and the agent waits for the user again.
#[test]
fn claude_code_runs_nothing_it_was_denied() {
    let world = World::start();
    let s = create_interactive(&world, "claude-code", "Run make test", &[]);
    let id = s["id"].as_str().expect("id");
    let name = s["name"].as_str().expect("name");
    wait_for_agent_status(&world, id, "waiting-for-approval");
    eventually(30, "the permission prompt on the agent's screen", || {
        let (_, output) = world.daemon.http("GET", &format!("/api/sessions/{id}/output?lines=40"), None);
        output["output"].as_str().filter(|o| o.contains("Do you want to proceed")).map(str::to_owned)
    });
    let denied = world.home.run(&["deny", name]).ok().stdout;
    assert!(denied.contains("Denied"), "{denied}");
    // Claude Code says nothing when a prompt is refused: the daemon marks it.
    wait_for_agent_status(&world, id, "waiting-for-input");
    eventually(20, "Claude Code asking what to do instead", || {
        let (_, output) = world.daemon.http("GET", &format!("/api/sessions/{id}/output?lines=40"), None);
        output["output"].as_str().filter(|o| o.contains("What should Claude do instead")).map(str::to_owned)
    });
    // The command never ran: no tool result but the refusal, and the model
    // was not asked again (its answer would follow a result).
    let (_, history) = world.daemon.http("GET", &format!("/api/sessions/{id}/history"), None);
    let messages = history["messages"].as_array().cloned().unwrap_or_default();
    assert!(!messages.iter().any(|m| m["role"] == "assistant" && m["text"] == MOCK_ANSWER), "{history:#}");
    let results: Vec<&str> =
        messages.iter().filter(|m| m["role"] == "tool-result").filter_map(|m| m["text"].as_str()).collect();
    assert!(
        results.len() == 1 && results[0].contains("doesn't want to proceed"),
        "the only tool result is the refusal: {history:#}"
    );
}
