//! Calling one export of a loaded plugin by its WIT name, with JSON arguments
//! and a JSON answer (`clauderon plugins call`): the same instance, limits and
//! capabilities as any other call, for authors to try a function without a
//! session.
//!
//! Arguments are the export's parameters in order, in the JSON form of the
//! host's types (records as objects with snake_case fields, enums as their
//! CamelCase variant names: `{"access_mode": "ReadOnly"}`). A credential
//! source's `get` answers whether a value is there and its length, never the
//! value.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::types;
use crate::error::CallError;
use crate::manifest::Kind;
use crate::runtime::Runtime;

/// Why a call by name did not reach or return from the component.
#[derive(Debug, thiserror::Error)]
pub enum CallByNameError {
    #[error("a {kind} has no function `{function}`; it has: {}", known.join(", "))]
    UnknownFunction { kind: Kind, function: String, known: Vec<String> },
    #[error("`{function}` takes ({signature}): {reason}")]
    Arguments { function: String, signature: String, reason: String },
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Each kind's exports: (WIT name, parameters as WIT writes them).
pub fn functions(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Backend => &[
            ("info", ""),
            ("create", "spec: session-spec"),
            ("start", "resource-id: string, spec: session-spec"),
            ("stop", "resource-id: string"),
            ("delete", "resource-id: string"),
            ("status", "resource-id: string"),
            ("output", "resource-id: string, lines: u32"),
            ("attach-argv", "resource-id: string"),
            ("export-branch", "resource-id: string"),
            ("list-resources", ""),
        ],
        Kind::Agent => &[
            ("info", ""),
            ("plan", "request: launch-request"),
            ("parse-transcript", "lines: list<string>"),
            ("status-from-event", "event-json: string"),
        ],
        Kind::CredentialSource => &[("info", ""), ("available", ""), ("get", "service: string")],
        Kind::Hook => &[("info", ""), ("on-event", "event: session-event")],
    }
}

/// The arguments of one call, checked against the export's signature.
struct Args<'a> {
    function: &'a str,
    signature: &'static str,
    values: Vec<Value>,
}

impl Args<'_> {
    fn bad(&self, reason: String) -> CallByNameError {
        CallByNameError::Arguments { function: self.function.into(), signature: self.signature.into(), reason }
    }

    /// Parameter `i`, as `T`.
    fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, CallByNameError> {
        let name = self.signature.split(", ").nth(i).unwrap_or("?");
        let value = self.values.get(i).cloned().ok_or_else(|| self.bad(format!("`{name}` is missing")))?;
        serde_json::from_value(value).map_err(|e| self.bad(format!("`{name}`: {e}")))
    }
}

fn answer<T: Serialize>(value: T) -> Result<Value, CallByNameError> {
    // The host's types always serialize; a failure would be a bug here.
    Ok(serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("(not shown: {e})"))))
}

/// Call `function` of the loaded plugin `id` with `args` (its parameters in
/// order) on a new instance; its answer as JSON.
pub async fn call_by_name(
    runtime: &Runtime,
    id: &str,
    function: &str,
    args: Vec<Value>,
) -> Result<Value, CallByNameError> {
    let kind = runtime.plugin(id).map(|p| p.kind()).ok_or_else(|| {
        CallByNameError::Call(CallError {
            component: id.into(),
            function: function.into(),
            kind: crate::error::CallErrorKind::Instantiate("no such plugin is loaded".into()),
        })
    })?;
    let known = functions(kind);
    let Some((_, signature)) = known.iter().find(|(name, _)| *name == function) else {
        return Err(CallByNameError::UnknownFunction {
            kind,
            function: function.into(),
            known: known.iter().map(|(n, _)| n.to_string()).collect(),
        });
    };
    let wanted = if signature.is_empty() { 0 } else { signature.split(", ").count() };
    let a = Args { function, signature, values: args };
    if a.values.len() > wanted {
        return Err(a.bad(format!("{} arguments given", a.values.len())));
    }
    match kind {
        Kind::Backend => {
            let mut i = runtime.backend(id).await?;
            match function {
                "info" => answer(i.info().await?),
                "create" => {
                    let spec: types::SessionSpec = a.get(0)?;
                    let paths = [spec.worktree.clone().into(), spec.workdir.clone().into()];
                    i.serve_session(&spec.id, &paths);
                    answer(i.create(&spec).await?)
                }
                "start" => {
                    let spec: types::SessionSpec = a.get(1)?;
                    let paths = [spec.worktree.clone().into(), spec.workdir.clone().into()];
                    i.serve_session(&spec.id, &paths);
                    answer(i.start(&a.get::<String>(0)?, &spec).await?)
                }
                "stop" => answer(i.stop(&a.get::<String>(0)?).await?),
                "delete" => answer(i.delete(&a.get::<String>(0)?).await?),
                "status" => answer(i.status(&a.get::<String>(0)?).await?),
                "output" => answer(i.output(&a.get::<String>(0)?, a.get(1)?).await?),
                "attach-argv" => answer(i.attach_argv(&a.get::<String>(0)?).await?),
                "export-branch" => answer(i.export_branch(&a.get::<String>(0)?).await?),
                _ => answer(i.list_resources().await?),
            }
        }
        Kind::Agent => {
            let mut i = runtime.agent(id).await?;
            match function {
                "info" => answer(i.info().await?),
                "plan" => answer(i.plan(&a.get(0)?).await?),
                "parse-transcript" => answer(i.parse_transcript(&a.get::<Vec<String>>(0)?).await?),
                _ => answer(i.status_from_event(&a.get::<String>(0)?).await?),
            }
        }
        Kind::CredentialSource => {
            let mut i = runtime.credential_source(id).await?;
            match function {
                "info" => answer(i.info().await?),
                "available" => answer(i.available().await?),
                _ => {
                    let value = i.get(&a.get::<String>(0)?).await?;
                    // A real credential stays in host memory, here too.
                    answer(serde_json::json!({
                        "present": value.is_some(),
                        "length": value.as_ref().map(|v| v.chars().count()),
                        "value": "(never shown)",
                    }))
                }
            }
        }
        Kind::Hook => {
            let mut i = runtime.hook(id).await?;
            match function {
                "info" => answer(i.info().await?),
                _ => answer(i.on_event(&a.get(0)?).await?),
            }
        }
    }
}
