//! Known-answer vectors made by an independent implementation (Python `cryptography`,
//! `testdata/gen_vectors.py`): blobs we did not seal must open, or fail, exactly as the
//! case file says. Every failure must be the one coarse [`Error::Decrypt`].
//!
//! Each behaviour has its own test, and each test first checks that it found enough
//! cases, so an empty or half-deleted `testdata/cases/` fails instead of passing.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Case, Expected};
use sealant_keys::{Error, KeyRing, OffsetDateTime, PrivateKey, Scope, hybrid};

/// Fewer cases than this means the test data went missing.
const MIN_CASES: usize = 30;

const BEHAVIOURS: [&str; 5] = [
    "roundtrip",
    "label-mismatch",
    "wrong-key",
    "malformed",
    "tampered",
];

fn keys() -> BTreeMap<String, PrivateKey> {
    common::key_manifest()
        .into_keys()
        .map(|name| {
            let key = common::key(&name);
            (name, key)
        })
        .collect()
}

fn ring_of<'a>(keys: impl IntoIterator<Item = &'a PrivateKey>) -> KeyRing {
    let mut ring = KeyRing::new();
    for key in keys {
        assert!(ring.insert(key.clone(), OffsetDateTime::UNIX_EPOCH));
    }
    ring
}

/// The cases of one behaviour, checked to be plenty and of the expected outcome.
fn cases_of(behaviour: &str, min: usize, expected: Expected) -> Vec<Case> {
    let cases: Vec<Case> = common::cases()
        .into_iter()
        .filter(|c| c.behaviour == behaviour)
        .collect();
    assert!(
        cases.len() >= min,
        "only {} {behaviour} cases in testdata/cases, expected at least {min}",
        cases.len()
    );
    for case in &cases {
        assert_eq!(
            case.expected, expected,
            "{}: unexpected outcome for {behaviour}",
            case.file
        );
    }
    cases
}

/// Asserts that a must-fail case fails with exactly `Error::Decrypt`, through one key
/// and through `ring`.
fn assert_fails(case: &Case, key: &PrivateKey, ring: &KeyRing) {
    let label = case.label();
    match hybrid::open(key, &case.blob, &label) {
        Err(Error::Decrypt) => {}
        Err(other) => panic!(
            "{} ({}): wrong error {other:?}",
            case.file, case.description
        ),
        Ok(_) => panic!("{} ({}): opened but must fail", case.file, case.description),
    }
    for hint in [None, Some(key.fingerprint())] {
        match ring.open(&case.blob, &label, hint) {
            Err(Error::Decrypt) => {}
            Err(other) => panic!("{}: key ring gave {other:?}", case.file),
            Ok(_) => panic!("{} ({}): key ring opened it", case.file, case.description),
        }
    }
}

#[test]
fn case_files_cover_every_behaviour_and_scope() {
    let cases = common::cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} case files loaded",
        cases.len()
    );
    let keys = common::key_manifest();
    let mut ok_scopes = BTreeSet::new();
    for case in &cases {
        assert!(
            BEHAVIOURS.contains(&case.behaviour.as_str()),
            "{}: unknown behaviour",
            case.file
        );
        assert!(
            keys.contains_key(&case.key),
            "{}: unknown key {}",
            case.file,
            case.key
        );
        assert!(
            !case.description.is_empty(),
            "{}: no description",
            case.file
        );
        if case.expected == Expected::Ok {
            ok_scopes.insert(case.scope.as_str());
        }
    }
    for scope in Scope::ALL {
        assert!(
            ok_scopes.contains(scope.as_str()),
            "no round-trip case for {scope}"
        );
    }
    let fail_scopes: BTreeSet<_> = cases
        .iter()
        .filter(|c| c.behaviour == "label-mismatch")
        .map(|c| c.scope.as_str())
        .collect();
    assert_eq!(
        fail_scopes.len(),
        3,
        "label-mismatch cases must open under every scope"
    );
}

#[test]
fn vector_keys_load_with_the_fingerprints_python_computed() {
    let manifest = common::key_manifest();
    assert!(manifest.len() >= 4, "keys.json lists too few keys");
    let mut encodings = BTreeSet::new();
    for (name, info) in &manifest {
        let key = common::key(name);
        assert_eq!(key.fingerprint().as_str(), info.fingerprint, "{name}");
        assert_eq!(key.size_bytes() * 8, info.bits, "{name}");
        let cert = common::cert(name);
        assert!(
            cert.matches(&key),
            "{name}: certificate does not carry the key"
        );
        assert_eq!(cert.fingerprint().as_str(), info.fingerprint, "{name}");
        assert_eq!(cert.public_key().bits(), info.bits, "{name}");
        encodings.insert(info.encoding.as_str());
    }
    assert_eq!(
        encodings,
        BTreeSet::from(["pkcs1", "pkcs8"]),
        "both PEM encodings are covered"
    );
}

#[test]
fn blobs_sealed_by_python_open_to_the_recorded_plaintext() {
    let keys = keys();
    let ring = ring_of(keys.values());
    let cases = cases_of("roundtrip", 10, Expected::Ok);
    assert!(
        cases.iter().any(|c| c.plaintext.is_empty()),
        "an empty value is covered"
    );
    assert!(
        cases.iter().any(|c| c.plaintext.len() >= 64 * 1024),
        "a 64 KiB value is covered"
    );
    assert!(
        cases
            .iter()
            .any(|c| std::str::from_utf8(&c.plaintext).is_err()),
        "a non-UTF-8 value is covered"
    );
    for case in &cases {
        let key = &keys[&case.key];
        let label = case.label();
        let opened = hybrid::open(key, &case.blob, &label)
            .unwrap_or_else(|e| panic!("{} ({}): {e:?}", case.file, case.description));
        assert!(
            opened.expose_secret() == case.plaintext.as_slice(),
            "{}: plaintext differs ({} bytes, expected {})",
            case.file,
            opened.len(),
            case.plaintext.len()
        );
        let via_ring = ring
            .open(&case.blob, &label, None)
            .unwrap_or_else(|e| panic!("{}: key ring: {e:?}", case.file));
        assert_eq!(via_ring.fingerprint, *key.fingerprint(), "{}", case.file);
        assert!(
            via_ring.plaintext.expose_secret() == case.plaintext.as_slice(),
            "{}",
            case.file
        );
    }
}

#[test]
fn values_moved_to_another_label_fail_with_decrypt() {
    let keys = keys();
    let ring = ring_of(keys.values());
    for case in cases_of("label-mismatch", 6, Expected::Fail) {
        assert_fails(&case, &keys[&case.key], &ring);
    }
}

#[test]
fn values_sealed_to_another_key_fail_with_decrypt() {
    let keys = keys();
    for case in cases_of("wrong-key", 2, Expected::Fail) {
        let key = &keys[&case.key];
        assert_fails(&case, key, &ring_of([key]));
    }
}

#[test]
fn malformed_blobs_fail_with_decrypt() {
    let keys = keys();
    let ring = ring_of(keys.values());
    let cases = cases_of("malformed", 8, Expected::Fail);
    assert!(
        cases.iter().any(|c| c.blob.is_empty()),
        "the empty blob is covered"
    );
    assert!(
        cases.iter().any(|c| c.blob.len() == 1),
        "a 1-byte blob is covered"
    );
    for case in &cases {
        assert_fails(case, &keys[&case.key], &ring);
    }
}

#[test]
fn tampered_blobs_fail_with_decrypt() {
    let keys = keys();
    let ring = ring_of(keys.values());
    for case in cases_of("tampered", 5, Expected::Fail) {
        assert_fails(&case, &keys[&case.key], &ring);
    }
}
