//! Access modes: what a read-only session may send. Reads pass — GET, HEAD,
//! OPTIONS, git's smart-HTTP fetch (`git-upload-pack`, so clone and fetch
//! work) and GraphQL POSTs whose operations are all queries. Everything else
//! is a write and gets a 403; git push is refused at its first request
//! (`info/refs?service=git-receive-pack`), before anything reaches the server.

use http::Method;
use serde::{Deserialize, Serialize};

/// A session's access mode: what it may do through its proxy. The one
/// definition (the session model, the API and the CLI use this one; the WIT
/// contract has its own for components). Read-only unless chosen otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AccessMode {
    /// Only reads pass.
    #[default]
    ReadOnly,
    /// Every request passes.
    ReadWrite,
}

impl AccessMode {
    /// Its name in the API and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::ReadWrite => "read-write",
        }
    }
}

impl std::str::FromStr for AccessMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read-only" => Ok(Self::ReadOnly),
            "read-write" => Ok(Self::ReadWrite),
            other => Err(format!("access mode must be `read-only` or `read-write`, not `{other}`")),
        }
    }
}

/// What the policy says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it.
    Allow,
    /// Refuse it, for this reason (a sentence for a person).
    Block(String),
    /// A GraphQL POST: read the body and call [`graphql`].
    InspectGraphql,
}

/// The verdict for a request line in `mode`.
pub fn check(mode: AccessMode, method: &Method, path: &str, query: Option<&str>) -> Verdict {
    if mode == AccessMode::ReadWrite {
        return Verdict::Allow;
    }
    let pushes = path.ends_with("/git-receive-pack")
        || (path.ends_with("/info/refs")
            && query.is_some_and(|q| q.split('&').any(|p| p == "service=git-receive-pack")));
    if pushes {
        return Verdict::Block("git push (git-receive-pack) writes to the repository".into());
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Verdict::Allow;
    }
    if *method == Method::POST && path.ends_with("/git-upload-pack") {
        return Verdict::Allow;
    }
    if *method == Method::POST && path.trim_end_matches('/').ends_with("/graphql") {
        return Verdict::InspectGraphql;
    }
    Verdict::Block(format!("{method} requests can change data"))
}

/// The verdict for a GraphQL request body: allowed only if every operation
/// in it (or in every request of a batch) is a query.
pub fn graphql(body: &[u8]) -> Verdict {
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Verdict::Block(format!("the GraphQL request body is not JSON ({e})")),
    };
    let requests = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    for request in &requests {
        let Some(query) = request.get("query").and_then(|q| q.as_str()) else {
            return Verdict::Block(
                "the GraphQL request has no query text to check (persisted queries are refused)".into(),
            );
        };
        if let Some(reason) = write_operation(query) {
            return Verdict::Block(reason);
        }
    }
    Verdict::Allow
}

/// Why a GraphQL document is not read-only, or None if it is all queries.
fn write_operation(query: &str) -> Option<String> {
    use graphql_parser::query::{Definition, OperationDefinition};
    let doc = match graphql_parser::parse_query::<&str>(query) {
        Ok(doc) => doc,
        Err(e) => return Some(format!("the GraphQL query could not be parsed ({e})")),
    };
    doc.definitions.iter().find_map(|d| match d {
        Definition::Operation(OperationDefinition::Mutation(m)) => {
            Some(format!("GraphQL mutation `{}` changes data", m.name.unwrap_or("(anonymous)")))
        }
        Definition::Operation(OperationDefinition::Subscription(s)) => {
            Some(format!("GraphQL subscription `{}` is not a query", s.name.unwrap_or("(anonymous)")))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RO: AccessMode = AccessMode::ReadOnly;

    #[test]
    fn read_write_allows_everything() {
        assert_eq!(check(AccessMode::ReadWrite, &Method::DELETE, "/repos/x", None), Verdict::Allow);
        assert_eq!(check(AccessMode::ReadWrite, &Method::POST, "/r.git/git-receive-pack", None), Verdict::Allow);
    }

    #[test]
    fn read_only_allows_reads_and_git_fetch_but_not_writes_or_push() {
        assert_eq!(check(RO, &Method::GET, "/user", None), Verdict::Allow);
        assert_eq!(check(RO, &Method::HEAD, "/", None), Verdict::Allow);
        assert_eq!(check(RO, &Method::OPTIONS, "/", None), Verdict::Allow);
        assert_eq!(check(RO, &Method::GET, "/o/r.git/info/refs", Some("service=git-upload-pack")), Verdict::Allow);
        assert_eq!(check(RO, &Method::POST, "/o/r.git/git-upload-pack", None), Verdict::Allow);
        for (m, p, q) in [
            (Method::GET, "/o/r.git/info/refs", Some("service=git-receive-pack")),
            (Method::POST, "/o/r.git/git-receive-pack", None),
            (Method::POST, "/repos/o/r/issues", None),
            (Method::PUT, "/x", None),
            (Method::PATCH, "/x", None),
            (Method::DELETE, "/x", None),
        ] {
            assert!(matches!(check(RO, &m, p, q), Verdict::Block(_)), "{m} {p}");
        }
        assert_eq!(check(RO, &Method::POST, "/graphql", None), Verdict::InspectGraphql);
    }

    #[test]
    fn graphql_queries_pass_and_mutations_or_subscriptions_are_blocked() {
        assert_eq!(graphql(br#"{"query":"query { viewer { login } }"}"#), Verdict::Allow);
        assert_eq!(graphql(br#"{"query":"{ viewer { login } } fragment F on User { id }"}"#), Verdict::Allow);
        let mutation =
            br#"{"query":"query A { viewer { id } } mutation AddStar { addStar(input:{}) { clientMutationId } }"}"#;
        assert!(matches!(graphql(mutation), Verdict::Block(r) if r.contains("AddStar")));
        assert!(matches!(graphql(br#"{"query":"subscription { x }"}"#), Verdict::Block(_)));
        assert!(matches!(graphql(br#"[{"query":"{ a }"},{"query":"mutation { b }"}]"#), Verdict::Block(_)));
        assert!(matches!(graphql(br#"{"extensions":{"persistedQuery":{}}}"#), Verdict::Block(_)));
        assert!(matches!(graphql(b"not json"), Verdict::Block(_)));
        assert!(matches!(graphql(br#"{"query":"mutation {"}"#), Verdict::Block(_)));
    }
}
