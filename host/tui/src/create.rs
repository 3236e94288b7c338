//! The create dialog (`n`): every option of `clauderon create` a person
//! picks — the prompt (inline, or in `$VISUAL`/`$EDITOR` with Ctrl-E), the
//! repository (typed, or one of the earlier sessions' with ↑/↓), a name, the
//! backend and agent (the ones this machine can run now, from the doctor),
//! the model, access mode, plan mode and skip permissions — then progress
//! while the session starts, and the API's own words when it cannot.
//! The repository can also be picked in a directory browser (Ctrl-O), which
//! lists what the daemon's `GET /api/directories` answers: directories under
//! the user's home, git repositories marked.
//! This module is the form's state and keys; `view.rs` draws it.

use clauderon_api::directories::Listing;
use clauderon_api::doctor::Doctor;
use clauderon_sessions::{AccessMode, CreateRequest};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The dialog's fields, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Prompt,
    Repo,
    Name,
    Backend,
    Agent,
    Model,
    Access,
    Plan,
    SkipPermissions,
    Create,
}

impl Field {
    pub const ALL: [Field; 10] = [
        Field::Prompt,
        Field::Repo,
        Field::Name,
        Field::Backend,
        Field::Agent,
        Field::Model,
        Field::Access,
        Field::Plan,
        Field::SkipPermissions,
        Field::Create,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Prompt => "Prompt",
            Field::Repo => "Repository",
            Field::Name => "Name",
            Field::Backend => "Backend",
            Field::Agent => "Agent",
            Field::Model => "Model",
            Field::Access => "Access",
            Field::Plan => "Plan mode",
            Field::SkipPermissions => "Skip permissions",
            Field::Create => "Create",
        }
    }
}

/// A choice of backend or agent: its id, and why it cannot run here (if it cannot).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub id: String,
    pub problem: Option<String>,
}

/// What a key in the dialog asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum FormAction {
    /// Close the dialog.
    Cancel,
    /// Create the session.
    Submit(Box<CreateRequest>),
    /// Edit the prompt in the user's editor.
    EditPrompt(String),
    /// List the directories in `path` (`""`: the home), hidden ones with
    /// `hidden`; if `or_home`, the home instead when `path` cannot be listed.
    Browse { path: String, hidden: bool, or_home: bool },
}

/// Keys of the directory browser, as its bottom line and `docs/tui.md` show them.
pub const BROWSE_KEYS: &[(&str, &str)] = &[
    ("j / k, ↓ / ↑", "move"),
    ("Enter, l, →", "open the selected directory"),
    ("h, ←, Backspace", "up to the parent"),
    ("Space", "use the selected directory as the repository"),
    ("u", "use the directory shown"),
    (".", "show / hide hidden directories"),
    ("Esc", "back to the form, the repository as it was"),
];

/// The directory browser (Ctrl-O in Repository).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Picker {
    /// The directory asked for (what the answer must match; `""`: the home).
    pub asked: String,
    /// Hidden directories listed too.
    pub hidden: bool,
    /// The daemon's last answer.
    pub listing: Option<Listing>,
    /// The selected entry of the listing.
    pub selected: usize,
    /// Why the last directory could not be listed (the API's words).
    pub error: Option<String>,
    /// The directory left by going up: selected once its parent is listed.
    pub came_from: Option<String>,
}

/// The create dialog's state.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateForm {
    pub prompt: String,
    pub repo: String,
    pub name: String,
    pub model: String,
    pub backends: Vec<Choice>,
    pub backend: usize,
    pub agents: Vec<Choice>,
    pub agent: usize,
    pub access: AccessMode,
    pub plan: bool,
    pub skip_permissions: bool,
    pub focus: Field,
    /// Repositories of earlier sessions, most recent first (↑/↓ in Repository).
    pub recent: Vec<String>,
    /// Creating: the progress lines so far.
    pub busy: bool,
    pub progress: Vec<String>,
    /// Why the last try failed (the API's words), or what is missing.
    pub error: Option<String>,
    /// The directory browser, while it is open.
    pub picker: Option<Picker>,
}

impl CreateForm {
    /// A new form; `recent` repositories, most recent first (the first is filled in).
    pub fn new(recent: Vec<String>) -> Self {
        Self {
            prompt: String::new(),
            repo: recent.first().cloned().unwrap_or_default(),
            name: String::new(),
            model: String::new(),
            backends: Vec::new(),
            backend: 0,
            agents: Vec::new(),
            agent: 0,
            access: AccessMode::ReadWrite,
            plan: false,
            skip_permissions: false,
            focus: Field::Prompt,
            recent,
            busy: false,
            progress: Vec::new(),
            error: None,
            picker: None,
        }
    }

    /// The backends and agents this machine has (from the doctor), each
    /// marked when it cannot run yet; the defaults chosen.
    pub fn choices(&mut self, doctor: &Doctor) {
        let of = |area: &str| -> Vec<Choice> {
            doctor
                .checks
                .iter()
                .filter(|c| c.area == area)
                .map(|c| Choice { id: c.name.clone(), problem: (!c.ok).then(|| c.detail.clone()) })
                .collect()
        };
        self.backends = of("backend");
        self.agents = of("agent");
        self.backend = self.backends.iter().position(|c| c.id == doctor.default_backend).unwrap_or(0);
        self.agent = self.agents.iter().position(|c| c.id == doctor.default_agent).unwrap_or(0);
    }

    /// The request the form describes, or what is missing.
    pub fn request(&self) -> Result<CreateRequest, String> {
        if self.prompt.trim().is_empty() {
            return Err("Write a prompt: what the agent should do.".into());
        }
        if self.repo.trim().is_empty() {
            return Err("Name the repository: a directory inside a git repository.".into());
        }
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(CreateRequest {
            repo: expand_home(self.repo.trim()).into(),
            prompt: self.prompt.clone(),
            name: text(&self.name),
            backend: self.backends.get(self.backend).map(|c| c.id.clone()),
            agent: self.agents.get(self.agent).map(|c| c.id.clone()),
            model: text(&self.model),
            access_mode: Some(self.access),
            plan_mode: self.plan,
            skip_permissions: self.skip_permissions,
            ..CreateRequest::default()
        })
    }

    /// A key pressed in the dialog.
    pub fn key(&mut self, key: KeyEvent) -> Option<FormAction> {
        if self.busy {
            return None;
        }
        if self.picker.is_some() {
            return self.browse_key(key);
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return Some(FormAction::Cancel),
            KeyCode::Tab => self.step(1),
            KeyCode::BackTab => self.step(-1),
            KeyCode::Char('s') if ctrl => return self.submit(),
            KeyCode::Char('e') if ctrl && self.focus == Field::Prompt => {
                return Some(FormAction::EditPrompt(self.prompt.clone()));
            }
            KeyCode::Char('o') if ctrl && self.focus == Field::Repo => {
                let start = self.repo.trim().to_string();
                self.picker = Some(Picker { asked: start.clone(), ..Picker::default() });
                return Some(FormAction::Browse { or_home: !start.is_empty(), path: start, hidden: false });
            }
            KeyCode::Enter if self.focus == Field::Create => return self.submit(),
            KeyCode::Enter => self.step(1),
            _ => self.edit(key),
        }
        None
    }

    fn submit(&mut self) -> Option<FormAction> {
        match self.request() {
            Ok(request) => {
                self.error = None;
                self.progress.clear();
                self.busy = true;
                Some(FormAction::Submit(Box::new(request)))
            }
            Err(why) => {
                self.error = Some(why);
                None
            }
        }
    }

    /// Move the focus `by` fields, wrapping round.
    fn step(&mut self, by: isize) {
        let at = Field::ALL.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        self.focus = Field::ALL[(at + by).rem_euclid(Field::ALL.len() as isize) as usize];
    }

    fn edit(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let cycle = |at: &mut usize, len: usize, by: isize| {
            if len > 0 {
                *at = (*at as isize + by).rem_euclid(len as isize) as usize;
            }
        };
        let by = match key.code {
            KeyCode::Left => -1,
            _ => 1,
        };
        match self.focus {
            Field::Prompt | Field::Repo | Field::Name | Field::Model => {
                if self.focus == Field::Repo && matches!(key.code, KeyCode::Up | KeyCode::Down) {
                    self.pick_recent(if key.code == KeyCode::Down { 1 } else { -1 });
                    return;
                }
                let text = match self.focus {
                    Field::Prompt => &mut self.prompt,
                    Field::Repo => &mut self.repo,
                    Field::Name => &mut self.name,
                    _ => &mut self.model,
                };
                match key.code {
                    KeyCode::Backspace => {
                        text.pop();
                    }
                    KeyCode::Char('u') if ctrl => text.clear(),
                    KeyCode::Char(c) if !ctrl => text.push(c),
                    _ => {}
                }
            }
            Field::Backend if matches!(key.code, KeyCode::Left | KeyCode::Right | KeyCode::Char(' ')) => {
                cycle(&mut self.backend, self.backends.len(), by)
            }
            Field::Agent if matches!(key.code, KeyCode::Left | KeyCode::Right | KeyCode::Char(' ')) => {
                cycle(&mut self.agent, self.agents.len(), by)
            }
            Field::Access if matches!(key.code, KeyCode::Left | KeyCode::Right | KeyCode::Char(' ')) => {
                self.access = match self.access {
                    AccessMode::ReadWrite => AccessMode::ReadOnly,
                    AccessMode::ReadOnly => AccessMode::ReadWrite,
                }
            }
            Field::Plan if key.code == KeyCode::Char(' ') => self.plan = !self.plan,
            Field::SkipPermissions if key.code == KeyCode::Char(' ') => self.skip_permissions = !self.skip_permissions,
            _ => {}
        }
    }

    /// A key in the directory browser.
    fn browse_key(&mut self, key: KeyEvent) -> Option<FormAction> {
        let picker = self.picker.as_mut()?;
        let count = picker.listing.as_ref().map_or(0, |l| l.entries.len());
        let selected = picker.listing.as_ref().and_then(|l| l.entries.get(picker.selected)).map(|d| d.path.clone());
        let shown = picker.listing.as_ref().map(|l| l.path.clone());
        let parent = picker.listing.as_ref().and_then(|l| l.parent.clone());
        let browse = |picker: &mut Picker, path: String| {
            picker.asked = path.clone();
            picker.error = None;
            Some(FormAction::Browse { path, hidden: picker.hidden, or_home: false })
        };
        match key.code {
            KeyCode::Esc => self.picker = None,
            KeyCode::Down | KeyCode::Char('j') if count > 0 => picker.selected = (picker.selected + 1).min(count - 1),
            KeyCode::Up | KeyCode::Char('k') => picker.selected = picker.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => picker.selected = 0,
            KeyCode::End | KeyCode::Char('G') => picker.selected = count.saturating_sub(1),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => return browse(picker, selected?),
            KeyCode::Left | KeyCode::Backspace | KeyCode::Char('h') => {
                picker.came_from = shown;
                return browse(picker, parent?);
            }
            KeyCode::Char('.') => {
                picker.hidden = !picker.hidden;
                picker.came_from = selected;
                return browse(picker, shown.unwrap_or_else(|| picker.asked.clone()));
            }
            KeyCode::Char(' ') => self.choose(selected?),
            KeyCode::Char('u') => self.choose(shown?),
            _ => {}
        }
        None
    }

    fn choose(&mut self, path: String) {
        self.repo = path;
        self.picker = None;
        self.error = None;
    }

    /// The daemon's answer for the directory `asked`; an answer for a
    /// directory the browser has moved on from is dropped.
    pub fn listed(&mut self, asked: &str, result: Result<Listing, String>) {
        let Some(picker) = self.picker.as_mut().filter(|p| p.asked == asked) else { return };
        match result {
            Ok(listing) => {
                let came_from = picker.came_from.take();
                picker.selected = listing.entries.iter().position(|d| Some(&d.path) == came_from.as_ref()).unwrap_or(0);
                picker.listing = Some(listing);
                picker.error = None;
            }
            // The listing shown (if any) stays: the user is still where they were.
            Err(why) => picker.error = Some(why),
        }
    }

    /// The next (`by` 1) or previous recent repository.
    fn pick_recent(&mut self, by: isize) {
        if self.recent.is_empty() {
            return;
        }
        let at = self.recent.iter().position(|r| *r == self.repo).map(|i| i as isize).unwrap_or(-1);
        let next = (at + by).rem_euclid(self.recent.len() as isize) as usize;
        self.repo = self.recent[next].clone();
    }
}

/// `~/x` as the user's home joined with `x` (the daemon wants an absolute path).
fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ if path == "~" => std::env::var("HOME").unwrap_or_else(|_| path.into()),
        _ => path.into(),
    }
}

/// A doctor's answer for tests: docker cannot run, zellij (the default),
/// claude-code (the default) and shell can.
#[cfg(test)]
pub(crate) fn test_doctor() -> Doctor {
    let check = |area: &str, name: &str, ok: bool| clauderon_api::doctor::Check {
        area: area.into(),
        name: name.into(),
        ok,
        required: false,
        detail: if ok { "ready".into() } else { "docker is not running".into() },
        fix: None,
    };
    Doctor {
        ok: true,
        default_backend: "zellij".into(),
        default_agent: "claude-code".into(),
        checks: vec![
            check("backend", "docker", false),
            check("backend", "zellij", true),
            check("agent", "claude-code", true),
            check("agent", "shell", true),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn typed(form: &mut CreateForm, text: &str) {
        for c in text.chars() {
            form.key(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn the_form_makes_the_request_tab_by_tab() {
        let mut form = CreateForm::new(vec!["/src/shop".into(), "/src/blog".into()]);
        form.choices(&test_doctor());
        assert_eq!((form.backend, form.agent), (1, 0), "the doctor's defaults are chosen");
        typed(&mut form, "Fix the login bug");
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Down));
        assert_eq!(form.repo, "/src/blog", "↓ picks the next recent repository");
        form.key(key(KeyCode::Tab));
        typed(&mut form, "login-bug");
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Right));
        assert_eq!(form.agents[form.agent].id, "shell");
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Char(' ')));
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Char(' ')));
        let Some(FormAction::Submit(request)) = form.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL))
        else {
            panic!("Ctrl-S submits: {form:?}")
        };
        assert_eq!(request.prompt, "Fix the login bug");
        assert_eq!(request.repo, std::path::PathBuf::from("/src/blog"));
        assert_eq!(request.name.as_deref(), Some("login-bug"));
        assert_eq!(request.backend.as_deref(), Some("zellij"));
        assert_eq!(request.agent.as_deref(), Some("shell"));
        assert_eq!(request.access_mode, Some(AccessMode::ReadOnly));
        assert!(request.plan_mode && !request.skip_permissions);
        assert!(form.busy, "the form waits for the answer");
        assert!(form.key(key(KeyCode::Char('x'))).is_none());
    }

    fn listing(path: &str, parent: Option<&str>, names: &[&str]) -> Listing {
        Listing {
            path: path.into(),
            parent: parent.map(String::from),
            home: "/home/ada".into(),
            repository: false,
            entries: names
                .iter()
                .map(|n| clauderon_api::directories::Directory {
                    name: n.to_string(),
                    path: format!("{path}/{n}"),
                    repository: n.starts_with("repo"),
                })
                .collect(),
            left_out: 0,
        }
    }

    fn browse(path: &str, hidden: bool, or_home: bool) -> Option<FormAction> {
        Some(FormAction::Browse { path: path.into(), hidden, or_home })
    }

    #[test]
    fn the_browser_walks_directories_and_fills_in_the_repository() {
        let mut form = CreateForm::new(vec!["~/src".into()]);
        let ctrl_o = KeyEvent::new(KeyCode::Char('o'), KeyModifiers::CONTROL);
        assert_eq!(form.key(ctrl_o), None, "Ctrl-O browses only from the repository field");
        form.key(key(KeyCode::Tab));
        assert_eq!(form.key(ctrl_o), browse("~/src", false, true), "it starts at the repository typed in");
        // An answer for another directory (one the browser moved on from) is dropped.
        form.listed("/elsewhere", Ok(listing("/elsewhere", None, &["x"])));
        assert!(form.picker.as_ref().is_some_and(|p| p.listing.is_none()));
        form.listed("~/src", Ok(listing("/home/ada/src", Some("/home/ada"), &["blog", "repo-shop", "zeta"])));
        form.key(key(KeyCode::Char('j')));
        assert_eq!(form.key(key(KeyCode::Enter)), browse("/home/ada/src/repo-shop", false, false));
        form.listed("/home/ada/src/repo-shop", Ok(listing("/home/ada/src/repo-shop", Some("/home/ada/src"), &[])));
        // Up again: the directory just left is the one selected.
        assert_eq!(form.key(key(KeyCode::Left)), browse("/home/ada/src", false, false));
        form.listed("/home/ada/src", Ok(listing("/home/ada/src", Some("/home/ada"), &["blog", "repo-shop", "zeta"])));
        assert_eq!(form.picker.as_ref().map(|p| p.selected), Some(1));
        // Hidden directories: the same directory asked again.
        assert_eq!(form.key(key(KeyCode::Char('.'))), browse("/home/ada/src", true, false));
        // A directory that cannot be listed: the API's words, the listing kept.
        form.key(key(KeyCode::Enter));
        form.listed("/home/ada/src/repo-shop", Err("permission denied".into()));
        let picker = form.picker.as_ref().expect("still browsing");
        assert_eq!(picker.error.as_deref(), Some("permission denied"));
        assert!(picker.listing.as_ref().is_some_and(|l| l.path == "/home/ada/src"));
        // Esc goes back with the repository as it was; Space picks the selection.
        form.key(key(KeyCode::Esc));
        assert_eq!((form.picker.is_none(), form.repo.as_str()), (true, "~/src"));
        form.key(ctrl_o);
        form.listed("~/src", Ok(listing("/home/ada/src", Some("/home/ada"), &["blog", "repo-shop"])));
        form.key(key(KeyCode::End));
        form.key(key(KeyCode::Char(' ')));
        assert_eq!((form.picker.is_none(), form.repo.as_str()), (true, "/home/ada/src/repo-shop"));
        // `u` picks the directory shown; at the home there is no parent to go up to.
        form.key(ctrl_o);
        form.listed("/home/ada/src/repo-shop", Ok(listing("/home/ada", None, &["src"])));
        assert_eq!(form.key(key(KeyCode::Backspace)), None);
        form.key(key(KeyCode::Char('u')));
        assert_eq!(form.repo, "/home/ada");
    }

    #[test]
    fn a_missing_prompt_is_said_and_nothing_is_sent() {
        let mut form = CreateForm::new(vec![]);
        assert!(form.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)).is_none());
        assert!(form.error.as_deref().is_some_and(|e| e.contains("Write a prompt")));
        typed(&mut form, "x");
        assert!(form.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)).is_none());
        assert!(form.error.as_deref().is_some_and(|e| e.contains("repository")));
        assert!(!form.busy);
        assert!(matches!(
            form.key(KeyEvent::new(KeyCode::Char('e'), KeyModifiers::CONTROL)),
            Some(FormAction::EditPrompt(p)) if p == "x"
        ));
        assert!(matches!(form.key(key(KeyCode::Esc)), Some(FormAction::Cancel)));
    }
}
