//! The worker: dispatchers that claim orchestration turns and activity invocations from the
//! store and run them.

mod activities;
mod cache;
mod entities;
mod lifecycle;
mod orchestrations;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use durable_core::entity::EntityContext;
use durable_core::registry::{Activity, ActivityContext, Orchestration, Registry};
use durable_core::turn::PlanLimits;
use durable_core::work::ActivityItem;
use durable_core::work::NameFilter;
use durable_core::{Error, OrchestrationContext};
use durable_store::SharedStore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::Client;
use cache::Cache;

/// What to do with a turn for an orchestration name this worker does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownOrchestrations {
    /// Fail the instance with an error that lists the registered names.
    Fail,
    /// Leave it for another worker that knows the name (shared task hubs).
    Leave,
}

/// Tuning knobs of a worker. The defaults suit one process on SQLite.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Orchestration turns processed at once.
    pub orchestration_concurrency: usize,
    /// Activities run at once.
    pub activity_concurrency: usize,
    /// How long a claimed item stays leased; activities renew it while they run.
    pub lock_duration: Duration,
    /// How often an idle dispatcher looks for work it was not told about (work created by
    /// another process). Work from this process wakes it at once.
    pub idle_poll: Duration,
    /// Deliveries of one item before it is declared poison and its instance fails.
    pub max_deliveries: u32,
    /// Live orchestrations kept in memory between turns.
    pub cache_capacity: usize,
    /// A live orchestration unused this long leaves the cache (its next turn replays it from
    /// history), so instances that wait for hours hold no memory. `None` keeps them until the
    /// capacity pushes them out.
    pub cache_idle_timeout: Option<Duration>,
    /// How long shutdown waits for running work before giving its leases back.
    pub shutdown_grace: Duration,
    pub unknown_orchestrations: UnknownOrchestrations,
    /// Claim only the orchestrations and activities this worker registered, leaving other names
    /// to other workers (gRPC workers of other languages in a shared task hub). Implies
    /// [`UnknownOrchestrations::Leave`].
    pub only_registered: bool,
    pub limits: PlanLimits,
    /// Where to report a span per finished execution and per activity run (off by default).
    pub spans: Option<Arc<dyn crate::spans::SpanExporter>>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            orchestration_concurrency: 256,
            activity_concurrency: 256,
            lock_duration: Duration::from_secs(30),
            idle_poll: Duration::from_secs(1),
            max_deliveries: durable_core::limits::DEFAULT_MAX_DELIVERIES,
            cache_capacity: 10_000,
            cache_idle_timeout: Some(Duration::from_secs(60)),
            shutdown_grace: Duration::from_secs(10),
            unknown_orchestrations: UnknownOrchestrations::Fail,
            only_registered: false,
            limits: PlanLimits::default(),
            spans: None,
        }
    }
}

/// State shared by the dispatchers of one worker.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: SharedStore,
    pub orchestration_filter: NameFilter,
    pub activity_filter: NameFilter,
    pub registry: Registry,
    pub options: WorkerOptions,
    pub cache: Cache,
    pub client: Client,
    /// Free activity slots; a turn commit claims at most this many activities in-process.
    pub activity_permits: Arc<Semaphore>,
    /// Activities claimed by turn commits, on their way to the activity dispatcher.
    pub handoff: mpsc::UnboundedSender<ActivityItem>,
}

/// Builds a [`Worker`]: register orchestrations and activities, then [`WorkerBuilder::start`].
#[derive(Debug)]
pub struct WorkerBuilder {
    store: SharedStore,
    registry: Registry,
    options: WorkerOptions,
}

impl WorkerBuilder {
    /// Registers an orchestration under a typed handle or a name.
    pub fn orchestration<F, Fut, I, O, E>(
        mut self,
        handle: impl Into<Orchestration<I, O>>,
        f: F,
    ) -> Self
    where
        F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        E: Into<Error> + 'static,
    {
        self.registry.add_orchestration(handle, f);
        self
    }

    /// Registers an activity under a typed handle or a name.
    pub fn activity<F, Fut, I, O, E>(mut self, handle: impl Into<Activity<I, O>>, f: F) -> Self
    where
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        E: Into<Error> + 'static,
    {
        self.registry.add_activity(handle, f);
        self
    }

    /// Registers an entity: a function that runs one operation on the entity's state,
    /// dispatching on [`EntityContext::operation`].
    pub fn entity<F, O, E>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(&mut EntityContext) -> Result<O, E> + Send + Sync + 'static,
        O: Serialize + 'static,
        E: Into<Error> + 'static,
    {
        self.registry.add_entity(name, f);
        self
    }

    /// Adds everything a registry holds.
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry.merge(registry);
        self
    }

    pub fn options(mut self, options: WorkerOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the dispatchers on the current Tokio runtime.
    pub fn start(self) -> Worker {
        let client = Client::new(self.store.clone());
        let (orchestration_filter, activity_filter) = if self.options.only_registered {
            let names = |v: Vec<&str>| NameFilter::Only(v.into_iter().map(String::from).collect());
            let mut turns = self.registry.orchestration_names();
            turns.extend(self.registry.entity_names());
            (names(turns), names(self.registry.activity_names()))
        } else {
            (NameFilter::All, NameFilter::All)
        };
        let (handoff, handoff_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            activity_permits: Arc::new(Semaphore::new(self.options.activity_concurrency.max(1))),
            handoff,
            orchestration_filter,
            activity_filter,
            cache: Cache::new(self.options.cache_capacity, self.options.cache_idle_timeout),
            store: self.store,
            registry: self.registry,
            options: self.options,
            client: client.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(orchestrations::run(shared.clone(), stopped.clone())),
            tokio::spawn(activities::run(shared.clone(), handoff_rx, stopped)),
        ];
        tracing::debug!(
            store = %shared.store.describe(),
            orchestrations = ?shared.registry.orchestration_names(),
            activities = ?shared.registry.activity_names(),
            entities = ?shared.registry.entity_names(),
            "worker started"
        );
        Worker {
            stop,
            tasks,
            client,
            shared,
        }
    }
}

/// A running worker. Dropping it without [`Worker::shutdown`] leaves its dispatchers running
/// until the runtime ends.
#[derive(Debug)]
pub struct Worker {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    client: Client,
    shared: Arc<Shared>,
}

impl Worker {
    pub fn builder(store: SharedStore) -> WorkerBuilder {
        WorkerBuilder {
            store,
            registry: Registry::new(),
            options: WorkerOptions::default(),
        }
    }

    /// A client on the same store.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Number of orchestrations held in the live cache.
    pub fn cached_orchestrations(&self) -> usize {
        self.shared.cache.len()
    }

    /// Stops claiming work, lets running work finish (up to the grace period) and gives the
    /// leases of anything still running back to the store, so another worker can take over.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::debug!("worker stopped");
    }
}

/// Sleeps until work is signalled, the next timer is due, the idle poll elapses or shutdown.
pub(crate) async fn idle_wait(
    shared: &Shared,
    stopped: &mut watch::Receiver<bool>,
    signal: impl Future<Output = ()>,
) {
    let poll = shared.options.idle_poll;
    let wait = match shared.store.next_due().await {
        Ok(Some(due)) => (due - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            .min(poll),
        _ => poll,
    };
    tokio::select! {
        _ = signal => {}
        _ = tokio::time::sleep(wait) => {}
        _ = stopped.changed() => {}
    }
}
