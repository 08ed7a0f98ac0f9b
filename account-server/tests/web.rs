//! Static files (`/demo/`, `/js/`) and CORS.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

async fn get(app: &axum::Router, path: &str, origin: Option<&str>) -> axum::response::Response {
    let mut req = Request::get(path);
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

async fn text(r: axum::response::Response) -> String {
    String::from_utf8(axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn demo_and_js_are_served_with_their_types() {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("demo")).unwrap();
    std::fs::create_dir_all(site.path().join("js/src")).unwrap();
    std::fs::write(site.path().join("demo/index.html"), "<!doctype html><title>demo</title>").unwrap();
    std::fs::write(site.path().join("js/src/movan.js"), "export const x = 1;").unwrap();
    let (app, _, _, _dir) = common::fresh_with(|c| {
        c.account.demo_dir = site.path().join("demo");
        c.account.js_dir = site.path().join("js");
    })
    .await;
    let r = get(&app, "/demo/", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(text(r).await.contains("<title>demo</title>"));
    let r = get(&app, "/demo", None).await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()[header::LOCATION], "/demo/", "relative URLs in the page need the slash");
    let r = get(&app, "/js/src/movan.js", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().contains("javascript"));
    // Nothing outside the directories, and the API still answers JSON 404s.
    assert_eq!(get(&app, "/js/../demo/index.html", None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/demo/missing.html", None).await.status(), StatusCode::NOT_FOUND);
    let r = get(&app, "/v1/nothing", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let (app, _, _, _dir) =
        common::fresh_with(|c| c.account.cors_origins = vec!["http://game.example:8080".into()]).await;
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/v1/login")
        .header(header::ORIGIN, "http://game.example:8080")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .unwrap();
    let r = app.clone().oneshot(preflight).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://game.example:8080");
    let methods = r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let r = get(&app, "/v1/me", Some("http://game.example:8080")).await;
    assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://game.example:8080");
    assert!(r.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("retry-after"));
    let r = get(&app, "/v1/me", Some("http://evil.example")).await;
    assert!(r.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "other origins get no CORS headers");

    let (plain, _, _, _dir) = common::fresh_with(|_| {}).await;
    let r = get(&plain, "/v1/me", Some("http://game.example:8080")).await;
    assert!(r.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "no CORS unless configured");
}
