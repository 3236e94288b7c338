//! Loading one component: read its manifest, check the grants, compile it
//! (through the cache), check its imports and exports against its kind and
//! grants, and pre-instantiate it with a linker holding only what was granted.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use crate::approval::Approval;
use crate::bindings;
use crate::cache::Outcome;
use crate::error::LoadError;
use crate::instance::World;
use crate::manifest::{self, Capabilities, Capability, Kind, Manifest};
use crate::state::{ComponentCtx, HostState};

/// The package every clauderon interface belongs to.
pub const PACKAGE: &str = "clauderon:plugin";
/// Versions of the package this host implements (`0.1.x`).
pub const VERSION_PREFIX: &str = "0.1.";

/// Where a component comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Built into the `clauderon` binary; granted what its manifest asks for.
    Bundled { name: String, bytes: Arc<[u8]> },
    /// A file in the components directory, with what the user approved for it
    /// (it loads only if that approval is for these very bytes).
    User { path: PathBuf, bytes: Arc<[u8]>, approved: Option<Approval> },
}

impl Source {
    /// Where it came from, for messages.
    pub fn origin(&self) -> String {
        match self {
            Source::Bundled { name, .. } => format!("bundled:{name}"),
            Source::User { path, .. } => path.display().to_string(),
        }
    }

    /// `bundled` or `user`.
    pub fn label(&self) -> &'static str {
        match self {
            Source::Bundled { .. } => "bundled",
            Source::User { .. } => "user",
        }
    }

    /// The component's bytes.
    pub fn bytes(&self) -> &Arc<[u8]> {
        match self {
            Source::Bundled { bytes, .. } | Source::User { bytes, .. } => bytes,
        }
    }
}

/// A pre-instantiated component of one kind (see [`crate::instance::World`]).
#[doc(hidden)]
pub enum Pre {
    Backend(bindings::backend::BackendPre<HostState>),
    Agent(bindings::agent::AgentPre<HostState>),
    CredentialSource(bindings::credential_source::CredentialSourcePre<HostState>),
    Hook(bindings::hook::HookPre<HostState>),
}

/// A loaded component, ready to be instantiated.
pub struct Plugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// Where it came from (`bundled` or `user`).
    pub source: &'static str,
    /// Its origin (bundled name or file path).
    pub origin: String,
    /// The SHA-256 of its file, in hex: a reload replaces it only if this changed.
    pub sha256: String,
    /// What it was granted.
    pub grants: Capabilities,
    /// Whether it was read from the compile cache.
    pub cache: Outcome,
    /// Whether it imports WASI (a `wasm32-wasip2` build) and runs with an empty WASI context.
    pub wasi: bool,
    /// Its imports, as the component declares them.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
    pub(crate) ctx: Arc<ComponentCtx>,
    pub(crate) pre: Pre,
}

/// A loaded plugin as users see it (an entry of [`crate::Inventory`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PluginSummary {
    /// Its id.
    pub id: String,
    /// Its plugin kind.
    pub kind: Kind,
    /// Its own version.
    pub version: String,
    /// What it does, from its manifest.
    pub description: String,
    /// `bundled` or `user`.
    pub source: String,
    /// The bundled name or the file it was loaded from.
    pub origin: String,
    /// What it was granted (a capability not granted is absent), as in
    /// its grants file.
    #[schema(value_type = Object)]
    pub capabilities: Capabilities,
    /// The same grants as sentences.
    pub grants: Vec<String>,
    /// Whether it imports WASI (it runs with an empty WASI context).
    pub wasi: bool,
}

impl Plugin {
    /// What users see of it.
    pub fn summary(&self) -> PluginSummary {
        PluginSummary {
            id: self.manifest.id.clone(),
            kind: self.manifest.kind,
            version: self.manifest.version.clone(),
            description: self.manifest.description.clone(),
            source: self.source.to_string(),
            origin: self.origin.clone(),
            capabilities: self.grants.clone(),
            grants: self.grants.describe(),
            wasi: self.wasi,
        }
    }

    /// The component's id.
    pub fn id(&self) -> &str {
        &self.manifest.id
    }
    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.manifest.kind
    }
}

/// Read and check the manifest, and work out the grants.
pub(crate) fn manifest_and_grants(source: &Source) -> Result<(Manifest, Capabilities), LoadError> {
    let origin = source.origin();
    let text = manifest::extract(source.bytes()).ok_or_else(|| LoadError::NoManifest { origin: origin.clone() })?;
    let manifest = Manifest::parse(&text).map_err(|source| LoadError::Manifest { origin: origin.clone(), source })?;
    let grants = match source {
        Source::Bundled { .. } => manifest.capabilities.clone(),
        Source::User { approved: None, .. } => {
            return Err(LoadError::NotApproved {
                id: manifest.id.clone(),
                origin,
                missing: "nothing was approved yet".into(),
            });
        }
        Source::User { approved: Some(approved), bytes, .. } => {
            if let Some(why) = approved.mismatch(&manifest.id, bytes) {
                return Err(LoadError::NotApproved { id: manifest.id, origin, missing: why });
            }
            let missing = approved.capabilities.missing(&manifest.capabilities);
            if !missing.is_empty() {
                return Err(LoadError::NotApproved { id: manifest.id, origin, missing: missing.join("; ") });
            }
            manifest.capabilities.clone()
        }
    };
    Ok((manifest, grants))
}

/// A parsed import or export name: `ns:pkg/iface@version`.
struct ItemName<'a> {
    package: &'a str,
    interface: &'a str,
    version: &'a str,
}

fn split_name(name: &str) -> Option<ItemName<'_>> {
    let (package, rest) = name.split_once('/')?;
    let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
    Some(ItemName { package, interface, version })
}

fn is_ours(n: &ItemName<'_>) -> bool {
    n.package == PACKAGE && n.version.starts_with(VERSION_PREFIX)
}

/// The names of a component's imports and exports.
pub fn interface_names(engine: &wasmtime::Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports = ty
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_) | ComponentItem::ComponentFunc(_)))
        .map(|(n, _)| n.to_string())
        .collect();
    (imports, exports)
}

/// Check imports and exports; returns whether it needs WASI.
pub(crate) fn check_interfaces(
    manifest: &Manifest,
    grants: &Capabilities,
    origin: &str,
    imports: &[String],
    exports: &[String],
) -> Result<bool, LoadError> {
    let kind = manifest.kind;
    let expected = kind.export_interface();
    if !exports.iter().filter_map(|e| split_name(e)).any(|n| is_ours(&n) && n.interface == expected) {
        return Err(LoadError::WrongWorld {
            id: manifest.id.clone(),
            origin: origin.into(),
            kind,
            expected: format!("{PACKAGE}/{expected}@0.1.0"),
            macro_kind: kind.world().replace('-', "_"),
        });
    }
    let mut wasi = false;
    for import in imports {
        let foreign = |why: String| LoadError::ForeignImport {
            id: manifest.id.clone(),
            origin: origin.into(),
            kind,
            import: import.clone(),
            why,
        };
        let Some(n) = split_name(import) else {
            return Err(foreign("clauderon provides only its own interfaces and WASI".into()));
        };
        if n.package.starts_with("wasi:") {
            wasi = true;
            continue;
        }
        if n.package != PACKAGE {
            return Err(foreign("clauderon provides only its own interfaces and WASI".into()));
        }
        if !n.version.starts_with(VERSION_PREFIX) {
            return Err(foreign(format!("this host implements {PACKAGE}@0.1.x, not @{}", n.version)));
        }
        if n.interface == "types" {
            continue;
        }
        let Some(cap) = Capability::from_interface(n.interface) else {
            return Err(foreign(format!("`{}` is not a capability interface", n.interface)));
        };
        if !kind.importable().contains(&cap) {
            return Err(foreign(format!("the {} world does not import `{}`", kind.world(), n.interface)));
        }
        if !grants.allows(cap) {
            return Err(LoadError::Ungranted {
                id: manifest.id.clone(),
                origin: origin.into(),
                import: import.clone(),
                grant: format!("`{}`", manifest.capabilities.line_granting(cap, None)),
            });
        }
    }
    Ok(wasi)
}

/// Build the linker for a component and pre-instantiate it.
pub(crate) fn pre_instantiate(
    engine: &wasmtime::Engine,
    component: &Component,
    ctx: &ComponentCtx,
    wasi: bool,
    origin: &str,
) -> Result<Pre, LoadError> {
    let link_err =
        |e: wasmtime::Error| LoadError::Link { id: ctx.id.clone(), origin: origin.into(), reason: format!("{e:#}") };
    let mut linker: Linker<HostState> = Linker::new(engine);
    crate::capabilities::link(&mut linker, ctx.kind, &ctx.grants).map_err(link_err)?;
    if wasi {
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_err)?;
    }
    let pre = linker.instantiate_pre(component).map_err(link_err)?;
    let typed = match ctx.kind {
        Kind::Backend => bindings::backend::Backend::pre(pre),
        Kind::Agent => bindings::agent::Agent::pre(pre),
        Kind::CredentialSource => bindings::credential_source::CredentialSource::pre(pre),
        Kind::Hook => bindings::hook::Hook::pre(pre),
    };
    typed.map_err(link_err)
}
