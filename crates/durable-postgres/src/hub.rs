//! One task hub's SQL. Statements are written with `{hub}` where the schema goes; each is
//! filled in once and kept, so the driver's statement cache sees the same text every time.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

#[derive(Debug)]
pub(crate) struct Hub {
    schema: String,
    channel: String,
    filled: Mutex<HashMap<&'static str, Arc<str>>>,
}

impl Hub {
    /// `schema` must be a validated plain identifier (see `options.rs`): it is not quoted.
    pub fn new(schema: &str) -> Self {
        Hub {
            schema: schema.to_string(),
            channel: format!("durable:{schema}"),
            filled: Mutex::new(HashMap::new()),
        }
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The LISTEN/NOTIFY channel of the hub.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The statement with the hub's schema in place of `{hub}`.
    pub fn sql(&self, template: &'static str) -> Arc<str> {
        self.filled
            .lock()
            .entry(template)
            .or_insert_with(|| template.replace("{hub}", &self.schema).into())
            .clone()
    }
}
