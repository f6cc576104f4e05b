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

/// The only condition type a SealedSecret carries.
pub const CONDITION_SYNCED: &str = "Synced";
/// Condition status: the Secret matches the SealedSecret.
pub const CONDITION_TRUE: &str = "True";
/// Condition status: the last attempt to produce the Secret failed.
pub const CONDITION_FALSE: &str = "False";
/// Condition status: not known yet.
pub const CONDITION_UNKNOWN: &str = "Unknown";

/// SealedSecretSpec is the specification of a SealedSecret: per-key ciphertexts and the
/// shape of the Secret to make from them.
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
    doc = "SealedSecret is the K8s representation of a \"sealed Secret\" - a regular k8s Secret that has been sealed (encrypted) using the controller's key.",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[0].message"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[0].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_encrypted_data)]
pub struct SealedSecretSpec {
    /// Template defines the structure of the Secret that will be created from this
    /// sealed secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplateSpec>,

    /// Data is deprecated and will be removed eventually. Use per-value EncryptedData
    /// instead.
    ///
    /// The standard base64 of one sealed blob over the JSON of a whole v1 Secret.
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
    /// Standard object's metadata: the labels, annotations and so on of the Secret to
    /// make. Unknown fields are preserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "template_metadata_schema")]
    pub metadata: Option<ObjectMeta>,

    /// Used to facilitate programmatic handling of secret data.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,

    /// Immutable, if set to true, ensures that data stored in the Secret cannot be
    /// updated (only object metadata can be modified). If not set to true, the field can
    /// be modified at any time. Defaulted to nil.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,

    /// Keys that should be templated using decrypted data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// The most recently observed status of the SealedSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// ObservedGeneration reflects the generation most recently observed by the
    /// sealed-secrets controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Represents the latest available observations of a sealed secret's current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<SealedSecretCondition>>,
}

/// The state of a sealed secret at a certain point.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretCondition {
    /// Type of condition for a sealed secret. Valid value: "Synced".
    #[serde(rename = "type")]
    pub type_: String,

    /// Status of the condition for a sealed secret. Valid values for "Synced": "True",
    /// "False", or "Unknown".
    pub status: String,

    /// The last time this condition was updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,

    /// Last time the condition transitioned from one status to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,

    /// The reason for the condition's last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// A human readable message indicating details about the transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SealedSecret {
    /// `namespace/name`, the way every error and log line names this object.
    pub fn object_ref(&self) -> String {
        object_ref(&self.metadata)
    }
}

/// `namespace/name` of any object, with `<none>` standing in for an absent part.
pub(crate) fn object_ref(meta: &ObjectMeta) -> String {
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
        "description": "Data is deprecated and will be removed eventually. Use per-value EncryptedData instead.",
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
/// the apiserver prune or reject fields that Bitnami accepts.
fn template_metadata_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let string_map = serde_json::json!({
        "type": "object",
        "additionalProperties": { "type": "string" },
    });
    schemars::json_schema!({
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/api-conventions.md#metadata",
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "annotations": string_map,
            "finalizers": { "type": "array", "items": { "type": "string" } },
            "labels": string_map,
            "name": { "type": "string" },
            "namespace": { "type": "string" },
        },
    })
}
