//! The hub between the store and the connected remote workers: which streams are open, what
//! each may take (work-item filters, concurrency), and every item the sidecar holds a lease on.
//!
//! An item fetched from the store is *held* under a completion token until its worker completes
//! or abandons it. A held item is in one of three places: sent to a stream, parked (no connected
//! stream accepts it), or orphaned (its stream closed; a late completion is still accepted for a
//! short grace period, then the item goes back to the store). The maintenance task renews the
//! leases of everything held, so an item stays with a slow remote worker as long as it needs.

mod complete;
mod dispatch;
mod entities;
mod locks;
mod maintain;
mod release;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use durable::core::action::Action;
use durable::core::entity::Batch;
use durable::core::turn::PreparedTurn;
use durable::core::work::{ActivityItem, ActivityLease, Lease, NameFilter, OrchestrationItem};
use durable::{Client, Registry, SharedStore};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, watch};
use tonic::Status;

use crate::error::{RpcError, RpcResult};
use crate::proto;
use crate::server::SidecarOptions;

pub(crate) use complete::{abandon_token, complete_activity, complete_turn};
pub(crate) use dispatch::run as run_dispatcher;
pub(crate) use entities::complete_entity;
pub(crate) use maintain::run as run_maintenance;
pub(crate) use stream::open as open_stream;

pub(crate) type WorkSender = mpsc::Sender<Result<proto::WorkItem, Status>>;

/// Orchestration turns, activity invocations or entity batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Orchestration = 0,
    Activity = 1,
    Entity = 2,
}

const KINDS: usize = 3;

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Orchestration => 'o',
            Kind::Activity => 'a',
            Kind::Entity => 'e',
        }
    }
}

/// One orchestration turn handed to a remote worker.
#[derive(Debug)]
pub(crate) struct Turn {
    pub item: OrchestrationItem,
    pub prepared: PreparedTurn,
    /// Actions of a response sent in chunks (`isPartial`), kept until the last chunk.
    pub partial: Vec<Action>,
    /// Tasks pending before the worker's actions (counted from the history sent), for the
    /// pending-tasks limit.
    pub pending_tasks: usize,
}

/// One entity batch handed to a remote worker: the claimed entity and its planned batch.
#[derive(Debug)]
pub(crate) struct EntityTurn {
    pub item: OrchestrationItem,
    pub batch: Batch,
}

#[derive(Debug)]
pub(crate) enum Work {
    Turn(Box<Turn>),
    Activity(ActivityItem),
    Entity(Box<EntityTurn>),
}

impl Work {
    fn kind(&self) -> Kind {
        match self {
            Work::Turn(_) => Kind::Orchestration,
            Work::Activity(_) => Kind::Activity,
            Work::Entity(_) => Kind::Entity,
        }
    }

    pub fn key(&self) -> WorkKey {
        match self {
            Work::Turn(t) => WorkKey::Instance(t.item.lease.instance_id.clone()),
            Work::Activity(a) => WorkKey::Activity(a.lease.activity_id),
            Work::Entity(e) => WorkKey::Instance(e.item.lease.instance_id.clone()),
        }
    }

    /// The name and version work-item filters look at.
    fn route_key(&self) -> (&str, Option<&str>) {
        match self {
            Work::Turn(t) => (&t.item.instance.name, t.item.instance.version.as_deref()),
            Work::Activity(a) => (&a.activity.name, a.activity.version.as_deref()),
            Work::Entity(e) => (&e.batch.id.name, None),
        }
    }
}

/// What the poison count is kept for: an instance's turns, or one activity invocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum WorkKey {
    Instance(String),
    Activity(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Sent(u64),
    Parked,
    Orphaned(Instant),
}

#[derive(Debug)]
struct Held {
    work: Work,
    place: Place,
}

/// A connected `GetWorkItems` stream.
#[derive(Debug)]
struct Stream {
    tx: WorkSender,
    filters: Option<proto::WorkItemFilters>,
    max: [usize; KINDS],
    busy: [usize; KINDS],
}

impl Stream {
    fn free(&self, kind: Kind) -> usize {
        self.max[kind as usize].saturating_sub(self.busy[kind as usize])
    }

    /// §3.13: an absent filter takes everything; a present one only what it lists. An activity
    /// without a version matches any version list (Python never sends activity versions, and
    /// filtering them literally would starve them). Entities match on their lower-case name.
    fn accepts(&self, kind: Kind, name: &str, version: Option<&str>) -> bool {
        let Some(f) = &self.filters else { return true };
        let matches = |n: &str, versions: &[String]| {
            n == name
                && (versions.is_empty()
                    || match (kind, version) {
                        (Kind::Activity, None) => true,
                        (_, v) => versions.iter().any(|x| x == v.unwrap_or("")),
                    })
        };
        match kind {
            Kind::Orchestration => f
                .orchestrations
                .iter()
                .any(|o| matches(&o.name, &o.versions)),
            Kind::Activity => f.activities.iter().any(|a| matches(&a.name, &a.versions)),
            Kind::Entity => f.entities.iter().any(|e| e.name.eq_ignore_ascii_case(name)),
        }
    }

    fn names(&self, kind: Kind) -> Option<Vec<&str>> {
        let f = self.filters.as_ref()?;
        Some(match kind {
            Kind::Orchestration => f.orchestrations.iter().map(|o| o.name.as_str()).collect(),
            Kind::Activity => f.activities.iter().map(|a| a.name.as_str()).collect(),
            Kind::Entity => f.entities.iter().map(|e| e.name.as_str()).collect(),
        })
    }
}

#[derive(Debug, Default)]
struct State {
    streams: BTreeMap<u64, Stream>,
    next_stream: u64,
    held: HashMap<String, Held>,
}

impl State {
    fn parked(&self) -> Vec<String> {
        self.held
            .iter()
            .filter(|(_, h)| h.place == Place::Parked)
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// What the dispatcher may fetch now: how many of each kind, under which name filter.
/// Orchestration turns and entity batches are claimed together (both are instances).
#[derive(Debug)]
pub(crate) struct FetchPlan {
    pub orchestrations: (usize, NameFilter),
    pub activities: (usize, NameFilter),
}

/// How long a completion is still awaited after its stream closed (the Python worker finishes
/// items it already has and delivers them on its retired channel).
const ORPHAN_GRACE: Duration = Duration::from_secs(5);
/// Default and largest number of items of one kind in flight on one stream.
const DEFAULT_PER_STREAM: usize = 100;
const MAX_PER_STREAM: usize = 1000;

#[derive(Debug)]
pub(crate) struct Hub {
    pub store: SharedStore,
    pub client: Client,
    pub options: SidecarOptions,
    native: [Vec<String>; KINDS],
    state: Mutex<State>,
    /// Deliveries given back unrun, per item, not counted as poison (see [`Hub::decline`]).
    declined: Mutex<HashMap<WorkKey, u32>>,
    /// Streams came or went, or a slot freed up: the dispatcher re-plans.
    changed: Notify,
    session: String,
    next_token: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Hub {
    pub fn new(store: SharedStore, native: &Registry, options: SidecarOptions) -> Self {
        let names = |v: Vec<&str>| v.into_iter().map(String::from).collect();
        Hub {
            client: Client::new(store.clone()),
            store,
            options,
            native: [
                names(native.orchestration_names()),
                names(native.activity_names()),
                names(native.entity_names()),
            ],
            state: Mutex::new(State::default()),
            declined: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            session: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            next_token: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
        }
    }

    pub fn has_workers(&self) -> bool {
        !self.state.lock().streams.is_empty()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Ends every work-item stream (they finish with OK) and stops the background tasks.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
        self.state.lock().streams.clear();
        self.changed.notify_one();
    }

    /// Every held item, removed: given back to the store when the server stops.
    pub fn drain(&self) -> Vec<Work> {
        self.state
            .lock()
            .held
            .drain()
            .map(|(_, h)| h.work)
            .collect()
    }

    fn connect(&self, request: &proto::GetWorkItemsRequest, tx: WorkSender) -> u64 {
        let cap = |n: i32| match usize::try_from(n) {
            Ok(0) | Err(_) => DEFAULT_PER_STREAM,
            Ok(n) => n.min(MAX_PER_STREAM),
        };
        let stream = Stream {
            tx,
            filters: request.work_item_filters.clone(),
            max: [
                cap(request.max_concurrent_orchestration_work_items),
                cap(request.max_concurrent_activity_work_items),
                cap(request.max_concurrent_entity_work_items),
            ],
            busy: [0; KINDS],
        };
        let mut state = self.state.lock();
        let id = state.next_stream;
        state.next_stream += 1;
        state.streams.insert(id, stream);
        drop(state);
        self.changed.notify_one();
        id
    }

    /// A stream closed: its items wait [`ORPHAN_GRACE`] for late completions. With no stream
    /// left, parked items go back to the store at once.
    fn disconnect(&self, id: u64) -> Vec<Work> {
        let mut state = self.state.lock();
        state.streams.remove(&id);
        let now = Instant::now();
        for held in state.held.values_mut() {
            if held.place == Place::Sent(id) {
                held.place = Place::Orphaned(now);
            }
        }
        let mut released = Vec::new();
        if state.streams.is_empty() {
            for token in state.parked() {
                released.extend(state.held.remove(&token).map(|h| h.work));
            }
        }
        drop(state);
        self.changed.notify_one();
        released
    }

    /// How much to fetch: the free slots of the streams that accept anything of a kind, and the
    /// names they accept (never the names native workers of this process run).
    pub fn fetch_plan(&self) -> Option<FetchPlan> {
        let state = self.state.lock();
        if state.streams.is_empty() {
            return None;
        }
        let plan = |kind: Kind| {
            let native = &self.native[kind as usize];
            let mut free = 0;
            let mut everything = false;
            let mut names: Vec<String> = Vec::new();
            for s in state.streams.values().filter(|s| s.free(kind) > 0) {
                match s.names(kind) {
                    None => everything = true,
                    // A filter with an empty list takes nothing of this kind.
                    Some(listed) if listed.is_empty() => continue,
                    Some(listed) => names.extend(
                        listed
                            .into_iter()
                            .filter(|n| !native.iter().any(|x| x == n))
                            .map(String::from),
                    ),
                }
                free += s.free(kind);
            }
            if everything {
                (free, NameFilter::Except(native.clone()))
            } else if names.is_empty() {
                (0, NameFilter::Only(Vec::new()))
            } else {
                names.sort();
                names.dedup();
                (free, NameFilter::Only(names))
            }
        };
        let natives = |kinds: &[Kind]| {
            kinds
                .iter()
                .flat_map(|k| self.native[*k as usize].iter().cloned())
                .collect::<Vec<_>>()
        };
        let orchestrations = merge(
            plan(Kind::Orchestration),
            plan(Kind::Entity),
            natives(&[Kind::Orchestration, Kind::Entity]),
        );
        Some(FetchPlan {
            orchestrations,
            activities: plan(Kind::Activity),
        })
    }

    fn mint_token(&self, kind: Kind) -> String {
        let n = self.next_token.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}.{n}", self.session, kind.letter())
    }

    /// Holds `work` under a new token, on the least busy stream that accepts it, or parked.
    /// Returns the token, and the stream's sender when it was placed on one.
    pub fn hold(&self, work: Work) -> (String, Option<WorkSender>) {
        let kind = work.kind();
        let token = self.mint_token(kind);
        let mut state = self.state.lock();
        let (name, version) = work.route_key();
        let placed = place(&mut state, kind, name, version);
        let at = placed
            .as_ref()
            .map_or(Place::Parked, |(id, _)| Place::Sent(*id));
        state.held.insert(token.clone(), Held { work, place: at });
        (token, placed.map(|(_, tx)| tx))
    }

    /// Places parked items on streams that accept them now.
    pub fn unpark(&self) -> Vec<(String, WorkSender)> {
        let mut state = self.state.lock();
        let mut placed = Vec::new();
        for token in state.parked() {
            let held = &state.held[&token];
            let kind = held.work.kind();
            let (name, version) = held.work.route_key();
            let (name, version) = (name.to_string(), version.map(str::to_string));
            if let Some((id, tx)) = place(&mut state, kind, &name, version.as_deref()) {
                state.held.get_mut(&token).expect("listed above").place = Place::Sent(id);
                placed.push((token, tx));
            }
        }
        placed
    }

    /// Runs `f` on a held item (to build the message that sends it).
    pub fn with_held<T>(&self, token: &str, f: impl FnOnce(&Work) -> T) -> Option<T> {
        self.state.lock().held.get(token).map(|h| f(&h.work))
    }

    /// Takes a held item out (a completion or an abandon arrived), freeing its stream slot.
    pub fn take(&self, token: &str) -> Option<Work> {
        let mut state = self.state.lock();
        let held = state.held.remove(token)?;
        if let Place::Sent(id) = held.place
            && let Some(stream) = state.streams.get_mut(&id)
        {
            stream.busy[held.work.kind() as usize] -= 1;
        }
        drop(state);
        self.changed.notify_one();
        Some(held.work)
    }

    /// Records how many tasks a held turn has pending before its response.
    pub fn set_pending_tasks(&self, token: &str, pending: usize) {
        if let Some(Work::Turn(turn)) = self.state.lock().held.get_mut(token).map(|h| &mut h.work) {
            turn.pending_tasks = pending;
        }
    }

    /// Adds the actions of a partial response to a held turn. False if the token is not held.
    pub fn extend_partial(&self, token: &str, actions: Vec<Action>) -> bool {
        let mut state = self.state.lock();
        match state.held.get_mut(token).map(|h| &mut h.work) {
            Some(Work::Turn(turn)) => {
                turn.partial.extend(actions);
                true
            }
            _ => false,
        }
    }
}

impl Hub {
    /// The leases of everything held, to renew.
    pub fn leases(&self) -> Vec<(String, HeldLease)> {
        let state = self.state.lock();
        state
            .held
            .iter()
            .map(|(token, h)| {
                let lease = match &h.work {
                    Work::Turn(t) => HeldLease::Turn(t.item.lease.clone()),
                    Work::Entity(e) => HeldLease::Turn(e.item.lease.clone()),
                    Work::Activity(a) => HeldLease::Activity(a.lease.clone()),
                };
                (token.clone(), lease)
            })
            .collect()
    }

    /// Orphaned items whose grace period is over, removed (to be given back to the store).
    pub fn reap_orphans(&self) -> Vec<Work> {
        let mut state = self.state.lock();
        let expired: Vec<String> = state
            .held
            .iter()
            .filter(|(_, h)| matches!(h.place, Place::Orphaned(at) if at.elapsed() >= ORPHAN_GRACE))
            .map(|(t, _)| t.clone())
            .collect();
        expired
            .iter()
            .filter_map(|t| state.held.remove(t).map(|h| h.work))
            .collect()
    }
}

#[derive(Clone, Debug)]
pub(crate) enum HeldLease {
    Turn(Lease),
    Activity(ActivityLease),
}

/// One claim for turns and entity batches: the counts add up, and the names are those either
/// kind takes (an `Except` takes everything but the native names of both kinds).
fn merge(
    turns: (usize, NameFilter),
    entities: (usize, NameFilter),
    native: Vec<String>,
) -> (usize, NameFilter) {
    let free = turns.0 + entities.0;
    let filter = match (turns, entities) {
        ((0, _), (_, f)) | ((_, f), (0, _)) => match f {
            NameFilter::Except(_) => NameFilter::Except(native),
            only => only,
        },
        ((_, NameFilter::Only(mut a)), (_, NameFilter::Only(b))) => {
            a.extend(b);
            a.sort();
            a.dedup();
            NameFilter::Only(a)
        }
        _ => NameFilter::Except(native),
    };
    (free, filter)
}

/// Picks the least busy stream that accepts an item and takes one of its slots.
fn place(
    state: &mut State,
    kind: Kind,
    name: &str,
    version: Option<&str>,
) -> Option<(u64, WorkSender)> {
    let (id, stream) = state
        .streams
        .iter_mut()
        .filter(|(_, s)| s.free(kind) > 0 && s.accepts(kind, name, version))
        .min_by_key(|(_, s)| s.busy[kind as usize])?;
    stream.busy[kind as usize] += 1;
    Some((*id, stream.tx.clone()))
}

/// Splits a completion token into its kind, refusing tokens this server could never have made.
/// A well-formed token that is not held (already completed, re-dispatched, or from before a
/// restart) is *stale*, not malformed: callers answer it with OK.
pub(crate) fn parse_token(token: &str, expected: Kind) -> RpcResult<()> {
    let mut parts = token.split('.');
    let (Some(session), Some(kind), Some(n), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RpcError::bad(format!(
            "malformed completion token '{token}'"
        )));
    };
    let well_formed = session.len() == 8
        && session.chars().all(|c| c.is_ascii_hexdigit())
        && n.parse::<u64>().is_ok();
    if !well_formed || !matches!(kind, "o" | "a" | "e") {
        return Err(RpcError::bad(format!(
            "malformed completion token '{token}'"
        )));
    }
    if kind.starts_with(expected.letter()) {
        Ok(())
    } else {
        Err(RpcError::bad(format!(
            "completion token '{token}' belongs to another kind of work item"
        )))
    }
}

#[cfg(test)]
mod tests {
    use durable::MemoryStore;

    use super::*;

    fn hub() -> Hub {
        let mut native = Registry::new();
        native.add_orchestration("Native", |_ctx, ()| async { Ok::<_, durable::Error>(()) });
        native.add_entity("NativeCounter", |_ctx: &mut durable::EntityContext| {
            Ok::<_, durable::Error>(0)
        });
        Hub::new(MemoryStore::new(), &native, SidecarOptions::default())
    }

    fn request(filters: Option<proto::WorkItemFilters>) -> proto::GetWorkItemsRequest {
        proto::GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: 5,
            max_concurrent_activity_work_items: 7,
            max_concurrent_entity_work_items: 3,
            work_item_filters: filters,
            ..Default::default()
        }
    }

    #[test]
    fn fetch_plans_follow_the_streams_filters() {
        let hub = hub();
        assert!(hub.fetch_plan().is_none(), "no streams, no fetching");
        let filters = proto::WorkItemFilters {
            orchestrations: vec![
                proto::OrchestrationFilter {
                    name: "py_orch".into(),
                    versions: vec![],
                },
                proto::OrchestrationFilter {
                    name: "Native".into(),
                    versions: vec![],
                },
            ],
            activities: vec![],
            entities: vec![],
        };
        let (tx, _rx) = mpsc::channel(1);
        let picky = hub.connect(&request(Some(filters)), tx);
        let plan = hub.fetch_plan().unwrap();
        assert_eq!(
            plan.orchestrations,
            (5, NameFilter::Only(vec!["py_orch".into()])),
            "native names are never fetched"
        );
        assert_eq!(plan.activities, (0, NameFilter::Only(vec![])));
        let (tx, _rx2) = mpsc::channel(1);
        hub.connect(&request(None), tx);
        let plan = hub.fetch_plan().unwrap();
        assert_eq!(
            plan.orchestrations,
            (
                13,
                NameFilter::Except(vec!["Native".into(), "nativecounter".into()])
            ),
            "turns and entity batches are claimed together"
        );
        assert_eq!(plan.activities.0, 7);
        hub.disconnect(picky);
        assert_eq!(hub.fetch_plan().unwrap().orchestrations.0, 8);
    }

    #[test]
    fn entity_filters_select_entity_names_and_never_native_ones() {
        let hub = hub();
        let filters = proto::WorkItemFilters {
            orchestrations: vec![],
            activities: vec![],
            entities: vec![
                proto::EntityFilter {
                    name: "py_counter".into(),
                },
                proto::EntityFilter {
                    name: "nativecounter".into(),
                },
            ],
        };
        let (tx, _rx) = mpsc::channel(1);
        let id = hub.connect(&request(Some(filters)), tx);
        let plan = hub.fetch_plan().unwrap();
        assert_eq!(
            plan.orchestrations,
            (3, NameFilter::Only(vec!["py_counter".into()]))
        );
        let state = hub.state.lock();
        let stream = &state.streams[&id];
        assert!(stream.accepts(Kind::Entity, "py_counter", None));
        assert!(!stream.accepts(Kind::Entity, "other", None));
        assert!(!stream.accepts(Kind::Orchestration, "py_counter", None));
    }

    #[test]
    fn tokens_are_checked_for_shape_and_kind() {
        let hub = hub();
        let token = hub.mint_token(Kind::Activity);
        assert!(parse_token(&token, Kind::Activity).is_ok());
        assert!(parse_token(&token, Kind::Orchestration).is_err());
        let token = hub.mint_token(Kind::Entity);
        assert!(parse_token(&token, Kind::Entity).is_ok());
        assert!(parse_token(&token, Kind::Activity).is_err());
        assert!(parse_token("", Kind::Activity).is_err());
        assert!(parse_token("abc.a.1", Kind::Activity).is_err());
        assert!(parse_token("0123abcd.a.x", Kind::Activity).is_err());
        assert!(
            parse_token("0123abcd.a.12", Kind::Activity).is_ok(),
            "stale but well-formed"
        );
    }
}
