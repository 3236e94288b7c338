//! The TUI's state and what each key and each update from the daemon does to
//! it. Nothing here draws or talks to the daemon: keys give [`Action`]s for
//! the caller to run, and the daemon's answers come back as [`Update`]s, so
//! every behaviour can be tested without a terminal.

use std::collections::HashMap;

use clauderon_sessions::{AccessMode, AgentStatus, Session, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::widgets::TableState;

use crate::attach::{Attached, AttachedKey};
use crate::create::{CreateForm, FormAction};
use crate::list::{self, Change, Sort, Tab};

pub use clauderon_proxy::audit::{AuditRecord, Decision};

/// How many audit records the audit view keeps (the newest).
pub const AUDIT_KEPT: usize = 2000;

/// One message of a session's chat, as `GET /api/sessions/{id}/history` gives it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ChatLine {
    /// `user`, `assistant`, `tool-use`, `tool-result` or `system`.
    pub role: String,
    pub text: String,
    /// The tool, for tool use and results.
    #[serde(default)]
    pub tool_name: Option<String>,
}

/// Which of a session's views is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    /// The agent's history (`c`).
    #[default]
    Chat,
    /// The proxy's record of the session's requests (`A`).
    Audit,
}

/// One session's chat and audit, open over the list (`c`, `A`; Tab switches).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionView {
    pub id: String,
    pub name: String,
    pub pane: Pane,
    /// The newest of the session's audit records (at most [`AUDIT_KEPT`]).
    pub audit: Vec<AuditRecord>,
    pub messages: Vec<ChatLine>,
    /// Where the history continues (the API's cursor).
    pub cursor: u64,
    /// Whether the history has answered once, and whether there is a transcript.
    pub loaded: bool,
    pub transcript: bool,
    /// Lines scrolled up from the newest (0: following the newest).
    pub scroll: u16,
    /// Tool calls and results shown whole instead of on one line.
    pub unfold: bool,
    /// A message being written (`i`), sent with Enter.
    pub draft: Option<String>,
}

/// Every key of the session list, as the help overlay and `docs/tui.md` show them.
pub const KEYS: &[(&str, &str)] = &[
    ("n", "create a session (Tab moves; the dialog's bottom line shows its keys)"),
    ("c", "chat: the session's history, live; approvals"),
    ("A", "audit: the session's requests through the proxy, live"),
    ("j / k, ↓ / ↑", "move"),
    ("g / G, Home / End", "first / last session"),
    ("PgDn / PgUp", "move a page"),
    ("1 – 6", "filter: all, working, waiting, idle, stopped or failed, archived"),
    ("Tab / Shift-Tab", "next / previous filter"),
    ("/", "search (Enter keeps it, Esc clears it)"),
    ("o / O", "sort by the next column / reverse the order"),
    ("Enter", "attach: the session's terminal inside the TUI (Ctrl-Q detaches)"),
    ("s / S", "stop / start"),
    ("a / u", "archive / unarchive"),
    ("d", "delete (asks first)"),
    ("m", "switch access mode (read-only ↔ read-write; asks before read-write)"),
    ("r", "reconcile every session with its backend"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
];

/// Where the keys go.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The session list.
    List,
    /// Typing a search.
    Search,
    /// The help overlay.
    Help,
    /// A question before an action (`y` runs it).
    Confirm { question: String, action: Action },
}

/// Whether the daemon's event stream is live.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Connecting,
    Live,
    /// Lost; reconnecting. Why it was lost.
    Lost(String),
}

/// A line for the status bar, until `until_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub until_ms: u64,
}

/// Every key of a session's view (chat and audit).
pub const CHAT_KEYS: &[(&str, &str)] = &[
    ("Tab", "chat ↔ audit"),
    ("i", "write to the agent (Enter sends, Esc cancels)"),
    ("y / n", "approve / deny what the agent asks"),
    ("t", "show tool calls whole / on one line"),
    ("j / k, ↓ / ↑, PgDn / PgUp", "scroll"),
    ("G / End", "back to the newest, following"),
    ("Esc, q", "back to the list"),
];

/// What a key asks for: the loop runs these itself (they hold a socket, a
/// task or the terminal), and hands each [`Call`] to the API.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// One request to the API; its answer is reported as [`Update::Done`].
    Call(Call),
    /// The create dialog opened: it needs the backends and agents (the doctor).
    OpenCreate,
    /// Create a session.
    Create(Box<clauderon_sessions::CreateRequest>),
    /// Edit the create dialog's prompt in the user's editor.
    EditPrompt(String),
    /// List directories for the create dialog's browser (see [`FormAction::Browse`]).
    Browse { path: String, hidden: bool, or_home: bool },
    /// Follow this session's history (the chat opened).
    Follow { id: String },
    /// Stop following it (the chat closed).
    Unfollow,
    /// Attach the session's terminal (replacing one attached already).
    Attach { id: String, name: String },
    /// Bytes for the attached terminal.
    Input(Vec<u8>),
    /// Close the attached terminal.
    Detach,
}

/// One request to the API about a session (or all of them), answered with a
/// sentence for the status bar.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Answer the agent's permission prompt.
    Answer {
        id: String,
        name: String,
        answer: clauderon_api::Answer,
    },
    /// Type a message into the agent's terminal, with Enter.
    Type {
        id: String,
        name: String,
        text: String,
    },
    /// `stop`, `start`, `archive` or `unarchive`.
    Transition {
        id: String,
        name: String,
        verb: &'static str,
    },
    Delete {
        id: String,
        name: String,
    },
    SetAccessMode {
        id: String,
        name: String,
        mode: AccessMode,
    },
    Reconcile,
}

/// What the daemon said (through the caller).
#[derive(Debug)]
pub enum Update {
    /// The whole list (archived sessions included).
    Loaded(Vec<Session>),
    /// An event from `/api/events`.
    Event(serde_json::Value),
    /// A session as the API answered it (after an event that did not carry its state).
    Session(Box<Session>),
    Connection(Connection),
    /// How an action went: a sentence to show, or the API's error.
    Done(Result<String, String>),
    /// More of a session's chat.
    History {
        id: String,
        messages: Vec<ChatLine>,
        cursor: u64,
        transcript: bool,
    },
    /// More of a session's audit: records after the last one shown.
    Audit {
        id: String,
        records: Vec<AuditRecord>,
    },
    /// What the create dialog may offer.
    Doctor(Box<clauderon_api::doctor::Doctor>),
    /// A progress line from the daemon (an image pull…).
    Progress(String),
    /// How a create went: the new session, or the API's words.
    Created(Result<Box<Session>, String>),
    /// The prompt as the user's editor left it.
    Prompt(String),
    /// The directories in `asked`, for the create dialog's browser, or the API's words.
    Directories {
        asked: String,
        listing: Result<Box<clauderon_api::directories::Listing>, String>,
    },
    /// What the attached terminal drew.
    Output {
        id: String,
        bytes: Vec<u8>,
    },
    /// The attached terminal ended (the attach command exited, the daemon went away).
    Ended {
        id: String,
        why: String,
    },
}

/// How long a status-bar message stays.
const MESSAGE_MS: u64 = 6_000;
/// How far PgDn and PgUp move.
const PAGE: usize = 10;

/// The TUI's whole state.
pub struct App {
    pub sessions: HashMap<String, Session>,
    pub tab: Tab,
    pub query: String,
    pub sort: Sort,
    /// The selected session's id.
    pub selected: Option<String>,
    pub mode: Mode,
    pub connection: Connection,
    pub message: Option<Message>,
    /// Now, in ms since the Unix epoch (ages are drawn against it).
    pub now_ms: u64,
    /// Colours (off with `NO_COLOR`).
    pub color: bool,
    /// The list's scroll position.
    pub table: TableState,
    /// Whether the list has been loaded once.
    pub loaded: bool,
    /// The chat, when open.
    pub session: Option<SessionView>,
    /// The create dialog, when open.
    pub create: Option<CreateForm>,
    /// The attached terminal, when one is.
    pub attached: Option<Attached>,
    pub quit: bool,
}

impl App {
    pub fn new(now_ms: u64, color: bool) -> Self {
        Self {
            sessions: HashMap::new(),
            tab: Tab::default(),
            query: String::new(),
            sort: Sort::default(),
            selected: None,
            mode: Mode::List,
            connection: Connection::Connecting,
            message: None,
            now_ms,
            color,
            table: TableState::default(),
            loaded: false,
            session: None,
            create: None,
            attached: None,
            quit: false,
        }
    }

    /// The sessions the list shows: this tab's, matching the search, in order.
    pub fn visible(&self) -> Vec<&Session> {
        let mut shown: Vec<&Session> =
            self.sessions.values().filter(|s| self.tab.keeps(s) && list::matches(s, &self.query)).collect();
        self.sort.apply(&mut shown);
        shown
    }

    /// The selected session, if it is shown (else the first shown).
    pub fn current(&self) -> Option<&Session> {
        let shown = self.visible();
        let at = self.selected.as_ref().and_then(|id| shown.iter().position(|s| &s.id == id)).unwrap_or(0);
        shown.get(at).copied()
    }

    /// Sessions per state (archived ones left out): for the status bar.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts = [("working", 0), ("waiting", 0), ("idle", 0), ("creating", 0), ("stopped", 0), ("failed", 0)];
        for s in self.sessions.values() {
            let slot = match (s.status, s.agent_status) {
                (Status::Running, AgentStatus::Working) => 0,
                (Status::Running, AgentStatus::WaitingForInput | AgentStatus::WaitingForApproval) => 1,
                (Status::Running, AgentStatus::Idle) => 2,
                (Status::Creating, _) => 3,
                (Status::Stopped, _) => 4,
                (Status::Failed, _) => 5,
                _ => continue,
            };
            counts[slot].1 += 1;
        }
        counts.to_vec()
    }

    /// Show a sentence in the status bar for a few seconds.
    pub fn say(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some(Message { text: text.into(), error, until_ms: self.now_ms + MESSAGE_MS });
    }

    /// Time passed: ages move on, old messages go.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        if self.message.as_ref().is_some_and(|m| m.until_ms <= now_ms) {
            self.message = None;
        }
    }

    /// Apply what the daemon said; the id of a session to ask the API for,
    /// when an event did not carry its new state.
    pub fn update(&mut self, update: Update) -> Option<String> {
        match update {
            Update::Loaded(sessions) => {
                self.loaded = true;
                // A session changed by an event after the list was read keeps that newer state.
                let mut next: HashMap<String, Session> = HashMap::with_capacity(sessions.len());
                for s in sessions {
                    let keep = self.sessions.remove(&s.id).filter(|shown| shown.updated_at > s.updated_at);
                    next.insert(s.id.clone(), keep.unwrap_or(s));
                }
                self.sessions = next;
            }
            Update::Event(event) => {
                let id = event["session_id"].as_str().unwrap_or_default().to_string();
                match list::apply(self.sessions.get_mut(&id), &event) {
                    Change::Applied | Change::Nothing => {}
                    Change::Deleted(id) => {
                        self.sessions.remove(&id);
                    }
                    Change::Fetch(id) => return Some(id),
                }
            }
            Update::Session(s) => {
                let newer = self.sessions.get(&s.id).is_some_and(|shown| shown.updated_at > s.updated_at);
                if !newer {
                    self.sessions.insert(s.id.clone(), *s);
                }
            }
            Update::Connection(c) => self.connection = c,
            Update::History { id, messages, cursor, transcript } => {
                if let Some(chat) = self.session.as_mut().filter(|c| c.id == id && cursor >= c.cursor) {
                    chat.loaded = true;
                    chat.transcript = transcript;
                    chat.cursor = cursor;
                    chat.messages.extend(messages);
                }
            }
            Update::Audit { id, records } => {
                if let Some(view) = self.session.as_mut().filter(|v| v.id == id) {
                    let last = view.audit.last().map(|r| r.seq).unwrap_or(0);
                    view.audit.extend(records.into_iter().filter(|r| r.seq > last));
                    let over = view.audit.len().saturating_sub(AUDIT_KEPT);
                    view.audit.drain(..over);
                }
            }
            Update::Doctor(doctor) => {
                if let Some(form) = self.create.as_mut() {
                    form.choices(&doctor);
                }
            }
            Update::Progress(line) => {
                if let Some(form) = self.create.as_mut().filter(|f| f.busy) {
                    form.progress.push(line);
                }
            }
            Update::Created(Ok(s)) => {
                self.create = None;
                self.say(format!("Created {} ({} on {}).", s.name, s.agent, s.backend), false);
                self.selected = Some(s.id.clone());
                self.tab = Tab::All;
                self.query.clear();
                self.sessions.entry(s.id.clone()).or_insert(*s);
            }
            Update::Created(Err(why)) => {
                if let Some(form) = self.create.as_mut() {
                    form.busy = false;
                    form.error = Some(why);
                }
            }
            Update::Output { id, bytes } => {
                if let Some(t) = self.attached.as_mut().filter(|t| t.id == id) {
                    t.parser.process(&bytes);
                }
            }
            Update::Ended { id, why } => {
                if let Some(t) = self.attached.as_mut().filter(|t| t.id == id) {
                    t.ended = Some(why);
                }
            }
            Update::Prompt(text) => {
                if let Some(form) = self.create.as_mut() {
                    form.prompt = text;
                }
            }
            Update::Directories { asked, listing } => {
                if let Some(form) = self.create.as_mut() {
                    form.listed(&asked, listing.map(|l| *l));
                }
            }
            Update::Done(Ok(text)) => self.say(text, false),
            Update::Done(Err(text)) => self.say(text, true),
        }
        None
    }

    /// A key pressed; the action it asks for, if any.
    pub fn key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return None;
        }
        if let Some(form) = self.create.as_mut() {
            return match form.key(key)? {
                FormAction::Cancel => {
                    self.create = None;
                    None
                }
                FormAction::Submit(request) => Some(Action::Create(request)),
                FormAction::EditPrompt(text) => Some(Action::EditPrompt(text)),
                FormAction::Browse { path, hidden, or_home } => Some(Action::Browse { path, hidden, or_home }),
            };
        }
        if let Some(t) = self.attached.as_mut() {
            return match t.key(key) {
                AttachedKey::Send(bytes) => Some(Action::Input(bytes)),
                AttachedKey::Done => None,
                AttachedKey::Detach => {
                    self.attached = None;
                    Some(Action::Detach)
                }
                AttachedKey::Switch(by) => {
                    let at = t.id.clone();
                    let shown = self.visible();
                    let here = shown.iter().position(|s| s.id == at)? as isize;
                    let next = shown[(here + by).rem_euclid(shown.len() as isize) as usize];
                    let (id, name) = (next.id.clone(), next.name.clone());
                    self.selected = Some(id.clone());
                    Some(Action::Attach { id, name })
                }
            };
        }
        if self.session.is_some() && matches!(self.mode, Mode::List) {
            return self.chat_key(key);
        }
        match std::mem::replace(&mut self.mode, Mode::List) {
            Mode::List => self.list_key(key),
            Mode::Search => {
                self.search_key(key);
                None
            }
            Mode::Help => {
                if !matches!(key.code, KeyCode::Esc | KeyCode::Char('q' | '?') | KeyCode::Enter) {
                    self.mode = Mode::Help;
                }
                None
            }
            Mode::Confirm { question, action } => match key.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(action),
                KeyCode::Char('n' | 'N') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.say("Cancelled.", false);
                    None
                }
                _ => {
                    self.mode = Mode::Confirm { question, action };
                    None
                }
            },
        }
    }

    fn search_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => {}
            KeyCode::Esc => self.query.clear(),
            KeyCode::Backspace => {
                self.query.pop();
                self.mode = Mode::Search;
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.query.clear();
                self.mode = Mode::Search;
            }
            KeyCode::Char(c) => {
                self.query.push(c);
                self.mode = Mode::Search;
            }
            KeyCode::Down | KeyCode::Up => {
                self.step(if key.code == KeyCode::Down { 1 } else { -1 });
                self.mode = Mode::Search;
            }
            _ => self.mode = Mode::Search,
        }
    }

    fn list_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char(c @ '1'..='6') => self.tab = Tab::ALL[c as usize - '1' as usize],
            KeyCode::Tab => self.tab = self.tab.step(1),
            KeyCode::BackTab => self.tab = self.tab.step(-1),
            KeyCode::Char('j') | KeyCode::Down => self.step(1),
            KeyCode::Char('k') | KeyCode::Up => self.step(-1),
            KeyCode::PageDown => self.step(PAGE as isize),
            KeyCode::PageUp => self.step(-(PAGE as isize)),
            KeyCode::Char('g') | KeyCode::Home => self.step(isize::MIN / 2),
            KeyCode::Char('G') | KeyCode::End => self.step(isize::MAX / 2),
            KeyCode::Char('/') => self.mode = Mode::Search,
            KeyCode::Esc => self.query.clear(),
            KeyCode::Char('o') => self.sort = self.sort.next_key(),
            KeyCode::Char('O') => self.sort.descending = !self.sort.descending,
            KeyCode::Char('r') => return Some(Action::Call(Call::Reconcile)),
            KeyCode::Char('n') => {
                // Earlier sessions' repositories (with the subdirectory they worked in), most recent first.
                let mut all: Vec<&Session> = self.sessions.values().collect();
                all.sort_by_key(|s| std::cmp::Reverse(s.updated_at));
                let mut recent: Vec<String> = Vec::new();
                for s in all {
                    let path = s.repo.join(&s.subdir).to_string_lossy().trim_end_matches('/').to_string();
                    if !recent.contains(&path) {
                        recent.push(path);
                    }
                }
                self.create = Some(CreateForm::new(recent));
                return Some(Action::OpenCreate);
            }
            KeyCode::Char(c @ ('c' | 'A')) => {
                let s = self.current()?;
                let (id, name) = (s.id.clone(), s.name.clone());
                let pane = if c == 'c' { Pane::Chat } else { Pane::Audit };
                self.session = Some(SessionView { id: id.clone(), name, pane, ..SessionView::default() });
                return Some(Action::Follow { id });
            }
            KeyCode::Enter => return self.on_current(|s| Action::Attach { id: s.id.clone(), name: s.name.clone() }),
            KeyCode::Char('s') => return self.transition("stop"),
            KeyCode::Char('S') => return self.transition("start"),
            KeyCode::Char('a') => return self.transition("archive"),
            KeyCode::Char('u') => return self.transition("unarchive"),
            KeyCode::Char('d') => {
                let s = self.current()?;
                let question = format!(
                    "Delete {}? Its backend resource, worktree and branch go too (a branch with commits of its own is kept). y / n",
                    s.name
                );
                let action = Action::Call(Call::Delete { id: s.id.clone(), name: s.name.clone() });
                self.mode = Mode::Confirm { question, action };
            }
            KeyCode::Char('m') => {
                let s = self.current()?;
                let (id, name) = (s.id.clone(), s.name.clone());
                if s.access_mode == AccessMode::ReadWrite {
                    return Some(Action::Call(Call::SetAccessMode { id, name, mode: AccessMode::ReadOnly }));
                }
                let question = format!("Let {name} write through the proxy (read-write)? y / n");
                self.mode = Mode::Confirm {
                    question,
                    action: Action::Call(Call::SetAccessMode { id, name, mode: AccessMode::ReadWrite }),
                };
            }
            _ => {}
        }
        None
    }

    fn chat_key(&mut self, key: KeyEvent) -> Option<Action> {
        let chat = self.session.as_mut()?;
        if let Some(draft) = chat.draft.as_mut() {
            match key.code {
                KeyCode::Esc => chat.draft = None,
                KeyCode::Enter if !draft.trim().is_empty() => {
                    let text = std::mem::take(draft);
                    chat.draft = None;
                    chat.scroll = 0;
                    return Some(Action::Call(Call::Type { id: chat.id.clone(), name: chat.name.clone(), text }));
                }
                KeyCode::Backspace => {
                    draft.pop();
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => draft.clear(),
                KeyCode::Char(c) => draft.push(c),
                _ => {}
            }
            return None;
        }
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => {
                self.session = None;
                return Some(Action::Unfollow);
            }
            KeyCode::Tab | KeyCode::BackTab => {
                chat.pane = if chat.pane == Pane::Chat { Pane::Audit } else { Pane::Chat };
                chat.scroll = 0;
            }
            KeyCode::Char('i') => chat.draft = Some(String::new()),
            KeyCode::Char('t') => chat.unfold = !chat.unfold,
            KeyCode::Char('k') | KeyCode::Up => chat.scroll = chat.scroll.saturating_add(1),
            KeyCode::Char('j') | KeyCode::Down => chat.scroll = chat.scroll.saturating_sub(1),
            KeyCode::PageUp => chat.scroll = chat.scroll.saturating_add(PAGE as u16),
            KeyCode::PageDown => chat.scroll = chat.scroll.saturating_sub(PAGE as u16),
            KeyCode::Char('G') | KeyCode::End => chat.scroll = 0,
            KeyCode::Char('g') | KeyCode::Home => chat.scroll = u16::MAX,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char(c @ ('y' | 'n')) => {
                let (id, name) = (chat.id.clone(), chat.name.clone());
                let waiting = self.sessions.get(&id).map(|s| s.agent_status);
                if waiting != Some(AgentStatus::WaitingForApproval) {
                    let state = waiting.map(|w| clauderon_client::kebab(&w)).unwrap_or_else(|| "gone".into());
                    self.say(format!("{name} is not waiting for approval (its agent is {state})."), true);
                    return None;
                }
                let answer = if c == 'y' { clauderon_api::Answer::Approve } else { clauderon_api::Answer::Deny };
                return Some(Action::Call(Call::Answer { id, name, answer }));
            }
            _ => {}
        }
        None
    }

    fn on_current(&self, make: impl FnOnce(&Session) -> Action) -> Option<Action> {
        self.current().map(make)
    }

    fn transition(&self, verb: &'static str) -> Option<Action> {
        self.on_current(|s| Action::Call(Call::Transition { id: s.id.clone(), name: s.name.clone(), verb }))
    }

    /// Move the selection `by` rows (clamped to the list).
    fn step(&mut self, by: isize) {
        let shown = self.visible();
        if shown.is_empty() {
            return;
        }
        let at = self.selected.as_ref().and_then(|id| shown.iter().position(|s| &s.id == id)).unwrap_or(0) as isize;
        let to = at.saturating_add(by).clamp(0, shown.len() as isize - 1) as usize;
        self.selected = Some(shown[to].id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn app_with(names: &[(&str, Status, AgentStatus)]) -> App {
        let mut app = App::new(1_000_000, true);
        let sessions = names
            .iter()
            .enumerate()
            .map(|(i, (name, status, agent))| Session {
                id: format!("id-{name}"),
                name: name.to_string(),
                status: *status,
                agent_status: *agent,
                access_mode: AccessMode::ReadWrite,
                updated_at: 1000 - i as u64,
                ..Session::default()
            })
            .collect();
        app.update(Update::Loaded(sessions));
        app
    }

    #[test]
    fn moving_and_filtering_keep_a_shown_session_selected() {
        let mut app = app_with(&[
            ("alpha", Status::Running, AgentStatus::Working),
            ("beta", Status::Running, AgentStatus::Idle),
            ("gamma", Status::Stopped, AgentStatus::Unknown),
        ]);
        assert_eq!(app.current().map(|s| s.name.as_str()), Some("alpha"));
        app.key(key(KeyCode::Char('j')));
        app.key(key(KeyCode::Down));
        assert_eq!(app.current().map(|s| s.name.as_str()), Some("gamma"));
        app.key(key(KeyCode::Down));
        assert_eq!(app.current().map(|s| s.name.as_str()), Some("gamma"), "the last row stays selected");
        app.key(key(KeyCode::Char('4')));
        assert_eq!(app.tab, Tab::Idle);
        assert_eq!(app.current().map(|s| s.name.as_str()), Some("beta"), "the selected row is filtered out");
        app.key(key(KeyCode::Char('/')));
        for c in "zzz".chars() {
            app.key(key(KeyCode::Char(c)));
        }
        assert!(app.current().is_none());
        assert_eq!(app.key(key(KeyCode::Char('d'))), None, "typing in the search is not a key of the list");
        app.key(key(KeyCode::Esc));
        assert_eq!((app.mode.clone(), app.query.as_str()), (Mode::List, ""));
    }

    #[test]
    fn delete_and_read_write_ask_first() {
        let mut app = app_with(&[("alpha", Status::Running, AgentStatus::Working)]);
        assert_eq!(app.key(key(KeyCode::Char('d'))), None);
        assert!(matches!(app.mode, Mode::Confirm { .. }));
        assert_eq!(app.key(key(KeyCode::Char('n'))), None);
        assert_eq!(app.mode, Mode::List);
        app.key(key(KeyCode::Char('d')));
        assert_eq!(
            app.key(key(KeyCode::Char('y'))),
            Some(Action::Call(Call::Delete { id: "id-alpha".into(), name: "alpha".into() }))
        );
        // Read-write → read-only at once; back to read-write only after a yes.
        let to_ro = app.key(key(KeyCode::Char('m')));
        assert_eq!(
            to_ro,
            Some(Action::Call(Call::SetAccessMode {
                id: "id-alpha".into(),
                name: "alpha".into(),
                mode: AccessMode::ReadOnly
            }))
        );
        app.sessions.get_mut("id-alpha").expect("session").access_mode = AccessMode::ReadOnly;
        assert_eq!(app.key(key(KeyCode::Char('m'))), None);
        assert_eq!(
            app.key(key(KeyCode::Enter)),
            Some(Action::Call(Call::SetAccessMode {
                id: "id-alpha".into(),
                name: "alpha".into(),
                mode: AccessMode::ReadWrite
            }))
        );
    }

    #[test]
    fn events_update_rows_and_ask_for_what_they_do_not_carry() {
        let mut app = app_with(&[("alpha", Status::Running, AgentStatus::Working)]);
        let event = serde_json::json!({"seq": 9, "at": 5000, "session_id": "id-alpha", "type": "status-changed", "from": "running", "to": "stopped"});
        assert_eq!(app.update(Update::Event(event)), None);
        assert_eq!(app.sessions["id-alpha"].status, Status::Stopped);
        // A list read before that event does not undo it.
        let stale = Session { status: Status::Running, updated_at: 10, ..app.sessions["id-alpha"].clone() };
        app.update(Update::Loaded(vec![stale]));
        assert_eq!(app.sessions["id-alpha"].status, Status::Stopped);
        let created = serde_json::json!({"seq": 10, "at": 6000, "session_id": "id-new", "type": "created"});
        assert_eq!(app.update(Update::Event(created)), Some("id-new".into()));
        let deleted = serde_json::json!({"seq": 11, "at": 7000, "session_id": "id-alpha", "type": "deleted"});
        app.update(Update::Event(deleted));
        assert!(app.sessions.is_empty());
    }

    #[test]
    fn the_docs_list_exactly_these_keys() {
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/tui.md")).expect("docs/tui.md");
        let rows: Vec<&str> = docs.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| key ")).collect();
        let expected: Vec<String> = KEYS
            .iter()
            .chain(crate::attach::ATTACHED_KEYS)
            .chain(crate::create::BROWSE_KEYS)
            .chain(CHAT_KEYS)
            .map(|(k, w)| format!("| {k} | {w} |"))
            .collect();
        assert_eq!(
            rows, expected,
            "docs/tui.md's key tables differ from the code's (KEYS, ATTACHED_KEYS, BROWSE_KEYS, CHAT_KEYS)"
        );
    }

    #[test]
    fn messages_go_after_a_while_and_ctrl_c_quits_from_anywhere() {
        let mut app = app_with(&[]);
        app.update(Update::Done(Err("no such session".into())));
        assert!(app.message.as_ref().is_some_and(|m| m.error));
        app.tick(app.now_ms + MESSAGE_MS);
        assert!(app.message.is_none());
        app.key(key(KeyCode::Char('/')));
        app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(app.quit);
    }
}
