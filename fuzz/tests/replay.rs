//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and every input that
//! once crashed a target (`fuzz/regressions/<target>/`) through the targets, on
//! stable, in the ordinary test command. It does not fuzz: scripts/fuzz.sh does.

use std::fs;
use std::path::{Path, PathBuf};

use sealant_fuzz::{TARGETS, Target};

/// The files of `fuzz/<dir>/<target>/`, sorted; none when the directory is missing.
fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
    let Ok(entries) = fs::read_dir(&path) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(dir: &str, target: &str, run: Target) -> usize {
    let files = inputs(dir, target);
    for file in &files {
        let data = fs::read(file).expect("a corpus file reads");
        // A panic names the target; the file is in the test's output above it.
        eprintln!("{target}: {}", file.display());
        run(&data);
    }
    files.len()
}

#[test]
fn every_committed_corpus_input_runs_through_its_target_without_a_panic() {
    for &(target, run) in TARGETS {
        let n = replay("corpus", target, run);
        // A missing or emptied corpus would make this test pass while testing nothing.
        assert!(
            n >= 10,
            "the corpus of {target} has {n} inputs; run scripts/fuzz.sh and commit it"
        );
    }
}

#[test]
fn every_input_that_once_crashed_a_target_now_runs_clean() {
    for &(target, run) in TARGETS {
        replay("regressions", target, run);
    }
}

#[test]
fn every_target_has_a_corpus_directory_and_every_directory_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("an entry");
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{dir}/{name} belongs to no target"
            );
        }
    }
}
