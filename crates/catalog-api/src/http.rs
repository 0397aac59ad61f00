//! The public HTTP adapter of catalog.

use axum::extract::State;
use axum::http::StatusCode;
use kernel::ProductId;
use rpc::{ApiResult, Ctx, Json, Path, Query};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{
    CatalogClient, ListParams, NewProduct, NewProductRequest, Product, ProductPage, ProductPatch,
    ProductPatchRequest, ProductQuery,
};

pub fn router(client: CatalogClient) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product))
        .with_state(client)
}

/// Browse and search products, newest last, with cursor paging.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog",
    params(ListParams),
    responses((status = 200, body = ProductPage), (status = 400, body = rpc::ErrorBody)))]
async fn list_products(
    State(client): State<CatalogClient>,
    Ctx(ctx): Ctx,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<ProductPage>> {
    let page = client.list(&ctx, ProductQuery::parse(params)?).await?;
    Ok(Json(ProductPage {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.as_str().to_owned()),
    }))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Product), (status = 404, body = rpc::ErrorBody)))]
async fn get_product(
    State(client): State<CatalogClient>,
    Ctx(ctx): Ctx,
    Path(id): Path<ProductId>,
) -> ApiResult<Json<Product>> {
    Ok(Json(client.get(&ctx, id).await?))
}

/// Create a product (admin).
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog",
    security(("bearer" = [])),
    request_body = NewProductRequest,
    responses(
        (status = 201, body = Product),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
    ))]
async fn create_product(
    State(client): State<CatalogClient>,
    Ctx(ctx): Ctx,
    Json(req): Json<NewProductRequest>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    let product = client.create(&ctx, NewProduct::parse(req)?).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

/// Change a product (admin); absent fields stay as they are.
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = ProductPatchRequest,
    responses(
        (status = 200, body = Product),
        (status = 400, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody),
    ))]
async fn update_product(
    State(client): State<CatalogClient>,
    Ctx(ctx): Ctx,
    Path(id): Path<ProductId>,
    Json(req): Json<ProductPatchRequest>,
) -> ApiResult<Json<Product>> {
    Ok(Json(client.update(&ctx, id, ProductPatch::parse(req)?).await?))
}
