//! Key Secrets, byte for byte as Bitnami stores them, and the key backups and escrow
//! bundles built from them.
//!
//! Shared by the controller (which loads, writes and escrows them) and the CLI (which
//! backs them up, restores, lists and retires them, and opens SealedSecrets with
//! them offline), so both read a key Secret the same way: [`read_entry`] is the one
//! loader from key Secret to key ring, and [`order_time`] the one ordering rule.
//!
//! ```text
//!   Secret (type kubernetes.io/tls, label sealedsecrets.bitnami.com/sealed-secrets-key)
//!     data.tls.key  PEM private key (PKCS#1 written; PKCS#1 or PKCS#8 read) ─┐
//!     data.tls.crt  self-signed certificate of that key ─────────────────────┤
//!     data.age.key  sealant only: the key generation's age identity file ────┤
//!     metadata.creationTimestamp (orders keys with --key-order-priority) ────┤
//!                                                                            ▼
//!     read_entry(Live(order))  controller ─┐
//!     read_entry(Backup)       recovery ───┴─▶ KeyEntry ─▶ insert_into() ─▶ KeyRing
//!     read_key_secret()        restore's check ─▶ KeyMaterial
//!
//!   [Secret, ...] ─▶ key_list() ─▶ YAML `List` (Bitnami's backup shape) ─▶ keys::bundle::seal ─▶ bundle
//!   bundle/backup text ─▶ parse_key_list() ─▶ [Secret, ...]
//! ```
//!
//! A backup or escrow bundle is, once decrypted, exactly what Bitnami documents as a
//! key backup (`kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key
//! -o yaml`): a `v1` `List` of these Secrets. Both controllers and `kubectl apply` read
//! it. [`backup_secret`] keeps only what a restore needs (name, namespace, labels,
//! annotations, type, data), so a backup never carries a stale `uid` or
//! `resourceVersion` that would make `kubectl apply` fail on another cluster.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_keys::{AgeIdentity, Certificate, KeyRing, OffsetDateTime, PrivateKey};
use serde_json::{Value, json};

use crate::Error;
use crate::format::parse_documents;

/// The label that marks a key Secret; the value [`ACTIVE`] makes it a live key.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";

/// The value of [`KEY_LABEL`] on live keys. Any other value retires the key.
pub const ACTIVE: &str = "active";

/// The value `sealant keys retire` sets: the key stays in the cluster and in backups,
/// but no controller decrypts with it.
pub const RETIRED: &str = "retired";

/// The label selector that lists live key Secrets.
pub const KEY_SELECTOR: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";

/// The Secret type of key Secrets.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// The data key of the PEM private key.
pub const TLS_KEY: &str = "tls.key";

/// The data key of the PEM certificate.
pub const TLS_CERT: &str = "tls.crt";

/// The extra data key (sealant only) of the key generation's age identity file (one
/// X25519 identity). Optional: Bitnami-written key Secrets lack it.
pub const AGE_KEY: &str = "age.key";

/// The ConfigMap, in the controller's namespace, where a controller with
/// `--escrow-recipient` keeps its escrow bundle.
pub const ESCROW_CONFIG_MAP: &str = "sealant-escrow-bundle";

/// The data key of the armored escrow bundle in [`ESCROW_CONFIG_MAP`].
pub const ESCROW_BUNDLE_KEY: &str = "bundle.age";

/// The key material of one key Secret.
#[derive(Debug)]
pub struct KeyMaterial {
    /// The RSA private key.
    pub key: PrivateKey,
    /// Its self-signed certificate (checked to hold the same public key).
    pub certificate: Certificate,
    /// The age identity of the same key generation, if the Secret has one.
    pub age: Option<AgeIdentity>,
}

/// `namespace/name` of an object (the one definition is in the crate's types).
pub use crate::types::object_ref;

/// True when the Secret carries [`KEY_LABEL`]`=`[`ACTIVE`].
pub fn is_active(secret: &Secret) -> bool {
    label_value(secret) == Some(ACTIVE)
}

/// The value of [`KEY_LABEL`], if the Secret has the label at all.
pub fn label_value(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .labels
        .as_ref()?
        .get(KEY_LABEL)
        .map(String::as_str)
}

/// A field of `data` (or, for hand-written backups, `stringData`), as bytes.
fn field<'a>(secret: &'a Secret, name: &str) -> Option<&'a [u8]> {
    if let Some(value) = secret.string_data.as_ref().and_then(|d| d.get(name)) {
        return Some(value.as_bytes());
    }
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(name))
        .map(|b| b.0.as_slice())
}

/// Reads a key Secret's private key and certificate, checking that they belong
/// together, and its age identity (see [`read_age_identity`]). Errors name the Secret
/// and the field, never the bytes.
pub fn read_key_secret(secret: &Secret) -> Result<KeyMaterial, Error> {
    let (key, certificate) = read_rsa(secret)?;
    let age = read_age_identity(secret)?;
    Ok(KeyMaterial {
        key,
        certificate,
        age,
    })
}

/// Which time orders key Secrets, newest sealing (Bitnami's `--key-order-priority`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyOrder {
    /// The certificate's NotBefore.
    #[default]
    CertNotBefore,
    /// The key Secret's `metadata.creationTimestamp`.
    SecretCreationTimestamp,
}

/// The time that orders the key Secret `secret`, whose certificate is `certificate`,
/// among the others: the one rule for the controller and the CLI. `None` for
/// [`KeyOrder::SecretCreationTimestamp`] when the Secret has no creation timestamp.
pub fn order_time(
    secret: &Secret,
    certificate: &Certificate,
    order: KeyOrder,
) -> Option<OffsetDateTime> {
    match order {
        KeyOrder::CertNotBefore => Some(certificate.not_before()),
        KeyOrder::SecretCreationTimestamp => creation_time(secret),
    }
}

/// A Secret's `metadata.creationTimestamp`, as a time.
pub fn creation_time(secret: &Secret) -> Option<OffsetDateTime> {
    let ts = secret.metadata.creation_timestamp.as_ref()?;
    OffsetDateTime::from_unix_timestamp_nanos(ts.0.as_nanosecond()).ok()
}

/// How [`read_entry`] reads a key Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyReading {
    /// A live key, as the controller loads it: `tls.crt` must be there and belong to
    /// the private key (so `/v1/cert.pem` never publishes a certificate whose key is
    /// missing), and the key is ordered by [`order_time`]; a Secret without a creation
    /// timestamp is refused under [`KeyOrder::SecretCreationTimestamp`].
    Live(KeyOrder),
    /// A key backup, as `--recovery-unseal` and `reencrypt` load it, hand-made ones
    /// included: only `tls.key` is needed. A readable `tls.crt` orders the key by its
    /// NotBefore, else the Secret's creation time does, else the Unix epoch; the
    /// certificate is neither checked against the key nor kept, because the order
    /// only decides which key is tried first.
    Backup,
}

/// One key Secret, read for a key ring: the RSA key, the time that orders it, its
/// certificate and the age identity of the same key generation.
#[derive(Debug)]
pub struct KeyEntry {
    /// The RSA private key (`tls.key`).
    pub key: PrivateKey,
    /// Its certificate (`tls.crt`): there, and checked to hold the same public key,
    /// when read as [`KeyReading::Live`]; `None` when read as [`KeyReading::Backup`].
    pub certificate: Option<Certificate>,
    /// The time that orders the key, and its age identity, in the ring.
    pub time: OffsetDateTime,
    /// The age identity of the same key generation (`age.key`), if the Secret has a
    /// readable one.
    pub age: Option<AgeIdentity>,
}

impl KeyEntry {
    /// The entry of a key with its certificate, as a live key Secret holds them (a key
    /// just generated, for example).
    pub fn new(
        key: PrivateKey,
        certificate: Certificate,
        age: Option<AgeIdentity>,
        time: OffsetDateTime,
    ) -> Self {
        Self {
            key,
            certificate: Some(certificate),
            time,
            age,
        }
    }

    /// Puts the entry into `ring`: the RSA key at [`KeyEntry::time`], and its age
    /// identity tied to that key with the same time, so that a value the identity
    /// opens is reported under the RSA key's fingerprint. Each is skipped when the
    /// ring holds it already. Returns whether the RSA key was new.
    pub fn insert_into(self, ring: &mut KeyRing) -> bool {
        if let Some(identity) = self.age {
            ring.insert_age(identity, self.time, Some(self.key.fingerprint().clone()));
        }
        ring.insert(self.key, self.time)
    }
}

/// Reads a key Secret into a key-ring entry: the one loader from key Secret to key
/// ring, for the controller ([`KeyReading::Live`]) and for recovery
/// ([`KeyReading::Backup`]).
///
/// An `age.key` that cannot be read (see [`read_age_identity`]) does not fail the
/// read: its error is returned beside the entry, which then has no age identity, and
/// the caller decides whether it refuses the Secret (recovery) or only skips the
/// identity (the controller). Errors name the Secret and the field, never the bytes.
pub fn read_entry(
    secret: &Secret,
    reading: KeyReading,
) -> Result<(KeyEntry, Option<Error>), Error> {
    let (key, certificate, time) = match reading {
        KeyReading::Live(order) => {
            let (key, certificate) = read_rsa(secret)?;
            let time = order_time(secret, &certificate, order)
                .ok_or_else(|| missing(secret, "metadata.creationTimestamp"))?;
            (key, Some(certificate), time)
        }
        KeyReading::Backup => {
            let pem = field(secret, TLS_KEY).ok_or_else(|| missing(secret, "data.tls.key"))?;
            let key = private_key(secret, pem)?;
            let time = field(secret, TLS_CERT)
                .and_then(|pem| Certificate::from_pem(pem).ok())
                .and_then(|cert| order_time(secret, &cert, KeyOrder::CertNotBefore))
                .or_else(|| creation_time(secret))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            (key, None, time)
        }
    };
    let (age, age_error) = match read_age_identity(secret) {
        Ok(age) => (age, None),
        Err(e) => (None, Some(e)),
    };
    let entry = KeyEntry {
        key,
        certificate,
        time,
        age,
    };
    Ok((entry, age_error))
}

/// Reads a key Secret's RSA private key and certificate only.
pub fn read_rsa(secret: &Secret) -> Result<(PrivateKey, Certificate), Error> {
    let key_pem = field(secret, TLS_KEY).ok_or_else(|| missing(secret, "data.tls.key"))?;
    let cert_pem = field(secret, TLS_CERT).ok_or_else(|| missing(secret, "data.tls.crt"))?;
    let key = private_key(secret, key_pem)?;
    let certificate = Certificate::from_pem(cert_pem).map_err(|source| Error::KeySecret {
        secret: object_ref(&secret.metadata),
        field: "data.tls.crt",
        source,
    })?;
    if !certificate.matches(&key) {
        return Err(Error::KeyCertificateMismatch {
            secret: object_ref(&secret.metadata),
        });
    }
    Ok((key, certificate))
}

/// The error for a key Secret that lacks `field`.
fn missing(secret: &Secret, field: &'static str) -> Error {
    Error::KeySecretMissingField {
        secret: object_ref(&secret.metadata),
        field,
    }
}

/// Parses `pem`, the `tls.key` of `secret`.
fn private_key(secret: &Secret, pem: &[u8]) -> Result<PrivateKey, Error> {
    PrivateKey::from_pem(pem).map_err(|source| Error::KeySecret {
        secret: object_ref(&secret.metadata),
        field: "data.tls.key",
        source,
    })
}

/// Reads the optional [`AGE_KEY`] of a key Secret: `None` when the Secret has none
/// (Bitnami-written), an error naming the Secret and field when it holds anything but
/// exactly one X25519 identity. The error never quotes the field's bytes.
pub fn read_age_identity(secret: &Secret) -> Result<Option<AgeIdentity>, Error> {
    let Some(bytes) = field(secret, AGE_KEY) else {
        return Ok(None);
    };
    let invalid = |source| Error::KeySecret {
        secret: object_ref(&secret.metadata),
        field: "data.age.key",
        source,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| {
        invalid(sealant_keys::Error::InvalidAgeIdentity {
            line: None,
            reason: "not UTF-8 text",
        })
    })?;
    let mut identities = AgeIdentity::parse_file(text).map_err(invalid)?;
    if identities.len() != 1 {
        return Err(invalid(sealant_keys::Error::InvalidAgeIdentity {
            line: None,
            reason: "expected exactly one identity",
        }));
    }
    Ok(identities.pop())
}

/// The `data` of a key Secret: `tls.key` as PKCS#1 PEM, `tls.crt` as PEM, and the age
/// identity file under [`AGE_KEY`] when there is one. It holds the private key as
/// plain bytes (the API server needs them): send it and drop it.
pub fn key_data(
    key: &PrivateKey,
    certificate: &Certificate,
    age: Option<&AgeIdentity>,
) -> BTreeMap<String, ByteString> {
    let key_pem = key.expose_pkcs1_pem();
    let mut data = BTreeMap::from([
        (TLS_KEY.to_owned(), ByteString(key_pem.as_bytes().to_vec())),
        (
            TLS_CERT.to_owned(),
            ByteString(certificate.to_pem().into_bytes()),
        ),
    ]);
    if let Some(identity) = age {
        let file = identity.expose_identity_file();
        data.insert(AGE_KEY.to_owned(), ByteString(file.as_bytes().to_vec()));
    }
    data
}

/// A copy of a key Secret with only what a restore needs: name (or generateName),
/// namespace, labels, annotations, type and data. Server-set fields (`uid`,
/// `resourceVersion`, `creationTimestamp`, `managedFields`, owner references) are
/// dropped, so the copy can be created on any cluster.
pub fn backup_secret(secret: &Secret) -> Secret {
    let meta = &secret.metadata;
    let annotations = meta.annotations.clone().map(|mut a| {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a
    });
    Secret {
        metadata: ObjectMeta {
            name: meta.name.clone(),
            generate_name: meta
                .name
                .is_none()
                .then(|| meta.generate_name.clone())
                .flatten(),
            namespace: meta.namespace.clone(),
            labels: meta.labels.clone(),
            annotations: annotations.filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        },
        type_: secret.type_.clone(),
        data: secret.data.clone(),
        string_data: secret.string_data.clone(),
        ..Secret::default()
    }
}

/// The YAML of a `v1` `List` of key Secrets, each trimmed by [`backup_secret`]: the
/// plaintext of a backup or escrow bundle, and what `kubectl apply -f` restores. It
/// holds private keys: encrypt it, or write it to a 0600 file, and drop it. An error
/// (the serializer failing) never yields a partial list.
pub fn key_list(secrets: &[Secret]) -> Result<zeroize::Zeroizing<String>, Error> {
    let mut items = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let trimmed = backup_secret(secret);
        let mut value = serde_json::to_value(&trimmed).map_err(|_| Error::KeyListSerialize {
            secret: object_ref(&secret.metadata),
        })?;
        if let Some(object) = value.as_object_mut() {
            object.insert("apiVersion".to_owned(), json!("v1"));
            object.insert("kind".to_owned(), json!("Secret"));
        }
        items.push(value);
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}});
    serde_yaml_ng::to_string(&list)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| Error::KeyListSerialize {
            secret: "the List".to_owned(),
        })
}

/// The escrow bundle a ConfigMap document holds under `data["bundle.age"]`, as the
/// controller writes [`ESCROW_CONFIG_MAP`] (and as `kubectl get configmap -o yaml`
/// saves it): `None` when `doc` is not a ConfigMap; an error naming the ConfigMap when
/// it has no bundle there, or something that is not an age file.
pub fn escrow_bundle_in(doc: &Value) -> Result<Option<&str>, Error> {
    if doc.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
        return Ok(None);
    }
    let invalid = |reason| Error::InvalidObject {
        kind: "ConfigMap",
        object: doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unknown>")
            .to_owned(),
        reason,
        source: None,
    };
    let bundle = doc
        .pointer("/data/bundle.age")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(format!(
                "no data.{ESCROW_BUNDLE_KEY} (the controller keeps its escrow bundle in \
                 ConfigMap {ESCROW_CONFIG_MAP})"
            ))
        })?;
    if !sealant_keys::bundle::is_encrypted(bundle.as_bytes()) {
        return Err(invalid(format!(
            "data.{ESCROW_BUNDLE_KEY} is not an age-encrypted key bundle"
        )));
    }
    Ok(Some(bundle))
}

/// Every Secret in a key backup: a `List` of Secrets (Bitnami's backup), one or more
/// Secret documents, YAML or JSON. Other kinds are refused with their position. The
/// Secrets are not checked to hold keys; see [`read_key_secret`].
pub fn parse_key_list(text: &str) -> Result<Vec<Secret>, Error> {
    let mut secrets = Vec::new();
    for (index, doc) in parse_documents(text)?.into_iter().enumerate() {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "List" | "SecretList" => {
                let items =
                    doc.get("items")
                        .and_then(Value::as_array)
                        .ok_or_else(|| Error::WrongKind {
                            expected: "List of key Secrets",
                            reason: format!("document {}: items is not a list", index + 1),
                        })?;
                for (i, item) in items.iter().enumerate() {
                    secrets.push(key_secret_from_value(item.clone()).map_err(|e| {
                        Error::WrongKind {
                            expected: "key Secret",
                            reason: format!("document {}, items[{i}]: {e}", index + 1),
                        }
                    })?);
                }
            }
            _ => secrets.push(key_secret_from_value(doc).map_err(|e| Error::WrongKind {
                expected: "key Secret",
                reason: format!("document {}: {e}", index + 1),
            })?),
        }
    }
    Ok(secrets)
}

fn key_secret_from_value(value: Value) -> Result<Secret, Error> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != "Secret" {
        return Err(Error::WrongKind {
            expected: "v1 Secret",
            reason: format!("kind is {kind:?}"),
        });
    }
    crate::format::secret_from_value(value)
}

#[cfg(test)]
mod tests {

    #[test]
    fn key_order_time_is_the_certificates_not_before_or_the_secrets_creation() {
        use std::time::Duration;

        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let key = PrivateKey::generate(2048).expect("key");
        let not_before = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("t");
        let cert = Certificate::self_signed(&key, Duration::from_secs(86_400), "t", not_before)
            .expect("cert");
        let mut secret = Secret::default();
        assert_eq!(
            order_time(&secret, &cert, KeyOrder::CertNotBefore),
            Some(cert.not_before())
        );
        assert_eq!(
            order_time(&secret, &cert, KeyOrder::SecretCreationTimestamp),
            None
        );
        secret.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).expect("ts"),
        ));
        assert_eq!(
            order_time(&secret, &cert, KeyOrder::SecretCreationTimestamp),
            OffsetDateTime::from_unix_timestamp(1_800_000_000).ok()
        );
    }

    use super::*;
    use std::sync::OnceLock;

    fn material() -> &'static (PrivateKey, Certificate) {
        static KEY: OnceLock<(PrivateKey, Certificate)> = OnceLock::new();
        KEY.get_or_init(|| {
            let key = PrivateKey::generate(2048).unwrap();
            let now = sealant_keys::OffsetDateTime::now_utc();
            let day = std::time::Duration::from_secs(86_400);
            let cert = Certificate::self_signed(&key, day, "sealed-secret", now).unwrap();
            (key, cert)
        })
    }

    fn secret(name: &str, age: Option<&AgeIdentity>) -> Secret {
        let (key, cert) = material();
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("kube-system".to_owned()),
                labels: Some(BTreeMap::from([(KEY_LABEL.to_owned(), ACTIVE.to_owned())])),
                uid: Some("1234".to_owned()),
                resource_version: Some("99".to_owned()),
                ..ObjectMeta::default()
            },
            type_: Some(TLS_SECRET_TYPE.to_owned()),
            data: Some(key_data(key, cert, age)),
            ..Secret::default()
        }
    }

    #[test]
    fn key_list_round_trips_and_drops_server_fields() {
        let id = AgeIdentity::generate();
        let list = key_list(&[
            secret("sealed-secrets-keyabc", Some(&id)),
            secret("b", None),
        ])
        .unwrap();
        assert!(list.contains("kind: List"));
        assert!(!list.contains("uid"));
        assert!(!list.contains("resourceVersion"));
        let back = parse_key_list(&list).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            back[0].metadata.name.as_deref(),
            Some("sealed-secrets-keyabc")
        );
        assert!(is_active(&back[0]));
        let read = read_key_secret(&back[0]).unwrap();
        assert_eq!(read.key.fingerprint(), material().0.fingerprint());
        assert_eq!(
            read.age.unwrap().recipient().to_string(),
            id.recipient().to_string()
        );
        assert!(read_key_secret(&back[1]).unwrap().age.is_none());
    }

    #[test]
    fn single_secret_documents_and_json_lists_are_read() {
        let one = crate::secret_to_yaml(&secret("one", None));
        let two = crate::secret_to_json(&secret("two", None));
        let back = parse_key_list(&format!("{one}---\n{two}")).unwrap();
        let names: Vec<_> = back.iter().map(|s| s.metadata.name.clone()).collect();
        assert_eq!(names, [Some("one".into()), Some("two".into())]);
    }

    #[test]
    fn other_kinds_and_broken_items_are_refused_with_their_position() {
        let err = parse_key_list("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("document 1") && err.contains("ConfigMap"),
            "{err}"
        );
        let err = parse_key_list("apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("items[0]"), "{err}");
    }

    #[test]
    fn escrow_bundle_is_read_from_a_config_map_and_anything_else_is_told_apart() {
        let id = AgeIdentity::generate();
        let armored = sealant_keys::bundle::seal(&[id.recipient().clone()], b"x").unwrap();
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": ESCROW_CONFIG_MAP},
                        "data": {ESCROW_BUNDLE_KEY: armored}});
        assert_eq!(escrow_bundle_in(&cm).unwrap(), Some(armored.as_str()));
        assert_eq!(escrow_bundle_in(&json!({"kind": "Secret"})).unwrap(), None);
        let empty = json!({"kind": "ConfigMap", "metadata": {"name": "other"}, "data": {}});
        let err = escrow_bundle_in(&empty).unwrap_err().to_string();
        assert!(
            err.contains("other") && err.contains("data.bundle.age"),
            "{err}"
        );
        let plain = json!({"kind": "ConfigMap", "metadata": {"name": "cm"},
                           "data": {ESCROW_BUNDLE_KEY: "apiVersion: v1"}});
        let err = escrow_bundle_in(&plain).unwrap_err().to_string();
        assert!(err.contains("not an age-encrypted key bundle"), "{err}");
    }

    #[test]
    fn missing_or_mismatched_fields_name_the_secret_and_field() {
        let mut s = secret("k", None);
        s.data.as_mut().unwrap().remove(TLS_CERT);
        let err = read_key_secret(&s).unwrap_err().to_string();
        assert!(
            err.contains("kube-system/k") && err.contains("data.tls.crt"),
            "{err}"
        );

        let mut s = secret("k", None);
        let other = PrivateKey::generate(2048).unwrap();
        s.data.as_mut().unwrap().insert(
            TLS_KEY.to_owned(),
            ByteString(other.expose_pkcs1_pem().as_bytes().to_vec()),
        );
        assert!(matches!(
            read_key_secret(&s),
            Err(Error::KeyCertificateMismatch { .. })
        ));

        let mut s = secret("k", None);
        s.data.as_mut().unwrap().insert(
            AGE_KEY.to_owned(),
            ByteString(b"AGE-SECRET-KEY-1NOPE".to_vec()),
        );
        let err = read_key_secret(&s).unwrap_err().to_string();
        assert!(
            err.contains("data.age.key") && !err.contains("NOPE"),
            "{err}"
        );
    }

    #[test]
    fn pkcs8_private_keys_are_read() {
        let (key, _) = material();
        let mut s = secret("k", None);
        // Re-wrap the PKCS#1 key as PKCS#8 by hand: the DER of PrivateKeyInfo is
        // SEQUENCE { INTEGER 0, AlgorithmIdentifier rsaEncryption NULL, OCTET STRING pkcs1 }.
        let pkcs1_pem = key.expose_pkcs1_pem();
        let pkcs1 = pem_body(pkcs1_pem.as_bytes());
        let alg: &[u8] = &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
            0x00,
        ];
        let mut body = vec![0x02, 0x01, 0x00];
        body.extend_from_slice(alg);
        body.extend(der_tlv(0x04, &pkcs1));
        let pkcs8 = der_tlv(0x30, &body);
        let pem8 = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pkcs8)
        );
        s.data
            .as_mut()
            .expect("data")
            .insert(TLS_KEY.to_owned(), ByteString(pem8.into_bytes()));
        let (entry, _) =
            read_entry(&s, KeyReading::Live(KeyOrder::CertNotBefore)).expect("PKCS#8 reads");
        assert_eq!(entry.key.fingerprint(), key.fingerprint());
    }

    fn pem_body(pem: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(pem).expect("utf8");
        let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("b64")
    }

    fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 128 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn secret_creation_timestamp_priority_needs_a_creation_timestamp() {
        let s = secret("k", None);
        assert_eq!(s.metadata.creation_timestamp, None);
        let err =
            read_entry(&s, KeyReading::Live(KeyOrder::SecretCreationTimestamp)).expect_err("fails");
        assert!(
            err.to_string().contains("metadata.creationTimestamp"),
            "{err}"
        );
        assert!(read_entry(&s, KeyReading::Live(KeyOrder::CertNotBefore)).is_ok());
    }

    #[test]
    fn live_entry_keeps_the_certificate_and_is_ordered_by_it() {
        let (key, cert) = material();
        let id = AgeIdentity::generate();
        let (entry, age_error) = read_entry(
            &secret("k", Some(&id)),
            KeyReading::Live(KeyOrder::CertNotBefore),
        )
        .expect("reads");
        assert!(age_error.is_none());
        assert_eq!(entry.key.fingerprint(), key.fingerprint());
        assert_eq!(
            entry.certificate.as_ref().map(Certificate::fingerprint),
            Some(cert.fingerprint())
        );
        assert_eq!(entry.time, cert.not_before());
        assert_eq!(
            entry.age.map(|a| a.recipient().to_string()),
            Some(id.recipient().to_string())
        );
    }

    #[test]
    fn backup_entry_needs_only_tls_key_and_falls_back_to_creation_time_then_epoch() {
        let (key, cert) = material();
        let mut s = secret("k", None);
        let (entry, _) = read_entry(&s, KeyReading::Backup).expect("reads");
        assert_eq!(
            entry.time,
            cert.not_before(),
            "a readable tls.crt orders it"
        );
        assert!(
            entry.certificate.is_none(),
            "a backup's certificate is not kept"
        );

        s.data
            .as_mut()
            .expect("data")
            .insert(TLS_CERT.to_owned(), ByteString(b"not pem".to_vec()));
        let (entry, _) = read_entry(&s, KeyReading::Backup).expect("an unreadable tls.crt");
        assert_eq!(entry.key.fingerprint(), key.fingerprint());
        assert_eq!(entry.time, OffsetDateTime::UNIX_EPOCH);

        s.data.as_mut().expect("data").remove(TLS_CERT);
        s.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).expect("ts"),
        ));
        let (entry, _) = read_entry(&s, KeyReading::Backup).expect("no tls.crt");
        assert_eq!(
            Some(entry.time),
            OffsetDateTime::from_unix_timestamp(1_800_000_000).ok()
        );

        s.data.as_mut().expect("data").remove(TLS_KEY);
        let err = read_entry(&s, KeyReading::Backup).expect_err("no tls.key");
        assert!(
            matches!(
                err,
                Error::KeySecretMissingField {
                    field: "data.tls.key",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unreadable_age_key_is_returned_beside_the_entry() {
        let mut s = secret("k", None);
        s.data.as_mut().expect("data").insert(
            AGE_KEY.to_owned(),
            ByteString(b"AGE-SECRET-KEY-1NOPE".to_vec()),
        );
        for reading in [
            KeyReading::Live(KeyOrder::CertNotBefore),
            KeyReading::Backup,
        ] {
            let (entry, age_error) = read_entry(&s, reading).expect("the RSA key reads");
            assert!(entry.age.is_none());
            let err = age_error.expect("the age error").to_string();
            assert!(
                err.contains("kube-system/k") && err.contains("data.age.key"),
                "{err}"
            );
        }
    }

    #[test]
    fn insert_into_ties_the_age_identity_to_its_rsa_key_at_the_same_time() {
        let (key, _) = material();
        let id = AgeIdentity::generate();
        let (entry, _) = read_entry(&secret("k", Some(&id)), KeyReading::Backup).expect("reads");
        let time = entry.time;
        let mut ring = KeyRing::new();
        assert!(entry.insert_into(&mut ring));
        let tied = ring.age_for_rsa(key.fingerprint()).expect("tied");
        assert_eq!(tied.identity.recipient(), id.recipient());
        assert_eq!(tied.created, time);
        assert_eq!(ring.get(key.fingerprint()).map(|e| e.created), Some(time));

        let (again, _) = read_entry(&secret("k", Some(&id)), KeyReading::Backup).expect("reads");
        assert!(
            !again.insert_into(&mut ring),
            "a key held already is not new"
        );
        assert_eq!((ring.len(), ring.age_len()), (1, 1));
    }
}
