//! Sealing a Secret into a SealedSecret, as kubeseal does.

mod common;

use std::collections::BTreeMap;

use common::{key, map, ring, secret};
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use sealant_crds::annotations::{CLUSTER_WIDE, KUBECTL_LAST_APPLIED, NAMESPACE_WIDE};
use sealant_crds::{
    Error, Scope, SealOptions, merge_into, seal_secret, seal_value, to_json, unseal,
};
use sealant_keys::hybrid;

fn seal(s: &k8s_openapi::api::core::v1::Secret, opts: &SealOptions) -> sealant_crds::SealedSecret {
    seal_secret(s, key().public_key(), opts).expect("seal")
}

fn unsealed_values(sealed: &sealant_crds::SealedSecret) -> BTreeMap<String, Vec<u8>> {
    let u = unseal(sealed, &ring(&[key()]), None).expect("unseal");
    u.data()
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_vec()))
        .collect()
}

#[test]
fn seal_then_unseal_round_trips_every_value() {
    let s = secret(
        "prod",
        "db",
        &[("user", b"admin"), ("pass", &[0, 255, 1]), ("empty", b"")],
    );
    let sealed = seal(&s, &SealOptions::default());
    assert_eq!(sealed.spec.encrypted_data.len(), 3);
    let values = unsealed_values(&sealed);
    assert_eq!(values["user"], b"admin");
    assert_eq!(values["pass"], [0, 255, 1]);
    assert_eq!(values["empty"], b"");
}

#[test]
fn each_value_is_sealed_under_the_strict_label_by_default() {
    let s = secret("prod", "db", &[("user", b"admin")]);
    let sealed = seal(&s, &SealOptions::default());
    let blob = base64_decode(&sealed.spec.encrypted_data["user"]);
    let p = hybrid::open(key(), &blob, b"prod/db").expect("opens under prod/db");
    assert_eq!(p.expose_secret(), b"admin");
    assert!(hybrid::open(key(), &blob, b"prod").is_err());
}

#[test]
fn string_data_wins_over_data_with_the_same_key() {
    let mut s = secret("prod", "db", &[("pass", b"from-data"), ("only-data", b"d")]);
    s.string_data = Some(map(&[("pass", "from-stringData"), ("only-string", "s")]));
    let values = unsealed_values(&seal(&s, &SealOptions::default()));
    assert_eq!(values["pass"], b"from-stringData");
    assert_eq!(values["only-data"], b"d");
    assert_eq!(values["only-string"], b"s");
    assert_eq!(values.len(), 3);
}

#[test]
fn missing_name_error_text_matches_kubeseal() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.name = None;
    let err = seal_secret(&s, key().public_key(), &SealOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "missing metadata.name in input Secret");
    s.metadata.name = Some(String::new());
    let err = seal_secret(&s, key().public_key(), &SealOptions::default()).unwrap_err();
    assert!(matches!(err, Error::MissingSecretName));
}

#[test]
fn missing_namespace_is_an_error_naming_the_secret() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.namespace = None;
    let err = seal_secret(&s, key().public_key(), &SealOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingSecretNamespace { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"db\""), "{err}");
}

#[test]
fn empty_data_is_refused_with_kubeseal_text_unless_allowed() {
    let mut s = secret("prod", "db", &[]);
    let err = seal_secret(&s, key().public_key(), &SealOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used"
    );
    s.data = None;
    s.string_data = Some(BTreeMap::new());
    assert!(matches!(
        seal_secret(&s, key().public_key(), &SealOptions::default()),
        Err(Error::EmptySecretData)
    ));
    let opts = SealOptions {
        allow_empty_data: true,
        ..SealOptions::default()
    };
    let sealed = seal(&s, &opts);
    assert!(sealed.spec.encrypted_data.is_empty());
    assert!(
        to_json(&sealed).contains("\"encryptedData\": {}"),
        "encryptedData is required, so it is written even when empty"
    );
}

#[test]
fn server_set_fields_are_stripped_from_template_and_top_level() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    s.metadata.uid = Some("1234".into());
    s.metadata.resource_version = Some("99".into());
    s.metadata.generation = Some(3);
    s.metadata.creation_timestamp = Some(now.clone());
    s.metadata.deletion_timestamp = Some(now);
    s.metadata.deletion_grace_period_seconds = Some(30);
    s.metadata.self_link = Some("/api/v1/namespaces/prod/secrets/db".into());
    s.metadata.managed_fields = Some(vec![Default::default()]);
    s.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "x".into(),
        uid: "u".into(),
        ..OwnerReference::default()
    }]);
    let sealed = seal(&s, &SealOptions::default());
    let template_meta = sealed.spec.template.clone().unwrap().metadata.unwrap();
    for meta in [&sealed.metadata, &template_meta] {
        assert_eq!(meta.uid, None);
        assert_eq!(meta.resource_version, None);
        assert_eq!(meta.generation, None);
        assert_eq!(meta.creation_timestamp, None);
        assert_eq!(meta.deletion_timestamp, None);
        assert_eq!(meta.deletion_grace_period_seconds, None);
        assert_eq!(meta.self_link, None);
        assert_eq!(meta.managed_fields, None);
        assert_eq!(meta.owner_references, None);
    }
    let json = to_json(&sealed);
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "ownerReferences",
        "generation",
    ] {
        assert!(
            !json.contains(&format!("\"{field}\"")),
            "{field} leaked into:\n{json}"
        );
    }
}

#[test]
fn last_applied_configuration_never_reaches_the_output() {
    let mut s = secret("prod", "db", &[("pass", b"hunter2")]);
    s.metadata.annotations = Some(map(&[
        (KUBECTL_LAST_APPLIED, r#"{"data":{"pass":"aHVudGVyMg=="}}"#),
        ("kubecfg.ksonnet.io/last-applied-configuration", "copy"),
        ("team", "db"),
    ]));
    let sealed = seal(&s, &SealOptions::default());
    let json = to_json(&sealed);
    assert!(!json.contains("last-applied-configuration"), "{json}");
    assert!(!json.contains("aHVudGVyMg"), "{json}");
    let a = sealed
        .spec
        .template
        .unwrap()
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(a, map(&[("team", "db")]));
}

#[test]
fn template_carries_labels_annotations_type_immutable_name_and_namespace() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.labels = Some(map(&[("app", "db")]));
    s.metadata.annotations = Some(map(&[("note", "x")]));
    s.type_ = Some("kubernetes.io/basic-auth".into());
    s.immutable = Some(true);
    let sealed = seal(&s, &SealOptions::default());
    let t = sealed.spec.template.unwrap();
    assert_eq!(t.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(t.immutable, Some(true));
    assert_eq!(t.data, None);
    let m = t.metadata.unwrap();
    assert_eq!(m.name.as_deref(), Some("db"));
    assert_eq!(m.namespace.as_deref(), Some("prod"));
    assert_eq!(m.labels, Some(map(&[("app", "db")])));
    assert_eq!(m.annotations, Some(map(&[("note", "x")])));
}

#[test]
fn top_level_metadata_has_only_name_namespace_and_scope_like_kubeseal() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.labels = Some(map(&[("app", "db")]));
    s.metadata.annotations = Some(map(&[("note", "x"), (NAMESPACE_WIDE, "true")]));
    let sealed = seal(&s, &SealOptions::default());
    let expected = ObjectMeta {
        name: Some("db".into()),
        namespace: Some("prod".into()),
        annotations: Some(map(&[(NAMESPACE_WIDE, "true")])),
        ..ObjectMeta::default()
    };
    assert_eq!(sealed.metadata, expected);
    assert_eq!(sealed.status, None);
}

#[test]
fn scope_annotation_is_written_to_metadata_and_template() {
    let s = secret("prod", "db", &[("a", b"b")]);
    for (scope, annotation) in [
        (Scope::NamespaceWide, NAMESPACE_WIDE),
        (Scope::ClusterWide, CLUSTER_WIDE),
    ] {
        let sealed = seal(
            &s,
            &SealOptions {
                scope: Some(scope),
                allow_empty_data: false,
            },
        );
        let top = sealed.metadata.annotations.clone().unwrap();
        let tpl = sealed
            .spec
            .template
            .clone()
            .unwrap()
            .metadata
            .unwrap()
            .annotations
            .unwrap();
        assert_eq!(top, map(&[(annotation, "true")]), "{scope}");
        assert_eq!(tpl, map(&[(annotation, "true")]), "{scope}");
        assert_eq!(sealant_crds::annotations::scope_of(&sealed.metadata), scope);
        assert_eq!(unsealed_values(&sealed)["a"], b"b", "{scope}");
    }
    let strict = seal(&s, &SealOptions::default());
    assert_eq!(strict.metadata.annotations, None);
    assert_eq!(
        strict.spec.template.unwrap().metadata.unwrap().annotations,
        None
    );
}

#[test]
fn input_annotations_choose_the_scope_when_no_option_is_given() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.annotations = Some(map(&[(CLUSTER_WIDE, "true")]));
    let sealed = seal(&s, &SealOptions::default());
    let blob = base64_decode(&sealed.spec.encrypted_data["a"]);
    assert!(
        hybrid::open(key(), &blob, b"").is_ok(),
        "sealed under the empty (cluster-wide) label"
    );
}

#[test]
fn explicit_scope_overrides_the_input_annotations() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.annotations = Some(map(&[(CLUSTER_WIDE, "true"), ("keep", "me")]));
    let sealed = seal(
        &s,
        &SealOptions {
            scope: Some(Scope::Strict),
            allow_empty_data: false,
        },
    );
    assert_eq!(sealed.metadata.annotations, None);
    let tpl = sealed
        .spec
        .template
        .clone()
        .unwrap()
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(tpl, map(&[("keep", "me")]));
    let blob = base64_decode(&sealed.spec.encrypted_data["a"]);
    assert!(hybrid::open(key(), &blob, b"prod/db").is_ok());
    assert!(hybrid::open(key(), &blob, b"").is_err());

    let sealed = seal(
        &s,
        &SealOptions {
            scope: Some(Scope::NamespaceWide),
            allow_empty_data: false,
        },
    );
    let tpl = sealed
        .spec
        .template
        .unwrap()
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(tpl, map(&[("keep", "me"), (NAMESPACE_WIDE, "true")]));
}

#[test]
fn raw_value_is_sealed_under_the_label_of_its_scope() {
    let pk = key().public_key();
    for (scope, label) in [
        (Scope::Strict, &b"prod/db"[..]),
        (Scope::NamespaceWide, b"prod"),
        (Scope::ClusterWide, b""),
    ] {
        let text = seal_value(pk, b"s3cret", scope, "prod", "db").unwrap();
        assert!(!text.ends_with('\n'));
        let p = hybrid::open(key(), &base64_decode(&text), label).unwrap();
        assert_eq!(p.expose_secret(), b"s3cret");
    }
}

#[test]
fn raw_value_needs_a_name_for_strict_and_a_namespace_unless_cluster_wide() {
    let pk = key().public_key();
    let err = seal_value(pk, b"x", Scope::Strict, "prod", "").unwrap_err();
    assert_eq!(
        err.to_string(),
        "must provide the --name flag with --raw and --scope strict"
    );
    assert!(seal_value(pk, b"x", Scope::NamespaceWide, "", "db").is_err());
    assert!(seal_value(pk, b"x", Scope::NamespaceWide, "prod", "").is_ok());
    assert!(seal_value(pk, b"x", Scope::ClusterWide, "", "").is_ok());
}

#[test]
fn merge_into_keeps_untouched_values_byte_identical() {
    let mut first = secret("prod", "db", &[("keep", b"1"), ("replace", b"old")]);
    first.metadata.labels = Some(map(&[("app", "db"), ("tier", "old")]));
    let mut existing = seal(&first, &SealOptions::default());
    existing.spec.template.as_mut().unwrap().type_ = Some("Opaque".into());
    let before = existing.clone();

    let mut second = secret("prod", "db", &[("replace", b"new"), ("add", b"2")]);
    second.metadata.labels = Some(map(&[("tier", "new")]));
    second.metadata.annotations = Some(map(&[("note", "n")]));
    let update = seal(&second, &SealOptions::default());

    merge_into(&mut existing, &update);
    let ed = &existing.spec.encrypted_data;
    assert_eq!(
        ed["keep"], before.spec.encrypted_data["keep"],
        "untouched ciphertext is byte-identical"
    );
    assert_eq!(ed["replace"], update.spec.encrypted_data["replace"]);
    assert_eq!(ed["add"], update.spec.encrypted_data["add"]);
    assert_eq!(existing.metadata, before.metadata);
    let t = existing.spec.template.clone().unwrap();
    assert_eq!(t.type_.as_deref(), Some("Opaque"));
    let m = t.metadata.unwrap();
    assert_eq!(m.labels, Some(map(&[("app", "db"), ("tier", "new")])));
    assert_eq!(m.annotations, Some(map(&[("note", "n")])));

    let values = unsealed_values(&existing);
    assert_eq!(values["keep"], b"1");
    assert_eq!(values["replace"], b"new");
    assert_eq!(values["add"], b"2");
}

#[test]
fn merge_into_with_an_empty_update_changes_nothing() {
    let existing = seal(
        &secret("prod", "db", &[("a", b"1")]),
        &SealOptions::default(),
    );
    let mut merged = existing.clone();
    let update = seal(
        &secret("prod", "db", &[]),
        &SealOptions {
            scope: None,
            allow_empty_data: true,
        },
    );
    merge_into(&mut merged, &update);
    assert_eq!(to_json(&merged), to_json(&existing));
}

#[test]
fn data_values_are_binary_safe() {
    let all: Vec<u8> = (0..=255).collect();
    let mut s = secret("prod", "db", &[]);
    s.data = Some(BTreeMap::from([(
        "bin".to_owned(),
        ByteString(all.clone()),
    )]));
    assert_eq!(
        unsealed_values(&seal(&s, &SealOptions::default()))["bin"],
        all
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn cluster_wide_secret_without_namespace_stays_namespace_less_and_unseals() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.namespace = None;
    let opts = SealOptions {
        scope: Some(Scope::ClusterWide),
        ..SealOptions::default()
    };
    let sealed = seal(&s, &opts);
    assert_eq!(sealed.metadata.namespace, None);
    let template_ns = sealed
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.namespace.clone());
    assert_eq!(template_ns, None);
    assert_eq!(unsealed_values(&sealed)["a"], b"b");

    // Applied to any namespace, it still opens: the cluster-wide label is empty.
    let mut placed = sealed.clone();
    placed.metadata.namespace = Some("anywhere".to_owned());
    assert_eq!(unsealed_values(&placed)["a"], b"b");
}

#[test]
fn namespace_less_secret_is_refused_unless_cluster_wide() {
    let mut s = secret("prod", "db", &[("a", b"b")]);
    s.metadata.namespace = None;
    for scope in [Scope::Strict, Scope::NamespaceWide] {
        let opts = SealOptions {
            scope: Some(scope),
            ..SealOptions::default()
        };
        let err = seal_secret(&s, key().public_key(), &opts).unwrap_err();
        assert!(
            matches!(err, Error::MissingSecretNamespace { .. }),
            "{scope}: {err:?}"
        );
    }
}
