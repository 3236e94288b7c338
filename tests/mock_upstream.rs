//! `clauderon-mock-upstream`: a local TLS server that stands in for the real
//! services tests cannot reach (GitHub, Anthropic, OpenAI, Gemini). It makes
//! its own CA and a certificate for the host names it is given, so the proxy
//! can send those hosts' traffic here (`[proxy.upstreams]`) and trust it
//! (`[proxy] extra_root_certs`).
//!
//! ```text
//! clauderon-mock-upstream --dir DIR --hosts api.github.com,github.com [--git-root REPOS]
//! ```
//! writes `DIR/ca.pem` (and its leaf, `DIR/leaf.pem` and `DIR/leaf-key.pem`,
//! for other test servers standing in for these hosts), then `DIR/addr`
//! (`127.0.0.1:PORT`) once listening,
//! and appends one JSON line per request to `DIR/requests.jsonl` (method,
//! host, path, query, headers, version, and `peer`: the port its connection
//! came from, so requests that shared a connection share it). Routes, speaking each API's documented wire format:
//! - `POST /v1/messages` — Anthropic Messages (SSE when `"stream": true`;
//!   "Run make test" first gets a `Bash` tool use, and a prompt line
//!   "Run exactly: CMD" a `Bash` tool use of CMD);
//! - `POST /v1/responses` — OpenAI Responses SSE;
//! - `…:streamGenerateContent` — Gemini SSE (`alt=sse`), `…:generateContent` —
//!   Gemini JSON ("Run make test" first gets a `functionCall` of its shell tool);
//! - git smart HTTP (`info/refs`, `git-upload-pack`, `git-receive-pack`) —
//!   the real `git http-backend` over `--git-root`; push needs Basic auth;
//! - `/sse?n=N&ms=M` — N events M ms apart; `/bytes?n=N` — N bytes;
//! - `/ws` — WebSocket echo (`echo-headers` gets the upgrade request's headers);
//! - `/echo-forms` — a hostile echo: the `authorization` header's credential
//!   (after its scheme) as it is, URL-encoded, JSON-escaped and, for Basic,
//!   decoded, one per line;
//! - `/echo-big` — a hostile echo in a large streamed body: 2 MiB of `.`
//!   with the `authorization` header, in brackets, straddling every 4 KiB
//!   boundary (so every 64 KiB one too), sent in frames of 10,007 bytes;
//! - `/close` — the request echoed, then `Connection: close` ends the connection;
//! - `POST /push/…` — a Web Push service (RFC 8030): the message (its
//!   headers and its encrypted body, base64) is appended to `DIR/push.jsonl`
//!   and answered 201 Created with a `Location`; under `/push/gone/` it is
//!   answered 410 Gone, as a service answers for an expired subscription;
//! - `/trailers` — a hostile echo in trailers: a short body, then the
//!   `authorization` header as the trailer `x-echo` (sent when asked for
//!   with `TE: trailers`);
//! - anything else — a JSON echo of the request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;

type Body = BoxBody<Bytes, Infallible>;

/// The answer every model API mock gives.
const ANSWER: &str = "Hello from the mock upstream";

struct Mock {
    log: Mutex<std::fs::File>,
    push_log: Mutex<std::fs::File>,
    git_root: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let dir = PathBuf::from(arg("--dir").ok_or("--dir is required")?);
    let hosts: Vec<String> =
        arg("--hosts").unwrap_or_default().split(',').filter(|h| !h.is_empty()).map(String::from).collect();
    std::fs::create_dir_all(&dir)?;
    let tls = tls_config(&dir, &hosts)?;
    let mock = Arc::new(Mock {
        log: Mutex::new(std::fs::OpenOptions::new().create(true).append(true).open(dir.join("requests.jsonl"))?),
        push_log: Mutex::new(std::fs::OpenOptions::new().create(true).append(true).open(dir.join("push.jsonl"))?),
        git_root: arg("--git-root").map(PathBuf::from),
    });
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(dir, tls, mock))
}

/// A CA (written to `dir/ca.pem`) and a server config with a leaf for `hosts`
/// (written to `dir/leaf.pem` and `dir/leaf-key.pem`).
fn tls_config(dir: &Path, hosts: &[String]) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "clauderon test upstream CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut names = hosts.to_vec();
    names.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(names)?.signed_by(&leaf_key, &issuer)?;
    // For other test servers that stand in for these hosts (a real GraphQL server).
    std::fs::write(dir.join("leaf.pem"), format!("{}{}", leaf.pem(), ca_cert.pem()))?;
    std::fs::write(dir.join("leaf-key.pem"), leaf_key.serialize_pem())?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn serve(
    dir: PathBuf,
    tls: Arc<rustls::ServerConfig>,
    mock: Arc<Mock>,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tmp = dir.join("addr.tmp");
    std::fs::write(&tmp, listener.local_addr()?.to_string())?;
    std::fs::rename(tmp, dir.join("addr"))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (acceptor, mock) = (acceptor.clone(), mock.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |req| {
                let mock = mock.clone();
                async move { Ok::<_, Infallible>(route(req, mock, peer.port()).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn query_param(query: &str, name: &str) -> Option<u64> {
    query.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))?.parse().ok())
}

async fn route(req: Request<Incoming>, mock: Arc<Mock>, peer: u16) -> Response<Body> {
    let head = req.method() == hyper::Method::HEAD;
    let mut resp = answer(req, mock, peer).await;
    if head {
        // A HEAD answer has headers only (hyper's HTTP/2 server resets a HEAD stream that carries a body).
        *resp.body_mut() = Full::new(Bytes::new()).boxed();
    }
    resp
}

/// The answer to `req`, which came on a connection from port `peer` (logged:
/// which requests shared a connection).
async fn answer(mut req: Request<Incoming>, mock: Arc<Mock>, peer: u16) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(String::from);
    let host = host.or_else(|| req.uri().host().map(String::from)).unwrap_or_default();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let version = format!("{:?}", req.version());
    let entry = serde_json::json!({"method": req.method().as_str(), "host": host, "path": path, "query": query, "headers": headers, "version": version, "peer": peer});
    if let Ok(mut log) = mock.log.lock() {
        let _ = writeln!(log, "{entry}");
    }
    if path == "/ws" {
        return websocket(&mut req, Reply::Echo);
    }
    if path == "/echo-forms" {
        let auth = headers.get("authorization").cloned().unwrap_or_default();
        let credential = auth.split_once(' ').map(|(_, c)| c.to_string()).unwrap_or_default();
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &credential)
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .unwrap_or_default();
        let forms = [
            credential.clone(),
            form_urlencoded::byte_serialize(credential.as_bytes()).collect(),
            credential.replace('/', "\\/"),
            decoded,
        ];
        return full(StatusCode::OK, "text/plain", forms.join("\n"));
    }
    if path == "/echo-big" {
        let echo = format!("[{}]", headers.get("authorization").cloned().unwrap_or_default());
        let mut body = Vec::with_capacity(2 << 20);
        for k in 1..=512usize {
            body.resize((k * 4096).saturating_sub(echo.len() / 2).max(body.len()), b'.');
            body.extend_from_slice(echo.as_bytes());
        }
        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
            body.chunks(10_007).map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
        return Response::new(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames))));
    }
    if path == "/close" {
        // An upstream that ends its keep-alive connection after this answer.
        let mut resp = full(StatusCode::OK, "application/json", entry.to_string());
        resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return resp;
    }
    if path == "/trailers" {
        // A hostile echo in trailers: the authorization header, after the body.
        let auth = headers.get("authorization").cloned().unwrap_or_default();
        let mut trailers = header::HeaderMap::new();
        if let Ok(v) = header::HeaderValue::from_str(&auth) {
            trailers.insert("x-echo", v);
        }
        let frames = vec![Ok(Frame::data(Bytes::from("the body, then trailers\n"))), Ok(Frame::trailers(trailers))];
        let mut resp = Response::new(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames))));
        resp.headers_mut().insert(header::TRAILER, header::HeaderValue::from_static("x-echo"));
        return resp;
    }
    if path == "/v1/responses" && req.headers().contains_key(header::UPGRADE) {
        return websocket(&mut req, Reply::Responses);
    }
    if path.contains("/info/refs") || path.ends_with("/git-upload-pack") || path.ends_with("/git-receive-pack") {
        return git(req, &mock, &path, &query).await;
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Some(id) = path.strip_prefix("/push/") {
        let record = serde_json::json!({
            "host": host,
            "path": path,
            "headers": headers,
            "body": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &body),
        });
        if let Ok(mut log) = mock.push_log.lock() {
            let _ = writeln!(log, "{record}");
        }
        if id.starts_with("gone/") {
            return full(StatusCode::GONE, "text/plain", "push subscription has unsubscribed or expired.\n");
        }
        let mut resp = full(StatusCode::CREATED, "text/plain", "");
        if let Ok(v) = header::HeaderValue::from_str(&format!("https://{host}/message/{id}")) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    match path.as_str() {
        "/v1/messages" => anthropic(&body),
        // Codex's model list (the real answer's shape; empty: it keeps its built-in models).
        "/backend-api/codex/models" => full(StatusCode::OK, "application/json", r#"{"models":[]}"#),
        "/v1/messages/count_tokens" => full(StatusCode::OK, "application/json", r#"{"input_tokens":10}"#),
        "/v1/responses" => sse(openai_events(), Duration::ZERO),
        p if p.ends_with(":streamGenerateContent") => sse(gemini_events(&body), Duration::ZERO),
        p if p.ends_with(":generateContent") => gemini_once(&body),
        "/sse" => {
            let n = query_param(&query, "n").unwrap_or(5);
            let events = (0..n).map(|i| (None, serde_json::json!({"i": i}))).collect();
            sse(events, Duration::from_millis(query_param(&query, "ms").unwrap_or(100)))
        }
        "/bytes" => {
            full(StatusCode::OK, "application/octet-stream", vec![b'x'; query_param(&query, "n").unwrap_or(0) as usize])
        }
        _ => full(StatusCode::OK, "application/json", entry.to_string()),
    }
}

/// Server-sent events: `event:` (when named) and `data:` lines, `gap` apart.
fn sse(events: Vec<(Option<&'static str>, serde_json::Value)>, gap: Duration) -> Response<Body> {
    let stream = futures_util::stream::iter(events).enumerate().then(move |(i, (name, data))| async move {
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        let mut text = String::new();
        if let Some(name) = name {
            text.push_str(&format!("event: {name}\n"));
        }
        text.push_str(&format!("data: {data}\n\n"));
        Ok::<_, Infallible>(Frame::data(Bytes::from(text)))
    });
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/event-stream"));
    resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    resp
}

/// The prompt that makes the Anthropic mock ask to run a tool first.
const TOOL_PROMPT: &str = "Run make test";
/// The shell command it asks for.
const TOOL_COMMAND: &str = "make test";

/// A prompt line starting so makes the Anthropic mock ask to run the rest of
/// the line, as a prompt-injected model would (attack tests use it).
const RUN_PROMPT: &str = "Run exactly: ";

/// The shell command the conversation asks for, while it has no tool result yet.
fn wants_tool(request: &serde_json::Value) -> Option<String> {
    let text = request.get("messages").map(|m| m.to_string()).unwrap_or_default();
    if text.contains("tool_result") {
        return None;
    }
    if text.contains(TOOL_PROMPT) {
        return Some(TOOL_COMMAND.into());
    }
    let mut texts = Vec::new();
    collect_texts(request.get("messages").unwrap_or(&serde_json::Value::Null), &mut texts);
    texts.iter().flat_map(|t| t.lines()).find_map(|l| l.trim().strip_prefix(RUN_PROMPT).map(String::from))
}

/// Every string under a `text` or `content` key.
fn collect_texts(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_texts(i, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if k == "text" || k == "content" => out.push(s.clone()),
                    other => collect_texts(other, out),
                }
            }
        }
        _ => {}
    }
}

/// Anthropic Messages: SSE when the request asks to stream, else one message.
/// The answer is [`ANSWER`]; a conversation whose user asked to "Run make test"
/// first gets a `tool_use` of Claude Code's `Bash` tool (until a tool result
/// comes back), so the agent asks for permission.
fn anthropic(body: &[u8]) -> Response<Body> {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let model = request.get("model").cloned().unwrap_or_else(|| "claude-mock".into());
    let usage = serde_json::json!({"input_tokens": 10, "output_tokens": 1});
    let message = |content: serde_json::Value, stop: serde_json::Value| {
        serde_json::json!({"id": "msg_mock01", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage})
    };
    let command = wants_tool(&request);
    let tool = command.is_some();
    let input = serde_json::json!({"command": command.unwrap_or_default(), "description": "Run the tests"});
    if request.get("stream").and_then(|s| s.as_bool()) != Some(true) {
        let (content, stop) = if tool {
            (
                serde_json::json!([{"type": "tool_use", "id": "toolu_mock01", "name": "Bash", "input": input}]),
                "tool_use",
            )
        } else {
            (serde_json::json!([{"type": "text", "text": ANSWER}]), "end_turn")
        };
        return full(StatusCode::OK, "application/json", message(content, stop.into()).to_string());
    }
    let block = |start: serde_json::Value, deltas: Vec<serde_json::Value>| {
        let mut events = vec![(
            Some("content_block_start"),
            serde_json::json!({"type": "content_block_start", "index": 0, "content_block": start}),
        )];
        events.extend(deltas.into_iter().map(|delta| {
            (
                Some("content_block_delta"),
                serde_json::json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            )
        }));
        events.push((Some("content_block_stop"), serde_json::json!({"type": "content_block_stop", "index": 0})));
        events
    };
    let (content, stop) = if tool {
        let start = serde_json::json!({"type": "tool_use", "id": "toolu_mock01", "name": "Bash", "input": {}});
        let json = input.to_string();
        let (a, b) = json.split_at(json.len() / 2);
        let deltas = [a, b].map(|part| serde_json::json!({"type": "input_json_delta", "partial_json": part}));
        (block(start, deltas.to_vec()), "tool_use")
    } else {
        let (first, rest) = ANSWER.split_at(6);
        let deltas = [first, rest].map(|t| serde_json::json!({"type": "text_delta", "text": t}));
        (block(serde_json::json!({"type": "text", "text": ""}), deltas.to_vec()), "end_turn")
    };
    let mut events = vec![
        (
            Some("message_start"),
            serde_json::json!({"type": "message_start", "message": message(serde_json::json!([]), serde_json::Value::Null)}),
        ),
        (Some("ping"), serde_json::json!({"type": "ping"})),
    ];
    events.extend(content);
    events.push((
        Some("message_delta"),
        serde_json::json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 6}}),
    ));
    events.push((Some("message_stop"), serde_json::json!({"type": "message_stop"})));
    sse(events, Duration::ZERO)
}

/// OpenAI Responses stream events for one text answer (no `[DONE]`).
fn openai_events() -> Vec<(Option<&'static str>, serde_json::Value)> {
    let item = |status: &str, text: &str| {
        serde_json::json!({"type": "message", "id": "msg_mock01", "role": "assistant", "status": status,
            "content": if text.is_empty() { serde_json::json!([]) } else { serde_json::json!([{"type": "output_text", "text": text, "annotations": []}]) }})
    };
    let response = |status: &str, output: serde_json::Value| {
        serde_json::json!({"id": "resp_mock01", "object": "response", "status": status, "model": "gpt-mock", "output": output,
            "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 6,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 16}})
    };
    let part = serde_json::json!({"type": "output_text", "text": "", "annotations": []});
    let events = [
        ("response.created", serde_json::json!({"response": response("in_progress", serde_json::json!([]))})),
        ("response.in_progress", serde_json::json!({"response": response("in_progress", serde_json::json!([]))})),
        ("response.output_item.added", serde_json::json!({"output_index": 0, "item": item("in_progress", "")})),
        (
            "response.content_part.added",
            serde_json::json!({"item_id": "msg_mock01", "output_index": 0, "content_index": 0, "part": part}),
        ),
        (
            "response.output_text.delta",
            serde_json::json!({"item_id": "msg_mock01", "output_index": 0, "content_index": 0, "delta": ANSWER}),
        ),
        (
            "response.output_text.done",
            serde_json::json!({"item_id": "msg_mock01", "output_index": 0, "content_index": 0, "text": ANSWER}),
        ),
        (
            "response.content_part.done",
            serde_json::json!({"item_id": "msg_mock01", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": ANSWER, "annotations": []}}),
        ),
        ("response.output_item.done", serde_json::json!({"output_index": 0, "item": item("completed", ANSWER)})),
        (
            "response.completed",
            serde_json::json!({"response": response("completed", serde_json::json!([item("completed", ANSWER)]))}),
        ),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, (name, mut data))| {
            data["type"] = name.into();
            data["sequence_number"] = i.into();
            (Some(name), data)
        })
        .collect()
}

/// Gemini `streamGenerateContent?alt=sse` chunks.
/// A Gemini `functionCall` part running [`TOOL_COMMAND`] with the shell tool
/// the client declared, when the conversation asks for it and has no function
/// response yet.
fn gemini_tool_call(request: &serde_json::Value) -> Option<serde_json::Value> {
    let contents = request.get("contents")?.to_string();
    if !contents.contains(TOOL_PROMPT) || contents.contains("functionResponse") {
        return None;
    }
    let declarations =
        request.get("tools")?.as_array()?.iter().filter_map(|t| t.get("functionDeclarations")?.as_array());
    let shell = declarations.flatten().find(|f| f["name"].as_str().is_some_and(|n| n.contains("shell")))?;
    let mut args = serde_json::json!({"command": TOOL_COMMAND});
    let schema = shell.get("parameters").or_else(|| shell.get("parametersJsonSchema"));
    if schema.and_then(|p| p.pointer("/properties/description")).is_some() {
        args["description"] = "Run the tests".into();
    }
    Some(serde_json::json!({"functionCall": {"name": shell["name"], "args": args}}))
}

/// Gemini `streamGenerateContent` chunks: [`ANSWER`] in two parts, or one function call.
fn gemini_events(request: &[u8]) -> Vec<(Option<&'static str>, serde_json::Value)> {
    let request: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
    let chunk = |part: serde_json::Value, finish: Option<&str>| {
        let mut candidate = serde_json::json!({"content": {"role": "model", "parts": [part]}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = f.into();
        }
        serde_json::json!({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 6, "totalTokenCount": 16}, "modelVersion": "gemini-mock"})
    };
    if let Some(call) = gemini_tool_call(&request) {
        return vec![(None, chunk(call, Some("STOP")))];
    }
    let (first, rest) = ANSWER.split_at(6);
    vec![
        (None, chunk(serde_json::json!({"text": first}), None)),
        (None, chunk(serde_json::json!({"text": rest}), Some("STOP"))),
    ]
}

/// Gemini `generateContent`: [`ANSWER`], a function call, or (for the CLI's
/// JSON-mode model router) a routing decision.
fn gemini_once(request: &[u8]) -> Response<Body> {
    let request: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
    let wants_json =
        request.pointer("/generationConfig/responseMimeType").and_then(|m| m.as_str()) == Some("application/json");
    let part = if wants_json {
        serde_json::json!({"text": serde_json::json!({"reasoning": "a simple request", "model_choice": "flash"}).to_string()})
    } else {
        gemini_tool_call(&request).unwrap_or_else(|| serde_json::json!({"text": ANSWER}))
    };
    let body = serde_json::json!({
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 6, "totalTokenCount": 16},
        "modelVersion": "gemini-mock",
    });
    full(StatusCode::OK, "application/json", body.to_string())
}

/// What a WebSocket answers each text frame with.
#[derive(Clone, Copy)]
enum Reply {
    /// The frame itself; to the text `echo-headers`, the upgrade request's
    /// headers as JSON (an upstream echoing what it was sent).
    Echo,
    /// OpenAI Responses events, one per frame, for each `response.create` (Codex's transport).
    Responses,
}

fn websocket(req: &mut Request<Incoming>, reply: Reply) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return full(StatusCode::BAD_REQUEST, "text/plain", "not a WebSocket request");
    };
    let sent: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let sent = serde_json::json!({"headers": sent}).to_string();
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let (mut tx, mut rx) = ws.split();
        while let Some(Ok(msg)) = rx.next().await {
            if msg.is_close() {
                break;
            }
            let answers = match reply {
                Reply::Echo if msg.to_text().is_ok_and(|t| t == "echo-headers") => {
                    vec![tokio_tungstenite::tungstenite::Message::text(sent.clone())]
                }
                Reply::Echo => vec![msg],
                Reply::Responses if msg.is_text() => openai_events()
                    .into_iter()
                    .map(|(_, data)| tokio_tungstenite::tungstenite::Message::text(data.to_string()))
                    .collect(),
                Reply::Responses => Vec::new(),
            };
            for answer in answers {
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::new(Full::new(Bytes::new()).boxed());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, header::HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    if let Ok(v) = accept.parse() {
        h.insert("sec-websocket-accept", v);
    }
    resp
}

/// The real `git http-backend` as a CGI program. Push needs Basic auth, as on GitHub.
async fn git(req: Request<Incoming>, mock: &Mock, path: &str, query: &str) -> Response<Body> {
    let Some(root) = &mock.git_root else {
        return full(StatusCode::NOT_FOUND, "text/plain", "no --git-root");
    };
    let pushing = path.ends_with("/git-receive-pack") || query.contains("service=git-receive-pack");
    let user = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64_user(b.trim()));
    if pushing && user.is_none() {
        let mut resp = full(StatusCode::UNAUTHORIZED, "text/plain", "authentication required to push");
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"mock\""));
        return resp;
    }
    let method = req.method().to_string();
    let header_text = |name: header::HeaderName| {
        req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };
    let (content_type, encoding) = (header_text(header::CONTENT_TYPE), header_text(header::CONTENT_ENCODING));
    let git_protocol = req.headers().get("git-protocol").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", encoding)
        .env("GIT_PROTOCOL", git_protocol)
        .env("REMOTE_USER", user.unwrap_or_default())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let Ok(mut child) = cmd.spawn() else {
        return full(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "git http-backend did not start");
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body).await;
    }
    let Ok(out) = child.wait_with_output().await else {
        return full(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "git http-backend failed");
    };
    cgi_response(&out.stdout)
}

fn base64_user(encoded: &str) -> Option<String> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    Some(String::from_utf8(decoded).ok()?.split_once(':')?.0.to_string())
}

/// Turn CGI output (headers, blank line, body) into a response.
fn cgi_response(out: &[u8]) -> Response<Body> {
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split = split.or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, gap)) = split else {
        return full(StatusCode::BAD_GATEWAY, "text/plain", "git http-backend printed no headers");
    };
    let mut resp = Response::new(Full::new(Bytes::copy_from_slice(&out[at + gap..])).boxed());
    for line in String::from_utf8_lossy(&out[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(500);
            *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(n), Ok(v)) = (header::HeaderName::from_bytes(name.as_bytes()), value.parse()) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}
