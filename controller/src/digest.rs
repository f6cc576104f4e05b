//! The in-sync proof: how a restart over SealedSecrets that are already unsealed does
//! zero RSA decryptions, yet still repairs a Secret that someone edited by hand,
//! without publishing a hash of any plaintext.
//!
//! ## Design
//!
//! The values of a produced Secret are a pure function of the SealedSecret's scope
//! label and its `spec.encryptedData` ciphertext (decryption is deterministic). So when
//! the controller writes a Secret it also records, in the SealedSecret's status (a
//! condition of type `sealant.dev/InSyncProof`; [`sealant_crds::proof`] says why
//! there and not on the Secret, which carries exactly what the template asks for),
//!
//! ```text
//!   v1:<fingerprint of key K>:<base64 HMAC-SHA256(mac_key(K), message)>
//!   message = "sealant.dev/unsealed-digest/v1"
//!             ‖ lp(scope label)
//!             ‖ for each key k of spec.encryptedData, sorted:
//!                 lp(k) ‖ lp(spec.encryptedData[k]) ‖ lp(secret.data[k])
//!             ‖ for each key t of spec.template.data, sorted:
//!                 lp("template") ‖ lp(t) ‖ lp(spec.template.data[t]) ‖ lp(secret.data[t])
//!   mac_key(K) = HKDF-SHA256(salt = "sealant.dev/unsealed-digest/v1",
//!                            ikm  = K's private key (PKCS#1),
//!                            info = "hmac-sha256")
//!   lp(x) = u64 big-endian length of x ‖ x
//! ```
//!
//! where K is a private key the controller holds (the one that opened the values).
//! On the next reconcile, before any decryption, [`verify`] recomputes the HMAC over
//! the SealedSecret as it is now and the Secret's data as it is now (one SHA-256 pass
//! over the values, no RSA):
//!
//! - it matches: the Secret's values are exactly what unsealing this ciphertext under
//!   this label produced, so they are reused as the desired data. No RSA.
//! - someone edited a value, added or removed one of the sealed keys: the HMAC over
//!   the current data differs, so the controller decrypts and repairs.
//! - the SealedSecret's ciphertext or scope changed: the message differs, decrypt.
//! - the proof was edited, copied from another SealedSecret, or K is no longer in the
//!   ring: no match, decrypt. Copying a Secret's data *and* the proof from another
//!   SealedSecret fails too, because the label and ciphertext are in the message.
//! - the status was lost (restored from a backup without status, or written by
//!   another controller): no proof, decrypt once, and the proof is written again.
//!
//! ## Values opened by several keys, and age values
//!
//! The proof also says which keys opened the values, so that the status and the key
//! inventory stay right on the zero-decryption path. `v1` names exactly one key. When
//! the values were opened by more than one key generation (for example after
//! `--merge-into` with a renewed certificate), the proof is `v2`:
//!
//! ```text
//!   v2:<K1>,<K2>,...:<base64 HMAC-SHA256(mac_key(K1), message2)>
//!   message2 = "sealant.dev/unsealed-digest/v2" ‖ lp("<K1>,<K2>,...") ‖ (message without its domain)
//! ```
//!
//! with the keys sorted and K1 signing; the list is inside the MAC, so it cannot be
//! edited, and every listed key must still be held for the proof to hold (retiring any
//! key a SealedSecret depends on makes its next pass decrypt, and fail).
//!
//! An age value is reported by [`KeyRing::open`] under the fingerprint of the RSA key
//! of its key generation (the identity lives in the same key Secret, see
//! [`crate::key_secrets`]). So the MAC key of a value opened by an age identity is
//! derived from that tied RSA key, like any other: one secret per key generation, the
//! same lifetime (both are retired and restored together), and an annotation format
//! that does not depend on how each value was sealed. Only an identity held on its own
//! (not tied to an RSA key, which the controller never loads) is named by its
//! recipient, and then the MAC key is derived from the identity itself
//! ([`mac_key_age`], with its own HKDF `info`).
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
//! fingerprint in the proof is public information (it names a public key).
//!
//! ## Scope of the fast path
//!
//! Only `spec.encryptedData` objects use it. The deprecated `spec.data` blob carries
//! the Secret's metadata inside the ciphertext, so it is always decrypted.

use std::collections::{BTreeMap, BTreeSet};

use aws_lc_rs::{hkdf, hmac};
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sealant_crds::SealedSecret;
use sealant_crds::proof;
use sealant_keys::{AgeIdentity, Fingerprint, KeyRing, PrivateKey};
use zeroize::Zeroizing;

const DOMAIN: &[u8] = b"sealant.dev/unsealed-digest/v1";
const DOMAIN_V2: &[u8] = b"sealant.dev/unsealed-digest/v2";

/// The HMAC key derived from a private key.
pub fn mac_key(key: &PrivateKey) -> hmac::Key {
    let ikm = key.expose_pkcs1_pem();
    derive(ikm.as_bytes(), b"hmac-sha256")
}

/// The HMAC key derived from an age identity held on its own (not tied to an RSA key).
pub fn mac_key_age(identity: &AgeIdentity) -> hmac::Key {
    let ikm = identity.expose_secret();
    derive(ikm.as_bytes(), b"hmac-sha256/age-x25519")
}

fn derive(ikm: &[u8], info: &[u8]) -> hmac::Key {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, DOMAIN).extract(ikm);
    let info: &[&[u8]] = &[info];
    match prk.expand(info, hmac::HMAC_SHA256) {
        Ok(okm) => hmac::Key::from(okm),
        // HKDF-SHA256 can expand up to 8160 bytes; the 32 asked for here always fit.
        Err(_) => unreachable!("HKDF output length for HMAC-SHA256 is always valid"),
    }
}

/// The MAC key of the key named `fingerprint` as [`KeyRing::open`] names keys: an RSA
/// key (which an age value of its key generation also reports), or an age identity
/// held on its own, named by its recipient. `None` when the ring holds no such key.
pub fn mac_key_for(ring: &KeyRing, fingerprint: &Fingerprint) -> Option<hmac::Key> {
    if let Some(entry) = ring.get(fingerprint) {
        return Some(mac_key(&entry.key));
    }
    ring.iter_age()
        .find(|e| e.rsa.is_none() && &e.key_id() == fingerprint)
        .map(|e| mac_key_age(&e.identity))
}

/// The scope label of `sealed` ([`SealedSecret::scope_label`], as unsealing builds
/// it); `None` where unsealing would refuse the object, which then has no proof.
fn label(sealed: &SealedSecret) -> Option<Vec<u8>> {
    sealed.scope_label().ok().map(|(_, label)| label)
}

/// The signed message over `sealed`'s label and ciphertext and the matching values
/// of `data`, in a zeroizing buffer (it holds plaintext). `None` when `data` lacks one
/// of the sealed keys.
///
/// With more than one key (`v2`), the message starts with the v2 domain and the key
/// list.
fn message(
    keys: &[Fingerprint],
    sealed: &SealedSecret,
    data: &BTreeMap<String, ByteString>,
) -> Option<Zeroizing<Vec<u8>>> {
    let multi = keys.len() > 1;
    let mut out = Zeroizing::new(if multi { DOMAIN_V2 } else { DOMAIN }.to_vec());
    let mut lp = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    if multi {
        lp(proof::key_list(keys).as_bytes());
    }
    lp(&label(sealed)?);
    for (k, ciphertext) in &sealed.spec.encrypted_data {
        let value = data.get(k)?;
        lp(k.as_bytes());
        lp(ciphertext.as_bytes());
        lp(&value.0);
    }
    // Rendered templates: each source and the value it produced (only present when
    // the object has templates, so the message of every other object is unchanged).
    for (k, source) in template_data(sealed) {
        let value = data.get(k)?;
        lp(b"template");
        lp(k.as_bytes());
        lp(source.as_bytes());
        lp(&value.0);
    }
    Some(out)
}

/// `spec.template.data`, sorted by key (empty when there is none).
fn template_data(sealed: &SealedSecret) -> impl Iterator<Item = (&String, &String)> {
    sealed
        .spec
        .template
        .as_ref()
        .and_then(|t| t.data.as_ref())
        .into_iter()
        .flatten()
}

/// The keys of the Secret that unsealing `sealed` produces: every sealed key and every
/// template key.
pub fn produced_keys(sealed: &SealedSecret) -> std::collections::BTreeSet<&String> {
    sealed
        .spec
        .encrypted_data
        .keys()
        .chain(template_data(sealed).map(|(k, _)| k))
        .collect()
}

/// The proof that `data` is what unsealing `sealed` with the keys `keys` (as
/// [`KeyRing::open`] names them) produces, signed with the first of them, in the text
/// format of [`sealant_crds::proof`]. `None` for objects the fast path does not cover
/// (the deprecated `spec.data`), when `data` lacks a sealed key, or when `keys` is
/// empty or names a key the ring lacks.
pub fn proof(
    ring: &KeyRing,
    keys: &BTreeSet<Fingerprint>,
    sealed: &SealedSecret,
    data: &BTreeMap<String, ByteString>,
) -> Option<String> {
    if sealed.spec.data.is_some() {
        return None;
    }
    let keys: Vec<Fingerprint> = keys.iter().cloned().collect();
    let signer = keys.first()?;
    let mac_key = mac_key_for(ring, signer)?;
    if keys[1..].iter().any(|k| mac_key_for(ring, k).is_none()) {
        return None;
    }
    let t = hmac::sign(&mac_key, &message(&keys, sealed, data)?);
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(t.as_ref());
    Some(proof::format(&keys, &b64))
}

/// Checks `proof` against `sealed` as it is now and the Secret's data as it is now.
/// Returns the keys that opened the values (as [`KeyRing::open`] names them) when the
/// data is proven in sync, `None` otherwise (the caller then decrypts). Every named
/// key must still be held.
///
/// The comparison is constant-time; no RSA operation is done.
pub fn verify(
    ring: &KeyRing,
    sealed: &SealedSecret,
    proof: &str,
    data: &BTreeMap<String, ByteString>,
) -> Option<BTreeSet<Fingerprint>> {
    if sealed.spec.data.is_some() || sealed.spec.encrypted_data.is_empty() {
        return None;
    }
    let parsed = proof::parse(proof)?;
    let mac_key = mac_key_for(ring, &parsed.keys[0])?;
    if parsed.keys[1..]
        .iter()
        .any(|k| mac_key_for(ring, k).is_none())
    {
        return None;
    }
    let mac = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(parsed.mac)
        .ok()?;
    let message = message(&parsed.keys, sealed, data)?;
    hmac::verify(&mac_key, &message, &mac)
        .is_ok()
        .then(|| parsed.keys.into_iter().collect())
}

/// The signing key a proof names, unverified: only a hint of which key to try first
/// when decrypting.
pub fn signer(proof: &str) -> Option<Fingerprint> {
    proof::parse(proof).map(|mut p| p.keys.swap_remove(0))
}

/// The proofs to try for `sealed`, most likely first: one this process wrote that the
/// cache may not show yet, the one in its status, and the legacy annotation of an
/// existing Secret written by sealant 0.1. Each is only a candidate: [`verify`]
/// decides.
pub fn candidates<'a>(
    recent: Option<&'a str>,
    sealed: &'a SealedSecret,
    existing: Option<&'a Secret>,
) -> impl Iterator<Item = &'a str> {
    let status = sealed.status.as_ref().and_then(|s| s.in_sync_proof());
    let legacy = existing
        .and_then(|e| e.metadata.annotations.as_ref())
        .and_then(|a| a.get(proof::LEGACY_ANNOTATION))
        .map(String::as_str);
    [recent, status, legacy].into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use sealant_crds::{SealOptions, seal_secret, unseal};
    use sealant_keys::OffsetDateTime;

    use super::*;
    use crate::key_secrets::tests::test_keys;

    /// The tests carry the proof on the Secret, under the legacy annotation, so that
    /// one value holds both the data and its proof.
    const ANNOTATION: &str = proof::LEGACY_ANNOTATION;

    fn proof_in(secret: &Secret) -> &str {
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
            .map_or("", String::as_str)
    }

    fn verify_secret(
        ring: &KeyRing,
        sealed: &SealedSecret,
        secret: &Secret,
    ) -> Option<BTreeSet<Fingerprint>> {
        verify(ring, sealed, proof_in(secret), secret.data.as_ref()?)
    }

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

    /// The Secret the controller would write, with its proof.
    fn produced(sealed: &SealedSecret) -> Secret {
        produced_with(&ring(), sealed)
    }

    fn produced_with(ring: &KeyRing, sealed: &SealedSecret) -> Secret {
        let unsealed = unseal(sealed, ring, None).expect("unseals");
        let keys = unsealed.fingerprints().clone();
        let mut secret = unsealed.into_secret();
        let value =
            proof(ring, &keys, sealed, secret.data.as_ref().expect("data")).expect("covered");
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
            verify_secret(&ring(), &s, &secret),
            Some(BTreeSet::from([test_keys()[2].0.fingerprint().clone()]))
        );
    }

    #[test]
    fn signer_names_the_key_without_verifying() {
        let s = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&s);
        assert_eq!(
            signer(proof_in(&secret)).as_ref(),
            Some(test_keys()[2].0.fingerprint())
        );
        assert_eq!(signer(""), None);
        assert_eq!(signer("garbage"), None);
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
        assert_eq!(verify_secret(&ring(), &s, &secret), None);
    }

    #[test]
    fn removed_sealed_key_is_not_in_sync_but_an_extra_key_does_not_matter() {
        let s = sealed("db", &[("user", "admin"), ("password", "hunter2")]);
        let mut removed = produced(&s);
        removed.data.as_mut().expect("data").remove("user");
        assert_eq!(verify_secret(&ring(), &s, &removed), None);
        // Extra keys are outside the proof; the reconcile decision removes them (or,
        // in patch mode, keeps them) like any other difference.
        let mut extra = produced(&s);
        extra
            .data
            .as_mut()
            .expect("data")
            .insert("note".to_owned(), ByteString(b"x".to_vec()));
        assert!(verify_secret(&ring(), &s, &extra).is_some());
    }

    fn with_templates(mut sealed: SealedSecret, templates: &[(&str, &str)]) -> SealedSecret {
        sealed.spec.template.get_or_insert_default().data = Some(
            templates
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        sealed
    }

    #[test]
    fn rendered_templates_are_covered_and_a_changed_template_is_not_in_sync() {
        let s = with_templates(
            sealed("db", &[("user", "admin")]),
            &[("dsn", "db://{{ .user }}"), ("user", "{{ .user | upper }}")],
        );
        let secret = produced(&s);
        assert_eq!(
            produced_keys(&s).into_iter().cloned().collect::<Vec<_>>(),
            ["dsn", "user"]
        );
        assert!(
            verify_secret(&ring(), &s, &secret).is_some(),
            "in sync as written"
        );

        let mut edited = secret.clone();
        edited
            .data
            .as_mut()
            .expect("data")
            .insert("dsn".to_owned(), ByteString(b"db://root".to_vec()));
        assert_eq!(
            verify_secret(&ring(), &s, &edited),
            None,
            "edited rendered value"
        );

        let changed = with_templates(
            sealed("db", &[("user", "admin")]),
            &[
                ("dsn", "db://{{ .user }}:5432"),
                ("user", "{{ .user | upper }}"),
            ],
        );
        let mut same_ciphertext = changed.clone();
        same_ciphertext.spec.encrypted_data = s.spec.encrypted_data.clone();
        assert_eq!(
            verify_secret(&ring(), &same_ciphertext, &secret),
            None,
            "changed template source"
        );
    }

    #[test]
    fn changed_ciphertext_is_not_in_sync() {
        let old = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&old);
        // Re-sealing the same value gives new ciphertext (fresh session key).
        let new = sealed("db", &[("password", "hunter2")]);
        assert_ne!(old.spec.encrypted_data, new.spec.encrypted_data);
        assert_eq!(verify_secret(&ring(), &new, &secret), None);
    }

    #[test]
    fn data_and_proof_copied_from_another_sealed_secret_are_not_in_sync() {
        let a = sealed("a", &[("password", "one")]);
        let b = sealed("b", &[("password", "two")]);
        let secret_a = produced(&a);
        let mut forged_b = produced(&b);
        forged_b.data = secret_a.data.clone();
        forged_b.metadata.annotations = secret_a.metadata.annotations.clone();
        assert_eq!(verify_secret(&ring(), &b, &forged_b), None);
    }

    #[test]
    fn tampered_or_foreign_proof_is_not_in_sync() {
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
            assert_eq!(verify_secret(&ring(), &s, &secret), None, "{bad:?}");
        }
    }

    #[test]
    fn key_no_longer_in_the_ring_cannot_prove_sync() {
        let s = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&s);
        let mut ring = ring();
        ring.remove(test_keys()[2].0.fingerprint());
        assert_eq!(verify_secret(&ring, &s, &secret), None);
    }

    #[test]
    fn proof_reveals_no_plain_hash_of_the_value() {
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
        let other_key = BTreeSet::from([test_keys()[0].0.fingerprint().clone()]);
        let other = proof(&ring(), &other_key, &s, secret.data.as_ref().expect("d")).expect("v");
        assert_ne!(value.rsplit(':').next(), other.rsplit(':').next());
    }

    #[test]
    fn deprecated_spec_data_is_never_fast_pathed() {
        let mut s = sealed("db", &[("password", "hunter2")]);
        let secret = produced(&s);
        s.spec.data = Some("AAAA".to_owned());
        assert_eq!(verify_secret(&ring(), &s, &secret), None);
        let keys = BTreeSet::from([test_keys()[2].0.fingerprint().clone()]);
        assert_eq!(
            proof(&ring(), &keys, &s, secret.data.as_ref().expect("d")),
            None
        );
    }

    /// The test ring plus an age identity tied to `test_keys()[1]`'s RSA key, and one
    /// held on its own.
    fn ring_with_age() -> (KeyRing, AgeIdentity, AgeIdentity) {
        let mut ring = ring();
        let tied = AgeIdentity::generate();
        let alone = AgeIdentity::generate();
        let t = OffsetDateTime::UNIX_EPOCH;
        ring.insert_age(
            tied.clone(),
            t,
            Some(test_keys()[1].0.fingerprint().clone()),
        );
        ring.insert_age(alone.clone(), t, None);
        (ring, tied, alone)
    }

    /// `db` in `app`, strict, with `values` sealed as age envelopes to `recipient`
    /// (and, for `rsa`, RSA values sealed to `test_keys()[2]`).
    fn sealed_mixed(
        recipient: &sealant_keys::AgeRecipient,
        age: &[(&str, &str)],
        rsa: &[(&str, &str)],
    ) -> SealedSecret {
        let mut s = if rsa.is_empty() {
            let mut s = sealed("db", &[("unused", "x")]);
            s.spec.encrypted_data.clear();
            s
        } else {
            sealed("db", rsa)
        };
        let label = label(&s).expect("a label");
        for (k, v) in age {
            let blob = sealant_keys::age_envelope::seal(
                std::slice::from_ref(recipient),
                &label,
                v.as_bytes(),
            )
            .expect("seals");
            s.spec.encrypted_data.insert(
                (*k).to_owned(),
                base64::engine::general_purpose::STANDARD.encode(blob),
            );
        }
        s
    }

    #[test]
    fn value_opened_by_an_age_identity_is_proven_in_sync_under_its_tied_rsa_key() {
        let (ring, tied, _) = ring_with_age();
        let s = sealed_mixed(tied.recipient(), &[("password", "hunter2")], &[]);
        let secret = produced_with(&ring, &s);
        let rsa = test_keys()[1].0.fingerprint().clone();
        let value = &secret.metadata.annotations.as_ref().expect("a")[ANNOTATION];
        assert!(value.starts_with(&format!("v1:{rsa}:")), "{value}");
        assert_eq!(
            verify_secret(&ring, &s, &secret),
            Some(BTreeSet::from([rsa.clone()]))
        );
        assert_eq!(signer(proof_in(&secret)), Some(rsa.clone()));
        // The MAC key is the tied RSA key's: the same as for an RSA value of that key.
        let tag = value.rsplit(':').next().expect("tag");
        let mac = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(tag)
            .expect("b64");
        let msg = message(
            std::slice::from_ref(&rsa),
            &s,
            secret.data.as_ref().expect("d"),
        )
        .expect("message");
        assert!(hmac::verify(&mac_key(&test_keys()[1].0), &msg, &mac).is_ok());
        // Retiring the key generation (its RSA key) ends the proof.
        let mut retired = ring.clone();
        retired.remove(&rsa);
        assert_eq!(verify_secret(&retired, &s, &secret), None);
    }

    #[test]
    fn value_opened_by_an_identity_held_alone_is_signed_with_a_key_derived_from_it() {
        let (ring, _, alone) = ring_with_age();
        let s = sealed_mixed(alone.recipient(), &[("password", "hunter2")], &[]);
        let secret = produced_with(&ring, &s);
        let name = Fingerprint::from_string(alone.recipient().to_string());
        assert_eq!(
            verify_secret(&ring, &s, &secret),
            Some(BTreeSet::from([name]))
        );
        let mut without = ring.clone();
        without.remove_age(alone.recipient());
        assert_eq!(verify_secret(&without, &s, &secret), None);
    }

    #[test]
    fn values_opened_by_two_key_generations_name_both_inside_the_mac() {
        let (ring, tied, _) = ring_with_age();
        let s = sealed_mixed(
            tied.recipient(),
            &[("b", "age value")],
            &[("a", "rsa value")],
        );
        let secret = produced_with(&ring, &s);
        let both = BTreeSet::from([
            test_keys()[1].0.fingerprint().clone(),
            test_keys()[2].0.fingerprint().clone(),
        ]);
        let value = secret.metadata.annotations.as_ref().expect("a")[ANNOTATION].clone();
        assert!(value.starts_with("v2:"), "{value}");
        assert_eq!(verify_secret(&ring, &s, &secret), Some(both.clone()));
        assert_eq!(signer(proof_in(&secret)).as_ref(), both.iter().next());
        // The list cannot be edited: dropping a key, or reordering, breaks the proof.
        let keys: Vec<&Fingerprint> = both.iter().collect();
        let (list, tag) = value
            .strip_prefix("v2:")
            .and_then(|r| r.rsplit_once(':'))
            .expect("v2 shape");
        for forged in [
            format!("v1:{}:{tag}", keys[0]),
            format!("v2:{},{}:{tag}", keys[1], keys[0]),
            format!("v2:{list},{}:{tag}", keys[0]),
        ] {
            let mut edited = secret.clone();
            edited
                .metadata
                .annotations
                .as_mut()
                .expect("a")
                .insert(ANNOTATION.to_owned(), forged.clone());
            assert_eq!(verify_secret(&ring, &s, &edited), None, "{forged}");
        }
        // Every listed key must still be held, not only the signer.
        let mut retired = ring.clone();
        retired.remove(keys[1]);
        assert_eq!(verify_secret(&retired, &s, &secret), None);
    }
}
