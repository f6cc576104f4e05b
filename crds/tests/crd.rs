//! The generated CRD: committed, drift-checked, structural, and shaped like Bitnami's.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use sealant_crds::{SealedSecret, crd, crd_yaml, sealed_secret_from_value};
use serde_json::Value;

const REGENERATE: &str = "cargo run -p sealant-crds --example gen-crd";

#[test]
fn crd_yaml_matches_committed_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sealedsecret.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nGenerate it with: {REGENERATE}",
            path.display()
        )
    });
    assert!(
        committed == crd_yaml(),
        "{} is out of date with the Rust types.\nRegenerate it with: {REGENERATE}\nand commit the result.",
        path.display()
    );
}

#[test]
fn crd_yaml_is_deterministic() {
    assert_eq!(crd_yaml(), crd_yaml());
    assert!(crd_yaml().starts_with("---\napiVersion: apiextensions.k8s.io/v1\n"));
}

#[test]
fn crd_yaml_round_trips_through_the_typed_crd_without_losing_fields() {
    // JSONSchemaProps has a field for every keyword the apiserver knows; a keyword it
    // does not know would be dropped here and show up as a difference.
    let parsed: CustomResourceDefinition = serde_yaml_ng::from_str(&crd_yaml()).unwrap();
    assert_eq!(parsed, crd());
    let reparsed: Value = serde_yaml_ng::from_str(&crd_yaml()).unwrap();
    assert_eq!(reparsed, serde_json::to_value(crd()).unwrap());
}

#[test]
fn crd_names_scope_and_subresources_match_bitnami() {
    let crd = crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("sealedsecrets.bitnami.com")
    );
    let spec = &crd.spec;
    assert_eq!(spec.group, "bitnami.com");
    assert_eq!(spec.scope, "Namespaced");
    assert_eq!(spec.names.kind, "SealedSecret");
    assert_eq!(spec.names.list_kind.as_deref(), Some("SealedSecretList"));
    assert_eq!(spec.names.plural, "sealedsecrets");
    assert_eq!(spec.names.singular.as_deref(), Some("sealedsecret"));
    assert_eq!(
        spec.names.short_names, None,
        "Bitnami declares no short names"
    );
    assert_eq!(spec.versions.len(), 1);
    let v = &spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.served && v.storage);
    let sub = v.subresources.as_ref().unwrap();
    assert!(sub.status.is_some());
    assert!(sub.scale.is_none());
}

#[test]
fn printer_columns_match_bitnami() {
    let crd = crd();
    let cols: Vec<(String, String, String)> = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.type_, c.json_path))
        .collect();
    let expected = [
        ("Status", "string", ".status.conditions[0].message"),
        ("Synced", "string", ".status.conditions[0].status"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(cols, expected);
}

fn schema() -> Value {
    let crd = serde_json::to_value(crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn schema_requires_spec_and_encrypted_data_like_bitnami() {
    let s = schema();
    assert_eq!(s["required"], serde_json::json!(["spec"]));
    let spec = &s["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["encryptedData"]));
    let ed = &spec["properties"]["encryptedData"];
    assert_eq!(ed["type"], "object");
    assert_eq!(ed["additionalProperties"]["type"], "string");
    assert_eq!(ed["x-kubernetes-preserve-unknown-fields"], true);
    assert!(
        ed.get("default").is_none(),
        "a default would make `required` meaningless"
    );
    assert_eq!(spec["properties"]["data"]["format"], "byte");
    let tpl = &spec["properties"]["template"]["properties"];
    assert_eq!(
        tpl["metadata"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    assert_eq!(tpl["metadata"]["type"], "object");
    assert_eq!(tpl["type"]["type"], "string");
    assert_eq!(tpl["immutable"]["type"], "boolean");
    assert_eq!(tpl["data"]["additionalProperties"]["type"], "string");
    let cond = &s["properties"]["status"]["properties"]["conditions"]["items"];
    assert_eq!(cond["required"], serde_json::json!(["status", "type"]));
    for t in ["lastUpdateTime", "lastTransitionTime"] {
        assert_eq!(cond["properties"][t]["format"], "date-time", "{t}");
    }
    let og = &s["properties"]["status"]["properties"]["observedGeneration"];
    assert_eq!(
        (og["type"].as_str(), og["format"].as_str()),
        (Some("integer"), Some("int64"))
    );
}

/// The keywords a CRD schema may use (the fields of JSONSchemaProps that a structural
/// schema allows).
const ALLOWED_KEYWORDS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "nullable",
    "example",
    "externalDocs",
];
const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];
const JUNCTORS: &[&str] = &["allOf", "anyOf", "oneOf", "not"];

/// Checks one node of a structural schema and recurses. `needs_type` is false inside
/// logical junctors, where types must not appear at all.
fn check_structural(node: &Value, path: &str, in_junctor: bool, errors: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        errors.push(format!("{path}: schema node is not an object"));
        return;
    };
    for key in obj.keys() {
        if !(ALLOWED_KEYWORDS.contains(&key.as_str()) || key.starts_with("x-kubernetes-")) {
            errors.push(format!(
                "{path}: keyword {key:?} is not allowed in a CRD schema"
            ));
        }
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    match obj.get("type") {
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {
            if in_junctor {
                errors.push(format!("{path}: type inside a logical junctor"));
            }
        }
        Some(other) => errors.push(format!(
            "{path}: type must be one of {TYPES:?}, got {other}"
        )),
        None if in_junctor || preserve || int_or_string => {}
        None => errors.push(format!(
            "{path}: no type and no x-kubernetes-preserve-unknown-fields"
        )),
    }
    if in_junctor {
        for banned in ["description", "default", "additionalProperties", "nullable"] {
            if obj.contains_key(banned) {
                errors.push(format!("{path}: {banned} inside a logical junctor"));
            }
        }
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        errors.push(format!(
            "{path}: properties and additionalProperties are mutually exclusive"
        ));
    }
    if obj.get("uniqueItems") == Some(&Value::Bool(true)) {
        errors.push(format!("{path}: uniqueItems: true is not allowed"));
    }
    if obj.get("type").and_then(Value::as_str) == Some("array") && !obj.contains_key("items") {
        errors.push(format!("{path}: array without items"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            check_structural(child, &format!("{path}.{name}"), in_junctor, errors);
        }
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(false)) => errors.push(format!("{path}: additionalProperties: false")),
        Some(Value::Bool(true)) | None => {}
        Some(child) => check_structural(child, &format!("{path}[*]"), in_junctor, errors),
    }
    match obj.get("items") {
        Some(Value::Array(_)) => {
            errors.push(format!("{path}: items must be one schema, not a list"))
        }
        Some(child) => check_structural(child, &format!("{path}[]"), in_junctor, errors),
        None => {}
    }
    for j in JUNCTORS {
        match obj.get(*j) {
            Some(Value::Array(branches)) => {
                for (i, b) in branches.iter().enumerate() {
                    check_structural(b, &format!("{path}.{j}[{i}]"), true, errors);
                }
            }
            Some(b) => check_structural(b, &format!("{path}.{j}"), true, errors),
            None => {}
        }
    }
}

#[test]
fn crd_schema_is_structural() {
    let s = schema();
    let text = s.to_string();
    for banned in ["\"$ref\"", "\"$schema\"", "\"definitions\"", "\"$defs\""] {
        assert!(!text.contains(banned), "schema contains {banned}");
    }
    let mut errors = Vec::new();
    check_structural(&s, "", false, &mut errors);
    assert!(
        errors.is_empty(),
        "schema is not structural:\n{}",
        errors.join("\n")
    );
    assert_eq!(s["type"], "object", "the root is an object");
    // Only name and generateName of metadata may be restricted at the root.
    if let Some(meta) = s["properties"].get("metadata") {
        let keys: BTreeSet<&str> = meta
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            keys.iter()
                .all(|k| ["type", "properties", "description"].contains(k)),
            "{keys:?}"
        );
    }
}

#[test]
fn structural_check_catches_what_it_claims_to() {
    // The checker itself must be able to fail, or the test above proves nothing.
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "untyped": {"description": "no type"},
            "ref": {"$ref": "#/definitions/x"},
            "multi": {"type": ["string", "null"]},
            "both": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "junctor": {"type": "string", "anyOf": [{"type": "string"}]},
        }
    });
    let mut errors = Vec::new();
    check_structural(&bad, "", false, &mut errors);
    for needle in [
        ".untyped: no type",
        ".ref: keyword \"$ref\"",
        ".multi: type must be",
        ".both: properties and",
        "anyOf[0]: type inside",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "missed {needle}: {errors:?}"
        );
    }
}

#[test]
fn a_kubeseal_output_with_status_parses() {
    // The shape Bitnami's kubeseal and controller write, Go's null timestamps included.
    let doc = serde_json::json!({
        "kind": "SealedSecret",
        "apiVersion": "bitnami.com/v1alpha1",
        "metadata": {
            "name": "db", "namespace": "prod", "creationTimestamp": null,
            "annotations": {"sealedsecrets.bitnami.com/namespace-wide": "true"}
        },
        "spec": {
            "template": {
                "metadata": {"name": "db", "namespace": "prod", "creationTimestamp": null,
                             "unknownField": {"kept": true}},
                "type": "Opaque"
            },
            "encryptedData": {"pass": "AgBy..."}
        },
        "status": {
            "observedGeneration": 2,
            "conditions": [{
                "type": "Synced", "status": "True",
                "lastUpdateTime": "2024-05-01T10:00:00Z",
                "lastTransitionTime": "2024-05-01T10:00:00Z"
            }]
        }
    });
    let s: SealedSecret = sealed_secret_from_value(doc).unwrap();
    assert_eq!(s.spec.encrypted_data["pass"], "AgBy...");
    assert_eq!(s.spec.template.unwrap().type_.as_deref(), Some("Opaque"));
    let status = s.status.unwrap();
    assert_eq!(status.observed_generation, Some(2));
    let c = &status.conditions.unwrap()[0];
    assert_eq!(c.type_, sealant_crds::CONDITION_SYNCED);
    assert_eq!(c.status, sealant_crds::CONDITION_TRUE);
    assert!(c.last_update_time.is_some());
}

#[test]
fn a_sealed_secret_without_encrypted_data_parses_as_empty() {
    let doc = serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "prod"},
        "spec": {"data": "AAAA"}
    });
    let s = sealed_secret_from_value(doc).unwrap();
    assert!(s.spec.encrypted_data.is_empty());
    assert_eq!(s.spec.data.as_deref(), Some("AAAA"));
}
