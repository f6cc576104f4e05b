//! Sealing: a plaintext `Secret` in, a `SealedSecret` out, as `kubeseal` makes it, to
//! the cluster's RSA certificate or to one or more age recipients.
//!
//! ```text
//!   Secret ──┬─ data + stringData ──▶ Plaintext per key ──Sealer::seal(label)──▶ spec.encryptedData
//!            ├─ metadata (server fields, last-applied and ownerRefs stripped) ──▶ spec.template.metadata
//!            ├─ type, immutable ───────────────────────────────────────────────▶ spec.template
//!            └─ name, namespace, scope annotation ─────────────────────────────▶ metadata
//! ```
//!
//! [`Sealer`] says what each value is sealed to:
//!
//! - [`Sealer::Rsa`]: a certificate's public key; each value is a Bitnami blob
//!   ([`hybrid::seal`]), byte for byte what `kubeseal` writes;
//! - [`Sealer::Age`]: one or more age recipients (for example two clusters and an
//!   offline break-glass key); each value is a sealant age envelope
//!   ([`age_envelope::seal`]) that any one of their identities opens.
//!
//! Both formats go through the same code: the same scope rules, the same label (from
//! the output's own name, namespace and scope annotation), the same annotations and
//! template, and both end up as standard base64 in `spec.encryptedData`. The
//! controller tells them apart per value by the age header, so one SealedSecret may
//! even mix them (a value merged in with `--merge-into`).
//!
//! Guarantees:
//! - every plaintext value is copied into a [`Plaintext`] before anything else happens
//!   to it, and the copies are wiped when sealing ends;
//! - the scope label is built from the output's own name, namespace and scope
//!   annotation, which are exactly what the controller reads back;
//! - nothing that could hold plaintext reaches the output metadata: the
//!   `last-applied-configuration` annotations (a full copy of the Secret) are dropped.
//!
//! Errors: the input must have a name, a namespace unless it is cluster-wide (the CLI
//! fills the namespace from `--namespace` or the kubeconfig first), and some data unless
//! [`SealOptions::allow_empty_data`] is set.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_keys::{AgeRecipient, Plaintext, PublicKey, Scope, age_envelope, hybrid};

use crate::annotations::{self, KUBECFG_LAST_APPLIED, KUBECTL_LAST_APPLIED};
use crate::{Error, SealedSecret, SealedSecretSpec, SecretTemplateSpec};

/// What the values are sealed to: the one thing that differs between the Bitnami
/// format and the age format. Build it with `From` (`&PublicKey`, or a slice of
/// [`AgeRecipient`]s) or directly.
#[derive(Clone, Copy, Debug)]
pub enum Sealer<'a> {
    /// A certificate's RSA public key: each value becomes a Bitnami blob.
    Rsa(&'a PublicKey),
    /// One or more age recipients: each value becomes a sealant age envelope that any
    /// one of the matching identities opens. An empty slice is refused when sealing.
    Age(&'a [AgeRecipient]),
}

impl Sealer<'_> {
    /// Seals one value under `label`, returning the raw blob.
    pub fn seal(&self, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>, sealant_keys::Error> {
        match self {
            Sealer::Rsa(key) => hybrid::seal(key, plaintext, label),
            Sealer::Age(recipients) => age_envelope::seal(recipients, label, plaintext),
        }
    }
}

impl<'a> From<&'a PublicKey> for Sealer<'a> {
    fn from(key: &'a PublicKey) -> Self {
        Sealer::Rsa(key)
    }
}

impl<'a> From<&'a [AgeRecipient]> for Sealer<'a> {
    fn from(recipients: &'a [AgeRecipient]) -> Self {
        Sealer::Age(recipients)
    }
}

impl<'a> From<&'a Vec<AgeRecipient>> for Sealer<'a> {
    fn from(recipients: &'a Vec<AgeRecipient>) -> Self {
        Sealer::Age(recipients)
    }
}

/// How [`seal_secret`] seals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealOptions {
    /// The scope to seal with. `None` takes it from the input Secret's
    /// `sealedsecrets.bitnami.com/*-wide` annotations (strict when there are none);
    /// `Some` overrides those annotations.
    pub scope: Option<Scope>,
    /// Seal a Secret with no `data` and no `stringData` instead of refusing it.
    pub allow_empty_data: bool,
}

/// Seals every value of `secret` to `to`: an RSA public key (`&PublicKey`), age
/// recipients (`&[AgeRecipient]`), or a [`Sealer`].
///
/// `data` and `stringData` both become `spec.encryptedData`; a `stringData` key wins
/// over a `data` key of the same name, as the apiserver would merge them. The output
/// carries the scope annotation in its own metadata and, unless the scope is strict, in
/// the template metadata too.
pub fn seal_secret<'a>(
    secret: &Secret,
    to: impl Into<Sealer<'a>>,
    opts: &SealOptions,
) -> Result<SealedSecret, Error> {
    let sealer = to.into();
    // Copy the values into zeroizing boxes first; `stringData` overwrites `data`.
    let mut values: BTreeMap<&str, Plaintext> = BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        values.insert(k, Plaintext::from(v.0.as_slice()));
    }
    for (k, v) in secret.string_data.iter().flatten() {
        values.insert(k, Plaintext::from(v.as_bytes()));
    }

    // kubeseal checks for empty data before it checks the name; keep that order so the
    // same input gives the same first error.
    if values.is_empty() && !opts.allow_empty_data {
        return Err(Error::EmptySecretData);
    }
    let name = match secret.metadata.name.as_deref() {
        Some(n) if !n.is_empty() => n,
        _ => return Err(Error::MissingSecretName),
    };
    let scope = opts
        .scope
        .unwrap_or_else(|| annotations::scope_of(&secret.metadata));
    // A cluster-wide Secret may have no namespace: its label is empty, and kubeseal
    // leaves it namespace-less so that it can be applied to any namespace.
    let namespace = match secret.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => Some(ns),
        _ if scope == Scope::ClusterWide => None,
        _ => {
            return Err(Error::MissingSecretNamespace {
                name: name.to_owned(),
            });
        }
    };
    let label = scope.label(namespace.unwrap_or_default(), name);
    let object = match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    };

    // Refuse an empty recipient list even when there is nothing to seal, so that no
    // SealedSecret is ever made for nobody.
    if matches!(sealer, Sealer::Age([])) {
        return Err(Error::Seal {
            object,
            field: "spec.encryptedData".to_owned(),
            source: sealant_keys::Error::NoAgeRecipients,
        });
    }
    let mut encrypted_data = BTreeMap::new();
    for (k, plaintext) in &values {
        let blob = sealer
            .seal(plaintext.expose_secret(), &label)
            .map_err(|source| Error::Seal {
                object: object.clone(),
                field: format!("data.{k}"),
                source,
            })?;
        encrypted_data.insert((*k).to_owned(), base64_encode(&blob));
    }

    let mut template_meta = secret.metadata.clone();
    strip_server_fields(&mut template_meta);
    template_meta.owner_references = None;
    if let Some(a) = template_meta.annotations.as_mut() {
        a.remove(KUBECTL_LAST_APPLIED);
        a.remove(KUBECFG_LAST_APPLIED);
    }
    annotations::set_scope(&mut template_meta, scope);
    if template_meta
        .labels
        .as_ref()
        .is_some_and(BTreeMap::is_empty)
    {
        template_meta.labels = None;
    }

    let mut meta = ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        ..ObjectMeta::default()
    };
    annotations::set_scope(&mut meta, scope);

    Ok(SealedSecret {
        metadata: meta,
        spec: SealedSecretSpec {
            template: Some(SecretTemplateSpec {
                metadata: Some(template_meta),
                type_: secret.type_.clone(),
                immutable: secret.immutable,
                data: None,
            }),
            data: None,
            encrypted_data,
        },
        status: None,
    })
}

/// Seals one value for the Secret `namespace/name` under `scope` to `to` (as for
/// [`seal_secret`]) and returns the standard base64 of the blob, as `kubeseal --raw`
/// prints it (the caller adds no newline).
///
/// Strict scope needs both `name` and `namespace`; namespace-wide needs `namespace`;
/// cluster-wide ignores both.
pub fn seal_value<'a>(
    to: impl Into<Sealer<'a>>,
    plaintext: &[u8],
    scope: Scope,
    namespace: &str,
    name: &str,
) -> Result<String, Error> {
    if scope == Scope::Strict && name.is_empty() {
        return Err(Error::RawScopeNeeds {
            scope,
            missing: "--name",
        });
    }
    if scope != Scope::ClusterWide && namespace.is_empty() {
        return Err(Error::RawScopeNeeds {
            scope,
            missing: "--namespace",
        });
    }
    let label = scope.label(namespace, name);
    let blob = to
        .into()
        .seal(plaintext, &label)
        .map_err(|source| Error::Seal {
            object: format!("{namespace}/{name}"),
            field: "raw value".to_owned(),
            source,
        })?;
    Ok(base64_encode(&blob))
}

/// Merges a freshly sealed `update` into `existing`, as `kubeseal --merge-into` does:
///
/// - each `spec.encryptedData` key of `update` replaces or adds that key;
/// - each `spec.template.metadata` label and annotation of `update` replaces or adds
///   that label or annotation;
/// - each `spec.template.data` key of `update` replaces or adds that key.
///
/// Everything else in `existing` (other keys, top-level metadata, status, template
/// type) stays exactly as it was, byte for byte. The caller must seal `update` with
/// `existing`'s name, namespace and scope ([`annotations::scope_of`] on its metadata),
/// or the merged values will not unseal.
pub fn merge_into(existing: &mut SealedSecret, update: &SealedSecret) {
    for (k, v) in &update.spec.encrypted_data {
        existing.spec.encrypted_data.insert(k.clone(), v.clone());
    }
    let Some(new_template) = update.spec.template.as_ref() else {
        return;
    };
    let template = existing.spec.template.get_or_insert_default();
    if let Some(new_meta) = new_template.metadata.as_ref() {
        let meta = template.metadata.get_or_insert_default();
        merge_map(&mut meta.annotations, new_meta.annotations.as_ref());
        merge_map(&mut meta.labels, new_meta.labels.as_ref());
    }
    merge_map(&mut template.data, new_template.data.as_ref());
}

/// Inserts every entry of `from` into `into`, creating `into` only when there is
/// something to insert.
fn merge_map(into: &mut Option<BTreeMap<String, String>>, from: Option<&BTreeMap<String, String>>) {
    let Some(from) = from.filter(|m| !m.is_empty()) else {
        return;
    };
    let into = into.get_or_insert_default();
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}

/// Clears the metadata fields the apiserver sets, which must not travel from a Secret
/// read out of a cluster into a SealedSecret (or from a template into a new Secret).
pub(crate) fn strip_server_fields(meta: &mut ObjectMeta) {
    meta.uid = None;
    meta.resource_version = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.managed_fields = None;
    meta.self_link = None;
}

fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
