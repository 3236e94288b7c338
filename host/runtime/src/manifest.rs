//! Component manifests: who a component is and which capabilities it asks for.
//!
//! Every component carries its manifest (the `component.toml` of its crate)
//! inside the `.wasm` file, in a top-level custom section named
//! [`SECTION`], so one file is the whole plugin. The host links only the
//! capabilities granted; bundled components are granted what they ask for,
//! user components what the user approved at install time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Name of the custom section that holds the manifest (TOML text).
pub const SECTION: &str = "clauderon-manifest";

/// The four kinds of plugin; one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Backend,
    Agent,
    CredentialSource,
    Hook,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 4] = [Kind::Backend, Kind::Agent, Kind::CredentialSource, Kind::Hook];

    /// The WIT world name, e.g. `credential-source`.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Backend => "backend",
            Kind::Agent => "agent",
            Kind::CredentialSource => "credential-source",
            Kind::Hook => "hook",
        }
    }

    /// The interface this kind exports, e.g. `backend-api`.
    pub fn export_interface(self) -> String {
        format!("{}-api", self.world())
    }

    /// The capability interfaces this kind's world imports.
    pub fn importable(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            Kind::Backend => &[Log, Kv, Process, Http, Container, Kube],
            Kind::Agent => &[Log, Kv],
            Kind::CredentialSource => &[Log, Process, Environment, SecretFiles],
            Kind::Hook => &[Log, Kv, Http],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// A host capability interface of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    Log,
    Kv,
    Process,
    Http,
    Container,
    Kube,
    Environment,
    SecretFiles,
}

impl Capability {
    /// The WIT interface name, e.g. `secret-files`.
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Kv => "kv",
            Capability::Process => "process",
            Capability::Http => "http",
            Capability::Container => "container",
            Capability::Kube => "kube",
            Capability::Environment => "environment",
            Capability::SecretFiles => "secret-files",
        }
    }

    /// Every capability.
    pub const ALL: [Capability; 8] = [
        Capability::Log,
        Capability::Kv,
        Capability::Process,
        Capability::Http,
        Capability::Container,
        Capability::Kube,
        Capability::Environment,
        Capability::SecretFiles,
    ];

    /// The capability behind a WIT interface name, if it is one.
    pub fn from_interface(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.interface() == name)
    }

    /// The manifest key that grants it (`None` for those always granted).
    pub fn manifest_key(self) -> Option<&'static str> {
        match self {
            Capability::Log | Capability::Kv => None,
            Capability::Process => Some("process"),
            Capability::Http => Some("http"),
            Capability::Container => Some("container"),
            Capability::Kube => Some("kube"),
            Capability::Environment => Some("env"),
            Capability::SecretFiles => Some("secret-files"),
        }
    }
}

/// The capabilities a component asks for (in its manifest) or was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    /// Executables the `process` capability may run (bare names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process: Vec<String>,
    /// Hosts the `http` capability may reach (`api.example.com`, `*.example.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// Credential services (`github`, `sprites`) whose credential clauderon's
    /// proxy may add to this component's `http` requests, by the proxy's
    /// rule for the request's host; no other credential is ever added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    /// The Docker engine.
    #[serde(default, skip_serializing_if = "is_false")]
    pub container: bool,
    /// The configured Kubernetes namespace.
    #[serde(default, skip_serializing_if = "is_false")]
    pub kube: bool,
    /// Environment variables of the daemon a credential source may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Files in the secrets directory.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret_files: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Capabilities {
    /// The `[capabilities]` line of a component.toml that grants what `self`
    /// grants of `cap` plus `item` (a program, host or variable name), e.g.
    /// `process = ["tmux", "touch"]`: one line the author can put in place of
    /// theirs, never a second key. With no `item`, a list capability gets a
    /// placeholder saying what to list.
    pub fn line_granting(&self, cap: Capability, item: Option<&str>) -> String {
        let (have, placeholder) = match cap {
            Capability::Process => (&self.process, "PROGRAM"),
            Capability::Http => (&self.http, "HOST"),
            Capability::Environment => (&self.env, "VARIABLE"),
            Capability::Container | Capability::Kube | Capability::SecretFiles => {
                return format!("{} = true", cap.manifest_key().unwrap_or(cap.interface()));
            }
            Capability::Log | Capability::Kv => return format!("nothing (`{}` is always granted)", cap.interface()),
        };
        let mut items: Vec<&str> = have.iter().map(String::as_str).collect();
        let item = item.unwrap_or(placeholder);
        if !items.contains(&item) {
            items.push(item);
        }
        let quoted: Vec<String> = items.iter().map(|i| toml::Value::String((*i).to_string()).to_string()).collect();
        format!("{} = [{}]", cap.manifest_key().unwrap_or(cap.interface()), quoted.join(", "))
    }

    /// Whether this grant set lets a component import `cap` at all.
    pub fn allows(&self, cap: Capability) -> bool {
        match cap {
            Capability::Log | Capability::Kv => true,
            Capability::Process => !self.process.is_empty(),
            Capability::Http => !self.http.is_empty(),
            Capability::Container => self.container,
            Capability::Kube => self.kube,
            Capability::Environment => !self.env.is_empty(),
            Capability::SecretFiles => self.secret_files,
        }
    }

    /// What `asked` wants beyond `self`, one sentence per item (empty if covered).
    pub fn missing(&self, asked: &Capabilities) -> Vec<String> {
        let mut out = Vec::new();
        let extra = |have: &[String], want: &[String]| -> Vec<String> {
            let have: BTreeSet<&String> = have.iter().collect();
            want.iter().filter(|w| !have.contains(w)).cloned().collect()
        };
        for p in extra(&self.process, &asked.process) {
            out.push(format!("process: executable `{p}`"));
        }
        for h in extra(&self.http, &asked.http) {
            out.push(format!("http: host `{h}`"));
        }
        for c in extra(&self.credentials, &asked.credentials) {
            out.push(format!("credentials: the `{c}` credential on its HTTP requests"));
        }
        if asked.container && !self.container {
            out.push("container: the Docker engine".into());
        }
        if asked.kube && !self.kube {
            out.push("kube: the Kubernetes namespace".into());
        }
        for e in extra(&self.env, &asked.env) {
            out.push(format!("env: variable `{e}`"));
        }
        if asked.secret_files && !self.secret_files {
            out.push("secret-files: the secrets directory".into());
        }
        out
    }

    /// One line per grant, for people (`plugins list`, `plugins install`).
    pub fn describe(&self) -> Vec<String> {
        self.explain().into_iter().map(|g| g.can).collect()
    }

    /// Each grant as people read it: what it lets the component do, and
    /// what it never can (the words `plugins inspect` and `plugins install`
    /// show, and the table in `docs/plugins-security.md`).
    pub fn explain(&self) -> Vec<GrantText> {
        let mut out = Vec::new();
        let mut add = |granted: bool, can: String, never: &str| {
            if granted {
                out.push(GrantText { can, never: never.to_string() });
            }
        };
        add(!self.process.is_empty(), format!("run executables: {}", self.process.join(", ")), never::PROCESS);
        add(!self.http.is_empty(), format!("HTTPS to hosts: {}", self.http.join(", ")), never::HTTP);
        add(
            !self.credentials.is_empty(),
            format!("its HTTP requests carry these credentials (added by the proxy): {}", self.credentials.join(", ")),
            never::CREDENTIALS,
        );
        add(self.container, "use the Docker engine".into(), never::CONTAINER);
        add(self.kube, "use the Kubernetes namespace".into(), never::KUBE);
        add(!self.env.is_empty(), format!("read environment variables: {}", self.env.join(", ")), never::ENV);
        add(self.secret_files, "read files in the secrets directory".into(), never::SECRET_FILES);
        out
    }
}

/// One grant in words: what it lets a component do, what it never can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantText {
    /// What the grant lets the component do.
    pub can: String,
    /// What the component can never do, even with it.
    pub never: String,
}

/// What each grant never allows, whatever the component does; the host
/// enforces each clause (see `docs/plugins-security.md`).
pub mod never {
    /// `process`.
    pub const PROCESS: &str = "run a program not named here or by path, see the daemon's environment, run in a \
        directory outside its session's own, or keep more than 16 detached processes alive";
    /// `http`.
    pub const HTTP: &str = "reach a host not named here, this machine or a private network, use plain http:// or \
        follow a redirect";
    /// `credentials`.
    pub const CREDENTIALS: &str = "read a credential, or have one added for a service not named here";
    /// `container`.
    pub const CONTAINER: &str = "see or touch a container it did not create, mount anything but its session's own \
        paths and the mounts you declared, or run a container as root, privileged, with added capabilities or with \
        a network";
    /// `kube`.
    pub const KUBE: &str = "touch another namespace or an object not labelled as its own, mount a host path, another's claim or a secret, share the node's network, PID or IPC, run privileged, as root or with added capabilities, read a service-account token you did not allow, copy into a pod a file that is not the session's own, move any branch but the session's in the user's repository or rewrite its history, tunnel a pod to anything but its session's proxy, plant a pod or claim for another's Sandbox to adopt, take a Sandbox from another's warm pool or build a pool on another's template, let agent-sandbox open its pods to the internet, or see the cluster's credentials";
    /// `env`.
    pub const ENV: &str = "read a variable not named here";
    /// `secret-files`.
    pub const SECRET_FILES: &str = "read a file outside the secrets directory or by a path";
}

/// A component's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique id, lowercase letters, digits and dashes (e.g. `zellij`).
    pub id: String,
    /// Which plugin kind (and so which WIT world) it is.
    pub kind: Kind,
    /// The component's own version.
    pub version: String,
    /// One sentence for people.
    #[serde(default)]
    pub description: String,
    /// What it asks for.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Programs it needs on the daemon's PATH (a backend's `process` grants,
    /// an agent's CLI), each with the command that installs it: shown by
    /// `clauderon doctor` and in the error when one is missing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requires: BTreeMap<String, Requirement>,
}

/// A program a component needs, and how to get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The command that installs it, one line (e.g. `cargo install --locked zellij`).
    pub install: String,
}

/// A manifest that cannot be used; the message says what to change.
#[derive(Debug, thiserror::Error)]
#[error("invalid component manifest: {0}")]
pub struct ManifestError(pub String);

impl Manifest {
    /// Parse and check a manifest's TOML text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ManifestError(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// The manifest as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The error for a program it needs that is not on the daemon's PATH,
    /// naming the command that installs it when the manifest says.
    pub fn not_installed(&self, program: &str) -> String {
        not_installed(program, &self.requires)
    }

    /// Check every field, and that the capabilities fit the kind.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |msg: String| Err(ManifestError(msg));
        if !is_id(&self.id) {
            return bad(format!(
                "id `{}` must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit",
                self.id
            ));
        }
        if self.version.trim().is_empty() {
            return bad("version must not be empty (e.g. \"0.1.0\")".into());
        }
        let caps = &self.capabilities;
        for p in &caps.process {
            if p.is_empty() || p.contains('/') || p.contains(char::is_whitespace) {
                return bad(format!("process: `{p}` must be a bare executable name, not a path"));
            }
        }
        for h in &caps.http {
            if !is_host_pattern(h) {
                return bad(format!("http: `{h}` must be a host name like `api.example.com` or `*.example.com`"));
            }
            if let Some(why) = local_host(h) {
                return bad(format!("http: `{h}` {why}; a component's HTTP may reach public hosts only"));
            }
        }
        for c in &caps.credentials {
            if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
                return bad(format!("credentials: `{c}` is not a credential service name like `github`"));
            }
        }
        if !caps.credentials.is_empty() && caps.http.is_empty() {
            return bad("credentials: only HTTP requests carry credentials, and it asks for no `http` hosts".into());
        }
        for e in &caps.env {
            if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return bad(format!("env: `{e}` is not an environment variable name"));
            }
        }
        for (program, req) in &self.requires {
            if program.is_empty() || program.contains('/') || program.contains(char::is_whitespace) {
                return bad(format!("requires: `{program}` must be a bare executable name, not a path"));
            }
            let install = req.install.trim();
            if install.is_empty() || install.len() > 300 || install.chars().any(char::is_control) {
                return bad(format!("requires.{program}.install must be one line of at most 300 characters"));
            }
        }
        let allowed = self.kind.importable();
        // Log and kv need no grant (no manifest key): only the granted ones count.
        for cap in Capability::ALL.into_iter().filter(|c| c.manifest_key().is_some()) {
            if caps.allows(cap) && !allowed.contains(&cap) {
                return bad(format!(
                    "a {} component cannot ask for `{}`: its world does not import it",
                    self.kind,
                    cap.manifest_key().unwrap_or(cap.interface())
                ));
            }
        }
        Ok(())
    }
}

/// "`program` is not installed …", with the install command from `requires`.
pub fn not_installed(program: &str, requires: &BTreeMap<String, Requirement>) -> String {
    match requires.get(program) {
        Some(req) => {
            format!("`{program}` is not installed (not on the daemon's PATH); install it with: {}", req.install)
        }
        None => format!("`{program}` is not installed (not on the daemon's PATH)"),
    }
}

/// Whether `id` is a valid component id: 1–63 lowercase letters, digits or
/// dashes, starting with a letter or digit.
pub fn is_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_host_pattern(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.split('.').all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// Why a host grant names this machine or a private network, if it does: an
/// IP address (or a pattern over numeric labels, `*.0.0.1`), a single-label
/// name (resolved by the local search domain), `localhost` and `*.localhost`,
/// and the link-local and private-use suffixes.
pub(crate) fn local_host(pattern: &str) -> Option<&'static str> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern).to_ascii_lowercase();
    let last = name.rsplit('.').next().unwrap_or_default();
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Some("is an IP address (or a pattern over one)");
    }
    if !name.contains('.') && name != "localhost" {
        return Some("is a single-label name, which resolves inside your network");
    }
    let local = ["localhost", "local", "internal", "lan", "home.arpa", "localdomain"];
    if local.iter().any(|l| name == *l || name.ends_with(&format!(".{l}"))) {
        return Some("is this machine or a private network");
    }
    None
}

/// Whether `host` matches a grant pattern (`exact.host` or `*.suffix`).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{}", suffix.to_ascii_lowercase())),
        None => host == pattern.to_ascii_lowercase(),
    }
}

/// The manifest text embedded in a component, if it has one.
pub fn extract(component: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.ok()? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::CustomSection(c) if depth == 1 && c.name() == SECTION => {
                return String::from_utf8(c.data().to_vec()).ok();
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_granting_more_keeps_what_is_there_and_parses() {
        let caps = Capabilities { process: vec!["tmux".into()], ..Capabilities::default() };
        assert_eq!(caps.line_granting(Capability::Process, Some("touch")), r#"process = ["tmux", "touch"]"#);
        assert_eq!(caps.line_granting(Capability::Process, Some("tmux")), r#"process = ["tmux"]"#);
        assert_eq!(caps.line_granting(Capability::Http, None), r#"http = ["HOST"]"#);
        assert_eq!(caps.line_granting(Capability::Environment, Some("A\"B")), r#"env = ['A"B']"#);
        assert_eq!(caps.line_granting(Capability::SecretFiles, None), "secret-files = true");
        let parsed: toml::Table =
            toml::from_str(&caps.line_granting(Capability::Environment, Some("A\"B"))).expect("toml");
        assert_eq!(parsed["env"][0].as_str(), Some("A\"B"));
    }

    #[test]
    fn parses_a_backend_manifest() {
        let m = Manifest::parse(
            "id = \"zellij\"\nkind = \"backend\"\nversion = \"0.1.0\"\n[capabilities]\nprocess = [\"zellij\"]\n",
        )
        .expect("valid");
        assert_eq!(m.kind, Kind::Backend);
        assert_eq!(m.capabilities.process, vec!["zellij".to_string()]);
        assert!(m.capabilities.allows(Capability::Process));
        assert!(!m.capabilities.allows(Capability::Http));
    }

    #[test]
    fn the_security_doc_says_what_each_grant_never_allows_in_the_words_the_cli_shows() {
        let doc = include_str!("../../../docs/plugins-security.md");
        let every = [
            never::PROCESS,
            never::HTTP,
            never::CREDENTIALS,
            never::CONTAINER,
            never::KUBE,
            never::ENV,
            never::SECRET_FILES,
        ];
        for sentence in every {
            assert!(doc.contains(sentence), "docs/plugins-security.md lacks: {sentence}");
        }
        let all = Capabilities {
            process: vec!["tmux".into()],
            http: vec!["api.example.com".into()],
            credentials: vec!["github".into()],
            container: true,
            kube: true,
            env: vec!["X".into()],
            secret_files: true,
        };
        let shown: Vec<String> = all.explain().into_iter().map(|g| g.never).collect();
        assert_eq!(shown, every.map(String::from), "each grant shows its own never-sentence");
    }

    #[test]
    fn a_required_program_names_its_install_command_and_a_bad_one_is_refused() {
        let m = Manifest::parse(
            "id = \"zellij\"\nkind = \"backend\"\nversion = \"1\"\n[capabilities]\nprocess = [\"zellij\"]\n\
             [requires.zellij]\ninstall = \"cargo install --locked zellij\"\n",
        )
        .expect("valid");
        assert_eq!(
            m.not_installed("zellij"),
            "`zellij` is not installed (not on the daemon's PATH); install it with: cargo install --locked zellij"
        );
        assert_eq!(m.not_installed("tmux"), "`tmux` is not installed (not on the daemon's PATH)");
        for bad in [
            "[requires.\"/bin/x\"]\ninstall = \"a\"\n",
            "[requires.x]\ninstall = \"\"\n",
            "[requires.x]\ninstall = \"a\\u001b[2J\"\n",
        ] {
            let text = format!("id = \"x\"\nkind = \"agent\"\nversion = \"1\"\n{bad}");
            let err = Manifest::parse(&text).expect_err("refused");
            assert!(err.to_string().contains("requires"), "{err}");
        }
    }

    #[test]
    fn refuses_capabilities_outside_the_kind() {
        let err =
            Manifest::parse("id = \"a\"\nkind = \"agent\"\nversion = \"1\"\n[capabilities]\nprocess = [\"sh\"]\n")
                .expect_err("agents cannot run processes");
        assert!(err.to_string().contains("cannot ask for `process`"), "{err}");
    }

    #[test]
    fn refuses_paths_bad_ids_and_unknown_keys() {
        for text in [
            "id = \"x\"\nkind = \"backend\"\nversion = \"1\"\n[capabilities]\nprocess = [\"/bin/sh\"]\n",
            "id = \"Bad_Id\"\nkind = \"hook\"\nversion = \"1\"\n",
            "id = \"x\"\nkind = \"hook\"\nversion = \"1\"\nsurprise = 1\n",
            "id = \"x\"\nkind = \"robot\"\nversion = \"1\"\n",
        ] {
            assert!(Manifest::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn missing_lists_every_extra_grant() {
        let granted = Capabilities { process: vec!["zellij".into()], ..Default::default() };
        let asked = Capabilities { process: vec!["zellij".into(), "sh".into()], container: true, ..Default::default() };
        assert_eq!(granted.missing(&asked), vec!["process: executable `sh`", "container: the Docker engine"]);
        assert!(asked.missing(&granted).is_empty());
    }

    #[test]
    fn a_credentials_grant_needs_http_and_service_names_and_is_approved_like_the_rest() {
        let hook = |caps: &str| {
            Manifest::parse(&format!("id = \"h\"\nkind = \"hook\"\nversion = \"1\"\n[capabilities]\n{caps}"))
        };
        for local in [
            "localhost",
            "127.0.0.1",
            "*.0.0.1",
            "api.localhost",
            "printer.local",
            "db.internal",
            "intranet",
            "10.1.2.3",
            "*.localhost",
        ] {
            let err = hook(&format!("http = [\"{local}\"]\n")).expect_err(local).to_string();
            assert!(err.contains("public hosts only"), "{local}: {err}");
        }
        let ok = hook("http = [\"api.example.com\"]\ncredentials = [\"github\"]\n").expect("a valid grant");
        assert_eq!(ok.capabilities.credentials, ["github"]);
        let err = hook("credentials = [\"github\"]\n").expect_err("no http").to_string();
        assert!(err.contains("no `http` hosts"), "{err}");
        let err = hook("http = [\"api.example.com\"]\ncredentials = [\"GITHUB_TOKEN\"]\n")
            .expect_err("a variable name")
            .to_string();
        assert!(err.contains("not a credential service name"), "{err}");
        let approved = Capabilities { http: vec!["api.example.com".into()], ..Default::default() };
        assert_eq!(approved.missing(&ok.capabilities), ["credentials: the `github` credential on its HTTP requests"]);
        assert!(ok.capabilities.describe().iter().any(|d| d.contains("github")));
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("api.example.com", "API.example.com"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("example.com", "evil-example.com"));
    }
}
