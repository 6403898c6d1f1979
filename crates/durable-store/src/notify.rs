//! In-process wake-ups: dispatchers wait on them instead of polling.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Signals from a store to the dispatchers and status watchers of this process.
#[derive(Debug, Default)]
pub struct Notifier {
    orchestrations: Notify,
    activities: Notify,
    listeners: Mutex<Vec<Weak<WorkListener>>>,
    watchers: Mutex<HashMap<String, Weak<Notify>>>,
}

/// Work signals for one more dispatcher of this process (the gRPC sidecar next to a native
/// worker): every listener receives every signal, with the same keep-if-nobody-waits rule.
#[derive(Debug, Default)]
pub struct WorkListener {
    orchestrations: Notify,
    activities: Notify,
}

impl WorkListener {
    pub async fn wait_orchestration_work(&self) {
        self.orchestrations.notified().await
    }

    pub async fn wait_activity_work(&self) {
        self.activities.notified().await
    }
}

impl Notifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// New orchestration work may be visible (now or at a later time).
    pub fn orchestration_work(&self) {
        self.orchestrations.notify_one();
        self.each_listener(|l| l.orchestrations.notify_one());
    }

    pub fn activity_work(&self) {
        self.activities.notify_one();
        self.each_listener(|l| l.activities.notify_one());
    }

    /// Registers another dispatcher for work signals; it stops receiving them when the returned
    /// handle is dropped. The default wait methods below keep serving the native worker.
    pub fn listen(&self) -> Arc<WorkListener> {
        let listener = Arc::new(WorkListener::default());
        let mut listeners = self.listeners.lock();
        listeners.retain(|l| l.strong_count() > 0);
        listeners.push(Arc::downgrade(&listener));
        listener
    }

    fn each_listener(&self, signal: impl Fn(&WorkListener)) {
        let listeners = self.listeners.lock();
        for listener in listeners.iter().filter_map(Weak::upgrade) {
            signal(&listener);
        }
    }

    /// Waits until orchestration work is signalled. A signal sent while nobody waits is kept,
    /// so work is never missed between a fetch and the wait.
    pub async fn wait_orchestration_work(&self) {
        self.orchestrations.notified().await
    }

    pub async fn wait_activity_work(&self) {
        self.activities.notified().await
    }

    /// A handle that is notified whenever the instance's status changes. Keep it while waiting;
    /// create the `notified()` future before checking the status, then await it.
    pub fn watch(&self, instance_id: &str) -> Arc<Notify> {
        let mut watchers = self.watchers.lock();
        if let Some(existing) = watchers.get(instance_id).and_then(Weak::upgrade) {
            return existing;
        }
        watchers.retain(|_, w| w.strong_count() > 0);
        let notify = Arc::new(Notify::new());
        watchers.insert(instance_id.to_string(), Arc::downgrade(&notify));
        notify
    }

    /// Tells the watchers of `instance_id` that its status changed.
    pub fn instance_changed(&self, instance_id: &str) {
        let watcher = self
            .watchers
            .lock()
            .get(instance_id)
            .and_then(Weak::upgrade);
        if let Some(n) = watcher {
            n.notify_waiters();
        }
    }

    /// Tells every watcher to re-check (used when changes come from another process).
    pub fn all_changed(&self) {
        let all: Vec<_> = self
            .watchers
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for n in all {
            n.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_listener_gets_every_signal() {
        let notifier = Notifier::new();
        let a = notifier.listen();
        let b = notifier.listen();
        // Sent before anybody waits: kept for each listener and for the native dispatcher.
        notifier.orchestration_work();
        let quick = Duration::from_millis(100);
        tokio::time::timeout(quick, a.wait_orchestration_work())
            .await
            .unwrap();
        tokio::time::timeout(quick, b.wait_orchestration_work())
            .await
            .unwrap();
        tokio::time::timeout(quick, notifier.wait_orchestration_work())
            .await
            .unwrap();
        drop(b);
        notifier.activity_work();
        tokio::time::timeout(quick, a.wait_activity_work())
            .await
            .unwrap();
        assert_eq!(notifier.listeners.lock().len(), 2);
        let _c = notifier.listen();
        assert_eq!(
            notifier.listeners.lock().len(),
            2,
            "dead listeners are pruned"
        );
    }
}
