//! Access modes: what a read-only session may send. Reads pass — GET, HEAD,
//! OPTIONS, git's smart-HTTP fetch (`git-upload-pack`, so clone and fetch
//! work) and GraphQL requests whose operations are all queries. Everything
//! else is a write and gets a 403, with no loophole:
//! - a method override header (`X-HTTP-Method-Override`, `X-HTTP-Method`,
//!   `X-Method-Override`) counts as the method;
//! - a GraphQL document in the URL (`?query=mutation …`) is checked whatever
//!   the method and the path;
//! - a GraphQL POST is one to a `…/graphql` endpoint whose body is a plain
//!   GraphQL request (only `query`, `variables`, `operationName`,
//!   `extensions`), so a REST write at a path that merely ends in `graphql`
//!   does not pass as one;
//! - git's fetch passes only as `POST …/git-upload-pack` with git's own
//!   content type; git push is refused at its first request
//!   (`info/refs?service=git-receive-pack`), before anything reaches the server.

use http::{HeaderMap, Method, header};
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

/// Headers by which a client asks the server to treat a request as another method.
pub const METHOD_OVERRIDES: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// The content type git sends with a fetch (`git-upload-pack`).
const UPLOAD_PACK_REQUEST: &str = "application/x-git-upload-pack-request";

/// Whether an override header's value names a method that only reads.
/// Servers that honour these headers upper-case the value, so case does not
/// matter here; it does for the request's own method (see [`check`]).
fn is_read(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS"].iter().any(|m| m.eq_ignore_ascii_case(method.trim()))
}

/// The verdict for a request's head in `mode`.
pub fn check(mode: AccessMode, method: &Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> Verdict {
    if mode == AccessMode::ReadWrite {
        return Verdict::Allow;
    }
    let pushes = path.ends_with("/git-receive-pack")
        || (path.ends_with("/info/refs")
            && query.is_some_and(|q| q.split('&').any(|p| p == "service=git-receive-pack")));
    if pushes {
        return Verdict::Block("git push (git-receive-pack) writes to the repository".into());
    }
    for name in METHOD_OVERRIDES {
        for value in headers.get_all(name) {
            let value = value.to_str().unwrap_or("(not text)");
            if !is_read(value) {
                return Verdict::Block(format!(
                    "`{name}: {value}` asks the server for a {value}, which can change data"
                ));
            }
        }
    }
    if let Some(reason) = query.and_then(graphql_in_url) {
        return Verdict::Block(reason);
    }
    // Methods are case-sensitive (RFC 9110 §9.1): `GeT` is not GET, and a
    // server may route an unknown method anywhere, so only the exact three read.
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Verdict::Allow;
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    if *method == Method::POST && last == "git-upload-pack" {
        if content_type.eq_ignore_ascii_case(UPLOAD_PACK_REQUEST) {
            return Verdict::Allow;
        }
        return Verdict::Block(format!("a git fetch is sent as {UPLOAD_PACK_REQUEST}, not `{content_type}`"));
    }
    if *method == Method::POST && last == "graphql" {
        return Verdict::InspectGraphql;
    }
    Verdict::Block(format!("{method} requests can change data"))
}

/// Why the GraphQL document in a URL's `query` parameter is not read-only,
/// if there is one that is not.
fn graphql_in_url(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find_map(|(key, value)| match &*key {
        "query" => match graphql_parser::parse_query::<&str>(&value) {
            Ok(doc) => write_in(&doc),
            // Not GraphQL to this parser: some other API's parameter, unless
            // it names a write. A server's parser may accept what this one
            // does not (newer syntax), so such a text fails closed.
            Err(_) if names_a_write(&value) => {
                Some("the URL's `query` names a GraphQL mutation or subscription that could not be checked".into())
            }
            Err(_) => None,
        },
        _ => None,
    })
}

/// Whether `text` has the word `mutation` or `subscription` (GraphQL's
/// keywords are case-sensitive) outside a name like `mutations`.
fn names_a_write(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == "mutation" || word == "subscription")
}

/// The keys a plain GraphQL request body has.
const GRAPHQL_KEYS: [&str; 4] = ["query", "variables", "operationName", "extensions"];

/// The verdict for a GraphQL request body: allowed only if every operation
/// in it (or in every request of a batch) is a query, and it is nothing but
/// a GraphQL request.
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
        let Some(fields) = request.as_object() else {
            return Verdict::Block("a GraphQL request is a JSON object".into());
        };
        if let Some(other) = fields.keys().find(|k| !GRAPHQL_KEYS.contains(&k.as_str())) {
            return Verdict::Block(format!(
                "the request has a field `{other}`, which a GraphQL request does not: it is not only a query"
            ));
        }
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

/// Why a GraphQL query text is not read-only (or cannot be read), or None
/// if it is all queries.
fn write_operation(query: &str) -> Option<String> {
    match graphql_parser::parse_query::<&str>(query) {
        Ok(doc) => write_in(&doc),
        Err(e) => Some(format!("the GraphQL query could not be parsed ({e})")),
    }
}

/// Why a parsed GraphQL document is not read-only, or None if it is all queries.
fn write_in<'a>(doc: &graphql_parser::query::Document<'a, &'a str>) -> Option<String> {
    use graphql_parser::query::{Definition, OperationDefinition};
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

    fn check(mode: AccessMode, method: &Method, path: &str, query: Option<&str>) -> Verdict {
        super::check(mode, method, path, query, &HeaderMap::new())
    }

    fn with(headers: &[(&'static str, &str)]) -> HeaderMap {
        headers.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().expect("value"))).collect()
    }

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
        let fetch = with(&[("content-type", UPLOAD_PACK_REQUEST)]);
        assert_eq!(super::check(RO, &Method::POST, "/o/r.git/git-upload-pack", None, &fetch), Verdict::Allow);
        for (m, p, q) in [
            (Method::GET, "/o/r.git/info/refs", Some("service=git-receive-pack")),
            (Method::POST, "/o/r.git/git-receive-pack", None),
            (Method::POST, "/repos/o/r/issues", None),
            (Method::POST, "/o/r.git/git-upload-pack", None),
            (Method::PUT, "/x", None),
            (Method::PATCH, "/x", None),
            (Method::DELETE, "/x", None),
        ] {
            assert!(matches!(check(RO, &m, p, q), Verdict::Block(_)), "{m} {p}");
        }
        assert_eq!(check(RO, &Method::POST, "/graphql", None), Verdict::InspectGraphql);
    }

    #[test]
    fn a_read_methods_name_in_another_case_is_not_a_read() {
        // Found by the policy fuzz target: `GeT` passed as GET.
        for m in ["GeT", "get", "Head", "options"] {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            assert!(matches!(check(RO, &method, "/x", None), Verdict::Block(_)), "{m}");
        }
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

    #[test]
    fn read_only_has_no_loopholes_in_overrides_urls_or_paths() {
        for name in METHOD_OVERRIDES {
            let h = with(&[(name, "DELETE")]);
            let verdict = super::check(RO, &Method::GET, "/repos/o/r", None, &h);
            assert!(matches!(&verdict, Verdict::Block(r) if r.contains(name)), "{name}: {verdict:?}");
            let h = with(&[(name, "get")]);
            assert_eq!(super::check(RO, &Method::GET, "/repos/o/r", None, &h), Verdict::Allow, "{name}: GET");
        }
        let mutation = "query=mutation%20AddStar%20%7B%20addStar(input%3A%7B%7D)%20%7B%20clientMutationId%20%7D%20%7D";
        for method in [Method::GET, Method::POST] {
            let verdict = check(RO, &method, "/graphql", Some(mutation));
            assert!(matches!(&verdict, Verdict::Block(r) if r.contains("AddStar")), "{method}: {verdict:?}");
        }
        assert_eq!(
            check(RO, &Method::GET, "/graphql", Some("query=%7B%20viewer%20%7B%20login%20%7D%20%7D")),
            Verdict::Allow
        );
        assert_eq!(check(RO, &Method::GET, "/search", Some("query=genes+of+mice")), Verdict::Allow, "not GraphQL");
        assert_eq!(
            check(RO, &Method::GET, "/search", Some("query=mutations+in+mice")),
            Verdict::Allow,
            "not a keyword"
        );
        // A mutation this parser cannot read (a server's may) fails closed.
        for text in ["mutation+of+genes", "mutation%28%24a%3A+Int+%40x%29+%7B+bump+%7D%7D", "%7Bx%7D+subscription"] {
            let verdict = check(RO, &Method::POST, "/graphql", Some(&format!("query={text}")));
            assert!(matches!(&verdict, Verdict::Block(r) if r.contains("could not be checked")), "{text}: {verdict:?}");
        }
        // A REST write at a path that merely ends in `graphql` does not pass as GraphQL.
        assert!(matches!(
            graphql(br#"{"query":"{ a }","title":"opened by a read-only session"}"#),
            Verdict::Block(r) if r.contains("`title`")
        ));
        let git = with(&[("content-type", "application/json")]);
        assert!(matches!(super::check(RO, &Method::POST, "/repos/o/r/git-upload-pack", None, &git), Verdict::Block(_)));
    }
}
