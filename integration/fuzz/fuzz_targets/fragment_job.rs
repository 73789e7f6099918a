#![no_main]
// What it checks: fastdl_fuzz::fragment_job (integration/fuzz/src/lib.rs).
libfuzzer_sys::fuzz_target!(|text: &str| fastdl_fuzz::fragment_job(text));
