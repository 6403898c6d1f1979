//! Pipelined transactions: every statement is sent before any answer is awaited, so a commit
//! costs one round trip however many statements it runs.
//!
//! The driver sends a request when its future is first polled; [`transaction`] polls the
//! futures in order, so `BEGIN`, the statements and `COMMIT` leave in that order within one
//! poll. Once sent they run even if the caller stops waiting, so a transaction is never left
//! open on a pooled connection. A statement the server rejects aborts the transaction, which
//! turns `COMMIT` into a rollback; one the driver could not even send (a value that did not
//! encode) makes us send `ROLLBACK` instead of `COMMIT`.

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

fn simple<'a>(client: &'a Client, sql: &'static str) -> Step<'a> {
    Box::pin(async move { client.batch_execute(sql).await.map(|()| Vec::new()) })
}

/// Polls the unfinished steps once; returns whether all have finished.
fn poll_steps(
    steps: &mut [Option<Step<'_>>],
    results: &mut [Option<Result<Vec<Row>, Error>>],
    cx: &mut std::task::Context<'_>,
) -> bool {
    let mut done = true;
    for (slot, result) in steps.iter_mut().zip(results.iter_mut()) {
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
    done
}

/// Runs the statements in one transaction; returns each statement's rows, or the first error
/// (later statements of a failed transaction only report that it was aborted).
pub(crate) async fn transaction<'a>(
    client: &'a Client,
    statements: Vec<Step<'a>>,
) -> Result<Vec<Vec<Row>>, Error> {
    let mut steps: Vec<Option<Step<'a>>> = vec![Some(simple(client, "BEGIN"))];
    steps.extend(statements.into_iter().map(Some));
    let mut results: Vec<Option<Result<Vec<Row>, Error>>> = Vec::new();
    results.resize_with(steps.len(), || None);
    let mut end: [Option<Step<'a>>; 1] = [None];
    let mut end_result: [Option<Result<Vec<Row>, Error>>; 1] = [None];
    let mut started = false;
    std::future::poll_fn(|cx| {
        let steps_done = poll_steps(&mut steps, &mut results, cx);
        if !started {
            // Every statement has been sent by now, or failed before it could be.
            started = true;
            let unsent = results.iter().any(|r| matches!(r, Some(Err(_))));
            end[0] = Some(simple(client, if unsent { "ROLLBACK" } else { "COMMIT" }));
        }
        let end_done = poll_steps(&mut end, &mut end_result, cx);
        if steps_done && end_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    let [end_result] = end_result;
    let mut rows = results
        .into_iter()
        .chain([end_result])
        .map(|r| r.expect("every step finished"))
        .collect::<Result<Vec<_>, _>>()?;
    rows.pop(); // COMMIT
    rows.remove(0); // BEGIN
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connect() -> Client {
        let url = std::env::var("DURABLE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let config: tokio_postgres::Config = url.parse().unwrap();
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    async fn count(client: &Client) -> i64 {
        client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_statement_that_cannot_be_sent_rolls_the_transaction_back() {
        let client = connect().await;
        client
            .batch_execute("CREATE TEMP TABLE t (n integer)")
            .await
            .unwrap();
        let insert = client.prepare("INSERT INTO t VALUES ($1)").await.unwrap();
        let (good, wrong_type): (i32, i64) = (1, 2);
        let steps = vec![
            step(&client, insert.clone(), vec![&good]),
            step(&client, insert.clone(), vec![&wrong_type]),
            step(&client, insert.clone(), vec![&good]),
        ];
        assert!(transaction(&client, steps).await.is_err());
        assert_eq!(count(&client).await, 0, "rolled back, not committed");

        let rejected = client
            .prepare("INSERT INTO t VALUES ($1 / 0)")
            .await
            .unwrap();
        let steps = vec![
            step(&client, insert.clone(), vec![&good]),
            step(&client, rejected, vec![&good]),
        ];
        let err = transaction(&client, steps).await.unwrap_err();
        assert!(err.to_string().contains("db error"), "{err}");
        assert_eq!(count(&client).await, 0, "the server aborted it");

        let steps = vec![step(&client, insert.clone(), vec![&good])];
        assert_eq!(transaction(&client, steps).await.unwrap().len(), 1);
        assert_eq!(count(&client).await, 1, "no transaction was left open");
    }
}
