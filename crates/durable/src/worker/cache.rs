//! A bounded cache of live orchestrations, so a busy instance is not replayed from scratch on
//! every turn. Least recently used entries are evicted first, and entries left unused for the
//! idle timeout go too.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use durable_core::Replayer;
use parking_lot::Mutex;

/// A replayer and the history position it has reached.
#[derive(Debug)]
pub(crate) struct Live {
    pub replayer: Replayer,
    pub execution_id: String,
    pub history_len: u32,
}

#[derive(Debug, Default)]
struct Inner {
    /// Boxed, so the table of up to `capacity` entries holds pointers, not replayers.
    entries: HashMap<String, (Box<Live>, u64)>,
    /// Least recently used first: tick, instance id and when it was put.
    order: BTreeMap<u64, (String, Instant)>,
    tick: u64,
}

#[derive(Debug)]
pub(crate) struct Cache {
    capacity: usize,
    /// Entries unused this long are dropped: an instance that waits for days holds no memory.
    idle_timeout: Option<Duration>,
    inner: Mutex<Inner>,
}

impl Cache {
    pub fn new(capacity: usize, idle_timeout: Option<Duration>) -> Self {
        Cache {
            capacity,
            idle_timeout,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Takes the entry out if it is at exactly this execution and history position; a stale
    /// entry (another worker ran turns meanwhile) is dropped.
    pub fn take(&self, instance_id: &str, execution_id: &str, history_len: u32) -> Option<Live> {
        let mut inner = self.inner.lock();
        let (live, tick) = inner.entries.remove(instance_id)?;
        inner.order.remove(&tick);
        (live.execution_id == execution_id && live.history_len == history_len).then_some(*live)
    }

    pub fn remove(&self, instance_id: &str) {
        let mut inner = self.inner.lock();
        if let Some((_, tick)) = inner.entries.remove(instance_id) {
            inner.order.remove(&tick);
        }
    }

    pub fn put(&self, instance_id: String, live: Live) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((_, old)) = inner
            .entries
            .insert(instance_id.clone(), (Box::new(live), tick))
        {
            inner.order.remove(&old);
        }
        inner.order.insert(tick, (instance_id, Instant::now()));
        while inner.entries.len() > self.capacity {
            let Some((_, (oldest, _))) = inner.order.pop_first() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
    }

    /// Drops the entries unused for longer than the idle timeout.
    pub fn expire(&self) {
        let Some(timeout) = self.idle_timeout else {
            return;
        };
        let inner = &mut *self.inner.lock();
        while let Some(oldest) = inner.order.first_entry()
            && oldest.get().1.elapsed() >= timeout
        {
            let (id, _) = oldest.remove();
            inner.entries.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }
}
