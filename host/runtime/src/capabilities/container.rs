//! `container`: the Docker engine. The interface is part of the contract
//! now; the engine operations (over bollard) arrive with the Docker backend.
//! Until then every call answers `unsupported`, so a backend can tell.

use crate::bindings::PluginError;
use crate::bindings::container::{ContainerSpec, ContainerState, ExecOutput, Host};
use crate::bindings::types::EnvVar;
use crate::state::HostState;

fn unsupported<T>() -> wasmtime::Result<Result<T, PluginError>> {
    Ok(Err(PluginError::Unsupported(
        "this clauderon build has no Docker engine support yet (the container capability arrives with the Docker backend)"
            .into(),
    )))
}

impl Host for HostState {
    async fn create(&mut self, _spec: ContainerSpec) -> wasmtime::Result<Result<String, PluginError>> {
        unsupported()
    }
    async fn start(&mut self, _id: String) -> wasmtime::Result<Result<(), PluginError>> {
        unsupported()
    }
    async fn stop(&mut self, _id: String, _t: Option<u32>) -> wasmtime::Result<Result<(), PluginError>> {
        unsupported()
    }
    async fn remove(&mut self, _id: String, _force: bool) -> wasmtime::Result<Result<(), PluginError>> {
        unsupported()
    }
    async fn inspect(&mut self, _id: String) -> wasmtime::Result<Result<Option<ContainerState>, PluginError>> {
        unsupported()
    }
    async fn list_containers(
        &mut self,
        _labels: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<Vec<ContainerState>, PluginError>> {
        unsupported()
    }
    async fn logs(&mut self, _id: String, _tail: u32) -> wasmtime::Result<Result<String, PluginError>> {
        unsupported()
    }
    async fn exec(
        &mut self,
        _id: String,
        _cmd: Vec<String>,
        _env: Vec<EnvVar>,
    ) -> wasmtime::Result<Result<ExecOutput, PluginError>> {
        unsupported()
    }
    async fn image_exists(&mut self, _image: String) -> wasmtime::Result<Result<bool, PluginError>> {
        unsupported()
    }
    async fn pull(&mut self, _image: String) -> wasmtime::Result<Result<(), PluginError>> {
        unsupported()
    }
    async fn attach_argv(&mut self, id: String) -> wasmtime::Result<Vec<String>> {
        Ok(vec!["docker".into(), "attach".into(), id])
    }
}
