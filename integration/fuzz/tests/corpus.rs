//! Every committed corpus input (and every crash input kept as a regression) through its
//! target, on stable: `cargo test --manifest-path integration/fuzz/Cargo.toml --no-default-features`.
//! Inputs that are not UTF-8 are skipped, as libFuzzer's `&str` targets skip them.

#[test]
fn the_corpus_passes_every_target() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in fastdl_fuzz::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        let mut ran = 0;
        for entry in entries {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(text) = std::str::from_utf8(&bytes) {
                target(text);
                ran += 1;
            }
        }
        assert!(ran > 0, "{dir:?} holds no input");
    }
}
