//! The API's error responses: JSON `{"code": "...", "message": "..."}` with one HTTP status per code.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::error;

use crate::limits::Refusal;
use crate::password::PasswordError;
use crate::store::StoreError;
use crate::tokens::TokenError;

/// Why a request failed. Each variant has a fixed `code` and HTTP status; the message of
/// [`ApiError::Internal`] is only logged, the client sees a generic one.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, missing fields or a wrong content type (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// The username breaks a rule, which the message names (400 `invalid_username`).
    #[error("{0}")]
    InvalidUsername(String),
    /// The password breaks a rule, which the message names (400 `invalid_password`).
    #[error("{0}")]
    InvalidPassword(String),
    /// Another account has this username, compared case-insensitively (409 `username_taken`).
    #[error("username is already taken")]
    UsernameTaken,
    /// Unknown username or wrong password; the two are indistinguishable (401 `invalid_credentials`).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Missing, malformed, invalid or expired bearer token, or an ended session (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Unknown, used, expired or revoked refresh token (401 `invalid_refresh_token`).
    #[error("refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    /// The bearer token is valid but its user is not an admin (403 `forbidden`).
    #[error("this endpoint is for admins")]
    Forbidden,
    /// The user is banned: no login, no refresh (403 `banned`).
    #[error("this account is banned")]
    Banned,
    /// No user has the uid in the path (404 `user_not_found`).
    #[error("no user has this uid")]
    UserNotFound,
    /// No replay of this match is available to the caller: no such match, not one of its players (nor an admin),
    /// or its replay was deleted (retention) or never arrived (404 `replay_not_found`).
    #[error("{0}")]
    ReplayNotFound(&'static str),
    /// No live sync node has this id (404 `node_not_found`).
    #[error("no live sync node has this id")]
    NodeNotFound,
    /// The sync node has no room with this id (404 `room_not_found`).
    #[error("the node has no room with this id")]
    RoomNotFound,
    /// The sync node did not answer, or failed (502 `node_unavailable`); the message says how.
    #[error("the sync node did not answer: {0}")]
    NodeUnavailable(String),
    /// No live sync server has room for another player, so login cannot hand out an address (503
    /// `no_sync_server`).
    #[error("no game server is available; try again shortly")]
    NoSyncServer,
    /// The request body is larger than the limit it carries (413 `payload_too_large`).
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request body did not arrive within `account.body_timeout_secs` (408 `request_timeout`).
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// An attempt limit of `[account]` refused the request before any password was hashed (429
    /// `too_many_attempts`, with `Retry-After`); the message names the limit and its config keys.
    #[error("{0}")]
    TooManyAttempts(Refusal),
    /// No such route (404 `not_found`).
    #[error("no such endpoint")]
    NotFound,
    /// The route exists but not with this method (405 `method_not_allowed`).
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// A server-side failure (500 `internal`); the cause is logged, never sent.
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The machine-readable `code` of the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidUsername(_) => "invalid_username",
            Self::InvalidPassword(_) => "invalid_password",
            Self::UsernameTaken => "username_taken",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::Forbidden => "forbidden",
            Self::Banned => "banned",
            Self::UserNotFound => "user_not_found",
            Self::ReplayNotFound(_) => "replay_not_found",
            Self::NodeNotFound => "node_not_found",
            Self::RoomNotFound => "room_not_found",
            Self::NodeUnavailable(_) => "node_unavailable",
            Self::NoSyncServer => "no_sync_server",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::RequestTimeout(_) => "request_timeout",
            Self::TooManyAttempts(_) => "too_many_attempts",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) => "internal",
        }
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidUsername(_) | Self::InvalidPassword(_) => StatusCode::BAD_REQUEST,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::InvalidCredentials | Self::Unauthorized(_) | Self::InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Banned => StatusCode::FORBIDDEN,
            Self::UserNotFound | Self::ReplayNotFound(_) | Self::NodeNotFound | Self::RoomNotFound | Self::NotFound => {
                StatusCode::NOT_FOUND
            }
            Self::NodeUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::NoSyncServer => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            error!(error = %format_args!("{cause:#}"), "request failed");
        }
        let body = ErrorBody { code: self.code(), message: self.to_string() };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unauthorized(_)) {
            // RFC 6750: a 401 for a protected resource names the scheme it expects.
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Self::NoSyncServer) {
            // A sync server that just restarted registers within seconds.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Self::TooManyAttempts(refusal) = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(refusal.retry_after_secs()));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => Self::UsernameTaken,
            StoreError::Banned => Self::Banned,
            other => Self::Internal(other.into()),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        crate::metrics::rate_limited(refusal.kind.config_keys().0);
        Self::TooManyAttempts(refusal)
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        Self::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn internal_details_are_not_sent() {
        let response = ApiError::Internal(anyhow::anyhow!("disk on fire at /secret/path")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json, serde_json::json!({"code": "internal", "message": "internal server error"}));
    }

    #[tokio::test]
    async fn too_many_attempts_says_when_to_retry() {
        use std::time::Duration;

        use crate::limits::{LimitKind, Rate};

        let refusal = Refusal {
            kind: LimitKind::LoginFailuresPerUsername,
            rate: Rate::per_secs(10, 900),
            retry_after: Duration::from_millis(89_500),
        };
        let response = ApiError::from(refusal).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "90");
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "too_many_attempts");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("at most 10 per 900 s") && message.contains("account.login_failures_per_username"));
    }

    #[test]
    fn unauthorized_names_the_bearer_scheme() {
        let response = ApiError::Unauthorized("missing bearer token").into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
