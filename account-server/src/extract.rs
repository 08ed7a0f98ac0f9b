//! Request extractors whose rejections are [`ApiError`]s, so axum's plain-text rejections never reach a client.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use movan_protocol::TokenClaims;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Role, User};

/// A JSON request body. Malformed JSON, missing fields or a wrong content type give `bad_request`, a body over
/// `account.max_body_bytes` gives `payload_too_large`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(state.max_body_bytes))
            }
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// The address of the client at the other end of the TCP connection, from the connect info the server is started
/// with; `None` when the router is called without a socket (tests). Proxy headers such as `X-Forwarded-For` are not
/// trusted: behind a proxy every client has the proxy's address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        // Through the extractor rather than the extension, so that tests' `MockConnectInfo` counts too.
        let info = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await;
        Ok(Self(info.ok().map(|ConnectInfo(addr)| addr.ip())))
    }
}

/// The claims of a valid `Authorization: Bearer` access token whose session has not been revoked.
#[derive(Debug)]
pub(crate) struct Authenticated(pub TokenClaims);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ApiError::Unauthorized("Authorization header must be `Bearer <access token>`"))?;
        let claims = state
            .tokens
            .verify(token, state.now())
            .map_err(|_| ApiError::Unauthorized("invalid or expired access token"))?;
        let live = state.store.session(&claims.sid).await?.is_some_and(|s| !s.revoked && s.uid == claims.sub);
        if !live {
            return Err(ApiError::Unauthorized("session has ended"));
        }
        Ok(Self(claims))
    }
}

/// An [`Authenticated`] request whose user has the admin role; others get `forbidden`.
#[derive(Debug)]
pub(crate) struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        match state.store.user(&claims.sub).await? {
            Some(user) if user.role == Role::Admin && !user.is_banned() => Ok(Self(user)),
            Some(_) => Err(ApiError::Forbidden),
            None => Err(ApiError::Unauthorized("session has ended")),
        }
    }
}
