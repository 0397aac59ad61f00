//! The public HTTP adapter of orders. Every route acts on the caller's own orders.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kernel::{IdempotencyKey, OrderId};
use payments_api::PaymentToken;
use rpc::{ApiError, ApiResult, Ctx, Json, Path, Query};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{Order, OrderListParams, OrderPage, OrdersClient, OrdersError, PlaceOrderRequest};

/// The request header that makes `POST /api/v1/orders` safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer replayed for a repeated `Idempotency-Key` (as Stripe does).
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

pub fn router(client: OrdersClient) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .with_state(client)
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, OrdersError> {
    let value = headers.get(IDEMPOTENCY_KEY).ok_or(OrdersError::IdempotencyKeyRequired)?;
    value.to_str().ok().and_then(IdempotencyKey::parse).ok_or_else(|| {
        OrdersError::InvalidInput(
            "Idempotency-Key must be 1 to 255 printable ASCII characters".into(),
        )
    })
}

/// Place an order from the caller's cart. Answers 202 at once: the checkout saga reserves
/// stock and charges the card; poll the order for `confirmed` or `cancelled`.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header,
        description = "unique per order attempt (e.g. a UUID); a retry with the same key and body replays the first answer")),
    request_body = PlaceOrderRequest,
    responses(
        (status = 202, body = Order, description = "accepted (or replayed, with `Idempotent-Replayed: true`)"),
        (status = 400, body = rpc::ErrorBody, description = "no or bad Idempotency-Key, unknown payment token"),
        (status = 401, body = rpc::ErrorBody),
        (status = 409, body = rpc::ErrorBody, description = "cart empty, or the same key is in progress"),
        (status = 422, body = rpc::ErrorBody, description = "the key was used with another body"),
        (status = 503, body = rpc::ErrorBody),
    ))]
async fn place_order(
    State(client): State<OrdersClient>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Json(req): Json<PlaceOrderRequest>,
) -> ApiResult<Response> {
    ctx.user().map_err(ApiError::from)?;
    let key = idempotency_key(&headers)?;
    let token = PaymentToken::parse(&req.payment_token).ok_or_else(|| {
        OrdersError::InvalidInput(format!(
            "payment_token must be one of {}",
            PaymentToken::ACCEPTED.join(", ")
        ))
    })?;
    let placed = client.place(&ctx, key, token).await?;
    let location = format!("/api/v1/orders/{}", placed.order.id);
    let mut res = (StatusCode::ACCEPTED, Json(placed.order)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if placed.replayed {
        res.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// The caller's orders, newest first, with cursor paging.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders",
    security(("bearer" = [])),
    params(OrderListParams),
    responses((status = 200, body = OrderPage), (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody)))]
async fn list_orders(
    State(client): State<OrdersClient>,
    Ctx(ctx): Ctx,
    Query(params): Query<OrderListParams>,
) -> ApiResult<Json<OrderPage>> {
    let (limit, after) = kernel::page_params(params.limit.as_deref(), params.cursor.as_deref())
        .map_err(|m| OrdersError::InvalidInput(m.into()))?;
    let page = client.list(&ctx, limit, after).await?;
    Ok(Json(OrderPage { next_cursor: page.next_cursor(), items: page.items }))
}

/// One of the caller's orders, with its status history.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Order), (status = 401, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody, description = "no such order of yours")))]
async fn get_order(
    State(client): State<OrdersClient>,
    Ctx(ctx): Ctx,
    Path(id): Path<OrderId>,
) -> ApiResult<Json<Order>> {
    Ok(Json(client.get(&ctx, id).await?))
}
