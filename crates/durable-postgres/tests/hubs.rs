//! Task hubs, migrations and URLs.

use std::time::Duration;

use durable_core::instance::{InstanceQuery, NewInstance};
use durable_core::work::NameFilter;
use durable_postgres::{PostgresOptions, PostgresStore, SynchronousCommit};
use durable_store::{Store, StoreError};

use crate::support::{admin, drop_schema, fresh_options, fresh_schema, url_with};

const LOCK: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_hubs_in_one_database_do_not_see_each_other() {
    let (a_options, b_options) = (fresh_options().await, fresh_options().await);
    let (a_schema, b_schema) = (a_options.schema.clone(), b_options.schema.clone());
    let a = PostgresStore::connect(a_options).await.unwrap();
    let b = PostgresStore::connect(b_options).await.unwrap();
    a.create_instance(NewInstance::new("InA", "same-id"))
        .await
        .unwrap();
    assert!(b.get_instance("same-id").await.unwrap().is_none());
    b.create_instance(NewInstance::new("InB", "same-id"))
        .await
        .unwrap();

    let items = a
        .fetch_orchestration_items(10, LOCK, &NameFilter::All)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].instance.name, "InA");
    let items = b
        .fetch_orchestration_items(10, LOCK, &NameFilter::All)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].instance.name, "InB");
    for store in [&a, &b] {
        let page = store
            .query_instances(&InstanceQuery::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
    }
    assert!(a.describe().contains(&a_schema), "{}", a.describe());
    drop((a, b));
    drop_schema(&a_schema).await;
    drop_schema(&b_schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_safe_when_processes_start_together() {
    let options = fresh_options().await;
    let schema = options.schema.clone();
    let connecting: Vec<_> = (0..5)
        .map(|_| tokio::spawn(PostgresStore::connect(options.clone())))
        .collect();
    let mut stores = Vec::new();
    for c in futures::future::join_all(connecting).await {
        stores.push(c.unwrap().expect("every concurrent connect succeeds"));
    }
    let admin = admin().await;
    let versions: Vec<i32> = admin
        .query(&format!("SELECT version FROM {schema}.schema_version"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1]);

    stores[0]
        .create_instance(NewInstance::new("Orch", "kept"))
        .await
        .unwrap();
    drop(stores);
    let again = PostgresStore::connect(options.clone()).await.unwrap();
    assert!(
        again.get_instance("kept").await.unwrap().is_some(),
        "connecting again keeps the data"
    );
    drop(again);

    admin
        .execute(
            &format!("UPDATE {schema}.schema_version SET version = 99"),
            &[],
        )
        .await
        .unwrap();
    let err = PostgresStore::connect(options).await.unwrap_err();
    assert!(err.to_string().contains("newer than this build"), "{err}");
    drop_schema(&schema).await;
}

#[test]
fn urls_parse_with_defaults_and_options() {
    let o = PostgresOptions::from_url("postgres://alice@db.example:5433/app").unwrap();
    assert_eq!(o.schema, "durable");
    assert_eq!(o.pool_size, durable_postgres::DEFAULT_POOL_SIZE);
    assert_eq!(o.pool_timeout, durable_postgres::DEFAULT_POOL_TIMEOUT);
    assert_eq!(o.synchronous_commit, None);
    assert_eq!(o.config.get_user(), Some("alice"));
    assert_eq!(o.config.get_dbname(), Some("app"));
    assert_eq!(o.config.get_ports(), [5433]);
    assert_eq!(o.config.get_application_name(), Some("durable"));
    assert_eq!(o.location(), "db.example:5433/app");

    let o = PostgresOptions::from_url(
        "postgresql://bob:s3cret@h/db?schema=hub_1&pool_size=4&pool_timeout=2.5\
         &synchronous_commit=off&application_name=orders&connect_timeout=3",
    )
    .unwrap();
    assert_eq!(o.schema, "hub_1");
    assert_eq!(o.pool_size, 4);
    assert_eq!(o.pool_timeout, Duration::from_millis(2500));
    assert_eq!(o.synchronous_commit, Some(SynchronousCommit::Off));
    assert_eq!(o.config.get_application_name(), Some("orders"));
    assert_eq!(
        o.config.get_connect_timeout(),
        Some(&Duration::from_secs(3))
    );
    assert_eq!(o.config.get_password(), Some(&b"s3cret"[..]));
    assert!(
        !format!("{o:?}").contains("s3cret"),
        "Debug hides the password"
    );

    let o = PostgresOptions::new(o.config).with_schema("other").unwrap();
    assert_eq!((o.schema.as_str(), o.pool_size), ("other", 16));
    assert!(o.with_schema("No").is_err());
}

#[test]
fn bad_urls_are_refused_clearly() {
    for (url, expected) in [
        ("mysql://h/db", "postgres://"),
        ("postgres://h/db?schema=Bad-Name", "lower-case identifier"),
        ("postgres://h/db?schema=", "lower-case identifier"),
        ("postgres://h/db?schema=1abc", "lower-case identifier"),
        ("postgres://h/db?schema=pg_hub", "reserved"),
        ("postgres://h/db?pool_size=0", "pool_size"),
        ("postgres://h/db?pool_size=many", "pool_size"),
        ("postgres://h/db?pool_timeout=-1", "pool_timeout"),
        (
            "postgres://h/db?synchronous_commit=maybe",
            "synchronous_commit",
        ),
        ("postgres://h/db?bogus=1", "bogus"),
        ("postgres://h:port/db", "invalid"),
        ("postgres://h/db?sslmode=require", "TLS"),
    ] {
        let err = PostgresOptions::from_url(url).unwrap_err().to_string();
        assert!(err.contains(expected), "{url}: {err}");
        assert!(err.starts_with("invalid PostgreSQL store URL"), "{err}");
    }
    let long = format!("postgres://h/db?schema={}", "a".repeat(51));
    assert!(PostgresOptions::from_url(&long).is_err());
    assert!(PostgresOptions::from_url(&url_with(&format!("schema={}", fresh_schema()))).is_ok());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_with_a_clear_message() {
    let options =
        PostgresOptions::from_url("postgres://postgres@127.0.0.1:1/test?connect_timeout=2")
            .unwrap();
    let err = PostgresStore::connect(options).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:1/test"), "{err}");
}
