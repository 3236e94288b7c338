//! `kube`: the configured Kubernetes namespace. The interface is part of the
//! contract now; the operations (over kube-rs) arrive with the Kubernetes
//! backend. Until then every call answers `unsupported`.

use crate::bindings::PluginError;
use crate::bindings::kube::Host;
use crate::state::HostState;

fn unsupported<T>() -> wasmtime::Result<Result<T, PluginError>> {
    Ok(Err(PluginError::Unsupported(
        "this clauderon build has no Kubernetes support yet (the kube capability arrives with the Kubernetes backend)"
            .into(),
    )))
}

impl Host for HostState {
    async fn namespace(&mut self) -> wasmtime::Result<String> {
        Ok(String::new())
    }
    async fn apply(&mut self, _manifest: String) -> wasmtime::Result<Result<String, PluginError>> {
        unsupported()
    }
    async fn get(&mut self, _kind: String, _name: String) -> wasmtime::Result<Result<Option<String>, PluginError>> {
        unsupported()
    }
    async fn list_objects(
        &mut self,
        _kind: String,
        _sel: String,
    ) -> wasmtime::Result<Result<Vec<String>, PluginError>> {
        unsupported()
    }
    async fn delete(&mut self, _kind: String, _name: String) -> wasmtime::Result<Result<bool, PluginError>> {
        unsupported()
    }
    async fn logs(
        &mut self,
        _pod: String,
        _container: Option<String>,
        _tail: u32,
    ) -> wasmtime::Result<Result<String, PluginError>> {
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
