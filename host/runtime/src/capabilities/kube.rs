//! `kube`: the configured Kubernetes namespace. The interface is part of the
//! contract now; the operations (over kube-rs) arrive with the Kubernetes
//! backend. Until then every call answers `unsupported`.

use crate::bindings::PluginError;
use crate::bindings::kube::Host;
use crate::error::HostError;
use crate::state::HostState;

type Res<T> = Result<T, HostError>;

fn unsupported<T>() -> Res<T> {
    Err(PluginError::Unsupported(
        "this clauderon build has no Kubernetes support yet (the kube capability arrives with the Kubernetes backend)"
            .into(),
    )
    .into())
}

/// Add `kube` to a component's linker.
pub(crate) fn link(linker: &mut super::HostLinker) -> wasmtime::Result<()> {
    crate::bindings::kube::add_to_linker::<HostState, super::Data>(linker, super::state)
}

impl Host for HostState {
    async fn namespace(&mut self) -> wasmtime::Result<String> {
        Ok(String::new())
    }
    async fn apply(&mut self, _manifest: String) -> Res<String> {
        unsupported()
    }
    async fn get(&mut self, _kind: String, _name: String) -> Res<Option<String>> {
        unsupported()
    }
    async fn list_objects(&mut self, _kind: String, _sel: String) -> Res<Vec<String>> {
        unsupported()
    }
    async fn delete(&mut self, _kind: String, _name: String) -> Res<bool> {
        unsupported()
    }
    async fn logs(&mut self, _pod: String, _container: Option<String>, _tail: u32) -> Res<String> {
        unsupported()
    }
    async fn attach_argv(&mut self, pod: String, container: Option<String>) -> wasmtime::Result<Vec<String>> {
        let mut argv = vec!["kubectl".into(), "attach".into(), "-it".into(), pod];
        if let Some(c) = container {
            argv.extend(["-c".into(), c]);
        }
        Ok(argv)
    }
}
