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
pub(crate) mod tests;
