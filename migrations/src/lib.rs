//! Versioned schema steps for clauderon's redb store, run at start-up.
//!
//! Version 0 is an empty file. Each [`Migration`] moves the store from the
//! version before it to its own, inside one write transaction that also
//! records the version, so the store is always at a whole version.

pub mod schema;

use redb::{Database, ReadableDatabase, WriteTransaction};

/// One schema step.
pub struct Migration {
    /// The version the store has after this step.
    pub version: u64,
    /// What the step does, for logs.
    pub description: &'static str,
    /// The step itself.
    pub apply: fn(&WriteTransaction) -> Result<(), redb::Error>,
}

/// Every step, in order. Append only.
pub const STEPS: &[Migration] = &[
    Migration {
        version: 1,
        description: "create sessions, session names, events, component kv and meta tables",
        apply: v1_initial,
    },
    Migration { version: 2, description: "create the proxy audit table", apply: v2_audit },
    Migration { version: 3, description: "create the web push subscriptions table", apply: v3_push },
];

/// The schema version this build writes.
pub const CURRENT: u64 = 3;

fn v1_initial(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(schema::SESSIONS)?;
    txn.open_table(schema::SESSION_NAMES)?;
    txn.open_table(schema::EVENTS)?;
    txn.open_table(schema::COMPONENT_KV)?;
    Ok(())
}

fn v2_audit(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(schema::AUDIT)?;
    Ok(())
}

fn v3_push(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(schema::PUSH_SUBSCRIPTIONS)?;
    Ok(())
}

/// Why the store could not be brought to the current schema.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the store is at schema version {found}, written by a newer clauderon (this one knows up to {known}); \
         upgrade clauderon — the store was left untouched"
    )]
    Newer { found: u64, known: u64 },
    #[error("schema step {version} ({description}) failed: {source}")]
    Step { version: u64, description: &'static str, source: redb::Error },
    #[error("reading the schema version failed: {0}")]
    Read(redb::Error),
}

/// The store's schema version (0 for a new store).
pub fn version(db: &Database) -> Result<u64, MigrationError> {
    let read = |e: redb::Error| MigrationError::Read(e);
    let txn = db.begin_read().map_err(|e| read(e.into()))?;
    match txn.open_table(schema::META) {
        Ok(t) => Ok(t.get(schema::SCHEMA_VERSION).map_err(|e| read(e.into()))?.map(|v| v.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(read(e.into())),
    }
}

/// Bring the store to [`CURRENT`]; returns the versions applied.
pub fn run(db: &Database) -> Result<Vec<u64>, MigrationError> {
    run_to(db, CURRENT)
}

/// Bring the store to `target` (used by tests to build older stores).
pub fn run_to(db: &Database, target: u64) -> Result<Vec<u64>, MigrationError> {
    let found = version(db)?;
    if found > CURRENT {
        return Err(MigrationError::Newer { found, known: CURRENT });
    }
    let mut applied = Vec::new();
    for step in STEPS.iter().filter(|s| s.version > found && s.version <= target) {
        let fail =
            |source: redb::Error| MigrationError::Step { version: step.version, description: step.description, source };
        let txn = db.begin_write().map_err(|e| fail(e.into()))?;
        (step.apply)(&txn).map_err(fail)?;
        {
            let mut meta = txn.open_table(schema::META).map_err(|e| fail(e.into()))?;
            meta.insert(schema::SCHEMA_VERSION, step.version).map_err(|e| fail(e.into()))?;
        }
        txn.commit().map_err(|e| fail(e.into()))?;
        applied.push(step.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;

    fn db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("s.redb")).expect("create");
        (dir, db)
    }

    #[test]
    fn steps_are_numbered_in_order_up_to_current() {
        let versions: Vec<u64> = STEPS.iter().map(|s| s.version).collect();
        assert_eq!(versions, (1..=CURRENT).collect::<Vec<_>>());
    }

    #[test]
    fn v1_from_an_empty_store_creates_every_table() {
        let (_d, db) = db();
        assert_eq!(version(&db).expect("version"), 0);
        assert_eq!(run(&db).expect("run"), vec![1, 2, 3]);
        assert_eq!(version(&db).expect("version"), 3);
        let txn = db.begin_read().expect("read");
        assert_eq!(txn.open_table(schema::SESSIONS).expect("sessions").len().expect("len"), 0);
        txn.open_table(schema::SESSION_NAMES).expect("names");
        txn.open_table(schema::EVENTS).expect("events");
        txn.open_table(schema::COMPONENT_KV).expect("kv");
        txn.open_table(schema::AUDIT).expect("audit");
        txn.open_table(schema::PUSH_SUBSCRIPTIONS).expect("push");
    }

    #[test]
    fn a_v1_store_gains_the_audit_table_and_keeps_its_sessions() {
        let (_d, db) = db();
        assert_eq!(run_to(&db, 1).expect("v1"), vec![1]);
        let txn = db.begin_write().expect("write");
        txn.open_table(schema::SESSIONS).expect("t").insert("id", b"{}".as_slice()).expect("insert");
        txn.commit().expect("commit");
        assert_eq!(run(&db).expect("upgrade"), vec![2, 3]);
        let txn = db.begin_read().expect("read");
        assert!(txn.open_table(schema::SESSIONS).expect("t").get("id").expect("get").is_some());
        assert_eq!(txn.open_table(schema::AUDIT).expect("audit").len().expect("len"), 0);
    }

    #[test]
    fn running_again_is_a_no_op_and_keeps_data() {
        let (_d, db) = db();
        run(&db).expect("first");
        let txn = db.begin_write().expect("write");
        txn.open_table(schema::SESSIONS).expect("t").insert("id", b"{}".as_slice()).expect("insert");
        txn.commit().expect("commit");
        assert!(run(&db).expect("second").is_empty());
        let txn = db.begin_read().expect("read");
        assert!(txn.open_table(schema::SESSIONS).expect("t").get("id").expect("get").is_some());
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused_and_untouched() {
        let (_d, db) = db();
        run(&db).expect("run");
        let txn = db.begin_write().expect("write");
        txn.open_table(schema::META).expect("meta").insert(schema::SCHEMA_VERSION, CURRENT + 5).expect("insert");
        txn.commit().expect("commit");
        let err = run(&db).expect_err("newer");
        assert!(err.to_string().contains("newer clauderon"), "{err}");
        assert_eq!(version(&db).expect("version"), CURRENT + 5);
    }
}
