//! The web dashboard end to end: the real daemon serving its embedded build,
//! real zellij sessions, and Debian's Chromium driven by playwright-core
//! (`tests/web/dashboard.cjs`, which reports what the browser saw). Then the
//! attacks on the browser's login, from where an attacker would be: a
//! hostile page on another port of this machine in the signed-in browser,
//! and requests that carry the stolen-in-transit cookie with a foreign
//! `Host`, `Origin` or fetch site. And Web Push: messages to a subscribed
//! browser's push service (the mock's), opened with a browser's keys by an
//! implementation the daemon shares nothing with (`tests/web/push-subscriber.cjs`).

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

/// Run `tests/web/push-subscriber.cjs MODE` with `input` on stdin; its JSON answer.
fn subscriber(mode: &str, input: &serde_json::Value) -> serde_json::Value {
    subscriber_tried(mode, input).unwrap_or_else(|e| panic!("push-subscriber {mode}: {e}"))
}

/// [`subscriber`], or what it printed on stderr when it failed.
fn subscriber_tried(mode: &str, input: &serde_json::Value) -> Result<serde_json::Value, String> {
    use std::io::Write;
    let mut child = Command::new("node")
        .arg(repo_root().join("tests/web/push-subscriber.cjs"))
        .arg(mode)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("node");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("not JSON: {e}"))
}

/// A browser's subscription to the mock push service at `/push/PATH`, with
/// fresh keys: (the subscription as the browser gives it, the keys).
fn subscription(path: &str) -> (serde_json::Value, serde_json::Value) {
    let keys = subscriber("keys", &serde_json::Value::Null);
    let sub = serde_json::json!({
        "endpoint": format!("https://push.example.test/push/{path}"),
        "expirationTime": null,
        "keys": { "p256dh": keys["p256dh"], "auth": keys["auth"] },
    });
    (sub, keys)
}

/// Every message the mock push service got at `/push/PATH`, oldest first, opened with `keys`.
fn opened(world: &World, path: &str, keys: &serde_json::Value, vapid_key: &str) -> Vec<serde_json::Value> {
    let pushes = world.mock.pushes();
    let mine: Vec<_> = pushes.iter().filter(|m| m["path"] == format!("/push/{path}")).collect();
    assert!(!mine.is_empty(), "no push to /push/{path}: {pushes:?}");
    let open = |m: &&serde_json::Value| {
        subscriber("open", &serde_json::json!({ "subscriber": keys, "message": m, "vapidKey": vapid_key }))
    };
    mine.iter().map(open).collect()
}

/// The views axe-core checked (the script stops at a serious violation, so
/// each one listed had none).
fn accessibility_checked(report: &serde_json::Value) -> Vec<&str> {
    let steps = report["steps"].as_array().into_iter().flatten();
    steps.filter_map(|s| s["name"].as_str()?.strip_prefix("accessible: ")).collect()
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
    let sorted = step(&report, "sorted by name");
    for (order, aria) in [("ascending", "ascending"), ("descending", "descending")] {
        assert_eq!(sorted[order]["ariaSort"], aria, "{sorted}");
        let names: Vec<&str> =
            sorted[order]["names"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
        let mut expected = names.clone();
        expected.sort();
        if order == "descending" {
            expected.reverse();
        }
        assert!(names.len() >= 4, "every session is listed: {sorted}");
        assert_eq!(names, expected, "sorted {order} by name: {sorted}");
    }
    let archived = step(&report, "bulk archived");
    assert_eq!(archived["ticked"], "2 sessions ticked", "{archived}");
    let deleted = step(&report, "bulk deleted");
    assert_eq!(deleted["ticked"], "2 sessions ticked", "the Archived tab's heading box ticks its two: {deleted}");
    assert_eq!(deleted["barGone"], true, "{deleted}");
    let (_, all) = world.daemon.http("GET", "/api/sessions?archived=true", None);
    let left: Vec<&str> = all.as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    for bulk in deleted["names"].as_array().into_iter().flatten().filter_map(|n| n.as_str()) {
        assert!(!left.contains(&bulk), "{bulk} was deleted in bulk: {left:?}");
    }
    let checked = accessibility_checked(&report);
    assert_eq!(checked.len(), 6, "axe-core checked every page and the help: {checked:?}");
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
    let pushed = step(&report, "push shown");
    assert_eq!(pushed["tag"], "clauderon-pushed", "the service worker showed the pushed message: {pushed}");
    assert_eq!(pushed["url"], "/sessions/pushed-session", "a click opens the session: {pushed}");

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
    // A browser subscribed to Web Push: the agent's wait reaches it too.
    let (code, info) = world.daemon.http("GET", "/api/push", None);
    assert_eq!(code, 200, "{info}");
    let vapid_key = info["public_key"].as_str().expect("public key").to_string();
    let (sub, keys) = subscription("dashboard-user");
    let (code, body) = world.daemon.http("POST", "/api/push/subscriptions", Some(&sub.to_string()));
    assert_eq!(code, 200, "{body}");
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
    // The same wait, pushed: encrypted for the subscribed browser and signed by the daemon.
    let pushed = opened(&world, "dashboard-user", &keys, &vapid_key);
    let approval = format!("{talker} is waiting for your approval");
    let waiting = pushed.iter().find(|m| m["payload"]["title"] == approval.as_str());
    let waiting = waiting.unwrap_or_else(|| panic!("no push saying {approval:?}: {pushed:?}"));
    assert_eq!(waiting["payload"]["url"], format!("/sessions/{talker}"), "{waiting}");
    assert!(pushed.iter().all(|m| m["signatureValid"] == true), "{pushed:?}");
    let chat = step(&report, "chat shows the answer");
    assert!(chat["user"].as_str().is_some_and(|u| u.contains("Run make test")), "{chat}");
    assert!(chat["assistant"].as_str().is_some_and(|a| a.contains(clauderon_tests::MOCK_ANSWER)), "{chat}");
    assert_eq!(step(&report, "phone width")["horizontalOverflow"], 0, "nothing wider than a 375 px phone");
    let checked = accessibility_checked(&report);
    assert_eq!(checked.len(), 5, "axe-core checked the dialog and each tab: {checked:?}");
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

/// Web Push from the API: the daemon's VAPID key; a subscription kept; a test
/// message encrypted for the browser (opened with its keys by http_ece, the
/// encryption's reference implementation) with a VAPID JWT for the push
/// service's origin, signed by that key; a subscription the service says is
/// gone, forgotten. The attacks: endpoints that would send the daemon
/// somewhere else than a push service (plain http, an address, localhost,
/// this machine's API, a look-alike host) and keys that are no keys are
/// refused, and nothing reaches the API without its token.
#[test]
fn web_push_reaches_a_subscribed_browser_encrypted_and_signed() {
    let world = World::start();
    let (code, info) = world.daemon.http("GET", "/api/push", None);
    assert_eq!(code, 200, "{info}");
    let vapid_key = info["public_key"].as_str().expect("public key").to_string();
    assert_eq!(vapid_key.len(), 87, "65 bytes, base64url: {info}");
    assert_eq!(info["subscriptions"], serde_json::json!([]), "{info}");
    assert_eq!(info["services"], serde_json::json!(["push.example.test"]), "{info}");

    let (sub, keys) = subscription("browser-1");
    let post = |body: &serde_json::Value| world.daemon.http("POST", "/api/push/subscriptions", Some(&body.to_string()));
    let port = world.daemon.port;
    for (endpoint, why) in [
        ("http://push.example.test/push/a".to_string(), "https"),
        (format!("https://127.0.0.1:{port}/api/sessions"), "an address"),
        ("https://[::1]/push/a".into(), "an address"),
        ("https://localhost/push/a".into(), "an address"),
        ("https://api.github.com/push/a".into(), "not a push service"),
        ("https://push.example.test.evil.test/push/a".into(), "not a push service"),
        ("https://evilpush.example.test/push/a".into(), "not a push service"),
        ("not a url".into(), "not a URL"),
    ] {
        let mut hostile = sub.clone();
        hostile["endpoint"] = endpoint.clone().into();
        let (code, body) = post(&hostile);
        assert_eq!(code, 400, "{endpoint}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains(why)), "{endpoint}: {body}");
    }
    let mut off_curve = sub.clone();
    let mut point = keys["p256dh"].as_str().expect("p256dh").to_string();
    point.replace_range(40..41, if &point[40..41] == "A" { "B" } else { "A" });
    off_curve["keys"]["p256dh"] = point.into();
    assert_eq!(post(&off_curve).0, 400, "a p256dh that is no P-256 point");
    let mut short_auth = sub.clone();
    short_auth["keys"]["auth"] = "AAAAAAAAAAAAAAAAAAAA".into();
    let (code, body) = post(&short_auth);
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("16 bytes")), "{body}");
    let (code, body) = world.daemon.curl("POST", "/api/push/subscriptions", Some(&sub.to_string()), &[]);
    assert_eq!(code, 401, "no token, no subscription: {body}");
    let (code, body) = world.daemon.curl("POST", "/api/push/test", None, &[]);
    assert_eq!(code, 401, "no token, no message: {body}");
    assert!(world.mock.pushes().is_empty(), "nothing was sent while refusing");

    let (code, body) = post(&sub);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["subscriptions"][0]["origin"], "https://push.example.test", "{body}");
    let (gone, _) = subscription("gone/old-browser");
    assert_eq!(post(&gone).0, 200);
    assert_eq!(post(&sub).0, 200, "the same browser again replaces its subscription");

    let (code, sent) = world.daemon.http("POST", "/api/push/test", None);
    assert_eq!(code, 200, "{sent}");
    let deliveries = sent["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 2, "{sent}");
    assert!(deliveries.iter().any(|d| d["status"] == 201 && d["removed"] == false && d["error"].is_null()), "{sent}");
    assert!(deliveries.iter().any(|d| d["status"] == 410 && d["removed"] == true), "{sent}");
    let (_, after) = world.daemon.http("GET", "/api/push", None);
    assert_eq!(after["subscriptions"].as_array().map(Vec::len), Some(1), "the gone browser is forgotten: {after}");

    let message = opened(&world, "browser-1", &keys, &vapid_key).remove(0);
    assert_eq!(message["payload"]["title"], "clauderon notifications work", "{message}");
    assert_eq!(message["payload"]["url"], "/", "{message}");
    assert_eq!(message["jwtHeader"]["alg"], "ES256", "{message}");
    assert_eq!(
        message["claims"]["aud"], "https://push.example.test",
        "the JWT is for the push service's origin: {message}"
    );
    assert_eq!(message["claims"]["sub"], "mailto:clauderon@localhost", "{message}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let exp = message["claims"]["exp"].as_u64().expect("exp");
    assert!(exp > now && exp <= now + 24 * 3600, "RFC 8292: at most 24 hours ahead: {exp} (now {now})");
    assert_eq!(message["signatureValid"], true, "the daemon's key signed it: {message}");
    assert_eq!(message["keyMatches"], true, "k= is the key GET /api/push gives browsers: {message}");
    let headers = &message["headers"];
    assert_eq!(headers["content-encoding"], "aes128gcm", "{message}");
    assert_eq!(headers["ttl"], "3600", "{message}");
    assert_eq!(headers["urgency"], "high", "{message}");
    // Another browser's keys cannot open it.
    let (_, stranger) = subscription("stranger");
    let pushes = world.mock.pushes();
    let record = pushes.iter().find(|m| m["path"] == "/push/browser-1").expect("the message");
    let input = serde_json::json!({ "subscriber": stranger, "message": record, "vapidKey": vapid_key });
    let refused = subscriber_tried("open", &input).expect_err("another browser's keys opened the message");
    assert!(refused.contains("decrypt") || refused.contains("auth"), "{refused}");
    // No real credential leaves with a push: not in what the browser opens,
    // nor anywhere in what the push service received (headers, JWT, body).
    let received = serde_json::to_string(&pushes).expect("json");
    for (var, value) in clauderon_tests::CANARIES {
        assert!(!message.to_string().contains(value), "{var}'s real value is in the pushed message");
        assert!(!received.contains(value), "{var}'s real value reached the push service");
    }

    let endpoint = sub["endpoint"].as_str().expect("endpoint");
    let query: String = form_urlencoded::byte_serialize(endpoint.as_bytes()).collect();
    let (code, body) = world.daemon.http("DELETE", &format!("/api/push/subscriptions?endpoint={query}"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["subscriptions"], serde_json::json!([]), "{body}");
    assert_eq!(world.daemon.http("DELETE", &format!("/api/push/subscriptions?endpoint={query}"), None).0, 404);
}
