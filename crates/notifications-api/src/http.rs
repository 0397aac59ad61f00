//! The public HTTP adapter of notifications: the caller's own, newest first.

use axum::extract::State;
use rpc::{ApiResult, Ctx, Json, Query};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{NotificationPage, NotificationParams, NotificationsClient, NotificationsError};

pub fn router(client: NotificationsClient) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(list_notifications)).with_state(client)
}

/// The caller's notifications, newest first, with cursor paging; an admin also gets those
/// written for every admin (the daily sales summary).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    security(("bearer" = [])),
    params(NotificationParams),
    responses((status = 200, body = NotificationPage), (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody)))]
async fn list_notifications(
    State(client): State<NotificationsClient>,
    Ctx(ctx): Ctx,
    Query(params): Query<NotificationParams>,
) -> ApiResult<Json<NotificationPage>> {
    let (limit, after) = kernel::page_params(params.limit.as_deref(), params.cursor.as_deref())
        .map_err(|m| NotificationsError::InvalidInput(m.into()))?;
    let page = client.list(&ctx, limit, after).await?;
    Ok(Json(NotificationPage { next_cursor: page.next_cursor(), items: page.items }))
}
