//! Every input kept in `regressions/<target>/` (each one a crash a fuzz run found, or a
//! seed worth keeping) runs through its target on every `cargo test`.

use std::path::Path;

#[test]
fn every_kept_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut ran = 0;
    for (name, target) in fuzz_targets::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target keeps its inputs)", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            eprintln!("{name}: {}", path.display());
            target(&data);
            ran += 1;
        }
    }
    assert!(ran >= fuzz_targets::TARGETS.len(), "each target keeps at least one input");
}

/// Each directory under `regressions/` is a target's, and each target has one.
#[test]
fn the_kept_inputs_name_real_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut dirs: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> =
        fuzz_targets::TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(dirs, names);
}
