//! Listing entities with filters the store cannot apply (state, last operation time).

use chrono::{DateTime, Utc};
use durable_core::entity::{EntityId, EntityState};
use durable_core::instance::{InstanceQuery, Page, encode_cursor};

use crate::{Client, ClientResult};

/// Default page size of an entity listing.
const DEFAULT_PAGE_SIZE: usize = 100;

/// Store pages one listing reads at most before it answers with what it found: a filter that
/// matches rarely yields a short page (with a continuation token) instead of a long scan.
const MAX_SCANNED_PAGES: usize = 10;

/// Which entities [`Client::list_entities`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityQuery {
    /// Only entities of this name (any letter case).
    pub name: Option<String>,
    /// Also entities without state (never set, or deleted).
    pub include_stateless: bool,
    /// Last operation at or after.
    pub last_modified_from: Option<DateTime<Utc>>,
    /// Last operation before.
    pub last_modified_to: Option<DateTime<Utc>>,
    /// Page size; `None` means 100.
    pub page_size: Option<usize>,
    /// The cursor returned with the previous page.
    pub continuation_token: Option<String>,
}

impl EntityQuery {
    fn matches(&self, entity: &EntityState) -> bool {
        (self.include_stateless || entity.state.is_some())
            && self
                .last_modified_from
                .is_none_or(|t| entity.last_modified >= t)
            && self
                .last_modified_to
                .is_none_or(|t| entity.last_modified < t)
    }
}

impl Client {
    /// One page of the entities matching `query`, in creation order. Pages are full (of
    /// `page_size` entities) unless the listing ends or a rare filter made the scan stop early;
    /// either way a continuation token is returned while more may match.
    pub async fn list_entities(&self, query: &EntityQuery) -> ClientResult<Page<EntityState>> {
        let size = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
        let mut items = Vec::new();
        let mut cursor = query.continuation_token.clone();
        for _ in 0..MAX_SCANNED_PAGES {
            let scan = InstanceQuery {
                instance_id_prefix: query
                    .name
                    .as_deref()
                    .map(|n| EntityId::new(n, "").to_string()),
                page_size: Some(size),
                continuation_token: cursor.clone(),
                fetch_payloads: true,
                entities: Some(true),
                ..Default::default()
            };
            let page = self.query(&scan).await?;
            let more_pages = page.continuation_token.is_some();
            let scanned = page.items.len();
            for (i, instance) in page.items.into_iter().enumerate() {
                cursor = Some(encode_cursor(instance.created_at, &instance.instance_id));
                if let Some(entity) = EntityState::of(&instance).filter(|e| query.matches(e)) {
                    items.push(entity);
                }
                if items.len() == size {
                    let more = more_pages || i + 1 < scanned;
                    return Ok(Page {
                        items,
                        continuation_token: cursor.filter(|_| more),
                    });
                }
            }
            if !more_pages {
                return Ok(Page {
                    items,
                    continuation_token: None,
                });
            }
        }
        Ok(Page {
            items,
            continuation_token: cursor,
        })
    }
}
