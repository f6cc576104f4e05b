//! Known-answer vectors for key bundles (`src/bundle.rs`): armored and binary age files
//! written by an independent implementation (`testdata/gen_bundle_vectors.py`, age v1
//! and its ASCII armor on Python `cryptography`), including files that must not open.

mod common;

use common::Expected;
use sealant_keys::{AgeIdentity, Error, bundle};

fn open(case: &common::BundleCase) -> Result<Vec<u8>, Error> {
    let opened = match (&case.identity, &case.passphrase) {
        (Some(identity), None) => {
            let identities = AgeIdentity::parse_file(identity)
                .unwrap_or_else(|e| panic!("{}: identity: {e}", case.file));
            bundle::open(&identities, &case.bundle)?
        }
        (None, Some(passphrase)) => bundle::open_with_passphrase(passphrase, &case.bundle)?,
        _ => panic!(
            "{}: needs exactly one of identity and passphrase",
            case.file
        ),
    };
    Ok(opened.expose_secret().to_vec())
}

#[test]
fn bundles_from_the_independent_implementation_open_or_fail_as_recorded() {
    let cases = common::bundle_cases();
    assert!(cases.len() >= 15, "only {} bundle cases", cases.len());
    assert!(cases.iter().any(|c| c.expected == Expected::Ok));
    assert!(cases.iter().any(|c| c.expected == Expected::Fail));
    for case in &cases {
        match (case.expected, open(case)) {
            (Expected::Ok, Ok(plaintext)) => assert!(
                plaintext == case.plaintext,
                "{}: plaintext differs ({})",
                case.file,
                case.description
            ),
            (Expected::Fail, Err(Error::Decrypt)) => {}
            (expected, got) => panic!(
                "{} ({}): expected {expected:?}, got {:?}",
                case.file,
                case.description,
                got.map(|p| p.len())
            ),
        }
    }
}

#[test]
fn recorded_bundles_are_told_apart_from_plaintext_backups() {
    for case in common::bundle_cases() {
        let encrypted = bundle::is_encrypted(&case.bundle);
        let plain = case.file.contains("plaintext") || case.file.contains("empty");
        assert_eq!(encrypted, !plain, "{}", case.file);
        if case.expected == Expected::Ok {
            assert_eq!(
                bundle::is_passphrase_protected(&case.bundle),
                case.passphrase.is_some(),
                "{}",
                case.file
            );
        }
    }
}
