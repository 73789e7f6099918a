#![no_main]
// What it checks: fastdl_fuzz::info_json (integration/fuzz/src/lib.rs).
libfuzzer_sys::fuzz_target!(|text: &str| fastdl_fuzz::info_json(text));
