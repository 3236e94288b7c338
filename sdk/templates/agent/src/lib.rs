//! Template agent: how to launch a hypothetical `my-agent` CLI and read its
//! transcript.
//!
//! An agent component does not run anything itself. It answers questions:
//! which argv and environment start the agent (`plan`), which credentials it
//! uses, how to turn its transcript into chat messages, and what a status event
//! (posted by the agent CLI's own hooks) says about its state. The backend then runs the plan.
//!
//! Credentials: the agent never sees a real one. It declares what it needs
//! (service `example`, read from `EXAMPLE_API_KEY`), and gets a placeholder in
//! that variable; clauderon's proxy swaps in the real value on the way out.

use clauderon_sdk::types::{AgentStatus, CredentialNeed, EnvVar, LaunchPlan};
use clauderon_sdk::{Agent, AgentInfo, ChatMessage, ChatRole, Error, LaunchRequest, Result};

/// The value the agent finds in `EXAMPLE_API_KEY`.
const PLACEHOLDER: &str = "clauderon-placeholder";

/// Where `my-agent` writes its transcript, relative to its config home.
const TRANSCRIPT: &str = "transcript.jsonl";

struct MyAgent;

impl Agent for MyAgent {
    fn info() -> AgentInfo {
        AgentInfo {
            id: "example-agent".into(),
            display_name: "My Agent (example)".into(),
            default_model: None,
            credentials: vec![credential()],
            approval_keys: None,
        }
    }

    fn plan(request: LaunchRequest) -> Result<LaunchPlan> {
        if request.print_mode && request.prompt.trim().is_empty() {
            return Err(Error::invalid_input("print mode needs a prompt"));
        }
        Ok(LaunchPlan {
            argv: argv(&request),
            env: vec![
                EnvVar { name: "EXAMPLE_API_KEY".into(), value: PLACEHOLDER.into() },
                // Tell the agent where its config home is, so it writes its
                // transcript where `transcript_path` says.
                EnvVar { name: "MY_AGENT_HOME".into(), value: request.config_home },
            ],
            files: Vec::new(),
            credentials: vec![credential()],
            transcript_path: Some(TRANSCRIPT.into()),
        })
    }

    fn parse_transcript(lines: Vec<String>) -> Result<Vec<ChatMessage>> {
        // Lines that are not a user or assistant message are skipped.
        Ok(lines.iter().filter_map(|line| parse_line(line)).collect())
    }

    fn status_from_event(event_json: String) -> Option<AgentStatus> {
        // `my-agent` posts `{"event":"stop"}` when it finishes.
        event_json.contains("\"stop\"").then_some(AgentStatus::Idle)
    }
}

clauderon_sdk::export_agent!(MyAgent);

/// The one credential `my-agent` uses.
fn credential() -> CredentialNeed {
    CredentialNeed {
        service: "example".into(),
        env_name: "EXAMPLE_API_KEY".into(),
        placeholder: PLACEHOLDER.into(),
        required: true,
    }
}

/// `my-agent [--prompt P] [--model M] [--print]`.
fn argv(request: &LaunchRequest) -> Vec<String> {
    let mut argv = vec!["my-agent".to_string()];
    // An empty prompt is an interactive start: no `--prompt`.
    if !request.prompt.is_empty() {
        argv.extend(["--prompt".into(), request.prompt.clone()]);
    }
    if let Some(model) = &request.model {
        argv.extend(["--model".into(), model.clone()]);
    }
    if request.print_mode {
        argv.push("--print".into());
    }
    argv
}

/// One transcript line, `{"role":"user"|"assistant","text":"..."}`, as a
/// chat message; `None` for anything else.
fn parse_line(line: &str) -> Option<ChatMessage> {
    let (mut role, mut text) = (None, None);
    for (key, value) in json::string_fields(line)? {
        match key.as_str() {
            "role" => role = Some(value),
            "text" => text = Some(value),
            _ => {}
        }
    }
    let role = match role?.as_str() {
        "user" => ChatRole::User,
        "assistant" => ChatRole::Assistant,
        _ => return None,
    };
    Some(ChatMessage { role, text: text?, tool_name: None, timestamp_ms: None })
}

/// Just enough JSON for one flat object per line, without pulling a JSON
/// crate into the component (it would make the `.wasm` several times larger).
mod json {
    use std::iter::Peekable;
    use std::str::Chars;

    /// The string-valued fields of a JSON object; other values are skipped.
    /// `None` if the text is not one JSON object.
    pub fn string_fields(text: &str) -> Option<Vec<(String, String)>> {
        let mut it = text.chars().peekable();
        let mut fields = Vec::new();
        skip_ws(&mut it);
        expect(&mut it, '{')?;
        skip_ws(&mut it);
        if it.peek() == Some(&'}') {
            it.next();
        } else {
            loop {
                skip_ws(&mut it);
                expect(&mut it, '"')?;
                let key = string(&mut it)?;
                skip_ws(&mut it);
                expect(&mut it, ':')?;
                skip_ws(&mut it);
                if it.peek() == Some(&'"') {
                    it.next();
                    fields.push((key, string(&mut it)?));
                } else {
                    skip_value(&mut it)?;
                }
                skip_ws(&mut it);
                match it.next()? {
                    ',' => continue,
                    '}' => break,
                    _ => return None,
                }
            }
        }
        skip_ws(&mut it);
        it.next().is_none().then_some(fields)
    }

    fn skip_ws(it: &mut Peekable<Chars<'_>>) {
        while it.next_if(|c| c.is_ascii_whitespace()).is_some() {}
    }

    fn expect(it: &mut Peekable<Chars<'_>>, want: char) -> Option<()> {
        (it.next()? == want).then_some(())
    }

    /// The rest of a string whose opening quote was read.
    fn string(it: &mut Peekable<Chars<'_>>) -> Option<String> {
        let mut out = String::new();
        loop {
            match it.next()? {
                '"' => return Some(out),
                '\\' => match it.next()? {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let high = hex4(it)?;
                        let code = if (0xD800..0xDC00).contains(&high) {
                            // A surrogate pair: `\uD83D\uDE00`.
                            expect(it, '\\')?;
                            expect(it, 'u')?;
                            let low = hex4(it)?;
                            if !(0xDC00..0xE000).contains(&low) {
                                return None;
                            }
                            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            high
                        };
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                },
                c => out.push(c),
            }
        }
    }

    fn hex4(it: &mut Peekable<Chars<'_>>) -> Option<u32> {
        let mut n = 0;
        for _ in 0..4 {
            n = n * 16 + it.next()?.to_digit(16)?;
        }
        Some(n)
    }

    /// Skip a number, `true`, `false`, `null`, array or object.
    fn skip_value(it: &mut Peekable<Chars<'_>>) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match it.peek()? {
                '"' => {
                    it.next();
                    string(it)?;
                }
                '{' | '[' => {
                    it.next();
                    depth += 1;
                }
                '}' | ']' if depth > 0 => {
                    it.next();
                    depth -= 1;
                }
                ',' | '}' if depth == 0 => return Some(()),
                _ => {
                    it.next();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &str, model: Option<&str>, print_mode: bool) -> LaunchRequest {
        LaunchRequest {
            session_id: "0b7c".into(),
            prompt: prompt.into(),
            model: model.map(String::from),
            print_mode,
            plan_mode: false,
            skip_permissions: false,
            resume: false,
            config_home: "/home/agent/.my-agent".into(),
            worktree: "/tmp".into(),
            workdir: "/tmp".into(),
            status_url: None,
            isolated: false,
        }
    }

    #[test]
    fn builds_the_argv() {
        assert_eq!(argv(&request("fix it", None, false)), ["my-agent", "--prompt", "fix it"]);
        assert_eq!(
            argv(&request("fix it", Some("big"), true)),
            ["my-agent", "--prompt", "fix it", "--model", "big", "--print"]
        );
        assert_eq!(argv(&request("", None, false)), ["my-agent"]);
    }

    #[test]
    fn parses_transcript_lines() {
        let m = parse_line(r#"{"role":"user","text":"hi \"there\"\n\u00e9\ud83d\ude00"}"#).expect("a message");
        assert!(matches!(m.role, ChatRole::User));
        assert_eq!(m.text, "hi \"there\"\n\u{e9}\u{1f600}");

        let m = parse_line(r#" { "n": 3, "meta": {"a": [1, "}"]}, "text": "ok", "role": "assistant" } "#)
            .expect("other fields are skipped");
        assert!(matches!(m.role, ChatRole::Assistant));
        assert_eq!(m.text, "ok");

        for bad in [
            "",
            "not json",
            r#"{"role":"system","text":"x"}"#,
            r#"{"role":"user"}"#,
            r#"{"role":"user","text":"x"} trailing"#,
        ] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn stop_means_idle() {
        assert!(matches!(MyAgent::status_from_event(r#"{"event":"stop"}"#.into()), Some(AgentStatus::Idle)));
        assert!(MyAgent::status_from_event(r#"{"event":"tool"}"#.into()).is_none());
    }
}
