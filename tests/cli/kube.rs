//! The local Kubernetes API server the Kubernetes backend's tests run
//! against (`clauderon-mock-kube`), checked with the real `kubectl`: if
//! kubectl can apply, get, describe, wait for, read the logs of and delete
//! through it, and reads its errors as a cluster's, it speaks the API's wire
//! format. Its pods really run, in the local Docker engine.

use std::process::{Command, Stdio};

use clauderon_tests::{TestCluster, write_json};

use serde_json::{Value, json};

fn pod(name: &str, namespace: &str, session: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "clauderon", "clauderon.dev/session": session}},
        "spec": {"containers": [{"name": "agent", "image": "clauderon-session:latest", "command": ["sleep", "infinity"]}]}
    })
}

#[test]
fn kubectl_applies_gets_describes_and_deletes_through_the_mock_and_reads_its_errors() {
    let kube = TestCluster::mock(&[]);

    // Create, then find by label.
    assert_eq!(kube.apply("p1.json", &pod("p1", "default", "s1")).trim(), "pod/p1 created");
    assert_eq!(kube.ok(&["get", "pods", "-l", "clauderon.dev/session=s1", "-o", "name"]).trim(), "pod/p1");
    assert_eq!(kube.ok(&["get", "pods", "-l", "clauderon.dev/session in (s2,s3)", "-o", "name"]).trim(), "");
    let stored: Value = serde_json::from_str(&kube.ok(&["get", "pod", "p1", "-o", "json"])).expect("a pod as JSON");
    let uid = stored["metadata"]["uid"].as_str().expect("a uid").to_string();
    let rv: u64 =
        stored["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).expect("a resourceVersion");
    assert_eq!(stored["status"]["phase"], "Pending");
    assert_eq!(stored["metadata"]["namespace"], "default");

    // Apply a change: the same object, a new version.
    let mut changed = pod("p1", "default", "s1");
    changed["metadata"]["labels"]["clauderon.dev/state"] = json!("stopped");
    assert_eq!(kube.apply("p1.json", &changed).trim(), "pod/p1 configured");
    let stored: Value = serde_json::from_str(&kube.ok(&["get", "pod", "p1", "-o", "json"])).expect("json");
    assert_eq!(stored["metadata"]["labels"]["clauderon.dev/state"], "stopped");
    assert_eq!(stored["metadata"]["uid"], uid.as_str(), "the same object");
    let rv2: u64 = stored["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).expect("rv");
    assert!(rv2 > rv, "a new resourceVersion: {rv} then {rv2}");

    // describe finds the pod's events by field selector (involvedObject.*).
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "p1.pulling", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default", "uid": uid, "apiVersion": "v1"},
        "reason": "Noted", "message": "an event the test applied", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1
    });
    kube.apply("event.json", &event);
    let other = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "p2.failed", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p2", "namespace": "default", "uid": "another", "apiVersion": "v1"},
        "reason": "Failed", "message": "an event of another pod", "type": "Warning", "count": 1
    });
    kube.apply("other-event.json", &other);
    let described = kube.ok(&["describe", "pod", "p1"]);
    assert!(described.contains("p1") && described.contains("clauderon.dev/session=s1"), "{described}");
    assert!(described.contains("an event the test applied"), "its event: {described}");
    assert!(!described.contains("another pod"), "only its own events: {described}");

    // The API's errors, as kubectl reads them.
    let file = kube.dir.path().join("p1.json");
    let exists = kube.fails(&["create", "-f", &file.to_string_lossy()]);
    assert!(exists.contains("AlreadyExists"), "{exists}");
    write_json(&file, &pod("p1", "elsewhere", "s1"));
    let no_namespace = kube.fails(&["create", "-f", &file.to_string_lossy()]);
    assert!(no_namespace.contains("NotFound") && no_namespace.contains("elsewhere"), "{no_namespace}");
    write_json(&file, &pod("Bad_Name", "default", "s1"));
    let invalid = kube.fails(&["create", "-f", &file.to_string_lossy()]);
    assert!(invalid.contains("is invalid") && invalid.contains("metadata.name"), "{invalid}");

    // Namespaces, another kind's group, a list across namespaces.
    // kubectl's generators (`create namespace`) send protobuf, which the mock does not speak, and says so.
    assert!(kube.fails(&["create", "namespace", "elsewhere"]).contains("(UnsupportedMediaType)"));
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}});
    assert_eq!(kube.apply("ns.json", &namespace).trim(), "namespace/elsewhere created");
    kube.apply("p2.json", &pod("p2", "elsewhere", "s2"));
    let all = kube.ok(&[
        "get",
        "pods",
        "--all-namespaces",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
    ]);
    assert_eq!(all.split_whitespace().collect::<Vec<_>>(), ["default/p1", "elsewhere/p2"]);
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "s1-egress", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"clauderon.dev/session": "s1"}}, "policyTypes": ["Egress"], "egress": []}
    });
    assert_eq!(kube.apply("policy.json", &policy).trim(), "networkpolicy.networking.k8s.io/s1-egress created");

    // Delete: gone, and said so the API's way.
    assert_eq!(kube.ok(&["delete", "pod", "p1"]).trim(), "pod \"p1\" deleted");
    let gone = kube.fails(&["get", "pod", "p1"]);
    assert!(gone.contains("(NotFound)") && gone.contains("pods \"p1\" not found"), "{gone}");
    assert_eq!(kube.ok(&["delete", "namespace", "elsewhere"]).trim(), "namespace \"elsewhere\" deleted");
    assert!(
        kube.fails(&["get", "pod", "p2", "-n", "elsewhere"]).contains("NotFound"),
        "a namespace's objects go with it"
    );
}

/// The image the pods run: the Docker backend's session image, built by `./justw test`.
const IMAGE: &str = "clauderon/agent:latest";

/// A pod of `script` run by `sh`, hardened as the backend's will be.
fn script_pod(name: &str, script: &str, policy: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "runner"}},
        "spec": {
            "restartPolicy": policy,
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": true},
            "containers": [{
                "name": "main", "image": IMAGE, "command": ["sh", "-c", script],
                "env": [{"name": "GREETING", "value": "hello from the pod"}],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The first container status of a pod, once `ready` says so.
fn container_once(kube: &TestCluster, pod: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    clauderon_tests::eventually(60, what, || {
        let status = kube.object(&["pod", pod])["status"]["containerStatuses"][0].clone();
        ready(&status).then_some(status)
    })
}

#[test]
fn pods_run_in_docker_and_kubectl_waits_for_them_reads_their_logs_and_deletes_them() {
    let mut kube = TestCluster::mock(&[]);

    // A pod mounting a claim that does not exist yet waits, unschedulable.
    let mut runner = script_pod(
        "runner",
        "echo \"$GREETING\"; echo \"uid=$(id -u)\"; touch /work/made && echo wrote /work/made; exec sleep infinity",
        "Always",
    );
    runner["spec"]["securityContext"]["fsGroup"] = json!(1000);
    runner["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "work", "mountPath": "/work"}]);
    runner["spec"]["volumes"] = json!([{"name": "work", "persistentVolumeClaim": {"claimName": "work"}}]);
    kube.apply("runner.json", &runner);
    let waiting = clauderon_tests::eventually(10, "the pod unschedulable", || {
        let pod = kube.object(&["pod", "runner"]);
        (pod["status"]["conditions"][0]["reason"] == "Unschedulable").then_some(pod)
    });
    assert_eq!(waiting["status"]["phase"], "Pending");
    assert!(kube.ok(&["describe", "pod", "runner"]).contains("persistentvolumeclaim \"work\" not found"));

    // The claim arrives, is bound, and the pod runs: kubectl waits for it (a watch).
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "work"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    });
    kube.apply("claim.json", &claim);
    kube.ok(&["wait", "--for=condition=Ready", "pod/runner", "--timeout=60s"]);
    assert_eq!(kube.object(&["pvc", "work"])["status"]["phase"], "Bound");
    let pod = kube.object(&["pod", "runner"]);
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(pod["status"]["podIP"], "127.0.0.1");
    assert_eq!(pod["spec"]["nodeName"], "mock-node");
    let logs = clauderon_tests::eventually(20, "the pod's output", || {
        let logs = kube.ok(&["logs", "runner"]);
        logs.contains("wrote /work/made").then_some(logs)
    });
    assert!(logs.contains("hello from the pod") && logs.contains("uid=1000"), "{logs}");
    assert_eq!(kube.ok(&["logs", "runner", "--tail=1"]).trim(), "wrote /work/made");

    // It is a Docker container, run as the spec says.
    let uid = pod["metadata"]["uid"].as_str().expect("uid").to_string();
    let id = docker(&["ps", "-q", "--filter", &format!("label=dev.clauderon.mock-kube.pod={uid}")]);
    assert_eq!(id.lines().count(), 1, "one running container: {id}");
    let inspected: Value = serde_json::from_str(&docker(&["inspect", &id])).expect("inspect");
    let container = &inspected[0];
    assert_eq!(container["HostConfig"]["NetworkMode"], "none", "a network of its own, only a loopback");
    assert_eq!(container["Config"]["User"], "1000:1000");
    assert_eq!(container["HostConfig"]["CapDrop"], json!(["ALL"]));
    assert!(container["HostConfig"]["SecurityOpt"].to_string().contains("no-new-privileges"));
    let instance = container["Config"]["Labels"]["dev.clauderon.mock-kube"].as_str().expect("instance").to_string();
    let described = kube.ok(&["describe", "pod", "runner"]);
    for line in [
        "Successfully assigned default/runner to mock-node",
        "already present on machine",
        "Created container: main",
        "Started container main",
    ] {
        assert!(described.contains(line), "{line:?} in {described}");
    }

    // A container that exits is restarted after a back-off, as a cluster does.
    kube.apply("crasher.json", &script_pod("crasher", "echo dying; exit 3", "Always"));
    let crashed =
        container_once(&kube, "crasher", "CrashLoopBackOff", |s| s["state"]["waiting"]["reason"] == "CrashLoopBackOff");
    assert_eq!(crashed["lastState"]["terminated"]["exitCode"], 3);
    assert_eq!(crashed["restartCount"], 1);
    assert!(kube.ok(&["logs", "crasher"]).contains("dying"));
    assert_eq!(kube.object(&["pod", "crasher"])["status"]["phase"], "Running");
    // The kubelet's status is written through the status subresource; so can a test, e.g. an eviction.
    kube.ok(&[
        "patch",
        "pod",
        "crasher",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Failed","reason":"Evicted","message":"The node was low on resource: memory."}}"#,
    ]);
    let evicted = kube.object(&["pod", "crasher"]);
    assert_eq!(
        (evicted["status"]["phase"].as_str(), evicted["status"]["reason"].as_str()),
        (Some("Failed"), Some("Evicted"))
    );

    // One that finishes under restartPolicy Never: Succeeded.
    kube.apply("once.json", &script_pod("once", "echo done", "Never"));
    let done = container_once(&kube, "once", "the container terminated", |s| s["state"].get("terminated").is_some());
    assert_eq!(
        (done["state"]["terminated"]["exitCode"].as_i64(), done["state"]["terminated"]["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    assert_eq!(kube.object(&["pod", "once"])["status"]["phase"], "Succeeded");

    // One over its memory limit: OOMKilled.
    let mut hungry = script_pod("hungry", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", "Never");
    hungry["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "16Mi"}});
    kube.apply("hungry.json", &hungry);
    let killed = container_once(&kube, "hungry", "the container killed", |s| s["state"].get("terminated").is_some());
    assert_eq!(killed["state"]["terminated"]["reason"], "OOMKilled", "{killed}");
    assert_eq!(kube.object(&["pod", "hungry"])["status"]["phase"], "Failed");

    // An image not on the machine is never pulled.
    let mut missing = script_pod("missing", "true", "Always");
    missing["spec"]["containers"][0]["image"] = json!("clauderon/no-such-image:1");
    kube.apply("missing.json", &missing);
    let pulling =
        container_once(&kube, "missing", "ImagePullBackOff", |s| s["state"]["waiting"]["reason"] == "ImagePullBackOff");
    assert_eq!(pulling["state"]["waiting"]["message"], "Back-off pulling image \"clauderon/no-such-image:1\"");
    assert!(kube.ok(&["describe", "pod", "missing"]).contains("does not pull images"));
    let no_logs = kube.fails(&["logs", "missing"]);
    assert!(no_logs.contains("is waiting to start"), "{no_logs}");

    // runAsNonRoot is checked against the image's user (root here) as the kubelet does.
    let mut rooted = script_pod("rooted", "true", "Always");
    rooted["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    kube.apply("rooted.json", &rooted);
    let refused = container_once(&kube, "rooted", "CreateContainerConfigError", |s| {
        s["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    });
    assert!(
        refused["state"]["waiting"]["message"].as_str().is_some_and(|m| m.contains("image will run as root")),
        "{refused}"
    );

    // A pod's spec cannot change.
    let mut respec = script_pod("once", "echo changed", "Never");
    respec["metadata"]["labels"]["x"] = json!("y");
    let file = kube.dir.path().join("respec.json");
    write_json(&file, &respec);
    assert!(kube.fails(&["replace", "-f", &file.to_string_lossy()]).contains("pod updates may not change fields"));

    // Deleting a pod removes its container.
    kube.ok(&["delete", "pod", "runner"]);
    clauderon_tests::eventually(30, "the container removed", || {
        docker(&["ps", "-aq", "--filter", &format!("label=dev.clauderon.mock-kube.pod={uid}")]).is_empty().then_some(())
    });

    // Stopping the server removes everything it made.
    let label = format!("label=dev.clauderon.mock-kube={instance}");
    assert!(!docker(&["ps", "-aq", "--filter", &label]).is_empty(), "the other pods' containers exist");
    assert!(!docker(&["volume", "ls", "-q", "--filter", &label]).is_empty(), "the claim's volume exists");
    kube.stop();
    assert_eq!(docker(&["ps", "-aq", "--filter", &label]), "", "no container left");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &label]), "", "no volume left");
}

/// The watch events in a body: (type, name, resourceVersion).
fn events(body: &str) -> Vec<(String, String, u64)> {
    body.lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let object = &event["object"];
            let rv = object["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
            (
                event["type"].as_str().unwrap_or("").to_string(),
                object["metadata"]["name"].as_str().unwrap_or("").to_string(),
                rv,
            )
        })
        .collect()
}

fn policy(name: &str, tier: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": {"tier": tier}},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]}
    })
}

#[test]
fn watches_stream_changes_resume_from_a_version_follow_selectors_and_expire() {
    let kube = TestCluster::mock(&["--history", "6"]);
    let path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies";
    let version = |name: &str| -> u64 {
        kube.object(&["networkpolicy", name])["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("rv")
    };
    kube.apply("a.json", &policy("a", "front"));
    let after_a = version("a");
    kube.apply("b.json", &policy("b", "back"));

    // From a version: what came after it; from nothing: everything, as ADDED.
    let resumed = events(&kube.curl(&format!("{path}?watch=1&resourceVersion={after_a}&timeoutSeconds=1"), 10));
    assert_eq!(resumed.iter().map(|(t, n, _)| (t.as_str(), n.as_str())).collect::<Vec<_>>(), [("ADDED", "b")]);
    let fresh = events(&kube.curl(&format!("{path}?watch=1&timeoutSeconds=1"), 10));
    assert_eq!(
        fresh.iter().map(|(t, n, _)| (t.as_str(), n.as_str())).collect::<Vec<_>>(),
        [("ADDED", "a"), ("ADDED", "b")]
    );

    // Live, with a selector: an object that starts matching is ADDED, one that stops is DELETED;
    // bookmarks carry the version caught up to. kubectl get -w sees the same changes.
    let url = format!(
        "http://{}{path}?watch=1&labelSelector=tier%3Dmiddle&allowWatchBookmarks=true&timeoutSeconds=7",
        kube.addr()
    );
    let live =
        Command::new("curl").args(["-sN", "--max-time", "15", &url]).stdout(Stdio::piped()).spawn().expect("curl");
    let kubectl_watch = Command::new("timeout")
        .args(["6", "kubectl", "--kubeconfig"])
        .arg(kube.dir.path().join("kubeconfig"))
        .args(["get", "networkpolicies", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl get -w");
    std::thread::sleep(std::time::Duration::from_secs(1));
    kube.apply("a.json", &policy("a", "middle"));
    kube.apply("a.json", &policy("a", "top"));
    kube.ok(&["delete", "networkpolicy", "b"]);
    let last = version("a");
    let live = String::from_utf8_lossy(&live.wait_with_output().expect("curl").stdout).into_owned();
    let live = events(&live);
    let changes: Vec<(&str, &str)> =
        live.iter().filter(|(t, ..)| t != "BOOKMARK").map(|(t, n, _)| (t.as_str(), n.as_str())).collect();
    assert_eq!(changes, [("ADDED", "a"), ("DELETED", "a")], "b never matched: {live:?}");
    let bookmark = live.iter().find(|(t, ..)| t == "BOOKMARK").expect("a bookmark within 7 s");
    assert!(bookmark.2 >= last, "the bookmark is at the newest version ({last}): {bookmark:?}");
    // Its table: EVENT NAME AGE.
    let seen = String::from_utf8_lossy(&kubectl_watch.wait_with_output().expect("kubectl").stdout).into_owned();
    let rows: Vec<Vec<&str>> = seen.lines().map(|l| l.split_whitespace().take(2).collect()).collect();
    for row in [["ADDED", "a"], ["ADDED", "b"], ["MODIFIED", "a"], ["DELETED", "b"]] {
        assert!(rows.iter().any(|r| r == &row), "{row:?} in kubectl get -w's output: {seen}");
    }

    // sendInitialEvents: everything, then a bookmark marking the end of it.
    let initial = kube.curl(&format!("{path}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"), 10);
    let end: Value = serde_json::from_str(initial.lines().last().expect("lines")).expect("json");
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");

    // A version the history no longer holds: 410 Expired, in the stream as the API sends it.
    for i in 0..6 {
        kube.apply("c.json", &policy("c", &format!("t{i}")));
    }
    let expired = kube.curl(&format!("{path}?watch=1&resourceVersion={after_a}&timeoutSeconds=1"), 10);
    let event: Value = serde_json::from_str(expired.trim()).unwrap_or_else(|e| panic!("{e}: {expired}"));
    assert_eq!(event["type"], "ERROR");
    assert_eq!((event["object"]["code"].as_u64(), event["object"]["reason"].as_str()), (Some(410), Some("Expired")));
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Open a port-forward WebSocket to `pod`'s `port`, as kube-rs does.
fn port_forward(kube: &TestCluster, pod: &str, port: u16) -> tungstenite::WebSocket<std::net::TcpStream> {
    let addr = kube.addr();
    let stream = std::net::TcpStream::connect(&addr).expect("connect");
    let request = tungstenite::http::Request::builder()
        .uri(format!("ws://{addr}/api/v1/namespaces/default/pods/{pod}/portforward?ports={port}"))
        .header("Host", &addr)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", tungstenite::handshake::client::generate_key())
        .header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        .body(())
        .expect("request");
    let (ws, response) = tungstenite::client::client(request, stream).expect("the WebSocket handshake");
    assert_eq!(response.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
    ws
}

/// The next binary message: (channel, data).
fn next_frame(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Option<(u8, Vec<u8>)> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Binary(data)) if !data.is_empty() => return Some((data[0], data[1..].to_vec())),
            Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[test]
fn kubectl_execs_into_and_attaches_to_a_running_pod_and_a_websocket_client_port_forwards_to_it() {
    let kube = TestCluster::mock(&[]);
    let port = free_port();
    let mut pod = script_pod(
        "box",
        &format!(
            "exec node -e \"require('http').createServer((q, s) => s.end('hello through port-forward ' + q.url)).listen({port}, '127.0.0.1'); process.stdin.on('data', d => process.stdout.write('got ' + d))\""
        ),
        "Always",
    );
    pod["spec"]["containers"][0]["stdin"] = json!(true);
    kube.apply("box.json", &pod);
    kube.ok(&["wait", "--for=condition=Ready", "pod/box", "--timeout=60s"]);

    // exec: output, errors, exit codes and input, over WebSocket v5.
    let out = kube.kubectl(&["exec", "box", "--", "sh", "-c", "echo out; echo err >&2; id -u"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n1000\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    let failed = kube.kubectl(&["exec", "box", "--", "sh", "-c", "exit 7"]);
    assert_eq!(failed.status.code(), Some(7), "kubectl exits with the command's code");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("command terminated with exit code 7"));
    let mut piped = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kube.dir.path().join("kubeconfig"))
        .args(["exec", "-i", "box", "--", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl exec -i");
    std::io::Write::write_all(&mut piped.stdin.take().expect("stdin"), b"piped in\n").expect("write");
    let piped = piped.wait_with_output().expect("kubectl");
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "piped in\ndone\n");

    // With a terminal (script gives kubectl one): its size reaches the command (kubectl sends
    // it once connected, while the command already runs, as with a cluster: hence the sleep).
    let tty = Command::new("script")
        .args([
            "-qc",
            &format!(
                "stty cols 91 rows 27; kubectl --kubeconfig {} exec -it box -- sh -c 'sleep 1; tty; stty size'",
                kube.dir.path().join("kubeconfig").display()
            ),
            "/dev/null",
        ])
        .output()
        .expect("script");
    let tty = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.contains("/dev/pts/") && tty.contains("27 91"), "{tty}");

    // attach: input to the container's own process, its output back (kubectl stays attached
    // after its input ends, as with a cluster, while the process runs: hence the timeout).
    let attach = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(echo hi; sleep 2) | timeout 5 kubectl --kubeconfig {} attach -i box",
            kube.dir.path().join("kubeconfig").display()
        ))
        .output()
        .expect("kubectl attach");
    assert!(String::from_utf8_lossy(&attach.stdout).contains("got hi"), "{attach:?}");

    // A container that does not run cannot be streamed into.
    let missing = kube.fails(&["exec", "box", "-c", "nope", "--", "true"]);
    assert!(missing.contains("nope"), "{missing}");

    // port-forward (kube-rs's protocol): the port on each channel first, then the connection's bytes.
    let mut ws = port_forward(&kube, "box", port);
    let le = port.to_le_bytes().to_vec();
    assert_eq!(next_frame(&mut ws), Some((0, le.clone())), "the data channel opens with the port");
    assert_eq!(next_frame(&mut ws), Some((1, le)), "the error channel opens with the port");
    ws.send(tungstenite::Message::binary([&[0u8][..], b"GET /through HTTP/1.0\r\n\r\n"].concat())).expect("send");
    let mut response = Vec::new();
    while let Some((channel, data)) = next_frame(&mut ws) {
        assert_eq!(channel, 0, "{}", String::from_utf8_lossy(&data));
        response.extend(data);
    }
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("hello through port-forward /through"),
        "{response}"
    );
    // To a port nothing listens on: said on the error channel.
    let closed = free_port();
    let mut ws = port_forward(&kube, "box", closed);
    let frames: Vec<(u8, Vec<u8>)> = std::iter::from_fn(|| next_frame(&mut ws)).collect();
    let error = frames.iter().find(|(channel, data)| *channel == 1 && data.len() > 2).expect("an error message");
    assert!(String::from_utf8_lossy(&error.1).contains(&format!("error forwarding port {closed}")), "{frames:?}");
}

/// Names of the Sandboxes a warm pool has now (`hash`: its label value).
fn pool_members(kube: &TestCluster, hash: &str) -> Vec<String> {
    let out = kube.ok(&["get", "sandboxes", "-l", &format!("agents.x-k8s.io/warm-pool-sandbox={hash}"), "-o", "name"]);
    let mut names: Vec<String> =
        out.lines().map(|l| l.trim_start_matches("sandbox.agents.x-k8s.io/").to_string()).collect();
    names.sort();
    names
}

/// A claim's `Ready` condition as `STATUS REASON`.
fn claim_ready(kube: &TestCluster, claim: &str) -> String {
    kube.condition(&["sandboxclaim", claim], "Ready")
}

/// agent-sandbox's extensions as the mock runs them (`--agent-sandbox`),
/// through kubectl: a template's shared network policy (upstream's default
/// lets pods out to the internet, which is why clauderon's templates must
/// not take it), a warm pool's ready Sandboxes, a claim adopting one (its
/// pod runs on under the same name with the claim's metadata, and the pool
/// makes another), the reasons a claim gets nothing, a deleted Sandbox
/// replaced, and what goes with a claim and a pool.
#[test]
fn a_warm_pool_keeps_ready_sandboxes_and_a_claim_adopts_one_whose_pod_runs_on() {
    let kube = TestCluster::mock(&["--agent-sandbox"]);
    let pod_template = json!({
        "metadata": {"labels": {"app": "warm"}},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": true},
            "containers": [{
                "name": "main", "image": IMAGE, "command": ["sleep", "infinity"],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    });
    let mut template = json!({
        "apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
        "metadata": {"name": "warm"},
        "spec": {
            "podTemplate": pod_template,
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    });
    assert_eq!(
        kube.apply("template.json", &template).trim(),
        "sandboxtemplate.extensions.agents.x-k8s.io/warm created"
    );
    // Upstream's default for a Managed template: out to the whole internet.
    let shared = clauderon_tests::eventually(10, "the template's policy", || {
        let out = kube.kubectl(&["get", "networkpolicy", "warm-network-policy", "-o", "json"]);
        out.status.success().then(|| serde_json::from_slice::<Value>(&out.stdout).expect("json"))
    });
    assert_eq!(shared["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"], "0.0.0.0/0");
    let hash =
        kube.object(&["sandboxtemplate", "warm"])["metadata"]["labels"]["agents.x-k8s.io/sandbox-template-ref-hash"]
            .as_str()
            .expect("the template's hash label")
            .to_string();
    assert_eq!(
        shared["spec"]["podSelector"]["matchLabels"]["agents.x-k8s.io/sandbox-template-ref-hash"],
        hash.as_str()
    );
    // Unmanaged: no policy of the template's.
    template["spec"]["networkPolicyManagement"] = json!("Unmanaged");
    kube.apply("template.json", &template);
    clauderon_tests::eventually(10, "the template's policy gone", || {
        (!kube.kubectl(&["get", "networkpolicy", "warm-network-policy"]).status.success()).then_some(())
    });

    let pool = json!({
        "apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
        "metadata": {"name": "warm"},
        "spec": {"replicas": 2, "sandboxTemplateRef": {"name": "warm"}}
    });
    kube.apply("pool.json", &pool);
    let status = clauderon_tests::eventually(60, "two ready Sandboxes in the pool", || {
        let pool = kube.object(&["swp", "warm"]);
        (pool["status"]["readyReplicas"] == 2).then_some(pool["status"].clone())
    });
    let selector = status["selector"].as_str().expect("a selector").to_string();
    let pool_hash = selector.rsplit('=').next().expect("a hash").to_string();
    let warm = pool_members(&kube, &pool_hash);
    assert_eq!(warm.len(), 2, "{warm:?}");
    assert!(warm.iter().all(|n| n.starts_with("warm-")), "{warm:?}");
    let first = kube.object(&["pod", &warm[0]]);
    assert_eq!(first["metadata"]["labels"]["agents.x-k8s.io/warm-pool-sandbox"], pool_hash.as_str());
    assert_eq!(first["metadata"]["labels"]["agents.x-k8s.io/sandbox-template-ref-hash"], hash.as_str());
    let uids: Vec<Value> = warm.iter().map(|n| kube.object(&["pod", n])["metadata"]["uid"].clone()).collect();

    // A claim adopts one: the pod runs on, under its name, with the claim's label.
    let claim = |name: &str, pool: &str, extra: Value| {
        json!({
            "apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaim",
            "metadata": {"name": name},
            "spec": {"warmPoolRef": {"name": pool}, "additionalPodMetadata": {"labels": extra}}
        })
    };
    kube.apply("c1.json", &claim("c1", "warm", json!({"sandbox.users.io/session": "s1"})));
    let adopted = clauderon_tests::eventually(30, "the claim ready", || {
        let c = kube.object(&["sandboxclaim", "c1"]);
        (claim_ready(&kube, "c1") == "True DependenciesReady").then(|| c["status"]["sandbox"]["name"].clone())
    });
    let adopted = adopted.as_str().expect("a sandbox name").to_string();
    assert!(warm.contains(&adopted), "{adopted} is one of the pool's {warm:?}");
    let sandbox = kube.object(&["sandbox", &adopted]);
    assert_eq!(sandbox["metadata"]["ownerReferences"][0]["kind"], "SandboxClaim");
    assert_eq!(sandbox["metadata"]["ownerReferences"].as_array().map(Vec::len), Some(1));
    assert_eq!(sandbox["metadata"]["annotations"]["agents.x-k8s.io/pod-name"], adopted.as_str());
    assert!(sandbox["metadata"]["labels"]["agents.x-k8s.io/warm-pool-sandbox"].is_null());
    let pod = clauderon_tests::eventually(10, "the claim's label on the pod", || {
        let pod = kube.object(&["pod", &adopted]);
        (pod["metadata"]["labels"]["sandbox.users.io/session"] == "s1").then_some(pod)
    });
    assert!(uids.contains(&pod["metadata"]["uid"]), "the same pod ran on");
    assert!(pod["metadata"]["labels"]["agents.x-k8s.io/warm-pool-sandbox"].is_null(), "no longer the pool's");
    assert_eq!(pod["status"]["phase"], "Running");
    // The pool makes another.
    let refilled = clauderon_tests::eventually(60, "the pool refilled", || {
        let members = pool_members(&kube, &pool_hash);
        (members.len() == 2 && !members.contains(&adopted)).then_some(members)
    });

    // What a claim gets nothing for, and why.
    kube.apply("c2.json", &claim("c2", "nowhere", json!({})));
    kube.apply("c3.json", &claim("c3", "warm", json!({"dev.clauderon.resource": "x"})));
    let mut with_env = claim("c4", "warm", json!({}));
    with_env["spec"]["env"] = json!([{"name": "TOKEN", "value": "x"}]);
    kube.apply("c4.json", &with_env);
    for (name, reason) in [("c2", "WarmPoolNotFound"), ("c3", "InvalidMetadata"), ("c4", "EnvVarsInjectionRejected")] {
        clauderon_tests::eventually(10, reason, || {
            (claim_ready(&kube, name) == format!("False {reason}")).then_some(())
        });
    }
    assert_eq!(pool_members(&kube, &pool_hash), refilled, "none of them took a warm Sandbox");

    // Its Sandbox deleted, the claim takes another from the pool.
    kube.ok(&["delete", "sandbox", &adopted]);
    let replaced = clauderon_tests::eventually(60, "another Sandbox for the claim", || {
        let name = kube.object(&["sandboxclaim", "c1"])["status"]["sandbox"]["name"].as_str().map(String::from);
        name.filter(|n| *n != adopted && claim_ready(&kube, "c1") == "True DependenciesReady")
    });
    assert!(refilled.contains(&replaced), "{replaced} came from the pool {refilled:?}");

    // The claim takes its Sandbox and pod with it; the pool its own.
    kube.ok(&["delete", "sandboxclaim", "c1"]);
    clauderon_tests::eventually(30, "the claim's pod gone", || {
        (!kube.kubectl(&["get", "pod", &replaced]).status.success()).then_some(())
    });
    kube.ok(&["delete", "swp", "warm"]);
    clauderon_tests::eventually(30, "the pool's Sandboxes gone", || {
        (pool_members(&kube, &pool_hash).is_empty() && kube.ok(&["get", "pods", "-o", "name"]).trim().is_empty())
            .then_some(())
    });
}
