//! Pattern 3 from your own HTTP handler: an axum app with its own route and its own auth, the
//! engine embedded (worker + SQLite), answering a start with the same `202 Accepted`
//! check-status response the management API gives (Durable Functions'
//! `CreateCheckStatusResponse`).
//!
//! `cargo run --example http_trigger` serves on a free local port, places one order through the
//! app's own route, follows the `Location` until the order is done, prints it and exits.
//! `cargo run --example http_trigger -- --serve 127.0.0.1:8080` keeps serving, for curl:
//!
//! ```sh
//! curl -i localhost:8080/api/orders -H 'x-user-token: demo-token' \
//!      -H 'content-type: application/json' -d '{"item": "book", "quantity": 2}'
//! curl -i -H 'x-functions-key: demo-token' <the Location it answered>
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use durable::prelude::*;
use durable::{Registry, SharedStore};
use durable_http::{ApiOptions, BaseUrl, check_status_response};
use serde::{Deserialize, Serialize};

pub const PROCESS_ORDER: Orchestration<Order, String> = Orchestration::new("ProcessOrder");
const CHARGE: Activity<Order, String> = Activity::new("Charge");
const SHIP: Activity<Order, String> = Activity::new("Ship");

/// The demo's user token; a real app would check sessions or OAuth tokens instead.
pub const TOKEN: &str = "demo-token";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub item: String,
    pub quantity: u32,
}

async fn process_order(ctx: OrchestrationContext, order: Order) -> Result<String, Error> {
    let payment = ctx.call_activity(CHARGE, order.clone()).await?;
    let parcel = ctx.call_activity(SHIP, order).await?;
    Ok(format!("{payment}; {parcel}"))
}

async fn charge(_ctx: ActivityContext, order: Order) -> Result<String, Error> {
    Ok(format!("charged for {} x {}", order.quantity, order.item))
}

async fn ship(_ctx: ActivityContext, order: Order) -> Result<String, Error> {
    Ok(format!("shipped {} x {}", order.quantity, order.item))
}

pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.add_orchestration(PROCESS_ORDER, process_order);
    registry.add_activity(CHARGE, charge);
    registry.add_activity(SHIP, ship);
    registry
}

/// The app's own access check: a user token header.
async fn own_auth(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("x-user-token")
        .and_then(|v| v.to_str().ok());
    if given == Some(&*token) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "who are you?").into_response()
    }
}

/// The app's own route: validate, start the orchestration, answer with the check-status
/// response so the caller can poll the order like any durable instance.
async fn place_order(
    State(client): State<Client>,
    BaseUrl(base): BaseUrl,
    Json(order): Json<Order>,
) -> Response {
    if order.quantity == 0 {
        return (StatusCode::UNPROCESSABLE_ENTITY, "order at least one").into_response();
    }
    match client.start(PROCESS_ORDER, order).await {
        Ok(id) => check_status_response(&base, &id),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// The user's route behind its own auth, plus the management API (where the `202` points)
/// behind an API key; here the same secret serves as both.
pub fn app(client: Client, token: &str) -> Router {
    let token: Arc<str> = Arc::from(token);
    let orders = Router::new()
        .route("/api/orders", post(place_order))
        .layer(middleware::from_fn_with_state(token.clone(), own_auth))
        .with_state(client.clone());
    let options = ApiOptions {
        api_key: Some(token.to_string()),
        ..ApiOptions::default()
    };
    orders.merge(durable_http::router(client, Arc::new(registry()), options))
}

pub fn worker(store: SharedStore) -> Worker {
    Worker::builder(store).registry(&registry()).start()
}

/// Serves the app on a free local port, places `order` through it and follows the `Location`
/// until the order is done; returns the orchestration's output.
pub async fn run(store: SharedStore, order: Order) -> Result<String, Box<dyn std::error::Error>> {
    let worker = worker(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn({
        let app = app(worker.client(), TOKEN);
        async move { axum::serve(listener, app).await }
    });
    let http = reqwest::Client::new();
    let accepted = http
        .post(format!("{base}/api/orders"))
        .header("x-user-token", TOKEN)
        .json(&order)
        .send()
        .await?;
    if accepted.status() != StatusCode::ACCEPTED {
        return Err(format!("the order was refused: {}", accepted.status()).into());
    }
    let location = accepted.headers()[header::LOCATION].to_str()?.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done: serde_json::Value = loop {
        let status = http
            .get(&location)
            .header("x-functions-key", TOKEN)
            .send()
            .await?;
        match status.status() {
            StatusCode::OK => break status.json().await?,
            StatusCode::ACCEPTED if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => return Err(format!("status poll answered {other}").into()),
        }
    };
    server.abort();
    worker.shutdown().await;
    Ok(done["output"].as_str().unwrap_or_default().to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--serve") {
        let addr = args.get(pos + 1).map_or("127.0.0.1:8080", String::as_str);
        let worker = worker(durable::open_store("sqlite://http_trigger.db")?);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("serving on http://{addr}: POST /api/orders with x-user-token: {TOKEN}");
        axum::serve(listener, app(worker.client(), TOKEN))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        worker.shutdown().await;
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let store = durable::open_store(&format!("sqlite://{}/orders.db", dir.path().display()))?;
    let order = Order {
        item: "book".into(),
        quantity: 2,
    };
    let output = run(store, order).await?;
    println!("Order processed: {output}");
    Ok(())
}
