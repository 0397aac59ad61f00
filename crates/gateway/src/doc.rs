//! The answers the public edge itself gives, added to every operation of the OpenAPI
//! document in one place, so that the document lists every status a client can get, not
//! only those a handler declares.

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
