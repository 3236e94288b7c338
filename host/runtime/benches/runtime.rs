//! Performance figures for clauderon-runtime: printed, never asserted.
//!
//! Run with `just bench`, which builds the components first and sets
//! `CLAUDERON_COMPONENTS_DIR` (bundled components) and `CLAUDERON_TEST_COMPONENTS`
//! (test fixtures and SDK templates). What it measures, on a multi-threaded
//! tokio runtime like the daemon's, with the release profile:
//!
//! 1. **Fresh instance per call**: `Runtime::agent` (or `backend`, ...) then
//!    `info()`, the instance dropped, per iteration; for the bundled `shell`
//!    agent and every SDK template.
//! 2. **Reused instance**: `info()` and `plan(&LaunchRequest)` on one live
//!    `shell` instance (and `info()` on a backend), plus the wrapper's
//!    output-size check (`limits::fits`) alone.
//! 3. **Bare-wasmtime baseline**, same run, same `Engine` (so the same
//!    configuration: epoch interruption, pooling allocator): the `shell`
//!    component compiled with `Component::new`, a `Linker` holding only the
//!    empty `types` instance and a no-op `log.write`, `AgentPre` from the
//!    generated bindings over a unit store type; per iteration a fresh `Store`
//!    (epoch deadline set, no limiter), `instantiate_async` and `call_info`.
//!    The wrapper's cost shows as the ratio to it; wrapper and baseline are
//!    sampled in alternating rounds so machine drift hits both alike.
//! 4. **Start-up** with every bundled component: `Runtime::new` + `load_all`
//!    from a fresh empty cache directory (cold) and over a primed one (from
//!    cache); and per component, compile (a cache miss) vs load from the cache.
//!
//! Each call sample is one call timed on its own with `Instant` (the timer's
//! own cost, printed in the header, is included in every figure); medians and
//! p99 are over all samples after a warm-up.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clauderon_runtime::bindings::agent::exports::clauderon::plugin::agent_api::LaunchRequest;
use clauderon_runtime::bindings::agent::{Agent, AgentPre};
use clauderon_runtime::bindings::log::Level;
use clauderon_runtime::cache::{CompileCache, Outcome};
use clauderon_runtime::engine::EngineHandle;
use clauderon_runtime::{Instance, Kind, Limits, Runtime, RuntimeConfig, Source, limits};
use wasmtime::Store;
use wasmtime::component::{Component, Linker};

/// Calls before sampling starts.
const WARMUP: usize = 1_000;
/// Alternating rounds when a wrapper figure is compared with its baseline.
const ROUNDS: usize = 50;
/// Samples of a fresh-instance call on `shell` (wrapper and baseline).
const FRESH_SAMPLES: usize = 20_000;
/// Samples of a fresh-instance call on each other component.
const OTHER_FRESH_SAMPLES: usize = 5_000;
/// Samples of a call on a reused instance.
const REUSED_SAMPLES: usize = 100_000;
/// Cold and from-cache start-ups.
const COLD_STARTS: usize = 5;
const WARM_STARTS: usize = 15;
/// Per-component compiles and cache loads.
const COMPILES: usize = 3;
const CACHE_LOADS: usize = 20;

/// The goals from the design, shown next to the figures (informational).
const FRESH_CALL_GOAL: Duration = Duration::from_micros(25);
const WARM_START_GOAL: Duration = Duration::from_millis(150);

/// The bundled agent measured against the baseline.
const SHELL: &str = "shell";
/// The imports the `shell` component needs from the baseline's linker.
const TYPES_IMPORT: &str = "clauderon:plugin/types@0.1.0";
const LOG_IMPORT: &str = "clauderon:plugin/log@0.1.0";

fn main() {
    let inputs = Inputs::from_env();
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    tokio.block_on(run(inputs));
}

async fn run(inputs: Inputs) {
    header(&inputs);
    let fresh = calls(&inputs).await;
    let start = startup(&inputs).await;
    goals(fresh, start);
}

// ---------------------------------------------------------------- inputs

/// The components to measure.
struct Inputs {
    bundled: Vec<Source>,
    templates: Vec<Source>,
    bundled_dir: PathBuf,
}

impl Inputs {
    fn from_env() -> Self {
        let bundled_dir = env_dir("CLAUDERON_COMPONENTS_DIR", "");
        let templates_dir = env_dir("CLAUDERON_TEST_COMPONENTS", "templates");
        let bundled = wasm_sources(&bundled_dir);
        if !bundled.iter().any(|s| name(s) == SHELL) {
            fail(&format!(
                "{} has no {SHELL}.wasm: run `just bench` (it runs `just components` first)",
                bundled_dir.display()
            ));
        }
        Self { bundled, templates: wasm_sources(&templates_dir), bundled_dir }
    }

    fn all(&self) -> Vec<Source> {
        self.bundled.iter().chain(&self.templates).cloned().collect()
    }

    fn shell_bytes(&self) -> Arc<[u8]> {
        let shell = self.bundled.iter().find(|s| name(s) == SHELL).expect("checked in from_env");
        shell.bytes().clone()
    }
}

fn fail(message: &str) -> ! {
    eprintln!("bench: {message}");
    std::process::exit(2);
}

/// A directory of built components named by an environment variable `just` sets.
fn env_dir(var: &str, sub: &str) -> PathBuf {
    let Some(base) = std::env::var_os(var) else {
        fail(&format!(
            "{var} is not set: run the benchmark with `just bench` (or `./justw bench`), which builds the components and sets it"
        ));
    };
    let dir = PathBuf::from(base).join(sub);
    if !dir.is_dir() {
        fail(&format!("{} does not exist: run `just bench` (it runs `just components` first)", dir.display()));
    }
    dir
}

/// Every `*.wasm` in `dir`, as bundled sources named after the file.
fn wasm_sources(dir: &Path) -> Vec<Source> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())));
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    paths.sort();
    paths.iter().map(|p| source(p.as_path())).collect()
}

fn source(path: &Path) -> Source {
    let bytes = std::fs::read(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
    let name = path.file_stem().expect("a .wasm file has a stem").to_string_lossy().into_owned();
    Source::Bundled { name, bytes: bytes.into() }
}

fn name(source: &Source) -> &str {
    match source {
        Source::Bundled { name, .. } => name,
        Source::User { .. } => "user",
    }
}

// ---------------------------------------------------------------- statistics

/// Median and p99 of a set of samples.
#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    median: Duration,
    p99: Duration,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let n = samples.len();
        Self { n, median: samples[n / 2], p99: samples[(n * 99 / 100).min(n - 1)] }
    }
}

/// Time `f` `n` times after a warm-up, one sample per call.
async fn sample(n: usize, mut f: impl AsyncFnMut()) -> Stats {
    warm_up(&mut f).await;
    let mut samples = Vec::with_capacity(n);
    record(&mut samples, n, &mut f).await;
    Stats::of(samples)
}

/// Time `a` and `b` `n` times each, alternating in rounds so that drift in
/// the machine's state (frequency, other load) hits both alike.
async fn compare(n: usize, mut a: impl AsyncFnMut(), mut b: impl AsyncFnMut()) -> (Stats, Stats) {
    warm_up(&mut a).await;
    warm_up(&mut b).await;
    let (mut sa, mut sb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..ROUNDS {
        record(&mut sa, n / ROUNDS, &mut a).await;
        record(&mut sb, n / ROUNDS, &mut b).await;
    }
    (Stats::of(sa), Stats::of(sb))
}

async fn warm_up(f: &mut impl AsyncFnMut()) {
    for _ in 0..WARMUP {
        f().await;
    }
}

async fn record(samples: &mut Vec<Duration>, n: usize, f: &mut impl AsyncFnMut()) {
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
}

fn timer_cost() -> Duration {
    let mut samples = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let t = Instant::now();
        samples.push(black_box(t).elapsed());
    }
    Stats::of(samples).median
}

// ---------------------------------------------------------------- printing

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.2} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn ratio(d: Duration, base: Duration) -> String {
    format!("{:.2}×", d.as_secs_f64() / base.as_secs_f64())
}

fn section(title: &str) {
    println!("\n{title}");
    println!("{:<58} {:>8} {:>11} {:>11} {:>9}", "", "samples", "median", "p99", "vs base");
}

fn row(label: &str, s: Stats, base: Option<Duration>) {
    let r = base.map(|b| ratio(s.median, b)).unwrap_or_default();
    println!("{label:<58} {:>8} {:>11} {:>11} {r:>9}", s.n, fmt(s.median), fmt(s.p99));
}

fn header(inputs: &Inputs) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("clauderon-runtime benchmark — wasmtime 48, {cpus} CPU(s), tokio multi-thread runtime");
    let names = |v: &[Source]| v.iter().map(|s| name(s).to_string()).collect::<Vec<_>>().join(", ");
    println!(
        "bundled components ({}): {} [{}]",
        inputs.bundled.len(),
        names(&inputs.bundled),
        inputs.bundled_dir.display()
    );
    println!("SDK templates ({}): {}", inputs.templates.len(), names(&inputs.templates));
    println!("each call sample is timed alone; timer cost ≈ {} (included)", fmt(timer_cost()));
}

// ---------------------------------------------------------------- 1–3: calls

/// The fresh-instance `shell` median through the runtime (for the goals).
async fn calls(inputs: &Inputs) -> Duration {
    let home = tempfile::tempdir().expect("temp dir");
    let rt = Runtime::new(RuntimeConfig::under(home.path())).expect("runtime");
    rt.load_all(inputs.all()).await;
    report_failures(&rt);
    println!("pooling allocator: {}", if rt.pooling() { "yes" } else { "NO (on-demand fallback)" });
    let base = Baseline::new(rt.engine(), &inputs.shell_bytes());
    Baseline::describe();
    let fresh = fresh_calls(&rt, &base).await;
    reused_calls(&rt, &base).await;
    fresh
}

fn report_failures(rt: &Runtime) {
    for f in rt.failures() {
        println!("!! {} did not load (left out): {}", f.origin, f.error);
    }
}

async fn fresh_calls(rt: &Runtime, base: &Baseline) -> Duration {
    section("1. Fresh instance per call: instantiate + info(), instance dropped");
    let (baseline, wrapped) =
        compare(FRESH_SAMPLES, async || base.fresh_info().await, async || fresh_info(rt, SHELL, Kind::Agent).await)
            .await;
    row("baseline: bare wasmtime, shell", baseline, Some(baseline.median));
    row("runtime.agent(\"shell\") + info()", wrapped, Some(baseline.median));
    let (base_inst, inst) = compare(
        FRESH_SAMPLES,
        async || drop(black_box(base.instantiate().await)),
        async || drop(black_box(rt.agent(SHELL).await.expect("instantiate"))),
    )
    .await;
    row("  instantiate only: baseline", base_inst, Some(base_inst.median));
    row("  instantiate only: runtime.agent(\"shell\")", inst, Some(base_inst.median));
    for plugin in rt.plugins().into_iter().filter(|p| p.id() != SHELL) {
        let (id, kind) = (plugin.id().to_string(), plugin.kind());
        let s = sample(OTHER_FRESH_SAMPLES, async || fresh_info(rt, &id, kind).await).await;
        row(&format!("runtime.{}(\"{id}\") + info()", method(kind)), s, None);
    }
    wrapped.median
}

fn method(kind: Kind) -> &'static str {
    match kind {
        Kind::Backend => "backend",
        Kind::Agent => "agent",
        Kind::CredentialSource => "credential_source",
        Kind::Hook => "hook",
    }
}

/// Instantiate `id` through the runtime, call `info()`, drop the instance.
async fn fresh_info(rt: &Runtime, id: &str, kind: Kind) {
    match kind {
        Kind::Agent => drop(black_box(rt.agent(id).await.expect("instantiate").info().await.expect("info"))),
        Kind::Backend => drop(black_box(rt.backend(id).await.expect("instantiate").info().await.expect("info"))),
        Kind::CredentialSource => {
            drop(black_box(rt.credential_source(id).await.expect("instantiate").info().await.expect("info")))
        }
        Kind::Hook => drop(black_box(rt.hook(id).await.expect("instantiate").info().await.expect("info"))),
    }
}

async fn reused_calls(rt: &Runtime, base: &Baseline) {
    section("2. Reused instance: one live instance, call after call");
    let request = launch_request();
    let (mut store, agent) = base.instantiate().await;
    let api = agent.clauderon_plugin_agent_api();
    let mut shell = rt.agent(SHELL).await.expect("instantiate shell");
    let (b_info, info) = compare(
        REUSED_SAMPLES,
        async || drop(black_box(api.call_info(&mut store).await.expect("info"))),
        async || drop(black_box(shell.info().await.expect("info"))),
    )
    .await;
    let (b_plan, plan) = compare(
        REUSED_SAMPLES,
        async || drop(black_box(api.call_plan(&mut store, &request).await.expect("plan"))),
        async || drop(black_box(shell.plan(&request).await.expect("plan"))),
    )
    .await;
    row("baseline: bare wasmtime, shell info", b_info, Some(b_info.median));
    row("shell.info()", info, Some(b_info.median));
    row("baseline: bare wasmtime, shell plan", b_plan, Some(b_plan.median));
    row("shell.plan(&LaunchRequest)", plan, Some(b_plan.median));
    output_check(&mut shell, &request).await;
    if let Some(backend) = rt.plugins().into_iter().find(|p| p.kind() == Kind::Backend) {
        let mut inst = rt.backend(backend.id()).await.expect("instantiate backend");
        let s = sample(REUSED_SAMPLES, async || drop(black_box(inst.info().await.expect("info")))).await;
        row(&format!("{}.info()", backend.id()), s, None);
    }
}

/// The output-size check alone (`limits::fits`, run by the wrapper on every result).
async fn output_check(shell: &mut Instance<Agent>, request: &LaunchRequest) {
    let info = shell.info().await.expect("info");
    let plan = shell.plan(request).await.expect("plan");
    let cap = Limits::default().output_bytes;
    let s = sample(REUSED_SAMPLES, async || {
        black_box(limits::fits(black_box(&info), cap));
    })
    .await;
    row("  of which the output-size check (limits::fits) on info", s, None);
    let s = sample(REUSED_SAMPLES, async || {
        black_box(limits::fits(black_box(&plan), cap));
    })
    .await;
    row("  of which the output-size check (limits::fits) on plan", s, None);
}

/// A request with realistic strings in every field.
fn launch_request() -> LaunchRequest {
    LaunchRequest {
        session_id: "6f1c2a4e-9b7d-4e2f-8a31-0c5d7e9f1b23".into(),
        prompt: "cargo test --workspace --no-fail-fast && cargo clippy --all-targets -- -D warnings".into(),
        model: Some("default".into()),
        print_mode: false,
        plan_mode: false,
        skip_permissions: true,
        resume: false,
        config_home: "/home/agent/.config/clauderon".into(),
        worktree: "/tmp".into(),
        workdir: "/tmp".into(),
        status_url: Some("http://127.0.0.1:7777/hooks/6f1c2a4e".into()),
        isolated: false,
    }
}

// ---------------------------------------------------------------- baseline

/// The store data of the baseline: nothing.
struct Bare;

/// Bare wasmtime over the runtime's own engine: no limiter, no timeout, no
/// output check, no plugin lookup, no per-store host state.
struct Baseline {
    engine: wasmtime::Engine,
    pre: AgentPre<Bare>,
    deadline: u64,
}

impl Baseline {
    fn new(engine: &wasmtime::Engine, bytes: &[u8]) -> Self {
        let component = Component::new(engine, bytes).expect("compile shell for the baseline");
        let mut linker = Linker::<Bare>::new(engine);
        linker.instance(TYPES_IMPORT).expect("types instance");
        linker
            .instance(LOG_IMPORT)
            .expect("log instance")
            .func_wrap_async("write", |_, (_, _): (Level, String)| Box::new(async { wasmtime::Result::Ok(()) }))
            .expect("log.write");
        let pre = linker.instantiate_pre(&component).expect("baseline instantiate_pre");
        let pre = AgentPre::new(pre).expect("shell exports agent-api");
        let deadline = EngineHandle::ticks(Limits::default().deadline);
        Self { engine: engine.clone(), pre, deadline }
    }

    fn describe() {
        println!("\nBaseline (the \"vs base\" column, measured in the same run, alternating with the wrapper):");
        println!("  bare wasmtime on the runtime's own Engine (same config: epochs, pooling); a Linker with only an");
        println!("  empty `types` instance and a no-op `log.write`; AgentPre (generated bindings) over an empty store");
        println!("  type; per fresh call a new Store + epoch deadline + instantiate_async. No memory limiter, call");
        println!("  timeout, output-size check, plugin lookup or per-store host state.");
    }

    async fn instantiate(&self) -> (Store<Bare>, Agent) {
        let mut store = Store::new(&self.engine, Bare);
        store.set_epoch_deadline(self.deadline);
        let agent = self.pre.instantiate_async(&mut store).await.expect("baseline instantiate");
        (store, agent)
    }

    async fn fresh_info(&self) {
        let (mut store, agent) = self.instantiate().await;
        drop(black_box(agent.clauderon_plugin_agent_api().call_info(&mut store).await.expect("baseline info")));
    }
}

// ---------------------------------------------------------------- 4: start-up

/// Medians of a cold and a from-cache start with the bundled components.
struct StartFigures {
    warm: Duration,
}

async fn startup(inputs: &Inputs) -> StartFigures {
    section(&format!(
        "3. Start-up: Runtime::new + load_all; cold = {COLD_STARTS} starts, each over a new empty cache dir;\n   \
         from cache = {WARM_STARTS} starts over one primed cache dir (with so few samples p99 = max)"
    ));
    let n = inputs.bundled.len();
    let (_, warm) = start_series(&format!("every bundled component ({n})"), &inputs.bundled).await;
    let all = inputs.all();
    start_series(&format!("bundled + SDK templates ({})", all.len()), &all).await;
    per_component(&all).await;
    StartFigures { warm }
}

/// Cold and from-cache start-up medians for `sources`.
async fn start_series(label: &str, sources: &[Source]) -> (Duration, Duration) {
    let mut cold = Vec::new();
    let mut new_only = Vec::new();
    for _ in 0..COLD_STARTS {
        let home = tempfile::tempdir().expect("temp dir");
        let (total, engine, outcomes) = start(home.path(), sources).await;
        check_outcomes(label, &outcomes, Outcome::Compiled);
        cold.push(total);
        new_only.push(engine);
    }
    let home = tempfile::tempdir().expect("temp dir");
    start(home.path(), sources).await;
    let mut warm = Vec::new();
    for _ in 0..WARM_STARTS {
        let (total, engine, outcomes) = start(home.path(), sources).await;
        check_outcomes(label, &outcomes, Outcome::Hit);
        warm.push(total);
        new_only.push(engine);
    }
    let (cold, warm) = (Stats::of(cold), Stats::of(warm));
    row(&format!("{label}: cold"), cold, None);
    row(&format!("{label}: from cache"), warm, None);
    row("  of which Runtime::new (engine + pool)", Stats::of(new_only), None);
    (cold.median, warm.median)
}

/// One start: a runtime over `home` loading `sources`. Returns the total time,
/// the `Runtime::new` part, and each plugin's cache outcome.
async fn start(home: &Path, sources: &[Source]) -> (Duration, Duration, Vec<Outcome>) {
    let t = Instant::now();
    let rt = Runtime::new(RuntimeConfig::under(home)).expect("runtime");
    let engine = t.elapsed();
    rt.load_all(sources.to_vec()).await;
    let total = t.elapsed();
    report_failures(&rt);
    let outcomes = rt.plugins().iter().map(|p| p.cache).collect();
    (total, engine, outcomes)
}

fn check_outcomes(label: &str, outcomes: &[Outcome], want: Outcome) {
    if outcomes.iter().any(|o| *o != want) {
        println!("!! {label}: expected every component {want:?}, got {outcomes:?}");
    }
}

/// Compile (cache miss: compile + serialize + write) vs cache hit (hash + deserialize), per component.
async fn per_component(sources: &[Source]) {
    println!("\nPer component, through CompileCache on the runtime's engine (medians of {COMPILES} / {CACHE_LOADS})");
    println!("compile (miss) = compile + serialize + write; cache hit = SHA-256 + deserialize_file");
    println!("{:<24} {:>9} {:>10} {:>14} {:>14}", "component", ".wasm", ".cwasm", "compile (miss)", "cache hit");
    let home = tempfile::tempdir().expect("temp dir");
    let rt = Runtime::new(RuntimeConfig::under(home.path())).expect("runtime");
    for source in sources {
        let engine = rt.engine().clone();
        let bytes = source.bytes().clone();
        let (compile, hit, cwasm) =
            tokio::task::spawn_blocking(move || compile_vs_hit(&engine, &bytes)).await.expect("compile task");
        let kb = |n: u64| format!("{:.1} KB", n as f64 / 1e3);
        println!(
            "{:<24} {:>9} {:>10} {:>14} {:>14}",
            name(source),
            kb(source.bytes().len() as u64),
            kb(cwasm),
            fmt(compile),
            fmt(hit)
        );
    }
}

/// Median compile time, median cache-hit time, and the cached artifact's size.
fn compile_vs_hit(engine: &wasmtime::Engine, bytes: &[u8]) -> (Duration, Duration, u64) {
    let mut compiles = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..COMPILES {
        let cache = CompileCache::new(engine, Some(dir.path().join(i.to_string())));
        let t = Instant::now();
        let (_, outcome) = cache.load(engine, bytes).expect("compile");
        compiles.push(t.elapsed());
        assert_eq!(outcome, Outcome::Compiled, "a fresh cache directory must miss");
    }
    let cache = CompileCache::new(engine, Some(dir.path().join("0")));
    let mut hits = Vec::new();
    for _ in 0..CACHE_LOADS {
        let t = Instant::now();
        let (c, outcome) = cache.load(engine, bytes).expect("cache load");
        hits.push(t.elapsed());
        drop(black_box(c));
        assert_eq!(outcome, Outcome::Hit, "a primed cache directory must hit");
    }
    let path = cache.path_for(bytes).expect("cache has a directory");
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    (Stats::of(compiles).median, Stats::of(hits).median, size)
}

// ---------------------------------------------------------------- goals

fn goals(fresh: Duration, start: StartFigures) {
    println!("\nGoals (informational; a miss never fails the bench)");
    goal("≤ 25 µs per call with a fresh instance (shell, instantiate + info)", fresh, FRESH_CALL_GOAL);
    goal("≤ 150 ms start from cache (every bundled component)", start.warm, WARM_START_GOAL);
}

fn goal(what: &str, measured: Duration, target: Duration) {
    let verdict = if measured <= target { "met" } else { "NOT met" };
    let near = measured.abs_diff(target) * 10 <= target;
    let note = if near { " (within 10% of the goal: run-to-run noise can flip this)" } else { "" };
    println!("  {what:<68} {:>10}  {verdict}{note}", fmt(measured));
}
