//! Web Push: the dashboard's notifications when no tab of it is open. A
//! browser subscribes through its push service (Google's, Mozilla's,
//! Apple's…) and gives the daemon the subscription (`POST
//! /api/push/subscriptions`); when a session's agent starts waiting for
//! approval or for input, the daemon encrypts a short message for each
//! subscribed browser ([`crypto`]: RFC 8291, VAPID) and posts it to the
//! subscription's endpoint (RFC 8030), whose service wakes the dashboard's
//! service worker to show it.
//!
//! What it owns: the `[push]` settings, the daemon's VAPID key
//! (`CLAUDERON_HOME/push-vapid.pk8`, 0600), the subscriptions (in the store),
//! sending, and the task that turns session events into messages.
//!
//! Boundaries: an endpoint must be `https` on a push service's host (`[push]
//! services`, by default the four browsers use), never an address or
//! `localhost`; it is sent through the proxy's upstream client, which dials
//! no inward address whatever a name resolves to; a message holds the
//! session's name and what it waits for, nothing else; a push service's
//! answer is read for its status only, within 10 s; an endpoint the service
//! says is gone (404, 410) is forgotten.

pub mod crypto;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use clauderon_proxy::upstream::UpstreamClient;
use clauderon_sessions::{AgentStatus, Event, EventKind};
use clauderon_store::Store;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, ApiResult, Errors, Q, Shared};
use crypto::Vapid;

/// `[push]`: Web Push settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// The contact push services see in each message's VAPID claim
    /// (`mailto:` or `https:`); Apple's service wants a real one.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Hosts (each with its subdomains) a subscription's endpoint may be on.
    #[serde(default = "default_services")]
    pub services: Vec<String>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self { subject: default_subject(), services: default_services() }
    }
}

fn default_subject() -> String {
    "mailto:clauderon@localhost".into()
}

/// The push services of Chrome and Edge (Google's), Firefox, Safari and Windows.
fn default_services() -> Vec<String> {
    ["fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com", "notify.windows.com"]
        .map(String::from)
        .to_vec()
}

/// At most this many browsers are subscribed (one more is refused with 409;
/// one the push service says is gone makes room).
const MAX_SUBSCRIPTIONS: usize = 50;

/// A push service has this long to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a push service keeps a message for a browser that is offline:
/// a waiting agent is news for an hour.
const TTL_SECS: u32 = 3600;

/// A browser's subscription, as its `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The push service's URL for this browser (`https`, on a host of `[push] services`).
    #[schema(pattern = "^https://", max_length = 2048)]
    pub endpoint: String,
    /// When the browser will drop the subscription (ms since the Unix epoch), if it says.
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<f64>,
    /// The browser's keys for the message's encryption.
    pub keys: SubscriptionKeys,
}

/// A subscription's keys, base64url.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key (65 bytes, uncompressed).
    pub p256dh: String,
    /// The browser's authentication secret (16 bytes).
    pub auth: String,
}

/// What `GET /api/push` tells a browser before it subscribes.
#[derive(Serialize, ToSchema)]
pub struct PushInfo {
    /// The daemon's VAPID public key, base64url: the browser's `applicationServerKey`.
    pub public_key: String,
    /// Hosts a subscription's endpoint may be on.
    pub services: Vec<String>,
    /// The browsers subscribed now.
    pub subscriptions: Vec<Subscribed>,
}

/// One subscribed browser, by its push service (an endpoint is a secret of sorts: never shown whole).
#[derive(Serialize, ToSchema)]
pub struct Subscribed {
    /// The endpoint's origin, e.g. `https://fcm.googleapis.com`.
    pub origin: String,
    /// When it subscribed, in ms since the Unix epoch.
    pub subscribed_at: u64,
}

/// A stored subscription.
#[derive(Serialize, Deserialize)]
struct Stored {
    subscription: Subscription,
    subscribed_at: u64,
}

/// What became of one message sent to one browser.
#[derive(Serialize, ToSchema, Debug)]
pub struct Delivery {
    /// The endpoint's origin.
    pub origin: String,
    /// The push service's answer (201 is delivered), if it gave one.
    pub status: Option<u16>,
    /// Why it was not delivered, if it was not.
    pub error: Option<String>,
    /// The service said the subscription is gone, so the daemon forgot it.
    pub removed: bool,
}

/// `POST /api/push/test`: what the test message did.
#[derive(Serialize, ToSchema)]
pub struct Deliveries {
    /// One per subscribed browser.
    pub deliveries: Vec<Delivery>,
}

/// The message a service worker shows.
#[derive(Serialize, Debug, Clone)]
pub struct Message {
    /// The notification's title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// One notification per tag: a newer one replaces it (the tab's own use the same).
    pub tag: String,
    /// The page a click opens.
    pub url: String,
}

impl Message {
    /// The message for an agent status, if the status is one the user is told of.
    pub fn for_event(event: &Event) -> Option<Self> {
        let EventKind::AgentStatusChanged { to } = &event.kind else { return None };
        let what = match to {
            AgentStatus::WaitingForApproval => "is waiting for your approval",
            AgentStatus::WaitingForInput => "is waiting for your next message",
            _ => return None,
        };
        Some(Self {
            title: format!("{} {what}", event.session_name),
            body: "Open the session in clauderon.".into(),
            tag: format!("clauderon-{}", event.session_id),
            url: format!("/sessions/{}", event.session_name),
        })
    }
}

/// What went wrong setting Web Push up.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("reading or writing the VAPID key {path}: {source}")]
    Key { path: String, source: std::io::Error },
    #[error(transparent)]
    Crypto(#[from] crypto::PushCryptoError),
}

/// Web Push: the key, the subscriptions and the sending.
pub struct Push {
    config: PushConfig,
    vapid: Vapid,
    store: Arc<Store>,
    client: UpstreamClient,
}

impl Push {
    /// Web Push with the VAPID key at `key_path` (made, 0600, the first time),
    /// subscriptions in `store`, sending through `client`.
    pub fn new(
        config: PushConfig,
        key_path: &Path,
        store: Arc<Store>,
        client: UpstreamClient,
    ) -> Result<Self, PushError> {
        let key_err = |source| PushError::Key { path: key_path.display().to_string(), source };
        let pkcs8 = match std::fs::read(key_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let pkcs8 = Vapid::generate()?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(key_path)
                    .map_err(key_err)?;
                file.write_all(&pkcs8).map_err(key_err)?;
                pkcs8
            }
            Err(e) => return Err(key_err(e)),
        };
        Ok(Self { config, vapid: Vapid::from_pkcs8(&pkcs8)?, store, client })
    }

    /// Run a store call off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, clauderon_store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.store.blocking(f).await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    async fn stored(&self) -> Result<Vec<Stored>, ApiError> {
        let rows = self.blocking(|s| s.push_subscriptions()).await?;
        Ok(rows.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v).ok()).collect())
    }

    /// The origin of an acceptable endpoint, or why it is refused.
    fn check_endpoint(&self, endpoint: &str) -> Result<String, String> {
        if endpoint.len() > 2048 {
            return Err("the endpoint is longer than 2,048 characters".into());
        }
        let uri: axum::http::Uri = endpoint.parse().map_err(|e| format!("the endpoint is not a URL ({e})"))?;
        if uri.scheme_str() != Some("https") {
            return Err("the endpoint must be an https URL".into());
        }
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() || bare == "localhost" || bare.ends_with(".localhost") {
            return Err(format!("the endpoint's host `{host}` is an address, not a push service"));
        }
        let listed = self.config.services.iter().any(|s| {
            let s = s.to_ascii_lowercase();
            host == s || host.ends_with(&format!(".{s}"))
        });
        if !listed {
            return Err(format!(
                "`{host}` is not a push service this daemon sends to; [push] services lists {}",
                self.config.services.join(", ")
            ));
        }
        let authority = uri.authority().map(|a| a.as_str().to_ascii_lowercase()).unwrap_or(host);
        Ok(format!("https://{authority}"))
    }

    /// Keep `sub` (replacing one with the same endpoint).
    pub async fn subscribe(&self, sub: Subscription) -> Result<(), ApiError> {
        let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
        self.check_endpoint(&sub.endpoint).map_err(bad)?;
        let p256dh = crypto::decode(&sub.keys.p256dh).ok_or_else(|| bad("keys.p256dh is not base64url".into()))?;
        let auth = crypto::decode(&sub.keys.auth).ok_or_else(|| bad("keys.auth is not base64url".into()))?;
        // A trial encryption checks the keys as sending will use them.
        crypto::encrypt(b"{}", &p256dh, &auth).map_err(|e| bad(e.to_string()))?;
        let endpoint = sub.endpoint.clone();
        let value =
            serde_json::to_vec(&Stored { subscription: sub, subscribed_at: clauderon_sessions::model::now_ms() })
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let added = self
            .blocking(move |s| {
                let known = s.push_subscriptions()?;
                if known.len() >= MAX_SUBSCRIPTIONS && !known.iter().any(|(e, _)| *e == endpoint) {
                    return Ok(false);
                }
                s.put_push_subscription(&endpoint, &value).map(|()| true)
            })
            .await?;
        if !added {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!("{MAX_SUBSCRIPTIONS} browsers are subscribed already; unsubscribe one first"),
            ));
        }
        Ok(())
    }

    /// Forget the subscription with `endpoint`; whether there was one.
    pub async fn unsubscribe(&self, endpoint: String) -> Result<bool, ApiError> {
        self.blocking(move |s| s.delete_push_subscription(&endpoint)).await
    }

    /// Send `message` to every subscribed browser, all at once.
    pub async fn send_all(&self, message: &Message) -> Result<Vec<Delivery>, ApiError> {
        let payload =
            serde_json::to_vec(message).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let stored = self.stored().await?;
        let sends = stored.iter().map(|s| self.send(&s.subscription, &payload));
        Ok(futures_util::future::join_all(sends).await)
    }

    /// Send one encrypted message to one browser.
    async fn send(&self, sub: &Subscription, payload: &[u8]) -> Delivery {
        let origin = self.check_endpoint(&sub.endpoint);
        let mut delivery =
            Delivery { origin: origin.clone().unwrap_or_default(), status: None, error: None, removed: false };
        match self.try_send(sub, origin, payload).await {
            Ok(status) => {
                delivery.status = Some(status);
                if status == 404 || status == 410 {
                    delivery.removed = self.unsubscribe(sub.endpoint.clone()).await.unwrap_or(false);
                } else if !(200..300).contains(&status) {
                    delivery.error = Some(format!("the push service answered {status}"));
                }
            }
            Err(e) => delivery.error = Some(e),
        }
        if let Some(e) = &delivery.error {
            tracing::warn!("web push to {}: {e}", delivery.origin);
        }
        delivery
    }

    async fn try_send(
        &self,
        sub: &Subscription,
        origin: Result<String, String>,
        payload: &[u8],
    ) -> Result<u16, String> {
        // Checked again: the config may have changed since it subscribed.
        let origin = origin?;
        let p256dh = crypto::decode(&sub.keys.p256dh).unwrap_or_default();
        let auth = crypto::decode(&sub.keys.auth).unwrap_or_default();
        let body = crypto::encrypt(payload, &p256dh, &auth).map_err(|e| e.to_string())?;
        let expires = clauderon_sessions::model::now_ms() / 1000 + 12 * 3600;
        let authorization =
            self.vapid.authorization(&origin, &self.config.subject, expires).map_err(|e| e.to_string())?;
        let body = http_body_util::Full::new(axum::body::Bytes::from(body)).map_err(|never| match never {}).boxed();
        let request = axum::http::Request::post(&sub.endpoint)
            .header("ttl", TTL_SECS.to_string())
            .header("urgency", "high")
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("authorization", authorization)
            .body(body)
            .map_err(|e| format!("building the request: {e}"))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(e)) => Err(format!("sending failed: {e}")),
            Err(_) => Err(format!("no answer within {} s", SEND_TIMEOUT.as_secs())),
        }
    }

    /// Send a message for each event that calls for one, until the events end.
    pub fn spawn_notifier(self: Arc<Self>, mut events: broadcast::Receiver<Event>) {
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let Some(message) = Message::for_event(&event) else { continue };
                        let push = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = push.send_all(&message).await {
                                tracing::warn!("web push: {}", e.1);
                            }
                        });
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!("web push missed {n} events"),
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }
}

/// The push service's endpoint of a subscription to forget.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EndpointQuery {
    /// The subscription's endpoint, as the browser gave it.
    endpoint: String,
}

/// What a browser needs to subscribe (the daemon's VAPID public key), and
/// which browsers are subscribed.
#[utoipa::path(get, path = "/api/push", responses((status = 200, body = PushInfo), Errors))]
pub(crate) async fn push_info(State(state): State<Shared>) -> ApiResult<PushInfo> {
    let push = &state.push;
    let subscriptions = push
        .stored()
        .await?
        .into_iter()
        .map(|s| Subscribed {
            origin: push.check_endpoint(&s.subscription.endpoint).unwrap_or_else(|e| format!("(refused: {e})")),
            subscribed_at: s.subscribed_at,
        })
        .collect();
    Ok(Json(PushInfo { public_key: push.vapid.public_key(), services: push.config.services.clone(), subscriptions }))
}

/// Subscribe a browser: its `PushSubscription` as JSON. 400 when the
/// endpoint is not `https` on a host of `[push] services` or the keys are not
/// a P-256 key and a 16-byte secret; 409 at 50 browsers.
#[utoipa::path(post, path = "/api/push/subscriptions", request_body = Subscription, responses((status = 200, body = PushInfo), Errors))]
pub(crate) async fn subscribe(
    State(state): State<Shared>,
    body: Result<Json<Subscription>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<PushInfo> {
    let Json(sub) = body?;
    state.push.subscribe(sub).await?;
    push_info(State(state)).await
}

/// Unsubscribe the browser with this endpoint. 404 when none has it.
#[utoipa::path(delete, path = "/api/push/subscriptions", params(EndpointQuery), responses((status = 200, body = PushInfo), Errors))]
pub(crate) async fn unsubscribe(State(state): State<Shared>, Q(query): Q<EndpointQuery>) -> ApiResult<PushInfo> {
    if !state.push.unsubscribe(query.endpoint).await? {
        return Err(ApiError(StatusCode::NOT_FOUND, "no browser is subscribed with that endpoint".into()));
    }
    push_info(State(state)).await
}

/// Send a test message to every subscribed browser now, and say what each
/// push service answered.
#[utoipa::path(post, path = "/api/push/test", responses((status = 200, body = Deliveries), Errors))]
pub(crate) async fn test_message(State(state): State<Shared>) -> ApiResult<Deliveries> {
    let message = Message {
        title: "clauderon notifications work".into(),
        body: "You will be told here when a session's agent waits for you.".into(),
        tag: "clauderon-test".into(),
        url: "/".into(),
    };
    Ok(Json(Deliveries { deliveries: state.push.send_all(&message).await? }))
}
