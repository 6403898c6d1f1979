//! `GetWorkItems`: one server stream per connected worker, kept alive with health pings.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::Hub;
use crate::proto;

/// Items buffered per stream; backpressure beyond that is HTTP/2 flow control's job.
const BUFFER: usize = 16;

pub(crate) fn open(
    hub: &Arc<Hub>,
    request: &proto::GetWorkItemsRequest,
) -> ReceiverStream<Result<proto::WorkItem, Status>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    let id = hub.connect(request, tx.clone());
    tracing::info!(
        stream = id,
        filters = request.work_item_filters.is_some(),
        "remote worker connected"
    );
    let hub = hub.clone();
    tokio::spawn(async move {
        let every = hub.options.health_ping_interval;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut shutdown = hub.shutdown_signal();
        loop {
            tokio::select! {
                _ = tx.closed() => break,
                _ = shutdown.changed() => break,
                _ = ping.tick() => {
                    // A full buffer means the stream is busy, not idle: no ping needed.
                    let _ = tx.try_send(Ok(health_ping()));
                }
            }
        }
        drop(tx);
        let released = hub.disconnect(id);
        tracing::info!(stream = id, "remote worker disconnected");
        for work in released {
            hub.decline(work, None).await;
        }
    });
    ReceiverStream::new(rx)
}

fn health_ping() -> proto::WorkItem {
    proto::WorkItem {
        request: Some(proto::work_item::Request::HealthPing(proto::HealthPing {})),
        completion_token: String::new(),
    }
}
