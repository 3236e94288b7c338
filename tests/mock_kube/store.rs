//! The API server's objects, in memory. Every write takes the next
//! `resourceVersion` from one counter, is kept in a bounded history (what a
//! watch resumes from) and is broadcast to the watches and the kubelet.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::errors::Failure;
use crate::kinds::{KINDS, NAMESPACES, PODS, PVCS};
use crate::selector::Filter;

/// An object's place: (index in `KINDS`, namespace — empty for a
/// cluster-scoped kind —, name).
pub type Key = (usize, String, String);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    /// The watch event's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub key: Key,
    pub change: ChangeType,
    /// The object before a modification (a watch with a selector needs it).
    pub old: Option<Value>,
    /// The object after the write (a deleted object as it was, with the
    /// deletion's resourceVersion).
    pub object: Value,
}

/// Which part of an object a client's write may change: the object (whose
/// `status` the server keeps) or its `status` subresource.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Object,
    Status,
}

/// Where a watch starts: the changes to send first, then live ones.
pub struct WatchStart {
    pub initial: Vec<Change>,
    /// The store's version when the watch started: every live change is newer.
    pub from_rv: u64,
    pub live: broadcast::Receiver<Change>,
}

#[derive(Default)]
struct State {
    last_rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// The newest version no longer in `history` (a watch from it or older gets 410).
    forgotten_rv: u64,
}

pub struct Store {
    state: Mutex<State>,
    changes: broadcast::Sender<Change>,
    history_len: usize,
}

impl Store {
    /// A store keeping the last `history_len` changes for watches to resume from.
    pub fn new(history_len: usize) -> Self {
        Self { state: Mutex::default(), changes: broadcast::channel(4096).0, history_len: history_len.max(1) }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, Failure> {
        self.state.lock().map_err(|_| Failure::internal())
    }

    /// Every change from now on (the kubelet's view).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Give `object` the next version and store (or remove) it.
    fn commit(&self, state: &mut State, key: Key, change: ChangeType, old: Option<Value>, mut object: Value) -> Value {
        state.last_rv += 1;
        object["metadata"]["resourceVersion"] = json!(state.last_rv.to_string());
        if change == ChangeType::Deleted {
            state.objects.remove(&key);
        } else {
            state.objects.insert(key.clone(), object.clone());
        }
        let record = Change { rv: state.last_rv, key, change, old, object: object.clone() };
        state.history.push_back(record.clone());
        while state.history.len() > self.history_len {
            if let Some(dropped) = state.history.pop_front() {
                state.forgotten_rv = dropped.rv;
            }
        }
        // No receiver is not an error: nobody watches yet.
        let _ = self.changes.send(record);
        object
    }

    pub fn list(&self, kind: usize, namespace: &str, filter: &Filter) -> Result<(Vec<Value>, u64), Failure> {
        let state = self.lock()?;
        let items = state
            .objects
            .iter()
            .filter(|((k, ns, _), obj)| *k == kind && (namespace.is_empty() || ns == namespace) && filter.matches(obj))
            .map(|(_, obj)| obj.clone())
            .collect();
        Ok((items, state.last_rv))
    }

    pub fn get(&self, kind: usize, namespace: &str, name: &str) -> Result<Value, Failure> {
        let state = self.lock()?;
        state
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| Failure::not_found(kind, name))
    }

    pub fn create(&self, kind: usize, namespace: &str, obj: Value) -> Result<Value, Failure> {
        let mut state = self.lock()?;
        self.create_locked(&mut state, kind, namespace, obj)
    }

    fn create_locked(&self, state: &mut State, kind: usize, namespace: &str, mut obj: Value) -> Result<Value, Failure> {
        let k = &KINDS[kind];
        let mut meta = obj.get("metadata").filter(|m| m.is_object()).cloned().unwrap_or_else(|| json!({}));
        let name = match (meta.get("name").and_then(Value::as_str), meta.get("generateName").and_then(Value::as_str)) {
            (Some(name), _) if !name.is_empty() => name.to_string(),
            (_, Some(prefix)) if !prefix.is_empty() => {
                format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5])
            }
            _ => {
                return Err(Failure::invalid(
                    kind,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                ));
            }
        };
        if !valid_name(&name) {
            return Err(Failure::invalid(
                kind,
                &name,
                "metadata.name",
                "FieldValueInvalid",
                &format!(
                    "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
                ),
            ));
        }
        let namespace = if k.namespaced {
            let asked = meta.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
            if !namespace.is_empty() && asked != namespace {
                return Err(Failure::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            asked.to_string()
        } else {
            String::new()
        };
        if k.namespaced && !state.objects.contains_key(&(NAMESPACES, String::new(), namespace.clone())) {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("namespaces \"{namespace}\" not found"),
                Some(json!({"name": namespace, "kind": "namespaces"})),
            ));
        }
        if kind == PODS {
            check_pod_spec(&name, &obj)?;
        }
        let key = (kind, namespace.clone(), name.clone());
        if state.objects.contains_key(&key) {
            return Err(Failure::conflict(
                kind,
                &name,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", k.plural),
            ));
        }
        meta["name"] = json!(name);
        if k.namespaced {
            meta["namespace"] = json!(namespace);
        }
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now_rfc3339());
        obj["metadata"] = meta;
        obj["apiVersion"] = json!(k.api_version());
        obj["kind"] = json!(k.kind);
        if k.has_status() {
            // What a client sends as status is not taken; the server starts it.
            obj["status"] = match kind {
                PODS | PVCS => json!({"phase": "Pending"}),
                _ if k.crd => json!({}),
                _ => json!({"phase": "Active"}),
            };
        }
        Ok(self.commit(state, key, ChangeType::Added, None, obj))
    }

    /// Write over an existing object: `proposed` is computed from it under
    /// the same lock (a replace's body, a patch applied to it).
    fn write_locked(
        &self,
        state: &mut State,
        key: Key,
        part: Part,
        proposed: impl FnOnce(&Value) -> Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let existing = state.objects.get(&key).cloned().ok_or_else(|| Failure::not_found(key.0, &key.2))?;
        let stored = settle(key.0, &existing, proposed(&existing)?, part)?;
        Ok(self.commit(state, key, ChangeType::Modified, Some(existing), stored))
    }

    /// PUT: replace the object (or its status), with a `resourceVersion`
    /// precondition when the body carries one.
    pub fn replace(&self, key: Key, part: Part, obj: Value) -> Result<Value, Failure> {
        let mut state = self.lock()?;
        let (kind, name) = (key.0, key.2.clone());
        self.write_locked(&mut state, key, part, |existing| {
            let rv = obj["metadata"].get("resourceVersion").and_then(Value::as_str);
            preconditions(kind, &name, existing, None, rv)?;
            Ok(obj)
        })
    }

    /// PATCH with a merge patch (a strategic merge patch is taken as one).
    pub fn patch(&self, key: Key, part: Part, patch: &Value) -> Result<Value, Failure> {
        let mut state = self.lock()?;
        self.write_locked(&mut state, key, part, |existing| Ok(merged(existing, patch)))
    }

    /// Server-side apply, simplified: create the object, or merge it into the
    /// existing one (no field ownership is tracked), in one step. Returns the
    /// object and whether it was created.
    pub fn apply(&self, key: Key, mut obj: Value) -> Result<(Value, bool), Failure> {
        if obj["metadata"].get("name").and_then(Value::as_str).is_some_and(|n| n != key.2) {
            return Err(Failure::bad_request("the name of the object does not match the name on the URL"));
        }
        let mut state = self.lock()?;
        if state.objects.contains_key(&key) {
            let (kind, name) = (key.0, key.2.clone());
            let stored = self.write_locked(&mut state, key, Part::Object, |existing| {
                let rv = obj["metadata"].get("resourceVersion").and_then(Value::as_str);
                preconditions(kind, &name, existing, None, rv)?;
                Ok(merged(existing, &obj))
            })?;
            Ok((stored, false))
        } else {
            obj["metadata"]["name"] = json!(key.2);
            Ok((self.create_locked(&mut state, key.0, &key.1, obj)?, true))
        }
    }

    /// Delete an object, if it has the `uid` and `resourceVersion` of the
    /// `preconditions` given (a `DeleteOptions` field); a namespace takes its
    /// objects with it.
    pub fn delete(&self, key: Key, given: &Value) -> Result<Value, Failure> {
        let mut state = self.lock()?;
        let existing = state.objects.get(&key).cloned().ok_or_else(|| Failure::not_found(key.0, &key.2))?;
        let (uid, rv) = (given["uid"].as_str(), given["resourceVersion"].as_str());
        preconditions(key.0, &key.2, &existing, uid, rv)?;
        if key.0 == NAMESPACES {
            let inside: Vec<(Key, Value)> = state
                .objects
                .iter()
                .filter(|((_, ns, _), _)| *ns == key.2)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (inner, obj) in inside {
                self.commit(&mut state, inner, ChangeType::Deleted, None, obj);
            }
        }
        Ok(self.commit(&mut state, key, ChangeType::Deleted, None, existing))
    }

    /// A write by the server itself (the scheduler's binding, the kubelet's
    /// status): change the object in place, if it is still the one with
    /// `uid`. Returns the stored object, or `None` when it is gone.
    pub fn update(&self, key: &Key, uid: &str, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let mut state = self.state.lock().ok()?;
        let existing = state.objects.get(key).filter(|o| o["metadata"]["uid"] == uid)?.clone();
        let mut object = existing.clone();
        change(&mut object);
        if object == existing {
            return Some(existing);
        }
        Some(self.commit(&mut state, key.clone(), ChangeType::Modified, Some(existing), object))
    }

    /// Start a watch of `kind` (in `namespace`, or all). `rv` is where the
    /// client left off; without it (or with `send_initial`) every current
    /// object comes first as ADDED.
    pub fn watch(
        &self,
        kind: usize,
        namespace: &str,
        rv: Option<u64>,
        send_initial: bool,
    ) -> Result<WatchStart, Failure> {
        let state = self.lock()?;
        let live = self.changes.subscribe();
        let here = |(k, ns, _): &Key| *k == kind && (namespace.is_empty() || ns == namespace);
        let initial = match rv {
            Some(rv) if !send_initial && rv > 0 => {
                if rv < state.forgotten_rv {
                    return Err(Failure::expired(format!(
                        "too old resource version: {rv} ({})",
                        state.forgotten_rv + 1
                    )));
                }
                state.history.iter().filter(|c| c.rv > rv && here(&c.key)).cloned().collect()
            }
            _ => state
                .objects
                .iter()
                .filter(|(key, _)| here(key))
                .map(|(key, obj)| Change {
                    rv: obj["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0),
                    key: key.clone(),
                    change: ChangeType::Added,
                    old: None,
                    object: obj.clone(),
                })
                .collect(),
        };
        Ok(WatchStart { initial, from_rv: state.last_rv, live })
    }
}

/// 409 unless `existing` has `uid` and is at `rv` (each when given), in the
/// API server's words: the preconditions of a write or a delete.
fn preconditions(
    kind: usize,
    name: &str,
    existing: &Value,
    uid: Option<&str>,
    rv: Option<&str>,
) -> Result<(), Failure> {
    let plural = KINDS[kind].plural;
    let meta = &existing["metadata"];
    let failed = |why: String| {
        Err(Failure::conflict(
            kind,
            name,
            "Conflict",
            format!("Operation cannot be fulfilled on {plural} \"{name}\": {why}"),
        ))
    };
    if let Some(uid) = uid.filter(|u| Some(*u) != meta["uid"].as_str()) {
        return failed(format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            meta["uid"].as_str().unwrap_or_default()
        ));
    }
    if rv.is_some_and(|rv| Some(rv) != meta["resourceVersion"].as_str()) {
        return failed(
            "the object has been modified; please apply your changes to the latest version and try again".into(),
        );
    }
    Ok(())
}

/// What the server stores when a client writes `proposed` over `existing`:
/// identity and server-owned fields kept; the status kept on an object write
/// and the rest kept on a status write; a pod's spec unchangeable.
fn settle(kind: usize, existing: &Value, proposed: Value, part: Part) -> Result<Value, Failure> {
    let k = &KINDS[kind];
    let mut out = match part {
        Part::Object => {
            let mut out = proposed;
            if !out.is_object() {
                return Err(Failure::bad_request("the body is not an object"));
            }
            if k.has_status() {
                set_or_remove(&mut out, "status", existing.get("status"));
            }
            out
        }
        Part::Status => {
            let mut out = existing.clone();
            set_or_remove(&mut out, "status", proposed.get("status"));
            out
        }
    };
    if !out.get("metadata").is_some_and(Value::is_object) {
        out["metadata"] = json!({});
    }
    for owned in ["uid", "creationTimestamp", "name", "namespace"] {
        set_or_remove(&mut out["metadata"], owned, existing["metadata"].get(owned));
    }
    out["apiVersion"] = json!(k.api_version());
    out["kind"] = json!(k.kind);
    if kind == PODS && out["spec"] != existing["spec"] {
        let name = existing["metadata"]["name"].as_str().unwrap_or_default();
        return Err(Failure::invalid(
            kind,
            name,
            "spec",
            "FieldValueForbidden",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds` (this mock server allows none of them to change)",
        ));
    }
    Ok(out)
}

/// `object[field]` becomes `value`, or goes when there is none.
fn set_or_remove(object: &mut Value, field: &str, value: Option<&Value>) {
    match value {
        Some(value) => object[field] = value.clone(),
        None => _ = object.as_object_mut().map(|o| o.remove(field)),
    }
}

/// `existing` with a merge patch applied.
fn merged(existing: &Value, patch: &Value) -> Value {
    let mut out = existing.clone();
    merge_patch(&mut out, patch);
    out
}

/// A pod needs containers, each with a name and an image.
fn check_pod_spec(name: &str, pod: &Value) -> Result<(), Failure> {
    let required = |field: String| Failure::invalid(PODS, name, &field, "FieldValueRequired", "Required value");
    let containers = pod["spec"]["containers"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| required("spec.containers".into()))?;
    for (i, c) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if c.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(required(format!("spec.containers[{i}].{field}")));
            }
        }
    }
    Ok(())
}

/// RFC 7386 JSON merge patch; a strategic merge patch's directives
/// (`$setElementOrder/…`, `$patch`, …) are left out.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in fields {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            if let Some(map) = target.as_object_mut() {
                map.remove(key);
            }
        } else {
            merge_patch(&mut target[key], value);
        }
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Now, as the API writes times (`2026-12-06T04:20:00Z`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_default_namespace(history: usize) -> Store {
        let store = Store::new(history);
        store.create(NAMESPACES, "", json!({"metadata": {"name": "default"}})).expect("namespace");
        store
    }

    fn pod(name: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    }

    #[test]
    fn a_merge_patch_merges_objects_replaces_lists_and_removes_nulls() {
        let mut obj = json!({"a": {"b": 1, "c": 2}, "l": [1, 2], "gone": true});
        merge_patch(
            &mut obj,
            &json!({"a": {"c": 3, "d": 4}, "l": [9], "gone": null, "$setElementOrder/l": [{"n": 9}]}),
        );
        assert_eq!(obj, json!({"a": {"b": 1, "c": 3, "d": 4}, "l": [9]}));
    }

    #[test]
    fn writes_and_deletes_honour_their_uid_and_version_preconditions() {
        let store = store_with_default_namespace(10);
        let created = store.create(PODS, "default", pod("p")).expect("create");
        let key: Key = (PODS, "default".into(), "p".into());
        let (uid, rv) = (created["metadata"]["uid"].as_str().unwrap(), created["metadata"]["resourceVersion"].clone());
        let mut stale = pod("p");
        stale["metadata"]["resourceVersion"] = json!("1");
        let refused = store.apply(key.clone(), stale).expect_err("an apply at an old version");
        assert!(refused.1["message"].as_str().unwrap().contains("the object has been modified"), "{refused:?}");
        let mut current = pod("p");
        current["metadata"]["resourceVersion"] = rv;
        store.apply(key.clone(), current).expect("an apply at the current version");
        let refused = store.delete(key.clone(), &json!({"uid": "another"})).expect_err("a delete of another uid");
        assert_eq!(refused.0, hyper::StatusCode::CONFLICT);
        assert!(refused.1["message"].as_str().unwrap().contains("UID in precondition: another"), "{refused:?}");
        store.delete(key, &json!({"uid": uid})).expect("a delete of this uid");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }

    #[test]
    fn an_object_write_keeps_the_status_and_a_status_write_keeps_the_rest() {
        let store = store_with_default_namespace(10);
        store.create(PODS, "default", pod("p")).expect("create");
        let key: Key = (PODS, "default".into(), "p".into());
        let mut labelled = pod("p");
        labelled["metadata"]["labels"] = json!({"a": "b"});
        labelled["status"] = json!({"phase": "Running"});
        let stored = store.replace(key.clone(), Part::Object, labelled).expect("replace");
        assert_eq!(stored["status"]["phase"], "Pending", "a client cannot write status through the object");
        assert_eq!(stored["metadata"]["labels"]["a"], "b");
        let stored = store
            .patch(
                key.clone(),
                Part::Status,
                &json!({"metadata": {"labels": {"a": "c"}}, "status": {"phase": "Failed", "reason": "Evicted"}}),
            )
            .expect("status patch");
        assert_eq!(stored["status"]["reason"], "Evicted");
        assert_eq!(stored["metadata"]["labels"]["a"], "b", "a status write changes only the status");
        let mut respec = pod("p");
        respec["spec"]["containers"][0]["command"] = json!(["sh"]);
        let refused = store.replace(key, Part::Object, respec).expect_err("a pod's spec is fixed");
        assert_eq!(refused.0, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn a_watch_resumes_from_history_and_is_told_when_it_is_too_old() {
        let store = store_with_default_namespace(3);
        for name in ["a", "b", "c", "d"] {
            store.create(PODS, "default", pod(name)).expect("create");
        }
        // Versions: 1 the namespace, 2..=5 the pods; history keeps 3..=5.
        let resumed = store.watch(PODS, "default", Some(3), false).expect("watch from 3");
        let names: Vec<&str> = resumed.initial.iter().map(|c| c.key.2.as_str()).collect();
        assert_eq!(names, ["c", "d"], "changes after version 3");
        assert_eq!(resumed.from_rv, 5);
        let expired = store.watch(PODS, "default", Some(1), false).err().expect("version 1 is forgotten");
        assert_eq!(expired.0, StatusCode::GONE);
        let fresh = store.watch(PODS, "", None, false).expect("watch from now");
        assert_eq!(fresh.initial.len(), 4, "every pod as ADDED");
        assert!(fresh.initial.iter().all(|c| c.change == ChangeType::Added));
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects_as_changes() {
        let store = store_with_default_namespace(100);
        store.create(PODS, "default", pod("a")).expect("create");
        let mut live = store.subscribe();
        store.delete((NAMESPACES, String::new(), "default".into()), &Value::Null).expect("delete");
        let first = live.try_recv().expect("a change");
        assert_eq!((first.key.2.as_str(), first.change), ("a", ChangeType::Deleted));
        let second = live.try_recv().expect("a change");
        assert_eq!((second.key.2.as_str(), second.change), ("default", ChangeType::Deleted));
        assert!(store.get(PODS, "default", "a").is_err());
    }
}
