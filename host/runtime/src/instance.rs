//! Calling components. An [`Instance`] is one live instantiation of a
//! plugin in its own store. Every call runs under the plugin's limits: an
//! epoch deadline, the memory cap, and the output cap. A call that traps,
//! times out or breaks a cap returns a [`CallError`] naming the component and
//! the function, and poisons the instance, which must then be thrown away;
//! nothing else in the process is affected.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use wasmtime::Store;

use crate::bindings::{self, PluginError, types};
use crate::error::{CallError, CallErrorKind};
use crate::loader::{Plugin, Pre};
use crate::manifest::Kind;
use crate::state::{HostServices, HostState};

/// A live instance of a plugin, holding the world's bindings `W`.
pub struct Instance<W> {
    plugin: Arc<Plugin>,
    store: Store<HostState>,
    world: W,
    poisoned: bool,
}

/// Host-side timeout beyond the deadline, for time spent in host functions
/// (which epochs cannot interrupt).
const HOST_GRACE: Duration = Duration::from_secs(1);

/// A store whose running code gives its thread back to tokio at every epoch
/// tick and traps once the call has run past its deadline: a spinning
/// component occupies no runtime thread, and delays nothing but itself.
fn new_store(plugin: &Plugin, engine: &wasmtime::Engine, services: &Arc<HostServices>) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(plugin.ctx.clone(), services.clone()));
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        if state.call_started.elapsed() >= state.ctx.limits.deadline {
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        Ok(wasmtime::UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
    });
    store.set_epoch_deadline(1);
    store
}

fn error(plugin: &Plugin, function: &str, kind: CallErrorKind) -> CallError {
    CallError { component: plugin.manifest.id.clone(), function: function.into(), kind }
}

/// One of the four plugin worlds, as the host pre-instantiates,
/// instantiates and identifies it: the one generic path every kind goes
/// through ([`Plugin::instantiate`], [`crate::Runtime::instance`]).
pub trait World: Sized + Send + 'static {
    /// The kind of plugin whose components have this world.
    const KIND: Kind;
    /// The generated pre-instantiated form (exports already looked up).
    type Pre: Send + Sync;
    /// Check a linked component's exports against this world and tag it.
    #[doc(hidden)]
    fn pre(pre: wasmtime::component::InstancePre<HostState>) -> wasmtime::Result<Pre>;
    /// This world's form of `pre`, if `pre` is of this world.
    #[doc(hidden)]
    fn pre_of(pre: &Pre) -> Option<&Self::Pre>;
    /// A new instance in `store`.
    #[doc(hidden)]
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl std::future::Future<Output = wasmtime::Result<Self>> + Send;
    /// The id the component gives in its `info()`.
    fn said_id(instance: &mut Instance<Self>) -> impl std::future::Future<Output = Result<String, CallError>> + Send;
}

/// Implement [`World`] for a generated world type (the four impls differ only in names).
macro_rules! world {
    ($world:ty, $pre:ty, $kind:ident) => {
        impl World for $world {
            const KIND: Kind = Kind::$kind;
            type Pre = $pre;
            fn pre(pre: wasmtime::component::InstancePre<HostState>) -> wasmtime::Result<Pre> {
                Ok(Pre::$kind(<$pre>::new(pre)?))
            }
            fn pre_of(pre: &Pre) -> Option<&$pre> {
                match pre {
                    Pre::$kind(p) => Some(p),
                    _ => None,
                }
            }
            async fn instantiate(pre: &$pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
                pre.instantiate_async(store).await
            }
            async fn said_id(instance: &mut Instance<Self>) -> Result<String, CallError> {
                Ok(instance.info().await?.id)
            }
        }
    };
}

world!(bindings::backend::Backend, bindings::backend::BackendPre<HostState>, Backend);
world!(bindings::agent::Agent, bindings::agent::AgentPre<HostState>, Agent);
world!(
    bindings::credential_source::CredentialSource,
    bindings::credential_source::CredentialSourcePre<HostState>,
    CredentialSource
);
world!(bindings::hook::Hook, bindings::hook::HookPre<HostState>, Hook);

impl Plugin {
    /// A new instance of this plugin in its world `W`, in a store of its own.
    pub async fn instantiate<W: World>(
        self: &Arc<Self>,
        engine: &wasmtime::Engine,
        services: &Arc<HostServices>,
    ) -> Result<Instance<W>, CallError> {
        let Some(pre) = W::pre_of(&self.pre) else {
            let kind = CallErrorKind::Instantiate(format!("it is a {}, not a {}", self.kind(), W::KIND));
            return Err(error(self, "instantiate", kind));
        };
        let mut store = new_store(self, engine, services);
        let world = W::instantiate(pre, &mut store)
            .await
            .map_err(|e| error(self, "instantiate", CallErrorKind::Instantiate(format!("{e:#}"))))?;
        Ok(Instance { plugin: self.clone(), store, world, poisoned: false })
    }
}

impl<W> Instance<W> {
    /// The plugin this is an instance of.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Whether an earlier failure made this instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Prepare a call: refuse if poisoned, arm the deadline, reset per-call state.
    fn begin(&mut self, function: &'static str) -> Result<Duration, CallError> {
        if self.poisoned {
            return Err(error(&self.plugin, function, CallErrorKind::Poisoned));
        }
        let deadline = self.plugin.ctx.limits.deadline;
        self.store.set_epoch_deadline(1);
        self.store.data_mut().begin_call(function);
        Ok(deadline + HOST_GRACE)
    }

    /// Turn the outcome of a call into a value or a [`CallError`].
    fn finish<R: Serialize>(
        &mut self,
        function: &str,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, CallError> {
        self.store.data_mut().end_call();
        let limits = self.plugin.ctx.limits;
        let kind = match outcome {
            Err(_) => CallErrorKind::Timeout(limits.deadline),
            Ok(Ok(value)) if crate::limits::fits(&value, limits.output_bytes) => return Ok(value),
            Ok(Ok(_)) => CallErrorKind::OutputTooLarge(limits.output_bytes),
            Ok(Err(e)) => self.classify(e),
        };
        self.poisoned = true;
        tracing::warn!(component = %self.plugin.manifest.id, function, "call failed: {kind}");
        Err(error(&self.plugin, function, kind))
    }

    fn classify(&self, e: wasmtime::Error) -> CallErrorKind {
        if self.store.data().limiter.hit {
            return CallErrorKind::Memory(self.plugin.ctx.limits.memory_bytes);
        }
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            return CallErrorKind::Timeout(self.plugin.ctx.limits.deadline);
        }
        let frames = own_frames(&e);
        if let Some(said) = self.store.data().panic.clone() {
            let message = if said.starts_with("panicked") { said } else { format!("panicked: {said}") };
            return CallErrorKind::Panic { message, frames };
        }
        // The trap itself (its root cause), not the backtrace it carries.
        let reason = match e.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => crate::error::one_line(&format!("{:#}", e.root_cause()), 1 << 10),
        };
        CallErrorKind::Trap(format!("{reason}{}", crate::error::within(&frames)))
    }

    fn plugin_error(&self, function: &str, e: PluginError) -> CallError {
        error(&self.plugin, function, CallErrorKind::Plugin(e))
    }
}

/// The component's own functions a trap happened in, innermost first (at
/// most 6): the backtrace's named frames (demangled, without their hashes)
/// without the standard library's panic machinery and the export glue
/// around them. Empty for a component built without its name section.
fn own_frames(e: &wasmtime::Error) -> Vec<String> {
    const GLUE: [&str; 8] = ["std::", "core::", "alloc::", "__rustc::", "__rust", "wit_bindgen", "cabi_", "__wasm"];
    let Some(trace) = e.downcast_ref::<wasmtime::WasmBacktrace>() else { return Vec::new() };
    trace
        .frames()
        .iter()
        .filter_map(|f| f.func_name())
        .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
        .filter(|name| {
            let bare = name.trim_start_matches('<');
            !GLUE.iter().any(|g| bare.starts_with(g)) && !name.contains("::_export_")
        })
        .take(6)
        .map(|name| crate::error::one_line(&name, 200))
        .collect()
}

/// Call an exported function under the limits:
/// `guarded!(self, "name", |world, store| world.call_x(store, args))`.
macro_rules! guarded {
    ($self:ident, $name:literal, $world:ident, $store:ident => $call:expr) => {{
        let limit = $self.begin($name)?;
        let ($world, $store) = (&$self.world, &mut $self.store);
        let outcome = tokio::time::timeout(limit, $call).await;
        $self.finish($name, outcome)
    }};
    (result $self:ident, $name:literal, $world:ident, $store:ident => $call:expr) => {{
        let r = guarded!($self, $name, $world, $store => $call)?;
        r.map_err(|e| $self.plugin_error($name, e))
    }};
}

impl Instance<bindings::backend::Backend> {
    fn api(w: &bindings::backend::Backend) -> &bindings::backend::exports::clauderon::plugin::backend_api::Guest {
        w.clauderon_plugin_backend_api()
    }

    /// `info`.
    pub async fn info(
        &mut self,
    ) -> Result<bindings::backend::exports::clauderon::plugin::backend_api::BackendInfo, CallError> {
        guarded!(self, "info", w, s => Self::api(w).call_info(s))
    }
    /// Say which session this instance serves (for its `create`, `start` or `export-branch`)
    /// and that session's own paths (its directories and the user's declared
    /// mounts; those that do not exist are left out). Then, and only then,
    /// `container` may mount exactly these paths and `process` may run in a
    /// directory inside one of them; the detached children it spawns are
    /// that session's, killed by [`crate::Runtime::end_session`].
    pub fn serve_session(&mut self, session_id: &str, paths: &[std::path::PathBuf]) {
        let canonical: Vec<std::path::PathBuf> = paths.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect();
        let state = self.store.data_mut();
        state.session = Some(session_id.to_string());
        state.session_paths = canonical.into();
    }

    /// `create`.
    pub async fn create(&mut self, spec: &types::SessionSpec) -> Result<types::SessionInfo, CallError> {
        guarded!(result self, "create", w, s => Self::api(w).call_create(s, spec))
    }
    /// `start`.
    pub async fn start(&mut self, id: &str, spec: &types::SessionSpec) -> Result<types::SessionInfo, CallError> {
        guarded!(result self, "start", w, s => Self::api(w).call_start(s, id, spec))
    }
    /// `stop`.
    pub async fn stop(&mut self, id: &str) -> Result<(), CallError> {
        guarded!(result self, "stop", w, s => Self::api(w).call_stop(s, id))
    }
    /// `delete`.
    pub async fn delete(&mut self, id: &str) -> Result<(), CallError> {
        guarded!(result self, "delete", w, s => Self::api(w).call_delete(s, id))
    }
    /// `status`.
    pub async fn status(&mut self, id: &str) -> Result<types::ResourceStatus, CallError> {
        guarded!(result self, "status", w, s => Self::api(w).call_status(s, id))
    }
    /// `output`.
    pub async fn output(&mut self, id: &str, lines: u32) -> Result<String, CallError> {
        guarded!(result self, "output", w, s => Self::api(w).call_output(s, id, lines))
    }
    /// `attach-argv`.
    pub async fn attach_argv(&mut self, id: &str) -> Result<Vec<String>, CallError> {
        guarded!(result self, "attach-argv", w, s => Self::api(w).call_attach_argv(s, id))
    }
    /// `export-branch` (serve the session first: `copy-out` needs to know it).
    pub async fn export_branch(&mut self, id: &str) -> Result<(), CallError> {
        guarded!(result self, "export-branch", w, s => Self::api(w).call_export_branch(s, id))
    }
    /// `list-resources`.
    pub async fn list_resources(&mut self) -> Result<Vec<String>, CallError> {
        guarded!(result self, "list-resources", w, s => Self::api(w).call_list_resources(s))
    }
}

impl Instance<bindings::agent::Agent> {
    fn api(w: &bindings::agent::Agent) -> &bindings::agent::exports::clauderon::plugin::agent_api::Guest {
        w.clauderon_plugin_agent_api()
    }

    /// `info`.
    pub async fn info(
        &mut self,
    ) -> Result<bindings::agent::exports::clauderon::plugin::agent_api::AgentInfo, CallError> {
        guarded!(self, "info", w, s => Self::api(w).call_info(s))
    }
    /// `plan`.
    pub async fn plan(
        &mut self,
        request: &bindings::agent::exports::clauderon::plugin::agent_api::LaunchRequest,
    ) -> Result<types::LaunchPlan, CallError> {
        guarded!(result self, "plan", w, s => Self::api(w).call_plan(s, request))
    }
    /// `parse-transcript`.
    pub async fn parse_transcript(
        &mut self,
        lines: &[String],
    ) -> Result<Vec<bindings::agent::exports::clauderon::plugin::agent_api::ChatMessage>, CallError> {
        guarded!(result self, "parse-transcript", w, s => Self::api(w).call_parse_transcript(s, lines))
    }
    /// `status-from-event`.
    pub async fn status_from_event(&mut self, event_json: &str) -> Result<Option<types::AgentStatus>, CallError> {
        guarded!(self, "status-from-event", w, s => Self::api(w).call_status_from_event(s, event_json))
    }
}

impl Instance<bindings::credential_source::CredentialSource> {
    fn api(
        w: &bindings::credential_source::CredentialSource,
    ) -> &bindings::credential_source::exports::clauderon::plugin::credential_source_api::Guest {
        w.clauderon_plugin_credential_source_api()
    }

    /// `info`.
    pub async fn info(
        &mut self,
    ) -> Result<bindings::credential_source::exports::clauderon::plugin::credential_source_api::SourceInfo, CallError>
    {
        guarded!(self, "info", w, s => Self::api(w).call_info(s))
    }
    /// `available`.
    pub async fn available(&mut self) -> Result<Vec<String>, CallError> {
        guarded!(result self, "available", w, s => Self::api(w).call_available(s))
    }
    /// `get`: the secret stays in host memory; never log or store it.
    pub async fn get(&mut self, service: &str) -> Result<Option<String>, CallError> {
        guarded!(result self, "get", w, s => Self::api(w).call_get(s, service))
    }
}

impl Instance<bindings::hook::Hook> {
    fn api(w: &bindings::hook::Hook) -> &bindings::hook::exports::clauderon::plugin::hook_api::Guest {
        w.clauderon_plugin_hook_api()
    }

    /// `info`.
    pub async fn info(&mut self) -> Result<bindings::hook::exports::clauderon::plugin::hook_api::HookInfo, CallError> {
        guarded!(self, "info", w, s => Self::api(w).call_info(s))
    }
    /// `on-event`.
    pub async fn on_event(&mut self, event: &types::SessionEvent) -> Result<(), CallError> {
        guarded!(result self, "on-event", w, s => Self::api(w).call_on_event(s, event))
    }
}
