//! The one wasmtime engine: Cranelift, epoch interruption, the pooling
//! instance allocator (falling back to on-demand allocation where the address
//! space cannot be reserved), and the ticker thread that advances epochs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::LoadError;

/// One epoch tick. Deadlines are rounded up to whole ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// How many instances may be alive at once with the pooling allocator.
pub const POOL_INSTANCES: u32 = 256;

/// The engine and how it allocates instances.
pub struct EngineHandle {
    /// The engine every component is compiled and run with.
    pub engine: Engine,
    /// Whether the pooling allocator is in use.
    pub pooling: bool,
    ticker: Ticker,
}

impl EngineHandle {
    /// Build the engine. `max_memory` is the largest memory cap of any kind.
    pub fn new(max_memory: usize, want_pooling: bool) -> Result<Self, LoadError> {
        let pooled = if want_pooling { Engine::new(&config(Some(max_memory))).ok() } else { None };
        let (engine, pooling) = match pooled {
            Some(e) => (e, true),
            None => {
                if want_pooling {
                    tracing::warn!("the pooling allocator is not available here; using on-demand allocation");
                }
                (Engine::new(&config(None)).map_err(|e| LoadError::Engine(format!("{e:#}")))?, false)
            }
        };
        let ticker = Ticker::start(&engine);
        Ok(Self { engine, pooling, ticker })
    }

    /// Number of ticks for a deadline (at least one).
    pub fn ticks(deadline: Duration) -> u64 {
        (deadline.as_millis() / TICK.as_millis()).max(1) as u64 + 1
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.ticker.stop.store(true, Ordering::Relaxed);
    }
}

fn config(pool_max_memory: Option<usize>) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    if let Some(max_memory) = pool_max_memory {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .total_stacks(POOL_INSTANCES)
            .max_memory_size(max_memory)
            .max_core_instances_per_component(16)
            .max_memories_per_component(4)
            .max_tables_per_component(16);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances the engine's epoch every [`TICK`] until the engine is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new().name("clauderon-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!("could not start the epoch ticker ({e}); deadlines fall back to host timeouts");
        }
        Self { stop }
    }
}
