//! Attacks on the API's trust boundary from outside any session: another
//! local user (a real other uid, via `setpriv`), a hostile web page (a
//! foreign Host from DNS rebinding, a foreign Origin on a form POST or a
//! WebSocket), and a caller without the token on every endpoint the API
//! documents. Each attempt must fail with a clear error and the daemon must
//! keep serving.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use clauderon_tests::Home;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// `argv` as uid/gid 65534 (nobody): (exit code, stdout, stderr).
fn as_other_user(argv: &[&str]) -> (i32, String, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(argv)
        .output()
        .expect("setpriv (util-linux)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn another_local_user_can_neither_read_the_home_nor_call_the_api() {
    let (home, port) = Home::with_free_port();
    // What the README's `mkdir -p ~/.clauderon/secrets` leaves behind: world-readable.
    std::fs::create_dir_all(home.path("secrets")).expect("mkdir");
    std::fs::write(home.path("secrets/github"), "ghp_canaryFILE0123456789").expect("secret");
    for dir in [home.dir.path().to_path_buf(), home.path("secrets")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(home.path("config.toml"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    // CLAUDERON_HOME is the tempdir itself (under the world-traversable /tmp),
    // now 0755: only what the daemon does keeps the other user out.
    let daemon = home.daemon(port);

    assert_eq!(mode(home.dir.path()), 0o700, "CLAUDERON_HOME is made private");
    assert_eq!(mode(&home.path("secrets")), 0o700, "the secrets directory is made private");
    for file in ["api-token", "clauderon.redb", "config.toml"] {
        assert_eq!(mode(&home.path(file)), 0o600, "{file}");
    }

    let token_path = home.path("api-token");
    let (code, out, err) = as_other_user(&["cat", token_path.to_str().expect("utf-8")]);
    assert_ne!(code, 0, "another user read the API token: {out}");
    assert!(err.contains("Permission denied"), "{err}");
    let (code, out, _) = as_other_user(&["ls", home.dir.path().to_str().expect("utf-8")]);
    assert_ne!(code, 0, "another user listed the home: {out}");

    let url = format!("http://127.0.0.1:{port}/api/sessions");
    let (_, out, _) = as_other_user(&["curl", "-sS", "--noproxy", "*", "-w", "\n%{http_code}", &url]);
    assert!(out.ends_with("\n401"), "another user called the API without the token: {out}");
    assert!(out.contains("API token"), "the refusal says what is missing: {out}");
    let (_, out, _) = as_other_user(&[
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        &format!("{url}/x/stop"),
    ]);
    assert!(out.ends_with("\n401"), "{out}");

    // The owner, through the CLI, is served.
    home.run(&["list"]).ok();
    assert_eq!(daemon.http("GET", "/api/sessions", None).0, 200);
}

#[test]
fn a_web_page_cannot_drive_the_api() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    let auth = format!("authorization: Bearer {}", daemon.token);

    // DNS rebinding: the page's own host name resolves to 127.0.0.1.
    for host in ["attacker.example", "attacker.example:3030", &format!("attacker.example:{port}")] {
        let (code, body) = daemon.curl("GET", "/api/sessions", None, &["-H", &format!("host: {host}"), "-H", &auth]);
        assert_eq!(code, 403, "Host {host}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains("its own address"), "{body}");
        let (code, _) = daemon.curl("GET", "/api/health", None, &["-H", &format!("host: {host}")]);
        assert_eq!(code, 403, "even health answers only to the daemon's own name");
    }

    // A form POST from another site (a browser adds Origin; a page cannot add the token).
    for path in ["/api/reconcile", "/api/sessions/x/stop"] {
        let (code, body) = daemon.curl(
            "POST",
            path,
            None,
            &["-H", "origin: http://attacker.example", "-H", "content-type: application/x-www-form-urlencoded"],
        );
        assert_eq!(code, 403, "{path}: {body}");
        // Even a request that somehow carries the token is refused from a foreign origin.
        let (code, _) = daemon.curl("POST", path, None, &["-H", "origin: http://attacker.example", "-H", &auth]);
        assert_eq!(code, 403, "{path} with the token from a foreign origin");
    }
    let (code, _) = daemon.curl("GET", "/api/sessions", None, &["-H", "origin: null", "-H", &auth]);
    assert_eq!(code, 403, "an opaque (null) origin is foreign");
    let (code, _) =
        daemon.curl("GET", "/api/sessions", None, &["-H", &format!("origin: http://127.0.0.1:{port}"), "-H", &auth]);
    assert_eq!(code, 200, "the daemon's own origin (its dashboard) is served");

    // WebSocket: a foreign origin, and no token, are refused before the upgrade.
    let ws = |extra: &[&str]| {
        let mut args = vec![
            "-sS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "3",
            "-H",
            "connection: Upgrade",
            "-H",
            "upgrade: websocket",
            "-H",
            "sec-websocket-version: 13",
            "-H",
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
        ];
        args.extend_from_slice(extra);
        let url = format!("http://127.0.0.1:{port}/api/events");
        args.push(&url);
        let out = Command::new("curl").args(&args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(ws(&["-H", "origin: http://attacker.example", "-H", &auth]), "403", "cross-site WebSocket");
    assert_eq!(ws(&[]), "401", "a WebSocket without the token");
    assert_eq!(ws(&["-H", &auth]), "101", "the CLI's WebSocket (token, no origin) upgrades");

    home.run(&["list"]).ok();
}

#[test]
fn every_documented_endpoint_needs_the_token_but_health_and_agent_status() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    let (code, doc) = daemon.http("GET", "/api/openapi.json", None);
    assert_eq!(code, 200, "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, methods) in paths {
        for method in methods.as_object().expect("methods").keys() {
            let concrete = path.replace("{id}", "some-session");
            let (code, body) = daemon.curl(&method.to_uppercase(), &concrete, Some("{}"), &[]);
            match path.as_str() {
                "/api/health" => assert_eq!(code, 200, "{path}"),
                // Agents' status events carry their session's own key instead.
                "/api/sessions/{id}/status-event" => assert_eq!(code, 403, "{path}: {body}"),
                _ => assert_eq!(code, 401, "{} {path} without the token: {body}", method.to_uppercase()),
            }
            let (code, _) = daemon.curl(
                &method.to_uppercase(),
                &concrete,
                Some("{}"),
                &["-H", "authorization: Bearer 0000000000000000000000000000000000000000000000000000000000000000"],
            );
            if !path.ends_with("/health") && !path.ends_with("/status-event") {
                assert_eq!(code, 401, "{path} with a wrong token");
            }
            checked += 1;
        }
    }
    assert!(checked >= 18, "the document lists every endpoint ({checked})");
}
