//! `clauderon tui`: the terminal UI. It is a client of the daemon's API like
//! the CLI and the web dashboard (the CLI's [`clauderon_client::Client`],
//! nothing else), live from `/api/events`.
//!
//! Where things are: [`list`] is the list's logic (filters, search, sort,
//! events), [`app`] the state and what each key does, [`create`] the create
//! dialog's form, [`view`] the drawing,
//! [`live`] the connection to the daemon, [`terminal`] taking and restoring
//! the user's terminal. This file is the loop that joins them.

pub mod app;
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
use clauderon_api::doctor::Doctor;
use clauderon_api::{Answer, ApprovalBody, Argv, Changes, Deleted, InputBody, ModeBody, Typed};
use clauderon_client::safe_text::for_terminal;
use clauderon_client::{Client, seg};
use clauderon_daemon::Home;
use clauderon_sessions::{CreateRequest, Session};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use reqwest::Method;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::app::{Action, App, Update};
use crate::list::kebab;
use crate::terminal::Screen;

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
    let result = loop {
        if let Err(e) = screen.terminal.draw(|f| view::draw(f, &mut app)) {
            break Err(anyhow::Error::new(e).context("drawing the screen"));
        }
        let [term, hup, int] = &mut signals;
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    match app.key(key) {
                        Some(Action::Attach { id, name }) => {
                            drop(keys);
                            let attached = attach(&client, &mut screen, &id, &name).await;
                            keys = EventStream::new();
                            if let Err(e) = attached {
                                app.say(format!("{e:#}"), true);
                            }
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
                        Some(action) => {
                            tokio::spawn(perform(client.clone(), action, tx.clone()));
                        }
                        None => {}
                    }
                }
                Some(Ok(_)) => {} // a resize: the next draw fits the new size
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

/// Run one action against the API and report how it went.
async fn perform(client: Arc<Client>, action: Action, tx: mpsc::Sender<Update>) {
    let done = async {
        match action {
            Action::Transition { id, name, verb } => {
                let path = format!("/api/sessions/{}/{verb}", seg(&id));
                let s: Session = client.call_as(Method::POST, &path, None::<&()>).await?;
                anyhow::Ok(format!("{name} is now {}.", kebab(&s.status)))
            }
            Action::Delete { id, name } => {
                let path = format!("/api/sessions/{}", seg(&id));
                let d: Deleted = client.call_as(Method::DELETE, &path, None::<&()>).await?;
                Ok(format!("Deleted {name}: {}", d.message))
            }
            Action::SetAccessMode { id, name, mode } => {
                let path = format!("/api/sessions/{}/access-mode", seg(&id));
                let s: Session = client.call_as(Method::PUT, &path, Some(&ModeBody { mode })).await?;
                Ok(format!("{name} is now {}.", s.access_mode.as_str()))
            }
            Action::Reconcile => {
                let r: Changes = client.call_as(Method::POST, "/api/reconcile", None::<&()>).await?;
                Ok(match r.changes.len() {
                    0 => "Every session matches its backend.".to_string(),
                    n => format!(
                        "Reconciled: {}",
                        if n == 1 { r.changes[0].clone() } else { format!("{n} sessions changed") }
                    ),
                })
            }
            Action::Answer { id, name, answer } => {
                let path = format!("/api/sessions/{}/approval", seg(&id));
                let _: Typed = client.call_as(Method::POST, &path, Some(&ApprovalBody { answer })).await?;
                let done = if answer == Answer::Approve { "Approved" } else { "Denied" };
                Ok(format!("{done}: typed the agent's keys into {name}'s terminal."))
            }
            Action::Type { id, name, text } => {
                let path = format!("/api/sessions/{}/input", seg(&id));
                let body = InputBody { text, submit: true };
                let _: Typed = client.call_as(Method::POST, &path, Some(&body)).await?;
                Ok(format!("Sent to {name}."))
            }
            Action::Attach { .. }
            | Action::Follow { .. }
            | Action::Unfollow
            | Action::OpenCreate
            | Action::Create(_)
            | Action::EditPrompt(_) => Ok(String::new()),
        }
    };
    let _ = tx.send(Update::Done(done.await.map_err(|e| format!("{e:#}")))).await;
}

/// Hand the terminal to the backend's attach command until it ends.
async fn attach(client: &Client, screen: &mut Screen, id: &str, name: &str) -> anyhow::Result<()> {
    let path = format!("/api/sessions/{}/attach", seg(id));
    let Argv { argv } = client.call_as(Method::GET, &path, None::<&()>).await?;
    let Some((program, args)) = argv.split_first() else { bail!("the backend gave no way to attach to {name}") };
    screen.suspend().context("giving the terminal to the attach")?;
    // The user sees what runs in their terminal before it runs.
    println!("clauderon: attaching to {name} with `{}`; detach to come back", for_terminal(&argv.join(" ")));
    let status = tokio::process::Command::new(program).args(args).status().await;
    screen.resume().context("taking the terminal back after the attach")?;
    let status = status.with_context(|| format!("running `{}`", for_terminal(&argv.join(" "))))?;
    if !status.success() {
        bail!("the attach to {name} ended with {status}");
    }
    Ok(())
}

/// The doctor's answer, for the create dialog's backends and agents.
async fn doctor(client: Arc<Client>, tx: mpsc::Sender<Update>) {
    let update = match client.call_as::<Doctor>(Method::GET, "/api/doctor", None::<&()>).await {
        Ok(doctor) => Update::Doctor(Box::new(doctor)),
        Err(e) => Update::Done(Err(format!("asking what this machine can run: {e:#}"))),
    };
    let _ = tx.send(update).await;
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
