//! Every table of the store, as of the current schema version.

use redb::TableDefinition;

/// Store metadata: `schema_version` → u64.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Sessions: id → the session as JSON.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Session names: name → id (names are unique).
pub const SESSION_NAMES: TableDefinition<&str, &str> = TableDefinition::new("session_names");
/// The append-only event log: sequence number → the event as JSON.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Per-component key-value state: (component id, key) → value.
pub const COMPONENT_KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("component_kv");
/// Proxy audit records: sequence number → JSON record (append-only, pruned by age).
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// Browsers subscribed to Web Push: the push endpoint → the subscription as JSON.
pub const PUSH_SUBSCRIPTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("push_subscriptions");

/// The key under which [`META`] holds the schema version.
pub const SCHEMA_VERSION: &str = "schema_version";
