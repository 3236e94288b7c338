//! The bundled credential sources (`env`, `file`, 1Password) in a real
//! runtime: what each provides, what it skips, the errors it gives, and that
//! no value ever reaches a log line or an error message.
//!
//! The `environment` capability reads this process's own environment, so each
//! test first calls [`setup`]: it sets the whole environment below (and puts a
//! fake `op` first on PATH) once per process, before any runtime or thread
//! exists. nextest runs each test in its own process; under `cargo test` the
//! same environment serves every test.

mod common;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use clauderon_runtime::bindings::PluginError;
use clauderon_runtime::error::CallErrorKind;
use clauderon_runtime::{CallError, Runtime, RuntimeConfig};
use common::*;

/// The 1Password source's manifest id.
const OP_SOURCE: &str = "1password";

// Canary values: each must come back from the right call and nowhere else.
const GITHUB_ENV: &str = "ghp_canary_env_github_1f3a";
const GH_ENV: &str = "gho_canary_env_gh_token_2b4c";
const CODEX_ENV: &str = "sk-canary-env-codex-3c5d";
const GOOGLE_ENV: &str = "AIza_canary_env_google_4d6e";
const DOCKER_ENV: &str = "someone:dckr_pat_canary_env_5e7f";
const GITHUB_FILE: &str = "ghp_canary_file_github_6f80";
const NPM_FILE: &str = "npm_canary_file_7a91";
const DOCKER_FILE: &str = "someone:dckr_pat_canary_file_8ba2";
const HIDDEN_FILE: &str = "canary_hidden_file_9cb3";
const BAD_NAME_FILE: &str = "canary_bad_name_file_adc4";
const GITHUB_OP: &str = "ghp_canary_op_github_bed5";
const CLAUDE_OP: &str = "sk-ant-oat01-canary_op_claude_cfe6";
const OPENAI_OP: &str = "sk-canary_op_openai_d0f7";
const SENTRY_OP: &str = "sntrys_canary_op_sentry_e108";
const SENTRY_ENV_OP: &str = "sntrys_canary_op_sentry_from_env_f219";
const PASTED_BY_MISTAKE: &str = "glsa_canary_pasted_by_mistake_032a";
const SERVICE_ACCOUNT: &str = "ops_canary_service_account_143b";

const CANARIES: [&str; 17] = [
    GITHUB_ENV,
    GH_ENV,
    CODEX_ENV,
    GOOGLE_ENV,
    DOCKER_ENV,
    GITHUB_FILE,
    NPM_FILE,
    DOCKER_FILE,
    HIDDEN_FILE,
    BAD_NAME_FILE,
    GITHUB_OP,
    CLAUDE_OP,
    OPENAI_OP,
    SENTRY_OP,
    SENTRY_ENV_OP,
    PASTED_BY_MISTAKE,
    SERVICE_ACCOUNT,
];

/// The daemon's environment for every test (`None`: unset).
const ENV: &[(&str, Option<&str>)] = &[
    // Both set: the first wins.
    ("GITHUB_TOKEN", Some(GITHUB_ENV)),
    ("GH_TOKEN", Some(GH_ENV)),
    // Blank: absent.
    ("ANTHROPIC_API_KEY", Some("   ")),
    ("CLAUDE_CODE_OAUTH_TOKEN", None),
    // A reference is no credential for `env` (CODEX_API_KEY wins); the 1Password source resolves it.
    ("OPENAI_API_KEY", Some("op://Private/OpenAI/key")),
    ("CODEX_API_KEY", Some(CODEX_ENV)),
    ("GEMINI_API_KEY", Some("")),
    ("GOOGLE_API_KEY", Some(GOOGLE_ENV)),
    // Starts with op:// but is no reference: ignored; the next variable's reference counts.
    ("PAGERDUTY_TOKEN", Some("op://not-a-reference")),
    ("PAGERDUTY_API_KEY", Some("op://Private/Empty/field")),
    // 1password.toml also has `sentry`, and the file wins.
    ("SENTRY_AUTH_TOKEN", Some(" op://Work Vault/Sentry/credential ")),
    ("NPM_TOKEN", None),
    ("DOCKER_HUB_TOKEN", Some(DOCKER_ENV)),
    ("GRAFANA_API_KEY", None),
    ("GRAFANA_TOKEN", None),
    ("OP_SERVICE_ACCOUNT_TOKEN", Some(SERVICE_ACCOUNT)),
    ("OP_CONNECT_HOST", None),
    ("OP_CONNECT_TOKEN", None),
];

/// A stand-in for the 1Password CLI, behaving as `op read` is documented:
/// `op read --no-newline <reference>` prints the field without a newline, or
/// exits 1 with `[ERROR] …` on stderr. Every run appends its arguments and
/// what it saw of the environment to `@RECORD@`.
const FAKE_OP: &str = r#"#!/bin/sh
{
  printf 'args='
  sep=''
  for a in "$@"; do printf '%s%s' "$sep" "$a"; sep='|'; done
  printf ' sa=%s connect=%s github=%s\n' "${OP_SERVICE_ACCOUNT_TOKEN-unset}" "${OP_CONNECT_HOST-unset}" "${GITHUB_TOKEN-unset}"
} >> '@RECORD@'
if [ "$#" -eq 1 ] && [ "$1" = --version ]; then
  echo 2.30.3
  exit 0
fi
if [ "$#" -ne 3 ] || [ "$1" != read ] || [ "$2" != --no-newline ]; then
  echo "[ERROR] 2024/05/01 10:00:00 unexpected arguments" >&2
  exit 2
fi
case "$3" in
  'op://Private/GitHub/token') printf '%s' '@GITHUB_OP@' ;;
  'op://Work Vault/Claude Code/credential') printf '%s' '@CLAUDE_OP@' ;;
  'op://Private/OpenAI/key') printf '%s' '@OPENAI_OP@' ;;
  'op://Private/Sentry/token') printf '%s' '@SENTRY_OP@' ;;
  'op://Work Vault/Sentry/credential') printf '%s' '@SENTRY_ENV_OP@' ;;
  'op://Private/Empty/field') ;;
  *)
    vault=$(echo "$3" | cut -d/ -f3)
    item=$(echo "$3" | cut -d/ -f4)
    echo "[ERROR] 2024/05/01 10:00:00 \"$item\" isn't an item in the \"$vault\" vault. Specify the item with its UUID, name, or domain." >&2
    exit 1
    ;;
esac
"#;

/// The fake `op`'s directory (first on PATH) and its record of runs.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn op(&self) -> PathBuf {
        self.dir.path().join("op")
    }

    fn record(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("record"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Set the environment of [`ENV`], with the fake `op` first on PATH (once per process).
fn setup() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("fake-op-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir for the fake op");
        let record = dir.path().join("record");
        let script = FAKE_OP
            .replace("@RECORD@", record.to_str().expect("utf-8 path"))
            .replace("@GITHUB_OP@", GITHUB_OP)
            .replace("@CLAUDE_OP@", CLAUDE_OP)
            .replace("@OPENAI_OP@", OPENAI_OP)
            .replace("@SENTRY_OP@", SENTRY_OP)
            .replace("@SENTRY_ENV_OP@", SENTRY_ENV_OP);
        let op = dir.path().join("op");
        std::fs::write(&op, script).expect("write the fake op");
        std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o755)).expect("chmod the fake op");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(std::iter::once(dir.path().to_path_buf()).chain(std::env::split_paths(&path)))
            .expect("PATH");
        // SAFETY: runs once, at the start of a test, before this process has a
        // runtime or any thread of its own that could read the environment.
        unsafe {
            std::env::set_var("PATH", path);
            for (name, value) in ENV {
                match value {
                    Some(v) => std::env::set_var(name, v),
                    None => std::env::remove_var(name),
                }
            }
        }
        Fixture { dir }
    })
}

/// Run `f` on a fresh current-thread runtime (so [`capture`] sees every host log line).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

/// Capture every tracing event on this thread, all levels.
fn capture() -> (LogCapture, tracing::subscriber::DefaultGuard) {
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

/// A runtime (no compile cache) whose secrets directory holds `files`
/// (a name ending in `/` is a directory), with the bundled component `id` loaded.
async fn runtime_with(id: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Runtime) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut config = RuntimeConfig::under(home.path());
    config.cache_dir = None;
    std::fs::create_dir(&config.secrets_dir).expect("secrets dir");
    std::fs::set_permissions(&config.secrets_dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    for (name, contents) in files {
        let path = config.secrets_dir.join(name);
        if name.ends_with('/') {
            std::fs::create_dir(path).expect("secret dir");
        } else {
            std::fs::write(path, contents).expect("secret file");
        }
    }
    let rt = Runtime::new(config).expect("runtime");
    rt.load(bundled(id)).await.unwrap_or_else(|e| panic!("loading {id}: {e}"));
    (home, rt)
}

/// The message of a `failed` plugin error.
fn failed_message(err: CallError) -> String {
    match err.kind {
        CallErrorKind::Plugin(PluginError::Failed(m)) => m,
        other => panic!("expected a `failed` error from the component, got: {other}"),
    }
}

/// No canary value anywhere in `text`.
fn assert_no_canary(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} contains the value `{canary}`:\n{text}");
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_env_source_reads_the_first_set_variable_and_skips_references_and_blanks() {
    setup();
    let (logs, _guard) = capture();
    block_on(async {
        let (_home, rt) = runtime_with("env", &[]).await;
        let mut source = rt.credential_source("env").await.expect("instance");
        let info = source.info().await.expect("info");
        assert_eq!(info.id, "env");
        assert!(!info.display_name.is_empty());

        assert_eq!(source.get("github").await.expect("github").as_deref(), Some(GITHUB_ENV), "GITHUB_TOKEN first");
        // OPENAI_API_KEY holds a reference and GEMINI_API_KEY is empty: the next variable counts.
        assert_eq!(source.get("openai").await.expect("openai").as_deref(), Some(CODEX_ENV));
        assert_eq!(source.get("gemini").await.expect("gemini").as_deref(), Some(GOOGLE_ENV));
        assert_eq!(source.get("docker-hub").await.expect("docker-hub").as_deref(), Some(DOCKER_ENV));
        for absent in ["anthropic", "sentry", "pagerduty", "claude-oauth", "npm", "grafana", "unknown", "GITHUB_TOKEN"]
        {
            assert_eq!(source.get(absent).await.expect(absent), None, "{absent}");
        }
        assert_eq!(
            source.available().await.expect("available"),
            strings(&["docker-hub", "gemini", "github", "openai"])
        );
    });
    assert_no_canary("the log", &logs.text());
}

#[test]
fn the_file_source_reads_service_files_only() {
    setup();
    let (logs, _guard) = capture();
    block_on(async {
        let files = [
            ("github", &*format!("  {GITHUB_FILE}\n")),
            ("npm", NPM_FILE),
            ("docker-hub", DOCKER_FILE),
            ("empty", "  \n"),
            ("1password.toml", "github = \"op://Private/GitHub/token\"\n"),
            (".hidden", HIDDEN_FILE),
            ("Upper", BAD_NAME_FILE),
            ("my_token", BAD_NAME_FILE),
            ("github.bak", BAD_NAME_FILE),
            // Unreadable as a file: skipped by `available`, an error for `get`.
            ("sentry/", ""),
        ];
        let (_home, rt) = runtime_with("file", &files).await;
        let mut source = rt.credential_source("file").await.expect("instance");
        assert_eq!(source.info().await.expect("info").id, "file");

        assert_eq!(source.get("github").await.expect("github").as_deref(), Some(GITHUB_FILE), "trimmed");
        assert_eq!(source.get("docker-hub").await.expect("docker-hub").as_deref(), Some(DOCKER_FILE));
        for absent in
            ["empty", "missing", "1password.toml", ".hidden", "Upper", "my_token", "github.bak", "../secrets/npm"]
        {
            assert_eq!(source.get(absent).await.expect(absent), None, "{absent}");
        }
        assert_eq!(source.available().await.expect("available"), strings(&["docker-hub", "github", "npm"]));
        let err = source.get("sentry").await.expect_err("a directory is no secret file");
        assert!(err.is_plugin_error(), "{err}");
        assert_no_canary("an error", &err.to_string());
    });
    let logs = logs.text();
    assert!(logs.contains("skipping secret file `sentry`"), "{logs}");
    assert_no_canary("the log", &logs);
}

#[test]
fn the_1password_source_resolves_references_from_its_file_and_the_environment_with_op_read() {
    let fixture = setup();
    let (logs, _guard) = capture();
    let references = "# clauderon's 1Password references\n\
                      github = \"op://Private/GitHub/token\"\n\
                      claude-oauth = \"op://Work Vault/Claude Code/credential\"   # spaces are fine\n\
                      \n\
                      npm = \"op://Private/Missing/password\"\n\
                      sentry = 'op://Private/Sentry/token'\n"
        .to_string()
        + &format!("grafana = \"{PASTED_BY_MISTAKE}\"\n");
    block_on(async {
        let files = [("1password.toml", references.as_str())];
        let (_home, rt) = runtime_with(OP_SOURCE, &files).await;
        let mut source = rt.credential_source(OP_SOURCE).await.expect("instance");
        assert_eq!(source.info().await.expect("info").id, OP_SOURCE);

        // Every service with a valid reference, from the file and from op:// variables; one `op --version`.
        assert_eq!(
            source.available().await.expect("available"),
            strings(&["claude-oauth", "github", "npm", "openai", "pagerduty", "sentry"])
        );
        assert_eq!(source.get("github").await.expect("github").as_deref(), Some(GITHUB_OP));
        assert_eq!(source.get("claude-oauth").await.expect("claude-oauth").as_deref(), Some(CLAUDE_OP));
        assert_eq!(source.get("openai").await.expect("openai").as_deref(), Some(OPENAI_OP), "from OPENAI_API_KEY");
        assert_eq!(source.get("sentry").await.expect("sentry").as_deref(), Some(SENTRY_OP), "the file wins");

        // `op` fails: the error carries op's stderr and the reference, never a value.
        let err = source.get("npm").await.expect_err("no such item");
        let msg = failed_message(err.clone());
        assert!(msg.contains("\"Missing\" isn't an item in the \"Private\" vault"), "{msg}");
        assert!(msg.contains("op://Private/Missing/password") && msg.contains("exit code 1"), "{msg}");
        assert_no_canary("an error", &err.to_string());
        let msg = failed_message(source.get("pagerduty").await.expect_err("op printed nothing"));
        assert!(msg.contains("printed nothing"), "{msg}");

        // No reference: no credential, and op is not run.
        for absent in ["grafana", "docker-hub", "anthropic", "unknown"] {
            assert_eq!(source.get(absent).await.expect(absent), None, "{absent}");
        }

        // op received exactly `read --no-newline <reference>` (after the one
        // `--version`), with the service account token and nothing else of the daemon's.
        let env = format!(" sa={SERVICE_ACCOUNT} connect=unset github=unset");
        let expected: Vec<String> = [
            "--version",
            "read|--no-newline|op://Private/GitHub/token",
            "read|--no-newline|op://Work Vault/Claude Code/credential",
            "read|--no-newline|op://Private/OpenAI/key",
            "read|--no-newline|op://Private/Sentry/token",
            "read|--no-newline|op://Private/Missing/password",
            "read|--no-newline|op://Private/Empty/field",
        ]
        .iter()
        .map(|args| format!("args={args}{env}"))
        .collect();
        assert_eq!(fixture.record(), expected);

        // Without op: nothing is available (with a warning) and get says why.
        std::fs::rename(fixture.op(), fixture.dir.path().join("op.disabled")).expect("hide op");
        assert_eq!(source.available().await.expect("available without op"), Vec::<String>::new());
        let msg = failed_message(source.get("github").await.expect_err("no op"));
        assert!(msg.contains("not installed"), "{msg}");
        assert_eq!(fixture.record().len(), expected.len(), "op did not run");
    });
    let logs = logs.text();
    assert!(logs.contains("1password.toml: line 7: the value for `grafana` is not a 1Password reference"), "{logs}");
    assert!(logs.contains("PAGERDUTY_TOKEN starts with op:// but is not a 1Password reference"), "{logs}");
    assert!(logs.contains("the 1Password CLI `op` is not installed"), "{logs}");
    assert!(!logs.contains("op://not-a-reference"), "{logs}");
    assert_no_canary("the log", &logs);
}
