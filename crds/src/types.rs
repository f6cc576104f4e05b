//! The `SealedSecret` custom resource, field for field as Bitnami's
//! `bitnami.com/v1alpha1`, so that objects written for one controller are read by the
//! other unchanged.
//!
//! The Rust types are the source of truth for the CRD: [`crate::crd`] derives the schema
//! from them. Where Bitnami's schema is looser than a derived one would be (the template
//! metadata keeps unknown fields, `encryptedData` is required even though an absent map
//! parses as empty), the schema is adjusted here by hand, next to the field it concerns.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group.
pub const GROUP: &str = "bitnami.com";
/// The API version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as it appears in objects.
pub const API_VERSION: &str = "bitnami.com/v1alpha1";
/// The kind.
pub const KIND: &str = "SealedSecret";
/// The resource's plural name, as in `kubectl get sealedsecrets`.
pub const PLURAL: &str = "sealedsecrets";

/// Condition type: Bitnami's, the one Argo CD's health check reads. `True` when the
/// Secret was produced from the SealedSecret; `False`, with the error, when not.
pub const CONDITION_SYNCED: &str = "Synced";
/// Condition type (sealant; kstatus and Flux read it): `True` when the Secret is in sync
/// with the SealedSecret, `False` (with `Synced`'s message) when it is not.
pub const CONDITION_READY: &str = "Ready";
/// Condition type (sealant; kstatus reads it): present and `True` only while a failed
/// pass will be retried soon (an API error, no key loaded yet).
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// Condition type (sealant; kstatus reads it): present and `True` only while the
/// SealedSecret fails permanently (it cannot be decrypted, a template fails, a Secret
/// it does not own is in the way), until it, its Secret or the keys change.
pub const CONDITION_STALLED: &str = "Stalled";
/// Condition status: the Secret matches the SealedSecret.
pub const CONDITION_TRUE: &str = "True";
/// Condition status: the last attempt to produce the Secret failed.
pub const CONDITION_FALSE: &str = "False";
/// Condition status: not known yet.
pub const CONDITION_UNKNOWN: &str = "Unknown";

/// What a SealedSecret holds: per-key ciphertexts and the shape of the Secret to make
/// from them.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "bitnami.com",
    version = "v1alpha1",
    kind = "SealedSecret",
    plural = "sealedsecrets",
    singular = "sealedsecret",
    namespaced,
    status = "SealedSecretStatus",
    derive = "PartialEq",
    doc = "A Secret encrypted to the controller's public key, safe to store in Git. The controller decrypts it into a Secret of the same name and namespace.",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[0].message"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[0].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_encrypted_data)]
pub struct SealedSecretSpec {
    /// The metadata, type and immutability of the Secret the controller makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplateSpec>,

    /// Deprecated: one sealed blob (standard base64) over the JSON of a whole v1
    /// Secret. Written only by old clients; `encryptedData` replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "legacy_data_schema")]
    pub data: Option<String>,

    /// Per-key sealed values: the standard base64 of one Bitnami hybrid blob each.
    ///
    /// Required by the schema, as in Bitnami's CRD, but an absent map parses as empty.
    #[serde(default)]
    #[schemars(schema_with = "encrypted_data_schema")]
    pub encrypted_data: BTreeMap<String, String>,
}

/// The shape of the Secret a SealedSecret unseals into.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplateSpec {
    /// Labels, annotations and other metadata for the Secret. Its name and namespace
    /// are always the SealedSecret's. Unknown fields are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "template_metadata_schema")]
    pub metadata: Option<ObjectMeta>,

    /// The Secret's type, for example `Opaque` or `kubernetes.io/tls`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,

    /// Makes the Secret immutable: once created, its data can no longer change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,

    /// Extra Secret keys rendered from Go templates over the decrypted values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

// No schema default, although kstatus would then call a new object InProgress (an
// `observedGeneration` below `metadata.generation`): an absent status is how Bitnami's
// integration suite (and scripts like it) tells an object no controller has processed
// yet, and with a default every new object looks processed to them (tested: the
// suite's update spec then races the controller's first status write).
/// The most recently observed status of the SealedSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// The `metadata.generation` the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The controller's latest observations: `Synced` (first, as Bitnami's), `Ready`,
    /// and `Stalled` or `Reconciling` while a pass fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<SealedSecretCondition>>,

    /// sealant only (Bitnami's controller ignores it): the keys that decrypted the
    /// values the last time the SealedSecret was unsealed, as SSH-style fingerprints
    /// (`SHA256:...`) of the RSA keys, sorted. A value sealed to a key generation's age
    /// recipient is listed under that generation's RSA key. Kept unchanged while
    /// unsealing fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprints: Option<Vec<String>>,
}

/// One observation of a SealedSecret's state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretCondition {
    /// The condition type: `Synced`, `Ready`, `Stalled` or `Reconciling` (and
    /// sealant's in-sync proof, `sealant.dev/InSyncProof`).
    #[serde(rename = "type")]
    pub type_: String,

    /// `True`, `False` or `Unknown`.
    pub status: String,

    /// When the condition was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,

    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,

    /// A one-word reason for the current status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// Details for a person, such as why unsealing failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SealedSecret {
    /// `namespace/name`, the way every error and log line names this object.
    pub fn object_ref(&self) -> String {
        object_ref(&self.metadata)
    }

    /// The scope label this SealedSecret's values are bound to: the rule that ties a
    /// ciphertext to a namespace and a name, written once, here.
    ///
    /// It is built from the SealedSecret's **own** metadata: the scope from its own
    /// annotations (never from `spec.template`), its name, and its namespace. A
    /// cluster-wide SealedSecret may have no namespace (its label is empty, so the
    /// namespace it is finally applied to cannot matter); any other needs both, and
    /// lacking one is [`crate::Error::SealedSecretMissingField`].
    pub fn scope_label(&self) -> Result<(sealant_keys::Scope, Vec<u8>), crate::Error> {
        use sealant_keys::Scope;
        let present = |field: &Option<String>| {
            field
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let missing = |field: &'static str| crate::Error::SealedSecretMissingField {
            object: self.object_ref(),
            field,
        };
        let scope = crate::annotations::scope_of(&self.metadata);
        let name = present(&self.metadata.name).ok_or_else(|| missing("metadata.name"))?;
        let namespace = match present(&self.metadata.namespace) {
            Some(ns) => ns,
            None if scope == Scope::ClusterWide => String::new(),
            None => return Err(missing("metadata.namespace")),
        };
        Ok((scope, scope.label(&namespace, &name)))
    }
}

/// `namespace/name` of any object, with `<none>` standing in for an absent part: how
/// every error and log line names an object.
pub fn object_ref(meta: &ObjectMeta) -> String {
    let part = |p: &Option<String>| match p.as_deref() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "<none>".to_owned(),
    };
    format!("{}/{}", part(&meta.namespace), part(&meta.name))
}

/// Makes `encryptedData` required with no default, as in Bitnami's CRD. The Rust field
/// has `#[serde(default)]` so that objects written without it still parse, and schemars
/// would otherwise turn that into an optional field with `default: {}`.
fn require_encrypted_data(schema: &mut schemars::Schema) {
    if let Some(prop) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("encryptedData"))
        .and_then(serde_json::Value::as_object_mut)
    {
        prop.remove("default");
    }
    let required = schema
        .ensure_object()
        .entry("required")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let Some(list) = required.as_array_mut() {
        let name = serde_json::Value::from("encryptedData");
        if !list.contains(&name) {
            list.push(name);
        }
    }
}

/// `spec.data`: a base64 string, as Go's `[]byte` appears in Bitnami's schema.
fn legacy_data_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Deprecated: one sealed blob over the JSON of a whole v1 Secret. encryptedData replaces it.",
        "type": "string",
        "format": "byte",
    })
}

/// `spec.encryptedData`: a string map that keeps unknown fields, as Bitnami's does.
fn encrypted_data_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Per-key sealed values: the standard base64 of one sealed blob each.",
        "type": "object",
        "additionalProperties": { "type": "string" },
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// `spec.template.metadata`: the fields a Secret template uses, typed, and anything else
/// kept (Bitnami's CRD does the same, so existing objects with extra metadata fields
/// stay valid). The full `ObjectMeta` schema is deliberately not used: it would make
/// the apiserver prune or reject fields that Bitnami accepts. But every other field of
/// `ObjectMeta` that a reader decodes is typed too (times as `date-time`, counters as
/// integers), so the API server refuses an object that no controller could decode
/// (`creationTimestamp: garbage` would otherwise be stored, and fail every reader).
fn template_metadata_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let string_map = serde_json::json!({
        "type": "object",
        "additionalProperties": { "type": "string" },
    });
    let time = serde_json::json!({ "type": "string", "format": "date-time", "nullable": true });
    let int64 = serde_json::json!({ "type": "integer", "format": "int64", "nullable": true });
    let string = serde_json::json!({ "type": "string", "nullable": true });
    schemars::json_schema!({
        "description": "Labels, annotations and other metadata for the Secret. Its name and namespace are always the SealedSecret's. Unknown fields are kept.",
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "annotations": string_map,
            "creationTimestamp": time,
            "deletionGracePeriodSeconds": int64,
            "deletionTimestamp": time,
            "finalizers": { "type": "array", "items": { "type": "string" } },
            "generateName": string,
            "generation": int64,
            "labels": string_map,
            "managedFields": {
                "type": "array",
                "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
            },
            "name": { "type": "string" },
            "namespace": { "type": "string" },
            "ownerReferences": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["apiVersion", "kind", "name", "uid"],
                    "properties": {
                        "apiVersion": { "type": "string" },
                        "blockOwnerDeletion": { "type": "boolean" },
                        "controller": { "type": "boolean" },
                        "kind": { "type": "string" },
                        "name": { "type": "string" },
                        "uid": { "type": "string" },
                    },
                },
            },
            "resourceVersion": string,
            "selfLink": string,
            "uid": string,
        },
    })
}

#[cfg(test)]
mod tests {
    use sealant_keys::Scope;

    use super::*;
    use crate::annotations::{CLUSTER_WIDE, set_scope};

    #[test]
    fn scope_label_comes_from_the_sealed_secrets_own_metadata_never_the_template() {
        let mut s = SealedSecret::new("db", SealedSecretSpec::default());
        s.metadata.namespace = Some("app".to_owned());
        assert_eq!(
            s.scope_label().expect("label"),
            (Scope::Strict, b"app/db".to_vec())
        );
        // A template that claims another name, namespace or scope changes nothing.
        s.spec.template = Some(SecretTemplateSpec {
            metadata: Some(ObjectMeta {
                name: Some("other".to_owned()),
                namespace: Some("elsewhere".to_owned()),
                annotations: Some([(CLUSTER_WIDE.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            }),
            ..SecretTemplateSpec::default()
        });
        assert_eq!(
            s.scope_label().expect("label"),
            (Scope::Strict, b"app/db".to_vec())
        );
        set_scope(&mut s.metadata, Scope::NamespaceWide);
        assert_eq!(
            s.scope_label().expect("label"),
            (Scope::NamespaceWide, b"app".to_vec())
        );
        set_scope(&mut s.metadata, Scope::ClusterWide);
        s.metadata.namespace = None;
        assert_eq!(
            s.scope_label().expect("label"),
            (Scope::ClusterWide, Vec::new())
        );
    }

    #[test]
    fn scope_label_needs_a_name_and_a_namespace_unless_cluster_wide() {
        let mut s = SealedSecret::new("db", SealedSecretSpec::default());
        let err = s.scope_label().expect_err("no namespace");
        assert!(err.to_string().contains("metadata.namespace"), "{err}");
        s.metadata.namespace = Some("app".to_owned());
        s.metadata.name = Some(String::new());
        let err = s.scope_label().expect_err("no name");
        assert!(err.to_string().contains("metadata.name"), "{err}");
    }
}
