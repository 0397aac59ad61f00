//! The public HTTP adapter of catalog. Product reads fall back to a recent copy when
//! catalog cannot answer ([`ProductCache`]), marked stale.

use std::time::{Duration, Instant};

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use kernel::{ContractError as _, ErrorKind, ProductId};
use rpc::{ApiResult, Ctx, Json, Path, Query};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{
    CatalogClient, CatalogError, Category, ListParams, NewProduct, NewProductRequest, Product,
    ProductPage, ProductPatch, ProductPatchRequest, ProductQuery,
};

/// The header on an answer served from the cache because catalog could not answer.
pub const STALE_HEADER: &str = "x-microlith-stale";

/// The last answers to product reads, served when catalog is unavailable or too slow:
/// a shopper would rather see yesterday's price list than an error. Bounded in entries
/// and in age.
#[derive(Clone)]
pub struct ProductCache {
    products: moka::sync::Cache<ProductId, (Product, Instant)>,
    pages: moka::sync::Cache<String, (ProductPage, Instant)>,
}

impl ProductCache {
    /// Keeps answers up to `max_age` old.
    pub fn new(max_age: Duration) -> ProductCache {
        ProductCache {
            products: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(max_age)
                .build(),
            pages: moka::sync::Cache::builder().max_capacity(1_000).time_to_live(max_age).build(),
        }
    }
}

impl Default for ProductCache {
    fn default() -> Self {
        ProductCache::new(Duration::from_secs(600))
    }
}

#[derive(Clone)]
struct CatalogState {
    client: CatalogClient,
    cache: ProductCache,
}

impl FromRef<CatalogState> for CatalogClient {
    fn from_ref(state: &CatalogState) -> CatalogClient {
        state.client.clone()
    }
}

pub fn router(client: CatalogClient, cache: ProductCache) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product))
        .with_state(CatalogState { client, cache })
}

/// Catalog's `answer`, remembered in `cache` under `key`; or, when catalog did not answer
/// (as opposed to answering no), the remembered copy, marked stale with its age.
fn or_stale<K, T>(
    cache: &moka::sync::Cache<K, (T, Instant)>,
    key: K,
    answer: Result<T, CatalogError>,
) -> ApiResult<(HeaderMap, Json<T>)>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    match answer {
        Ok(value) => {
            cache.insert(key, (value.clone(), Instant::now()));
            Ok((HeaderMap::new(), Json(value)))
        }
        Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => {
            let Some((value, stored)) = cache.get(&key) else { return Err(e.into()) };
            let mut headers = HeaderMap::new();
            headers.insert(STALE_HEADER, HeaderValue::from_static("true"));
            headers.insert(axum::http::header::AGE, HeaderValue::from(stored.elapsed().as_secs()));
            Ok((headers, Json(value)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Browse and search products, newest last, with cursor paging.
/// When catalog is unavailable, a recent copy of the same page is served with
/// `x-microlith-stale: true` and `Age`; with no copy, 503.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog",
    params(ListParams),
    responses(
        (status = 200, body = ProductPage),
        (status = 400, body = rpc::ErrorBody),
        (status = 503, body = rpc::ErrorBody),
    ))]
async fn list_products(
    State(state): State<CatalogState>,
    Ctx(ctx): Ctx,
    Query(params): Query<ListParams>,
) -> ApiResult<(HeaderMap, Json<ProductPage>)> {
    let query = ProductQuery::parse(params)?;
    // The query as parsed, not as written: `/api/v1/products` and `?limit=20` are one page.
    let key = format!(
        "{}\n{}\n{}\n{}",
        query.text.as_deref().unwrap_or_default(),
        query.category.as_ref().map(Category::as_str).unwrap_or_default(),
        query.limit.get(),
        query.after.map(|id| id.to_string()).unwrap_or_default(),
    );
    let answer = state.client.list(&ctx, query).await;
    let answer =
        answer.map(|page| ProductPage { next_cursor: page.next_cursor(), items: page.items });
    if let Ok(page) = &answer {
        // A product seen in a list can be read alone while catalog is down.
        for product in &page.items {
            state.cache.products.insert(product.id, (product.clone(), Instant::now()));
        }
    }
    or_stale(&state.cache.pages, key, answer)
}

/// One product; served stale from the cache while catalog is unavailable (see the list).
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = Product),
        (status = 404, body = rpc::ErrorBody),
        (status = 503, body = rpc::ErrorBody),
    ))]
async fn get_product(
    State(state): State<CatalogState>,
    Ctx(ctx): Ctx,
    Path(id): Path<ProductId>,
) -> ApiResult<(HeaderMap, Json<Product>)> {
    or_stale(&state.cache.products, id, state.client.get(&ctx, id).await)
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
