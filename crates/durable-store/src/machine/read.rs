//! Read-only questions about the machine.

use std::collections::BTreeMap;
use std::ops::Bound;

use chrono::{DateTime, Utc};
use durable_core::instance::{InstanceQuery, InstanceState, Page, decode_cursor};
use durable_core::status::RuntimeStatus;
use durable_core::work::QueueStats;

use super::Machine;

impl Machine {
    pub fn get(&self, instance_id: &str) -> Option<InstanceState> {
        self.slots.get(instance_id).map(|s| s.state.clone())
    }

    pub fn history_len(&self, instance_id: &str) -> Option<u32> {
        self.slots.get(instance_id).map(|s| s.history_len)
    }

    /// Instances matching the query, in (created, id) order, one page.
    pub fn query(&self, q: &InstanceQuery) -> Page<InstanceState> {
        let start = match q.continuation_token.as_deref().and_then(decode_cursor) {
            Some(cursor) => Bound::Excluded(cursor),
            None => Bound::Unbounded,
        };
        let size = q.page_size.unwrap_or(100).max(1);
        let items: Vec<InstanceState> = self
            .by_created
            .range((start, Bound::Unbounded))
            .map(|(_, id)| &self.slots[id].state)
            .filter(|s| {
                q.entities
                    .is_none_or(|e| e == durable_core::entity::EntityId::is_entity(&s.instance_id))
            })
            .filter(|s| q.statuses.is_empty() || q.statuses.contains(&s.status))
            .filter(|s| q.created_from.is_none_or(|f| s.created_at >= f))
            .filter(|s| q.created_to.is_none_or(|t| s.created_at < t))
            .filter(|s| q.name.as_ref().is_none_or(|n| &s.name == n))
            .filter(|s| {
                q.instance_id_prefix
                    .as_ref()
                    .is_none_or(|p| s.instance_id.starts_with(p.as_str()))
            })
            .take(size + 1)
            .cloned()
            .collect();
        Page::of_instances(items, size, q.fetch_payloads)
    }

    /// The earliest future time at which an instance or an activity becomes claimable.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let later = now + chrono::Duration::nanoseconds(1);
        let instances = self
            .ready
            .range((later, String::new())..)
            .next()
            .map(|(at, _)| *at);
        let activities = self
            .activity_ready
            .range((later, i64::MIN)..)
            .next()
            .map(|(at, _)| *at);
        instances.into_iter().chain(activities).min()
    }

    pub fn stats(&self, now: DateTime<Utc>) -> QueueStats {
        let mut stats = QueueStats::default();
        for (at, _) in self.ready.iter().take_while(|(at, _)| *at <= now) {
            stats.orchestration_backlog += 1;
            let oldest = stats.oldest_orchestration_message_at.get_or_insert(*at);
            *oldest = (*oldest).min(*at);
        }
        for (at, key) in self.activity_ready.iter().take_while(|(at, _)| *at <= now) {
            let owner = &self.activity_owner[key];
            if self.slots[owner].activities[key].locked_until.is_none() {
                stats.activity_backlog += 1;
                let oldest = stats.oldest_activity_at.get_or_insert(*at);
                *oldest = (*oldest).min(*at);
            }
        }
        let mut by_status: BTreeMap<RuntimeStatus, u64> = BTreeMap::new();
        for (id, slot) in &self.slots {
            if durable_core::entity::EntityId::is_entity(id) {
                stats.entities += 1;
            } else {
                *by_status.entry(slot.state.status).or_default() += 1;
            }
            stats.pending_timers +=
                slot.inbox.values().filter(|m| m.visible_at > now).count() as u64;
        }
        stats.instances_by_status = by_status.into_iter().collect();
        stats
    }
}
