//! Attacks on the daemon process itself from the same machine: its
//! environment (where `env`-sourced credentials arrive) and its memory.
//! The daemon wipes every variable a credential source may read from its own
//! environment once it has a snapshot, and is non-dumpable, so even another
//! process of the same user cannot read `/proc/<daemon>/environ` or `mem`.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use clauderon_tests::{CANARIES, Home, clauderon_bin, eventually};

fn daemon_pid(home: &Home) -> String {
    eventually(20, "daemon.pid", || std::fs::read_to_string(home.path("daemon.pid")).ok()).trim().to_string()
}

#[test]
fn env_credentials_leave_the_daemons_environment_but_stay_usable() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon_with_env(port, CANARIES);
    let environ = std::fs::read(format!("/proc/{}/environ", daemon_pid(&home))).expect("environ (as root)");
    let environ = String::from_utf8_lossy(&environ);
    for (var, canary) in CANARIES {
        assert!(!environ.contains(canary), "{var}'s value is still in the daemon's environment");
    }
    assert!(environ.contains("GITHUB_TOKEN="), "the names stay, their values are gone");
    // The env source still has them (from the daemon's snapshot).
    let (code, creds) = daemon.http("GET", "/api/credentials", None);
    assert_eq!(code, 200, "{creds}");
    let github = creds["services"].as_array().into_iter().flatten().find(|s| s["service"] == "github").cloned();
    let github = github.unwrap_or_else(|| panic!("github in {creds}"));
    assert_eq!(github["available"], true, "{github}");
    assert_eq!(github["source"], "env", "{github}");
}

#[test]
fn another_process_of_the_same_user_cannot_read_the_daemons_memory_or_environment() {
    // The daemon runs as an ordinary user (65534) from its own copy of the binary.
    let home = Home::new();
    let bin_dir = tempfile::tempdir().expect("tempdir");
    let bin = bin_dir.path().join("clauderon");
    std::fs::copy(clauderon_bin(), &bin).expect("copy the binary");
    for dir in [home.dir.path(), bin_dir.path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let port = clauderon_tests::free_port();
    std::fs::write(home.path("config.toml"), format!("[daemon]\nhttp_port = {port}\n")).expect("config");
    let chown = Command::new("chown").args(["-R", "65534:65534"]).arg(home.dir.path()).status().expect("chown");
    assert!(chown.success());
    let mut daemon = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .arg("daemon")
        .env("CLAUDERON_HOME", home.dir.path())
        .env("HOME", home.dir.path())
        .env("GITHUB_TOKEN", "ghp_canarySAMEUSER0123456789")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon as 65534");
    let pid = daemon_pid(&home);

    for what in ["environ", "mem", "maps", "cmdline"] {
        let path = format!("/proc/{pid}/{what}");
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "head", "-c", "64", &path])
            .output()
            .expect("setpriv");
        let readable = out.status.success() && !out.stdout.is_empty();
        if what == "cmdline" {
            assert!(readable, "cmdline stays readable (ps works): {}", String::from_utf8_lossy(&out.stderr));
        } else {
            assert!(!readable, "a process of the same user read the daemon's {what}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
}
