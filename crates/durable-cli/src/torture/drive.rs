//! Drives the workload over HTTP while the child is killed: starts and events are retried
//! until the server acknowledges them, and the acknowledged ones are recorded for the checks.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use anyhow::{Result, bail};

use super::workload::{EVENT, MIX, MixInput};
use crate::api::{Api, ApiError};

/// What the server acknowledged: instance id → the event data it accepted for it.
#[derive(Debug, Default)]
pub struct Acks {
    pub started: Vec<(String, u64)>,
    pub events: BTreeMap<String, u64>,
    /// Requests answered with an error or not at all, then sent again.
    pub retries: u64,
}

/// One planned instance: its id, the `n` of its input and the data of its event.
#[derive(Clone, Debug)]
pub struct Planned {
    pub id: String,
    pub n: u64,
    pub event: u64,
}

/// A small seeded generator (SplitMix64): the same seed gives the same run plan.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

pub fn plan(instances: u32, rng: &mut Rng) -> Vec<Planned> {
    (0..instances)
        .map(|i| Planned {
            id: format!("torture-{i:05}"),
            n: rng.between(0, 1_000),
            event: rng.between(1, 1_000_000),
        })
        .collect()
}

/// Whether a failed request is worth sending again: no answer (the server was killed) or a
/// server error (its store was interrupted). A 4xx is a real refusal.
fn retryable(error: &anyhow::Error) -> bool {
    match error.downcast_ref::<ApiError>() {
        Some(e) => e.status.is_server_error(),
        None => true,
    }
}

const RETRY: Duration = Duration::from_millis(50);
const GIVE_UP: Duration = Duration::from_secs(120);

/// Starts `p`; a 409 after an unanswered attempt means that attempt was recorded.
async fn start(api: &Api, p: &Planned, shape: MixInput, acks: &mut Acks) -> Result<()> {
    let input = serde_json::to_string(&MixInput { n: p.n, ..shape })?;
    let began = std::time::Instant::now();
    let mut tried = false;
    loop {
        match api.start(MIX, Some(&p.id), Some(&input)).await {
            Ok(_) => break,
            Err(e) => {
                let conflict = e
                    .downcast_ref::<ApiError>()
                    .is_some_and(|a| a.status == reqwest::StatusCode::CONFLICT);
                if conflict && tried {
                    break;
                }
                if !retryable(&e) || began.elapsed() > GIVE_UP {
                    bail!("start of {} refused: {e:#}", p.id);
                }
            }
        }
        tried = true;
        acks.retries += 1;
        tokio::time::sleep(RETRY).await;
    }
    acks.started.push((p.id.clone(), p.event));
    Ok(())
}

async fn raise(api: &Api, p: &Planned, acks: &mut Acks) -> Result<()> {
    let data = p.event.to_string();
    let began = std::time::Instant::now();
    loop {
        match api.raise(&p.id, EVENT, Some(&data)).await {
            Ok(_) => break,
            Err(e) if retryable(&e) && began.elapsed() < GIVE_UP => {}
            Err(e) => bail!("event for {} refused: {e:#}", p.id),
        }
        acks.retries += 1;
        tokio::time::sleep(RETRY).await;
    }
    acks.events.insert(p.id.clone(), p.event);
    Ok(())
}

/// Starts one instance every `every` and raises each one's event `event_after` later, so work
/// is in flight at every kill and events arrive while their instances run.
pub async fn drive(
    api: Api,
    planned: Vec<Planned>,
    every: Duration,
    event_after: Duration,
    shape: MixInput,
) -> Result<Acks> {
    let mut acks = Acks::default();
    let began = tokio::time::Instant::now();
    let mut waiting: VecDeque<(tokio::time::Instant, &Planned)> = VecDeque::new();
    for (i, p) in planned.iter().enumerate() {
        tokio::time::sleep_until(began + every * i as u32).await;
        start(&api, p, shape, &mut acks).await?;
        waiting.push_back((tokio::time::Instant::now() + event_after, p));
        while let Some((due, p)) = waiting.front().copied() {
            if due > tokio::time::Instant::now() {
                break;
            }
            raise(&api, p, &mut acks).await?;
            waiting.pop_front();
        }
    }
    for (due, p) in waiting {
        tokio::time::sleep_until(due).await;
        raise(&api, p, &mut acks).await?;
    }
    Ok(acks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_plan() {
        let a = plan(5, &mut Rng::new(7));
        let b = plan(5, &mut Rng::new(7));
        let c = plan(5, &mut Rng::new(8));
        let key = |v: &[Planned]| v.iter().map(|p| (p.n, p.event)).collect::<Vec<_>>();
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
        assert_eq!(a[4].id, "torture-00004");
        let mut rng = Rng::new(1);
        assert!(
            (0..1000)
                .map(|_| rng.between(3, 5))
                .all(|x| (3..=5).contains(&x))
        );
    }
}
