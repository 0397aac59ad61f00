//! The operator's HTTP view of the bus: list dead letters, replay one (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use kernel::{ContractError, ErrorKind, EventId};
use rpc::{ApiError, ApiResult, Ctx, Json, Path, Query};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{BusClient, BusError, DeadLetter};

impl ContractError for BusError {
    fn kind(&self) -> ErrorKind {
        match self {
            BusError::Unavailable(_) => ErrorKind::Unavailable,
            BusError::NotFound(_) => ErrorKind::NotFound,
            BusError::InvalidSubscription(_) => ErrorKind::Validation,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            BusError::Unavailable(_) => "unavailable",
            BusError::NotFound(_) => "event_not_found",
            BusError::InvalidSubscription(_) => "invalid_input",
        }
    }
}

pub fn router(bus: BusClient) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(list_dead_letters)).routes(routes!(replay)).with_state(bus)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    /// Page size, parsed as a [`kernel::Limit`] (whose bounds the schema shows).
    #[param(value_type = Option<kernel::Limit>, inline)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<DeadLetterCursor>, inline)]
    pub cursor: Option<String>,
}

kernel::cursor_param!(
    /// The `cursor` of the dead-letter listing.
    DeadLetterCursor for crate::DeadLetterKey
);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    pub items: Vec<DeadLetter>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Deliveries the bus gave up on, oldest first (admin).
#[utoipa::path(get, path = "/api/v1/system/dead-letters", tag = "system",
    security(("bearer" = [])),
    params(DeadLetterParams),
    responses((status = 200, body = DeadLetterList), (status = 403, body = rpc::ErrorBody)))]
async fn list_dead_letters(
    State(bus): State<BusClient>,
    Ctx(ctx): Ctx,
    Query(params): Query<DeadLetterParams>,
) -> ApiResult<Json<DeadLetterList>> {
    ctx.admin().map_err(ApiError::from)?;
    let (limit, after) = kernel::page_params(params.limit.as_deref(), params.cursor.as_deref())
        .map_err(|rule| ApiError::new(ErrorKind::Validation, "invalid_input", rule))?;
    let page = bus.dead_letters(limit, after).await?;
    Ok(Json(DeadLetterList { next_cursor: page.next_cursor(), items: page.items }))
}

/// Deliver an event to a subscriber again: a dead letter goes back to its queue (admin).
#[utoipa::path(post, path = "/api/v1/system/dead-letters/{subscriber}/{event_id}/replay",
    tag = "system", security(("bearer" = [])),
    params(("subscriber" = String, Path), ("event_id" = String, Path, format = Uuid)),
    responses((status = 202), (status = 403, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody)))]
async fn replay(
    State(bus): State<BusClient>,
    Ctx(ctx): Ctx,
    Path((subscriber, event_id)): Path<(String, EventId)>,
) -> ApiResult<StatusCode> {
    ctx.admin().map_err(ApiError::from)?;
    bus.replay(&subscriber, event_id).await?;
    Ok(StatusCode::ACCEPTED)
}
