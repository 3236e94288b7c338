//! The web dashboard (the single-page app in `web/`, built by Vite), embedded
//! in the binary at build time (`build.rs`) and served at `/` by the daemon's
//! API router: one binary is still the whole product.
//!
//! This crate owns how the files are served: Vite's hashed files under
//! `/assets/` are cached for a year (`immutable`); everything else, above all
//! `index.html`, is revalidated every time, so an upgrade shows at once. Each
//! file goes gzip-compressed to browsers that accept it (compressed once, at
//! build time). Any other path without a file extension is a route of the
//! app and gets `index.html`. Every answer forbids framing and sniffing and
//! carries a content security policy that allows only the daemon's own origin
//! (scripts from its files only; inline styles too, which the terminal
//! emulator injects for its colours and sizes).
//!
//! Who may fetch is decided before this: the API's guard checks `Host` and
//! `Origin` on every request. The files hold no secret; the API calls they
//! make need the browser's login cookie.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

/// One built file.
pub struct Asset {
    /// Its path under `/`, e.g. `/assets/index-1a2b3c.js`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub raw: &'static [u8],
    /// Its gzip-compressed bytes, when that is smaller.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// What every answer from here carries.
const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    // Keeps a login link's ticket out of any Referer.
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Whether this binary was built with the dashboard.
pub fn is_built() -> bool {
    !ASSETS.is_empty()
}

/// The file at `path`, or the app's `index.html` for one of its routes.
fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    if let Some(asset) = ASSETS.iter().find(|a| a.path == path) {
        return Some(asset);
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    if path.starts_with("/assets/") || last.contains('.') {
        return None;
    }
    ASSETS.iter().find(|a| a.path == "/index.html")
}

/// The answer to `method path` (a path outside `/api`).
pub fn respond(method: &Method, path: &str, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "the dashboard's files are only read (GET)\n");
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    if !is_built() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "This clauderon was built without its web dashboard (web/dist did not exist when it was \
             compiled). `./justw run` builds it; or run `just web`, then build clauderon again.\n",
        );
    }
    let Some(asset) = find(path) else {
        return text(StatusCode::NOT_FOUND, "no such file in the dashboard\n");
    };
    let gzip = asset.gzip.filter(|_| accepts_gzip(headers));
    let bytes = gzip.unwrap_or(asset.raw);
    let mut resp = Response::new(if method == Method::HEAD { Body::empty() } else { Body::from(bytes) });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    if asset.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if gzip.is_some() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    secure(resp)
}

/// Whether `Accept-Encoding` allows gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

/// A plain-text answer.
pub fn text(status: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(resp)
}

/// `resp` with the headers every page from the daemon carries.
pub fn secure(mut resp: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        resp.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, accept: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(a).expect("header"));
        }
        respond(&Method::GET, path, &headers)
    }

    #[test]
    fn hashed_assets_are_immutable_index_is_revalidated_and_routes_get_the_app() {
        if !is_built() {
            let resp = get("/", None);
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            return;
        }
        let index = get("/", Some("gzip, br"));
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(index.headers()[header::X_FRAME_OPTIONS], "DENY");
        let js = ASSETS.iter().find(|a| a.path.ends_with(".js")).expect("a script");
        let resp = get(js.path, Some("gzip"));
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        let plain = get(js.path, Some("gzip;q=0, identity"));
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::CONTENT_LENGTH], js.raw.len().to_string().as_str());
        assert_eq!(get("/sessions/some-name", None).headers()[header::CACHE_CONTROL], "no-cache", "an app route");
        assert_eq!(get("/assets/missing.js", None).status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/favicon-missing.png", None).status(), StatusCode::NOT_FOUND);
        let post = respond(&Method::POST, "/", &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
