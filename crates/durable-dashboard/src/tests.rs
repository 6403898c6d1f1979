use std::collections::BTreeSet;
use std::path::Path;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;

async fn get(path: &str) -> Response {
    router()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn file_name(asset: &Asset) -> &str {
    match asset.path {
        "/" => "index.html",
        path => path.strip_prefix("/dashboard/").unwrap(),
    }
}

#[test]
fn every_file_in_assets_is_served() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let listed: BTreeSet<String> = ASSETS.iter().map(|a| file_name(a).to_string()).collect();
    assert_eq!(on_disk, listed);
}

/// A module imported by another, or a file the page links, must be one the server has.
#[test]
fn references_point_at_served_files() {
    let served: BTreeSet<&str> = ASSETS.iter().map(file_name).collect();
    for asset in ASSETS {
        for (prefix, quote) in [("from './", '\''), ("\"/dashboard/", '"')] {
            for (at, _) in asset.body.match_indices(prefix) {
                let rest = &asset.body[at + prefix.len()..];
                let name = &rest[..rest.find(quote).unwrap()];
                assert!(
                    served.contains(name),
                    "{} refers to {name}, which is not served",
                    asset.path
                );
            }
        }
    }
}

#[tokio::test]
async fn files_are_served_with_their_type_and_headers() {
    for asset in ASSETS {
        let response = get(asset.path).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], asset.content_type);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body, asset.body.as_bytes());
    }
}

#[tokio::test]
async fn the_page_loads_its_script_as_a_module() {
    let page = ASSETS[0].body;
    assert!(page.contains(r#"<script type="module" src="/dashboard/app.js">"#));
    assert!(page.contains(r#"<html lang="en">"#));
}

#[tokio::test]
async fn unknown_files_are_left_to_the_fallback() {
    let response = get("/dashboard/missing.js").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = router()
        .oneshot(Request::post("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}
