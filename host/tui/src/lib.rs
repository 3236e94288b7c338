//! `clauderon tui`: the terminal UI. It is a client of the daemon's API like
//! the CLI and the web dashboard (the CLI's [`clauderon_client::Client`],
//! nothing else), live from `/api/events`.
//!
//! Where things are: [`list`] is the list's logic (filters, search, sort,
//! events), [`app`] the state and what each key does, [`create`] the create
//! dialog's form, [`attach`] the embedded terminal, [`view`] the drawing,
//! [`live`] the connection to the daemon, [`terminal`] taking and restoring
//! the user's terminal. This file is the loop that joins them.

pub mod app;
pub mod attach;
pub mod create;
pub mod list;
pub mod live;
pub mod terminal;
pub mod view;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clauderon_api::directories::Listing;
use clauderon_api::doctor::Doctor;
use clauderon_api::{Answer, ApprovalBody, Changes, Deleted, InputBody, ModeBody, Typed};
use clauderon_client::{Client, seg};
use clauderon_daemon::Home;
use clauderon_sessions::{CreateRequest, Session};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use reqwest::Method;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::app::{Action, App, Call, Update};
use crate::terminal::Screen;
use clauderon_client::kebab;

/// Run the TUI until the user quits (or a signal ends it).
pub async fn run(home: &Home) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "clauderon tui needs a terminal (its input and output are not one); for scripts use `clauderon list --json`"
        );
    }
    // Before the screen is taken: starting the daemon prints where its log is.
    let client = Arc::new(Client::connect(home).await?);
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(clauderon_sessions::model::now_ms(), color);
    let (tx, mut rx) = mpsc::channel(4096);
    let follower = tokio::spawn(live::follow(client.clone(), tx.clone()));
    let mut signals = [
        signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        signal(SignalKind::interrupt()).context("listening for SIGINT")?,
    ];
    let mut screen = Screen::enter().context("taking the terminal (raw mode, alternate screen)")?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The open chat's history follower.
    let mut history: Option<tokio::task::JoinHandle<()>> = None;
    // The attached terminal's socket.
    let mut console: Option<Console> = None;
    let result = loop {
        if let Err(e) = screen.terminal.draw(|f| view::draw(f, &mut app)) {
            break Err(anyhow::Error::new(e).context("drawing the screen"));
        }
        // Debug builds only: a panic on purpose once the list is drawn, so the
        // end-to-end tests can see the terminal given back after a panic (this
        // binary has no other way to panic on purpose). Release builds have no
        // such switch.
        #[cfg(debug_assertions)]
        if std::env::var_os("CLAUDERON_TUI_TEST_PANIC").is_some() && !app.sessions.is_empty() {
            panic!("CLAUDERON_TUI_TEST_PANIC asked for a panic");
        }
        let [term, hup, int] = &mut signals;
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    match app.key(key) {
                        Some(Action::Attach { id, name }) => {
                            console.take();
                            let size = screen.terminal.size().unwrap_or_default();
                            // The terminal fills the screen but its title line.
                            let (cols, rows) = (size.width.max(1), size.height.saturating_sub(1).max(1));
                            match Console::open(&client, &id, cols, rows, tx.clone()).await {
                                Ok(opened) => {
                                    console = Some(opened);
                                    app.attached = Some(attach::Attached::new(id, name, rows, cols));
                                }
                                Err(e) => {
                                    app.attached = None;
                                    app.say(format!("attaching to {name}: {e:#}"), true);
                                }
                            }
                        }
                        Some(Action::Input(bytes)) => {
                            if let Some(c) = &console {
                                c.send(Message::Binary(bytes.into()));
                            }
                        }
                        Some(Action::Detach) => {
                            console.take();
                        }
                        Some(Action::EditPrompt(text)) => {
                            drop(keys);
                            let edited = edit_in_editor(&mut screen, &text).await;
                            keys = EventStream::new();
                            match edited {
                                Ok(text) => handle(&client, &tx, &mut app, Update::Prompt(text)),
                                Err(e) => app.say(format!("{e:#}"), true),
                            }
                        }
                        Some(Action::OpenCreate) => {
                            tokio::spawn(doctor(client.clone(), tx.clone()));
                        }
                        Some(Action::Create(request)) => {
                            tokio::spawn(create(client.clone(), request, tx.clone()));
                        }
                        Some(Action::Follow { id }) => {
                            history.replace(tokio::spawn(live::follow_session(client.clone(), id, tx.clone())));
                        }
                        Some(Action::Unfollow) => {
                            if let Some(task) = history.take() {
                                task.abort();
                            }
                        }
                        Some(Action::Browse { path, hidden, or_home }) => {
                            tokio::spawn(directories(client.clone(), path, hidden, or_home, tx.clone()));
                        }
                        Some(Action::Call(call)) => {
                            tokio::spawn(perform(client.clone(), call, tx.clone()));
                        }
                        None => {}
                    }
                }
                Some(Ok(Event::Resize(width, height))) => {
                    // The next draw fits the new size; an attached terminal follows it.
                    let (cols, rows) = (width.max(1), height.saturating_sub(1).max(1));
                    if let (Some(t), Some(c)) = (app.attached.as_mut(), &console) {
                        t.parser.screen_mut().set_size(rows, cols);
                        let resize = serde_json::json!({"type": "resize", "cols": cols, "rows": rows});
                        c.send(Message::Text(resize.to_string().into()));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(anyhow::Error::new(e).context("reading the keyboard")),
                None => break Ok(()),
            },
            update = rx.recv() => {
                let Some(update) = update else { break Ok(()) };
                handle(&client, &tx, &mut app, update);
                // Draw once for everything that is already here (a burst of events).
                while let Ok(update) = rx.try_recv() {
                    handle(&client, &tx, &mut app, update);
                }
            }
            _ = tick.tick() => app.tick(clauderon_sessions::model::now_ms()),
            _ = term.recv() => break Ok(()),
            _ = hup.recv() => break Ok(()),
            _ = int.recv() => break Ok(()),
        }
        if app.quit {
            break Ok(());
        }
    };
    follower.abort();
    if let Some(task) = history {
        task.abort();
    }
    drop(screen);
    result.map(|()| ExitCode::SUCCESS)
}

fn handle(client: &Arc<Client>, tx: &mpsc::Sender<Update>, app: &mut App, update: Update) {
    if let Some(id) = app.update(update) {
        tokio::spawn(live::fetch(client.clone(), id, tx.clone()));
    }
}

/// Run one call against the API and report how it went.
async fn perform(client: Arc<Client>, call: Call, tx: mpsc::Sender<Update>) {
    let done = async {
        match call {
            Call::Transition { id, name, verb } => {
                let path = format!("/api/sessions/{}/{verb}", seg(&id));
                let s: Session = client.call_as(Method::POST, &path, None::<&()>).await?;
                anyhow::Ok(format!("{name} is now {}.", kebab(&s.status)))
            }
            Call::Delete { id, name } => {
                let path = format!("/api/sessions/{}", seg(&id));
                let d: Deleted = client.call_as(Method::DELETE, &path, None::<&()>).await?;
                Ok(format!("Deleted {name}: {}", d.message))
            }
            Call::SetAccessMode { id, name, mode } => {
                let path = format!("/api/sessions/{}/access-mode", seg(&id));
                let s: Session = client.call_as(Method::PUT, &path, Some(&ModeBody { mode })).await?;
                Ok(format!("{name} is now {}.", s.access_mode.as_str()))
            }
            Call::Reconcile => {
                let r: Changes = client.call_as(Method::POST, "/api/reconcile", None::<&()>).await?;
                Ok(match r.changes.len() {
                    0 => "Every session matches its backend.".to_string(),
                    n => format!(
                        "Reconciled: {}",
                        if n == 1 { r.changes[0].clone() } else { format!("{n} sessions changed") }
                    ),
                })
            }
            Call::Answer { id, name, answer } => {
                let path = format!("/api/sessions/{}/approval", seg(&id));
                let _: Typed = client.call_as(Method::POST, &path, Some(&ApprovalBody { answer })).await?;
                let done = if answer == Answer::Approve { "Approved" } else { "Denied" };
                Ok(format!("{done}: typed the agent's keys into {name}'s terminal."))
            }
            Call::Type { id, name, text } => {
                let path = format!("/api/sessions/{}/input", seg(&id));
                let body = InputBody { text, submit: true };
                let _: Typed = client.call_as(Method::POST, &path, Some(&body)).await?;
                Ok(format!("Sent to {name}."))
            }
        }
    };
    let _ = tx.send(Update::Done(done.await.map_err(|e| format!("{e:#}")))).await;
}

/// An attached terminal's WebSocket: a task passes what it draws on as
/// [`Update::Output`] (and its end as [`Update::Ended`]), another writes
/// what the user types. Dropping it closes the socket (the daemon then ends
/// its attach command; the session keeps running).
struct Console {
    to_session: mpsc::UnboundedSender<Message>,
    reader: tokio::task::JoinHandle<()>,
}

impl Console {
    async fn open(client: &Client, id: &str, cols: u16, rows: u16, tx: mpsc::Sender<Update>) -> anyhow::Result<Self> {
        use futures_util::SinkExt;
        let socket = client.console(id, cols, rows).await?;
        let (mut write, mut read) = socket.split();
        let (to_session, mut typed) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = typed.recv().await {
                if write.send(message).await.is_err() {
                    return;
                }
            }
            let _ = write.close().await;
        });
        let id = id.to_string();
        let reader = tokio::spawn(async move {
            let why = loop {
                match read.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        if tx.send(Update::Output { id: id.clone(), bytes: bytes.to_vec() }).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break frame
                            .map(|f| f.reason.to_string())
                            .filter(|r| !r.is_empty())
                            .unwrap_or_else(|| "the terminal closed".into());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("the terminal's connection broke: {e}"),
                    None => break "the terminal closed".into(),
                }
            };
            let _ = tx.send(Update::Ended { id, why }).await;
        });
        Ok(Self { to_session, reader })
    }

    fn send(&self, message: Message) {
        let _ = self.to_session.send(message);
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The doctor's answer, for the create dialog's backends and agents.
async fn doctor(client: Arc<Client>, tx: mpsc::Sender<Update>) {
    let update = match client.call_as::<Doctor>(Method::GET, "/api/doctor", None::<&()>).await {
        Ok(doctor) => Update::Doctor(Box::new(doctor)),
        Err(e) => Update::Done(Err(format!("asking what this machine can run: {e:#}"))),
    };
    let _ = tx.send(update).await;
}

/// The directories in `path` for the create dialog's browser (the home
/// instead, with `or_home`, when `path` cannot be listed).
async fn directories(client: Arc<Client>, path: String, hidden: bool, or_home: bool, tx: mpsc::Sender<Update>) {
    let list = |path: &str| {
        let url = format!("/api/directories?path={}&hidden={hidden}", seg(path));
        let client = client.clone();
        async move { client.call_as::<Listing>(Method::GET, &url, None::<&()>).await }
    };
    let mut listing = list(&path).await;
    if listing.is_err() && or_home {
        listing = list("").await;
    }
    let listing = listing.map(Box::new).map_err(|e| format!("{e:#}"));
    let _ = tx.send(Update::Directories { asked: path, listing }).await;
}

/// Create a session; the new session or the API's words go back to the dialog.
async fn create(client: Arc<Client>, request: Box<CreateRequest>, tx: mpsc::Sender<Update>) {
    let created = client.call_as::<Session>(Method::POST, "/api/sessions", Some(&*request)).await;
    let _ = tx.send(Update::Created(created.map(Box::new).map_err(|e| format!("{e:#}")))).await;
}

/// Edit `text` in the user's `$VISUAL` or `$EDITOR` (else `vi`), run through
/// `sh` as git runs it (so `code --wait` works), in the terminal the TUI gives
/// up meanwhile; the text as the editor left it.
async fn edit_in_editor(screen: &mut Screen, text: &str) -> anyhow::Result<String> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let file = tempfile::Builder::new()
        .prefix("clauderon-prompt-")
        .suffix(".md")
        .tempfile()
        .context("a file for the prompt")?;
    tokio::fs::write(file.path(), text).await.context("writing the prompt for the editor")?;
    screen.suspend().context("giving the terminal to the editor")?;
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()
        .await;
    screen.resume().context("taking the terminal back after the editor")?;
    let status = status.with_context(|| format!("running the editor `{editor}`"))?;
    if !status.success() {
        bail!("the editor `{editor}` ended with {status}; the prompt is as it was");
    }
    let edited = tokio::fs::read_to_string(file.path()).await.context("reading the prompt back")?;
    Ok(edited.trim_end_matches('\n').to_string())
}
