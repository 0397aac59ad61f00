//! The public HTTP adapter of cart. Every route acts on the caller's own cart.

use axum::extract::State;
use axum::http::StatusCode;
use kernel::ProductId;
use rpc::{ApiError, ApiResult, Ctx, Json, Path};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{Cart, CartClient, CartError, CartQuantity, SetQuantityRequest};

pub fn router(client: CartClient) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(get_cart, clear_cart))
        .routes(routes!(set_item, remove_item))
        .with_state(client)
}

/// The caller's cart, priced now.
#[utoipa::path(get, path = "/api/v1/cart", tag = "cart",
    security(("bearer" = [])),
    responses((status = 200, body = Cart), (status = 401, body = rpc::ErrorBody)))]
async fn get_cart(State(client): State<CartClient>, Ctx(ctx): Ctx) -> ApiResult<Json<Cart>> {
    let me = ctx.user().map_err(ApiError::from)?.user_id;
    Ok(Json(client.get(&ctx, me).await?))
}

/// Set how many of a product the cart holds (adds the line if needed).
#[utoipa::path(put, path = "/api/v1/cart/items/{product_id}", tag = "cart",
    security(("bearer" = [])),
    params(("product_id" = String, Path, format = Uuid)),
    request_body = SetQuantityRequest,
    responses(
        (status = 200, body = Cart),
        (status = 400, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody, description = "unknown product"),
        (status = 409, body = rpc::ErrorBody, description = "cart full"),
    ))]
async fn set_item(
    State(client): State<CartClient>,
    Ctx(ctx): Ctx,
    Path(product_id): Path<ProductId>,
    Json(req): Json<SetQuantityRequest>,
) -> ApiResult<Json<Cart>> {
    let me = ctx.user().map_err(ApiError::from)?.user_id;
    let quantity = CartQuantity::new(req.quantity).ok_or_else(|| {
        CartError::InvalidInput(format!("quantity must be between 1 and {}", CartQuantity::MAX))
    })?;
    Ok(Json(client.set_item(&ctx, me, product_id, quantity).await?))
}

/// Remove a product from the cart (no error if it was not there).
#[utoipa::path(delete, path = "/api/v1/cart/items/{product_id}", tag = "cart",
    security(("bearer" = [])),
    params(("product_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Cart), (status = 401, body = rpc::ErrorBody)))]
async fn remove_item(
    State(client): State<CartClient>,
    Ctx(ctx): Ctx,
    Path(product_id): Path<ProductId>,
) -> ApiResult<Json<Cart>> {
    let me = ctx.user().map_err(ApiError::from)?.user_id;
    Ok(Json(client.remove_item(&ctx, me, product_id).await?))
}

/// Empty the cart.
#[utoipa::path(delete, path = "/api/v1/cart", tag = "cart",
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = rpc::ErrorBody)))]
async fn clear_cart(State(client): State<CartClient>, Ctx(ctx): Ctx) -> ApiResult<StatusCode> {
    let me = ctx.user().map_err(ApiError::from)?.user_id;
    client.clear(&ctx, me).await?;
    Ok(StatusCode::NO_CONTENT)
}
