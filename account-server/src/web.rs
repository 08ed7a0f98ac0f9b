//! What browsers need from the account server: the demo page and the JavaScript client as static files, and CORS
//! for pages served from elsewhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Redirect;
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tracing::{info, warn};

use crate::config::AccountConfig;

/// `account.demo_dir`, `account.js_dir` and `account.cors_origins`, checked.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Served at `/demo/`, when set and present.
    pub demo_dir: Option<PathBuf>,
    /// Served at `/js/`, when set and present.
    pub js_dir: Option<PathBuf>,
    /// `None`: no CORS; `Some(empty)`: any origin; else these origins.
    pub cors_origins: Option<Vec<HeaderValue>>,
}

impl WebConfig {
    /// From the config; a directory that is set but missing is logged and not served. Origins were validated by
    /// [`crate::Config::from_file`].
    pub fn from_config(c: &AccountConfig) -> Self {
        let dir = |p: &Path, key: &str| {
            if p.as_os_str().is_empty() {
                return None;
            }
            if p.is_dir() {
                Some(p.to_path_buf())
            } else {
                warn!(path = %p.display(), "account.{key}: no such directory; not served");
                None
            }
        };
        let cors_origins = if c.cors_origins.is_empty() {
            None
        } else if c.cors_origins.iter().any(|o| o == "*") {
            Some(Vec::new())
        } else {
            Some(c.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect())
        };
        Self { demo_dir: dir(&c.demo_dir, "demo_dir"), js_dir: dir(&c.js_dir, "js_dir"), cors_origins }
    }

    /// The CORS layer: preflight and headers for the configured origins (none when unset). Pages may send JSON and
    /// a bearer token and read `Retry-After`; no cookies are involved, so credentials stay off.
    pub fn cors(&self) -> CorsLayer {
        let Some(origins) = &self.cors_origins else {
            return CorsLayer::new();
        };
        let allow = if origins.is_empty() { AllowOrigin::any() } else { AllowOrigin::list(origins.clone()) };
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600))
    }
}

/// Adds `/demo/` and `/js/` (with a redirect from the path without the slash, so relative URLs in the page work).
pub fn with_static_files<S: Clone + Send + Sync + 'static>(mut router: Router<S>, web: &WebConfig) -> Router<S> {
    for (prefix, dir) in [("/demo", &web.demo_dir), ("/js", &web.js_dir)] {
        let Some(dir) = dir else { continue };
        info!(path = %dir.display(), url = %format!("{prefix}/"), "serving static files");
        let slash = format!("{prefix}/");
        router = router
            .route(prefix, get(move || async move { Redirect::permanent(&slash) }))
            .nest_service(&format!("{prefix}/"), ServeDir::new(dir).append_index_html_on_directories(true));
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directories_are_not_served() {
        let c = AccountConfig {
            demo_dir: PathBuf::from("/no/such/dir"),
            js_dir: PathBuf::new(),
            cors_origins: vec!["*".into()],
            ..AccountConfig::default()
        };
        let w = WebConfig::from_config(&c);
        assert!(w.demo_dir.is_none() && w.js_dir.is_none());
        assert_eq!(w.cors_origins, Some(Vec::new()));
    }
}
