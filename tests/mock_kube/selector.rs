//! Label and field selectors, as list and watch requests send them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::errors::Failure;

/// What a list or watch request selects: its `labelSelector` and
/// `fieldSelector`, both of which must hold.
#[derive(Default)]
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(query: &BTreeMap<String, String>) -> Result<Self, Failure> {
        Ok(Self {
            labels: query
                .get("labelSelector")
                .map(|s| LabelSelector::parse(s))
                .transpose()
                .map_err(Failure::bad_request)?,
            fields: query
                .get("fieldSelector")
                .map(|s| FieldSelector::parse(s))
                .transpose()
                .map_err(Failure::bad_request)?,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.as_ref().is_none_or(|s| s.matches(obj)) && self.fields.as_ref().is_none_or(|s| s.matches(obj))
    }
}

/// A label selector: requirements that must all hold.
pub struct LabelSelector(Vec<(String, Op)>);

enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest.trim().strip_prefix('(').and_then(|r| r.strip_suffix(')'));
                let inner = inner.ok_or_else(|| format!("unable to parse requirement: {part:?}: expected (values)"))?;
                Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
            };
            let requirement = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), Op::DoesNotExist)
            } else if let Some((key, value)) = part.split_once("!=") {
                (key.trim().to_string(), Op::NotIn(vec![value.trim().to_string()]))
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (key.trim().to_string(), Op::In(vec![value.trim().to_string()]))
            } else if let Some((key, rest)) = part.split_once(" notin ") {
                (key.trim().to_string(), Op::NotIn(set(rest)?))
            } else if let Some((key, rest)) = part.split_once(" in ") {
                (key.trim().to_string(), Op::In(set(rest)?))
            } else if part.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                (part.to_string(), Op::Exists)
            } else {
                return Err(format!("unable to parse requirement: {part:?}"));
            };
            out.push(requirement);
        }
        Ok(Self(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.0.iter().all(|(key, op)| {
            let value = labels.get(key).and_then(Value::as_str);
            match op {
                Op::In(values) => value.is_some_and(|v| values.iter().any(|w| w == v)),
                Op::NotIn(values) => value.is_none_or(|v| values.iter().all(|w| w != v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// Split on commas outside parentheses (`a=b,c in (d,e)`).
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// A field selector: `path=value`, `path==value` or `path!=value`, all of them.
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = part.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (p, true, v)
            } else {
                return Err(format!("invalid field selector: {part:?}"));
            };
            out.push((path.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let found = path.split('.').try_fold(obj, |v, key| v.get(key));
            let text = match found {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (text == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_selectors_follow_the_apis_syntax() {
        let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let matches = |s: &str| LabelSelector::parse(s).expect(s).matches(&obj);
        for yes in [
            "app=web",
            "app==web",
            "app",
            "!missing",
            "app in (db, web)",
            "tier notin (back)",
            "app=web,tier!=back",
            "",
        ] {
            assert!(matches(yes), "{yes:?} should match");
        }
        for no in ["app=db", "app!=web", "missing", "!app", "app in (db)", "app notin (web,db)", "app=web,tier=back"] {
            assert!(!matches(no), "{no:?} should not match");
        }
        assert!(LabelSelector::parse("app in web").is_err(), "a set needs parentheses");
        assert!(LabelSelector::parse("a b c").is_err());
    }

    #[test]
    fn field_selectors_reach_any_dotted_field() {
        let obj = json!({"metadata": {"name": "p1"}, "involvedObject": {"uid": "u1", "kind": "Pod"}});
        let matches = |s: &str| FieldSelector::parse(s).expect(s).matches(&obj);
        assert!(matches("metadata.name=p1,involvedObject.uid=u1,involvedObject.kind==Pod"));
        assert!(matches("metadata.namespace!=x"));
        assert!(!matches("metadata.name=p2"));
        assert!(!matches("involvedObject.uid!=u1"));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
