#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| durable_fuzz::history_row(data));
