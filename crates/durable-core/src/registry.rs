//! Named orchestrations and activities, and typed handles to call them by.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::failure::FailureDetails;
use crate::replay::OrchestrationContext;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a handler returns: the JSON output (`None` for null) or the failure.
pub type HandlerResult = Result<Option<String>, FailureDetails>;

/// A typed handle to an activity: `const F1: Activity<String, String> = Activity::new("F1");`.
/// Calling it with the wrong input type, or registering a function of other types under it, is a
/// compile error; a misspelt handle does not compile at all.
pub struct Activity<I, O> {
    name: Cow<'static, str>,
    _types: PhantomData<fn(I) -> O>,
}

/// A typed handle to an orchestration, used to start it or call it as a sub-orchestration.
pub struct Orchestration<I, O> {
    name: Cow<'static, str>,
    _types: PhantomData<fn(I) -> O>,
}

macro_rules! handle_impls {
    ($handle:ident) => {
        impl<I, O> $handle<I, O> {
            pub const fn new(name: &'static str) -> Self {
                $handle {
                    name: Cow::Borrowed(name),
                    _types: PhantomData,
                }
            }

            pub fn name(&self) -> &str {
                &self.name
            }
        }

        impl<I, O> Clone for $handle<I, O> {
            fn clone(&self) -> Self {
                $handle {
                    name: self.name.clone(),
                    _types: PhantomData,
                }
            }
        }

        impl<I, O> fmt::Debug for $handle<I, O> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($handle), self.name)
            }
        }

        /// Calling by name: the types are inferred from the call site.
        impl<I, O> From<&str> for $handle<I, O> {
            fn from(name: &str) -> Self {
                $handle {
                    name: Cow::Owned(name.to_string()),
                    _types: PhantomData,
                }
            }
        }

        impl<I, O> From<String> for $handle<I, O> {
            fn from(name: String) -> Self {
                $handle {
                    name: Cow::Owned(name),
                    _types: PhantomData,
                }
            }
        }

        impl<I, O> From<&$handle<I, O>> for $handle<I, O> {
            fn from(handle: &$handle<I, O>) -> Self {
                handle.clone()
            }
        }
    };
}

handle_impls!(Activity);
handle_impls!(Orchestration);

/// What an activity knows about its invocation.
#[derive(Clone, Debug)]
pub struct ActivityContext {
    pub instance_id: String,
    pub execution_id: String,
    pub task_id: i32,
    pub name: String,
    /// 1 on the first delivery; higher after a crash or lease expiry re-delivered it.
    pub delivery: u32,
}

pub trait OrchestrationHandler: Send + Sync + 'static {
    fn start(&self, ctx: OrchestrationContext, input: Option<String>) -> BoxFuture<HandlerResult>;
}

/// Runs one entity operation. Synchronous: an entity does its work on its state and sends
/// signals; slow work belongs in activities.
pub trait EntityHandler: Send + Sync + 'static {
    fn run(&self, ctx: &mut crate::entity::EntityContext) -> HandlerResult;
}

impl<F, O, E> EntityHandler for F
where
    F: Fn(&mut crate::entity::EntityContext) -> Result<O, E> + Send + Sync + 'static,
    O: Serialize,
    E: Into<Error>,
{
    fn run(&self, ctx: &mut crate::entity::EntityContext) -> HandlerResult {
        match self(ctx) {
            Ok(out) => encode(&out),
            Err(e) => Err(e.into().into_details()),
        }
    }
}

pub trait ActivityHandler: Send + Sync + 'static {
    fn run(&self, ctx: ActivityContext, input: Option<String>) -> BoxFuture<HandlerResult>;
}

fn encode<O: Serialize>(output: &O) -> HandlerResult {
    match serde_json::to_string(output) {
        Ok(text) if text == "null" => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(e) => Err(FailureDetails::new("SerializationError", e.to_string())),
    }
}

fn decode_input<I: DeserializeOwned>(input: Option<&str>) -> Result<I, FailureDetails> {
    serde_json::from_str(input.unwrap_or("null")).map_err(|e| {
        FailureDetails::new("InvalidInput", format!("input could not be decoded: {e}"))
            .non_retriable()
    })
}

struct FnOrchestration<F, I, O, E>(F, PhantomData<fn(I) -> (O, E)>);

impl<F, Fut, I, O, E> OrchestrationHandler for FnOrchestration<F, I, O, E>
where
    F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    I: DeserializeOwned + 'static,
    O: Serialize + 'static,
    E: Into<Error> + 'static,
{
    fn start(&self, ctx: OrchestrationContext, input: Option<String>) -> BoxFuture<HandlerResult> {
        match decode_input::<I>(input.as_deref()) {
            Err(details) => Box::pin(std::future::ready(Err(details))),
            Ok(input) => {
                let fut = (self.0)(ctx, input);
                Box::pin(async move {
                    match fut.await {
                        Ok(out) => encode(&out),
                        Err(e) => Err(e.into().into_details()),
                    }
                })
            }
        }
    }
}

struct FnActivity<F, I, O, E>(F, PhantomData<fn(I) -> (O, E)>);

impl<F, Fut, I, O, E> ActivityHandler for FnActivity<F, I, O, E>
where
    F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    I: DeserializeOwned + 'static,
    O: Serialize + 'static,
    E: Into<Error> + 'static,
{
    fn run(&self, ctx: ActivityContext, input: Option<String>) -> BoxFuture<HandlerResult> {
        match decode_input::<I>(input.as_deref()) {
            Err(details) => Box::pin(std::future::ready(Err(details))),
            Ok(input) => {
                let fut = (self.0)(ctx, input);
                Box::pin(async move {
                    match fut.await {
                        Ok(out) => encode(&out),
                        Err(e) => Err(e.into().into_details()),
                    }
                })
            }
        }
    }
}

/// The orchestrations and activities a worker can run, by name.
#[derive(Clone, Default)]
pub struct Registry {
    orchestrations: BTreeMap<String, Arc<dyn OrchestrationHandler>>,
    activities: BTreeMap<String, Arc<dyn ActivityHandler>>,
    entities: BTreeMap<String, Arc<dyn EntityHandler>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("orchestrations", &self.orchestration_names())
            .field("activities", &self.activity_names())
            .field("entities", &self.entity_names())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` as the orchestration `handle` (a typed handle or a name).
    pub fn add_orchestration<F, Fut, I, O, E>(
        &mut self,
        handle: impl Into<Orchestration<I, O>>,
        f: F,
    ) -> &mut Self
    where
        F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        E: Into<Error> + 'static,
    {
        let handle = handle.into();
        self.orchestrations.insert(
            handle.name().to_string(),
            Arc::new(FnOrchestration(f, PhantomData)),
        );
        self
    }

    /// Registers `f` as the activity `handle` (a typed handle or a name).
    pub fn add_activity<F, Fut, I, O, E>(
        &mut self,
        handle: impl Into<Activity<I, O>>,
        f: F,
    ) -> &mut Self
    where
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        E: Into<Error> + 'static,
    {
        let handle = handle.into();
        self.activities.insert(
            handle.name().to_string(),
            Arc::new(FnActivity(f, PhantomData)),
        );
        self
    }

    /// Registers an entity under `name` (matched without regard to letter case): a function
    /// that runs one operation, dispatching on `ctx.operation()`.
    pub fn add_entity(&mut self, name: &str, handler: impl EntityHandler) -> &mut Self {
        self.entities
            .insert(name.to_ascii_lowercase(), Arc::new(handler));
        self
    }

    pub fn entity(&self, name: &str) -> Option<&Arc<dyn EntityHandler>> {
        self.entities.get(&name.to_ascii_lowercase())
    }

    pub fn entity_names(&self) -> Vec<&str> {
        self.entities.keys().map(String::as_str).collect()
    }

    pub fn add_orchestration_handler(
        &mut self,
        name: &str,
        handler: Arc<dyn OrchestrationHandler>,
    ) {
        self.orchestrations.insert(name.to_string(), handler);
    }

    pub fn add_activity_handler(&mut self, name: &str, handler: Arc<dyn ActivityHandler>) {
        self.activities.insert(name.to_string(), handler);
    }

    pub fn orchestration(&self, name: &str) -> Option<&Arc<dyn OrchestrationHandler>> {
        self.orchestrations.get(name)
    }

    pub fn activity(&self, name: &str) -> Option<&Arc<dyn ActivityHandler>> {
        self.activities.get(name)
    }

    pub fn orchestration_names(&self) -> Vec<&str> {
        self.orchestrations.keys().map(String::as_str).collect()
    }

    pub fn activity_names(&self) -> Vec<&str> {
        self.activities.keys().map(String::as_str).collect()
    }

    /// Adds everything `other` registers (its entries win on a name clash).
    pub fn merge(&mut self, other: &Registry) {
        for (k, v) in &other.orchestrations {
            self.orchestrations.insert(k.clone(), v.clone());
        }
        for (k, v) in &other.activities {
            self.activities.insert(k.clone(), v.clone());
        }
        for (k, v) in &other.entities {
            self.entities.insert(k.clone(), v.clone());
        }
    }
}
