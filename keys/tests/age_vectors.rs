//! Known-answer vectors for the sealant age envelope, made by an independent
//! implementation of age v1 (Python `cryptography`, `testdata/gen_age_vectors.py`):
//! blobs we did not seal must open, or fail, exactly as the case file says. Every
//! failure must be the one coarse [`Error::Decrypt`], through
//! [`age_envelope::open`] and through [`KeyRing::open`].
//!
//! Each behaviour has its own test, and each test first checks that it found enough
//! cases, so an empty or half-deleted `testdata/age/` fails instead of passing.

mod common;

use std::collections::BTreeSet;

use common::{AgeCase, Expected};
use sealant_keys::{AgeIdentity, Error, Fingerprint, KeyRing, OffsetDateTime, Scope, age_envelope};

/// Fewer cases than this means the test data went missing.
const MIN_CASES: usize = 60;

const BEHAVIOURS: [&str; 7] = [
    "roundtrip",
    "label-mismatch",
    "wrong-identity",
    "malformed",
    "tampered",
    "envelope",
    "passphrase",
];

/// The RSA key identity "a" is tied to in [`ring`], as one key generation.
const RSA_OF_A: &str = "rsa2048-a";

/// Every identity the cases open with, and the first recipient in every
/// sealed_to list: the identities the Python script derived.
fn identities() -> Vec<AgeIdentity> {
    let mut seen = BTreeSet::new();
    common::age_cases()
        .into_iter()
        .filter_map(|c| c.identity)
        .filter(|i| seen.insert(i.recipient().to_string()))
        .collect()
}

/// The identity file Python wrote for identity "a", parsed as `age-keygen` output.
fn identity_a() -> AgeIdentity {
    let text = String::from_utf8(common::read("age-identity-a.txt")).expect("UTF-8");
    let mut ids = AgeIdentity::parse_file(&text).expect("age-identity-a.txt parses");
    assert_eq!(ids.len(), 1);
    ids.remove(0)
}

/// A ring holding an RSA key, identity "a" tied to it, and the other identities on
/// their own.
fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    let rsa = common::key(RSA_OF_A);
    let fingerprint = rsa.fingerprint().clone();
    assert!(ring.insert(rsa, OffsetDateTime::UNIX_EPOCH));
    let a = identity_a();
    for identity in identities() {
        let tied = (identity.recipient() == a.recipient()).then(|| fingerprint.clone());
        assert!(ring.insert_age(identity, OffsetDateTime::UNIX_EPOCH, tied));
    }
    assert_eq!(ring.age_len(), 3, "identities a, b and the spec example");
    ring
}

fn ring_of(identity: &AgeIdentity) -> KeyRing {
    let mut ring = KeyRing::new();
    assert!(ring.insert_age(identity.clone(), OffsetDateTime::UNIX_EPOCH, None));
    ring
}

/// The cases of one behaviour, checked to be plenty and of the expected outcome.
fn cases_of(behaviour: &str, min: usize, expected: Option<Expected>) -> Vec<AgeCase> {
    let cases: Vec<AgeCase> = common::age_cases()
        .into_iter()
        .filter(|c| c.behaviour == behaviour)
        .collect();
    assert!(
        cases.len() >= min,
        "only {} {behaviour} cases in testdata/age, expected at least {min}",
        cases.len()
    );
    if let Some(expected) = expected {
        for case in &cases {
            assert_eq!(case.expected, expected, "{}: unexpected outcome", case.file);
        }
    }
    cases
}

/// Asserts that an X25519 must-fail case fails with exactly `Error::Decrypt`, through
/// the envelope and through both rings, with and without a hint.
fn assert_fails(case: &AgeCase, ring: &KeyRing) {
    let identity = case.identity.as_ref().expect("an X25519 case");
    match age_envelope::open(std::slice::from_ref(identity), &case.label, &case.blob) {
        Err(Error::Decrypt) => {}
        Err(other) => panic!(
            "{} ({}): wrong error {other:?}",
            case.file, case.description
        ),
        Ok(_) => panic!("{} ({}): opened but must fail", case.file, case.description),
    }
    let hint = Fingerprint::from_string(identity.recipient().to_string());
    for ring in [ring, &ring_of(identity)] {
        for hint in [None, Some(&hint)] {
            match ring.open(&case.blob, &case.label, hint) {
                Err(Error::Decrypt) => {}
                Err(other) => panic!("{}: key ring gave {other:?}", case.file),
                Ok(_) => panic!("{} ({}): key ring opened it", case.file, case.description),
            }
        }
    }
}

#[test]
fn case_files_cover_every_behaviour_and_scope() {
    let cases = common::age_cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} age case files",
        cases.len()
    );
    let mut ok_scopes = BTreeSet::new();
    let mut mismatch_scopes = BTreeSet::new();
    for case in &cases {
        assert!(
            BEHAVIOURS.contains(&case.behaviour.as_str()),
            "{}: unknown behaviour",
            case.file
        );
        assert!(
            !case.description.is_empty(),
            "{}: no description",
            case.file
        );
        match (&case.identity, &case.passphrase, case.scope) {
            (Some(identity), None, Some(scope)) => {
                assert_eq!(
                    Some(identity.recipient().to_string()),
                    case.recipient,
                    "{}: Python and Rust derive different recipients",
                    case.file
                );
                assert_eq!(
                    scope.label(&case.namespace, &case.name),
                    case.label,
                    "{}: Python and Rust build different labels",
                    case.file
                );
                for r in &case.sealed_to {
                    r.parse::<sealant_keys::AgeRecipient>()
                        .unwrap_or_else(|e| panic!("{}: {e}", case.file));
                }
                if case.expected == Expected::Ok {
                    ok_scopes.insert(scope.as_str());
                }
                if case.behaviour == "label-mismatch" {
                    mismatch_scopes.insert(scope.as_str());
                }
            }
            (None, Some(_), None) => assert_eq!(case.behaviour, "passphrase", "{}", case.file),
            _ => panic!(
                "{}: needs an identity and a scope, or a passphrase",
                case.file
            ),
        }
    }
    for scope in Scope::ALL {
        assert!(
            ok_scopes.contains(scope.as_str()),
            "no round-trip case for {scope}"
        );
        assert!(
            mismatch_scopes.contains(scope.as_str()),
            "no label-mismatch case opened under {scope}"
        );
    }
}

#[test]
fn the_identity_file_python_wrote_parses_to_the_identity_of_its_cases() {
    let a = identity_a();
    let case = common::age_cases()
        .into_iter()
        .find(|c| c.file == "ok-strict.json")
        .expect("ok-strict.json");
    assert_eq!(Some(a.recipient().to_string()), case.recipient);
    assert_eq!(case.sealed_to, [a.recipient().to_string()]);
}

#[test]
fn blobs_sealed_by_python_open_to_the_recorded_plaintext() {
    let ring = ring();
    let rsa_fingerprint = common::key(RSA_OF_A).fingerprint().clone();
    let a = identity_a();
    let cases = cases_of("roundtrip", 14, Some(Expected::Ok));
    assert!(
        cases.iter().any(|c| c.plaintext.is_empty()),
        "an empty value"
    );
    assert!(
        cases.iter().any(|c| c.plaintext.len() > 64 * 1024),
        "a value larger than one STREAM chunk"
    );
    assert!(
        cases.iter().any(|c| c.sealed_to.len() > 1),
        "several recipients"
    );
    for case in &cases {
        let identity = case.identity.as_ref().expect("identity");
        assert!(age_envelope::is_age(&case.blob), "{}", case.file);
        let opened = age_envelope::open(std::slice::from_ref(identity), &case.label, &case.blob)
            .unwrap_or_else(|e| panic!("{} ({}): {e:?}", case.file, case.description));
        assert!(
            opened.expose_secret() == case.plaintext.as_slice(),
            "{}: plaintext differs ({} bytes, expected {})",
            case.file,
            opened.len(),
            case.plaintext.len()
        );

        let via_ring = ring
            .open(&case.blob, &case.label, None)
            .unwrap_or_else(|e| panic!("{}: key ring: {e:?}", case.file));
        assert!(
            via_ring.plaintext.expose_secret() == case.plaintext.as_slice(),
            "{}",
            case.file
        );
        // The ring reports which identity opened it, and its key generation.
        let opener = via_ring
            .age
            .as_ref()
            .expect("an age blob names its identity");
        assert!(
            case.sealed_to.contains(&opener.to_string()),
            "{}",
            case.file
        );
        if case.sealed_to.len() == 1 {
            assert_eq!(Some(opener.to_string()), case.recipient, "{}", case.file);
            let expected = if opener == a.recipient() {
                rsa_fingerprint.clone()
            } else {
                Fingerprint::from_string(opener.to_string())
            };
            assert_eq!(via_ring.fingerprint, expected, "{}", case.file);
        }
        // A hint naming the case's identity wins over the ring's order.
        let hint = Fingerprint::from_string(identity.recipient().to_string());
        let hinted = ring
            .open(&case.blob, &case.label, Some(&hint))
            .unwrap_or_else(|e| panic!("{}: hinted: {e:?}", case.file));
        assert_eq!(
            hinted.age.as_ref(),
            Some(identity.recipient()),
            "{}",
            case.file
        );
    }
}

#[test]
fn values_moved_to_another_label_fail_with_decrypt() {
    let ring = ring();
    for case in cases_of("label-mismatch", 8, Some(Expected::Fail)) {
        assert_fails(&case, &ring);
    }
}

#[test]
fn values_sealed_to_another_identity_fail_with_decrypt() {
    for case in cases_of("wrong-identity", 2, Some(Expected::Fail)) {
        let identity = case.identity.as_ref().expect("identity");
        assert!(!case.sealed_to.contains(&identity.recipient().to_string()));
        assert_fails(&case, &ring_of(identity));
    }
}

#[test]
fn malformed_age_files_fail_with_decrypt() {
    let ring = ring();
    let cases = cases_of("malformed", 12, Some(Expected::Fail));
    assert!(cases.iter().any(|c| c.blob.is_empty()), "the empty blob");
    assert!(
        cases
            .iter()
            .any(|c| !age_envelope::is_age(&c.blob) && !c.blob.is_empty()),
        "a blob that is not binary age v1 (armored, v2)"
    );
    for case in &cases {
        assert_fails(case, &ring);
    }
}

#[test]
fn tampered_age_files_fail_with_decrypt() {
    let ring = ring();
    for case in cases_of("tampered", 6, Some(Expected::Fail)) {
        assert!(age_envelope::is_age(&case.blob), "{}", case.file);
        assert_fails(&case, &ring);
    }
}

#[test]
fn valid_age_files_without_a_valid_envelope_fail_with_decrypt() {
    let ring = ring();
    for case in cases_of("envelope", 8, Some(Expected::Fail)) {
        assert_fails(&case, &ring);
    }
}

#[test]
fn passphrase_files_open_only_with_their_passphrase_and_never_as_values() {
    let ring = ring();
    let cases = cases_of("passphrase", 6, None);
    assert!(cases.iter().any(|c| c.expected == Expected::Ok));
    assert!(cases.iter().any(|c| c.expected == Expected::Fail));
    for case in &cases {
        let passphrase = case.passphrase.as_deref().expect("passphrase");
        let result = age_envelope::open_with_passphrase(passphrase, &case.blob);
        match case.expected {
            Expected::Ok => {
                let opened = result
                    .unwrap_or_else(|e| panic!("{} ({}): {e:?}", case.file, case.description));
                assert!(
                    opened.expose_secret() == case.plaintext.as_slice(),
                    "{}",
                    case.file
                );
            }
            Expected::Fail => assert!(
                matches!(result, Err(Error::Decrypt)),
                "{} ({}): {:?}",
                case.file,
                case.description,
                result.map(|p| p.len())
            ),
        }
        // No X25519 identity opens a passphrase file, under any label.
        for label in [&b""[..], b"prod/db"] {
            assert!(
                matches!(ring.open(&case.blob, label, None), Err(Error::Decrypt)),
                "{}",
                case.file
            );
        }
    }
}
