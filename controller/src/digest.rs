//! The in-sync proof: how a restart over SealedSecrets that are already unsealed does
//! zero RSA decryptions, yet still repairs a Secret that someone edited by hand,
//! without publishing a hash of any plaintext.
//!
//! ## Design
//!
//! The values of a produced Secret are a pure function of the SealedSecret's scope
//! label and its `spec.encryptedData` ciphertext (decryption is deterministic). So when
//! the controller writes a Secret it also writes, as the annotation [`ANNOTATION`] on
//! that Secret,
//!
//! ```text
//!   v1:<fingerprint of key K>:<base64 HMAC-SHA256(mac_key(K), message)>
//!   message = "sealant.dev/unsealed-digest/v1"
//!             ‖ lp(scope label)
//!             ‖ for each key k of spec.encryptedData, sorted:
//!                 lp(k) ‖ lp(spec.encryptedData[k]) ‖ lp(secret.data[k])
//!   mac_key(K) = HKDF-SHA256(salt = "sealant.dev/unsealed-digest/v1",
//!                            ikm  = K's private key (PKCS#1),
//!                            info = "hmac-sha256")
//!   lp(x) = u64 big-endian length of x ‖ x
//! ```
//!
//! where K is a private key the controller holds (the one that opened the values).
//! On the next reconcile, before any decryption, [`verify`] recomputes the HMAC over
//! the SealedSecret as it is now and the Secret's data as it is now:
//!
//! - it matches: the Secret's values are exactly what unsealing this ciphertext under
//!   this label produced, so they are reused as the desired data. No RSA.
//! - someone edited a value, added or removed one of the sealed keys: the HMAC over
//!   the current data differs, so the controller decrypts and repairs.
//! - the SealedSecret's ciphertext or scope changed: the message differs, decrypt.
//! - the annotation was edited, copied from another Secret, or K is no longer in the
//!   ring: no match, decrypt. Copying a Secret's data *and* annotation from another
//!   SealedSecret's Secret fails too, because the label and ciphertext are in the
//!   message.
//!
//! Metadata, type and immutability need no proof: the controller recomputes them from
//! `spec.template` without any key and compares them as usual.
//!
//! ## Why this leaks nothing
//!
//! A plain hash of the data in an annotation would let anyone who can read Secret
//! *metadata* (metadata-only watches, `kubectl get` tables, audit logs at Metadata
//! level, tools with `list` on PartialObjectMetadata) run a dictionary attack on
//! weak values offline. An HMAC under a key derived from a private sealing key is a
//! PRF output to anyone without that key: it says nothing about the plaintext, and
//! only the controller (which can decrypt anyway) can compute or check it. The key
//! fingerprint in the annotation is public information (it names a public key).
//!
//! ## Scope of the fast path
//!
//! Only `spec.encryptedData` objects use it. The deprecated `spec.data` blob carries
//! the Secret's metadata inside the ciphertext, so it is always decrypted.

use std::collections::BTreeMap;

use aws_lc_rs::{hkdf, hmac};
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sealant_crds::SealedSecret;
use sealant_crds::annotations::scope_of;
use sealant_keys::{Fingerprint, KeyRing, PrivateKey};
use zeroize::Zeroizing;

/// The annotation on a produced Secret that proves its data is in sync.
pub const ANNOTATION: &str = "sealant.dev/unsealed-digest";

const DOMAIN: &[u8] = b"sealant.dev/unsealed-digest/v1";
const VERSION: &str = "v1";

/// The HMAC key derived from a private key.
pub fn mac_key(key: &PrivateKey) -> hmac::Key {
    let ikm = key.expose_pkcs1_pem();
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, DOMAIN).extract(ikm.as_bytes());
    let info: &[&[u8]] = &[b"hmac-sha256"];
    match prk.expand(info, hmac::HMAC_SHA256) {
        Ok(okm) => hmac::Key::from(okm),
        // HKDF-SHA256 can expand up to 8160 bytes; the 32 asked for here always fit.
        Err(_) => unreachable!("HKDF output length for HMAC-SHA256 is always valid"),
    }
}

/// The scope label of `sealed`, as unsealing builds it.
fn label(sealed: &SealedSecret) -> Vec<u8> {
    let scope = scope_of(&sealed.metadata);
    scope.label(
        sealed.metadata.namespace.as_deref().unwrap_or_default(),
        sealed.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// The signed message over `sealed`'s label and ciphertext and the matching values
/// of `data`, in a zeroizing buffer (it holds plaintext). `None` when `data` lacks one
/// of the sealed keys.
fn message(
    sealed: &SealedSecret,
    data: &BTreeMap<String, ByteString>,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(DOMAIN.to_vec());
    let mut lp = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    lp(&label(sealed));
    for (k, ciphertext) in &sealed.spec.encrypted_data {
        let value = data.get(k)?;
        lp(k.as_bytes());
        lp(ciphertext.as_bytes());
        lp(&value.0);
    }
    Some(out)
}

/// The annotation value proving that `data` is what unsealing `sealed` produces,
/// signed with `key`. `None` for objects the fast path does not cover (the
/// deprecated `spec.data`) or when `data` lacks a sealed key.
pub fn annotation_value(
    key: &PrivateKey,
    sealed: &SealedSecret,
    data: &BTreeMap<String, ByteString>,
) -> Option<String> {
    if sealed.spec.data.is_some() {
        return None;
    }
    let t = hmac::sign(&mac_key(key), &message(sealed, data)?);
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(t.as_ref());
    Some(format!("{VERSION}:{}:{b64}", key.fingerprint()))
}

/// Checks the annotation of `secret` against `sealed` as it is now and the Secret's
/// data as it is now. Returns the fingerprint of the key that signed it when the data
/// is proven in sync, `None` otherwise (the caller then decrypts).
///
/// The comparison is constant-time; no RSA operation is done.
pub fn verify(ring: &KeyRing, sealed: &SealedSecret, secret: &Secret) -> Option<Fingerprint> {
    if sealed.spec.data.is_some() || sealed.spec.encrypted_data.is_empty() {
        return None;
    }
    let value = secret.metadata.annotations.as_ref()?.get(ANNOTATION)?;
    let rest = value.strip_prefix(VERSION)?.strip_prefix(':')?;
    // The fingerprint is "SHA256:<base64>", so split at the last colon.
    let (fingerprint, mac_b64) = rest.rsplit_once(':')?;
    let fingerprint = Fingerprint::from_string(fingerprint.to_owned());
    let entry = ring.get(&fingerprint)?;
    let mac = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(mac_b64)
        .ok()?;
    let data = secret.data.as_ref()?;
    let message = message(sealed, data)?;
    hmac::verify(&mac_key(&entry.key), &message, &mac)
        .is_ok()
        .then_some(fingerprint)
}

/// The fingerprint named in `secret`'s digest annotation, unverified: only a hint of
/// which key to try first when decrypting.
pub fn signer(secret: &Secret) -> Option<Fingerprint> {
    let value = secret.metadata.annotations.as_ref()?.get(ANNOTATION)?;
    let rest = value.strip_prefix(VERSION)?.strip_prefix(':')?;
    let (fingerprint, _) = rest.rsplit_once(':')?;
    Some(Fingerprint::from_string(fingerprint.to_owned()))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use sealant_crds::{SealOptions, seal_secret, unseal};
    use sealant_keys::OffsetDateTime;

    use super::*;
    use crate::key_secrets::tests::test_keys;

    fn ring() -> KeyRing {
        let mut ring = KeyRing::new();
        for (i, (k, _)) in test_keys().iter().enumerate() {
            ring.insert(
                k.clone(),
                OffsetDateTime::UNIX_EPOCH + time::Duration::days(i as i64),
            );
        }
        ring
    }

    fn sealed(name: &str, values: &[(&str, &str)]) -> SealedSecret {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("app".to_owned()),
                ..ObjectMeta::default()
            },
            string_data: Some(
                values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Secret::default()
        };
        let cert = &test_keys()[2].1;
        seal_secret(&secret, cert.public_key(), &SealOptions::default()).expect("seals")
    }

    /// The Secret the controller would write, with its digest annotation.
    fn produced(sealed: &SealedSecret) -> Secret {
        let ring = ring();
        let unsealed = unseal(sealed, &ring, None).expect("unseals");
        let fp = unsealed
            .fingerprints()
            .iter()
            .next()
            .cloned()
            .expect("a key");
        let mut secret = unsealed.into_secret();
        let key = &ring.get(&fp).expect("held").key;
        let value =
            annotation_value(key, sealed, secret.data.as_ref().expect("data")).expect("covered");
        secret
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANNOTATION.to_owned(), value);
        secret
    }

    #[test]
    fn untouched_secret_is_proven_in_sync_without_decrypting() {
        let s = sealed("db", &[("user", "admin"), ("password", "hunter2")]);
        let secret = produced(&s);
        assert_eq!(
            verify(&ring(), &s, &secret).as_ref(),
            Some(test_keys()[2].0.fingerprint())
        );
    }

    #[test]
    fn signer_names_the_key_without_verifying() {
        let s = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&s);
        assert_eq!(
            signer(&secret).as_ref(),
            Some(test_keys()[2].0.fingerprint())
        );
        assert_eq!(signer(&Secret::default()), None);
    }

    #[test]
    fn hand_edited_value_is_not_in_sync() {
        let s = sealed("db", &[("password", "hunter2")]);
        let mut secret = produced(&s);
        secret
            .data
            .as_mut()
            .expect("data")
            .insert("password".to_owned(), ByteString(b"hunter3".to_vec()));
        assert_eq!(verify(&ring(), &s, &secret), None);
    }

    #[test]
    fn removed_sealed_key_is_not_in_sync_but_an_extra_key_does_not_matter() {
        let s = sealed("db", &[("user", "admin"), ("password", "hunter2")]);
        let mut removed = produced(&s);
        removed.data.as_mut().expect("data").remove("user");
        assert_eq!(verify(&ring(), &s, &removed), None);
        // Extra keys are outside the proof; the reconcile decision removes them (or,
        // in patch mode, keeps them) like any other difference.
        let mut extra = produced(&s);
        extra
            .data
            .as_mut()
            .expect("data")
            .insert("note".to_owned(), ByteString(b"x".to_vec()));
        assert!(verify(&ring(), &s, &extra).is_some());
    }

    #[test]
    fn changed_ciphertext_is_not_in_sync() {
        let old = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&old);
        // Re-sealing the same value gives new ciphertext (fresh session key).
        let new = sealed("db", &[("password", "hunter2")]);
        assert_ne!(old.spec.encrypted_data, new.spec.encrypted_data);
        assert_eq!(verify(&ring(), &new, &secret), None);
    }

    #[test]
    fn data_and_annotation_copied_from_another_sealed_secret_are_not_in_sync() {
        let a = sealed("a", &[("password", "one")]);
        let b = sealed("b", &[("password", "two")]);
        let secret_a = produced(&a);
        let mut forged_b = produced(&b);
        forged_b.data = secret_a.data.clone();
        forged_b.metadata.annotations = secret_a.metadata.annotations.clone();
        assert_eq!(verify(&ring(), &b, &forged_b), None);
    }

    #[test]
    fn tampered_or_foreign_annotation_is_not_in_sync() {
        let s = sealed("db", &[("password", "hunter2")]);
        let good = produced(&s);
        let value = good.metadata.annotations.as_ref().expect("a")[ANNOTATION].clone();
        let mut flip = value.clone().into_bytes();
        let last = flip.len() - 1;
        flip[last] = if flip[last] == b'A' { b'B' } else { b'A' };
        for bad in [
            String::from_utf8(flip).expect("ascii"),
            value.replacen("v1:", "v2:", 1),
            "v1:SHA256:unknown:AAAA".to_owned(),
            "garbage".to_owned(),
            String::new(),
        ] {
            let mut secret = good.clone();
            secret
                .metadata
                .annotations
                .as_mut()
                .expect("a")
                .insert(ANNOTATION.to_owned(), bad.clone());
            assert_eq!(verify(&ring(), &s, &secret), None, "{bad:?}");
        }
    }

    #[test]
    fn key_no_longer_in_the_ring_cannot_prove_sync() {
        let s = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&s);
        let mut ring = ring();
        ring.remove(test_keys()[2].0.fingerprint());
        assert_eq!(verify(&ring, &s, &secret), None);
    }

    #[test]
    fn annotation_reveals_no_plain_hash_of_the_value() {
        let s = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&s);
        let value = &secret.metadata.annotations.as_ref().expect("a")[ANNOTATION];
        let plain = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"hunter2");
        for engine in [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::STANDARD,
        ] {
            assert!(!value.contains(&engine.encode(plain.as_ref())));
        }
        assert!(!value.contains("hunter2"));
        // The MAC key differs per private key: another key gives another tag.
        let other =
            annotation_value(&test_keys()[0].0, &s, secret.data.as_ref().expect("d")).expect("v");
        assert_ne!(value.rsplit(':').next(), other.rsplit(':').next());
    }

    #[test]
    fn deprecated_spec_data_is_never_fast_pathed() {
        let mut s = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&s);
        s.spec.data = Some("AAAA".to_owned());
        assert_eq!(verify(&ring(), &s, &secret), None);
        assert_eq!(
            annotation_value(&test_keys()[2].0, &s, secret.data.as_ref().expect("d")),
            None
        );
    }
}
