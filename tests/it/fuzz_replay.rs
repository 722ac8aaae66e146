//! Replays the fuzz corpus (`fuzz/corpus/<target>/`: seeds from the real
//! samples and every input a campaign found new coverage or a crash with)
//! through the fuzz targets' own code, on stable: a finding stays fixed.

#[path = "../../fuzz/targets.rs"]
mod targets;

#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    let root = crate::common::repo().join("fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in targets::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{} has no inputs", dir.display());
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(result.is_ok(), "{} panics on {}", name, input.display());
            replayed += 1;
        }
    }
    eprintln!("{replayed} corpus inputs replayed");
}
