//! `clauderon doctor`: asks the daemon (starting it if needed) what this
//! machine can run now (`GET /api/doctor`) and prints each check with the
//! command that fixes it. Exits 1 when the default backend and agent cannot
//! work, or when the daemon cannot start (that is then the one check shown).

use std::process::ExitCode;

use clauderon_api::doctor::{Check, Doctor};
use clauderon_daemon::Home;

use clauderon_client::Client;
use clauderon_client::safe_text::for_terminal;

/// Run the checks and print them (`json`: the report as JSON).
pub async fn run(home: &Home, json: bool) -> anyhow::Result<ExitCode> {
    let report = match Client::connect(home).await {
        Ok(client) => client.call_as::<Doctor>(reqwest::Method::GET, "/api/doctor", None::<&()>).await?,
        Err(e) => {
            let mut check = Check::new("daemon", "daemon", false, format!("{e:#}"));
            check.required = true;
            check.fix =
                Some(format!("see {} (or run `clauderon daemon` in the foreground)", home.daemon_log().display()));
            Doctor { ok: false, default_backend: String::new(), default_agent: String::new(), checks: vec![check] }
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The report for people: one line per check, its fix under it, a verdict.
fn render(report: &Doctor) -> String {
    let mut out = String::new();
    for check in &report.checks {
        let mark = match (check.ok, check.required) {
            (true, _) => "ok  ",
            (false, true) => "FAIL",
            (false, false) => "--  ",
        };
        let what = if check.area == check.name { check.area.clone() } else { format!("{} {}", check.area, check.name) };
        out.push_str(&format!("{mark} {:<26} {}\n", for_terminal(&what), for_terminal(&check.detail)));
        if let (false, Some(fix)) = (check.ok, &check.fix) {
            out.push_str(&format!("     {:<26} fix: {}\n", "", for_terminal(fix)));
        }
    }
    let defaults = format!("{} with {}", for_terminal(&report.default_backend), for_terminal(&report.default_agent));
    if report.ok {
        out.push_str(&format!("\nThe default path ({defaults}) can work. `--` marks what only other choices need.\n"));
    } else if report.default_backend.is_empty() {
        out.push_str("\nThe daemon cannot start: fix what is marked FAIL.\n");
    } else {
        out.push_str(&format!("\nThe default path ({defaults}) cannot work yet: fix what is marked FAIL.\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(area: &str, name: &str, ok: bool, required: bool, detail: &str, fix: Option<&str>) -> Check {
        let mut c = Check::new(area, name, ok, detail);
        c.required = required;
        c.fix = fix.map(String::from);
        c
    }

    #[test]
    fn a_failed_required_check_shows_its_fix_and_the_verdict() {
        let report = Doctor {
            ok: false,
            default_backend: "zellij".into(),
            default_agent: "claude-code".into(),
            checks: vec![
                check("daemon", "daemon", true, true, "running", None),
                check(
                    "backend",
                    "zellij",
                    false,
                    true,
                    "`zellij` is not installed",
                    Some("cargo install --locked zellij"),
                ),
                check(
                    "agent",
                    "codex",
                    false,
                    false,
                    "`codex` is not installed\u{1b}[2J",
                    Some("npm i -g @openai/codex"),
                ),
            ],
        };
        let text = render(&report);
        assert!(text.contains("ok   daemon "), "{text}");
        assert!(text.contains("FAIL backend zellij"), "{text}");
        assert!(text.contains("fix: cargo install --locked zellij"), "{text}");
        assert!(text.contains("--   agent codex"), "{text}");
        assert!(!text.contains('\u{1b}'), "escape sequences are shown, not obeyed: {text}");
        assert!(text.contains("(zellij with claude-code) cannot work yet"), "{text}");
    }
}
