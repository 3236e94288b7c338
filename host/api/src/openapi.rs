//! The OpenAPI 3.1 document of the API, served at `/api/openapi.json`. It is
//! generated (utoipa) from the handlers' `#[utoipa::path]` annotations and
//! the Rust types they take and return, so it cannot drift from them; CI
//! checks a live daemon against it with schemathesis (`tests/cli/contract.rs`).
//! The web dashboard's client types are generated from a copy of it,
//! `web/openapi.json`, which a test here keeps equal to the document
//! (`just openapi` rewrites it).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::push::{
    __path_push_info, __path_subscribe, __path_test_message, __path_unsubscribe, Deliveries, Delivery, PushInfo,
    Subscribed, Subscription, SubscriptionKeys,
};
use crate::{
    __path_access_mode, __path_approval, __path_archive, __path_attach, __path_audit, __path_config, __path_console_ws,
    __path_create, __path_credentials, __path_delete, __path_doctor, __path_egress, __path_events, __path_health,
    __path_history, __path_input, __path_list, __path_list_directories, __path_login_link, __path_openapi_json,
    __path_output, __path_plugins, __path_reconcile, __path_reload_plugins, __path_show, __path_start,
    __path_status_event, __path_stop, __path_sync, __path_unarchive, Answer, ApprovalBody, Argv, Changes,
    CredentialsAnswer, Deleted, ErrorBody, Health, InputBody, LoginLink, ModeBody, Output, StatusAnswer, Typed,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "clauderon API",
        description = "Sessions, plugins, the proxy's audit and credential status. Every call but \
                       `/api/health` and an agent's status events needs `Authorization: Bearer <token>` \
                       (the token is in CLAUDERON_HOME/api-token), and every call must name the daemon \
                       in `Host` (and `Origin`, if sent). Errors are `{\"error\": \"...\"}`."
    ),
    paths(
        health, openapi_json, config, plugins, reload_plugins, list, create, show, delete, stop, sync, start, archive, unarchive,
        access_mode, egress, attach, output, reconcile, history, status_event, audit, credentials, doctor, events,
        login_link, console_ws, input, approval, list_directories, push_info, subscribe, unsubscribe, test_message
    ),
    components(schemas(
        ErrorBody, Health, Deleted, Argv, Output, Changes, StatusAnswer, CredentialsAnswer, ModeBody, LoginLink,
        InputBody, Typed, Answer, ApprovalBody, PushInfo, Subscribed, Subscription, SubscriptionKeys, Deliveries, Delivery,
        crate::AuditPage, clauderon_runtime::Inventory, clauderon_runtime::PluginSummary, clauderon_runtime::LoadFailure, clauderon_runtime::Kind, crate::directories::Listing, crate::directories::Directory, crate::doctor::Doctor, crate::doctor::Check, clauderon_sessions::EgressPolicy, clauderon_sessions::Session, clauderon_sessions::Synced, clauderon_sessions::CreateRequest, clauderon_sessions::Event,
    )),
    modifiers(&BearerToken),
    security(("token" = []))
)]
struct ApiDoc;

/// The API token as an HTTP bearer scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `web/openapi.json` is what the web client's types are generated from.
    #[test]
    fn the_web_clients_copy_of_the_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/openapi.json");
        let current = serde_json::to_string_pretty(&document()).expect("json") + "\n";
        if std::env::var_os("CLAUDERON_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &current).expect("write web/openapi.json");
            return;
        }
        let copy = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            copy == current,
            "web/openapi.json is not the API's document: run `just openapi` (it rewrites the file) and commit it"
        );
    }

    #[test]
    fn every_route_is_documented_with_its_types() {
        let doc = serde_json::to_value(document()).expect("json");
        let paths = doc["paths"].as_object().expect("paths");
        assert_eq!(paths.len(), 31, "{:?}", paths.keys().collect::<Vec<_>>());
        let egress = &doc["components"]["schemas"]["EgressPolicy"];
        let host = &egress["properties"]["hosts"]["items"];
        assert_eq!(host["pattern"], clauderon_proxy::hosts::PATTERN_SYNTAX, "{egress}");
        let create = &doc["components"]["schemas"]["CreateRequest"];
        for field in ["image", "cpu_limit", "memory_limit", "plan_mode", "skip_permissions"] {
            assert!(create["properties"][field].is_object(), "CreateRequest.{field}: {create}");
        }
        assert_eq!(create["additionalProperties"], false, "unknown fields are refused, and the document says so");
        let session = &doc["components"]["schemas"]["Session"];
        for field in ["isolation", "image", "proxy_port", "plan_mode", "transcript_path"] {
            assert!(session["properties"][field].is_object(), "Session.{field}: {session}");
        }
    }
}
