//! The OpenAPI 3.1 document of the API, served at `/api/openapi.json`.

use serde_json::{Value, json};

fn op(summary: &str, ok: &str) -> Value {
    json!({
        "summary": summary,
        "responses": {
            "200": { "description": ok },
            "default": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        }
    })
}

fn id_param() -> Value {
    json!([{ "name": "id", "in": "path", "required": true, "description": "session id or name", "schema": { "type": "string" } }])
}

fn with_id(mut v: Value) -> Value {
    v["parameters"] = id_param();
    v
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "clauderon API", "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            "/api/health": { "get": op("Daemon health", "ok") },
            "/api/config": { "get": op("Effective configuration", "the configuration") },
            "/api/plugins": { "get": op("Loaded and refused plugins", "plugins") },
            "/api/sessions": {
                "get": op("List sessions (?archived=true to include archived)", "sessions"),
                "post": {
                    "summary": "Create a session",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreateRequest" } } } },
                    "responses": { "201": { "description": "the session", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Session" } } } },
                                   "default": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } }
                }
            },
            "/api/sessions/{id}": { "get": with_id(op("Get a session", "the session")), "delete": with_id(op("Delete a session (?force=true)", "what was deleted")) },
            "/api/sessions/{id}/stop": { "post": with_id(op("Stop a session", "the session")) },
            "/api/sessions/{id}/start": { "post": with_id(op("Start a stopped session", "the session")) },
            "/api/sessions/{id}/archive": { "post": with_id(op("Archive a session", "the session")) },
            "/api/sessions/{id}/unarchive": { "post": with_id(op("Unarchive a session", "the session")) },
            "/api/sessions/{id}/access-mode": { "put": with_id(op("Set the access mode: {\"mode\": \"read-only\"|\"read-write\"}", "the session")) },
            "/api/sessions/{id}/attach": { "get": with_id(op("The argv that attaches a terminal", "{argv}")) },
            "/api/sessions/{id}/output": { "get": with_id(op("The last lines of output (?lines=N)", "{output}")) },
            "/api/reconcile": { "post": op("Reconcile every session with its backend", "{changes}") },
            "/api/sessions/{id}/history": { "get": with_id(op("Chat messages from the agent's transcript after ?cursor=BYTES (incremental)", "{messages, cursor, transcript}")) },
            "/api/sessions/{id}/hook": { "post": with_id(op("An agent's hook event (JSON body), authenticated by ?key=SESSION_SECRET; updates the agent status", "{agent_status}")) },
            "/api/audit": { "get": op("Proxy audit records, oldest first (?session=ID_OR_NAME&after=SEQ&limit=N)", "{records, last_seq}") },
            "/api/credentials": { "get": op("Each service a rule can inject: available, source, masked value (never the value)", "{sources, services}") },
            "/api/events": { "get": op("WebSocket: every session event as JSON (?after=SEQ replays stored ones first), and live audit records as {type: audit, record}", "switching protocols") }
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
            "CreateRequest": { "type": "object", "required": ["repo", "prompt"], "additionalProperties": false, "properties": {
                "repo": { "type": "string" }, "prompt": { "type": "string" }, "name": { "type": "string" },
                "backend": { "type": "string" }, "agent": { "type": "string" }, "model": { "type": "string" },
                "access_mode": { "enum": ["read-only", "read-write"] }, "print": { "type": "boolean" },
                "plan_mode": { "type": "boolean" }, "skip_permissions": { "type": "boolean" } } },
            "Session": { "type": "object", "properties": {
                "id": { "type": "string" }, "name": { "type": "string" }, "repo": { "type": "string" }, "subdir": { "type": "string" },
                "worktree": { "type": "string" }, "branch": { "type": "string" }, "base_commit": { "type": "string" },
                "backend": { "type": "string" }, "agent": { "type": "string" }, "model": { "type": ["string", "null"] },
                "access_mode": { "enum": ["read-only", "read-write"] },
                "status": { "enum": ["creating", "running", "stopped", "archived", "failed"] }, "error": { "type": ["string", "null"] },
                "agent_status": { "enum": ["working", "waiting-for-input", "waiting-for-approval", "idle", "unknown"] },
                "resource_id": { "type": ["string", "null"] }, "prompt": { "type": "string" }, "print_mode": { "type": "boolean" },
                "created_at": { "type": "integer" }, "updated_at": { "type": "integer" } } }
        } }
    })
}
