//! Unit tests of the key store and key Secret handling, and the test keys other
//! modules' tests share ([`test_keys`]).

use std::sync::OnceLock;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use sealant_crds::key_secret::KeyOrder;

use super::*;

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn renewal_waits_for_the_second_after_the_newest_key_so_it_sorts_newest() {
    let newest = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
    let ms = |n: u64| Duration::from_millis(n);
    assert_eq!(wait_to_sort_newest(None, newest), Duration::ZERO);
    // Same second as the newest key: wait for the next one.
    assert_eq!(wait_to_sort_newest(Some(newest), newest + ms(300)), ms(700));
    assert_eq!(
        wait_to_sort_newest(Some(newest), newest),
        Duration::from_secs(1)
    );
    // Already in a later second: no wait.
    assert_eq!(
        wait_to_sort_newest(Some(newest), newest + ms(1_000)),
        Duration::ZERO
    );
    assert_eq!(
        wait_to_sort_newest(Some(newest), newest + DAY),
        Duration::ZERO
    );
    // A newest key from a clock far ahead is not waited for.
    assert_eq!(
        wait_to_sort_newest(Some(newest + DAY), newest),
        Duration::ZERO
    );
}

/// A SealedSecret `app/db` holding `password: hunter2`, sealed (strict) to
/// `test_keys()[2]`, as the API server would return it (with `uid`).
pub(crate) fn sealed_app_db(uid: &str) -> sealant_crds::SealedSecret {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("db".to_owned()),
            namespace: Some("app".to_owned()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([(
            "password".to_owned(),
            "hunter2".to_owned(),
        )])),
        ..Secret::default()
    };
    let mut sealed = sealant_crds::seal_secret(
        &secret,
        test_keys()[2].1.public_key(),
        &sealant_crds::SealOptions::default(),
    )
    .expect("seals");
    sealed.metadata.uid = Some(uid.to_owned());
    sealed
}

/// Generating RSA keys is slow; tests share three 2048-bit keys.
pub(crate) fn test_keys() -> &'static [(PrivateKey, Certificate); 3] {
    static KEYS: OnceLock<[(PrivateKey, Certificate); 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mk = |days_ago: i64| {
            let now = OffsetDateTime::now_utc() - time::Duration::days(days_ago);
            generate(2048, 3650 * DAY, "test", now).expect("generate")
        };
        [mk(30), mk(20), mk(10)]
    })
}

fn at(t: OffsetDateTime) -> Time {
    Time(Timestamp::from_nanosecond(t.unix_timestamp_nanos()).expect("in range"))
}

fn key_secret(name: &str, key: &PrivateKey, cert: &Certificate, created: OffsetDateTime) -> Secret {
    let mut s = new_key_secret(
        key,
        cert,
        None,
        "kube-system",
        "sealed-secrets-key",
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    s.metadata.generate_name = None;
    s.metadata.name = Some(name.to_owned());
    s.metadata.creation_timestamp = Some(at(created));
    s
}

#[test]
fn new_key_secret_has_bitnami_shape() {
    let (key, cert) = &test_keys()[0];
    let labels = BTreeMap::from([
        ("team".to_owned(), "sec".to_owned()),
        (KEY_LABEL.to_owned(), "retired".to_owned()),
    ]);
    let annotations = BTreeMap::from([("backup".to_owned(), "yes".to_owned())]);
    let s = new_key_secret(
        key,
        cert,
        None,
        "kube-system",
        "sealed-secrets-key",
        &labels,
        &annotations,
    );
    assert_eq!(
        s.metadata.generate_name.as_deref(),
        Some("sealed-secrets-key")
    );
    assert_eq!(s.metadata.name, None);
    assert_eq!(s.metadata.namespace.as_deref(), Some("kube-system"));
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    let l = s.metadata.labels.clone().expect("labels");
    assert_eq!(
        l.get(KEY_LABEL).map(String::as_str),
        Some("active"),
        "extra labels cannot retire the key"
    );
    assert_eq!(l.get("team").map(String::as_str), Some("sec"));
    assert_eq!(
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("backup"))
            .map(String::as_str),
        Some("yes")
    );
    let data = s.data.clone().expect("data");
    let tls_key = String::from_utf8(data[TLS_KEY].0.clone()).expect("utf8");
    assert!(
        tls_key.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "PKCS#1 is written"
    );
    let tls_crt = String::from_utf8(data[TLS_CERT].0.clone()).expect("utf8");
    assert!(tls_crt.starts_with("-----BEGIN CERTIFICATE-----"));
    // And it loads back.
    let (entry, _) =
        key_secret::read_entry(&s, KeyReading::Live(KeyOrder::CertNotBefore)).expect("reads back");
    assert_eq!(entry.key.fingerprint(), key.fingerprint());
    assert_eq!(
        entry.certificate.as_ref().map(Certificate::fingerprint),
        Some(cert.fingerprint())
    );
}

/// A key Secret as this controller writes it: with an age identity.
fn key_secret_with_age(
    name: &str,
    key: &PrivateKey,
    cert: &Certificate,
    created: OffsetDateTime,
) -> (Secret, AgeIdentity) {
    let identity = AgeIdentity::generate();
    let mut s = key_secret(name, key, cert, created);
    let fresh = new_key_secret(
        key,
        cert,
        Some(&identity),
        "kube-system",
        "p",
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    s.data = fresh.data;
    (s, identity)
}

#[test]
fn new_key_secret_stores_the_age_identity_as_an_identity_file_beside_the_tls_keys() {
    let (key, cert) = &test_keys()[0];
    let identity = AgeIdentity::generate();
    let s = new_key_secret(
        key,
        cert,
        Some(&identity),
        "kube-system",
        "p",
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    assert_eq!(s.type_.as_deref(), Some(TLS_SECRET_TYPE));
    let data = s.data.clone().expect("data");
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, vec![AGE_KEY, TLS_CERT, TLS_KEY]);
    let file = String::from_utf8(data[AGE_KEY].0.clone()).expect("utf8");
    assert_eq!(
        file.lines().next(),
        Some(format!("# public key: {}", identity.recipient()).as_str())
    );
    assert!(
        file.contains("AGE-SECRET-KEY-1"),
        "an age-keygen identity file"
    );
    let read = key_secret::read_age_identity(&s)
        .expect("reads")
        .expect("present");
    assert_eq!(read.recipient(), identity.recipient());
}

#[test]
fn age_identity_loads_tied_to_its_rsa_key_with_the_same_time() {
    let keys = test_keys();
    let now = OffsetDateTime::now_utc();
    let (older, older_id) =
        key_secret_with_age("a", &keys[0].0, &keys[0].1, now - time::Duration::days(2));
    let (newer, newer_id) = key_secret_with_age("b", &keys[2].0, &keys[2].1, now);
    let bitnami = key_secret("c", &keys[1].0, &keys[1].1, now - time::Duration::days(1));
    let loaded = load(
        &[older, bitnami, newer],
        "p",
        KeyOrderPriority::SecretCreationTimestamp,
    );
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    assert_eq!(loaded.keys.ring.len(), 3);
    assert_eq!(loaded.keys.ring.age_len(), 2, "the Bitnami Secret has none");
    assert_eq!(
        loaded.keys.newest_age_recipient(),
        Some(newer_id.recipient())
    );
    let tied = loaded
        .keys
        .ring
        .age_for_rsa(keys[0].0.fingerprint())
        .expect("tied");
    assert_eq!(tied.identity.recipient(), older_id.recipient());
    let rsa_time = loaded
        .keys
        .ring
        .get(keys[0].0.fingerprint())
        .expect("held")
        .created;
    assert_eq!(tied.created, rsa_time);
    assert!(
        loaded
            .keys
            .ring
            .age_for_rsa(keys[1].0.fingerprint())
            .is_none()
    );
}

#[test]
fn load_keeps_each_loaded_key_secret_trimmed_newest_first_and_redacted_in_debug() {
    let keys = test_keys();
    let now = OffsetDateTime::now_utc();
    let mut secrets: Vec<Secret> = keys
        .iter()
        .enumerate()
        .map(|(i, (k, c))| key_secret(&format!("k{i}"), k, c, now))
        .collect();
    secrets[0].metadata.resource_version = Some("3".to_owned());
    secrets[1]
        .data
        .as_mut()
        .expect("data")
        .insert(TLS_KEY.to_owned(), ByteString(b"not pem".to_vec()));
    let loaded = load(&secrets, "p", KeyOrderPriority::CertNotBefore);
    let kept: Vec<(&Fingerprint, &LoadedSecret)> = loaded.keys.key_secrets();
    let names: Vec<Option<&str>> = kept
        .iter()
        .map(|(_, s)| s.expose_secret().metadata.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [Some("k2"), Some("k0")],
        "newest first, unreadable left out"
    );
    assert_eq!(kept[1].0, keys[0].0.fingerprint());
    let k0 = kept[1].1.expose_secret();
    assert_eq!(k0.metadata.resource_version, None, "trimmed");
    assert_eq!(k0.metadata.creation_timestamp, None, "trimmed");
    assert_eq!(k0.data, secrets[0].data, "data as loaded");
    assert_eq!(k0.metadata.labels, secrets[0].metadata.labels);
    let debug = format!("{:?}", loaded.keys);
    assert!(debug.contains("LoadedSecret(kube-system/k0)"), "{debug}");
    assert!(
        !debug.contains("PRIVATE KEY") && !debug.contains("tls.key"),
        "{debug}"
    );
}

#[test]
fn bitnami_key_secrets_have_no_age_identity_and_no_recipient_is_published() {
    let (key, cert) = &test_keys()[1];
    let loaded = load(
        &[key_secret("k", key, cert, OffsetDateTime::now_utc())],
        "p",
        KeyOrderPriority::CertNotBefore,
    );
    assert!(loaded.rejected.is_empty());
    assert_eq!(loaded.keys.ring.len(), 1);
    assert_eq!(loaded.keys.ring.age_len(), 0);
    assert_eq!(loaded.keys.newest_age_recipient(), None);
}

#[test]
fn unreadable_age_key_is_reported_and_skipped_but_the_rsa_key_still_loads() {
    let keys = test_keys();
    let now = OffsetDateTime::now_utc();
    let mut bad = Vec::new();
    for (i, junk) in [
        b"not an identity".to_vec(),
        vec![0xff, 0xfe],
        b"# only a comment\n".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let (mut s, _) = key_secret_with_age(&format!("bad{i}"), &keys[i].0, &keys[i].1, now);
        s.data
            .as_mut()
            .expect("data")
            .insert(AGE_KEY.to_owned(), ByteString(junk));
        bad.push(s);
    }
    let (mut two, _) = key_secret_with_age("two", &keys[0].0, &keys[0].1, now);
    let doubled = format!(
        "{}\n{}\n",
        AgeIdentity::generate().expose_secret().as_str(),
        AgeIdentity::generate().expose_secret().as_str()
    );
    two.data
        .as_mut()
        .expect("data")
        .insert(AGE_KEY.to_owned(), ByteString(doubled.into_bytes()));
    let loaded = load(&bad, "p", KeyOrderPriority::CertNotBefore);
    assert_eq!(loaded.keys.ring.len(), 3, "every RSA key still loads");
    assert_eq!(loaded.keys.ring.age_len(), 0);
    let messages: Vec<String> = loaded.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    for m in &messages {
        assert!(
            m.starts_with("key secret kube-system/bad") && m.ends_with("cannot read data.age.key"),
            "{m}"
        );
    }
    let err = key_secret::read_age_identity(&two).expect_err("two identities");
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err).expect("source")
    );
    assert!(chain.contains("exactly one identity"), "{chain}");
    assert!(
        !chain.contains("AGE-SECRET-KEY"),
        "never quotes the key: {chain}"
    );
}

#[test]
fn new_key_secret_without_extra_annotations_has_none() {
    let (key, cert) = &test_keys()[0];
    let s = new_key_secret(
        key,
        cert,
        None,
        "ns",
        "p",
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    assert_eq!(s.metadata.annotations, None);
    assert_eq!(s.metadata.labels.map(|l| l.len()), Some(1));
}

#[test]
fn newest_key_by_cert_not_before_seals() {
    let keys = test_keys();
    let now = OffsetDateTime::now_utc();
    // Creation times in the opposite order of NotBefore.
    let secrets: Vec<Secret> = keys
        .iter()
        .enumerate()
        .map(|(i, (k, c))| key_secret(&format!("k{i}"), k, c, now - time::Duration::days(i as i64)))
        .collect();
    // By NotBefore the last key is newest; by creation time the first.
    for (priority, newest) in [
        (KeyOrderPriority::CertNotBefore, &keys[2]),
        (KeyOrderPriority::SecretCreationTimestamp, &keys[0]),
    ] {
        let loaded = load(&secrets, "sealed-secrets-key", priority);
        assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
        assert_eq!(loaded.keys.ring.len(), 3);
        assert_eq!(
            loaded.keys.ring.newest().map(|e| e.key.fingerprint()),
            Some(newest.0.fingerprint()),
            "{priority:?}"
        );
        assert_eq!(
            loaded
                .keys
                .newest_certificate()
                .map(Certificate::fingerprint),
            Some(newest.1.fingerprint()),
            "{priority:?}"
        );
    }
}

#[test]
fn on_equal_times_the_first_created_secret_stays_newest() {
    let keys = test_keys();
    let t = OffsetDateTime::now_utc();
    let a = key_secret("a", &keys[0].0, &keys[0].1, t);
    let b = key_secret("b", &keys[1].0, &keys[1].1, t);
    for order in [vec![a.clone(), b.clone()], vec![b, a]] {
        let loaded = load(&order, "p", KeyOrderPriority::SecretCreationTimestamp);
        assert_eq!(
            loaded.keys.ring.newest().map(|e| e.key.fingerprint()),
            Some(keys[0].0.fingerprint())
        );
    }
}

#[test]
fn unreadable_key_secret_is_reported_by_name_and_field_and_skipped() {
    let keys = test_keys();
    let now = OffsetDateTime::now_utc();
    let good = key_secret("good", &keys[0].0, &keys[0].1, now);
    let mut bad_key = key_secret("bad-key", &keys[1].0, &keys[1].1, now);
    bad_key
        .data
        .as_mut()
        .expect("data")
        .insert(TLS_KEY.to_owned(), ByteString(b"not pem".to_vec()));
    let mut no_cert = key_secret("no-cert", &keys[1].0, &keys[1].1, now);
    no_cert.data.as_mut().expect("data").remove(TLS_CERT);
    let mut wrong_cert = key_secret("wrong-cert", &keys[1].0, &keys[2].1, now);
    wrong_cert.metadata.name = Some("wrong-cert".to_owned());

    let loaded = load(
        &[bad_key, good, no_cert, wrong_cert],
        "p",
        KeyOrderPriority::CertNotBefore,
    );
    assert_eq!(loaded.keys.ring.len(), 1, "the readable key still loads");
    let messages: Vec<String> = loaded.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages.contains(&"key secret kube-system/bad-key: cannot read data.tls.key".to_owned()),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"key secret kube-system/no-cert: data.tls.crt is missing".to_owned()),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("kube-system/wrong-cert") && m.contains("does not belong")),
        "{messages:?}"
    );
}

#[test]
fn legacy_unlabelled_secret_named_prefix_loads_and_others_are_ignored() {
    let keys = test_keys();
    let now = OffsetDateTime::now_utc();
    let mut legacy = key_secret("sealed-secrets-key", &keys[0].0, &keys[0].1, now);
    legacy.metadata.labels = None;
    let mut unrelated = key_secret("other", &keys[1].0, &keys[1].1, now);
    unrelated.metadata.labels = None;
    let mut retired = key_secret("sealed-secrets-keyabc", &keys[2].0, &keys[2].1, now);
    retired
        .metadata
        .labels
        .as_mut()
        .expect("labels")
        .insert(KEY_LABEL.to_owned(), "compromised".to_owned());
    let loaded = load(
        &[legacy, unrelated, retired],
        "sealed-secrets-key",
        KeyOrderPriority::CertNotBefore,
    );
    assert_eq!(loaded.keys.ring.len(), 1);
    assert_eq!(
        loaded.keys.ring.newest().map(|e| e.key.fingerprint()),
        Some(keys[0].0.fingerprint())
    );
    assert!(loaded.rejected.is_empty());
}

#[test]
fn renewal_schedule_follows_bitnami() {
    let now = OffsetDateTime::now_utc();
    let period = 30 * DAY;
    assert_eq!(renewal(None, now, period, None), Renewal::Now, "no key yet");
    assert_eq!(
        renewal(None, now, Duration::ZERO, None),
        Renewal::Now,
        "first key even with renewal off"
    );
    let newest = now - time::Duration::days(10);
    assert_eq!(
        renewal(Some(newest), now, period, None),
        Renewal::At(newest + time::Duration::days(30))
    );
    assert_eq!(
        renewal(Some(newest), now, Duration::ZERO, None),
        Renewal::Never
    );
    let old = now - time::Duration::days(31);
    assert_eq!(
        renewal(Some(old), now, period, None),
        Renewal::Now,
        "overdue"
    );
    let cutoff = now - time::Duration::days(5);
    assert_eq!(
        renewal(Some(newest), now, period, Some(cutoff)),
        Renewal::Now,
        "older than cutoff"
    );
    assert_eq!(
        renewal(Some(newest), now, Duration::ZERO, Some(cutoff)),
        Renewal::Now,
        "cutoff applies with renewal off"
    );
    let early_cutoff = now - time::Duration::days(20);
    assert_eq!(
        renewal(Some(newest), now, period, Some(early_cutoff)),
        Renewal::At(newest + time::Duration::days(30)),
        "newer than cutoff"
    );
    assert_eq!(
        renewal(Some(newest), now, Duration::MAX, None),
        Renewal::Never,
        "unrepresentable period"
    );
}

#[test]
fn namespace_comes_from_pod_namespace_then_service_account_then_default() {
    assert_eq!(namespace_from(Some("a".into()), Some("b".into())), "a");
    assert_eq!(
        namespace_from(Some(String::new()), Some(" b\n".into())),
        "b"
    );
    assert_eq!(namespace_from(None, Some("  ".into())), "default");
    assert_eq!(namespace_from(None, None), "default");
}
