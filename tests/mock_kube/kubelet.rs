//! The mock's scheduler and kubelet, in one: it runs the pods the API
//! server stores — each container with the local Docker engine, in a
//! network namespace of its own that has only a loopback (as a pod of a
//! remote cluster that cannot open connections to this machine; only
//! port-forward reaches in), or with `--pods-reach-host` on an internal
//! Docker network of the server's own, from which the only address outside
//! it is this machine's end of it (as a cluster that can reach the user's
//! machine, and nothing else) — and writes back what happens the way a cluster does:
//! the pod's status (phase, conditions, container states with the
//! engine's own messages), events from `default-scheduler` and `kubelet`,
//! bound claims. It serves container logs.
//!
//! It never pulls an image (tests reach nothing beyond the machine): a pod
//! whose image is not on the machine gets `ErrImagePull`, then
//! `ImagePullBackOff`, and starts once the image appears. A claim is bound
//! at once to a Docker volume, whatever its storage class; a pod waits,
//! `Unschedulable`, for a claim that does not exist. Volumes:
//! `persistentVolumeClaim` and `emptyDir` (Docker volumes; `fsGroup` gives
//! them to that group, as the kubelet does). Honoured from the spec:
//! `command`, `args`, `env` values, `workingDir`, `stdin`, `tty`,
//! `volumeMounts`, memory and CPU limits, `runAsUser`, `runAsGroup`,
//! `runAsNonRoot` (checked against the image's user, as the kubelet does),
//! `allowPrivilegeEscalation: false`, `readOnlyRootFilesystem`, capabilities
//! and `restartPolicy` (a container that exits is restarted after a
//! back-off starting at 10 s: `CrashLoopBackOff`). A privileged container,
//! `hostPID` and `hostIPC` are not run: `CreateContainerConfigError`.
//!
//! Every container and volume is labelled with the server's instance, and
//! removed with its pod or claim, and all of them when the server stops.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::errors::Failure;
use crate::kinds::{EVENTS, PODS, PVCS};
use crate::store::{Change, ChangeType, Key, Store, now_rfc3339};

/// The one node.
const NODE: &str = "mock-node";
/// The label every container and volume carries: the server instance's id.
const INSTANCE_LABEL: &str = "dev.clauderon.mock-kube";
/// The label naming a container's or emptyDir volume's pod (its uid).
const POD_LABEL: &str = "dev.clauderon.mock-kube.pod";
/// The first wait before a container that stopped is started again.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);

pub struct Kubelet {
    store: Arc<Store>,
    instance: String,
    /// The Docker network pods join: `none`, or the server's internal one.
    network: String,
    /// Each running pod's task, by uid.
    pods: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Kubelet {
    /// Start acting on the store's changes (call before the first object);
    /// pods join `network` (`none`: a loopback alone).
    pub fn start(store: Arc<Store>, instance: String, network: String) -> Arc<Self> {
        let changes = store.subscribe();
        let kubelet = Arc::new(Self { store, instance, network, pods: Mutex::default() });
        tokio::spawn(kubelet.clone().run(changes));
        kubelet
    }

    async fn run(self: Arc<Self>, mut changes: broadcast::Receiver<Change>) {
        loop {
            match changes.recv().await {
                Ok(change) => self.on_change(change),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("clauderon-mock-kube: the kubelet missed {n} changes");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn on_change(self: &Arc<Self>, change: Change) {
        let uid = change.object["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        match (change.key.0, change.change) {
            (PODS, ChangeType::Added) => {
                let task = tokio::spawn(Pod::new(self.clone(), change.key, change.object).run());
                if let Ok(mut pods) = self.pods.lock() {
                    pods.insert(uid, task);
                }
            }
            (PODS, ChangeType::Deleted) => {
                let task = self.pods.lock().ok().and_then(|mut pods| pods.remove(&uid));
                let instance = self.instance.clone();
                tokio::spawn(async move {
                    if let Some(task) = task {
                        task.abort();
                        let _ = task.await;
                    }
                    remove_labelled(&instance, &format!("{POD_LABEL}={uid}")).await;
                });
            }
            (PVCS, ChangeType::Added) => {
                tokio::spawn(bind_claim(self.store.clone(), self.instance.clone(), change.key, change.object));
            }
            (PVCS, ChangeType::Deleted) => {
                tokio::spawn(async move {
                    // In use until its pod's containers are gone: try for a while.
                    for _ in 0..120 {
                        if docker(&["volume", "rm", "-f", &claim_volume(&uid)]).await.is_ok() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
            }
            _ => {}
        }
    }

    /// Remove every container and volume of this server instance, and its network.
    pub async fn clean_up(&self) {
        remove_labelled(&self.instance, &format!("{INSTANCE_LABEL}={}", self.instance)).await;
        if self.network != "none" {
            let _ = docker(&["network", "rm", &self.network]).await;
        }
    }

    /// `GET pods/NAME/log`: the container's output, followed while it runs
    /// when `follow=true`.
    pub fn logs(
        &self,
        pod: &Value,
        query: &BTreeMap<String, String>,
        body: mpsc::Sender<Bytes>,
    ) -> Result<(), Failure> {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let names: Vec<&str> =
            pod["spec"]["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
        let container = match (query.get("container"), names.as_slice()) {
            (Some(c), _) => c.as_str(),
            (None, [only]) => only,
            (None, _) => {
                return Err(Failure::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                )));
            }
        };
        if !names.contains(&container) {
            return Err(Failure::bad_request(format!("container {container} is not valid for pod {name}")));
        }
        let status = pod["status"]["containerStatuses"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == container))
            .cloned()
            .unwrap_or_default();
        let Some(id) = status["containerID"].as_str().and_then(|id| id.strip_prefix("docker://")) else {
            let reason = status["state"]["waiting"]["reason"].as_str().unwrap_or("ContainerCreating");
            return Err(Failure::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        };
        if query.get("previous").is_some_and(|p| p == "true") {
            return Err(Failure::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        let mut args = vec!["logs".to_string()];
        if let Some(n) = query.get("tailLines") {
            args.extend([
                "--tail".into(),
                n.parse::<u64>().map_err(|_| Failure::bad_request("invalid tailLines"))?.to_string(),
            ]);
        }
        if let Some(s) = query.get("sinceSeconds") {
            let s = s.parse::<u64>().map_err(|_| Failure::bad_request("invalid sinceSeconds"))?;
            args.extend(["--since".into(), format!("{s}s")]);
        }
        if query.get("timestamps").is_some_and(|t| t == "true") {
            args.push("--timestamps".into());
        }
        if query.get("follow").is_some_and(|f| f == "true") {
            args.push("--follow".into());
        }
        let limit = match query.get("limitBytes") {
            Some(n) => Some(n.parse::<usize>().map_err(|_| Failure::bad_request("invalid limitBytes"))?),
            None => None,
        };
        args.push(id.to_string());
        let mut child = Command::new("docker")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::bad_request(format!("running docker logs: {e}")))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(Failure::bad_request("docker logs gave no output pipes"));
        };
        tokio::spawn(async move {
            let mut left = limit.unwrap_or(usize::MAX);
            let (mut out, mut err) = (stdout, stderr);
            let (mut out_open, mut err_open) = (true, true);
            let (mut a, mut b) = ([0u8; 8192], [0u8; 8192]);
            while (out_open || err_open) && left > 0 {
                let (n, from) = tokio::select! {
                    n = out.read(&mut a), if out_open => (n.unwrap_or(0), 0),
                    n = err.read(&mut b), if err_open => (n.unwrap_or(0), 1),
                    () = body.closed() => break,
                };
                if n == 0 {
                    if from == 0 {
                        out_open = false
                    } else {
                        err_open = false
                    }
                    continue;
                }
                let chunk = if from == 0 { &a[..n.min(left)] } else { &b[..n.min(left)] };
                left -= chunk.len();
                if body.send(Bytes::copy_from_slice(chunk)).await.is_err() {
                    break;
                }
            }
            let _ = child.kill().await;
        });
        Ok(())
    }
}

/// One pod on the node, from scheduling to its containers' ends.
struct Pod {
    kubelet: Arc<Kubelet>,
    key: Key,
    uid: String,
    pod: Value,
}

impl Pod {
    fn new(kubelet: Arc<Kubelet>, key: Key, pod: Value) -> Self {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        Self { kubelet, key, uid, pod }
    }

    fn store(&self) -> &Store {
        &self.kubelet.store
    }

    async fn run(self) {
        let this = Arc::new(self);
        if !this.schedule().await {
            return;
        }
        let Some(mounts) = this.volumes().await else { return };
        let containers: Vec<Value> = this.pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
        this.update(|pod| {
            pod["status"]["containerStatuses"] = containers
                .iter()
                .map(|c| container_status(c, json!({"waiting": {"reason": "ContainerCreating"}})))
                .collect();
        });
        let runs: Vec<_> = containers
            .into_iter()
            .map(|c| {
                let this = this.clone();
                let mounts = mounts.clone();
                tokio::spawn(async move { this.run_container(c, &mounts).await })
            })
            .collect();
        for run in runs {
            let _ = run.await;
        }
    }

    /// Change the stored pod (if it is still this one), then derive its phase
    /// and conditions from its containers.
    fn update(&self, change: impl FnOnce(&mut Value)) -> bool {
        self.store()
            .update(&self.key, &self.uid, |pod| {
                change(pod);
                derive_phase(pod);
            })
            .is_some()
    }

    fn event(&self, reason: &str, message: &str, warning: bool, component: &str, container: Option<&str>) {
        let (ns, name) = (&self.key.1, &self.key.2);
        let mut involved = json!({"kind": "Pod", "namespace": ns, "name": name, "uid": self.uid, "apiVersion": "v1"});
        if let Some(c) = container {
            involved["fieldPath"] = json!(format!("spec.containers{{{c}}}"));
        }
        let now = now_rfc3339();
        let event = json!({
            "metadata": {"name": format!("{name}.{}", &uuid::Uuid::new_v4().simple().to_string()[..16]), "namespace": ns},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": if warning { "Warning" } else { "Normal" },
            "source": {"component": component, "host": NODE},
            "reportingComponent": component, "reportingInstance": NODE,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1
        });
        if let Err(e) = self.store().create(EVENTS, ns, event) {
            eprintln!("clauderon-mock-kube: recording an event: {:?}", e.1);
        }
    }

    /// Bind the pod to the node once every claim it mounts exists and is bound.
    async fn schedule(&self) -> bool {
        let claims: Vec<String> = self.pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str().map(str::to_string))
            .collect();
        let mut told = false;
        loop {
            let missing = claims.iter().find_map(|claim| match self.store().get(PVCS, &self.key.1, claim) {
                Ok(pvc) if pvc["status"]["phase"] == "Bound" => None,
                Ok(_) => Some(format!("pod has unbound immediate PersistentVolumeClaims ({claim})")),
                Err(_) => Some(format!("persistentvolumeclaim \"{claim}\" not found")),
            });
            let Some(missing) = missing else { break };
            if !told {
                told = true;
                let message = format!("0/1 nodes are available: {missing}. preemption: 0/1 nodes are available.");
                if !self.update(|pod| {
                    pod["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
                        "reason": "Unschedulable", "message": message, "lastTransitionTime": now_rfc3339()}]);
                }) {
                    return false;
                }
                self.event("FailedScheduling", &message, true, "default-scheduler", None);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let now = now_rfc3339();
        let bound = self.store().update(&self.key, &self.uid, |pod| {
            pod["spec"]["nodeName"] = json!(NODE);
            pod["status"]["conditions"] =
                json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]);
            pod["status"]["startTime"] = json!(now);
            pod["status"]["hostIP"] = json!("127.0.0.1");
            pod["status"]["podIP"] = json!("127.0.0.1");
            pod["status"]["podIPs"] = json!([{"ip": "127.0.0.1"}]);
            pod["status"]["qosClass"] = json!("Burstable");
        });
        if bound.is_none() {
            return false;
        }
        self.event(
            "Scheduled",
            &format!("Successfully assigned {}/{} to {NODE}", self.key.1, self.key.2),
            false,
            "default-scheduler",
            None,
        );
        true
    }

    /// The Docker volume behind each of the pod's volumes, made ready; a
    /// volume that cannot be is a `FailedMount` event and the pod waits.
    async fn volumes(&self) -> Option<HashMap<String, String>> {
        let mut out = HashMap::new();
        for v in self.pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap_or_default();
            let source = if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                let pvc = self.store().get(PVCS, &self.key.1, claim).ok()?;
                claim_volume(pvc["metadata"]["uid"].as_str().unwrap_or_default())
            } else if v.get("emptyDir").is_some() {
                let volume = format!("mk-{}-{name}", self.uid);
                let labels =
                    [format!("{INSTANCE_LABEL}={}", self.kubelet.instance), format!("{POD_LABEL}={}", self.uid)];
                if let Err(e) =
                    docker(&["volume", "create", "--label", &labels[0], "--label", &labels[1], &volume]).await
                {
                    self.event(
                        "FailedMount",
                        &format!("MountVolume.SetUp failed for volume \"{name}\" : {e}"),
                        true,
                        "kubelet",
                        None,
                    );
                    return None;
                }
                volume
            } else {
                let kind = v.as_object().and_then(|o| o.keys().find(|k| *k != "name").cloned()).unwrap_or_default();
                self.event(
                    "FailedMount",
                    &format!("MountVolume.SetUp failed for volume \"{name}\" : {kind} volumes are not served by this mock API server (persistentVolumeClaim and emptyDir are)"),
                    true,
                    "kubelet",
                    None,
                );
                return None;
            };
            out.insert(name.to_string(), source);
        }
        Some(out)
    }

    /// Set this container's status (and the pod's phase with it).
    fn set_container(&self, name: &str, change: impl FnOnce(&mut Value)) -> bool {
        self.update(|pod| {
            if let Some(status) = pod["status"]["containerStatuses"]
                .as_array_mut()
                .and_then(|all| all.iter_mut().find(|s| s["name"] == name))
            {
                change(status);
            }
        })
    }

    /// A container that cannot start: waiting for `reason`, and a `Failed` event saying why.
    /// As the kubelet does for `fsGroup`: the volumes' files belong to the
    /// group, group-writable. Done with the container's image once it is
    /// on the machine (never pulled), as root, with no network.
    async fn set_fs_group(&self, image: &str, mounts: &HashMap<String, String>) -> Result<(), String> {
        let Some(group) = self.pod["spec"]["securityContext"]["fsGroup"].as_u64() else { return Ok(()) };
        let script = format!(
            "chgrp -R {group} /volume && chmod -R g+rwX /volume && find /volume -type d -exec chmod g+s {{}} +"
        );
        for (name, source) in mounts {
            let mount = format!("type=volume,src={source},dst=/volume");
            let args = [
                "run",
                "--rm",
                "--pull",
                "never",
                "--network",
                "none",
                "--user",
                "0",
                "--entrypoint",
                "sh",
                "--mount",
                &mount,
                image,
                "-c",
                &script,
            ];
            docker(&args).await.map_err(|e| {
                format!("MountVolume.SetUp failed for volume \"{name}\" : setting fsGroup {group}: {e}")
            })?;
        }
        Ok(())
    }

    fn cannot_start(&self, name: &str, reason: &str, why: &str) {
        self.waiting(name, reason, why);
        self.event("Failed", &format!("Error: {why}"), true, "kubelet", Some(name));
    }

    fn waiting(&self, name: &str, reason: &str, message: &str) -> bool {
        self.set_container(name, |s| {
            s["state"] = json!({"waiting": {"reason": reason, "message": message}});
            s["ready"] = json!(false);
        })
    }

    async fn run_container(&self, spec: Value, mounts: &HashMap<String, String>) {
        let name = spec["name"].as_str().unwrap_or_default().to_string();
        let image = spec["image"].as_str().unwrap_or_default().to_string();
        let here = Some(name.as_str());
        // The image: never pulled.
        let mut told = false;
        let config = loop {
            match docker(&["image", "inspect", "--format", "{{json .Config}}", &image]).await {
                Ok(config) => break serde_json::from_str::<Value>(&config).unwrap_or_default(),
                Err(_) => {
                    if !told {
                        told = true;
                        let why = format!(
                            "Failed to pull image \"{image}\": this mock API server does not pull images, and {image} is not on this machine"
                        );
                        self.event("Pulling", &format!("Pulling image \"{image}\""), false, "kubelet", here);
                        self.event("Failed", &why, true, "kubelet", here);
                        self.event("Failed", "Error: ErrImagePull", true, "kubelet", here);
                        if !self.waiting(&name, "ErrImagePull", &why) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let backoff = format!("Back-off pulling image \"{image}\"");
                        self.event("BackOff", &backoff, false, "kubelet", here);
                        self.event("Failed", "Error: ImagePullBackOff", true, "kubelet", here);
                        if !self.waiting(&name, "ImagePullBackOff", &backoff) {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        self.event(
            "Pulled",
            &format!("Container image \"{image}\" already present on machine"),
            false,
            "kubelet",
            here,
        );
        if let Err(why) = self.set_fs_group(&image, mounts).await {
            self.event("FailedMount", &why, true, "kubelet", None);
            return;
        }
        let args = match self.create_args(&spec, &config, mounts) {
            Ok(args) => args,
            Err(why) => return self.cannot_start(&name, "CreateContainerConfigError", &why),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = match docker(&args).await {
            Ok(id) => id,
            Err(why) => return self.cannot_start(&name, "CreateContainerError", &why),
        };
        self.set_container(&name, |s| s["containerID"] = json!(format!("docker://{id}")));
        self.event("Created", &format!("Created container: {name}"), false, "kubelet", here);
        let policy = self.pod["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_string();
        let mut backoff = FIRST_BACKOFF;
        loop {
            if let Err(why) = docker(&["start", &id]).await {
                return self.cannot_start(&name, "RunContainerError", &why);
            }
            let started = now_rfc3339();
            self.event("Started", &format!("Started container {name}"), false, "kubelet", here);
            if !self.set_container(&name, |s| {
                s["state"] = json!({"running": {"startedAt": started}});
                s["ready"] = json!(true);
                s["started"] = json!(true);
            }) {
                return;
            }
            let code: i64 = docker(&["wait", &id]).await.ok().and_then(|c| c.parse().ok()).unwrap_or(-1);
            // The engine records an OOM kill from its own event, which can
            // come a little after the exit (a SIGKILL's 137): ask again.
            let mut oom_killed = false;
            for _ in 0..if code == 137 { 20 } else { 1 } {
                let state: Value = docker(&["inspect", "--format", "{{json .State}}", &id])
                    .await
                    .ok()
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default();
                oom_killed = state["OOMKilled"] == true;
                if oom_killed {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let reason = if oom_killed {
                "OOMKilled"
            } else if code == 0 {
                "Completed"
            } else {
                "Error"
            };
            let terminated = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started,
                "finishedAt": now_rfc3339(), "containerID": format!("docker://{id}")}});
            let restart = match policy.as_str() {
                "Never" => false,
                "OnFailure" => code != 0,
                _ => true,
            };
            if !restart {
                self.set_container(&name, |s| {
                    s["state"] = terminated;
                    s["ready"] = json!(false);
                });
                return;
            }
            let pod = pod_ref(&self.key, &self.uid);
            let message = format!("back-off {}s restarting failed container={name} pod={pod}", backoff.as_secs());
            if !self.set_container(&name, |s| {
                s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}});
                s["lastState"] = terminated;
                s["ready"] = json!(false);
                s["restartCount"] = json!(s["restartCount"].as_u64().unwrap_or(0) + 1);
            }) {
                return;
            }
            self.event(
                "BackOff",
                &format!("Back-off restarting failed container {name} in pod {pod}"),
                true,
                "kubelet",
                here,
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(300));
        }
    }

    /// `docker create`'s arguments for a container of this pod, or why it
    /// cannot be run.
    fn create_args(
        &self,
        c: &Value,
        image_config: &Value,
        mounts: &HashMap<String, String>,
    ) -> Result<Vec<String>, String> {
        let spec = &self.pod["spec"];
        let name = c["name"].as_str().unwrap_or_default();
        let pod_sc = &spec["securityContext"];
        let sc = &c["securityContext"];
        let setting =
            |field: &str| sc.get(field).filter(|v| !v.is_null()).or_else(|| pod_sc.get(field).filter(|v| !v.is_null()));
        if sc["privileged"] == true || spec["hostPID"] == true || spec["hostIPC"] == true {
            return Err(
                "this mock API server does not run privileged containers or share the host's PID or IPC namespace"
                    .into(),
            );
        }
        let user = setting("runAsUser").and_then(Value::as_u64);
        let group = setting("runAsGroup").and_then(Value::as_u64);
        if setting("runAsNonRoot") == Some(&json!(true)) {
            check_non_root(user, image_config["User"].as_str().unwrap_or_default(), name, &self.key, &self.uid)?;
        }
        let mut args: Vec<String> = vec![
            "create".into(),
            "--name".into(),
            format!("mk-{}-{name}", self.uid),
            "--label".into(),
            format!("{INSTANCE_LABEL}={}", self.kubelet.instance),
            "--label".into(),
            format!("{POD_LABEL}={}", self.uid),
            // Its own network namespace with only a loopback: like a pod
            // in a cluster that cannot reach this machine (port-forward
            // reaches into it); or on the server's internal network. A real
            // pod's containers share one; here each has its own (tests run
            // one container per pod).
            "--network".into(),
            self.kubelet.network.clone(),
        ];
        match (user, group) {
            (Some(u), Some(g)) => args.extend(["--user".into(), format!("{u}:{g}")]),
            (Some(u), None) => args.extend(["--user".into(), u.to_string()]),
            (None, Some(g)) => args.extend([
                "--user".into(),
                format!("{}:{g}", image_config["User"].as_str().filter(|u| !u.is_empty()).unwrap_or("0")),
            ]),
            (None, None) => {}
        }
        if let Some(fs_group) = pod_sc["fsGroup"].as_u64() {
            args.extend(["--group-add".into(), fs_group.to_string()]);
        }
        if sc["allowPrivilegeEscalation"] == false {
            args.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        if sc["readOnlyRootFilesystem"] == true {
            args.push("--read-only".into());
        }
        for cap in sc["capabilities"]["drop"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            args.extend(["--cap-drop".into(), cap.to_string()]);
        }
        for cap in sc["capabilities"]["add"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            args.extend(["--cap-add".into(), cap.to_string()]);
        }
        if let Some(memory) = c["resources"]["limits"]["memory"].as_str() {
            args.extend([
                "--memory".into(),
                quantity(memory).ok_or(format!("invalid memory limit {memory:?}"))?.to_string(),
            ]);
        }
        if let Some(cpu) = c["resources"]["limits"]["cpu"].as_str() {
            let millis = if let Some(m) = cpu.strip_suffix('m') {
                m.parse::<f64>().ok()
            } else {
                cpu.parse::<f64>().ok().map(|c| c * 1000.0)
            };
            args.extend([
                "--cpus".into(),
                format!("{:.3}", millis.ok_or(format!("invalid cpu limit {cpu:?}"))? / 1000.0),
            ]);
        }
        if c["stdin"] == true {
            args.push("--interactive".into());
        }
        if c["tty"] == true {
            args.push("--tty".into());
        }
        if let Some(dir) = c["workingDir"].as_str() {
            args.extend(["--workdir".into(), dir.to_string()]);
        }
        for env in c["env"].as_array().into_iter().flatten() {
            // A literal, or the pod's own name, namespace or uid (the downward API).
            let field = env["valueFrom"]["fieldRef"]["fieldPath"].as_str();
            let value = match (env["value"].as_str(), field) {
                (Some(value), _) => Some(value),
                (None, Some("metadata.name" | "metadata.namespace" | "metadata.uid")) => {
                    field.and_then(|f| self.pod["metadata"][f.trim_start_matches("metadata.")].as_str())
                }
                _ => None,
            };
            let (Some(key), Some(value)) = (env["name"].as_str(), value) else {
                return Err(format!(
                    "env {}: only literal values and the pod's metadata.name, .namespace and .uid are served by this mock API server",
                    env["name"]
                ));
            };
            args.extend(["--env".into(), format!("{key}={value}")]);
        }
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let volume = m["name"].as_str().unwrap_or_default();
            let source = mounts.get(volume).ok_or(format!("volume mount {volume:?}: no such volume in the pod"))?;
            if m.get("subPath").is_some() {
                return Err("volumeMounts[].subPath is not served by this mock API server".into());
            }
            let mut mount = format!("type=volume,src={source},dst={}", m["mountPath"].as_str().unwrap_or_default());
            if m["readOnly"] == true {
                mount.push_str(",readonly");
            }
            args.extend(["--mount".into(), mount]);
        }
        // command replaces the image's entrypoint, args its cmd.
        let command: Vec<&str> = c["command"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let cmd_args: Vec<&str> = c["args"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if let Some((first, rest)) = command.split_first() {
            args.extend(["--entrypoint".into(), first.to_string()]);
            args.push(c["image"].as_str().unwrap_or_default().to_string());
            args.extend(rest.iter().map(|s| s.to_string()));
        } else {
            args.push(c["image"].as_str().unwrap_or_default().to_string());
        }
        args.extend(cmd_args.iter().map(|s| s.to_string()));
        Ok(args)
    }
}

/// A container status as the kubelet first writes it.
fn container_status(c: &Value, state: Value) -> Value {
    json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
           "restartCount": 0, "state": state, "lastState": {}})
}

/// The pod's phase and conditions, from its containers' states.
fn derive_phase(pod: &mut Value) {
    let Some(statuses) = pod["status"]["containerStatuses"].as_array() else { return };
    if statuses.is_empty() || pod["status"]["reason"] == "Evicted" {
        return;
    }
    let state = |s: &Value, which: &str| s["state"].get(which).is_some();
    let ran = |s: &Value| state(s, "running") || s["restartCount"].as_u64().unwrap_or(0) > 0 || state(s, "terminated");
    let ready = statuses.iter().all(|s| state(s, "running"));
    let phase = if statuses.iter().all(|s| state(s, "terminated")) {
        if statuses.iter().all(|s| s["state"]["terminated"]["exitCode"] == 0) { "Succeeded" } else { "Failed" }
    } else if statuses.iter().any(ran) {
        "Running"
    } else {
        "Pending"
    };
    let flag = |b: bool| if b { "True" } else { "False" };
    let now = now_rfc3339();
    pod["status"]["phase"] = json!(phase);
    pod["status"]["conditions"] = json!([
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag(ready), "lastTransitionTime": now},
        {"type": "Ready", "status": flag(ready), "lastTransitionTime": now},
    ]);
}

/// The kubelet's `runAsNonRoot` check: a user of 0 (from the spec or the
/// image) or one it cannot verify is refused.
fn check_non_root(user: Option<u64>, image_user: &str, container: &str, key: &Key, uid: &str) -> Result<(), String> {
    let pod = format!("pod: \"{}\", container: {container}", pod_ref(key, uid));
    let image_user = image_user.split(':').next().unwrap_or_default();
    match user {
        Some(0) => Err(format!("container's runAsUser breaks non-root policy ({pod})")),
        Some(_) => Ok(()),
        None if image_user.is_empty() || image_user == "0" || image_user == "root" => {
            Err(format!("container has runAsNonRoot and image will run as root ({pod})"))
        }
        None if image_user.parse::<u64>().is_err() => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({image_user}), cannot verify user is non-root ({pod})"
        )),
        None => Ok(()),
    }
}

/// A pod as the kubelet names it in messages: `NAME_NAMESPACE(UID)`.
fn pod_ref(key: &Key, uid: &str) -> String {
    format!("{}_{}({uid})", key.2, key.1)
}

/// A quantity such as `512Mi`, `1G` or `1000000`, in bytes.
fn quantity(text: &str) -> Option<u64> {
    const UNITS: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in UNITS {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<u64>().ok()?.checked_mul(*factor);
        }
    }
    text.parse().ok()
}

/// The Docker volume behind the claim with `uid`.
fn claim_volume(uid: &str) -> String {
    format!("mk-pvc-{uid}")
}

/// Bind a new claim: its Docker volume, then `Bound` with the size it asked for.
async fn bind_claim(store: Arc<Store>, instance: String, key: Key, pvc: Value) {
    let uid = pvc["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    let label = format!("{INSTANCE_LABEL}={instance}");
    if let Err(e) = docker(&["volume", "create", "--label", &label, &claim_volume(&uid)]).await {
        eprintln!("clauderon-mock-kube: a volume for claim {}: {e}", key.2);
        return;
    }
    store.update(&key, &uid, |pvc| {
        pvc["spec"]["volumeName"] = json!(format!("pvc-{uid}"));
        pvc["status"] = json!({
            "phase": "Bound",
            "accessModes": pvc["spec"]["accessModes"],
            "capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
        });
    });
}

/// Make the server's internal Docker network (no way beyond it but to
/// this machine's end of it, its gateway): its name and that address.
pub async fn internal_network(instance: &str) -> Result<(String, String), String> {
    let name = format!("mk-{instance}");
    docker(&["network", "create", "--internal", "--label", &format!("{INSTANCE_LABEL}={instance}"), &name]).await?;
    let gateway = docker(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", &name]).await?;
    let gateway = gateway.trim().to_string();
    if gateway.is_empty() {
        let _ = docker(&["network", "rm", &name]).await;
        return Err(format!("network {name} has no gateway address"));
    }
    Ok((name, gateway))
}

/// Remove the containers, then the volumes, carrying `label`.
async fn remove_labelled(instance: &str, label: &str) {
    let filter = format!("label={label}");
    let instance_filter = format!("label={INSTANCE_LABEL}={instance}");
    if let Ok(ids) = docker(&["ps", "-aq", "--filter", &filter, "--filter", &instance_filter]).await {
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = docker(&args).await;
        }
    }
    if let Ok(names) = docker(&["volume", "ls", "-q", "--filter", &filter, "--filter", &instance_filter]).await {
        let names: Vec<&str> = names.split_whitespace().collect();
        if !names.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(names);
            let _ = docker(&args).await;
        }
    }
}

/// Run `docker ARGS`: its standard output, or its standard error as the reason.
async fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_binary_and_decimal_suffixes() {
        assert_eq!(quantity("512Mi"), Some(512 << 20));
        assert_eq!(quantity("1G"), Some(1_000_000_000));
        assert_eq!(quantity("1024"), Some(1024));
        assert_eq!(quantity("lots"), None);
    }

    #[test]
    fn run_as_non_root_is_checked_against_the_image_user_as_the_kubelet_does() {
        let key: Key = (PODS, "ns".into(), "p".into());
        assert!(check_non_root(Some(1000), "", "c", &key, "u").is_ok());
        assert!(check_non_root(None, "1000:1000", "c", &key, "u").is_ok());
        let root = check_non_root(None, "", "c", &key, "u").expect_err("root image");
        assert!(root.contains("image will run as root") && root.contains("p_ns(u)"), "{root}");
        assert!(
            check_non_root(None, "node", "c", &key, "u").expect_err("named user").contains("non-numeric user (node)")
        );
        assert!(check_non_root(Some(0), "1000", "c", &key, "u").is_err());
    }

    #[test]
    fn the_phase_follows_the_containers() {
        let mut pod = json!({"status": {"containerStatuses": [
            {"state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0}
        ]}});
        derive_phase(&mut pod);
        assert_eq!(pod["status"]["phase"], "Pending");
        pod["status"]["containerStatuses"][0]["state"] = json!({"running": {}});
        derive_phase(&mut pod);
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(
            pod["status"]["conditions"][3],
            json!({"type": "Ready", "status": "True", "lastTransitionTime": pod["status"]["conditions"][3]["lastTransitionTime"]})
        );
        pod["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
        pod["status"]["containerStatuses"][0]["restartCount"] = json!(1);
        derive_phase(&mut pod);
        assert_eq!(pod["status"]["phase"], "Running", "a restarting container keeps the pod Running");
        pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 3}});
        derive_phase(&mut pod);
        assert_eq!(pod["status"]["phase"], "Failed");
    }
}
