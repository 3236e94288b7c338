//! Errors as the API server sends them: an HTTP code and a `Status` object.

use hyper::StatusCode;
use serde_json::{Value, json};

use crate::kinds::KINDS;

/// An error answer: its code and its `Status` object.
#[derive(Debug)]
pub struct Failure(pub StatusCode, pub Value);

impl Failure {
    /// A `Status` object naming `reason` (`NotFound`, `Conflict`, …), with
    /// `details` where the API gives them.
    pub fn new(code: StatusCode, reason: &str, message: impl Into<String>, details: Option<Value>) -> Self {
        let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": message.into(), "reason": reason, "code": code.as_u16()});
        if let Some(details) = details {
            status["details"] = details;
        }
        Self(code, status)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message, None)
    }

    pub fn not_found(kind: usize, name: &str) -> Self {
        let plural = KINDS[kind].plural;
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{plural} \"{name}\" not found"),
            Some(json!({"name": name, "kind": plural})),
        )
    }

    pub fn conflict(kind: usize, name: &str, reason: &str, message: String) -> Self {
        Self::new(StatusCode::CONFLICT, reason, message, Some(json!({"name": name, "kind": KINDS[kind].plural})))
    }

    /// 422: `field` of the object is wrong; `cause` is the API's reason
    /// (`FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`) and
    /// `detail` says how (`Invalid value: "x": …`, `Required value`, …).
    pub fn invalid(kind: usize, name: &str, field: &str, cause: &str, detail: &str) -> Self {
        let k = &KINDS[kind];
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {detail}", k.kind),
            Some(
                json!({"name": name, "kind": k.kind, "causes": [{"reason": cause, "message": detail, "field": field}]}),
            ),
        )
    }

    /// 410 Gone: a watch asked for history that is no longer kept.
    pub fn expired(message: String) -> Self {
        Self::new(StatusCode::GONE, "Expired", message, None)
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "the mock's state lock was poisoned", None)
    }
}
