#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| durable_fuzz::http_query(data));
