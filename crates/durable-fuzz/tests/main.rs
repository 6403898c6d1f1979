//! Runs every fuzz target over its committed seed corpus (`fuzz/corpus/<target>/`) and a fixed
//! number of deterministic mutations of it, on stable, in every CI run. The long tier runs the
//! same targets under libFuzzer (`docs/hostile-input.md`).

use std::path::PathBuf;
use std::time::Instant;

use durable_fuzz::{Rng, TARGETS, mutate};

/// Mutations per target; `DURABLE_FUZZ_MUTATIONS` raises it for a longer local run.
const MUTATIONS: usize = 200_000;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3, "{target}: the corpus needs seeds");
    seeds
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    let mutations = std::env::var("DURABLE_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTATIONS);
    for (index, (name, target)) in TARGETS.iter().enumerate() {
        let seeds = corpus(name);
        let started = Instant::now();
        for (_, seed) in &seeds {
            target(seed);
        }
        let rng_seed = 0x5eed_0000 + index as u64;
        let mut rng = Rng::new(rng_seed);
        for round in 0..mutations {
            let (seed_name, seed) = &seeds[round % seeds.len()];
            let donor = &seeds[rng.below(seeds.len())].1;
            let input = mutate(&mut rng, seed, donor);
            let outcome = std::panic::catch_unwind(|| target(&input));
            assert!(
                outcome.is_ok(),
                "{name}: mutation round {round} of seed {seed_name} (rng seed {rng_seed:#x}) \
                 panicked on {input:?}"
            );
        }
        println!(
            "fuzz corpus: {name}: {} seeds + {mutations} mutations in {:.2} s",
            seeds.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn every_target_has_a_libfuzzer_wrapper() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for (name, _) in TARGETS {
        let path = dir.join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            text.contains(&format!("durable_fuzz::{name}")),
            "{}",
            path.display()
        );
    }
}
