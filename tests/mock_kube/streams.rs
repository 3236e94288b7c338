//! Streams into pods over WebSocket, as the API server relays them from the
//! kubelet: `pods/NAME/exec` and `pods/NAME/attach` (subprotocols
//! `v5.channel.k8s.io` and `v4.channel.k8s.io`) and `pods/NAME/portforward`
//! (`v4.channel.k8s.io`, as kube-rs speaks it; kubectl's port-forward
//! tunnels SPDY and is not served).
//!
//! Exec and attach: every binary message starts with its channel — 0 stdin
//! (client to server), 1 stdout, 2 stderr, 3 the end as a `Status` object
//! (`Success`, or `Failure` with reason `NonZeroExitCode` and the code as an
//! `ExitCode` cause), 4 terminal resize (`{"Width":…,"Height":…}`); in v5,
//! 255 closes a channel (`[255, 0]`: end of stdin). The command runs with
//! the Docker engine's exec (a terminal when `tty=true`); attach joins the
//! container's own process (which needs `stdin` and `tty` in its spec to
//! take input).
//!
//! Port-forward: each port asked for (`ports=P`) gets a data channel (2i)
//! and an error channel (2i+1), each opened by a message holding the port
//! (two bytes, little-endian); the data channel carries one TCP connection
//! to the pod's port on its own loopback, made from inside the pod's network
//! namespace (its first container's), as the kubelet does.

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, ResizeContainerTTYOptionsBuilder, ResizeExecOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::Body;
use crate::errors::Failure;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// What a stream request asks for.
pub enum Ask {
    /// Run `command` in a container.
    Exec { container: String, command: Vec<String>, stdin: bool, tty: bool },
    /// Join a container's process (its terminal, if it has one, is its spec's).
    Attach { container: String, stdin: bool },
    /// Connect to these ports of the pod.
    PortForward { ports: Vec<u16> },
}

impl Ask {
    /// Read `sub` (`exec`, `attach`, `portforward`) and its query (whose
    /// `command` and `ports` repeat) against the pod.
    pub fn parse(sub: &str, query: &[(String, String)], pod: &Value) -> Result<Self, Failure> {
        let all = |name: &str| query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect::<Vec<_>>();
        let flag = |name: &str| query.iter().any(|(k, v)| k == name && (v == "true" || v == "1"));
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        if sub == "portforward" {
            let ports = all("ports")
                .iter()
                .flat_map(|p| p.split(',').map(str::to_string).collect::<Vec<_>>())
                .map(|p| p.trim().parse::<u16>().map_err(|_| Failure::bad_request(format!("invalid port {p:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            if ports.is_empty() {
                return Err(Failure::bad_request("at least one port must be specified"));
            }
            return Ok(Self::PortForward { ports });
        }
        let names: Vec<&str> =
            pod["spec"]["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
        let container = match (all("container").pop(), names.as_slice()) {
            (Some(c), _) => c,
            (None, [only]) => only.to_string(),
            (None, _) => {
                return Err(Failure::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                )));
            }
        };
        if sub == "exec" {
            let command = all("command");
            if command.is_empty() {
                return Err(Failure::bad_request("you must specify at least 1 command"));
            }
            Ok(Self::Exec { container, command, stdin: flag("stdin"), tty: flag("tty") })
        } else {
            Ok(Self::Attach { container, stdin: flag("stdin") })
        }
    }
}

/// The engine id of `container` in `pod`, if it runs.
fn running_container(pod: &Value, container: &str) -> Result<String, Failure> {
    let status = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == container))
        .filter(|s| s["state"].get("running").is_some());
    status
        .and_then(|s| s["containerID"].as_str())
        .and_then(|id| id.strip_prefix("docker://"))
        .map(str::to_string)
        .ok_or_else(|| {
            Failure::bad_request(format!("unable to upgrade connection: container not found (\"{container}\")"))
        })
}

/// Answer a stream request for `sub` (`exec`, `attach`, `portforward`)
/// with its query: 101 and the WebSocket, or why not — checked in the
/// order a cluster does, so that kubectl's SPDY retry after a refusal gets
/// the same reason.
pub fn upgrade(
    req: &mut Request<Incoming>,
    sub: &str,
    query: &[(String, String)],
    pod: &Value,
) -> Result<Response<Body>, Failure> {
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()).collect::<Vec<_>>())
        .collect();
    let wanted: &[&str] =
        if sub == "portforward" { &["v4.channel.k8s.io"] } else { &["v5.channel.k8s.io", "v4.channel.k8s.io"] };
    let protocol = wanted.iter().find(|w| offered.iter().any(|o| o == *w)).map(|w| w.to_string());
    let not_served = || {
        Failure::bad_request(format!(
            "unable to upgrade connection: this mock API server serves {sub} over WebSocket with {} only, not SPDY (offered: {offered:?}){}",
            wanted.join(" or "),
            if sub == "portforward" {
                "; kubectl port-forward tunnels SPDY, kube-rs's port-forward is served"
            } else {
                ""
            }
        ))
    };
    if sub == "portforward" && protocol.is_none() {
        return Err(not_served());
    }
    let ask = Ask::parse(sub, query, pod)?;
    let target = match &ask {
        Ask::Exec { container, .. } | Ask::Attach { container, .. } => Some(running_container(pod, container)?),
        Ask::PortForward { .. } => {
            let first = pod["spec"]["containers"][0]["name"].as_str().unwrap_or_default();
            Some(running_container(pod, first)?)
        }
    };
    let protocol = protocol.ok_or_else(not_served)?;
    let key = req
        .headers()
        .get("sec-websocket-key")
        .cloned()
        .ok_or_else(|| Failure::bad_request("unable to upgrade connection: not a WebSocket request"))?;
    let upgrade = hyper::upgrade::on(req);
    let v5 = protocol.starts_with("v5");
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let result = match (ask, target) {
            (Ask::Exec { command, stdin, tty, .. }, Some(id)) => exec(ws, &id, command, stdin, tty, v5).await,
            (Ask::Attach { stdin, .. }, Some(id)) => attach(ws, &id, stdin, v5).await,
            (Ask::PortForward { ports }, Some(id)) => port_forward(ws, &id, ports).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            eprintln!("clauderon-mock-kube: a stream ended with an error: {e}");
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, header::HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    if let (Ok(accept), Ok(protocol)) = (accept.parse(), protocol.parse()) {
        h.insert("sec-websocket-accept", accept);
        h.insert("sec-websocket-protocol", protocol);
    }
    Ok(resp)
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

fn framed(channel: u8, data: &[u8]) -> Message {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    Message::binary(out)
}

/// How the server ends a stream: a normal closure, which clients read as
/// the end (without a code, kubectl reports an error).
fn normal_closure() -> CloseFrame {
    CloseFrame { code: CloseCode::Normal, reason: "".into() }
}

fn docker() -> Result<bollard::Docker, String> {
    bollard::Docker::connect_with_local_defaults().map_err(|e| format!("the Docker engine: {e}"))
}

/// The end of an exec, as channel 3 says it.
fn exit_status(code: Option<i64>, command: &[String]) -> Value {
    match code {
        Some(0) => json!({"metadata": {}, "status": "Success"}),
        Some(code) => json!({
            "metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        }),
        None => {
            json!({"metadata": {}, "status": "Failure", "message": "the command's exit code is unknown", "reason": "InternalError"})
        }
    }
}

/// What a terminal resize applies to.
enum Terminal {
    /// An exec's, by exec id.
    Exec(String),
    /// A container's own, by container id.
    Container(String),
}

impl Terminal {
    async fn resize(&self, docker: &bollard::Docker, width: u16, height: u16) {
        let (w, h) = (i32::from(width), i32::from(height));
        let _ = match self {
            Self::Exec(id) => docker.resize_exec(id, ResizeExecOptionsBuilder::default().w(w).h(h).build()).await,
            Self::Container(id) => {
                docker.resize_container_tty(id, ResizeContainerTTYOptionsBuilder::default().w(w).h(h).build()).await
            }
        };
    }
}

async fn exec(ws: Ws, id: &str, command: Vec<String>, stdin: bool, tty: bool, v5: bool) -> Result<(), String> {
    let docker = docker()?;
    let options = CreateExecOptions::<String> {
        cmd: Some(command.clone()),
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(tty),
        ..Default::default()
    };
    let created = docker.create_exec(id, options).await.map_err(|e| e.to_string())?;
    let started = docker
        .start_exec(&created.id, Some(StartExecOptions { detach: false, tty, output_capacity: None }))
        .await
        .map_err(|e| e.to_string())?;
    let StartExecResults::Attached { output, input } = started else { return Err("the exec detached".into()) };
    let ws = relay(ws, output, input, v5, &docker, &Terminal::Exec(created.id.clone())).await?;
    let code = docker.inspect_exec(&created.id).await.ok().and_then(|i| i.exit_code);
    finish(ws, exit_status(code, &command)).await
}

async fn attach(ws: Ws, id: &str, stdin: bool, v5: bool) -> Result<(), String> {
    let docker = docker()?;
    let options = AttachContainerOptionsBuilder::default().stdin(stdin).stdout(true).stderr(true).stream(true).build();
    let attached = docker.attach_container(id, Some(options)).await.map_err(|e| e.to_string())?;
    let ws = relay(ws, attached.output, attached.input, v5, &docker, &Terminal::Container(id.to_string())).await?;
    finish(ws, json!({"metadata": {}, "status": "Success"})).await
}

/// Say how the stream ended (channel 3), then close it normally.
async fn finish(mut ws: Ws, status: Value) -> Result<(), String> {
    ws.send(framed(ERROR, status.to_string().as_bytes())).await.map_err(|e| e.to_string())?;
    let _ = ws.close(Some(normal_closure())).await;
    Ok(())
}

/// Carry a process's output to the client and the client's input (and
/// terminal size) to the process, until the output ends.
async fn relay(
    ws: Ws,
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>,
    >,
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    v5: bool,
    docker: &bollard::Docker,
    terminal: &Terminal,
) -> Result<Ws, String> {
    use bollard::container::LogOutput;
    let (mut tx, mut rx) = ws.split();
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    tx.send(framed(STDOUT, &message)).await.map_err(|e| e.to_string())?;
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    tx.send(framed(STDERR, &message)).await.map_err(|e| e.to_string())?;
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => break,
            },
            message = rx.next() => match message {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
                    STDIN => { let _ = input.write_all(&data[1..]).await; }
                    RESIZE => {
                        let size: Value = serde_json::from_slice(&data[1..]).unwrap_or_default();
                        let (w, h) = (size["Width"].as_u64().unwrap_or(0), size["Height"].as_u64().unwrap_or(0));
                        let (w, h) = (u16::try_from(w).unwrap_or(u16::MAX), u16::try_from(h).unwrap_or(u16::MAX));
                        terminal.resize(docker, w, h).await;
                    }
                    CLOSE if v5 && data.get(1) == Some(&STDIN) => { let _ = input.shutdown().await; }
                    _ => {}
                },
                // The client has gone: so has the process's input, and nobody reads its output.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    let _ = input.shutdown().await;
                    return Err("the client closed the stream".into());
                }
                Some(Ok(_)) => {}
            },
        }
    }
    tx.reunite(rx).map_err(|e| e.to_string())
}

/// A TCP connection to `port` on the loopback of container `id`'s network
/// namespace: a thread enters it (as root, as the kubelet runs) and
/// connects; the socket stays in that namespace.
async fn connect_inside(id: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let pid = docker()
        .map_err(std::io::Error::other)?
        .inspect_container(id, None)
        .await
        .map_err(std::io::Error::other)?
        .state
        .and_then(|s| s.pid)
        .filter(|pid| *pid > 0)
        .ok_or_else(|| std::io::Error::other("the container is not running"))?;
    // A thread of its own, which ends here: a pooled one would stay in the namespace.
    let (done, stream) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done.send((|| {
            use std::os::fd::AsRawFd;
            let netns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
            // SAFETY: setns on this thread only, with a descriptor we hold open.
            if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            // As Go's net package does for the kubelet's.
            stream.set_nodelay(true)?;
            stream.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(stream)
        })());
    });
    tokio::net::TcpStream::from_std(stream.await.map_err(std::io::Error::other)??)
}

async fn port_forward(ws: Ws, container: &str, ports: Vec<u16>) -> Result<(), String> {
    // One port per connection is what kube-rs opens; more are served one after another's channel pair.
    let (mut tx, mut rx) = ws.split();
    let mut conns = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (data, error) = (2 * i as u8, 2 * i as u8 + 1);
        let port_bytes = port.to_le_bytes();
        tx.send(framed(data, &port_bytes)).await.map_err(|e| e.to_string())?;
        tx.send(framed(error, &port_bytes)).await.map_err(|e| e.to_string())?;
        match connect_inside(container, *port).await {
            Ok(stream) => conns.push(Some(stream.into_split())),
            Err(e) => {
                let message = format!("error forwarding port {port} to pod: dial tcp 127.0.0.1:{port}: {e}");
                tx.send(framed(error, message.as_bytes())).await.map_err(|e| e.to_string())?;
                conns.push(None);
            }
        }
    }
    let (mut readers, mut writers): (Vec<_>, Vec<_>) =
        conns.into_iter().map(|c| c.map(|(r, w)| (Some(r), Some(w))).unwrap_or((None, None))).unzip();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Message>(16);
    for (i, reader) in readers.iter_mut().enumerate() {
        let Some(mut reader) = reader.take() else { continue };
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out_tx.send(framed(2 * i as u8, &buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(out_tx);
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(message) => tx.send(message).await.map_err(|e| e.to_string())?,
                // Every connection to the pod has closed.
                None => break,
            },
            message = rx.next() => match message {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => {
                    let index = usize::from(data[0] / 2);
                    if data[0] % 2 == 0
                        && let Some(Some(writer)) = writers.get_mut(index)
                        && writer.write_all(&data[1..]).await.is_err()
                    {
                        writers[index] = None;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = tx.send(Message::Close(Some(normal_closure()))).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_code_is_said_as_kubectl_reads_it() {
        assert_eq!(exit_status(Some(0), &[])["status"], "Success");
        let failed = exit_status(Some(3), &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0], json!({"reason": "ExitCode", "message": "3"}));
    }

    #[test]
    fn exec_needs_a_command_and_names_the_container_when_there_are_several() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert!(Ask::parse("exec", &q(&[("container", "a")]), &pod).is_err(), "no command");
        let which = Ask::parse("exec", &q(&[("command", "ls")]), &pod).err().expect("two containers");
        assert!(which.1["message"].as_str().is_some_and(|m| m.contains("choose one of: [a b]")));
        match Ask::parse(
            "exec",
            &q(&[("container", "b"), ("command", "sh"), ("command", "-c"), ("stdin", "true")]),
            &pod,
        ) {
            Ok(Ask::Exec { container, command, stdin, tty }) => {
                assert_eq!(
                    (container.as_str(), command, stdin, tty),
                    ("b", vec!["sh".to_string(), "-c".into()], true, false)
                );
            }
            _ => panic!("an exec"),
        }
        match Ask::parse("portforward", &q(&[("ports", "80,443"), ("ports", "8080")]), &pod) {
            Ok(Ask::PortForward { ports }) => assert_eq!(ports, [80, 443, 8080]),
            _ => panic!("a port-forward"),
        }
    }
}
