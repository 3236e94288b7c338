//! The Kubernetes backend (`kubernetes`, experimental) through the real
//! daemon and CLI, against the local API server (`clauderon-mock-kube`),
//! whose pods run in the local Docker engine. A session is a claim and a
//! hardened pod labelled as the session's, the session's branch cloned into
//! the claim without being pushed anywhere; stop deletes the pod and keeps
//! the claim, start makes the pod again on it, delete leaves nothing; a pod
//! that cannot run fails the create with the cluster's reason and leaves
//! nothing behind. Off unless enabled, and a create says how to enable it.
//! The pod reaches only the session's proxy, through the tunnel, or where
//! the cluster can reach this machine through the proxy's direct door (each
//! session by its own key, to its own proxy alone). A session's health
//! follows its pod from a watch.

use clauderon_tests::{CANARIES, TestCluster, World, canary, eventually, unique};
use serde_json::Value;

/// `[backends.kubernetes]` for `kube`, sessions as bare pods.
fn config(kube: &TestCluster, enabled: bool) -> String {
    config_with(kube, enabled, "false")
}

/// `[backends.kubernetes]` for `kube` with `sandbox_crd`.
fn config_with(kube: &TestCluster, enabled: bool, sandbox_crd: &str) -> String {
    format!(
        "[backends.kubernetes]\nenabled = \"{enabled}\"\n{}storage = \"1Gi\"\nstart_timeout_ms = \"8000\"\n\
         sandbox_crd = \"{sandbox_crd}\"\n",
        kube.backend_config()
    )
}

fn create(world: &World, name: &str, prompt: &str, extra: &[&str]) -> clauderon_tests::Run {
    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let mut args =
        vec!["create", "-r", &repo, "-b", "kubernetes", "-a", "shell", "--name", name, "-p", prompt, "--json"];
    args.extend_from_slice(extra);
    world.home.run(&args)
}

/// The session's objects of `kinds` (e.g. `pods,pvc`) in the cluster, as
/// `kind/name` (sorted).
fn objects(kube: &TestCluster, kinds: &str, resource: &str) -> Vec<String> {
    let selector = format!("dev.clauderon.resource={resource}");
    let out = kube.ok(&["get", kinds, "-l", &selector, "-o", "name"]);
    let mut names: Vec<String> = out.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// The session as `clauderon list` shows it.
fn listed(world: &World, name: &str) -> Value {
    let list = world.home.run(&["list", "--json"]).ok().json();
    list.as_array().into_iter().flatten().find(|s| s["name"] == name).cloned().unwrap_or(Value::Null)
}

fn session_status(world: &World, name: &str) -> String {
    listed(world, name)["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_kubernetes_session_is_a_hardened_pod_on_its_own_claim_that_stops_starts_and_goes() {
    let kube = TestCluster::start(&[]);
    let world = World::start_with(&config(&kube, true));
    // The user's origin carries a token: no session sees it (the proxy adds credentials).
    let token = canary("GITHUB_TOKEN");
    let origin = format!("https://x-access-token:{token}@github.com/o/r.git");
    let added = std::process::Command::new("git")
        .args(["-C", world.repo.path().to_str().expect("utf-8"), "remote", "add", "origin", &origin])
        .status()
        .expect("git");
    assert!(added.success());
    let name = unique("kb");
    let made = create(
        &world,
        &name,
        "echo hello from the pod; echo started in $(pwd); sleep 600",
        &["--memory-limit", "256m", "--cpu-limit", "0.5"],
    )
    .ok()
    .json();
    let pod_name = made["resource_id"].as_str().expect("a resource").to_string();
    assert_eq!(made["status"], "running", "{made}");
    let claim = format!("{pod_name}-data");
    assert_eq!(
        objects(&kube, "pods,pvc", &pod_name),
        [format!("persistentvolumeclaim/{claim}"), format!("pod/{pod_name}")]
    );

    // The pod as the cluster has it: the session's, contained, limited.
    let pod = kube.object(&["pod", &pod_name]);
    assert_eq!(pod["status"]["phase"], "Running", "create waited for it to run");
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["dev.clauderon.session-id"], made["id"]);
    assert_eq!(labels["dev.clauderon.component"], "kubernetes", "the host's owner label");
    let spec = &pod["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(spec["securityContext"]["runAsUser"], 1000);
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let agent = &spec["containers"][0];
    assert_eq!(agent["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(agent["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(agent["resources"]["limits"]["memory"], (256u64 << 20).to_string());
    assert_eq!(agent["resources"]["limits"]["cpu"], "500m");
    assert_eq!(spec["volumes"][0]["persistentVolumeClaim"]["claimName"], claim.as_str());
    let env = agent["env"].to_string();
    assert!(env.contains("\"HOME\",\"value\":\"/session/home\""), "HOME on the claim: {env}");
    let all = pod.to_string();
    for (var, value) in CANARIES {
        assert!(!all.contains(value), "{var}'s real value is in the pod: {all}");
    }
    eventually(20, "the agent's output in the pod's log", || {
        kube.ok(&["logs", &pod_name]).contains("hello from the pod").then_some(())
    });
    // The session's files in the claim: its branch cloned at the workspace
    // (where the agent started), owned by the agent's user; the CA bundle.
    let in_pod = |script: &str| kube.ok(&["exec", &pod_name, "--", "sh", "-c", script]).trim().to_string();
    assert!(kube.ok(&["logs", &pod_name]).contains("started in /session/workspace"), "the agent's directory");
    assert_eq!(in_pod("git -C /session/workspace rev-parse HEAD"), made["base_commit"].as_str().expect("base"));
    assert_eq!(
        in_pod("git -C /session/workspace rev-parse --abbrev-ref HEAD"),
        made["branch"].as_str().expect("branch")
    );
    assert_eq!(in_pod("git -C /session/workspace ls-files"), "sub/README", "the repository's files");
    assert_eq!(in_pod("stat -c %u /session/workspace/sub/README"), "1000");
    assert!(in_pod("cat \"$SSL_CERT_FILE\"").contains("BEGIN CERTIFICATE"), "clauderon's CA in the pod");
    assert_eq!(in_pod("git -C /session/workspace remote get-url origin"), "https://github.com/o/r.git");
    assert_eq!(in_pod(&format!("grep -rl {token} /session || true")), "", "the token is nowhere in the claim");
    let clone = std::path::Path::new(made["worktree"].as_str().expect("worktree")).join(".git/config");
    let config = std::fs::read_to_string(&clone).expect("the session's clone");
    assert!(!config.contains(token) && config.contains("url = https://github.com/o/r.git"), "{config}");
    in_pod("echo the agent work > /session/workspace/work.txt");
    assert!(kube.ok(&["logs", &pod_name]).lines().all(|l| !CANARIES.iter().any(|(_, v)| l.contains(v))));

    // Stop: the pod goes, the claim stays; start: a new pod on the same claim.
    world.home.run(&["stop", &name]).ok();
    assert_eq!(objects(&kube, "pods,pvc", &pod_name), [format!("persistentvolumeclaim/{claim}")], "the claim stays");
    assert_eq!(session_status(&world, &name), "stopped");
    world.home.run(&["start", &name]).ok();
    let again = kube.object(&["pod", &pod_name]);
    assert_eq!(again["status"]["phase"], "Running");
    assert_ne!(again["metadata"]["uid"], pod["metadata"]["uid"], "a new pod");
    assert_eq!(again["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], claim.as_str());
    assert_eq!(in_pod("cat /session/workspace/work.txt"), "the agent work", "the claim kept it");

    // Delete: nothing of the session is left.
    world.home.run(&["delete", &name]).ok();
    assert!(objects(&kube, "pods,pvc", &pod_name).is_empty(), "{:?}", objects(&kube, "pods,pvc", &pod_name));
}

#[test]
fn kubernetes_is_off_until_enabled_and_a_pod_that_cannot_run_fails_the_create_with_the_clusters_reason() {
    let kube = TestCluster::start(&[]);
    let off = World::start_with(&config(&kube, false));
    let refused = create(&off, &unique("kb-off"), "true", &[]);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert_ne!(refused.code, 0, "{said}");
    assert!(said.contains("the kubernetes backend is off") && said.contains("--enable-kubernetes-backend"), "{said}");
    drop(off);

    // (`auto`: a bare pod here, a Sandbox where the cluster has agent-sandbox; both fail so.)
    let world = World::start_with(&config_with(&kube, true, "auto"));
    let name = unique("kb-pull");
    let failed = create(&world, &name, "true", &["--image", "clauderon/absent:1"]);
    let said = format!("{}{}", failed.stdout, failed.stderr);
    assert_ne!(failed.code, 0, "{said}");
    assert!(said.contains("cannot run") && said.contains("ImagePull"), "the cluster's reason: {said}");
    let left = kube.ok(&["get", "pods,pvc", "-l", "dev.clauderon.component=kubernetes", "-o", "name"]);
    assert_eq!(left.trim(), "", "a failed create leaves nothing in the cluster");
}

/// The daemon follows a session's pod with a watch: when the cluster says
/// the agent's container crashed (its agent exits 3 a few seconds in, the
/// first time; the pod backs off before restarting it), the session is
/// failed with the cluster's words without anyone asking; when the pod runs
/// again, so does the session. Nothing here asks the backend for a status.
#[test]
fn a_kubernetes_sessions_health_follows_its_pod_from_a_watch() {
    let kube = TestCluster::start(&[]);
    let world = World::start_with(&config(&kube, true));
    let name = unique("kb-health");
    let crash_once =
        "echo up; if [ -e /session/crashed ]; then exec sleep 600; fi; touch /session/crashed; sleep 3; exit 3";
    let made = create(&world, &name, crash_once, &[]).ok().json();
    let pod_name = made["resource_id"].as_str().expect("a resource").to_string();
    assert_eq!(made["status"], "running", "{made}");

    let failed =
        eventually(30, "the session failed", || Some(listed(&world, &name)).filter(|s| s["status"] == "failed"));
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("CrashLoopBackOff") && error.contains("back-off"), "the cluster's words: {failed}");
    // The pod restarts the agent after its back-off (10 s): the session runs again.
    let again = eventually(40, "the session running again", || {
        Some(listed(&world, &name)).filter(|s| s["status"] == "running")
    });
    assert!(again["error"].is_null(), "{again}");
    assert_eq!(kube.object(&["pod", &pod_name])["status"]["containerStatuses"][0]["restartCount"], 1);

    // Stopping deletes the pod, which the watch sees: the session stays stopped.
    world.home.run(&["stop", &name]).ok();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(session_status(&world, &name), "stopped");
    world.home.run(&["delete", &name]).ok();
}

/// `git` in the user's repository.
fn user_git(world: &World, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(world.repo.path()).args(args).output().expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The agent's commits in the pod come back to the user's branch without
/// anything being pushed: on `clauderon sync` and on stop. The pod is not
/// trusted with the user's repository (attacked from inside the pod, as
/// the agent's user): a branch it makes stays in the pod, a rewritten
/// history is refused, a malformed object is refused; the user's branch
/// stays where it was each time.
#[test]
fn a_kubernetes_sessions_commits_come_back_only_its_branch_and_only_forward() {
    let kube = TestCluster::start(&[]);
    let world = World::start_with(&config(&kube, true));
    let name = unique("kb-sync");
    let made = create(&world, &name, "sleep 600", &[]).ok().json();
    let pod = made["resource_id"].as_str().expect("a resource").to_string();
    let branch = made["branch"].as_str().expect("branch").to_string();
    let base = made["base_commit"].as_str().expect("base").to_string();
    let in_pod = |script: &str| {
        let script = format!("set -e; cd /session/workspace; {script}");
        kube.ok(&["exec", &pod, "--", "sh", "-c", &script]).trim().to_string()
    };
    let commit = |what: &str| {
        in_pod(&format!(
            "echo {what} > {what}.txt; git add {what}.txt; git -c user.name=a -c user.email=a@e commit -qm {what}; \
             git rev-parse HEAD"
        ))
    };
    let at = |branch: &str| user_git(&world, &["rev-parse", &format!("refs/heads/{branch}")]);

    // `clauderon sync`: the pod's commit is the user's branch now.
    let first = commit("first");
    let synced = world.home.run(&["sync", &name, "--json"]).ok().json();
    assert_eq!(synced["commit"], first.as_str(), "{synced}");
    assert_eq!(synced["commits"], 1);
    assert_eq!(at(&branch), first);
    assert_eq!(user_git(&world, &["show", &format!("{branch}:first.txt")]), "first");
    let said = world.home.run(&["sync", &name]).ok().stdout;
    assert!(said.contains(&branch) && said.contains("1 commit beyond its base"), "{said}");

    // The pod makes a branch of its own: it stays there.
    let main = at("main");
    in_pod("git checkout -q -b main; git -c user.name=a -c user.email=a@e commit -q --allow-empty -m evil");
    in_pod(&format!("git checkout -q {branch}"));
    world.home.run(&["sync", &name]).ok();
    assert_eq!(at("main"), main, "the user's main did not move");
    assert_eq!(at(&branch), first);

    // A malformed commit (no author email) on the branch: refused.
    in_pod(&format!(
        "bad=$(printf 'tree %s\\nparent %s\\nauthor x\\ncommitter x\\n\\nevil\\n' $(git rev-parse HEAD^{{tree}}) \
         $(git rev-parse HEAD) | git hash-object -w -t commit --literally --stdin); git update-ref refs/heads/{branch} $bad"
    ));
    let refused = world.home.run(&["sync", &name]);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert_ne!(refused.code, 0, "{said}");
    assert!(said.contains("fsck") || said.contains("missingEmail"), "{said}");
    assert_eq!(at(&branch), first, "nothing moved");

    // History rewritten: refused.
    in_pod(&format!("git update-ref refs/heads/{branch} {first}; git reset -q --hard; git reset -q --hard HEAD~1"));
    let rewritten = commit("rewritten");
    let refused = world.home.run(&["sync", &name]);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert_ne!(refused.code, 0, "{said}");
    assert!(said.contains("history was rewritten"), "{said}");
    assert_eq!(at(&branch), first, "the user's branch stayed");
    assert_ne!(at(&branch), rewritten);

    // Back on track, one more commit, then stop: it comes back before the pod goes.
    in_pod(&format!("git reset -q --hard {first}"));
    let second = commit("second");
    world.home.run(&["stop", &name]).ok();
    assert_eq!(at(&branch), second, "stop brought it back");
    assert_eq!(
        user_git(&world, &["rev-list", "--count", &format!("{base}..{branch}")]),
        "2",
        "first and second, nothing else"
    );
    world.home.run(&["delete", &name]).ok();
}

/// The pod's only way out is the session's own proxy, through the tunnel
/// the host keeps into it: a real client in the pod (curl, trusting
/// clauderon's CA) gets its placeholder replaced by the real token on the
/// way, sees it masked, and is held to the session's access mode; nothing
/// else is reachable from the pod, and a network policy denies the pod
/// every other connection. A restarted daemon opens the tunnel again; after
/// stop and start, the new pod's tunnel works.
/// Run `script` in `pod` as its agent (the pod's user): its output, trimmed.
fn in_pod(kube: &TestCluster, pod: &str, script: &str) -> String {
    kube.ok(&["exec", pod, "--", "sh", "-c", script]).trim().to_string()
}

/// The agent in `pod` asks GitHub through its proxy: the real token is added
/// on the way (the mock upstream saw it), masked on the way back, and
/// nothing real comes back into the pod.
fn agent_request(kube: &TestCluster, world: &World, pod: &str) {
    agent_request_with(kube, world, pod, "");
}

/// [`agent_request`], with `env` (shell) setting the agent's environment first.
fn agent_request_with(kube: &TestCluster, world: &World, pod: &str, env: &str) {
    let request = format!("{env}curl -sS -H 'authorization: Bearer placeholder' https://api.github.com/user");
    let body = in_pod(kube, pod, &request);
    let seen = world.mock.last_request_to("api.github.com", "/user");
    let expected = format!("Bearer {}", canary("GITHUB_TOKEN"));
    assert_eq!(seen["headers"]["authorization"].as_str(), Some(expected.as_str()), "the token added: {seen}");
    let echoed: Value = serde_json::from_str(&body).expect("the mock's echo");
    let masked = echoed["headers"]["authorization"].as_str().unwrap_or_default().to_string();
    assert!(masked.len() == expected.len() && masked.bytes().all(|b| b == b'*'), "{masked}");
    assert!(CANARIES.iter().all(|(_, c)| !body.contains(c)), "a credential came back into the pod: {body}");
}

/// The agent in `pod` tries a write through its proxy: the HTTP status.
fn agent_post(kube: &TestCluster, pod: &str) -> String {
    in_pod(kube, pod, "curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' https://api.github.com/repos/o/r/issues")
}

#[test]
fn a_kubernetes_sessions_only_way_out_is_its_own_proxy_through_the_tunnel() {
    let kube = TestCluster::start(&[]);
    let mut world = World::start_with(&config(&kube, true));
    let name = unique("kt");
    let made = create(&world, &name, "sleep 600", &["--access-mode", "read-only"]).ok().json();
    let pod_name = made["resource_id"].as_str().expect("a resource").to_string();
    let pod_uid = kube.object(&["pod", &pod_name])["metadata"]["uid"].clone();
    let policy = kube.object(&["networkpolicy", &format!("{pod_name}-isolated")]);
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"]["dev.clauderon.resource"], pod_name.as_str());
    assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    assert!(
        policy["spec"]["ingress"].is_null() && policy["spec"]["egress"].is_null(),
        "no rule lets anything in or out"
    );
    let in_pod = |script: &str| in_pod(&kube, &pod_name, script);
    let proxy = in_pod("echo $HTTPS_PROXY");
    let (_, address) = proxy.rsplit_once('@').unwrap_or(("", &proxy));
    assert!(address.starts_with("127.0.0.1:"), "the agent's proxy is on the pod's own loopback: {proxy}");

    let request = |world: &World| agent_request(&kube, world, &pod_name);
    request(&world);
    // The session's own listener: its read-only mode holds.
    assert_eq!(agent_post(&kube, &pod_name), "403", "a write in a read-only session");
    // Straight to the tunnel port, bypassing the relay: that is where the
    // host's connections arrive, not a way out; it answers nothing, and the
    // proxy port works on.
    let proxy_port: u16 = address.trim_end_matches('/').trim_start_matches("127.0.0.1:").parse().expect("port");
    let tunnel_port = if proxy_port == 7070 { 7071 } else { 7070 };
    let tunnel = proxy.replace(&format!(":{proxy_port}"), &format!(":{tunnel_port}"));
    let bypass = kube.kubectl(&[
        "exec",
        &pod_name,
        "--",
        "sh",
        "-c",
        &format!("curl -sS -m 3 -x {tunnel} https://api.github.com/user"),
    ]);
    assert!(!bypass.status.success(), "the tunnel port answered: {}", String::from_utf8_lossy(&bypass.stdout));
    request(&world);
    // Nothing but the proxy: not this machine's daemon, not the world directly.
    let port = world.daemon.port;
    let direct = kube.kubectl(&[
        "exec",
        &pod_name,
        "--",
        "sh",
        "-c",
        &format!("curl -sS -m 5 --noproxy '*' http://127.0.0.1:{port}/api/sessions || curl -sS -m 5 --noproxy '*' https://api.github.com/user"),
    ]);
    assert!(!direct.status.success(), "the pod reached something without the proxy");
    let env = in_pod("env");
    let log = kube.ok(&["logs", &pod_name]);
    for (var, value) in CANARIES {
        assert!(!env.contains(value) && !log.contains(value), "{var}'s real value is in the pod");
    }
    assert_eq!(in_pod(&format!("grep -rl {} /session || true", canary("GITHUB_TOKEN"))), "", "nor in the claim");

    // A restarted daemon opens the tunnel again; the pod ran on.
    world.restart_daemon();
    request(&world);
    assert_eq!(kube.object(&["pod", &pod_name])["metadata"]["uid"], pod_uid, "the same pod");

    // A new pod after stop and start: its own tunnel.
    world.home.run(&["stop", &name]).ok();
    world.home.run(&["start", &name]).ok();
    request(&world);

    world.home.run(&["delete", &name]).ok();
    let left = kube.ok(&["get", "networkpolicies", "-o", "name"]);
    assert!(!left.contains(&pod_name), "the policy goes with the session: {left}");
}

#[test]
fn where_the_cluster_can_reach_this_machine_a_session_comes_in_through_the_proxys_direct_door_alone() {
    let kube = TestCluster::start(&["--pods-reach-host"]);
    let host_ip = kube.host_ip();
    let port = std::net::TcpListener::bind((host_ip.as_str(), 0)).and_then(|l| l.local_addr()).expect("a port").port();
    let door = format!("{host_ip}:{port}");
    let mut world = World::start_configured(&format!("direct_listen = \"{door}\"\n"), &config(&kube, true));
    // `clauderon doctor` says where the door is.
    let doctor = world.home.run(&["doctor", "--json"]).json();
    let check = doctor["checks"].as_array().into_iter().flatten().find(|c| c["name"] == "direct door").cloned();
    let detail = check.as_ref().map(|c| c["detail"].to_string()).unwrap_or_default();
    assert!(detail.contains(&format!("dial {door}")), "{doctor}");
    let name = unique("kd");
    let made = create(&world, &name, "sleep 600", &["--access-mode", "read-only"]).ok().json();
    let pod = made["resource_id"].as_str().expect("a resource").to_string();
    let id = made["id"].as_str().expect("an id").to_string();

    // The relay goes through the door; the policy lets the pod out to it alone.
    let command = kube.object(&["pod", &pod])["spec"]["containers"][0]["command"].to_string();
    assert!(
        command.contains(&format!("\"--direct\",\"{door}\",\"--door\",\"/session/door\""))
            && !command.contains("--tunnel"),
        "{command}"
    );
    let policy = kube.object(&["networkpolicy", &format!("{pod}-isolated")]);
    assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    assert!(policy["spec"]["ingress"].is_null(), "nothing comes in");
    assert_eq!(
        policy["spec"]["egress"],
        serde_json::json!([{"to": [{"ipBlock": {"cidr": format!("{host_ip}/32")}}], "ports": [{"protocol": "TCP", "port": port}]}])
    );
    agent_request(&kube, &world, &pod);
    assert_eq!(agent_post(&kube, &pod), "403", "read-only holds through the door");

    // The door file: the session's own line and key (its agent can read it:
    // it leads to its own proxy alone), then clauderon's CA; nothing real.
    let file = in_pod(&kube, &pod, "cat /session/door");
    let line = file.lines().next().unwrap_or_default().to_string();
    assert!(line.starts_with(&format!("clauderon-door/1 {id} ")) && line.len() > 80, "{line}");
    assert!(file.contains("BEGIN CERTIFICATE"), "the CA the relay trusts for the door");
    assert_eq!(in_pod(&kube, &pod, "stat -c '%a %u' /session/door"), "400 1000");
    assert!(CANARIES.iter().all(|(_, c)| !file.contains(c)));

    // A second session, whose key the first does not have.
    let other_name = unique("kd");
    let other = create(&world, &other_name, "sleep 600", &[]).ok().json();
    let other_pod = other["resource_id"].as_str().expect("a resource").to_string();
    let other_id = other["id"].as_str().expect("an id").to_string();
    let other_line = in_pod(&kube, &other_pod, "head -n 1 /session/door");
    let other_auth =
        in_pod(&kube, &other_pod, "echo \"$HTTPS_PROXY\" | sed 's#^http://##; s#@.*##' | tr -d '\\n' | base64 -w0");

    // As the first session's agent, straight at the door (TLS, trusting the
    // door's CA): what the door passes on answers; what it refuses gets nothing.
    let knock = |payload: &str| {
        let script = format!(
            "(printf '%s' \"$1\"; sleep 2) | timeout 6 openssl s_client -quiet -connect {door} -CAfile /session/door \
             -verify_return_error -verify_ip {host_ip} 2>/dev/null | head -c 200; true"
        );
        kube.ok(&["exec", &pod, "--", "sh", "-c", &script, "sh", payload]).trim().to_string()
    };
    let connect = |auth: &str| {
        let auth = if auth.is_empty() { String::new() } else { format!("Proxy-Authorization: Basic {auth}\r\n") };
        format!("CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n{auth}\r\n")
    };
    let auth = in_pod(&kube, &pod, "echo \"$HTTPS_PROXY\" | sed 's#^http://##; s#@.*##' | tr -d '\\n' | base64 -w0");
    let key = line.rsplit(' ').next().expect("a key").to_string();
    let refused = |what: &str, payload: &str| {
        let answer = knock(payload);
        assert!(!answer.contains("HTTP/"), "{what}: the door let it through: {answer}");
    };
    // Controls: its own line reaches its own proxy, which still wants its secret.
    assert!(knock(&format!("{line}\n{}", connect(&auth))).starts_with("HTTP/1.1 200"), "its own way in");
    assert!(knock(&format!("{line}\n{}", connect(""))).starts_with("HTTP/1.1 407"), "the proxy's own check holds");
    // A leaked line works while its session lives (so its refusal below is the deletion's).
    assert!(knock(&format!("{other_line}\n{}", connect(&other_auth))).starts_with("HTTP/1.1 200"));
    refused("its key with the other's id", &format!("clauderon-door/1 {other_id} {key}\n{}", connect(&other_auth)));
    // The session it tried to come in as has it in its audit.
    let audit = eventually(10, "the refusal in the other session's audit", || {
        let audit = world.home.run(&["audit", "--session", &other_name, "--json"]).ok().stdout;
        (audit.contains("\"DOOR\"") && audit.contains("door key is not the session's")).then_some(audit)
    });
    assert!(!audit.contains(&key), "no key in the audit");
    let mut wrong = key.clone();
    let last = if wrong.ends_with('0') { '1' } else { '0' };
    wrong.pop();
    wrong.push(last);
    refused("a wrong key", &format!("clauderon-door/1 {id} {wrong}\n{}", connect(&auth)));
    refused("no line", &connect(&auth));
    refused("no key", &format!("clauderon-door/1 {id}\n{}", connect(&auth)));
    refused("a line too long", &format!("{}\n{}", "a".repeat(600), connect(&auth)));
    // Not TLS: its line in the clear is not taken.
    let plain = kube.ok(&[
        "exec",
        &pod,
        "--",
        "sh",
        "-c",
        &format!("(printf '%s' \"$1\"; sleep 2) | curl -s -m 4 telnet://{door} | head -c 200; true"),
        "sh",
        &format!("{line}\n{}", connect(&auth)),
    ]);
    assert!(!plain.contains("HTTP/"), "plain TCP got through: {plain}");
    // A deleted session's line opens nothing.
    world.home.run(&["delete", &other_name]).ok();
    refused("a deleted session's line", &format!("{other_line}\n{}", connect(&other_auth)));
    let log = std::fs::read_to_string(&world.daemon.log).expect("the daemon's log");
    assert!(log.contains("direct door: a connection from"), "refusals are logged");
    assert!(!log.contains(&key) && !log.contains(&wrong), "no key is logged");
    for (var, value) in CANARIES {
        let env = in_pod(&kube, &pod, "env");
        assert!(!env.contains(value) && !kube.ok(&["logs", &pod]).contains(value), "{var}'s real value is in the pod");
    }

    // A restarted daemon opens its door and the session's proxy again; the pod ran on.
    let uid = kube.object(&["pod", &pod])["metadata"]["uid"].clone();
    world.restart_daemon();
    agent_request(&kube, &world, &pod);
    assert_eq!(kube.object(&["pod", &pod])["metadata"]["uid"], uid, "the same pod");
    world.home.run(&["stop", &name]).ok();
    world.home.run(&["start", &name]).ok();
    agent_request(&kube, &world, &pod);
    world.home.run(&["delete", &name]).ok();
    assert!(objects(&kube, "pods,pvc,networkpolicies", &pod).is_empty(), "nothing is left");
}

/// A warm pod's agent has its environment from its launch script, not the
/// pod's spec: a shell in the pod takes it from there.
const WARM_ENV: &str = "eval \"$(grep -h '^export ' /session/.launch-*)\"; ";

/// With `warm_pool`, agent-sandbox keeps ready Sandboxes (a template and a
/// pool of clauderon's, nothing of any session in them) and a session's
/// SandboxClaim takes one: its pod, under the name it was made with, gets
/// the session's files and its launch script (its environment, the relay,
/// the agent) and reaches the proxy as any session's does. Stop pauses the
/// Sandbox and start resumes it with its work; a restarted daemon finds it
/// running; delete takes the claim, its Sandbox and its volume, and leaves
/// the pool.
#[test]
fn with_a_warm_pool_a_session_takes_a_ready_sandbox_and_runs_in_it() {
    let kube = TestCluster::start(&["--agent-sandbox"]);
    let mut world = World::start_with(&format!("{}warm_pool = \"1\"\n", config_with(&kube, true, "true")));
    let first = create(&world, &unique("kw"), "sleep 600", &[]).ok().json();
    assert_eq!(first["status"], "running", "{first}");
    // The pool, its template and its pods' isolation: clauderon's, not agent-sandbox's.
    let template = kube.object(&["sandboxtemplate", "clauderon-warm"]);
    assert_eq!(template["spec"]["networkPolicyManagement"], "Unmanaged");
    let template_text = template.to_string();
    assert!(!template_text.contains("HTTPS_PROXY") && !template_text.contains("CLAUDERON_SESSION"), "{template}");
    assert_eq!(kube.object(&["sandboxwarmpool", "clauderon-warm"])["spec"]["replicas"], 1);
    let isolation = kube.object(&["networkpolicy", "clauderon-warm-isolated"]);
    assert_eq!(isolation["spec"]["podSelector"]["matchLabels"]["dev.clauderon.pool"], "clauderon-warm");
    assert!(isolation["spec"]["egress"].is_null() && isolation["spec"]["ingress"].is_null(), "{isolation}");
    assert!(!kube.kubectl(&["get", "networkpolicy", "clauderon-warm-network-policy"]).status.success());

    // The pool has refilled: the next session takes a warm Sandbox.
    eventually(60, "a ready Sandbox in the pool", || {
        (kube.object(&["sandboxwarmpool", "clauderon-warm"])["status"]["readyReplicas"] == 1).then_some(())
    });
    let name = unique("kw");
    let made = create(&world, &name, "sleep 600", &["--access-mode", "read-only"]).ok().json();
    let resource = made["resource_id"].as_str().expect("a resource").to_string();
    let claim = kube.object(&["sandboxclaim", &resource]);
    assert_eq!(claim["metadata"]["labels"]["dev.clauderon.session-id"], made["id"]);
    let sandbox_name = claim["status"]["sandbox"]["name"].as_str().expect("its Sandbox").to_string();
    assert!(sandbox_name.starts_with("clauderon-warm-"), "{sandbox_name}");
    let sandbox = kube.object(&["sandbox", &sandbox_name]);
    assert_eq!(sandbox["metadata"]["labels"]["agents.x-k8s.io/launch-type"], "warm", "{sandbox}");
    let pod = sandbox_name.clone();
    let spec = kube.object(&["pod", &pod]);
    let spec_text = spec["spec"].to_string();
    assert!(
        !spec_text.contains("HTTPS_PROXY") && !spec_text.contains(made["id"].as_str().unwrap_or("?")),
        "{spec_text}"
    );
    for (var, value) in CANARIES {
        assert!(!spec_text.contains(value), "{var}'s real value is in the pod's spec");
    }
    // Its agent runs with the session's environment, through its own proxy.
    let launch = in_pod(&kube, &pod, "ls /session/.launch-* && stat -c '%a %u' /session/.launch-*");
    assert!(launch.ends_with("500 1000"), "{launch}");
    agent_request_with(&kube, &world, &pod, WARM_ENV);
    let post = in_pod(
        &kube,
        &pod,
        &format!(
            "{WARM_ENV}curl -s -o /dev/null -w '%{{http_code}}' -X POST -d '{{}}' https://api.github.com/repos/o/r/issues"
        ),
    );
    assert_eq!(post, "403", "read-only holds");
    assert_eq!(in_pod(&kube, &pod, "cat /session/workspace/sub/README"), "hi", "the session's branch is in");
    // As its agent: nothing but its proxy — not the daemon, not the world directly.
    let direct = kube.kubectl(&[
        "exec",
        &pod,
        "--",
        "sh",
        "-c",
        &format!(
            "curl -sS -m 5 --noproxy '*' http://127.0.0.1:{}/api/sessions || curl -sS -m 5 --noproxy '*' https://api.github.com/user",
            world.daemon.port
        ),
    ]);
    assert!(!direct.status.success(), "the warm pod reached something without the proxy");
    let script = in_pod(&kube, &pod, "cat /session/.launch-*");
    for (var, value) in CANARIES {
        assert!(!script.contains(value), "{var}'s real value is in the launch script");
    }
    assert!(listed(&world, &name)["status"] == "running");

    // Stop pauses its Sandbox; start resumes it with its work.
    in_pod(&kube, &pod, "echo kept > /session/workspace/work.txt");
    world.home.run(&["stop", &name]).ok();
    assert_eq!(kube.object(&["sandbox", &sandbox_name])["spec"]["replicas"], 0);
    eventually(20, "the pod gone", || (!kube.kubectl(&["get", "pod", &pod]).status.success()).then_some(()));
    assert_eq!(listed(&world, &name)["status"], "stopped");
    world.home.run(&["start", &name]).ok();
    assert_eq!(in_pod(&kube, &pod, "cat /session/workspace/work.txt"), "kept");
    agent_request_with(&kube, &world, &pod, WARM_ENV);

    // A restarted daemon finds it running and opens its way out again.
    let uid = kube.object(&["pod", &pod])["metadata"]["uid"].clone();
    world.restart_daemon();
    agent_request_with(&kube, &world, &pod, WARM_ENV);
    assert_eq!(kube.object(&["pod", &pod])["metadata"]["uid"], uid, "the same pod");

    // Delete takes the claim and what it owns; the pool stays.
    world.home.run(&["delete", &name]).ok();
    eventually(20, "the session's objects gone", || {
        let gone = ["sandboxclaim", "sandbox", "pod"]
            .iter()
            .zip([&resource, &sandbox_name, &pod])
            .all(|(kind, name)| !kube.kubectl(&["get", kind, name]).status.success());
        (gone && !kube.kubectl(&["get", "pvc", &format!("data-{sandbox_name}")]).status.success()).then_some(())
    });
    assert!(kube.kubectl(&["get", "sandboxwarmpool", "clauderon-warm"]).status.success(), "the pool stays");
    let first_name = first["name"].as_str().unwrap_or_default().to_string();
    world.home.run(&["delete", &first_name]).ok();
}

/// `warm_pool` where the cluster cannot give one (agent-sandbox without its
/// extensions, or no agent-sandbox) fails the create and says what to do,
/// rather than starting sessions cold without a word.
#[test]
fn a_warm_pool_the_cluster_cannot_give_is_a_clear_error() {
    for (mock, says) in [
        ("--agent-sandbox-core", "needs agent-sandbox's extensions (SandboxWarmPool and SandboxClaim"),
        ("", "needs agent-sandbox's Sandboxes, and sessions here are bare pods"),
    ] {
        let kube = TestCluster::mock(&[mock].into_iter().filter(|m| !m.is_empty()).collect::<Vec<_>>());
        let world = World::start_with(&format!("{}warm_pool = \"1\"\n", config_with(&kube, true, "auto")));
        let failed = create(&world, &unique("kx"), "sleep 600", &[]);
        assert_ne!(failed.code, 0, "{}", failed.stdout);
        assert!(failed.stderr.contains(says) && failed.stderr.contains("remove warm_pool"), "{}", failed.stderr);
        assert!(kube.ok(&["get", "pods,pvc", "-o", "name"]).trim().is_empty(), "nothing was made");
    }
}

/// A condition of a Sandbox (`Ready`, `Suspended`) as `STATUS REASON`.
fn condition(kube: &TestCluster, sandbox: &str, kind: &str) -> String {
    kube.condition(&["sandbox", sandbox], kind)
}

/// Where the cluster has agent-sandbox, a session is a `Sandbox`: its pod
/// and claim are made by agent-sandbox's controller from the Sandbox's
/// templates (the same hardened pod, the runtime class from config); stop
/// pauses it through `replicas` (the pod goes, the claim stays), start
/// resumes it on the same claim, delete leaves nothing.
#[test]
fn where_the_cluster_has_agent_sandbox_a_session_is_a_sandbox_paused_and_resumed_through_replicas() {
    let kube = TestCluster::start(&["--agent-sandbox"]);
    // (A real cluster may have no RuntimeClass `gvisor`: the mock's runs as the default.)
    let runtime = if kube.is_real() { "" } else { "runtime_class = \"gvisor\"\n" };
    let world = World::start_with(&format!("{}{runtime}", config_with(&kube, true, "true")));
    let name = unique("kb-box");
    let made = create(&world, &name, "echo boxed in $(pwd); sleep 600", &[]).ok().json();
    assert_eq!(made["status"], "running", "{made}");
    let resource = made["resource_id"].as_str().expect("a resource").to_string();
    let claim = format!("data-{resource}");
    assert_eq!(
        objects(&kube, "sandboxes,pods,pvc", &resource),
        [
            format!("persistentvolumeclaim/{claim}"),
            format!("pod/{resource}"),
            format!("sandbox.agents.x-k8s.io/{resource}")
        ]
    );
    let sandbox = kube.object(&["sandbox", &resource]);
    assert_eq!(sandbox["metadata"]["labels"]["dev.clauderon.session-id"], made["id"]);
    assert_eq!(sandbox["metadata"]["labels"]["dev.clauderon.component"], "kubernetes");
    assert_eq!(sandbox["spec"]["replicas"], 1);
    assert!(sandbox["spec"]["shutdownTime"].is_null(), "no shutdown_after, no shutdownTime");
    assert_eq!(sandbox["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "data");
    // The pod is the controller's, made from the template: hardened as a bare pod is.
    let pod = kube.object(&["pod", &resource]);
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Sandbox");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], sandbox["metadata"]["uid"]);
    assert_eq!(pod["metadata"]["labels"]["dev.clauderon.component"], "kubernetes", "the component's pod");
    assert_eq!(pod["status"]["phase"], "Running");
    let spec = &pod["spec"];
    if !kube.is_real() {
        assert_eq!(spec["runtimeClassName"], "gvisor", "{pod}");
    }
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(spec["containers"][0]["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(spec["volumes"][0]["name"], "data");
    assert_eq!(spec["volumes"][0]["persistentVolumeClaim"]["claimName"], claim.as_str());
    let all = format!("{sandbox}{pod}");
    for (var, value) in CANARIES {
        assert!(!all.contains(value), "{var}'s real value is in the Sandbox or its pod: {all}");
    }
    eventually(20, "the Sandbox ready", || {
        (condition(&kube, &resource, "Ready") == "True DependenciesReady").then_some(())
    });
    eventually(20, "the agent's output", || {
        kube.ok(&["logs", &resource]).contains("boxed in /session/workspace").then_some(())
    });
    let in_pod = |script: &str| kube.ok(&["exec", &resource, "--", "sh", "-c", script]).trim().to_string();
    assert_eq!(in_pod("git -C /session/workspace rev-parse HEAD"), made["base_commit"].as_str().expect("base"));
    in_pod("echo the agent work > /session/workspace/work.txt");

    // Stop pauses it: replicas 0, the pod goes, the claim stays.
    world.home.run(&["stop", &name]).ok();
    assert_eq!(kube.object(&["sandbox", &resource])["spec"]["replicas"], 0);
    eventually(20, "the Sandbox suspended", || {
        (condition(&kube, &resource, "Suspended") == "True PodTerminated").then_some(())
    });
    assert_eq!(
        objects(&kube, "sandboxes,pods,pvc", &resource),
        [format!("persistentvolumeclaim/{claim}"), format!("sandbox.agents.x-k8s.io/{resource}")]
    );
    assert_eq!(session_status(&world, &name), "stopped");

    // Start resumes it: a new pod, on the same claim.
    world.home.run(&["start", &name]).ok();
    assert_eq!(kube.object(&["sandbox", &resource])["spec"]["replicas"], 1);
    let again = kube.object(&["pod", &resource]);
    assert_eq!(again["status"]["phase"], "Running");
    assert_ne!(again["metadata"]["uid"], pod["metadata"]["uid"], "a new pod");
    assert_eq!(in_pod("cat /session/workspace/work.txt"), "the agent work", "the claim kept it");
    assert_eq!(session_status(&world, &name), "running");

    world.home.run(&["delete", &name]).ok();
    assert!(objects(&kube, "sandboxes,pods,pvc", &resource).is_empty(), "nothing of the session is left");
}

/// `shutdown_after` gives a Sandbox a `shutdownTime`: the cluster shuts it
/// down then, with nothing on this machine asking, and the session shows
/// stopped (its claim kept); start gives it a new one. `sandbox_crd = "true"`
/// on a cluster without agent-sandbox says how to get it; `"false"` makes
/// bare pods where it is installed.
#[test]
fn a_sandbox_is_shut_down_by_the_cluster_at_its_shutdown_time_and_sandbox_crd_chooses_the_shape() {
    let kube = TestCluster::start(&["--agent-sandbox"]);
    let world = World::start_with(&format!("{}shutdown_after = \"12s\"\n", config_with(&kube, true, "true")));
    let name = unique("kb-expire");
    let made = create(&world, &name, "sleep 600", &[]).ok().json();
    assert_eq!(made["status"], "running", "{made}");
    let resource = made["resource_id"].as_str().expect("a resource").to_string();
    let at = kube.object(&["sandbox", &resource])["spec"]["shutdownTime"].as_str().expect("a shutdownTime").to_string();
    let stopped = eventually(30, "the session stopped by the cluster", || {
        Some(listed(&world, &name)).filter(|s| s["status"] == "stopped")
    });
    assert_eq!(condition(&kube, &resource, "Ready"), "False SandboxExpired", "the cluster shut it down");
    assert_eq!(objects(&kube, "pods,pvc", &resource), [format!("persistentvolumeclaim/data-{resource}")]);
    assert!(stopped["error"].is_null(), "stopped, not failed: {stopped}");
    let log = std::fs::read_to_string(&world.daemon.log).expect("the daemon's log");
    let why = log.lines().find(|l| l.contains(&name) && l.contains("stopped")).unwrap_or_default();
    assert!(why.contains("shut its Sandbox down") && why.contains(&at), "the daemon says why: {why}");
    world.home.run(&["start", &name]).ok();
    let later = kube.object(&["sandbox", &resource])["spec"]["shutdownTime"].as_str().expect("again").to_string();
    assert!(later > at, "a new shutdownTime ({later}) after {at}");
    assert_eq!(session_status(&world, &name), "running");
    world.home.run(&["delete", &name]).ok();
    drop(world);

    // `false`: a bare pod, even where agent-sandbox is installed.
    let bare = World::start_with(&config(&kube, true));
    let name = unique("kb-bare");
    let made = create(&bare, &name, "sleep 600", &[]).ok().json();
    let resource = made["resource_id"].as_str().expect("a resource").to_string();
    assert_eq!(
        objects(&kube, "sandboxes,pods,pvc", &resource),
        [format!("persistentvolumeclaim/{resource}-data"), format!("pod/{resource}")]
    );
    bare.home.run(&["delete", &name]).ok();
    drop(bare);

    // `true` where the cluster has no agent-sandbox: the create says how to get it.
    let plain = TestCluster::mock(&[]);
    let world = World::start_with(&config_with(&plain, true, "true"));
    let refused = create(&world, &unique("kb-nobox"), "true", &[]);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert_ne!(refused.code, 0, "{said}");
    assert!(
        said.contains("does not serve agent-sandbox's Sandbox") && said.contains("install agent-sandbox"),
        "{said}"
    );
    let left = plain.ok(&["get", "pods,pvc,networkpolicies", "-l", "dev.clauderon.component=kubernetes", "-o", "name"]);
    assert_eq!(left.trim(), "", "a refused create leaves nothing");
}
