//! The public HTTP adapter of payments. Every route acts on the caller's own payments.

use axum::extract::State;
use kernel::OrderId;
use rpc::{ApiResult, Ctx, Json, Query};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{PaymentPage, PaymentQuery, PaymentsClient, PaymentsError, PaymentsParams};

pub fn router(client: PaymentsClient) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(list_payments)).with_state(client)
}

/// The caller's payments, newest first, with cursor paging; `order_id` narrows to one
/// order's.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments",
    security(("bearer" = [])),
    params(PaymentsParams),
    responses(
        (status = 200, body = PaymentPage),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody, description = "no payment of yours for that order"),
    ))]
async fn list_payments(
    State(client): State<PaymentsClient>,
    Ctx(ctx): Ctx,
    Query(params): Query<PaymentsParams>,
) -> ApiResult<Json<PaymentPage>> {
    let order = match params.order_id.as_deref() {
        None => None,
        Some(s) => Some(
            OrderId::parse(s)
                .ok_or_else(|| PaymentsError::InvalidInput("order_id is not a valid id".into()))?,
        ),
    };
    let (limit, after) = kernel::page_params(params.limit.as_deref(), params.cursor.as_deref())
        .map_err(|m| PaymentsError::InvalidInput(m.into()))?;
    let page = client.list(&ctx, PaymentQuery { order, limit, after }).await?;
    Ok(Json(PaymentPage { next_cursor: page.next_cursor(), items: page.items }))
}
