//! A fuzz harness that runs with the ordinary test suite: arbitrary bytes and mutated
//! real blobs, RSA and age, go through [`hybrid::open`], [`age_envelope::open`] and
//! [`KeyRing::open`], which must never panic and must answer either with the plaintext
//! or with exactly [`Error::Decrypt`].
//!
//! Stronger than "does not panic": a mutated blob that differs from the original in any
//! byte must fail (AES-GCM, OAEP, the age header MAC and the STREAM tags make a forgery
//! a 2^-128 event), and the untouched blob must still open. The RSA keys are the
//! committed vector keys, so no RSA key generation.
//!
//! `fuzz/` holds the same property as the cargo-fuzz targets `hybrid_open` and
//! `age_open`, for longer runs (scripts/fuzz.sh).

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use sealant_keys::{
    AgeIdentity, Error, Fingerprint, KeyRing, OffsetDateTime, PrivateKey, Scope, age_envelope,
    hybrid,
};

const VALUES: [&[u8]; 3] = [b"", b"s3cret", &[0xab; 300]];

struct Fixture {
    keys: Vec<PrivateKey>,
    ring: KeyRing,
    blobs: Vec<Sealed>,
    /// The identity every age blob is sealed to (also in `ring`).
    age: AgeIdentity,
    age_blobs: Vec<AgeSealed>,
}

/// A real age blob and the label that opens it.
struct AgeSealed {
    value: &'static [u8],
    label: Vec<u8>,
    blob: Vec<u8>,
}

/// A real blob and what opens it.
struct Sealed {
    /// Index into `Fixture::keys`.
    key: usize,
    value: &'static [u8],
    label: Vec<u8>,
    blob: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys: Vec<PrivateKey> = ["rsa2048-a", "rsa4096"]
            .into_iter()
            .map(common::key)
            .collect();
        let mut ring = KeyRing::new();
        for key in keys.iter().cloned().chain([common::key("rsa2048-b")]) {
            assert!(ring.insert(key, OffsetDateTime::UNIX_EPOCH));
        }
        let mut blobs = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            for (i, value) in VALUES.into_iter().enumerate() {
                let scope = Scope::ALL[i % Scope::ALL.len()];
                let label = scope.label("prod", "db");
                let blob = hybrid::seal(key.public_key(), value, &label).expect("seal");
                blobs.push(Sealed {
                    key: k,
                    value,
                    label,
                    blob,
                });
            }
        }
        let age = AgeIdentity::generate();
        assert!(ring.insert_age(age.clone(), OffsetDateTime::UNIX_EPOCH, None));
        assert!(ring.insert_age(AgeIdentity::generate(), OffsetDateTime::UNIX_EPOCH, None));
        let mut age_blobs = Vec::new();
        for scope in Scope::ALL {
            for value in VALUES {
                let label = scope.label("prod", "db");
                let blob = age_envelope::seal(&[age.recipient().clone()], &label, value)
                    .expect("age seal");
                age_blobs.push(AgeSealed { value, label, blob });
            }
        }
        Fixture {
            keys,
            ring,
            blobs,
            age,
            age_blobs,
        }
    })
}

/// One change to a real blob.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR one byte (index taken modulo the length) with a non-zero mask.
    Flip(usize, u8),
    /// Keep only the first `n` bytes (modulo the length).
    Truncate(usize),
    /// Rewrite the u16 length prefix.
    Prefix(u16),
    /// Append bytes.
    Append(Vec<u8>),
    /// Remove one byte (index modulo the length).
    Remove(usize),
    /// Overwrite a run of bytes starting at an index (modulo the length).
    Overwrite(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        2 => any::<u16>().prop_map(Mutation::Prefix),
        1 => prop::collection::vec(any::<u8>(), 1..32).prop_map(Mutation::Append),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Overwrite(i, b)),
    ]
}

fn apply(blob: &mut Vec<u8>, mutation: &Mutation) {
    let len = blob.len();
    match mutation {
        Mutation::Flip(i, mask) => blob[i % len] ^= mask,
        Mutation::Truncate(n) => blob.truncate(n % len),
        Mutation::Prefix(p) => {
            if len >= 2 {
                blob[..2].copy_from_slice(&p.to_be_bytes());
            }
        }
        Mutation::Append(bytes) => blob.extend_from_slice(bytes),
        Mutation::Remove(i) => {
            blob.remove(i % len);
        }
        Mutation::Overwrite(i, bytes) => {
            for (offset, b) in bytes.iter().enumerate() {
                if let Some(slot) = blob.get_mut(i % len + offset) {
                    *slot = *b;
                }
            }
        }
    }
}

/// Opens with one key and with the ring (both hint orders); returns the results.
fn open_all(key: &PrivateKey, blob: &[u8], label: &[u8]) -> Vec<Result<Vec<u8>, Error>> {
    let ring = &fixture().ring;
    let mut results = vec![hybrid::open(key, blob, label).map(|p| p.expose_secret().to_vec())];
    for hint in [None, Some(key.fingerprint())] {
        results.push(
            ring.open(blob, label, hint)
                .map(|o| o.plaintext.expose_secret().to_vec()),
        );
    }
    results
}

/// Opens an age blob through the envelope and the ring (with and without the hint of
/// its identity); returns the results.
fn open_all_age(blob: &[u8], label: &[u8]) -> Vec<Result<Vec<u8>, Error>> {
    let fixture = fixture();
    let hint = Fingerprint::from_string(fixture.age.recipient().to_string());
    let mut results = vec![
        age_envelope::open(std::slice::from_ref(&fixture.age), label, blob)
            .map(|p| p.expose_secret().to_vec()),
    ];
    for hint in [None, Some(&hint)] {
        results.push(
            fixture
                .ring
                .open(blob, label, hint)
                .map(|o| o.plaintext.expose_secret().to_vec()),
        );
    }
    results
}

proptest! {
    // Four times proptest's default: each case costs at most a few RSA operations.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic_and_fail_with_decrypt(
        bytes in prop::collection::vec(any::<u8>(), 0..1200),
        label in prop::collection::vec(any::<u8>(), 0..16),
        key_index in 0..2usize,
        real_prefix in any::<bool>(),
    ) {
        let fixture = fixture();
        let key = &fixture.keys[key_index];
        let mut blob = bytes;
        // Half the time give the bytes a length prefix that fits the key, so the RSA
        // and AES steps see the input rather than the length check alone.
        if real_prefix && blob.len() >= 2 {
            let n = u16::try_from(key.size_bytes()).expect("RSA sizes fit in u16");
            blob[..2].copy_from_slice(&n.to_be_bytes());
        }
        for result in open_all(key, &blob, &label) {
            prop_assert!(matches!(result, Err(Error::Decrypt)), "{:?}", result.map(|p| p.len()));
        }
    }

    #[test]
    fn mutated_real_blobs_never_panic_and_fail_with_decrypt(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let fixture = fixture();
        let Sealed { key, value, label, blob: original } = which.get(&fixture.blobs);
        let key = &fixture.keys[*key];
        let mut blob = original.clone();
        for m in &mutations {
            if blob.is_empty() {
                break;
            }
            apply(&mut blob, m);
        }
        for result in open_all(key, &blob, label) {
            if blob == *original {
                // Mutations can cancel out (flip twice, prefix rewritten to itself).
                let opened = result.ok();
                prop_assert_eq!(opened.as_deref(), Some(*value));
            } else {
                prop_assert!(matches!(result, Err(Error::Decrypt)), "{:?}", result.map(|p| p.len()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_behind_an_age_header_never_panic_and_fail_with_decrypt(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        label in prop::collection::vec(any::<u8>(), 0..16),
        header in prop_oneof![
            Just(&b""[..]),
            Just(age_envelope::AGE_HEADER),
            Just(&b"age-encryption.org/v1\n-> X25519 "[..]),
        ],
    ) {
        let mut blob = header.to_vec();
        blob.extend_from_slice(&bytes);
        for result in open_all_age(&blob, &label) {
            prop_assert!(matches!(result, Err(Error::Decrypt)), "{:?}", result.map(|p| p.len()));
        }
        prop_assert!(matches!(
            age_envelope::open_with_passphrase("p", &blob),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn mutated_real_age_blobs_never_panic_and_fail_with_decrypt(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let AgeSealed { value, label, blob: original } = which.get(&fixture().age_blobs);
        let mut blob = original.clone();
        for m in &mutations {
            if blob.is_empty() {
                break;
            }
            apply(&mut blob, m);
        }
        for result in open_all_age(&blob, label) {
            if blob == *original {
                let opened = result.ok();
                prop_assert_eq!(opened.as_deref(), Some(*value));
            } else {
                prop_assert!(matches!(result, Err(Error::Decrypt)), "{:?}", result.map(|p| p.len()));
            }
        }
    }
}

#[test]
fn fixture_age_blobs_open_unchanged_and_only_under_their_label() {
    let fixture = fixture();
    assert_eq!(fixture.age_blobs.len(), 9);
    for AgeSealed { value, label, blob } in &fixture.age_blobs {
        for result in open_all_age(blob, label) {
            assert_eq!(result.expect("open").as_slice(), *value);
        }
        let other = Scope::Strict.label("prod", "other");
        for result in open_all_age(blob, &other) {
            assert!(matches!(result, Err(Error::Decrypt)));
        }
    }
}

#[test]
fn fixture_blobs_open_unchanged() {
    let fixture = fixture();
    assert_eq!(fixture.blobs.len(), 6);
    for Sealed {
        key,
        value,
        label,
        blob,
    } in &fixture.blobs
    {
        for result in open_all(&fixture.keys[*key], blob, label) {
            assert_eq!(result.expect("open").as_slice(), *value);
        }
    }
}
