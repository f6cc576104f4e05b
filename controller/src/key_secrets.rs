//! Key Secrets: how sealing keys live in the cluster, byte for byte as Bitnami stores
//! them, so each controller can load the other's keys.
//!
//! ```text
//!   Secrets in the controller's namespace
//!     ├─ label sealedsecrets.bitnami.com/sealed-secrets-key=active ─┐
//!     └─ legacy: unlabelled, named exactly <prefix> ─────────────────┤
//!                                                                    ▼
//!        load(): key_secret::read_entry(Live(--key-order-priority)), the loader the CLI shares
//!                ├─ tls.key (PKCS#1 or PKCS#8 PEM) + tls.crt ──▶ Keys { KeyRing, certificates }
//!                │                                   └─ unreadable Secret ──▶ rejected[] (skipped, reported)
//!                ├─ age.key (optional) ──▶ KeyRing age identity, tied to that RSA key
//!                │                         └─ unreadable ──▶ rejected[] (the RSA key still loads)
//!                └─ the Secret itself, trimmed (backup_secret) ──▶ Keys::secrets (what escrow bundles hold)
//!   new key ──▶ new_key_secret(): generateName <prefix>, type kubernetes.io/tls, label active,
//!               tls.key + tls.crt + age.key
//! ```
//!
//! ## The age identity of a key generation
//!
//! Every key generation this controller makes also has an X25519 age identity, kept in
//! the same Secret under the extra data key [`AGE_KEY`] (`age.key`), as an age identity
//! file in `age-keygen`'s layout (without its `# created:` line):
//!
//! ```text
//!   # public key: age1...
//!   AGE-SECRET-KEY-1...
//! ```
//!
//! Its recipient (`age1...`) is what `/v1/age-recipient` publishes for multi-cluster
//! sealing. The identity is inserted into the key ring tied to the RSA key of the same
//! Secret and with the same ordering time, so a value it opens is reported under that
//! RSA key's fingerprint, and it is retired and restored together with it. Bitnami's
//! controller reads only `tls.crt` and `tls.key` of a `kubernetes.io/tls` Secret, so it
//! still loads such a Secret (the interop suite proves it); Secrets it wrote have no
//! `age.key` and load exactly as before, with no age identity.
//!
//! How one key Secret is read (fields, the certificate check, the ordering time, the
//! age identity) is [`sealant_crds::key_secret::read_entry`]'s rule, shared with the
//! CLI's recovery; this module decides which Secrets are keys, in which order they are
//! registered, what a skipped one reports, and when the next key is made.
//!
//! Guarantees:
//! - a key Secret that cannot be read never stops the others from loading: it is
//!   returned in [`Loaded::rejected`] as an [`Error`] naming `namespace/name` and the
//!   field, and skipped;
//! - a certificate that does not belong to its private key is rejected, so
//!   `/v1/cert.pem` never publishes a certificate whose key the controller lacks;
//! - ordering is Bitnami's: by certificate NotBefore or Secret creation time
//!   (`--key-order-priority`); on a tie the Secret created first stays newest, as in
//!   Bitnami (which registers in creation order and replaces only on a strictly later
//!   time);
//! - [`renewal`] is a pure function of the newest key's time, the clock, the period
//!   and the cutoff, so the schedule is tested without waiting.
//!
//! The Secret built by [`new_key_secret`] necessarily carries the private key as plain
//! bytes (the API server needs them); it must go straight to the API call and be
//! dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_crds::key_secret::{self, KeyEntry, KeyReading};
use sealant_keys::{
    AgeIdentity, AgeRecipient, Certificate, Fingerprint, KeyRing, OffsetDateTime, PrivateKey,
};

use crate::Error;
use crate::flags::KeyOrderPriority;

pub use sealant_crds::key_secret::{
    ACTIVE, AGE_KEY, KEY_LABEL, KEY_SELECTOR, TLS_CERT, TLS_KEY, TLS_SECRET_TYPE, object_ref,
};

/// The loaded keys: the ring that unseals, the certificates that are published, and
/// the key Secrets they were read from (what an escrow bundle holds).
#[derive(Clone, Debug, Default)]
pub struct Keys {
    /// Every readable key, newest first.
    pub ring: KeyRing,
    /// The certificate of each key in the ring.
    pub certificates: HashMap<Fingerprint, Certificate>,
    /// The key Secret each key of the ring was loaded from (or written as), trimmed by
    /// [`key_secret::backup_secret`]. A key inserted without its Secret has none here.
    pub secrets: HashMap<Fingerprint, LoadedSecret>,
}

/// A key Secret as it was loaded, trimmed by [`key_secret::backup_secret`] (name,
/// namespace, labels, annotations, type, data): what an escrow bundle restores.
///
/// It holds a private key, so its `Debug` shows only `namespace/name`, reading it is
/// the visible [`LoadedSecret::expose_secret`], and its data is wiped when dropped.
#[derive(Clone)]
pub struct LoadedSecret(Secret);

impl LoadedSecret {
    /// Keeps a trimmed copy of `secret`.
    pub fn new(secret: &Secret) -> Self {
        Self(key_secret::backup_secret(secret))
    }

    /// The Secret, private key included.
    pub fn expose_secret(&self) -> &Secret {
        &self.0
    }
}

impl std::fmt::Debug for LoadedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadedSecret({})", object_ref(&self.0.metadata))
    }
}

impl Drop for LoadedSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        for value in self.0.data.iter_mut().flat_map(|d| d.values_mut()) {
            value.0.zeroize();
        }
        for value in self.0.string_data.iter_mut().flat_map(|d| d.values_mut()) {
            value.zeroize();
        }
    }
}

/// The keys the controller holds now, shared between the reconcile workers, the HTTP
/// API and the key watcher. Readers take a cheap snapshot; the key manager swaps in a
/// whole new [`Keys`] when key Secrets change, so a reader never sees half an update.
#[derive(Debug, Default)]
pub struct KeyStore(RwLock<Arc<Keys>>);

impl KeyStore {
    /// A store holding `keys`.
    pub fn new(keys: Keys) -> Self {
        Self(RwLock::new(Arc::new(keys)))
    }

    /// The keys as they are now.
    pub fn snapshot(&self) -> Arc<Keys> {
        // A poisoned lock only means a writer panicked between taking the lock and
        // storing an Arc; the Arc inside is always whole, so keep using it.
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the keys.
    pub fn replace(&self, keys: Keys) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }
}

/// What [`load`] found: the keys, and the key Secrets it skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every readable key.
    pub keys: Keys,
    /// Key Secrets that were skipped because they could not be read, one error each.
    pub rejected: Vec<Error>,
}

impl Keys {
    /// The certificate of the newest key: what `/v1/cert.pem` serves and what seals.
    pub fn newest_certificate(&self) -> Option<&Certificate> {
        let newest = self.ring.newest()?;
        self.certificates.get(newest.key.fingerprint())
    }

    /// The recipient of the newest key generation that has an age identity: what
    /// `/v1/age-recipient` serves.
    pub fn newest_age_recipient(&self) -> Option<&AgeRecipient> {
        self.ring.newest_age().map(|e| e.identity.recipient())
    }

    /// The ordering time of the newest key, which drives renewal.
    pub fn newest_time(&self) -> Option<OffsetDateTime> {
        self.ring.newest().map(|e| e.created)
    }

    /// The key Secrets of the ring's keys, newest first, each with its key's
    /// fingerprint; keys held without their Secret are left out.
    pub fn key_secrets(&self) -> Vec<(&Fingerprint, &LoadedSecret)> {
        self.ring
            .iter()
            .filter_map(|e| {
                let fingerprint = e.key.fingerprint();
                self.secrets.get(fingerprint).map(|s| (fingerprint, s))
            })
            .collect()
    }

    /// Records the key Secret that `fingerprint`'s key was loaded from or written as.
    /// Ignored when the ring does not hold that key.
    pub fn set_secret(&mut self, fingerprint: &Fingerprint, secret: &Secret) {
        if self.ring.get(fingerprint).is_some() {
            self.secrets
                .insert(fingerprint.clone(), LoadedSecret::new(secret));
        }
    }

    /// Adds a key read by [`key_secret::read_entry`] (or just made): the key, its
    /// certificate, and the age identity of its key generation, if any, tied to it and
    /// ordered with the same time ([`KeyEntry::insert_into`]). Returns `false`, and
    /// changes nothing, if the ring already held the key.
    pub fn insert(&mut self, mut entry: KeyEntry) -> bool {
        let fingerprint = entry.key.fingerprint().clone();
        if self.ring.get(&fingerprint).is_some() {
            return false;
        }
        if let Some(certificate) = entry.certificate.take() {
            self.certificates.insert(fingerprint, certificate);
        }
        entry.insert_into(&mut self.ring)
    }
}

/// True when `secret` is a key Secret for `prefix`: labelled active, or the legacy
/// key Secret named exactly `prefix` (loaded whatever its labels, as Bitnami does).
pub fn is_key_secret(secret: &Secret, prefix: &str) -> bool {
    key_secret::is_active(secret) || secret.metadata.name.as_deref() == Some(prefix)
}

/// Loads every key Secret of `secrets` that [`is_key_secret`] accepts into a key ring,
/// each read by [`key_secret::read_entry`] as a live key ordered by `priority`.
/// Unreadable Secrets are reported in [`Loaded::rejected`] and skipped; other Secrets
/// are ignored. An unreadable [`AGE_KEY`] is reported too, and only the age identity
/// is skipped: the RSA key of that Secret still loads.
pub fn load(secrets: &[Secret], prefix: &str, priority: KeyOrderPriority) -> Loaded {
    let mut candidates: Vec<&Secret> = secrets
        .iter()
        .filter(|s| is_key_secret(s, prefix))
        .collect();
    // Bitnami registers keys in creation order; with ties on the ordering time the
    // first registered stays newest. KeyRing::insert keeps the earlier entry on ties,
    // so inserting in the same order gives the same newest key.
    candidates.sort_by_key(|s| (key_secret::creation_time(s), s.metadata.name.clone()));

    let reading = KeyReading::Live(priority.into());
    let mut loaded = Loaded::default();
    for secret in candidates {
        match key_secret::read_entry(secret, reading) {
            Ok((entry, age_error)) => {
                loaded.rejected.extend(age_error.map(Error::KeyMaterial));
                let fingerprint = entry.key.fingerprint().clone();
                if loaded.keys.insert(entry) {
                    loaded.keys.set_secret(&fingerprint, secret);
                }
            }
            Err(e) => loaded.rejected.push(Error::KeyMaterial(e)),
        }
    }
    loaded
}

/// Generates a key pair and its self-signed certificate, as Bitnami does: `bits`
/// RSA, valid from `now` for `ttl`, CN `common_name`. CPU-heavy (seconds for
/// RSA-4096): call it off the async runtime.
pub fn generate(
    bits: usize,
    ttl: Duration,
    common_name: &str,
    now: OffsetDateTime,
) -> Result<(PrivateKey, Certificate), Error> {
    let key = PrivateKey::generate(bits).map_err(Error::KeyGeneration)?;
    let certificate =
        Certificate::self_signed(&key, ttl, common_name, now).map_err(Error::KeyGeneration)?;
    Ok((key, certificate))
}

/// How long a renewal waits before it makes its certificate, so that the new key sorts
/// strictly newest. Key times have one-second resolution (certificate NotBefore, or the
/// Secret's creationTimestamp) and, as in Bitnami, a tie keeps the older key newest: a
/// key made in the same second as the newest one would never seal. A newest key more
/// than [`MAX_RENEWAL_WAIT`] ahead (another writer's clock is off) is not waited for.
pub fn wait_to_sort_newest(newest: Option<OffsetDateTime>, now: OffsetDateTime) -> Duration {
    let Some(newest) = newest else {
        return Duration::ZERO;
    };
    let Ok(next_second) = OffsetDateTime::from_unix_timestamp(newest.unix_timestamp() + 1) else {
        return Duration::ZERO;
    };
    match Duration::try_from(next_second - now) {
        Ok(wait) if wait <= MAX_RENEWAL_WAIT => wait,
        _ => Duration::ZERO,
    }
}

/// The longest [`wait_to_sort_newest`] waits.
pub const MAX_RENEWAL_WAIT: Duration = Duration::from_secs(2);

/// The key Secret to create for a new key, as Bitnami writes it: `generateName`
/// `prefix`, type `kubernetes.io/tls`, `tls.key` as PKCS#1 PEM and `tls.crt` as PEM,
/// the extra `labels` and `annotations` of `--privatekey-labels` /
/// `--privatekey-annotations`, and the label [`KEY_LABEL`]`=`[`ACTIVE`] (which the
/// extra labels cannot override); plus, beyond Bitnami, the key generation's age
/// identity under [`AGE_KEY`] when `age` is given.
pub fn new_key_secret(
    key: &PrivateKey,
    certificate: &Certificate,
    age: Option<&AgeIdentity>,
    namespace: &str,
    prefix: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Secret {
    let mut all_labels = labels.clone();
    all_labels.insert(KEY_LABEL.to_owned(), ACTIVE.to_owned());
    let data = key_secret::key_data(key, certificate, age);
    Secret {
        metadata: ObjectMeta {
            generate_name: Some(prefix.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(all_labels),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            ..ObjectMeta::default()
        },
        type_: Some(TLS_SECRET_TYPE.to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// When the next key must be generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Generate a key now.
    Now,
    /// Generate a key at this time.
    At(OffsetDateTime),
    /// Never automatically (`--key-renew-period=0`); SIGUSR1 still renews.
    Never,
}

/// Bitnami's renewal schedule as a pure function.
///
/// - No key yet: now.
/// - `cutoff` given and the newest key is older than it: now. Pass `cutoff` only at
///   start-up, as Bitnami checks it only then (a cutoff in the future would
///   otherwise renew forever).
/// - `period` zero: never.
/// - Otherwise at `newest + period` (now if that is already past).
pub fn renewal(
    newest: Option<OffsetDateTime>,
    now: OffsetDateTime,
    period: Duration,
    cutoff: Option<OffsetDateTime>,
) -> Renewal {
    let Some(newest) = newest else {
        return Renewal::Now;
    };
    if cutoff.is_some_and(|c| newest < c) {
        return Renewal::Now;
    }
    if period.is_zero() {
        return Renewal::Never;
    }
    // A period too large to represent never comes due.
    let Some(due) = time::Duration::try_from(period)
        .ok()
        .and_then(|p| newest.checked_add(p))
    else {
        return Renewal::Never;
    };
    if due <= now {
        Renewal::Now
    } else {
        Renewal::At(due)
    }
}

/// The controller's namespace: `POD_NAMESPACE`, else the service-account namespace
/// file, else `default`, as Bitnami finds it. The inputs are passed in so that the
/// rule is testable; see [`my_namespace`].
pub fn namespace_from(
    pod_namespace: Option<String>,
    service_account_file: Option<String>,
) -> String {
    if let Some(ns) = pod_namespace.filter(|n| !n.is_empty()) {
        return ns;
    }
    if let Some(ns) = service_account_file
        .map(|s| s.trim().to_owned())
        .filter(|n| !n.is_empty())
    {
        return ns;
    }
    "default".to_owned()
}

/// The controller's namespace, read from the environment and the service-account
/// file.
pub fn my_namespace() -> String {
    namespace_from(
        std::env::var("POD_NAMESPACE").ok(),
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
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

    fn key_secret(
        name: &str,
        key: &PrivateKey,
        cert: &Certificate,
        created: OffsetDateTime,
    ) -> Secret {
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
        let (entry, _) = key_secret::read_entry(&s, KeyReading::Live(KeyOrder::CertNotBefore))
            .expect("reads back");
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
                m.starts_with("key secret kube-system/bad")
                    && m.ends_with("cannot read data.age.key"),
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
            .map(|(i, (k, c))| {
                key_secret(&format!("k{i}"), k, c, now - time::Duration::days(i as i64))
            })
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
            messages
                .contains(&"key secret kube-system/bad-key: cannot read data.tls.key".to_owned()),
            "{messages:?}"
        );
        assert!(
            messages
                .contains(&"key secret kube-system/no-cert: data.tls.crt is missing".to_owned()),
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
}
