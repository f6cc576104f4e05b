//! Sealing to age recipients: the same SealedSecret as with a certificate (scope rules,
//! annotations, template), with each value a sealant age envelope that the controller's
//! unseal opens with an age identity, and refuses once the value is moved.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::{key, ring, secret};
use sealant_crds::annotations::{CLUSTER_WIDE, NAMESPACE_WIDE};
use sealant_crds::{
    Error, Scope, SealOptions, SealedSecret, Sealer, merge_into, seal_secret, seal_value, unseal,
};
use sealant_keys::{AgeIdentity, AgeRecipient, KeyRing, OffsetDateTime, age_envelope};

/// A ring that holds only these age identities (no RSA key at all).
fn age_ring(identities: &[&AgeIdentity]) -> KeyRing {
    let mut ring = KeyRing::new();
    for identity in identities {
        ring.insert_age((*identity).clone(), OffsetDateTime::UNIX_EPOCH, None);
    }
    ring
}

fn recipients(identities: &[&AgeIdentity]) -> Vec<AgeRecipient> {
    identities.iter().map(|i| i.recipient().clone()).collect()
}

fn opts(scope: Scope) -> SealOptions {
    SealOptions {
        scope: Some(scope),
        allow_empty_data: false,
    }
}

fn values(sealed: &SealedSecret, ring: &KeyRing) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let unsealed = unseal(sealed, ring, None)?;
    Ok(unsealed
        .data()
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_vec()))
        .collect())
}

fn blob(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("standard base64")
}

const DATA: &[(&str, &[u8])] = &[("user", b"admin"), ("pass", &[0, 255, 1]), ("empty", b"")];

#[test]
fn every_scope_round_trips_through_unseal_with_an_age_identity() {
    let id = AgeIdentity::generate();
    let to = recipients(&[&id]);
    for scope in Scope::ALL {
        let sealed = seal_secret(&secret("prod", "db", DATA), &to, &opts(scope)).expect("seal");
        for text in sealed.spec.encrypted_data.values() {
            assert!(
                age_envelope::is_age(&blob(text)),
                "{scope}: not an age blob"
            );
        }
        let opened = values(&sealed, &age_ring(&[&id])).expect("unseal");
        assert_eq!(opened["user"], b"admin", "{scope}");
        assert_eq!(opened["pass"], [0, 255, 1], "{scope}");
        assert_eq!(opened["empty"], b"", "{scope}");
    }
}

#[test]
fn each_of_several_recipients_alone_unseals_the_same_values() {
    let (a, b) = (AgeIdentity::generate(), AgeIdentity::generate());
    let to = recipients(&[&a, &b]);
    let sealed = seal_secret(
        &secret("prod", "db", DATA),
        Sealer::Age(&to),
        &opts(Scope::Strict),
    )
    .expect("seal");
    for id in [&a, &b] {
        let opened = values(&sealed, &age_ring(&[id])).expect("unseal");
        assert_eq!(opened["user"], b"admin");
    }
    let stranger = AgeIdentity::generate();
    assert!(matches!(
        values(&sealed, &age_ring(&[&stranger])),
        Err(Error::Decrypt { .. })
    ));
    // An RSA key ring cannot open an age value either.
    assert!(matches!(
        values(&sealed, &ring(&[key()])),
        Err(Error::Decrypt { .. })
    ));
}

#[test]
fn strict_age_value_moved_to_another_namespace_or_name_fails_to_unseal() {
    let id = AgeIdentity::generate();
    let to = recipients(&[&id]);
    let sealed = seal_secret(&secret("prod", "db", DATA), &to, &opts(Scope::Strict)).expect("seal");
    let keys = age_ring(&[&id]);
    assert!(values(&sealed, &keys).is_ok(), "opens where it belongs");

    let mut other_namespace = sealed.clone();
    other_namespace.metadata.namespace = Some("dev".into());
    let mut other_name = sealed.clone();
    other_name.metadata.name = Some("other".into());
    let mut widened = sealed.clone();
    widened
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(NAMESPACE_WIDE.into(), "true".into());
    for moved in [other_namespace, other_name, widened] {
        let err = values(&moved, &keys).expect_err("moved value must not unseal");
        assert!(matches!(err, Error::Decrypt { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("unable to decrypt sealed secret")
        );
    }
}

#[test]
fn namespace_wide_age_value_opens_under_any_name_but_not_another_namespace() {
    let id = AgeIdentity::generate();
    let to = recipients(&[&id]);
    let sealed = seal_secret(
        &secret("prod", "db", DATA),
        &to,
        &opts(Scope::NamespaceWide),
    )
    .expect("seal");
    let keys = age_ring(&[&id]);
    let mut renamed = sealed.clone();
    renamed.metadata.name = Some("other".into());
    assert_eq!(values(&renamed, &keys).expect("renamed")["user"], b"admin");
    let mut moved = sealed;
    moved.metadata.namespace = Some("dev".into());
    assert!(matches!(values(&moved, &keys), Err(Error::Decrypt { .. })));
}

#[test]
fn age_and_rsa_sealing_produce_the_same_metadata_and_template() {
    let id = AgeIdentity::generate();
    let to = recipients(&[&id]);
    for scope in Scope::ALL {
        let input = secret("prod", "db", DATA);
        let rsa = seal_secret(&input, key().public_key(), &opts(scope)).expect("rsa");
        let age = seal_secret(&input, &to, &opts(scope)).expect("age");
        assert_eq!(rsa.metadata, age.metadata, "{scope}");
        assert_eq!(rsa.spec.template, age.spec.template, "{scope}");
        assert_eq!(
            rsa.spec.encrypted_data.keys().collect::<Vec<_>>(),
            age.spec.encrypted_data.keys().collect::<Vec<_>>()
        );
        let annotation = age
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLUSTER_WIDE));
        assert_eq!(
            annotation.map(String::as_str),
            (scope == Scope::ClusterWide).then_some("true")
        );
    }
}

#[test]
fn raw_age_value_opens_only_under_its_label() {
    let id = AgeIdentity::generate();
    let to = recipients(&[&id]);
    let keys = age_ring(&[&id]);
    for scope in Scope::ALL {
        let text = seal_value(to.as_slice(), b"s3cret", scope, "prod", "db").expect("seal");
        let raw = blob(&text);
        assert!(age_envelope::is_age(&raw));
        let opened = keys
            .open(&raw, &scope.label("prod", "db"), None)
            .expect("open");
        assert_eq!(opened.plaintext.expose_secret(), b"s3cret");
        assert_eq!(opened.age.as_ref(), Some(id.recipient()));
        if scope != Scope::ClusterWide {
            assert!(keys.open(&raw, &scope.label("dev", "db"), None).is_err());
        }
    }
    let err = seal_value(to.as_slice(), b"v", Scope::Strict, "prod", "").expect_err("no name");
    assert!(matches!(err, Error::RawScopeNeeds { .. }));
}

#[test]
fn sealing_to_no_recipient_is_refused_even_without_data() {
    let none: &[AgeRecipient] = &[];
    let err = seal_secret(&secret("prod", "db", DATA), none, &opts(Scope::Strict))
        .expect_err("no recipients");
    assert!(err.to_string().contains("prod/db"), "{err}");
    let empty = SealOptions {
        allow_empty_data: true,
        ..opts(Scope::Strict)
    };
    assert!(seal_secret(&secret("prod", "db", &[]), none, &empty).is_err());
    assert!(seal_value(none, b"v", Scope::ClusterWide, "", "").is_err());
}

#[test]
fn age_values_merged_into_an_rsa_sealed_secret_unseal_side_by_side() {
    let id = AgeIdentity::generate();
    let to = recipients(&[&id]);
    let mut existing = seal_secret(
        &secret("prod", "db", &[("old", b"rsa")]),
        key().public_key(),
        &opts(Scope::Strict),
    )
    .expect("rsa");
    let update = seal_secret(
        &secret("prod", "db", &[("new", b"age")]),
        &to,
        &opts(Scope::Strict),
    )
    .expect("age");
    merge_into(&mut existing, &update);
    let mut both = age_ring(&[&id]);
    both.insert(key().clone(), OffsetDateTime::UNIX_EPOCH);
    let opened = values(&existing, &both).expect("unseal both formats");
    assert_eq!(opened["old"], b"rsa");
    assert_eq!(opened["new"], b"age");
}
