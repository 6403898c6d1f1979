//! Replay engine tests, driven by a small single-instance simulator that uses the real planner.
//! Every run also replays its final history cold and checks it reproduces the same ending.

mod engine;
mod nondeterminism;
mod sim;
