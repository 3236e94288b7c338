//! The web dashboard end to end: the real daemon serving its embedded build,
//! real zellij sessions, and Debian's Chromium driven by playwright-core
//! (`tests/web/dashboard.cjs`, which reports what the browser saw). Then the
//! attacks on the browser's login, from where an attacker would be: a
//! hostile page on another port of this machine in the signed-in browser,
//! and requests that carry the stolen-in-transit cookie with a foreign
//! `Host`, `Origin` or fetch site.

use std::process::Command;

use clauderon_tests::{World, clauderon_bin, repo_root, value};

/// Where the screenshots go (kept as test artifacts).
fn shots_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Run `tests/web/SCRIPT` (node, driving Chromium) with `env` and the
/// screenshot directory; its JSON report (the last line it prints), which
/// must hold no error.
fn browser(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let out = Command::new("node")
        .arg(repo_root().join("tests/web").join(script))
        .envs(env.iter().copied())
        .env("SHOTS", shots_dir())
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script} printed no report ({e}):\n{stdout}\n{stderr}"));
    assert!(out.status.success() && report.get("error").is_none(), "{script}: {report:#}\n{stderr}");
    assert!(report.get("pageErrors").is_none(), "{script}: errors in the page: {report:#}");
    report
}

/// A one-time login link for `world`'s daemon, as `clauderon web --print` prints it.
fn login_link(world: &World) -> String {
    let link = world.home.run(&["web", "--print"]).ok();
    assert!(link.stderr.contains("works once"), "{}", link.stderr);
    link.stdout.trim().to_string()
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("the browser never got to `{name}`: {report:#}"))
}

#[test]
fn the_dashboard_signs_in_with_a_one_time_link_follows_sessions_live_and_keeps_other_pages_out() {
    let world = World::start();
    let env = world.session("web-a", "read-only", "true");
    let name = value(&env, "CLAUDERON_SESSION_NAME").to_string();
    let port = world.daemon.port;
    let base = format!("http://127.0.0.1:{port}");

    let login = login_link(&world);
    assert!(login.starts_with(&format!("{base}/login?ticket=")), "{login}");

    let report = browser(
        "dashboard.cjs",
        &[
            ("BASE", base.as_str()),
            ("LOGIN", login.as_str()),
            ("SESSION", name.as_str()),
            ("CLAUDERON", &clauderon_bin().display().to_string()),
            ("CLAUDERON_HOME", &world.home.dir.path().display().to_string()),
            ("REPO", &world.repo.path().display().to_string()),
        ],
    );
    let signed_out = step(&report, "signed-out page");
    assert!(signed_out["text"].as_str().unwrap_or_default().contains("clauderon web"), "{signed_out}");

    let signed_in = step(&report, "signed in");
    assert_eq!(signed_in["url"], format!("{base}/"), "the link lands on the dashboard: {signed_in}");
    assert_eq!(signed_in["cookie"]["httpOnly"], true, "{signed_in}");
    assert_eq!(signed_in["cookie"]["sameSite"], "Strict", "{signed_in}");
    assert_eq!(signed_in["documentCookie"], "", "scripts cannot read the login cookie");
    let token = world.daemon.token.clone();
    for field in ["storage", "html"] {
        assert!(
            !signed_in[field].as_str().unwrap_or_default().contains(&token),
            "the API token is in the page's {field}"
        );
    }

    let mode = step(&report, "access mode followed live");
    assert_eq!((mode["before"].as_str(), mode["after"].as_str()), (Some("read-only"), Some("read-write")), "{mode}");
    let created = step(&report, "new session appeared live");
    assert!(created["status"].as_str().is_some_and(|s| s == "running" || s == "creating"), "{created}");
    assert_eq!(step(&report, "search")["rows"], 1, "the search keeps only the matching session");
    assert_eq!(step(&report, "deleted session left live")["notReloaded"], true, "all of it without a reload");
    assert_eq!(step(&report, "phone width")["horizontalOverflow"], 0, "nothing wider than a 375 px phone");

    let reused = step(&report, "link reused");
    assert_eq!(reused["status"], 401, "{reused}");
    assert!(reused["text"].as_str().unwrap_or_default().contains("expired or was used"), "{reused}");

    // The hostile page: its requests carried the cookie (same site) but are
    // refused, so it read nothing and archived nothing.
    let hostile = step(&report, "hostile page");
    let result = &hostile["result"];
    assert!(!result["read"].as_str().unwrap_or_default().contains(&name), "it read the sessions: {hostile}");
    assert!(result["ws"].as_str().is_some_and(|w| w == "error"), "it opened the event stream: {hostile}");
    let (_, session) =
        world.daemon.http("GET", &format!("/api/sessions/{}", hostile["id"].as_str().expect("id")), None);
    assert_eq!(session["status"], "running", "a hostile page archived the session: {session}");

    // The cookie itself, sent as a thief or another site would send it.
    let cookie = format!("cookie: clauderon_web={}", signed_in["cookie"]["value"].as_str().expect("cookie value"));
    let try_with = |extra: &[&str]| {
        let mut args = vec!["-H", cookie.as_str()];
        args.extend_from_slice(extra);
        world.daemon.curl("GET", "/api/sessions", None, &args).0
    };
    assert_eq!(try_with(&["-H", "sec-fetch-site: same-origin"]), 200, "the dashboard's own requests pass");
    assert_eq!(try_with(&["-H", "sec-fetch-site: same-site"]), 403, "another port of this machine");
    assert_eq!(try_with(&["-H", "sec-fetch-site: cross-site"]), 403);
    assert_eq!(try_with(&["-H", "origin: http://127.0.0.1:1"]), 403, "a foreign Origin");
    assert_eq!(try_with(&["-H", &format!("host: rebound.example:{port}")]), 403, "a DNS-rebinding Host");
    let forged = format!("cookie: clauderon_web={}x", signed_in["cookie"]["value"].as_str().unwrap_or_default());
    assert_eq!(world.daemon.curl("GET", "/api/sessions", None, &["-H", &forged]).0, 401, "a forged cookie");

    // The credentials page: each service masked, no real value anywhere in it.
    let credentials = step(&report, "credentials page");
    assert_eq!(credentials["url"], format!("{base}/credentials"), "{credentials}");
    let github = credentials["row"].as_str().unwrap_or_default();
    assert!(github.contains("yes") && github.contains("env"), "{github}");
    let html = credentials["html"].as_str().unwrap_or_default();
    for (var, value) in clauderon_tests::CANARIES {
        assert!(!html.contains(value), "{var}'s real value is in the credentials page");
    }
    let plugins = step(&report, "plugins page");
    assert!(plugins["count"].as_u64() >= Some(9), "every bundled plugin: {plugins}");
    let zellij = plugins["zellij"].as_str().unwrap_or_default();
    assert!(zellij.contains("bundled") && zellij.contains("zellij"), "{zellij}");
    assert!(
        plugins["claude"].as_str().is_some_and(|c| c.contains("No capabilities granted")),
        "agents run nothing: {plugins}"
    );
    let system = step(&report, "system page");
    assert_eq!(system["version"], env!("CARGO_PKG_VERSION"), "{system}");
    assert!(system["uptime"].as_str().is_some_and(|u| u.ends_with(" s") || u.ends_with(" min")), "{system}");
    assert_eq!(system["zellijOk"], "true", "zellij runs here: {system}");
    assert_eq!(system["horizontalOverflow"], 0, "the system page fits a 375 px phone: {system}");

    let installable = step(&report, "installable");
    assert_eq!(installable["installabilityErrors"], serde_json::json!([]), "Chromium can install it: {installable}");
    assert_eq!(installable["manifestErrors"], serde_json::json!([]), "{installable}");
    assert_eq!(installable["manifest"]["type"], "application/manifest+json", "{installable}");
    assert_eq!(installable["manifest"]["body"]["display"], "standalone", "{installable}");
    assert_eq!(installable["notifyButton"], 1, "it offers notifications before they are allowed: {installable}");
    assert_eq!(installable["controlled"], true, "the service worker serves the page: {installable}");
    assert!(installable["offline"].as_str().is_some_and(|o| o.contains("Offline")), "{installable}");

    for shot in [
        "sessions-desktop.png",
        "sessions-phone.png",
        "credentials-desktop.png",
        "plugins-desktop.png",
        "system-phone.png",
    ] {
        let size = std::fs::metadata(shots_dir().join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 5_000, "{shot}: {size} bytes");
    }
}

/// The daemon serves the embedded build: the app at `/` and at its routes
/// (never cached), hashed assets cached for good and gzip-compressed, and
/// security headers on each; `/api` paths stay the API's.
#[test]
fn the_daemon_serves_the_embedded_dashboard_with_caching_and_compression() {
    let world = World::start();
    let base = format!("http://127.0.0.1:{}", world.daemon.port);
    let head = |path: &str, extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-D", "-"])
            .args(extra)
            .arg(format!("{base}{path}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    let index = head("/", &[]);
    assert!(index.starts_with("http/1.1 200"), "{index}");
    assert!(index.contains("cache-control: no-cache"), "{index}");
    assert!(index.contains("content-security-policy: default-src 'self'"), "{index}");
    assert!(index.contains("x-frame-options: deny"), "{index}");
    let page = Command::new("curl").args(["-sS", &format!("{base}/")]).output().expect("curl");
    let html = String::from_utf8_lossy(&page.stdout);
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script in index.html");
    assert!(script.starts_with("/assets/"), "{html}");
    let asset = head(script, &["-H", "accept-encoding: gzip"]);
    assert!(asset.contains("cache-control: public, max-age=31536000, immutable"), "{asset}");
    assert!(asset.contains("content-encoding: gzip"), "{asset}");
    assert!(head("/sessions/any", &[]).contains("cache-control: no-cache"), "an app route gets the app");
    assert!(head("/assets/none.js", &[]).starts_with("http/1.1 404"));
    let (code, body) = world.daemon.curl("GET", "/api/no-such-thing", None, &[]);
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("no such API endpoint"), "{body}");
    let rebound = head("/", &["-H", "host: rebound.example"]);
    assert!(rebound.starts_with("http/1.1 403"), "the files too answer only to the daemon's own names: {rebound}");
}

/// Sessions made and run from the dashboard: the create dialog (a refused
/// repository in the API's words; shell sessions and a Claude Code session
/// against the mock model), the session page's audit (a write allowed, then
/// blocked once writes are turned off there), the composer and the terminal
/// (both reach the agent; a second viewer sees the same), Claude Code's
/// permission prompt approved from the page's banner, the chat (the model's
/// answer once the command ran), and Delete.
#[test]
fn sessions_are_created_watched_and_deleted_from_the_dashboard() {
    // The daemon's HOME holds the repository, for the dialog's directory browser.
    let user_home = tempfile::tempdir().expect("tempdir");
    let home_dir = user_home.path().to_str().expect("utf-8");
    let world = World::start_full(Some(user_home.path()), "", "", &[("HOME", home_dir)]);
    let base = format!("http://127.0.0.1:{}", world.daemon.port);
    let login = login_link(&world);
    let repo = world.repo.path().canonicalize().expect("repo");
    let under_home = repo.strip_prefix(user_home.path().canonicalize().expect("home")).expect("the repo is under HOME");
    let report = browser(
        "session.cjs",
        &[
            ("BASE", base.as_str()),
            ("LOGIN", login.as_str()),
            ("REPO", &repo.display().to_string()),
            ("BROWSE", &under_home.display().to_string()),
        ],
    );
    let refused = step(&report, "refused repository");
    assert!(refused["text"].as_str().is_some_and(|t| t.contains("/nonexistent/place")), "the API's words: {refused}");
    let created = step(&report, "created through the dialog");
    assert!(created["url"].as_str().is_some_and(|u| u.contains("/sessions/web-writer-")), "{created}");
    assert_eq!(created["repo"].as_str(), repo.to_str(), "the browser picked the repository: {created}");
    let allowed = step(&report, "write allowed in the audit");
    assert!(allowed["row"].as_str().is_some_and(|r| r.contains("allowed")), "{allowed}");
    let blocked = step(&report, "write blocked in the audit");
    assert!(
        blocked["row"].as_str().is_some_and(|r| r.contains("blocked") && r.contains("can change data")),
        "{blocked}"
    );
    let typed = step(&report, "typed through the composer and the terminal");
    for viewer in ["first", "second"] {
        let screen = typed[viewer].as_str().unwrap_or_default();
        assert!(screen.contains("got:from-composer") && screen.contains("got:from-terminal"), "{viewer}: {screen}");
    }
    let echo = typed["session"].as_str().expect("name");
    let (_, output) = world.daemon.http("GET", &format!("/api/sessions/{echo}/output?lines=40"), None);
    let output = output["output"].as_str().unwrap_or_default();
    assert!(
        output.contains("got:from-composer") && output.contains("got:from-terminal"),
        "the session's own screen: {output}"
    );
    let asked = step(&report, "approved from the banner");
    assert!(asked["title"].as_str().is_some_and(|t| t.contains("claude-code")), "{asked}");
    assert!(asked["screen"].as_str().is_some_and(|t| t.contains("make test")), "the question: {asked}");
    let talker = step(&report, "deleted from its page")["talker"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        asked["notification"].as_str(),
        Some(format!("{talker} is waiting for your approval").as_str()),
        "the tab's notification: {asked}"
    );
    let chat = step(&report, "chat shows the answer");
    assert!(chat["user"].as_str().is_some_and(|u| u.contains("Run make test")), "{chat}");
    assert!(chat["assistant"].as_str().is_some_and(|a| a.contains(clauderon_tests::MOCK_ANSWER)), "{chat}");
    assert_eq!(step(&report, "phone width")["horizontalOverflow"], 0, "nothing wider than a 375 px phone");
    let deleted = step(&report, "deleted from its page");
    let (_, list) = world.daemon.http("GET", "/api/sessions?archived=true", None);
    let names: Vec<&str> = list.as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    assert!(!names.contains(&deleted["talker"].as_str().expect("name")), "{names:?}");
    assert!(names.contains(&deleted["writer"].as_str().expect("name")), "{names:?}");
    // Once blocked, no write passed again (the session stayed read-only).
    let records = world.audit_settled(deleted["writer"].as_str());
    let first_blocked = records.iter().position(|r| r["decision"] == "blocked").expect("a blocked record");
    assert!(records[first_blocked..].iter().all(|r| r["decision"] != "allowed"), "a write passed after the switch");
}
