//! Round trips through the public API with freshly generated keys.

use std::time::Duration;

use sealant_keys::{Certificate, Error, KeyRing, OffsetDateTime, PrivateKey, Scope, hybrid};

fn key_2048() -> PrivateKey {
    PrivateKey::generate(2048).expect("generate")
}

#[test]
fn sealed_value_opens_with_the_same_key_and_label() {
    let key = key_2048();
    let label = Scope::Strict.label("prod", "db");
    let blob = hybrid::seal(key.public_key(), b"s3cret", &label).expect("seal");
    assert_eq!(&blob[..2], &256u16.to_be_bytes());
    let opened = hybrid::open(&key, &blob, &label).expect("open");
    assert_eq!(opened.expose_secret(), b"s3cret");
}

#[test]
fn strict_scope_rejects_value_moved_to_other_namespace() {
    let key = key_2048();
    let blob =
        hybrid::seal(key.public_key(), b"v", &Scope::Strict.label("prod", "db")).expect("seal");
    let moved = Scope::Strict.label("dev", "db");
    assert!(matches!(
        hybrid::open(&key, &blob, &moved),
        Err(Error::Decrypt)
    ));
}

#[test]
fn key_ring_finds_the_older_key_and_reports_its_fingerprint() {
    let old = key_2048();
    let new = key_2048();
    let mut ring = KeyRing::new();
    let t0 = OffsetDateTime::UNIX_EPOCH;
    assert!(ring.insert(old.clone(), t0));
    assert!(ring.insert(new.clone(), t0 + Duration::from_secs(60)));
    assert!(!ring.insert(new.clone(), t0), "duplicate keys are refused");
    assert_eq!(
        ring.newest().expect("newest").key.fingerprint(),
        new.fingerprint()
    );

    let blob = hybrid::seal(old.public_key(), b"x", b"ns").expect("seal");
    let opened = ring.open(&blob, b"ns", None).expect("open");
    assert_eq!(opened.fingerprint, *old.fingerprint());
    let hinted = ring
        .open(&blob, b"ns", Some(new.fingerprint()))
        .expect("open with wrong hint");
    assert_eq!(hinted.plaintext.expose_secret(), b"x");
}

#[test]
fn pem_pkcs1_round_trip_keeps_the_key() {
    let key = key_2048();
    let pem = key.expose_pkcs1_pem();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let back = PrivateKey::from_pem(pem.as_bytes()).expect("parse");
    assert_eq!(back.fingerprint(), key.fingerprint());
}

#[test]
fn self_signed_certificate_carries_the_key_and_refuses_after_expiry() {
    let key = key_2048();
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
    let cert =
        Certificate::self_signed(&key, Duration::from_secs(3600), "sealant", now).expect("cert");
    let back = Certificate::from_pem(cert.to_pem().as_bytes()).expect("parse");
    assert!(back.matches(&key));
    assert_eq!(back.common_name(), Some("sealant"));
    back.check_not_expired(now).expect("valid now");
    assert!(matches!(
        back.check_not_expired(now + Duration::from_secs(7200)),
        Err(Error::CertificateExpired { .. })
    ));
}

#[test]
fn pem_output_uses_lf_line_endings_as_go_writes_them() {
    let key = key_2048();
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
    let cert =
        Certificate::self_signed(&key, Duration::from_secs(3600), "sealant", now).expect("cert");
    for pem in [cert.to_pem(), key.expose_pkcs1_pem().to_string()] {
        assert!(!pem.contains('\r'), "CR in {:?}", &pem[..40]);
        assert!(pem.ends_with("-----\n"));
    }
}
