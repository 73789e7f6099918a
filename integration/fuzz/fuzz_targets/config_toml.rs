#![no_main]
// What it checks: fastdl_fuzz::config_toml (integration/fuzz/src/lib.rs).
libfuzzer_sys::fuzz_target!(|text: &str| fastdl_fuzz::config_toml(text));
