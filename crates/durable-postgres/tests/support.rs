//! Test databases: a fresh schema per store, and cleanup of schemas earlier runs left behind.

use durable_postgres::PostgresOptions;
use tokio::sync::OnceCell;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Schemas of this process start with `dt_<pid>_`, so a later run can tell leftovers of dead
/// processes from those of a run still going.
const PREFIX: &str = "dt_";

pub fn base_url() -> String {
    std::env::var("DURABLE_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

pub fn fresh_schema() -> String {
    let random = durable_core::ids::new_instance_id();
    format!("{PREFIX}{}_{}", std::process::id(), &random[..16])
}

/// `base_url()` with extra query options.
pub fn url_with(extra: &str) -> String {
    let base = base_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{extra}")
}

/// Options for a new, empty schema.
pub async fn fresh_options() -> PostgresOptions {
    fresh_options_with("").await
}

/// Options for a new, empty schema, with extra URL options (`a=1&b=2`).
pub async fn fresh_options_with(extra: &str) -> PostgresOptions {
    clean_leftovers().await;
    let mut query = format!("schema={}", fresh_schema());
    if !extra.is_empty() {
        query = format!("{query}&{extra}");
    }
    PostgresOptions::from_url(&url_with(&query)).unwrap()
}

/// An `application_name` of its own, to find a store's server sessions.
pub fn app_name(what: &str) -> String {
    format!(
        "durable_test_{what}_{}",
        &durable_core::ids::new_instance_id()[..8]
    )
}

/// A plain connection for inspecting and breaking things.
pub async fn admin() -> tokio_postgres::Client {
    let config: tokio_postgres::Config = base_url().parse().unwrap();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

pub async fn drop_schema(schema: &str) {
    admin()
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .unwrap();
}

/// Drops the test schemas of processes that no longer run (once per test process).
async fn clean_leftovers() {
    static CLEANED: OnceCell<()> = OnceCell::const_new();
    CLEANED
        .get_or_init(|| async {
            let client = admin().await;
            let rows = client
                .query(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
                    &[&PREFIX],
                )
                .await
                .unwrap();
            for row in rows {
                let schema: String = row.get(0);
                let pid = schema[PREFIX.len()..].split('_').next().unwrap_or("");
                let alive = std::path::Path::new("/proc").join(pid).exists();
                if !alive {
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            }
        })
        .await;
}
