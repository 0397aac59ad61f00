//! The public HTTP adapter of identity: routes, mapped onto [`IdentityClient`].

use axum::extract::State;
use axum::http::StatusCode;
use rpc::{ApiError, ApiResult, Ctx, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{
    AccessToken, IdentityClient, IdentityError, Jwks, KeyRotation, LoginRequest, NewUser, Password,
    RegisterRequest, User,
};

pub fn router(client: IdentityClient) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(jwks))
        .routes(routes!(rotate_signing_key))
        .with_state(client)
}

/// Create an account (role `customer`).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "identity",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = User),
        (status = 400, body = rpc::ErrorBody, description = "invalid input"),

    ))]
async fn register(
    State(client): State<IdentityClient>,
    Ctx(ctx): Ctx,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let new = NewUser::parse(req).map_err(IdentityError::from)?;
    let user = client.register(&ctx, new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Exchange email and password for an access token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "identity",
    request_body = LoginRequest,
    responses(
        (status = 200, body = AccessToken),
        (status = 401, body = rpc::ErrorBody, description = "wrong email or password"),
        (status = 429, body = rpc::ErrorBody, description = "too many failed logins for this account (see Retry-After)"),
    ))]
async fn login(
    State(client): State<IdentityClient>,
    Ctx(ctx): Ctx,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<AccessToken>> {
    // A malformed email or an absurd password cannot belong to an account: answer exactly as
    // for a wrong password, so the response says nothing about which accounts exist.
    let email = kernel::Email::parse(&req.email).map_err(|_| IdentityError::InvalidCredentials)?;
    let password = Password::offered(req.password).ok_or(IdentityError::InvalidCredentials)?;
    Ok(Json(client.login(&ctx, email, password).await?))
}

/// The authenticated caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = rpc::ErrorBody)))]
async fn me(State(client): State<IdentityClient>, Ctx(ctx): Ctx) -> ApiResult<Json<User>> {
    let me = ctx.user().map_err(ApiError::from)?.user_id;
    Ok(Json(client.user(&ctx, me).await?))
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "identity",
    responses((status = 200, body = Jwks)))]
async fn jwks(State(client): State<IdentityClient>, Ctx(ctx): Ctx) -> ApiResult<Json<Jwks>> {
    Ok(Json(client.jwks(&ctx).await?))
}

/// Make a new key sign access tokens (admin). The JWKS publishes old and new; tokens the
/// old key signed verify until they expire, and a grace later the old key is gone.
#[utoipa::path(post, path = "/api/v1/system/keys/rotate", tag = "system",
    security(("bearer" = [])),
    responses(
        (status = 200, body = KeyRotation),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
    ))]
async fn rotate_signing_key(
    State(client): State<IdentityClient>,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<KeyRotation>> {
    Ok(Json(client.rotate_signing_key(&ctx).await?))
}
