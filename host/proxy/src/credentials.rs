//! Real credentials, held in host memory only. [`Credentials`] asks the
//! credential sources (env, 1Password, files — in the configured priority
//! order) for a service's credential, caches the answer for a short time, and
//! hands the value to nothing but the proxy's header injection. [`Secret`]
//! never prints its value, so a stray `{:?}` cannot leak it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A boxed future, for the dyn-compatible [`Source`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A credential value. Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: String) -> Self {
        Self(value)
    }
    /// The value, for the one place that needs it (a request header).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A masked form for people: a few characters from each end at most.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        match chars.len() {
            n if n >= 16 => {
                format!("{}…{}", chars[..4].iter().collect::<String>(), chars[n - 4..].iter().collect::<String>())
            }
            n if n >= 8 => format!("…{}", chars[n - 2..].iter().collect::<String>()),
            _ => "****".into(),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A credential and the source it came from.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The value.
    pub value: Secret,
    /// The source's id (`env`, `1password`, `file`, …).
    pub source: String,
}

/// Where credentials come from (in the daemon: a credential-source component).
pub trait Source: Send + Sync {
    /// The source's id.
    fn id(&self) -> &str;
    /// The credential for `service`, or None if this source has none.
    fn get<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Option<String>, String>>;
}

/// One service's state, for `clauderon config credentials` (never the value).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CredentialStatus {
    /// The service name.
    pub service: String,
    /// Whether some source provides it.
    pub available: bool,
    /// Which source, if available.
    pub source: Option<String>,
    /// The masked value, if available.
    pub masked: Option<String>,
    /// Errors from sources asked on the way, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// How long a found credential is reused before sources are asked again.
const HIT_TTL: Duration = Duration::from_secs(300);
/// How long "no source has it" is remembered.
const MISS_TTL: Duration = Duration::from_secs(10);

type Cached = (Instant, Option<Credential>);

/// The credential sources in priority order, with a cache.
pub struct Credentials {
    sources: Vec<Arc<dyn Source>>,
    cache: Mutex<HashMap<String, Cached>>,
    /// Serialises fetches, so a burst of requests asks the sources once.
    fetching: tokio::sync::Mutex<()>,
}

impl Credentials {
    /// Credentials from `sources`, highest priority first.
    pub fn new(sources: Vec<Arc<dyn Source>>) -> Self {
        Self { sources, cache: Mutex::new(HashMap::new()), fetching: tokio::sync::Mutex::new(()) }
    }

    /// The ids of the sources, in priority order.
    pub fn source_ids(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.id().to_string()).collect()
    }

    /// The credential for `service`, from the first source that has it.
    pub async fn get(&self, service: &str) -> Option<Credential> {
        if let Some(hit) = self.cached(service) {
            return hit;
        }
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(hit) = self.cached(service) {
            return hit;
        }
        let (found, _errors) = self.fetch(service).await;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(service.to_string(), (Instant::now(), found.clone()));
        }
        found
    }

    /// Forget cached answers (after the user changed a secret).
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    /// The state of each service, asking the sources afresh.
    pub async fn status(&self, services: &[String]) -> Vec<CredentialStatus> {
        let mut out = Vec::with_capacity(services.len());
        for service in services {
            let (found, errors) = self.fetch(service).await;
            out.push(CredentialStatus {
                service: service.clone(),
                available: found.is_some(),
                source: found.as_ref().map(|c| c.source.clone()),
                masked: found.as_ref().map(|c| c.value.masked()),
                errors,
            });
        }
        out
    }

    fn cached(&self, service: &str) -> Option<Option<Credential>> {
        let cache = self.cache.lock().ok()?;
        let (at, value) = cache.get(service)?;
        let ttl = if value.is_some() { HIT_TTL } else { MISS_TTL };
        (at.elapsed() < ttl).then(|| value.clone())
    }

    async fn fetch(&self, service: &str) -> (Option<Credential>, Vec<String>) {
        let mut errors = Vec::new();
        for source in &self.sources {
            match source.get(service).await {
                Ok(Some(value)) if !value.trim().is_empty() => {
                    let credential = Credential { value: Secret::new(value), source: source.id().to_string() };
                    return (Some(credential), errors);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(source = source.id(), service, "credential source failed: {e}");
                    errors.push(format!("{}: {e}", source.id()));
                }
            }
        }
        (None, errors)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Fixed(&'static str, Option<&'static str>, AtomicUsize);

    impl Source for Fixed {
        fn id(&self) -> &str {
            self.0
        }
        fn get<'a>(&'a self, _service: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
            self.2.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match self.1 {
                    Some("fail") => Err("op is not signed in".into()),
                    other => Ok(other.map(String::from)),
                }
            })
        }
    }

    #[tokio::test]
    async fn the_first_source_with_a_value_wins_and_answers_are_cached() {
        let failing = Arc::new(Fixed("1password", Some("fail"), AtomicUsize::new(0)));
        let env = Arc::new(Fixed("env", None, AtomicUsize::new(0)));
        let file = Arc::new(Fixed("file", Some("ghp_0123456789abcdef"), AtomicUsize::new(0)));
        let creds = Credentials::new(vec![env.clone(), failing, file.clone()]);
        let got = creds.get("github").await.expect("found");
        assert_eq!((got.value.expose(), got.source.as_str()), ("ghp_0123456789abcdef", "file"));
        creds.get("github").await.expect("cached");
        assert_eq!(file.2.load(Ordering::SeqCst), 1, "second lookup came from the cache");
        let status = creds.status(&["github".into()]).await;
        assert_eq!(status[0].masked.as_deref(), Some("ghp_…cdef"));
        assert_eq!(status[0].errors, vec!["1password: op is not signed in".to_string()]);
        assert_eq!(format!("{:?}", got.value), "***");
    }
}
