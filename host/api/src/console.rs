//! A session's terminal for the web dashboard and the TUI: the console
//! WebSocket (`GET /api/sessions/{id}/console`) and typed input (`POST
//! /api/sessions/{id}/input`).
//!
//! Both run the backend's own attach command (`attach-argv`, which the
//! session manager has checked against the backend's grants — the same
//! command `clauderon attach` runs in the user's terminal) on a
//! pseudo-terminal the daemon holds. Each viewer gets its own attach process
//! at its own size, so several viewers at once are the backend's own
//! multi-client attach (zellij's, Docker's), and a viewer that goes away ends
//! only its process. On the WebSocket, binary frames carry the terminal's
//! bytes both ways and a text frame `{"type":"resize","cols":C,"rows":R}`
//! resizes it; the socket closes when the attach command ends. An attach
//! command that fails at once (zellij's can miss a busy session) is run
//! again, three times at most, for a viewer and for typed input alike.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ApiError;

/// The largest terminal a viewer may ask for.
pub const MAX_COLS: u16 = 1000;
/// The tallest terminal a viewer may ask for.
pub const MAX_ROWS: u16 = 500;
/// How long typed input waits for the attach command to draw its first bytes.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// The attach command has settled once it has drawn nothing for this long
/// (zellij draws its first screen in several writes).
const QUIET: Duration = Duration::from_millis(300);
/// The longest typed input waits for a terminal that keeps drawing (an
/// agent's spinner) to settle, before typing and before detaching.
const SETTLE_CAP: Duration = Duration::from_secs(3);

/// One attach process on its own pseudo-terminal, killed when dropped.
pub struct Terminal {
    pty: pty_process::Pty,
    child: tokio::process::Child,
}

impl Terminal {
    /// Run `argv` on a new pseudo-terminal of `cols` × `rows`.
    pub fn open(argv: &[String], cols: u16, rows: u16) -> Result<Self, ApiError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            ApiError(StatusCode::BAD_GATEWAY, format!("the session's terminal could not be opened ({what}: {e})"))
        };
        let (program, args) = argv.split_first().ok_or_else(|| failed("attach", &"the backend gave no command"))?;
        let (pty, pts) = pty_process::open().map_err(|e| failed("a pseudo-terminal", &e))?;
        pty.resize(pty_process::Size::new(rows, cols)).map_err(|e| failed("its size", &e))?;
        let child = pty_process::Command::new(program)
            .args(args)
            .env("TERM", "xterm-256color")
            .kill_on_drop(true)
            .spawn(pts)
            .map_err(|e| failed(&format!("running `{}`", argv.join(" ")), &e))?;
        Ok(Self { pty, child })
    }

    /// Bridge the terminal (opened at `cols` × `rows`) and a viewer's
    /// WebSocket until either ends. An attach command that fails at once is
    /// replaced by the terminal `again` opens at the viewer's size (none: the
    /// session is no longer running), [`ATTACH_ATTEMPTS`] times at most,
    /// telling the viewer so.
    pub async fn bridge<F, Fut>(self, socket: WebSocket, (cols, rows): (u16, u16), mut again: F)
    where
        F: FnMut(u16, u16) -> Fut,
        Fut: std::future::Future<Output = Option<Terminal>>,
    {
        let (mut to_viewer, mut from_viewer) = socket.split();
        let mut size = (cols, rows);
        let (mut terminal, mut attempt) = (self, 1);
        let reason = loop {
            let started = Instant::now();
            let Self { pty, mut child } = terminal;
            let reason = relay(pty, &mut to_viewer, &mut from_viewer, &mut size).await;
            if reason != COMMAND_ENDED {
                let _ = child.kill().await;
                break reason;
            }
            let status = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            let failed_at_once = matches!(status, Ok(Ok(s)) if !s.success()) && started.elapsed() < FAILED_AT_ONCE;
            let _ = child.kill().await;
            if !failed_at_once || attempt == ATTACH_ATTEMPTS {
                break reason;
            }
            let Some(next) = again(size.0, size.1).await else { break reason };
            attempt += 1;
            let note = format!(
                "\r\n[clauderon: the attach command failed at once; trying again ({attempt} of {ATTACH_ATTEMPTS})]\r\n"
            );
            if to_viewer.send(Message::Binary(note.into_bytes().into())).await.is_err() {
                break "";
            }
            terminal = next;
        };
        if !reason.is_empty() {
            let close = CloseFrame { code: axum::extract::ws::close_code::NORMAL, reason: reason.into() };
            let _ = to_viewer.send(Message::Close(Some(close))).await;
        }
    }

    /// Type `text` into the terminal once the attach command has drawn and
    /// settled, and return once it has drawn what the keys did (the caller
    /// then ends it).
    ///
    /// An attach client ended right after the keys were written can die
    /// before it passes them on (zellij's does): a fixed pause there lost a
    /// line on a loaded machine, so this waits for the echo instead.
    async fn type_when_ready(
        pty: &mut pty_process::Pty,
        child: &mut tokio::process::Child,
        text: &str,
    ) -> Result<(), TypeError> {
        let (mut from_pty, mut to_pty) = pty.split();
        let mut buf = vec![0u8; 16 * 1024];
        let mut drawn = match tokio::time::timeout(READY_TIMEOUT, from_pty.read(&mut buf)).await {
            // EIO is how Linux reports that the attach command exited.
            Ok(Ok(0) | Err(_)) => return Err(TypeError::Ended(String::new())),
            Ok(Ok(n)) => buf[..n].to_vec(),
            Err(_) => return Err(TypeError::NeverDrew),
        };
        let ended = Self::until_quiet(&mut from_pty, &mut buf, &mut drawn).await;
        // A command that has already ended did not reach the session (zellij's
        // attach says a busy session does not exist): the keys would be lost.
        if ended || child.try_wait().ok().flatten().is_some() {
            return Err(TypeError::Ended(String::from_utf8_lossy(&drawn).into_owned()));
        }
        to_pty.write_all(text.as_bytes()).await.map_err(TypeError::Write)?;
        // Keep reading until it has drawn what the keys did and gone quiet,
        // so it is not ended before it has passed them on.
        Self::until_quiet(&mut from_pty, &mut buf, &mut Vec::new()).await;
        Ok(())
    }

    /// Read what the terminal draws until it has drawn nothing for [`QUIET`]
    /// (or kept drawing for [`SETTLE_CAP`], or ended), keeping its first
    /// [`KEPT`] bytes in `drawn`. Whether the terminal ended (its command
    /// exited).
    async fn until_quiet(from_pty: &mut pty_process::ReadPty<'_>, buf: &mut [u8], drawn: &mut Vec<u8>) -> bool {
        let start = Instant::now();
        let mut quiet_from = start + QUIET;
        loop {
            match tokio::time::timeout_at(quiet_from.min(start + SETTLE_CAP).into(), from_pty.read(buf)).await {
                Err(_) => return false,
                // EIO is how Linux reports that the attach command exited.
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(n)) => {
                    drawn.extend_from_slice(&buf[..n.min(KEPT.saturating_sub(drawn.len()))]);
                    quiet_from = Instant::now() + QUIET;
                }
            }
        }
    }
}

/// Why a terminal's bridging ended when its attach command ended (the close
/// reason the viewer gets). The other reasons: "" (the viewer went away) and
/// "the terminal stopped taking input".
const COMMAND_ENDED: &str = "the attach command ended";

/// How many times an attach command that fails at once runs: for a viewer,
/// for typed input, and for `clauderon attach` in the user's terminal.
pub const ATTACH_ATTEMPTS: u32 = 3;

/// An attach command that fails within this long has not reached the
/// session (zellij 0.45's `attach` can miss a live session whose server is
/// busy, and say it does not exist).
pub const FAILED_AT_ONCE: Duration = Duration::from_secs(5);

/// The pause before an attach command that failed at once runs again.
pub const RETRY_PAUSE: Duration = Duration::from_millis(300);

type ToViewer = futures_util::stream::SplitSink<WebSocket, Message>;
type FromViewer = futures_util::stream::SplitStream<WebSocket>;

/// Carry bytes between one attach command's terminal and the viewer until
/// either ends; why (see [`COMMAND_ENDED`]). Resizes are applied and kept in
/// `size` (columns, rows) for a terminal that replaces this one.
async fn relay(
    pty: pty_process::Pty,
    to_viewer: &mut ToViewer,
    from_viewer: &mut FromViewer,
    size: &mut (u16, u16),
) -> &'static str {
    let (mut from_pty, mut to_pty) = pty.into_split();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = from_pty.read(&mut buf) => match read {
                // EIO is how Linux reports that the attach command exited.
                Ok(0) | Err(_) => return COMMAND_ENDED,
                Ok(n) => if to_viewer.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                    return "";
                },
            },
            message = from_viewer.next() => match message {
                Some(Ok(Message::Binary(bytes))) => if to_pty.write_all(&bytes).await.is_err() {
                    return "the terminal stopped taking input";
                },
                Some(Ok(Message::Text(text))) => {
                    if let Ok(Control::Resize { cols, rows }) = serde_json::from_str::<Control>(&text) {
                        *size = (cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS));
                        let _ = to_pty.resize(pty_process::Size::new(size.1, size.0));
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return "",
                Some(Ok(_)) => {}
            },
        }
    }
}

/// How much of what an attach command drew before typing is kept (for the
/// error when it ended).
const KEPT: usize = 1024;

/// Why typed input did not reach the terminal.
#[derive(Debug, thiserror::Error)]
enum TypeError {
    #[error("the session's terminal closed before the text was typed{}", said(.0))]
    Ended(String),
    #[error("the session's terminal did not open (its attach command drew nothing in 15 s)")]
    NeverDrew,
    #[error("typing into the session's terminal failed: {0}")]
    Write(std::io::Error),
}

/// What an ended attach command printed, as a suffix for its error.
fn said(output: &str) -> String {
    let text: String = output.chars().filter(|c| !c.is_control() || *c == ' ').collect();
    let text = text.trim();
    if text.is_empty() { String::new() } else { format!(" (its attach command said: {text})") }
}

/// Type `text` into a new attach of the command `argv` gives (asked again
/// for each attempt), as [`Terminal::type_when_ready`] does. An attach
/// command that ends before the text could be typed is run again,
/// [`ATTACH_ATTEMPTS`] times at most.
pub async fn type_into<F, Fut>(mut argv: F, text: &str) -> Result<(), ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, ApiError>>,
{
    let mut attempt = 1;
    loop {
        let argv = argv().await?;
        let Terminal { mut pty, mut child } = Terminal::open(&argv, 120, 40)?;
        let typed = Terminal::type_when_ready(&mut pty, &mut child, text).await;
        let _ = child.kill().await;
        match typed {
            Err(TypeError::Ended(said)) if attempt < ATTACH_ATTEMPTS => {
                tracing::info!("`{}` ended before the text was typed ({said:?}); trying again", argv.join(" "));
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            other => return other.map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e.to_string())),
        }
    }
}

/// What a viewer sends as text.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Control {
    /// The viewer's terminal changed size.
    Resize { cols: u16, rows: u16 },
}
