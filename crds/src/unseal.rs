//! Unsealing: a `SealedSecret` and the private keys in, the plaintext `Secret` out, as
//! Bitnami's controller and `kubeseal --recovery-unseal` make it.
//!
//! ```text
//!   SealedSecret.metadata (name, namespace, scope annotation) ──▶ OAEP label
//!   spec.encryptedData[k] ──base64──▶ blob ──KeyRing::open(label, hint)──▶ Plaintext ──▶ Unsealed.data[k]
//!   spec.template.data[t] ──template::render_with_budget(dot = decrypted values, one budget per object)──▶ Unsealed.data[t]
//!   spec.template (metadata, type, immutable) ────────────────────────────────────────▶ Unsealed
//!   Unsealed ──into_secret──▶ Secret (name and namespace forced to the SealedSecret's)
//! ```
//!
//! Guarantees:
//! - the label comes from the SealedSecret's own metadata, never from `spec.template`:
//!   a strict value moved to another name or namespace fails to decrypt, whatever the
//!   template says;
//! - every value is decoded before any is decrypted, so malformed input costs no RSA
//!   work, and the key that opened one value is tried first on the next;
//! - decryption failures are one coarse [`Error::Decrypt`] that lists the failing
//!   fields and nothing else;
//! - plaintext stays in [`Plaintext`] until [`Unsealed::into_secret`], the one place it
//!   is copied into a Kubernetes `Secret`.
//!
//! `spec.template.data` is rendered as Bitnami renders it (see [`crate::template`]):
//! every template sees the decrypted values only (never another template's output), and
//! its result replaces a decrypted value of the same key. A template that fails is
//! [`Error::Template`], naming `spec.template.data.KEY` and the position in it.
//!
//! All templates of one object share one [`Budget`]: a hostile object fails alone,
//! with an error naming the template key that ran out, whatever the number of keys.
//!
//! [`decrypt`] is [`unseal`] without the templates, for `/v1/verify` and `/v1/rotate`:
//! their answer must depend only on whether every value opens under its scope, never
//! on what a template (which an attacker can append to a SealedSecret taken from Git)
//! computes from the plaintext.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sealant_keys::{Fingerprint, KeyRing, Plaintext};

use crate::annotations::{self, SKIP_SET_OWNER_REFERENCES};
use crate::seal::strip_server_fields;
use crate::template::{Budget, render_with_budget};
use crate::{API_VERSION, Error, KIND, SealedSecret};

/// A SealedSecret's decrypted content: the plaintext values and the shape of the
/// Secret to make from them. `Debug` shows the keys, never the values.
pub struct Unsealed {
    name: String,
    namespace: Option<String>,
    metadata: ObjectMeta,
    type_: Option<String>,
    immutable: Option<bool>,
    data: BTreeMap<String, Plaintext>,
    fingerprints: BTreeSet<Fingerprint>,
}

impl Unsealed {
    /// The Secret's name (the SealedSecret's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Secret's namespace (the SealedSecret's). `None` only for a cluster-wide
    /// SealedSecret that was sealed without one, to be applied to any namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The decrypted values, by key.
    pub fn data(&self) -> &BTreeMap<String, Plaintext> {
        &self.data
    }

    /// The metadata the Secret will carry, from the template (or, for the deprecated
    /// `spec.data`, from the sealed Secret), before name and namespace are forced.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// The Secret's `type`.
    pub fn type_(&self) -> Option<&str> {
        self.type_.as_deref()
    }

    /// The Secret's `immutable`.
    pub fn immutable(&self) -> Option<bool> {
        self.immutable
    }

    /// The keys that opened the values, for the key inventory and as the hint for the
    /// next unseal. Empty when the SealedSecret holds no values.
    pub fn fingerprints(&self) -> &BTreeSet<Fingerprint> {
        &self.fingerprints
    }

    /// The Secret to create. This is the one place where plaintext leaves its zeroizing
    /// box for a Kubernetes object.
    ///
    /// Name and namespace are the SealedSecret's, whatever the template said; metadata
    /// the apiserver sets (uid, resourceVersion, timestamps, managedFields) is dropped.
    /// No ownerReference is added here: see [`owner_reference`].
    pub fn into_secret(self) -> Secret {
        let data: BTreeMap<String, ByteString> = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().to_vec())))
            .collect();
        let mut secret = shaped(
            self.metadata,
            self.type_,
            self.immutable,
            self.name,
            self.namespace,
        );
        secret.data = (!data.is_empty()).then_some(data);
        secret
    }
}

impl fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsealed")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("type_", &self.type_)
            .field("immutable", &self.immutable)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("fingerprints", &self.fingerprints)
            .finish_non_exhaustive()
    }
}

/// The Secret that the `encryptedData` of `sealed` unseals into, without its data: the
/// template's metadata (server-set fields dropped), type and immutable, with name and
/// namespace forced to the SealedSecret's. It needs no key, so the controller can check
/// the shape of an existing Secret without decrypting anything.
/// [`Unsealed::into_secret`] gives exactly this plus the data.
pub fn secret_shell(sealed: &SealedSecret) -> Secret {
    let template = sealed.spec.template.clone().unwrap_or_default();
    shaped(
        template.metadata.unwrap_or_default(),
        template.type_,
        template.immutable,
        sealed.metadata.name.clone().unwrap_or_default(),
        sealed.metadata.namespace.clone(),
    )
}

/// A data-less Secret: `metadata` without the fields the apiserver sets, with the given
/// name and namespace.
fn shaped(
    mut metadata: ObjectMeta,
    type_: Option<String>,
    immutable: Option<bool>,
    name: String,
    namespace: Option<String>,
) -> Secret {
    strip_server_fields(&mut metadata);
    metadata.name = Some(name);
    metadata.namespace = namespace;
    Secret {
        metadata,
        type_,
        immutable,
        data: None,
        string_data: None,
    }
}

/// Decrypts every value of `sealed` with the keys of `ring`, trying `hint` first (for
/// example the key that opened this object last time).
///
/// The deprecated `spec.data` (one blob over the JSON of a whole v1 Secret) is
/// accepted; whether to accept it at all (`--accept-deprecated-v1-data`) is the
/// caller's decision, by checking `spec.data` first.
pub fn unseal(
    sealed: &SealedSecret,
    ring: &KeyRing,
    hint: Option<&Fingerprint>,
) -> Result<Unsealed, Error> {
    let mut unsealed = open(sealed, ring, hint, Failures::All)?;
    if sealed.spec.data.is_some() {
        // The deprecated form carries its template inside the blob, without data.
        return Ok(unsealed);
    }
    // Every template sees the decrypted values only, as in Bitnami, so render them all
    // before any output replaces a value; all of them draw on one budget.
    let templates = sealed.spec.template.as_ref().and_then(|t| t.data.as_ref());
    let mut budget = Budget::default();
    let mut rendered = Vec::new();
    for (k, source) in templates.into_iter().flatten() {
        let value = render_with_budget(source, &unsealed.data, &mut budget).map_err(|source| {
            Error::Template {
                object: sealed.object_ref(),
                field: format!("spec.template.data.{k}"),
                source,
            }
        })?;
        rendered.push((k.clone(), value));
    }
    unsealed.data.extend(rendered);
    Ok(unsealed)
}

/// Decrypts every sealed value of `sealed` (`spec.encryptedData`, or the deprecated
/// `spec.data`) and runs no template: [`Unsealed::data`] holds exactly the sealed
/// values. Stops at the first value that no key opens, so junk costs at most one
/// value's RSA work; the error names that value.
///
/// This is what `/v1/verify` and `/v1/rotate` need: whether every value opens under
/// the scope label of the SealedSecret's own metadata, and the values themselves.
pub fn decrypt(
    sealed: &SealedSecret,
    ring: &KeyRing,
    hint: Option<&Fingerprint>,
) -> Result<Unsealed, Error> {
    open(sealed, ring, hint, Failures::First)
}

/// Whether decryption goes on past a value that fails (to name every failing field in
/// the controller's status) or stops at once (for the HTTP API).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failures {
    All,
    First,
}

/// [`unseal`] without the templates.
fn open(
    sealed: &SealedSecret,
    ring: &KeyRing,
    hint: Option<&Fingerprint>,
    failures: Failures,
) -> Result<Unsealed, Error> {
    let object = sealed.object_ref();
    // The one rule that binds a ciphertext to where it may be opened.
    let (_, label) = sealed.scope_label()?;
    // scope_label has checked both: a name always, a namespace unless cluster-wide
    // (whose Secret is printed without one, to be applied anywhere).
    let name = sealed.metadata.name.as_deref().unwrap_or_default();
    let namespace = sealed
        .metadata
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty());

    if let Some(legacy) = sealed.spec.data.as_deref() {
        if !sealed.spec.encrypted_data.is_empty() {
            return Err(Error::BothDataAndEncryptedData { object });
        }
        return unseal_legacy(legacy, ring, hint, &label, object, name, namespace);
    }

    let template = sealed.spec.template.clone().unwrap_or_default();

    // Decode everything first: bad input should cost no RSA work.
    let mut blobs = Vec::with_capacity(sealed.spec.encrypted_data.len());
    for (k, v) in &sealed.spec.encrypted_data {
        let blob = base64_decode(v).map_err(|source| Error::InvalidBase64 {
            object: object.clone(),
            field: format!("spec.encryptedData.{k}"),
            source,
        })?;
        blobs.push((k, blob));
    }

    let mut hint = hint.cloned();
    let mut data = BTreeMap::new();
    let mut fingerprints = BTreeSet::new();
    let mut failed = Vec::new();
    for (k, blob) in blobs {
        match ring.open(&blob, &label, hint.as_ref()) {
            Ok(opened) => {
                data.insert(k.clone(), opened.plaintext);
                hint = Some(opened.fingerprint.clone());
                fingerprints.insert(opened.fingerprint);
            }
            Err(_) => {
                failed.push(format!("spec.encryptedData.{k}"));
                if failures == Failures::First {
                    break;
                }
            }
        }
    }
    if !failed.is_empty() {
        return Err(Error::Decrypt {
            object,
            fields: failed,
        });
    }

    Ok(Unsealed {
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
        metadata: template.metadata.unwrap_or_default(),
        type_: template.type_,
        immutable: template.immutable,
        data,
        fingerprints,
    })
}

/// The deprecated `spec.data`: one blob whose plaintext is the JSON of a v1 Secret.
fn unseal_legacy(
    legacy: &str,
    ring: &KeyRing,
    hint: Option<&Fingerprint>,
    label: &[u8],
    object: String,
    name: &str,
    namespace: Option<&str>,
) -> Result<Unsealed, Error> {
    let blob = base64_decode(legacy).map_err(|source| Error::InvalidBase64 {
        object: object.clone(),
        field: "spec.data".to_owned(),
        source,
    })?;
    let opened = ring.open(&blob, label, hint).map_err(|_| Error::Decrypt {
        object: object.clone(),
        fields: vec!["spec.data".to_owned()],
    })?;
    // The parser's message is dropped: it can quote the plaintext it choked on.
    let secret: Secret = serde_json::from_slice(opened.plaintext.expose_secret()).map_err(|e| {
        Error::LegacyPayload {
            object,
            category: crate::format::category(&e),
            line: e.line(),
            column: e.column(),
        }
    })?;
    // Move the values straight into zeroizing boxes; stringData wins, as the apiserver
    // would merge it.
    let mut data = BTreeMap::new();
    for (k, v) in secret.data.into_iter().flatten() {
        data.insert(k, Plaintext::new(v.0));
    }
    for (k, v) in secret.string_data.into_iter().flatten() {
        data.insert(k, Plaintext::new(v.into_bytes()));
    }
    Ok(Unsealed {
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
        metadata: secret.metadata,
        type_: secret.type_,
        immutable: secret.immutable,
        data,
        fingerprints: BTreeSet::from([opened.fingerprint]),
    })
}

/// The ownerReference Bitnami's controller puts on the Secret it makes:
/// `{apiVersion: bitnami.com/v1alpha1, kind: SealedSecret, name, uid, controller: true}`.
///
/// `None` when the template asks for none (`skip-set-owner-references: "true"`), and
/// when the SealedSecret has no name or uid yet (the apiserver rejects such a
/// reference; an object read from the cluster always has both).
pub fn owner_reference(sealed: &SealedSecret) -> Option<OwnerReference> {
    let skip = sealed
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .is_some_and(|m| annotations::is_true(m, SKIP_SET_OWNER_REFERENCES));
    if skip {
        return None;
    }
    let name = sealed.metadata.name.clone().filter(|n| !n.is_empty())?;
    let uid = sealed.metadata.uid.clone().filter(|u| !u.is_empty())?;
    Some(OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
        name,
        uid,
        controller: Some(true),
        block_owner_deletion: None,
    })
}

fn base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}
