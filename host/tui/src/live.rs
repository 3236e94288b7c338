//! Keeping the TUI live: the session list, then the daemon's event stream
//! from the list's own event number (`x-clauderon-event-seq`), so nothing
//! between the two is missed or applied twice; on a lost connection, the
//! same again after a pause that grows to 5 s. The daemon's actions on
//! sessions (an action of this TUI, the CLI's, the dashboard's) all arrive
//! this way.

use std::sync::Arc;
use std::time::Duration;

use clauderon_client::{Client, seg};
use clauderon_sessions::Session;
use tokio::sync::mpsc::Sender;

use crate::app::{ChatLine, Connection, Update};

/// The first pause before reconnecting; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Follow the daemon until `tx`'s receiver is gone.
pub async fn follow(client: Arc<Client>, tx: Sender<Update>) {
    let mut pause = FIRST_PAUSE;
    loop {
        let why = match follow_once(&client, &tx, &mut pause).await {
            Ok(()) => "the daemon closed the event stream".to_string(),
            Err(e) => e.root_cause().to_string(),
        };
        if tx.send(Update::Connection(Connection::Lost(why))).await.is_err() {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// One connection: the list, then events until the stream ends.
async fn follow_once(client: &Client, tx: &Sender<Update>, pause: &mut Duration) -> anyhow::Result<()> {
    let (sessions, seq) = client.sessions(true).await?;
    let mut events = client.events(Some(seq)).await?;
    if tx.send(Update::Loaded(sessions)).await.is_err() || tx.send(Update::Connection(Connection::Live)).await.is_err()
    {
        return Ok(());
    }
    *pause = FIRST_PAUSE;
    while let Some(event) = events.next().await {
        let event = event?;
        // Session events carry their number; progress lines go to the create
        // dialog; audit records are read by the audit view itself.
        let update = if event.get("seq").is_some() {
            Update::Event(event)
        } else if event["type"] == "progress" {
            Update::Progress(event["message"].as_str().unwrap_or_default().to_string())
        } else {
            continue;
        };
        if tx.send(update).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Ask for one session after an event that did not carry its new state.
/// An error is left alone: a session that is gone has its `deleted` event coming.
pub async fn fetch(client: Arc<Client>, id: String, tx: Sender<Update>) {
    let path = format!("/api/sessions/{}", seg(&id));
    if let Ok(s) = client.call_as::<Session>(reqwest::Method::GET, &path, None::<&()>).await {
        let _ = tx.send(Update::Session(Box::new(s))).await;
    }
}

/// How often an open session view asks for more of its history and audit
/// (as `clauderon history --follow` and `clauderon audit --follow`).
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Follow session `id`'s chat and audit (until aborted): the history after
/// the last cursor and the audit records after the last one, every
/// [`FOLLOW_EVERY`]. An error is shown once, then retried.
pub async fn follow_session(client: Arc<Client>, id: String, tx: Sender<Update>) {
    #[derive(serde::Deserialize)]
    struct Page {
        messages: Vec<ChatLine>,
        cursor: u64,
        transcript: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct AuditPage {
        records: Vec<crate::app::AuditRecord>,
        last_seq: u64,
    }
    let mut cursor = 0;
    let mut audit_after = 0;
    // Each failing read is said once (until it works again), then retried.
    let (mut chat_failing, mut audit_failing) = (false, false);
    let say_once = |failing: &mut bool, what: &str, e: anyhow::Error| {
        let first = !std::mem::replace(failing, true);
        first.then(|| Update::Done(Err(format!("reading the {what}: {e:#}"))))
    };
    // Sent as they come (a backlog's pages one by one).
    let send = |update: Option<Update>| {
        let tx = tx.clone();
        async move {
            match update {
                Some(update) => tx.send(update).await.is_ok(),
                None => true,
            }
        }
    };
    loop {
        // The audit: every page up to now (the first time, the whole backlog; the view keeps the newest).
        loop {
            let path = format!("/api/audit?session={}&after={audit_after}&limit=1000", seg(&id));
            let page = match client.call_as::<AuditPage>(reqwest::Method::GET, &path, None::<&()>).await {
                Ok(page) => page,
                Err(e) => {
                    if !send(say_once(&mut audit_failing, "audit", e)).await {
                        return;
                    }
                    break;
                }
            };
            audit_failing = false;
            let full = page.records.len() == 1000;
            audit_after = page.last_seq;
            let records = (!page.records.is_empty()).then(|| Update::Audit { id: id.clone(), records: page.records });
            if !send(records).await {
                return;
            }
            if !full {
                break;
            }
        }
        let path = format!("/api/sessions/{}/history?cursor={cursor}", seg(&id));
        let history = match client.call_as::<Page>(reqwest::Method::GET, &path, None::<&()>).await {
            Ok(page) => {
                chat_failing = false;
                cursor = page.cursor;
                Some(Update::History {
                    id: id.clone(),
                    messages: page.messages,
                    cursor,
                    transcript: page.transcript.is_some(),
                })
            }
            Err(e) => say_once(&mut chat_failing, "chat", e),
        };
        if !send(history).await {
            return;
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}
