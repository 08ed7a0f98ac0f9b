//! Request bodies are read whole before a handler runs: within `account.body_timeout_secs` (else `408
//! request_timeout`) and `account.max_body_bytes` (else `413 payload_too_large`, at once when `Content-Length`
//! declares more). So a client that declares a body and never sends it cannot hold a connection.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::error::ApiError;

/// The middleware: `limits` is (`account.body_timeout_secs`, `account.max_body_bytes`).
pub(crate) async fn read_within(State(limits): State<(Duration, usize)>, request: Request, next: Next) -> Response {
    let (timeout, max_bytes) = limits;
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_bytes as u64) {
        return close(ApiError::PayloadTooLarge(max_bytes));
    }
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, max_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_length_limit(&e) => return close(ApiError::PayloadTooLarge(max_bytes)),
        Ok(Err(e)) => return close(ApiError::BadRequest(format!("cannot read the request body: {e}"))),
        Err(_) => return close(ApiError::RequestTimeout(timeout.as_secs())),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// An error answer after which the connection is closed: the rest of the body is never read.
fn close(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

/// Whether reading failed because the body passed the limit given to `to_bytes` (by type, not by message text).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
