//! The PostgreSQL store of `durable`: several worker processes, on one machine or many, share
//! one database and divide the work.
//!
//! ```no_run
//! use std::sync::Arc;
//! use durable_postgres::{PostgresOptions, PostgresStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = PostgresOptions::from_url("postgres://postgres@127.0.0.1:5432/app?schema=orders")?;
//! let store = Arc::new(PostgresStore::connect(options).await?);
//! # Ok(()) }
//! ```
//!
//! * Claims use `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent workers never wait for each
//!   other's candidates; every claim bumps the instance's (or activity's) lease epoch, and every
//!   commit is fenced by it.
//! * A turn commits in one transaction whose statements are pipelined: one round trip.
//!   Claims, activity completions and the other calls are single statements.
//! * Work created by another process arrives by LISTEN/NOTIFY (see `notify.rs`).
//! * Each task hub lives in its own schema, created and migrated at connect.
//! * Time comes from the injected clock: SQL never calls `now()`.

mod claim;
mod create;
mod entity;
mod error;
mod hub;
mod notify;
mod ops;
mod options;
mod pipeline;
mod reads;
mod rows;
mod schema;
mod turn;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use durable_core::clock::{SharedClock, system_clock};
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter};
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, Lease, NameFilter, NewMessage, OrchestrationItem,
    QueueStats, SendOutcome, TurnCommit,
};
use durable_store::{Notifier, Store, StoreResult};
use tokio::sync::watch;
use tokio_postgres::{NoTls, Statement};

pub use options::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT, DEFAULT_SCHEMA,
    PostgresOptions, SynchronousCommit, UrlError,
};

use crate::hub::Hub;
use crate::notify::Announcer;

/// What a committed call should wake, here and in other processes.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Orchestration work this process may claim now.
    pub orchestrations: bool,
    /// Orchestration work other processes should hear about.
    pub shared_orchestrations: bool,
    pub activities: bool,
    /// Instances whose status may have changed.
    pub changed: Vec<String>,
}

impl Effects {
    /// New orchestration work, for everyone.
    pub fn work() -> Self {
        Effects {
            orchestrations: true,
            shared_orchestrations: true,
            ..Default::default()
        }
    }

    pub fn changed(mut self, id: &str) -> Self {
        self.changed.push(id.to_string());
        self
    }
}

/// The PostgreSQL [`Store`]. Cheap to share behind an `Arc`; dropping it closes its
/// connections and stops its background tasks.
pub struct PostgresStore {
    pool: Pool,
    hub: Arc<Hub>,
    location: String,
    synchronous_commit: Option<SynchronousCommit>,
    clock: SharedClock,
    notifier: Arc<Notifier>,
    announcer: Arc<Announcer>,
    /// Dropped with the store: tells the background tasks to end.
    _stop: watch::Sender<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("schema", &self.hub.schema())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with the system clock.
    pub async fn connect(options: PostgresOptions) -> StoreResult<Self> {
        Self::connect_with_clock(options, system_clock()).await
    }

    /// Connects, creates or migrates the hub's schema, and starts listening for work from
    /// other processes. Fails with `Unavailable` if the server cannot be reached.
    pub async fn connect_with_clock(
        options: PostgresOptions,
        clock: SharedClock,
    ) -> StoreResult<Self> {
        let location = options.location();
        let config = options.session_config();
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .wait_timeout(Some(options.pool_timeout))
            .create_timeout(config.get_connect_timeout().copied())
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| durable_store::StoreError::Internal(format!("PostgreSQL pool: {e}")))?;
        let hub = Arc::new(Hub::new(&options.schema));
        {
            let mut client = pool.get().await.map_err(|e| error::pool(e, &location))?;
            schema::migrate(&mut client, &hub).await?;
        }
        let notifier = Arc::new(Notifier::new());
        let announcer = Arc::new(Announcer::default());
        let token = durable_core::ids::new_instance_id();
        let (stop, stopped) = watch::channel(());
        notify::start_listener(
            config,
            hub.clone(),
            token.clone(),
            notifier.clone(),
            stopped.clone(),
        )
        .await?;
        notify::spawn_announcer(announcer.clone(), pool.clone(), hub.clone(), token, stopped);
        tracing::debug!(%location, schema = %hub.schema(), "connected to PostgreSQL");
        Ok(PostgresStore {
            pool,
            hub,
            location,
            synchronous_commit: options.synchronous_commit,
            clock,
            notifier,
            announcer,
            _stop: stop,
        })
    }

    /// The task hub (schema) this store works in.
    pub fn schema(&self) -> &str {
        self.hub.schema()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn until(&self, d: Duration) -> DateTime<Utc> {
        rows::after(self.now(), d)
    }

    /// A pooled connection.
    pub(crate) async fn conn(&self) -> StoreResult<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| error::pool(e, &self.location))
    }

    /// The hub's version of a statement, prepared once per connection.
    pub(crate) async fn prepare(
        &self,
        client: &Object,
        template: &'static str,
    ) -> StoreResult<Statement> {
        client
            .prepare_cached(&self.hub.sql(template))
            .await
            .map_err(error::db)
    }

    /// Signals this process's waiters and announces the change to other processes.
    pub(crate) fn signal(&self, effects: Effects) {
        if effects.orchestrations {
            self.notifier.orchestration_work();
        }
        if effects.activities {
            self.notifier.activity_work();
        }
        for id in &effects.changed {
            self.notifier.instance_changed(id);
        }
        let mut flags = 0;
        if effects.shared_orchestrations {
            flags |= notify::ORCHESTRATIONS;
        }
        if effects.activities {
            flags |= notify::ACTIVITIES;
        }
        if !effects.changed.is_empty() {
            flags |= notify::CHANGED;
        }
        self.announcer.announce(flags);
    }

    /// Runs one write transaction and records its latency in the store metrics. Each request is
    /// its own transaction here (the server shares flushes among concurrent commits).
    async fn write<T>(
        &self,
        transaction: impl std::future::Future<Output = StoreResult<(T, Effects)>>,
    ) -> StoreResult<T> {
        let began = std::time::Instant::now();
        let outcome = transaction.await;
        let m = durable_core::metrics::global();
        m.store_commit_seconds.observe_duration(began.elapsed());
        m.store_batch_size.observe(1.0);
        self.effect(outcome)
    }

    /// Runs a call that returns a value and what it should wake.
    fn effect<T>(&self, outcome: StoreResult<(T, Effects)>) -> StoreResult<T> {
        let (value, effects) = outcome?;
        self.signal(effects);
        Ok(value)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn describe(&self) -> String {
        match self.synchronous_commit {
            Some(s) => format!(
                "postgres({}, schema={}, synchronous_commit={})",
                self.location,
                self.hub.schema(),
                s.as_str()
            ),
            None => format!("postgres({}, schema={})", self.location, self.hub.schema()),
        }
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn create_instance(&self, instance: NewInstance) -> StoreResult<()> {
        self.write(create::create_instance(self, instance)).await
    }

    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome> {
        self.write(ops::send_message(self, message)).await
    }

    async fn fetch_orchestration_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<OrchestrationItem>> {
        claim::orchestrations(self, max, lock_for, filter).await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        reads::next_due(self).await
    }

    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        reads::read_history(self, instance_id).await
    }

    async fn commit_turn(&self, commit: TurnCommit) -> StoreResult<()> {
        self.write(turn::commit_turn(self, commit)).await
    }

    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        self.effect(ops::abandon_orchestration_item(self, lease, retry_after).await)
    }

    async fn renew_orchestration_lease(
        &self,
        lease: &Lease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        ops::renew_orchestration_lease(self, lease, lock_for).await
    }

    async fn fetch_activity_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>> {
        claim::activities(self, max, lock_for, filter).await
    }

    async fn complete_activity(
        &self,
        lease: &ActivityLease,
        result: ActivityResult,
    ) -> StoreResult<()> {
        self.write(ops::complete_activity(self, lease, result))
            .await
    }

    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let visible_at = retry_after.map_or_else(|| self.now(), |d| self.until(d));
        self.effect(ops::update_activity_lease(self, lease, None, Some(visible_at)).await)
    }

    async fn renew_activity_lease(
        &self,
        lease: &ActivityLease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        let until = self.until(lock_for);
        self.effect(ops::update_activity_lease(self, lease, Some(until), None).await)
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>> {
        reads::get_instance(self, instance_id).await
    }

    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>> {
        reads::query_instances(self, query).await
    }

    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64> {
        self.effect(ops::purge_instance(self, instance_id, recursive).await)
    }

    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64> {
        self.effect(ops::purge_instances(self, filter).await)
    }

    async fn remove_empty_entity(&self, instance_id: &str) -> StoreResult<bool> {
        self.effect(entity::remove_if_empty(self, instance_id).await)
    }

    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()> {
        self.effect(ops::rewind_instance(self, instance_id, event).await)
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        reads::queue_stats(self).await
    }
}
