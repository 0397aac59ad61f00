//! The public HTTP adapter of inventory. Reservations are not public: only checkout uses them.

use axum::extract::State;
use kernel::ProductId;
use rpc::{ApiResult, Ctx, Json, Path};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{InventoryClient, InventoryError, SetStockRequest, StockCount, StockLevel};

pub fn router(client: InventoryClient) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(get_stock, set_stock)).with_state(client)
}

/// Stock of one product.
#[utoipa::path(get, path = "/api/v1/inventory/{product_id}", tag = "inventory",
    params(("product_id" = String, Path, format = Uuid)),
    responses((status = 200, body = StockLevel), (status = 404, body = rpc::ErrorBody)))]
async fn get_stock(
    State(client): State<InventoryClient>,
    Ctx(ctx): Ctx,
    Path(product_id): Path<ProductId>,
) -> ApiResult<Json<StockLevel>> {
    Ok(Json(client.stock(&ctx, product_id).await?))
}

/// Set the available stock of a product (admin).
#[utoipa::path(put, path = "/api/v1/inventory/{product_id}", tag = "inventory",
    security(("bearer" = [])),
    params(("product_id" = String, Path, format = Uuid)),
    request_body = SetStockRequest,
    responses(
        (status = 200, body = StockLevel),
        (status = 400, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody),
    ))]
async fn set_stock(
    State(client): State<InventoryClient>,
    Ctx(ctx): Ctx,
    Path(product_id): Path<ProductId>,
    Json(req): Json<SetStockRequest>,
) -> ApiResult<Json<StockLevel>> {
    let count = StockCount::new(req.available).ok_or_else(|| {
        InventoryError::InvalidInput(format!("available must be between 0 and {}", StockCount::MAX))
    })?;
    Ok(Json(client.set_stock(&ctx, product_id, count).await?))
}
