//! Unsealing a SealedSecret into a Secret, as Bitnami's controller does.

mod common;

use std::collections::BTreeMap;
use std::error::Error as _;

use base64::Engine as _;
use common::{key, map, other_key, ring, secret};
use k8s_openapi::ByteString;
use sealant_crds::annotations::{CLUSTER_WIDE, NAMESPACE_WIDE, SKIP_SET_OWNER_REFERENCES};
use sealant_crds::{
    Error, Scope, SealOptions, SealedSecret, SealedSecretSpec, owner_reference, seal_secret, unseal,
};
use sealant_keys::hybrid;

fn sealed(namespace: &str, name: &str, scope: Scope) -> SealedSecret {
    let s = secret(namespace, name, &[("user", b"admin"), ("pass", b"hunter2")]);
    let opts = SealOptions {
        scope: Some(scope),
        allow_empty_data: false,
    };
    seal_secret(&s, key().public_key(), &opts).expect("seal")
}

/// Moves a SealedSecret as a user would with an editor: top-level metadata only.
fn moved(mut s: SealedSecret, namespace: &str, name: &str) -> SealedSecret {
    s.metadata.namespace = Some(namespace.into());
    s.metadata.name = Some(name.into());
    s
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn strict_scope_rejects_secret_moved_to_other_namespace_or_name() {
    let ring = ring(&[key()]);
    let s = sealed("prod", "db", Scope::Strict);
    assert!(unseal(&s, &ring, None).is_ok());
    for (ns, name) in [("dev", "db"), ("prod", "other")] {
        let err = unseal(&moved(s.clone(), ns, name), &ring, None).unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{ns}/{name}: {err:?}");
    }
}

#[test]
fn namespace_wide_scope_allows_a_rename_but_not_a_move() {
    let ring = ring(&[key()]);
    let s = sealed("prod", "db", Scope::NamespaceWide);
    assert!(unseal(&moved(s.clone(), "prod", "renamed"), &ring, None).is_ok());
    assert!(unseal(&moved(s, "dev", "db"), &ring, None).is_err());
}

#[test]
fn cluster_wide_scope_allows_any_namespace_and_name() {
    let ring = ring(&[key()]);
    let s = sealed("prod", "db", Scope::ClusterWide);
    let u = unseal(&moved(s, "dev", "elsewhere"), &ring, None).unwrap();
    assert_eq!(u.namespace(), Some("dev"));
    assert_eq!(u.name(), "elsewhere");
    assert_eq!(u.data()["pass"].expose_secret(), b"hunter2");
}

#[test]
fn label_comes_from_the_sealed_secret_never_from_the_template() {
    let ring = ring(&[key()]);
    // Moved to dev, but the template still says prod/db: the label must be dev/db.
    let s = moved(sealed("prod", "db", Scope::Strict), "dev", "db");
    let tpl_meta = s.spec.template.as_ref().unwrap().metadata.as_ref().unwrap();
    assert_eq!(tpl_meta.namespace.as_deref(), Some("prod"));
    assert!(unseal(&s, &ring, None).is_err());

    // A scope annotation only in the template does not widen the scope either.
    let mut s = moved(sealed("prod", "db", Scope::Strict), "dev", "db");
    let m = s.spec.template.as_mut().unwrap().metadata.as_mut().unwrap();
    m.annotations = Some(map(&[(CLUSTER_WIDE, "true")]));
    assert!(unseal(&s, &ring, None).is_err());

    // And a namespace-wide value whose top-level annotation was removed is strict again.
    let mut s = sealed("prod", "db", Scope::NamespaceWide);
    s.metadata.annotations = None;
    assert!(unseal(&s, &ring, None).is_err());
    s.metadata.annotations = Some(map(&[(NAMESPACE_WIDE, "true")]));
    assert!(unseal(&s, &ring, None).is_ok());
}

#[test]
fn secret_takes_template_metadata_type_and_immutable_with_forced_name_and_namespace() {
    let ring = ring(&[key()]);
    let mut s = sealed("prod", "db", Scope::ClusterWide);
    let t = s.spec.template.as_mut().unwrap();
    t.type_ = Some("kubernetes.io/basic-auth".into());
    t.immutable = Some(true);
    let m = t.metadata.as_mut().unwrap();
    m.labels = Some(map(&[("app", "db")]));
    m.uid = Some("stale-uid".into());
    m.resource_version = Some("42".into());
    let s = moved(s, "dev", "copy");

    let secret = unseal(&s, &ring, None).unwrap().into_secret();
    assert_eq!(secret.metadata.name.as_deref(), Some("copy"));
    assert_eq!(secret.metadata.namespace.as_deref(), Some("dev"));
    assert_eq!(secret.metadata.labels, Some(map(&[("app", "db")])));
    assert_eq!(
        secret.metadata.annotations,
        Some(map(&[(CLUSTER_WIDE, "true")])),
        "template annotations, the scope one included, carry over as Bitnami's do"
    );
    assert_eq!(secret.metadata.uid, None, "server-set fields never travel");
    assert_eq!(secret.metadata.resource_version, None);
    assert_eq!(
        secret.metadata.owner_references, None,
        "the controller adds it, not unseal"
    );
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(secret.immutable, Some(true));
    assert_eq!(secret.string_data, None);
    let data = secret.data.unwrap();
    assert_eq!(data["user"], ByteString(b"admin".to_vec()));
    assert_eq!(data["pass"], ByteString(b"hunter2".to_vec()));
}

#[test]
fn sealed_secret_without_template_unseals_into_a_bare_secret() {
    let ring = ring(&[key()]);
    let mut s = sealed("prod", "db", Scope::Strict);
    s.spec.template = None;
    let secret = unseal(&s, &ring, None).unwrap().into_secret();
    assert_eq!(secret.metadata.name.as_deref(), Some("db"));
    assert_eq!(secret.type_, None);
    assert_eq!(secret.data.unwrap().len(), 2);
}

#[test]
fn legacy_spec_data_round_trips() {
    // Build the fixture the way Bitnami's NewSealedSecretV1 did: one blob over the JSON
    // of a whole v1 Secret, under the strict label.
    let whole = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "ignored", "namespace": "ignored", "labels": {"app": "legacy"}},
        "type": "Opaque",
        "data": {"pass": b64(b"hunter2"), "both": b64(b"from-data")},
        "stringData": {"both": "from-stringData"},
    });
    let plaintext = serde_json::to_vec(&whole).unwrap();
    let blob = hybrid::seal(key().public_key(), &plaintext, b"prod/db").unwrap();
    let mut s = SealedSecret::new(
        "db",
        SealedSecretSpec {
            data: Some(b64(&blob)),
            ..SealedSecretSpec::default()
        },
    );
    s.metadata.namespace = Some("prod".into());

    let u = unseal(&s, &ring(&[key()]), None).unwrap();
    assert_eq!(u.fingerprints().len(), 1);
    let secret = u.into_secret();
    assert_eq!(secret.metadata.name.as_deref(), Some("db"));
    assert_eq!(secret.metadata.namespace.as_deref(), Some("prod"));
    assert_eq!(secret.metadata.labels, Some(map(&[("app", "legacy")])));
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let data = secret.data.unwrap();
    assert_eq!(data["pass"].0, b"hunter2");
    assert_eq!(data["both"].0, b"from-stringData");

    // The legacy blob is bound to the label like any other.
    let elsewhere = moved(s, "dev", "db");
    let err = unseal(&elsewhere, &ring(&[key()]), None).unwrap_err();
    assert!(err.to_string().contains("spec.data"), "{err}");
}

#[test]
fn legacy_payload_that_is_not_a_secret_is_an_error_that_quotes_nothing() {
    let blob = hybrid::seal(
        key().public_key(),
        br#"{"kind": "hunter2-secret"}"#,
        b"prod/db",
    )
    .unwrap();
    let mut s = SealedSecret::new(
        "db",
        SealedSecretSpec {
            data: Some(b64(&blob)),
            ..SealedSecretSpec::default()
        },
    );
    s.metadata.namespace = Some("prod".into());
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    assert!(matches!(err, Error::LegacyPayload { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.source().is_none());
}

#[test]
fn both_data_and_encrypted_data_is_an_error() {
    let mut s = sealed("prod", "db", Scope::Strict);
    s.spec.data = Some(b64(b"anything"));
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    assert!(
        matches!(err, Error::BothDataAndEncryptedData { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("prod/db"), "{err}");
    assert!(err.to_string().contains("'encryptedData'"), "{err}");
}

#[test]
fn bad_base64_error_names_the_field() {
    let mut s = sealed("prod", "db", Scope::Strict);
    s.spec
        .encrypted_data
        .insert("broken".into(), "not base64!".into());
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    assert!(matches!(err, Error::InvalidBase64 { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("spec.encryptedData.broken"), "{text}");
    assert!(text.contains("prod/db"), "{text}");
}

#[test]
fn decryption_failure_is_coarse_and_names_only_the_object_and_the_keys() {
    let s = sealed("prod", "db", Scope::Strict);
    let err = unseal(&s, &ring(&[other_key()]), None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unable to decrypt sealed secret"), "{text}");
    assert!(text.contains("prod/db"), "{text}");
    assert!(text.contains("spec.encryptedData.pass"), "{text}");
    assert!(text.contains("spec.encryptedData.user"), "{text}");
    assert!(err.source().is_none(), "no cause is chained");

    // A truncated blob fails the same way as a wrong key.
    let mut s = sealed("prod", "db", Scope::Strict);
    s.spec.encrypted_data.insert("short".into(), b64(b"xy"));
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    match err {
        Error::Decrypt { fields, .. } => assert_eq!(fields, ["spec.encryptedData.short"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_ring_cannot_unseal() {
    let s = sealed("prod", "db", Scope::Strict);
    assert!(matches!(
        unseal(&s, &ring(&[]), None),
        Err(Error::Decrypt { .. })
    ));
}

#[test]
fn template_data_renders_over_decrypted_values_and_overrides_them() {
    let mut s = sealed("prod", "db", Scope::Strict);
    s.spec.template.as_mut().unwrap().data = Some(map(&[
        (
            "config.yaml",
            "username: {{ .user }}\npassword: {{ .pass | quote }}\n",
        ),
        (
            "dsn",
            "{{ printf \"postgres://%s:%s@db:5432/app\" .user .pass }}",
        ),
        // A template key replaces the decrypted value of the same name, and every
        // template sees the decrypted values, not another template's output.
        ("user", "{{ .user | upper }}"),
        ("copy", "{{ .user }}"),
    ]));
    let secret = unseal(&s, &ring(&[key()]), None).unwrap().into_secret();
    let data = secret.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(
        text("config.yaml"),
        "username: admin\npassword: \"hunter2\"\n"
    );
    assert_eq!(text("dsn"), "postgres://admin:hunter2@db:5432/app");
    assert_eq!(text("user"), "ADMIN");
    assert_eq!(text("copy"), "admin");
    assert_eq!(text("pass"), "hunter2");
    assert_eq!(data.len(), 5);

    // An empty template map changes nothing.
    s.spec.template.as_mut().unwrap().data = Some(BTreeMap::new());
    let data = unseal(&s, &ring(&[key()]), None)
        .unwrap()
        .into_secret()
        .data
        .unwrap();
    assert_eq!(data.len(), 2);
}

#[test]
fn template_error_names_the_object_and_the_template_key_but_no_value() {
    let mut s = sealed("prod", "db", Scope::Strict);
    s.spec.template.as_mut().unwrap().data = Some(map(&[
        ("good", "{{ .user }}"),
        ("url", "postgres://{{ .user }}:{{ .pass | nosuchfunc }}"),
    ]));
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    assert!(matches!(err, Error::Template { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("prod/db"), "{text}");
    assert!(text.contains("spec.template.data.url"), "{text}");
    let chain = format!("{text}: {}", err.source().unwrap());
    assert!(chain.contains("nosuchfunc"), "{chain}");
    assert!(chain.contains("line 1"), "{chain}");
    assert!(
        !chain.contains("hunter2") && !chain.contains("admin"),
        "{chain}"
    );

    // An execution error (a value of the wrong type) is reported the same way.
    s.spec.template.as_mut().unwrap().data = Some(map(&[("n", "{{ .pass | indent .user }}")]));
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    let chain = format!("{err}: {}", err.source().unwrap());
    assert!(chain.contains("spec.template.data.n"), "{chain}");
    assert!(
        !chain.contains("hunter2") && !chain.contains("admin"),
        "{chain}"
    );
}

#[test]
fn sealed_secret_without_name_or_namespace_is_an_error() {
    let mut s = sealed("prod", "db", Scope::Strict);
    s.metadata.namespace = None;
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    assert!(err.to_string().contains("metadata.namespace"), "{err}");
    let mut s = sealed("prod", "db", Scope::Strict);
    s.metadata.name = Some(String::new());
    let err = unseal(&s, &ring(&[key()]), None).unwrap_err();
    assert!(err.to_string().contains("metadata.name"), "{err}");
}

#[test]
fn fingerprints_report_the_key_that_opened_the_values() {
    let both = ring(&[other_key(), key()]);
    let s = sealed("prod", "db", Scope::Strict);
    let u = unseal(&s, &both, Some(other_key().fingerprint())).unwrap();
    assert_eq!(
        u.fingerprints().iter().collect::<Vec<_>>(),
        [key().fingerprint()]
    );
}

#[test]
fn unsealed_debug_shows_keys_but_never_values() {
    let u = unseal(&sealed("prod", "db", Scope::Strict), &ring(&[key()]), None).unwrap();
    let shown = format!("{u:?} {u:#?}");
    assert!(shown.contains("pass"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("admin"), "{shown}");
}

#[test]
fn owner_reference_matches_bitnami_and_honours_skip_annotation() {
    let mut s = sealed("prod", "db", Scope::Strict);
    assert_eq!(owner_reference(&s), None, "no uid yet");
    s.metadata.uid = Some("abc-123".into());
    let r = owner_reference(&s).unwrap();
    assert_eq!(r.api_version, "bitnami.com/v1alpha1");
    assert_eq!(r.kind, "SealedSecret");
    assert_eq!(r.name, "db");
    assert_eq!(r.uid, "abc-123");
    assert_eq!(r.controller, Some(true));
    assert_eq!(r.block_owner_deletion, None);

    let m = s.spec.template.as_mut().unwrap().metadata.as_mut().unwrap();
    m.annotations = Some(map(&[(SKIP_SET_OWNER_REFERENCES, "true")]));
    assert_eq!(owner_reference(&s), None);
    let m = s.spec.template.as_mut().unwrap().metadata.as_mut().unwrap();
    m.annotations = Some(map(&[(SKIP_SET_OWNER_REFERENCES, "yes")]));
    assert!(
        owner_reference(&s).is_some(),
        "only the exact value true counts"
    );
}
