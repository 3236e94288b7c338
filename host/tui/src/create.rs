//! The create dialog (`n`): every option of `clauderon create` a person
//! picks — the prompt (inline, or in `$VISUAL`/`$EDITOR` with Ctrl-E), the
//! repository (typed, or one of the earlier sessions' with ↑/↓), a name, the
//! backend and agent (the ones this machine can run now, from the doctor),
//! the model, access mode, plan mode and skip permissions — then progress
//! while the session starts, and the API's own words when it cannot.
//! This module is the form's state and keys; `view.rs` draws it.

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
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return Some(FormAction::Cancel),
            KeyCode::Tab => self.step(1),
            KeyCode::BackTab => self.step(-1),
            KeyCode::Char('s') if ctrl => return self.submit(),
            KeyCode::Char('e') if ctrl && self.focus == Field::Prompt => {
                return Some(FormAction::EditPrompt(self.prompt.clone()));
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
