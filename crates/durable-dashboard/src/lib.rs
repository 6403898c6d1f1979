//! # durable-dashboard
//!
//! The web dashboard of `durable serve`: a page at `/` that lists instances, shows one
//! instance with its timeline and acts on it, and charts live counts. It is plain HTML, CSS and
//! JavaScript modules compiled into the binary, so nothing is built or downloaded to run it.
//!
//! The files hold no data: every number and name on the page comes from the HTTP API
//! (`durable-http`), which checks the API key. With a key configured the page asks for it and
//! sends it as `x-functions-key` (see `docs/monitoring.md`).
//!
//! ```no_run
//! # async fn run(api: axum::Router) -> std::io::Result<()> {
//! // `api` is `durable_http::router(..)`; the dashboard adds `/` and `/dashboard/*`.
//! let app = api.merge(durable_dashboard::router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7071").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The router has no fallback, so it can be merged into one that has (axum refuses two).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file: where it is served, its media type and its text.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../assets/", $file)),
        }
    };
}

/// Every file of the dashboard. A test checks that each file in `assets/` is listed here.
pub const ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/dashboard/style.css", "style.css", CSS),
    asset!("/dashboard/icon.svg", "icon.svg", SVG),
    asset!("/dashboard/app.js", "app.js", JS),
    asset!("/dashboard/api.js", "api.js", JS),
    asset!("/dashboard/auth.js", "auth.js", JS),
    asset!("/dashboard/dom.js", "dom.js", JS),
    asset!("/dashboard/format.js", "format.js", JS),
    asset!("/dashboard/list.js", "list.js", JS),
    asset!("/dashboard/instance.js", "instance.js", JS),
    asset!("/dashboard/timeline.js", "timeline.js", JS),
    asset!("/dashboard/actions.js", "actions.js", JS),
    asset!("/dashboard/live.js", "live.js", JS),
    asset!("/dashboard/entities.js", "entities.js", JS),
    asset!("/dashboard/chart.js", "chart.js", JS),
];

/// The page may load only its own files and talk only to its own server; no inline code, so
/// an instance name or payload that slipped into markup could not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard's routes: `/` and one `/dashboard/...` route per file, without fallback and
/// without access control (the files are the same for everyone and carry no data).
pub fn router() -> Router {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

fn serve(asset: &'static Asset) -> Response {
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidate every time, so a new binary's files are never mixed with cached old ones.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

#[cfg(test)]
mod tests;
