//! The bodies of sealant's fuzz targets: every decoder that reads input an attacker
//! may write (issue 11, "Defences").
//!
//! ```text
//!   target        input                         code under test
//!   hybrid_open   label length, label, blob     keys::hybrid::open, KeyRing::open (RSA)
//!   age_open      label length, label, blob     keys::age_envelope::open, KeyRing::open (age)
//!   bundle_open   a key bundle file             keys::bundle::{is_encrypted, open}
//!   unseal        SealedSecret JSON or YAML     crds: parse, decrypt, templates, the Secret
//!   template      template source (any UTF-8)   crds::template::render, default budget
//!   pem           selector byte, bytes          certificates, RSA keys, age keys and recipients
//!   http_body     selector byte, request body   controller::http::{verify_body, rotate_body}
//! ```
//!
//! Each body must return for every input, within the budgets the code sets itself
//! (scripts/fuzz.sh runs libFuzzer with matching time and memory limits), and never
//! panic. Some also check a property that a crash would not show:
//! - the openers answer with the plaintext or exactly the one coarse decryption error;
//! - no error text of the unseal path or of a template contains a decrypted value
//!   that the input did not already hold (the plaintext oracle of finding 3).
//!
//! The keys are the committed test vectors of `keys/tests/testdata/` (RSA 2048 key
//! `a`, its certificate, and age identity `a`), so the corpora's seeds can be real
//! ciphertexts from the independent implementations that made those vectors.
//!
//! `fuzz_targets/` holds the libFuzzer entry points; `tests/replay.rs` replays the
//! committed corpora and the crash inputs through [`TARGETS`] on stable.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sealant_controller::chain;
use sealant_controller::http::{self, Outcome, TokenBucket};
use sealant_controller::key_secrets::Keys;
use sealant_crds::key_secret::KeyEntry;
use sealant_crds::{parse_documents, sealed_secret_from_value, template};
use sealant_keys::{
    AgeIdentity, AgeRecipient, Certificate, Error, KeyRing, OffsetDateTime, Plaintext, PrivateKey,
    PublicKey, age_envelope, bundle, hybrid,
};

/// A target's body: takes one input, returns for every input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directories under `corpus/` and `regressions/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("hybrid_open", hybrid_open),
    ("age_open", age_open),
    ("bundle_open", bundle_open),
    ("unseal", unseal),
    ("template", template),
    ("pem", pem),
    ("http_body", http_body),
];

/// The fixed keys every target decrypts with.
struct Fixture {
    rsa: PrivateKey,
    age: AgeIdentity,
    /// Both keys, the age identity tied to the RSA key as one key generation.
    keys: Keys,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rsa = PrivateKey::from_pem(include_bytes!("../../keys/tests/testdata/rsa2048-a.pem"))
            .expect("the committed test key reads");
        let certificate = Certificate::from_pem(include_bytes!(
            "../../keys/tests/testdata/rsa2048-a.crt.pem"
        ))
        .expect("the committed test certificate reads");
        let age =
            AgeIdentity::parse_file(include_str!("../../keys/tests/testdata/age-identity-a.txt"))
                .expect("the committed age identity reads")
                .remove(0);
        let mut keys = Keys::default();
        keys.insert(KeyEntry::new(
            rsa.clone(),
            certificate,
            Some(age.clone()),
            OffsetDateTime::UNIX_EPOCH,
        ));
        Fixture { rsa, age, keys }
    })
}

fn ring() -> &'static KeyRing {
    &fixture().keys.ring
}

/// Splits `data` into a label (its length is the first byte) and the rest.
fn label_and_blob(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = data.split_first()?;
    Some(rest.split_at(usize::from(n).min(rest.len())))
}

/// Panics unless `result` is a plaintext or exactly [`Error::Decrypt`]: an opener
/// tells an attacker nothing but "it did not open".
fn coarse<T>(what: &str, result: Result<T, Error>) {
    match result {
        Ok(_) | Err(Error::Decrypt) => {}
        Err(other) => panic!("{what} answered with an error other than Decrypt: {other}"),
    }
}

/// The Bitnami hybrid blob (RSA-OAEP + AES-GCM) through `hybrid::open` and the key
/// ring.
pub fn hybrid_open(data: &[u8]) {
    let Some((label, blob)) = label_and_blob(data) else {
        return;
    };
    let f = fixture();
    coarse("hybrid::open", hybrid::open(&f.rsa, blob, label));
    coarse("KeyRing::open", ring().open(blob, label, None));
}

/// The sealant age envelope through `age_envelope::open` and the key ring.
pub fn age_open(data: &[u8]) {
    let Some((label, blob)) = label_and_blob(data) else {
        return;
    };
    let f = fixture();
    coarse(
        "age_envelope::open",
        age_envelope::open(std::slice::from_ref(&f.age), label, blob),
    );
    let _ = age_envelope::recipient_stanzas(blob);
    coarse("KeyRing::open", ring().open(blob, label, None));
}

/// A key bundle file (armored or binary age) through de-armoring and opening.
pub fn bundle_open(data: &[u8]) {
    let _ = bundle::is_encrypted(data);
    let _ = bundle::is_passphrase_protected(data);
    // A passphrase bundle is opened with scrypt at the work factor the file names (up
    // to age's limit): the operator's own file, and seconds per try, so it is not
    // fuzzed here. Its parsing up to the work factor is the same de-armoring.
    if bundle::is_passphrase_protected(data) {
        return;
    }
    coarse(
        "bundle::open",
        bundle::open(std::slice::from_ref(&fixture().age), data),
    );
}

/// The values that a failed unseal of `sealed` must not quote: every decrypted value
/// long enough to recognise that the input did not already contain.
fn secrets_not_in(input: &str, values: &BTreeMap<String, Plaintext>) -> Vec<Vec<u8>> {
    values
        .values()
        .map(|v| v.expose_secret().to_vec())
        .filter(|v| v.len() >= 6 && !contains(input.as_bytes(), v))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_quotes_none(what: &str, text: &str, secrets: &[Vec<u8>]) {
    for secret in secrets {
        assert!(
            !contains(text.as_bytes(), secret),
            "{what} quotes a decrypted value"
        );
    }
}

/// A SealedSecret document (JSON or YAML, several documents allowed) through the
/// controller's whole unseal path: parse, decrypt, render the templates, build the
/// Secret.
pub fn unseal(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(documents) = parse_documents(&text) else {
        return;
    };
    for document in documents {
        let Ok(sealed) = sealed_secret_from_value(document) else {
            continue;
        };
        let _ = sealed.scope_label();
        let _ = sealant_crds::secret_shell(&sealed);
        let _ = sealant_crds::owner_reference(&sealed);
        let decrypted = sealant_crds::decrypt(&sealed, ring(), None);
        match sealant_crds::unseal(&sealed, ring(), None) {
            Ok(unsealed) => {
                let _ = unsealed.into_secret();
            }
            Err(error) => {
                if let Ok(values) = &decrypted {
                    let secrets = secrets_not_in(&text, values.data());
                    assert_quotes_none("an unseal error", &chain(&error), &secrets);
                }
            }
        }
    }
}

/// The values every template of the `template` target sees as dot.
fn template_values() -> &'static BTreeMap<String, Plaintext> {
    static VALUES: OnceLock<BTreeMap<String, Plaintext>> = OnceLock::new();
    VALUES.get_or_init(|| {
        [
            ("password", "Tr0ub4dor&3-zq"),
            ("username", "svc-payments"),
            ("host", "db.internal.example"),
            (
                "tls.crt",
                "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
            ),
            (
                "json",
                r#"{"auths":{"registry.example":{"auth":"dXNlcjpwYXNz"}}}"#,
            ),
            ("empty", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Plaintext::new(v.as_bytes().to_vec())))
        .collect()
    })
}

/// A template source (the bytes as UTF-8, invalid sequences replaced) rendered under
/// the default budget. An error must not quote a value the source did not hold.
pub fn template(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    let values = template_values();
    if let Err(error) = template::render(&source, values) {
        let secrets = secrets_not_in(&source, values);
        assert_quotes_none("a template error", &error.to_string(), &secrets);
    }
}

/// Certificates, RSA keys, age identities and recipients: the first byte picks the
/// parser, the rest is its input.
pub fn pem(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(input);
    match selector % 8 {
        0 => {
            if let Ok(cert) = Certificate::from_pem(input) {
                let _ = cert.matches(&fixture().rsa);
                let _ = cert.check_not_expired(OffsetDateTime::UNIX_EPOCH);
                let _ = cert.to_pem();
            }
        }
        1 => {
            let _ = Certificate::from_der(input);
        }
        2 => {
            let _ = PrivateKey::from_pem(input);
        }
        3 => {
            let _ = PrivateKey::from_pkcs1_der(input);
        }
        4 => {
            let _ = PrivateKey::from_pkcs8_der(input);
        }
        5 => {
            let _ = PublicKey::from_spki_der(input);
        }
        6 => {
            let _ = AgeIdentity::parse_file(&text);
        }
        _ => {
            let _ = AgeRecipient::parse_file(&text);
        }
    }
}

/// The bodies of `/v1/verify` (first byte even) and `/v1/rotate` (odd), as the
/// handlers see them once the body limit has passed.
pub fn http_body(data: &[u8]) {
    static LIMITER: OnceLock<TokenBucket> = OnceLock::new();
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if body.len() > http::MAX_BODY_BYTES {
        return;
    }
    let limiter = LIMITER.get_or_init(|| TokenBucket::new(u32::MAX, u32::MAX));
    let keys = &fixture().keys;
    if selector % 2 == 0 {
        let _ = http::verify_body(body, keys, true, limiter);
    } else if let Outcome::Ok(json) = http::rotate_body(body, keys, true, limiter) {
        // What rotate returns is one SealedSecret again, and it opens.
        let sealed = http::parse_sealed(json.as_bytes()).expect("rotate returns a SealedSecret");
        sealant_crds::decrypt(&sealed, ring(), None).expect("rotate's output opens");
    }
}
