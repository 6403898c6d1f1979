//! The seed's patterns, run through the examples' own code.

use crate::sqlite_store;

#[allow(dead_code)]
#[path = "../../../examples/approval.rs"]
mod approval;
#[allow(dead_code)]
#[path = "../../../examples/chaining.rs"]
mod chaining;
#[allow(dead_code)]
#[path = "../../../examples/counter.rs"]
mod counter;
#[allow(dead_code)]
#[path = "../../../examples/fan_out_fan_in.rs"]
mod fan_out_fan_in;

#[tokio::test]
async fn chaining_feeds_each_output_to_the_next() {
    let output = chaining::run(sqlite_store(), "start").await.unwrap();
    assert_eq!(output, "start,F1,F2,F3,F4");
}

#[tokio::test]
async fn fan_out_fan_in_sums_the_squares() {
    let sum = fan_out_fan_in::run(sqlite_store(), 10).await.unwrap();
    assert_eq!(sum, 385);
    let sum = fan_out_fan_in::run(sqlite_store(), 100).await.unwrap();
    assert_eq!(sum, (1..=100u64).map(|x| x * x).sum::<u64>());
}

#[tokio::test]
async fn counter_applies_operations_in_order() {
    let value = counter::run(sqlite_store(), &["incr", "incr", "incr", "decr", "end"])
        .await
        .unwrap();
    assert_eq!(value, 2);
}

#[tokio::test]
async fn approval_event_beats_a_72_hour_timer() {
    let output = approval::run(sqlite_store(), 72 * 3600, Some(true))
        .await
        .unwrap();
    assert_eq!(output, "approved");
    let output = approval::run(sqlite_store(), 72 * 3600, Some(false))
        .await
        .unwrap();
    assert_eq!(output, "rejected");
}

#[tokio::test]
async fn approval_escalates_when_the_timer_wins() {
    let output = approval::run(sqlite_store(), 1, None).await.unwrap();
    assert_eq!(output, "escalated");
}
