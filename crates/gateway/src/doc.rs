//! The answers the public edge itself gives, added to every operation of the OpenAPI
//! document in one place, so that the document lists every status a client can get, not
//! only those a handler declares.

use std::collections::HashSet;

use axum::http::Method;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// What the edge answers on its own, and on which operations:
/// - every API operation: 401 (a bad bearer token is refused even where none is needed),
///   429 (rate limits), 503 and 504 (a module unavailable, or too slow for the deadline);
/// - with path or query parameters: 400 (a malformed id or value);
/// - with a request body: 400 (malformed JSON), 413 (over the body limit) and 415 (not
///   `application/json`).
pub(crate) fn document_edge_answers(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let shared_parameters = item.parameters.as_ref().is_some_and(|p| !p.is_empty());
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in operations.into_iter().flatten() {
            add_edge_answers(op, shared_parameters);
        }
    }
}

fn add_edge_answers(op: &mut Operation, shared_parameters: bool) {
    let mut answers = vec![
        ("401", "No valid bearer token (or a bad one sent where none is needed)."),
        ("429", "Too many requests from this user or address; see `Retry-After`."),
        ("503", "A module this needs is unavailable; see `Retry-After`."),
        ("504", "A module this needs did not answer in time."),
    ];
    let parameters = shared_parameters || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if parameters || op.request_body.is_some() {
        answers.push(("400", "A malformed parameter or body, or one that breaks a rule."));
    }
    if op.request_body.is_some() {
        answers.push(("413", "The body is over the edge's limit."));
        answers.push(("415", "The body is not `application/json`."));
    }
    for (status, description) in answers {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description));
    }
}

fn error(description: &str) -> RefOr<Response> {
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(
        ResponseBuilder::new().description(description).content("application/json", body).build(),
    )
}

/// The operations whose every security requirement needs credentials: a request to one
/// without them is refused before anything else about it is checked. Read from the
/// document, so the rule and what clients are told are one.
#[derive(Debug, Default)]
pub(crate) struct SecuredOperations(HashSet<(Method, String)>);

impl SecuredOperations {
    pub(crate) fn requires_credentials(&self, method: &Method, route: &str) -> bool {
        self.0.contains(&(method.clone(), route.to_owned()))
    }
}

pub(crate) fn secured_operations(doc: &OpenApi) -> SecuredOperations {
    let mut secured = HashSet::new();
    for (path, item) in &doc.paths.paths {
        let operations = [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
            (Method::PATCH, &item.patch),
        ];
        for (method, op) in operations {
            let Some(requirements) = op.as_ref().and_then(|op| op.security.as_ref()) else {
                continue;
            };
            // An empty requirement (`{}`) makes credentials optional (OpenAPI 3.1, 4.8.30).
            let optional = requirements.iter().any(|r| {
                serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
            });
            if !requirements.is_empty() && !optional {
                secured.insert((method, path.clone()));
            }
        }
    }
    SecuredOperations(secured)
}
