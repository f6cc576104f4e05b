//! `spec.template.data` in unsealing, against [`decrypt`], which the HTTP API uses:
//! `decrypt` opens the sealed values and runs no template, so its answer depends only
//! on the ciphertexts (issue 11, findings 2, 4 and 6).

mod common;

use common::{key, map, other_key, ring, secret};
use sealant_crds::{Error, Scope, SealOptions, SealedSecret, decrypt, seal_secret, unseal};

fn sealed_with_templates(templates: &[(&str, &str)]) -> SealedSecret {
    let s = secret("prod", "db", &[("user", b"admin"), ("pass", b"hunter2")]);
    let opts = SealOptions {
        scope: Some(Scope::Strict),
        allow_empty_data: false,
    };
    let mut sealed = seal_secret(&s, key().public_key(), &opts).expect("seal");
    sealed.spec.template.get_or_insert_default().data = Some(map(templates));
    sealed
}

#[test]
fn decrypt_runs_no_template_and_gives_exactly_the_sealed_values() {
    let sealed = sealed_with_templates(&[
        ("pass", "{{ .pass }}-rendered"),
        (
            "extra",
            r#"{{ if hasPrefix "h" .pass }}{{ b64dec "!" }}{{ end }}"#,
        ),
    ]);
    let err = unseal(&sealed, &ring(&[key()]), None).expect_err("the template fails");
    assert!(matches!(err, Error::Template { .. }), "{err:?}");

    let opened = decrypt(&sealed, &ring(&[key()]), None).expect("the ciphertexts open");
    assert_eq!(opened.data().keys().collect::<Vec<_>>(), ["pass", "user"]);
    assert_eq!(opened.data()["pass"].expose_secret(), b"hunter2");
}

#[test]
fn decrypt_stops_at_the_first_value_that_no_key_opens() {
    let sealed = sealed_with_templates(&[]);
    let wrong = ring(&[other_key()]);
    match unseal(&sealed, &wrong, None) {
        Err(Error::Decrypt { fields, .. }) => assert_eq!(fields.len(), 2, "{fields:?}"),
        other => panic!("{other:?}"),
    }
    match decrypt(&sealed, &wrong, None) {
        Err(Error::Decrypt { fields, .. }) => {
            assert_eq!(
                fields,
                ["spec.encryptedData.pass"],
                "only the first is tried"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn templates_of_one_object_share_one_budget() {
    // Each renders 600,000 bytes, under the 1 MiB cap of one value; together they
    // pass the object's 1 MiB of output, and the second (in key order) fails.
    let big = r#"{{ repeat 600000 "x" }}"#;
    let sealed = sealed_with_templates(&[("a", big), ("b", big)]);
    let err = unseal(&sealed, &ring(&[key()]), None).expect_err("over budget");
    let text = err.to_string();
    assert!(text.contains("spec.template.data.b"), "{text}");
    assert!(text.contains("budget exceeded"), "{text}");
    let one = sealed_with_templates(&[("a", big)]);
    assert!(unseal(&one, &ring(&[key()]), None).is_ok());
}
