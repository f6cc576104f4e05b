//! Key Secrets, byte for byte as Bitnami stores them, and the key backups and escrow
//! bundles built from them.
//!
//! Shared by the controller (which loads, writes and escrows them) and the CLI (which
//! backs them up, restores, lists and retires them), so both read a key Secret the
//! same way.
//!
//! ```text
//!   Secret (type kubernetes.io/tls, label sealedsecrets.bitnami.com/sealed-secrets-key)
//!     data.tls.key  PEM private key (PKCS#1 written; PKCS#1 or PKCS#8 read) ─┐
//!     data.tls.crt  self-signed certificate of that key ─────────────────────┼─▶ read() ─▶ KeyMaterial
//!     data.age.key  sealant only: the key generation's age identity file ────┘
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
use sealant_keys::{AgeIdentity, Certificate, OffsetDateTime, PrivateKey};
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

/// Reads a key Secret's RSA private key and certificate only.
pub fn read_rsa(secret: &Secret) -> Result<(PrivateKey, Certificate), Error> {
    let object = object_ref(&secret.metadata);
    let missing = |field| Error::KeySecretMissingField {
        secret: object.clone(),
        field,
    };
    let key_pem = field(secret, TLS_KEY).ok_or_else(|| missing("data.tls.key"))?;
    let cert_pem = field(secret, TLS_CERT).ok_or_else(|| missing("data.tls.crt"))?;
    let key = PrivateKey::from_pem(key_pem).map_err(|source| Error::KeySecret {
        secret: object.clone(),
        field: "data.tls.key",
        source,
    })?;
    let certificate = Certificate::from_pem(cert_pem).map_err(|source| Error::KeySecret {
        secret: object.clone(),
        field: "data.tls.crt",
        source,
    })?;
    if !certificate.matches(&key) {
        return Err(Error::KeyCertificateMismatch { secret: object });
    }
    Ok((key, certificate))
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
}
