//! Proxy benchmark (run by `just bench`): printed figures, never asserted.
//!
//! In one run, all on 127.0.0.1 against `clauderon-mock-upstream` (TLS,
//! HTTP/1.1 pinned on every client, `TCP_NODELAY`), it compares
//! - **direct**: client → mock;
//! - **tcp relay**: client → a plain TCP relay → mock (the cost of the extra
//!   loopback hop alone, which any proxy pays);
//! - **clauderon**: client → clauderon's proxy, in the whole daemon built
//!   in-process (`clauderon-daemon`, as `clauderon daemon` builds it: CA,
//!   upstream client trusting the mock's CA, one config rule injecting
//!   `authorization: Bearer` for `localhost`, the `file` credential source,
//!   the real audit log in its store), on its own tokio runtime;
//! - **nginx**: client → Debian's nginx as a TLS-terminating reverse proxy
//!   setting the same header (`proxy_set_header`), keep-alive and verified
//!   TLS to the mock, unbuffered, with a buffered access log (clauderon
//!   audits every request); installed with apt when missing;
//! - **mitmproxy**: client → `mitmdump` with an addon setting the same header
//!   and large bodies streamed (installed into a venv under the tools dir
//!   when missing; if that fails its column says why).
//!
//! Workloads: sequential keep-alive `GET /x` (p50, p99, req/s), 16 concurrent
//! tasks for 3 s (req/s) and a streamed 64 MiB `GET /bytes` (MB/s); plus each
//! proxy's CPU time per request (its threads' or processes', from `/proc`).
//! The budgets are printed against them: clauderon's added latency
//! at most nginx's, its CPU per request at most 3× the relay's, its
//! streaming at least 0.8× the relay's.
//!
//! While profiling one column, `CLAUDERON_BENCH_SKIP=mitmproxy,sandboxed`
//! (comma-separated column names) leaves columns out; `direct` is always
//! measured, the others' figures print `n/a`.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clauderon_sessions::AccessMode;

/// The allocator the `clauderon` binary uses (host/cli/src/main.rs), for the
/// daemon built in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The credential both proxies inject.
const CREDENTIAL: &str = "bench-credential-0123456789";
/// Sequential requests measured per target (a tenth as many first, to warm up),
/// in alternating rounds.
const SEQUENTIAL: usize = 3_000;
/// Fewer for mitmproxy, which is far slower.
const SEQUENTIAL_MITM: usize = 300;
const ROUNDS: usize = 10;
/// Concurrent tasks sharing one client, and how long they run.
const TASKS: usize = 16;
const CONCURRENT_FOR: Duration = Duration::from_secs(3);
const CONCURRENT_WARMUP: Duration = Duration::from_millis(500);
/// The streamed body, and how many times it is fetched per target, in
/// alternating rounds (the median is shown).
const STREAM_BYTES: usize = 64 << 20;
const STREAM_ROUNDS: usize = 7;
/// Targets.
const TARGET_ADDED_P50: Duration = Duration::from_micros(50);
const TARGET_RATIO: f64 = 20.0;
/// clauderon's CPU per request at most this many times the relay's.
const TARGET_CPU_OVER_RELAY: f64 = 3.0;
/// clauderon's streaming at least this share of the relay's.
const TARGET_STREAM_OVER_RELAY: f64 = 0.8;

fn main() {
    let mock = Mock::start();
    let mock_ca = mock.dir.path().join("ca.pem");
    let mock_pem = std::fs::read_to_string(&mock_ca).expect("reading the mock upstream's CA");
    let proxy = InProcessProxy::start(&mock_ca, mock.addr);
    let relay = Relay::start(mock.addr);
    let sandboxed_url = proxy.through_sandbox_relay();
    let skip = std::env::var("CLAUDERON_BENCH_SKIP").unwrap_or_default();
    let skipped = |name: &str| skip.split(',').any(|s| s.trim() == name);
    let mitm = if skipped("mitmproxy") {
        Err("mitmproxy skipped (CLAUDERON_BENCH_SKIP)".to_string())
    } else {
        mitmdump().and_then(|bin| Mitm::start(&bin, &mock_ca))
    };
    let nginx = if skipped("nginx") {
        Err("nginx skipped (CLAUDERON_BENCH_SKIP)".to_string())
    } else {
        nginx().and_then(|bin| Nginx::start(&bin, mock.dir.path(), mock.addr))
    };

    let mut targets = vec![
        Target::new("direct", client(&mock_pem, None, mock.addr), mock.addr, false),
        Target::new("tcp relay", client(&mock_pem, None, relay.addr), relay.addr, false)
            .with_cpu(|| threads_cpu("tcp-relay")),
        Target::new("clauderon", client(&proxy.ca_pem, Some(&proxy.url), mock.addr), mock.addr, true)
            .with_cpu(|| threads_cpu("clauderond"))
            .with_settled(proxy.daemon.audit_stored()),
    ];
    let nginx_note = match &nginx {
        Ok(n) => {
            let pid = n.child.id();
            let client = client(&mock_pem, None, n.addr);
            targets.push(Target::new("nginx", client, n.addr, true).with_cpu(move || process_tree_cpu(pid)));
            n.version.clone()
        }
        Err(e) => format!("nginx not measured: {e}"),
    };
    let mitm_note = match &mitm {
        Ok(m) => {
            let pid = m.child.id();
            let client = client(&m.ca_pem, Some(&m.url()), mock.addr);
            targets.push(Target::new("mitmproxy", client, mock.addr, true).with_cpu(move || process_cpu(pid)));
            m.version.clone()
        }
        Err(e) => format!("mitmproxy not measured: {e}"),
    };
    // What a sandboxed session's agent goes through: the relay on its own
    // loopback, the proxy's unix socket, the same proxy.
    targets.push(
        Target::new(
            "clauderon via sandbox relay",
            client(&proxy.ca_pem, Some(&sandboxed_url), mock.addr),
            mock.addr,
            true,
        )
        .with_settled(proxy.daemon.audit_stored()),
    );
    targets.retain(|t| t.name == "direct" || !skipped(&column(t.name)));

    // The load generator's runtime; the proxy has its own (its own threads).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-client")
        .build()
        .expect("client runtime");
    let results = rt.block_on(measure(&targets, &mock.dir.path().join("requests.jsonl")));
    drop(rt);

    // Both clauderon columns go through the same proxy (and audit).
    let through_clauderon: u64 =
        targets.iter().filter(|t| t.name.starts_with("clauderon")).map(|t| t.done.load(Ordering::Relaxed)).sum();
    let stored = proxy.wait_for_audit(through_clauderon, Duration::from_secs(10));
    report(&results, &format!("{nginx_note}; {mitm_note}"), through_clauderon, stored);
    drop((proxy, relay, nginx, mitm, mock));
    // The baselines' own failures are printed; clauderon's fail the run.
    if results.iter().any(|f| !["nginx", "mitmproxy"].contains(&f.name) && !f.errors.is_empty()) {
        std::process::exit(1);
    }
}

/// The CPU time a proxy has used so far.
type CpuClock = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// One way to reach the mock, and how many requests completed through it.
#[derive(Clone)]
struct Target {
    name: &'static str,
    client: reqwest::Client,
    /// `https://localhost:PORT`, PORT being the mock's or the relay's.
    origin: String,
    /// `{origin}/x`.
    echo_url: String,
    proxied: bool,
    done: Arc<AtomicU64>,
    cpu: Option<CpuClock>,
    /// Whether the proxy has finished the work it defers (clauderon's
    /// audit commits), which its CPU figure must include.
    settled: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

impl Target {
    fn new(name: &'static str, client: reqwest::Client, port_of: SocketAddr, proxied: bool) -> Self {
        let origin = format!("https://localhost:{}", port_of.port());
        let echo_url = format!("{origin}/x");
        let done = Arc::new(AtomicU64::new(0));
        Self { name, client, origin, echo_url, proxied, done, cpu: None, settled: None }
    }

    fn with_settled(mut self, settled: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.settled = Some(Arc::new(settled));
        self
    }

    fn with_cpu(mut self, cpu: impl Fn() -> Option<Duration> + Send + Sync + 'static) -> Self {
        self.cpu = Some(Arc::new(cpu));
        self
    }

    /// Run `phase`; the proxy's CPU time meanwhile (and until it has
    /// settled: deferred work is neither left out of its figure nor left
    /// to run during the next target's), and the requests completed.
    async fn cpu_during<T>(&self, phase: impl Future<Output = T>) -> (T, Option<(Duration, u64)>) {
        let before = (self.cpu.as_ref().and_then(|c| c()), self.done.load(Ordering::Relaxed));
        let out = phase.await;
        if let Some(settled) = &self.settled {
            let until = Instant::now() + Duration::from_secs(5);
            while !settled() && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let after = (self.cpu.as_ref().and_then(|c| c()), self.done.load(Ordering::Relaxed));
        let used = match (before, after) {
            ((Some(c0), n0), (Some(c1), n1)) => Some((c1.saturating_sub(c0), n1 - n0)),
            _ => None,
        };
        (out, used)
    }
}

/// CPU time of this process's threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        if std::fs::read_to_string(task.join("comm")).ok()?.starts_with(prefix) {
            total += task_cpu(&task)?;
        }
    }
    Some(total)
}

/// CPU time of process `pid` (its live threads).
fn process_cpu(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.map(|t| task_cpu(&t.ok()?.path())).sum()
}

/// CPU time of process `pid` and its children (nginx's master and workers).
fn process_tree_cpu(pid: u32) -> Option<Duration> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let children = children.split_whitespace().filter_map(|c| c.parse::<u32>().ok());
    std::iter::once(pid).chain(children).map(process_cpu).sum()
}

/// The time a thread (`/proc/…/task/TID`) has run on a CPU, in nanoseconds
/// (`schedstat`'s first field; `stat`'s utime and stime count 10 ms ticks,
/// a tenth of what a few thousand requests cost).
fn task_cpu(task: &Path) -> Option<Duration> {
    let schedstat = std::fs::read_to_string(task.join("schedstat")).ok()?;
    Some(Duration::from_nanos(schedstat.split_whitespace().next()?.parse().ok()?))
}

/// A client trusting only `root_pem`, HTTP/1.1 only, `TCP_NODELAY`, through
/// `proxy` if given, else resolving `localhost` to `addr`.
fn client(root_pem: &str, proxy: Option<&str>, addr: SocketAddr) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(root_pem.as_bytes()).expect("a PEM root certificate");
    let builder = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .pool_max_idle_per_host(TASKS * 2)
        .timeout(Duration::from_secs(60));
    let builder = match proxy {
        Some(url) => builder.proxy(reqwest::Proxy::https(url).expect("proxy URL")),
        None => builder.no_proxy().resolve("localhost", addr),
    };
    builder.build().expect("HTTP client")
}

#[derive(Default)]
struct Figures {
    name: &'static str,
    sequential: usize,
    p50: Option<Duration>,
    p99: Option<Duration>,
    sequential_rps: Option<f64>,
    concurrent_rps: Option<f64>,
    stream_mbs: Option<f64>,
    /// The proxy's CPU time per request, sequential and concurrent.
    cpu_sequential: Option<Duration>,
    cpu_concurrent: Option<Duration>,
    /// The proxy's CPU time per MiB streamed.
    cpu_stream: Option<Duration>,
    errors: Vec<String>,
}

/// Every figure for every target: sequential latency sampled in alternating
/// rounds (so machine drift hits every target alike), then per target the
/// concurrent workload, then streaming in alternating rounds.
async fn measure(targets: &[Target], mock_log: &Path) -> Vec<Figures> {
    let mut figures: Vec<Figures> = targets.iter().map(|t| Figures { name: t.name, ..Figures::default() }).collect();
    let mut samples = vec![Vec::new(); targets.len()];
    let mut cpu = vec![Some((Duration::ZERO, 0)); targets.len()];
    eprintln!("bench: sequential GET /x, {ROUNDS} alternating rounds …");
    for (t, f) in targets.iter().zip(&mut figures) {
        f.sequential = if t.name == "mitmproxy" { SEQUENTIAL_MITM } else { SEQUENTIAL };
        let warmed = async {
            if t.proxied {
                check_injected(t, mock_log).await?;
            }
            sequential(t, f.sequential / 10).await
        };
        if let Err(e) = warmed.await {
            f.errors.push(e);
        }
    }
    for _ in 0..ROUNDS {
        for (i, t) in targets.iter().enumerate() {
            if !figures[i].errors.is_empty() {
                continue;
            }
            let (round, used) = t.cpu_during(sequential(t, figures[i].sequential / ROUNDS)).await;
            match round {
                Ok(round) => samples[i].extend(round),
                Err(e) => figures[i].errors.push(format!("sequential: {e}")),
            }
            cpu[i] = add_cpu(cpu[i], used);
        }
    }
    for (i, (t, f)) in targets.iter().zip(&mut figures).enumerate() {
        if !f.errors.is_empty() {
            continue;
        }
        let samples = &mut samples[i];
        samples.sort();
        let total: Duration = samples.iter().sum();
        f.p50 = Some(percentile(samples, 0.50));
        f.p99 = Some(percentile(samples, 0.99));
        f.sequential_rps = Some(samples.len() as f64 / total.as_secs_f64());
        f.cpu_sequential = per_request(cpu[i]);
        eprintln!("bench: {} concurrent …", t.name);
        let (conc, used) = t.cpu_during(concurrent(t)).await;
        f.cpu_concurrent = per_request(used);
        match conc {
            Ok(rps) => f.concurrent_rps = Some(rps),
            Err(e) => f.errors.push(format!("concurrent: {e}")),
        }
    }
    eprintln!("bench: streaming {} MiB, {STREAM_ROUNDS} alternating rounds …", STREAM_BYTES >> 20);
    let mut rates = vec![Vec::with_capacity(STREAM_ROUNDS); targets.len()];
    let mut cpu = vec![Some((Duration::ZERO, 0)); targets.len()];
    for _ in 0..STREAM_ROUNDS {
        for (i, t) in targets.iter().enumerate() {
            if !figures[i].errors.is_empty() {
                continue;
            }
            let (fetched, used) = t.cpu_during(streaming(t, &format!("{}/bytes?n={STREAM_BYTES}", t.origin))).await;
            match fetched {
                Ok(mbs) => rates[i].push(mbs),
                Err(e) => figures[i].errors.push(format!("streaming: {e}")),
            }
            cpu[i] = add_cpu(cpu[i], used);
        }
    }
    for ((f, mut rates), cpu) in figures.iter_mut().zip(rates).zip(cpu) {
        rates.sort_by(f64::total_cmp);
        f.stream_mbs = (f.errors.is_empty() && !rates.is_empty()).then(|| rates[rates.len() / 2]);
        // Per request (one fetch), then per MiB of it.
        f.cpu_stream = per_request(cpu).map(|per_fetch| per_fetch / (STREAM_BYTES >> 20) as u32);
    }
    figures
}

/// CPU time and requests summed over phases (none if a phase could not be measured).
fn add_cpu(total: Option<(Duration, u64)>, phase: Option<(Duration, u64)>) -> Option<(Duration, u64)> {
    total.zip(phase).map(|((c, n), (dc, dn))| (c + dc, n + dn))
}

fn per_request(used: Option<(Duration, u64)>) -> Option<Duration> {
    used.filter(|(_, n)| *n > 0).map(|(cpu, n)| cpu / n as u32)
}

/// One request through the proxy, checking in the mock's request log that it
/// got the injected credential (clauderon masks it out of the echo it returns).
async fn check_injected(target: &Target, mock_log: &Path) -> Result<(), String> {
    get(target).await?;
    let log = std::fs::read_to_string(mock_log).map_err(|e| format!("the mock's request log: {e}"))?;
    let last: serde_json::Value =
        log.lines().next_back().and_then(|l| serde_json::from_str(l).ok()).ok_or("the mock logged no request")?;
    let seen = last["headers"]["authorization"].as_str().unwrap_or_default();
    if seen != format!("Bearer {CREDENTIAL}") {
        return Err(format!("the credential was not injected (the mock saw authorization `{seen}`)"));
    }
    Ok(())
}

/// `GET /x` (the mock's JSON echo), read to the end.
async fn get(target: &Target) -> Result<bytes::Bytes, String> {
    let url = &target.echo_url;
    let resp = target.client.get(url).send().await.map_err(|e| error_chain(&e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(format!("GET {url}: {status} {}", text.trim()));
    }
    let body = resp.bytes().await.map_err(|e| error_chain(&e))?;
    target.done.fetch_add(1, Ordering::Relaxed);
    Ok(body)
}

/// Per-request latencies of `n` keep-alive requests, one after the other.
async fn sequential(target: &Target, n: usize) -> Result<Vec<Duration>, String> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        get(target).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// Requests/s of [`TASKS`] tasks sharing the client for [`CONCURRENT_FOR`] (after a warm-up).
async fn concurrent(target: &Target) -> Result<f64, String> {
    concurrent_for(target, CONCURRENT_WARMUP).await?;
    concurrent_for(target, CONCURRENT_FOR).await
}

async fn concurrent_for(target: &Target, length: Duration) -> Result<f64, String> {
    let started = Instant::now();
    let deadline = started + length;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut count = 0u64;
                while Instant::now() < deadline {
                    get(&target).await?;
                    count += 1;
                }
                Ok::<u64, String>(count)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.map_err(|e| format!("a load task failed: {e}"))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// MB/s (10⁶ bytes) of one fetch, reading the body chunk by chunk as it arrives.
async fn streaming(target: &Target, url: &str) -> Result<f64, String> {
    let started = Instant::now();
    let mut resp = target.client.get(url).send().await.map_err(|e| error_chain(&e))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: {}", resp.status()));
    }
    let mut read = 0usize;
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        read += chunk.len();
    }
    let took = started.elapsed();
    if read != STREAM_BYTES {
        return Err(format!("read {read} bytes, expected {STREAM_BYTES}"));
    }
    target.done.fetch_add(1, Ordering::Relaxed);
    Ok(read as f64 / took.as_secs_f64() / 1e6)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// A target's column heading.
fn column(name: &str) -> String {
    name.replace("clauderon via sandbox relay", "sandboxed")
}

fn report(results: &[Figures], baselines: &str, through_clauderon: u64, stored: u64) {
    let cell = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
    let dur = |d: Option<Duration>| cell(d.map(fmt_duration));
    let rate = |r: Option<f64>| cell(r.map(|r| format!("{r:.0}")));
    let row = |label: &str, cells: Vec<String>| {
        let mut line = format!("{label:<40}");
        for c in cells {
            line.push_str(&format!("{c:>13}"));
        }
        println!("{}", line.trim_end());
    };
    let all = |f: &dyn Fn(&Figures) -> String| -> Vec<String> { results.iter().map(f).collect() };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("clauderon proxy benchmark — 127.0.0.1, TLS, HTTP/1.1 keep-alive, clauderon-mock-upstream");
    println!("{cpus} CPUs shared by the client, the mock upstream and the proxy; {baselines}");
    println!();
    row("", results.iter().map(|f| column(f.name)).collect());
    row("sequential GET /x: requests", all(&|f| f.sequential.to_string()));
    row("  p50", all(&|f| dur(f.p50)));
    row("  p99", all(&|f| dur(f.p99)));
    row("  req/s", all(&|f| rate(f.sequential_rps)));
    row(&format!("concurrent GET /x, {TASKS} tasks: req/s"), all(&|f| rate(f.concurrent_rps)));
    row(&format!("streaming {} MiB GET /bytes: MB/s", STREAM_BYTES >> 20), all(&|f| rate(f.stream_mbs)));
    row("proxy CPU per request, sequential", all(&|f| dur(f.cpu_sequential)));
    row("proxy CPU per request, concurrent", all(&|f| dur(f.cpu_concurrent)));
    row("proxy CPU per MiB streamed", all(&|f| dur(f.cpu_stream)));
    println!();

    let get = |name: &str| results.iter().find(|f| f.name == name);
    let (direct, relay, clauderon, mitm) = (get("direct"), get("tcp relay"), get("clauderon"), get("mitmproxy"));
    let nginx = get("nginx");
    let over = |base: Option<&Figures>, proxy: Option<&Figures>, pick: fn(&Figures) -> Option<Duration>| {
        let (d, p) = (pick(base?)?, pick(proxy?)?);
        Some(p.as_secs_f64() - d.as_secs_f64())
    };
    let added = |proxy, pick| over(direct, proxy, pick);
    let us = |s: Option<f64>| cell(s.map(|s| format!("{:+.1} µs", s * 1e6)));
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let added_p50 = added(clauderon, |f| f.p50);
    let sandboxed = get("clauderon via sandbox relay");
    println!(
        "a sandboxed session's requests (its relay, the proxy's unix socket): p50 {} and p99 {} over clauderon's own listener",
        us(over(clauderon, sandboxed, |f| f.p50)),
        us(over(clauderon, sandboxed, |f| f.p99)),
    );
    println!(
        "clauderon added latency per keep-alive request: p50 {} (target ≤ {} µs: {}), p99 {}",
        us(added_p50),
        TARGET_ADDED_P50.as_micros(),
        added_p50.map_or("n/a", |a| met(a <= TARGET_ADDED_P50.as_secs_f64())),
        us(added(clauderon, |f| f.p99)),
    );
    println!(
        "  of which the extra loopback hop (tcp relay − direct): p50 {}; beyond a plain relay: p50 {}",
        us(added(relay, |f| f.p50)),
        us(over(relay, clauderon, |f| f.p50)),
    );
    if mitm.is_some() {
        println!(
            "mitmproxy added latency per keep-alive request: p50 {}, p99 {}",
            us(added(mitm, |f| f.p50)),
            us(added(mitm, |f| f.p99))
        );
    }
    let times = |r: Option<f64>| cell(r.map(|r| format!("{r:.2}×")));
    if nginx.is_some() {
        let over_nginx = |pick: fn(&Figures) -> Option<Duration>| Some(added(clauderon, pick)? / added(nginx, pick)?);
        let p50 = over_nginx(|f| f.p50);
        println!(
            "nginx added latency per keep-alive request: p50 {}, p99 {}; clauderon's ÷ nginx's: p50 {} (target ≤ 1×: {}), p99 {}",
            us(added(nginx, |f| f.p50)),
            us(added(nginx, |f| f.p99)),
            times(p50),
            p50.map_or("n/a", |r| met(r <= 1.0)),
            times(over_nginx(|f| f.p99)),
        );
        let rps = |pick: fn(&Figures) -> Option<f64>| Some(pick(clauderon?)? / pick(nginx?)?);
        println!(
            "clauderon ÷ nginx requests/s: sequential {}, concurrent {}; streaming {}",
            times(rps(|f| f.sequential_rps)),
            times(rps(|f| f.concurrent_rps)),
            times(rps(|f| f.stream_mbs)),
        );
    }
    let over_relay = |pick: fn(&Figures) -> Option<Duration>| {
        Some(pick(clauderon?)?.as_secs_f64() / pick(relay?)?.as_secs_f64().max(1e-9))
    };
    let (cpu_seq, cpu_conc) = (over_relay(|f| f.cpu_sequential), over_relay(|f| f.cpu_concurrent));
    println!(
        "clauderon ÷ tcp relay CPU per request: sequential {} (target ≤ {TARGET_CPU_OVER_RELAY}×: {}), concurrent {} ({})",
        times(cpu_seq),
        cpu_seq.map_or("n/a", |r| met(r <= TARGET_CPU_OVER_RELAY)),
        times(cpu_conc),
        cpu_conc.map_or("n/a", |r| met(r <= TARGET_CPU_OVER_RELAY)),
    );
    let stream_relay = (|| Some(clauderon?.stream_mbs? / relay?.stream_mbs?))();
    println!(
        "clauderon ÷ tcp relay streaming throughput: {} (target ≥ {TARGET_STREAM_OVER_RELAY}×: {})",
        times(stream_relay),
        stream_relay.map_or("n/a", |r| met(r >= TARGET_STREAM_OVER_RELAY)),
    );
    let ratio = |pick: fn(&Figures) -> Option<f64>| Some(pick(clauderon?)? / pick(mitm?)?);
    let verdict = |r: Option<f64>| r.map_or("n/a", |r| met(r >= TARGET_RATIO));
    let (conc, seq) = (ratio(|f| f.concurrent_rps), ratio(|f| f.sequential_rps));
    println!(
        "clauderon ÷ mitmproxy requests/s: concurrent {} (target ≥ {TARGET_RATIO}×: {}), sequential {} ({})",
        times(conc),
        verdict(conc),
        times(seq),
        verdict(seq),
    );
    let cpu = |pick: fn(&Figures) -> Option<Duration>| {
        Some(pick(mitm?)?.as_secs_f64() / pick(clauderon?)?.as_secs_f64().max(1e-9))
    };
    println!(
        "mitmproxy ÷ clauderon CPU per request: concurrent {}, sequential {}",
        times(cpu(|f| f.cpu_concurrent)),
        times(cpu(|f| f.cpu_sequential)),
    );
    let stream = (|| Some(clauderon?.stream_mbs? / direct?.stream_mbs?))();
    println!("clauderon ÷ direct streaming throughput: {}", cell(stream.map(|r| format!("{r:.2}"))));
    println!("audit: {stored} records stored for {through_clauderon} requests through clauderon (both columns)");
    for f in results {
        for e in &f.errors {
            println!("{}: ERROR {e}", f.name);
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// Poll `ready` every 20 ms for up to `secs` seconds.
fn wait_until<T>(secs: u64, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The build's target directory: this bench is `<target>/release/deps/proxy-<hash>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's own path");
    exe.ancestors().nth(3).expect("the bench runs from <target>/<profile>/deps").to_path_buf()
}

/// `clauderon-mock-upstream` (killed when dropped).
struct Mock {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Mock {
    fn start() -> Self {
        let bin = mock_bin();
        let dir = tempfile::tempdir().expect("a temporary directory for the mock upstream");
        let child = Command::new(&bin)
            .arg("--dir")
            .arg(dir.path())
            .args(["--hosts", "localhost"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut mock = Self { child, dir, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)) };
        let addr_file = mock.dir.path().join("addr");
        mock.addr = wait_until(30, || std::fs::read_to_string(&addr_file).ok()?.trim().parse().ok())
            .expect("the mock upstream did not start listening within 30 s");
        mock
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `CLAUDERON_MOCK_UPSTREAM`, else the debug build's binary (built when missing).
fn mock_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CLAUDERON_MOCK_UPSTREAM") {
        return bin.into();
    }
    let target = target_dir();
    let bin = target.join("debug").join("clauderon-mock-upstream");
    if !bin.exists() {
        eprintln!("bench: building clauderon-mock-upstream (cargo build -p clauderon-tests --bins)");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "clauderon-tests", "--bins"])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok && bin.exists(), "could not build {}", bin.display());
    }
    bin
}

/// The whole clauderon daemon in this process (`clauderon_tests::InProcess`,
/// assembled as `clauderon daemon` assembles it) with one session's
/// listener open: a rule injecting `authorization: Bearer` for `localhost`,
/// sent to the mock, and the credential in the `file` source.
struct InProcessProxy {
    daemon: clauderon_tests::InProcess,
    url: String,
    ca_pem: String,
    /// The session listener's unix socket directory.
    socket_dir: PathBuf,
}

impl InProcessProxy {
    fn start(mock_ca: &Path, mock_addr: SocketAddr) -> Self {
        let config = format!(
            "[proxy]\nextra_root_certs = [{mock_ca:?}]\n\
             max_requests_per_second = 1000000\nmax_connections_per_session = 100000\n\
             audit_records_per_minute = 1000000000\n\
             [proxy.upstreams]\n\"localhost\" = \"{mock_addr}\"\n\
             [[proxy.rules]]\nname = \"bench\"\nhosts = [\"localhost\"]\n\
             inject = [{{ service = \"bench\", header = \"authorization\", format = \"bearer\" }}]\n"
        );
        let mut daemon = clauderon_tests::InProcess::start(&config, &[("bench", CREDENTIAL)]);
        let (_, opened) = daemon.open("bench", AccessMode::ReadWrite);
        let url = opened.env.iter().find(|(k, _)| k == "HTTPS_PROXY").map(|(_, v)| v.clone()).expect("HTTPS_PROXY");
        let bundle = opened.ca_bundle.expect("the session's CA bundle");
        // The bundle starts with clauderon's CA (the system's roots follow).
        let ca_pem = std::fs::read_to_string(bundle).expect("reading the CA bundle");
        let socket_dir = opened.socket_dir.expect("the session's socket directory");
        Self { daemon, url, ca_pem, socket_dir }
    }

    /// Start a sandbox's relay (as `clauderon sandbox exec` runs it) on a free
    /// port, to this proxy's unix socket; the proxy URL through it.
    fn through_sandbox_relay(&self) -> String {
        let port = clauderon_tests::free_port();
        let socket = self.socket_dir.join(clauderon_proxy::server::SOCKET_NAME);
        for listener in clauderon_sandbox::relay::listen(port).expect("the relay's listener") {
            clauderon_sandbox::relay::serve(listener, socket.clone());
        }
        let (scheme_and_auth, _) = self.url.rsplit_once(':').expect("proxy URL with a port");
        format!("{scheme_and_auth}:{port}")
    }

    /// Records in the audit, once `expected` are stored (or after `wait`).
    fn wait_for_audit(&self, expected: u64, wait: Duration) -> u64 {
        wait_until(wait.as_secs(), || (self.daemon.audit_count() >= expected).then_some(()));
        self.daemon.audit_count()
    }
}

/// A plain TCP relay to the mock on its own runtime: the cost of one more
/// loopback hop, which any proxy pays.
struct Relay {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(to: SocketAddr) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tcp-relay".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("tcp-relay")
                    .build()
                    .expect("relay runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("relay bind");
                    ready_tx.send(listener.local_addr().expect("relay address")).expect("bench thread is waiting");
                    let accept = async {
                        while let Ok((mut client, _)) = listener.accept().await {
                            tokio::spawn(async move {
                                let Ok(mut upstream) = tokio::net::TcpStream::connect(to).await else { return };
                                let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("relay thread");
        let addr = ready_rx.recv().expect("the relay did not start");
        Self { addr, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Debian's nginx as a TLS-terminating reverse proxy in front of the mock,
/// setting the same header clauderon injects (killed when dropped). It
/// serves the mock's own leaf certificate, so the client trusts the mock's CA.
struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    version: String,
}

impl Nginx {
    fn start(bin: &Path, mock_dir: &Path, mock_addr: SocketAddr) -> Result<Self, String> {
        let version = Command::new(bin).arg("-v").output().map_err(|e| format!("{}: {e}", bin.display()))?.stderr;
        let version = String::from_utf8_lossy(&version).trim().trim_start_matches("nginx version: ").to_string();
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory for nginx: {e}"))?;
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let (d, m) = (dir.path().display(), mock_dir.display());
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|t| format!("  {t}_temp_path {d}/{t};\n"))
            .collect();
        let config = format!(
            "daemon off;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n{temp}\
               access_log {d}/access.log combined buffer=64k flush=1s;\n\
               upstream mock {{ server {mock_addr}; keepalive 64; }}\n\
               server {{\n\
                 listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {m}/leaf.pem;\n  ssl_certificate_key {m}/leaf-key.pem;\n\
                 location / {{\n\
                   proxy_pass https://mock;\n    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n\
                   proxy_set_header Authorization \"Bearer {CREDENTIAL}\";\n\
                   proxy_ssl_server_name on;\n    proxy_ssl_name localhost;\n\
                   proxy_ssl_verify on;\n    proxy_ssl_trusted_certificate {m}/ca.pem;\n\
                   proxy_ssl_session_reuse on;\n    proxy_buffering off;\n\
                 }}\n\
               }}\n\
             }}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).map_err(|e| format!("{}: {e}", conf.display()))?;
        let log = std::fs::File::create(dir.path().join("stderr.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut nginx = Self { child, _dir: dir, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), version };
        let mut exited = None;
        let ready = wait_until(10, || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                exited = Some(status);
                return Some(false);
            }
            TcpStream::connect(nginx.addr).is_ok().then_some(true)
        });
        if ready != Some(true) {
            let dir = nginx._dir.path();
            let log = ["stderr.log", "error.log"].map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default());
            let why = exited.map_or("did not listen within 10 s".to_string(), |s| format!("exited ({s})"));
            return Err(format!("nginx {why}: {}", log.join(" ").trim()));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM (not SIGKILL) so the master takes its workers down too.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// nginx: `CLAUDERON_NGINX`, on `PATH` or in `/usr/sbin` — or installed now
/// with apt (`nginx-light`; no service is started in a container without
/// an init system).
fn nginx() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("CLAUDERON_NGINX") {
        return Ok(bin.into());
    }
    let find = || {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]).map(|d| d.join("nginx")).find(|b| b.is_file())
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    eprintln!("bench: nginx is not installed; installing nginx-light with apt-get");
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut apt = if root { Command::new("apt-get") } else { Command::new("sudo") };
    if !root {
        apt.arg("apt-get");
    }
    let out = apt
        .args(["install", "-y", "-q", "nginx-light"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        return Err(format!("apt-get install nginx-light failed ({}): {}", out.status, text.trim()));
    }
    find().ok_or_else(|| "apt-get installed nginx-light but no nginx binary was found".into())
}

/// `mitmdump` (killed when dropped), its CA and port.
struct Mitm {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    ca_pem: String,
    version: String,
}

/// The addon: the same work as clauderon's rule (one header set on every request).
const MITM_ADDON: &str = "def request(flow):\n    flow.request.headers[\"authorization\"] = \"Bearer CREDENTIAL\"\n";

impl Mitm {
    fn start(bin: &Path, mock_ca: &Path) -> Result<Self, String> {
        let version =
            Command::new(bin).arg("--version").output().map_err(|e| format!("{}: {e}", bin.display()))?.stdout;
        let version = String::from_utf8_lossy(&version).lines().next().unwrap_or("mitmproxy").trim().to_string();
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory for mitmproxy: {e}"))?;
        let addon = dir.path().join("inject.py");
        std::fs::write(&addon, MITM_ADDON.replace("CREDENTIAL", CREDENTIAL)).map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let confdir = dir.path().join("conf");
        let log = std::fs::File::create(dir.path().join("mitmdump.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["-q", "--mode", "regular", "--listen-host", "127.0.0.1", "--listen-port", &port.to_string()])
            .args(["--set", &format!("confdir={}", confdir.display())])
            .args(["--set", &format!("ssl_verify_upstream_trusted_ca={}", mock_ca.display())])
            .args(["--set", "stream_large_bodies=1m"])
            .arg("-s")
            .arg(&addon)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut mitm = Self { child, dir, port, ca_pem: String::new(), version };
        let ca_file = confdir.join("mitmproxy-ca-cert.pem");
        let mut exited = None;
        let ready = wait_until(60, || {
            if let Ok(Some(status)) = mitm.child.try_wait() {
                exited = Some(status);
                return Some(false);
            }
            let up = ca_file.exists() && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok();
            up.then_some(true)
        });
        if ready != Some(true) {
            let log = std::fs::read_to_string(mitm.dir.path().join("mitmdump.log")).unwrap_or_default();
            let why = exited.map_or("did not listen within 60 s".to_string(), |s| format!("exited ({s})"));
            return Err(format!("mitmdump {why}: {}", log.trim()));
        }
        mitm.ca_pem = std::fs::read_to_string(&ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
        Ok(mitm)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mitm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mitmdump`: `CLAUDERON_MITMDUMP`, on `PATH`, in the tools venv — or
/// installed there now (`python3 -m venv` + `pip install mitmproxy`).
fn mitmdump() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("CLAUDERON_MITMDUMP") {
        return Ok(bin.into());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("mitmdump")).find(|b| b.is_file()))
        .unwrap_or_default();
    if let Some(bin) = on_path {
        return Ok(bin);
    }
    let venv = clauderon_tests::tools_dir().join("mitmproxy-venv");
    let bin = venv.join("bin").join("mitmdump");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!("bench: mitmproxy is not installed; installing it into {} (takes a minute)", venv.display());
    let run = |cmd: &mut Command| -> Result<(), String> {
        let what = format!("{cmd:?}");
        let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        Err(format!("{what} failed ({}): {}", out.status, tail.into_iter().rev().collect::<Vec<_>>().join(" / ")))
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .and_then(|()| run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "mitmproxy"])))
        .map_err(|e| format!("installing mitmproxy: {e} (put mitmdump on PATH or point CLAUDERON_MITMDUMP at it)"))?;
    if bin.is_file() { Ok(bin) } else { Err(format!("pip installed mitmproxy but {} is missing", bin.display())) }
}
