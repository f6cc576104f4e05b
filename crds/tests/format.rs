//! Deterministic output and multi-document input.

mod common;

use std::path::Path;

use common::{key, map, secret};
use sealant_crds::{
    Error, Format, SealOptions, SealedSecretCondition, SealedSecretStatus, parse_documents,
    seal_secret, sealed_secret_from_value, secret_from_value, secret_to_yaml, to_json, to_yaml,
};
use serde_json::Value;

fn sample() -> sealant_crds::SealedSecret {
    let mut s = secret(
        "prod",
        "db",
        &[("zeta", b"z"), ("alpha", b"a"), ("mid", b"m")],
    );
    s.metadata.labels = Some(map(&[("z", "1"), ("a", "2")]));
    s.type_ = Some("Opaque".into());
    let opts = SealOptions {
        scope: Some(sealant_crds::Scope::NamespaceWide),
        allow_empty_data: false,
    };
    seal_secret(&s, key().public_key(), &opts).unwrap()
}

/// Every object's keys, in the order they appear in `value`, must be sorted.
fn assert_sorted(value: &Value, path: &str) {
    match value {
        Value::Object(m) => {
            let keys: Vec<&String> = m.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "keys at {path} are not sorted");
            for (k, v) in m {
                assert_sorted(v, &format!("{path}.{k}"));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| assert_sorted(v, path)),
        _ => {}
    }
}

/// The keys of every object in the order the text lists them (serde_json keeps text
/// order only with `preserve_order`, so read the text by hand for the top level).
fn top_level_key_order(json: &str) -> Vec<String> {
    json.lines()
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .map(|l| l.trim().split('"').nth(1).unwrap().to_owned())
        .collect()
}

#[test]
fn json_output_is_pretty_sorted_and_ends_with_one_newline() {
    let s = sample();
    let json = to_json(&s);
    assert_eq!(json, to_json(&s), "same input, same bytes");
    assert_eq!(json, to_json(&s.clone()));
    assert!(
        json.starts_with("{\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n"),
        "{json}"
    );
    assert!(json.ends_with("}\n") && !json.ends_with("\n\n"), "{json:?}");
    assert_eq!(
        top_level_key_order(&json),
        ["apiVersion", "kind", "metadata", "spec"]
    );
    let alpha = json.find("\"alpha\"").unwrap();
    let mid = json.find("\"mid\"").unwrap();
    let zeta = json.find("\"zeta\"").unwrap();
    assert!(alpha < mid && mid < zeta, "encryptedData keys sorted");
    let (data, template) = (
        json.find("\"encryptedData\"").unwrap(),
        json.find("\"template\"").unwrap(),
    );
    assert!(data < template, "spec keys sorted");
    assert!(!json.contains("status"), "no status when absent");
    assert_sorted(&serde_json::from_str(&json).unwrap(), "");
}

#[test]
fn yaml_output_starts_with_document_marker_and_is_deterministic() {
    let s = sample();
    let yaml = to_yaml(&s);
    assert_eq!(yaml, to_yaml(&s));
    assert!(
        yaml.starts_with("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n"),
        "{yaml}"
    );
    assert!(yaml.ends_with('\n') && !yaml.ends_with("\n\n"));
    assert!(!yaml.contains("status"));
    let a = yaml.find("alpha:").unwrap();
    let z = yaml.find("zeta:").unwrap();
    assert!(a < z);
}

#[test]
fn output_parses_back_to_the_same_object() {
    let mut s = sample();
    s.status = Some(SealedSecretStatus {
        observed_generation: Some(3),
        conditions: Some(vec![SealedSecretCondition {
            type_: "Synced".into(),
            status: "True".into(),
            ..SealedSecretCondition::default()
        }]),
        ..SealedSecretStatus::default()
    });
    for text in [to_json(&s), to_yaml(&s)] {
        let docs = parse_documents(&text).unwrap();
        assert_eq!(docs.len(), 1);
        let back = sealed_secret_from_value(docs.into_iter().next().unwrap()).unwrap();
        assert_eq!(back, s);
    }
}

#[test]
fn merged_output_differs_only_in_changed_keys() {
    let existing = sample();
    let mut merged = existing.clone();
    let update = seal_secret(
        &secret("prod", "db", &[("mid", b"new")]),
        key().public_key(),
        &SealOptions {
            scope: Some(sealant_crds::Scope::NamespaceWide),
            allow_empty_data: false,
        },
    )
    .unwrap();
    sealant_crds::merge_into(&mut merged, &update);
    let before = to_yaml(&existing);
    let after = to_yaml(&merged);
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.trim_start().starts_with("mid: "));
}

#[test]
fn parse_documents_splits_yaml_and_skips_empty_documents() {
    let input = "---\n# only a comment\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n...\n";
    let docs = parse_documents(input).unwrap();
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(parse_documents("").unwrap().is_empty());
    assert!(parse_documents("\n---\n").unwrap().is_empty());
}

#[test]
fn parse_documents_reads_a_stream_of_json_objects() {
    let input = r#"{"kind":"Secret","metadata":{"name":"a"}}
    {"kind":"Secret","metadata":{"name":"b"}}{"kind":"Secret","metadata":{"name":"c"}}"#;
    let docs = parse_documents(input).unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[2]["metadata"]["name"], "c");
}

#[test]
fn parse_errors_name_the_document() {
    let err = parse_documents("a: 1\n---\nb: [unclosed\n").unwrap_err();
    assert!(matches!(err, Error::ParseYaml { index: 2, .. }), "{err:?}");
    let err = parse_documents("{\"a\":1} {\"b\":").unwrap_err();
    assert!(matches!(err, Error::ParseJson { index: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("JSON value 2"), "{err}");
}

#[test]
fn format_is_detected_from_content_and_file_name() {
    assert_eq!(
        Format::detect("  \n{\"kind\": \"SealedSecret\"}"),
        Format::Json
    );
    assert_eq!(Format::detect("---\nkind: SealedSecret\n"), Format::Yaml);
    assert_eq!(Format::detect("kind: SealedSecret\n"), Format::Yaml);
    assert_eq!(Format::detect(&to_json(&sample())), Format::Json);
    assert_eq!(Format::detect(&to_yaml(&sample())), Format::Yaml);
    assert_eq!(
        Format::for_path(Path::new("x/sealed.yaml")),
        Some(Format::Yaml)
    );
    assert_eq!(
        Format::for_path(Path::new("sealed.YML")),
        Some(Format::Yaml)
    );
    assert_eq!(
        Format::for_path(Path::new("sealed.json")),
        Some(Format::Json)
    );
    assert_eq!(Format::for_path(Path::new("sealed")), None);
    let s = sample();
    assert_eq!(Format::Json.render(&s), to_json(&s));
    assert_eq!(Format::Yaml.render(&s), to_yaml(&s));
}

#[test]
fn secret_from_value_checks_kind_and_never_quotes_values() {
    let ok = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"},
                                "stringData": {"k": "v"}});
    assert!(secret_from_value(ok).is_ok());

    let wrong = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"});
    let err = secret_from_value(wrong).unwrap_err();
    assert!(err.to_string().contains("\"ConfigMap\""), "{err}");
    let wrong_version = serde_json::json!({"apiVersion": "v2", "kind": "Secret"});
    assert!(matches!(
        secret_from_value(wrong_version),
        Err(Error::WrongKind { .. })
    ));

    let leaky = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "a", "namespace": "prod"},
                                   "stringData": {"pin": 987654321}});
    let err = secret_from_value(leaky).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("987654321"), "{text}");
    assert!(text.contains("prod/a"), "{text}");
}

#[test]
fn sealed_secret_from_value_rejects_other_kinds() {
    let doc = serde_json::json!({"apiVersion": "v1", "kind": "Secret"});
    assert!(matches!(
        sealed_secret_from_value(doc),
        Err(Error::WrongKind { .. })
    ));
    let doc =
        serde_json::json!({"apiVersion": "bitnami.com/v1", "kind": "SealedSecret", "spec": {}});
    assert!(matches!(
        sealed_secret_from_value(doc),
        Err(Error::WrongKind { .. })
    ));
}

#[test]
fn secret_yaml_output_is_sorted() {
    let s = secret("prod", "db", &[("b", b"2"), ("a", b"1")]);
    let yaml = secret_to_yaml(&s);
    assert!(
        yaml.starts_with("---\napiVersion: v1\ndata:\n  a: MQ==\n  b: Mg==\nkind: Secret\n"),
        "{yaml}"
    );
}
