//! Pipelined statements: every request of a transaction is sent before any answer is awaited,
//! so a commit costs one round trip however many statements it runs.
//!
//! The driver sends a request when its future is first polled; [`run`] polls the futures in
//! order, so the requests leave in order, `COMMIT` last. Once sent they run even if the caller
//! stops waiting, so a transaction is never left open on a pooled connection.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Error, Row, Statement};

/// One statement of a pipeline.
pub(crate) type Step<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, Error>> + Send + 'a>>;

/// A prepared statement with its arguments; both move into the step.
pub(crate) fn step<'a>(
    client: &'a Client,
    statement: Statement,
    params: Vec<&'a (dyn ToSql + Sync)>,
) -> Step<'a> {
    Box::pin(async move { client.query(&statement, &params).await })
}

pub(crate) fn begin(client: &Client) -> Step<'_> {
    Box::pin(async move { client.batch_execute("BEGIN").await.map(|()| Vec::new()) })
}

pub(crate) fn commit(client: &Client) -> Step<'_> {
    Box::pin(async move { client.batch_execute("COMMIT").await.map(|()| Vec::new()) })
}

/// Runs the steps; returns each step's rows, or the first error (later steps of a failed
/// transaction only report that it was aborted).
pub(crate) async fn run(steps: Vec<Step<'_>>) -> Result<Vec<Vec<Row>>, Error> {
    let mut pending: Vec<Option<Step<'_>>> = steps.into_iter().map(Some).collect();
    let mut results: Vec<Option<Result<Vec<Row>, Error>>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(step) = slot {
                match step.as_mut().poll(cx) {
                    Poll::Ready(r) => {
                        *result = Some(r);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every step finished"))
        .collect()
}
