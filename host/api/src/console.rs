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
//! resizes it; the socket closes when the attach command ends.

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

    /// Bridge the terminal and a viewer's WebSocket until either ends.
    pub async fn bridge(self, socket: WebSocket) {
        let Self { pty, mut child } = self;
        let (mut from_pty, mut to_pty) = pty.into_split();
        let (mut to_viewer, mut from_viewer) = socket.split();
        let mut buf = vec![0u8; 16 * 1024];
        let reason = loop {
            tokio::select! {
                read = from_pty.read(&mut buf) => match read {
                    // EIO is how Linux reports that the attach command exited.
                    Ok(0) | Err(_) => break "the attach command ended",
                    Ok(n) => if to_viewer.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break "";
                    },
                },
                message = from_viewer.next() => match message {
                    Some(Ok(Message::Binary(bytes))) => if to_pty.write_all(&bytes).await.is_err() {
                        break "the terminal stopped taking input";
                    },
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(Control::Resize { cols, rows }) = serde_json::from_str::<Control>(&text) {
                            let _ = to_pty.resize(pty_process::Size::new(rows.clamp(1, MAX_ROWS), cols.clamp(1, MAX_COLS)));
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "",
                    Some(Ok(_)) => {}
                },
            }
        };
        if !reason.is_empty() {
            let close = CloseFrame { code: axum::extract::ws::close_code::NORMAL, reason: reason.into() };
            let _ = to_viewer.send(Message::Close(Some(close))).await;
        }
        let _ = child.kill().await;
    }

    /// Type `text` into the terminal once the attach command has drawn and
    /// settled, then end it once it has drawn what the keys did.
    ///
    /// An attach client ended right after the keys were written can die
    /// before it passes them on (zellij's does): a fixed pause there lost a
    /// line on a loaded machine, so this waits for the echo instead.
    pub async fn type_text(self, text: &str) -> Result<(), ApiError> {
        let Self { mut pty, mut child } = self;
        let typed = Self::type_when_ready(&mut pty, text).await;
        let _ = child.kill().await;
        typed
    }

    async fn type_when_ready(pty: &mut pty_process::Pty, text: &str) -> Result<(), ApiError> {
        let failed = |why: String| ApiError(StatusCode::BAD_GATEWAY, why);
        let (mut from_pty, mut to_pty) = pty.split();
        let mut buf = vec![0u8; 16 * 1024];
        match tokio::time::timeout(READY_TIMEOUT, from_pty.read(&mut buf)).await {
            // EIO is how Linux reports that the attach command exited.
            Ok(Ok(0) | Err(_)) => return Err(failed("the session's terminal closed before the text was typed".into())),
            Ok(Ok(_)) => {}
            Err(_) => {
                return Err(failed(
                    "the session's terminal did not open (its attach command drew nothing in 15 s)".into(),
                ));
            }
        }
        Self::until_quiet(&mut from_pty, &mut buf).await;
        to_pty
            .write_all(text.as_bytes())
            .await
            .map_err(|e| failed(format!("typing into the session's terminal failed: {e}")))?;
        // Keep reading until it has drawn what the keys did and gone quiet,
        // so it is not ended before it has passed them on.
        Self::until_quiet(&mut from_pty, &mut buf).await;
        Ok(())
    }

    /// Read what the terminal draws until it has drawn nothing for [`QUIET`]
    /// (or kept drawing for [`SETTLE_CAP`], or ended).
    async fn until_quiet(from_pty: &mut pty_process::ReadPty<'_>, buf: &mut [u8]) {
        let start = Instant::now();
        let mut quiet_from = start + QUIET;
        while let Ok(Ok(n)) =
            tokio::time::timeout_at(quiet_from.min(start + SETTLE_CAP).into(), from_pty.read(buf)).await
        {
            if n == 0 {
                break;
            }
            quiet_from = Instant::now() + QUIET;
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
