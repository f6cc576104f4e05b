//! Property tests of the hybrid format and the age envelope: any value round-trips
//! under any label, and no other label opens it.
//!
//! One RSA-2048 key is generated once per test binary, so each case costs one OAEP
//! encryption and one or two decryptions.

use std::sync::OnceLock;

use proptest::prelude::*;
use sealant_keys::{AgeIdentity, Error, PrivateKey, Scope, age_envelope, hybrid};

fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).expect("generate RSA-2048"))
}

fn identity() -> &'static AgeIdentity {
    static IDENTITY: OnceLock<AgeIdentity> = OnceLock::new();
    IDENTITY.get_or_init(AgeIdentity::generate)
}

fn scope() -> impl Strategy<Value = Scope> {
    prop::sample::select(Scope::ALL.to_vec())
}

/// Namespace and name: mostly Kubernetes-like, sometimes any Unicode, sometimes empty.
fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?",
        1 => "\\PC{0,12}",
        1 => Just(String::new()),
    ]
}

fn place() -> impl Strategy<Value = (Scope, String, String)> {
    (scope(), ident(), ident())
}

proptest! {
    #[test]
    fn any_value_round_trips_under_any_scope(
        value in prop::collection::vec(any::<u8>(), 0..4096),
        (scope, namespace, name) in place(),
    ) {
        let label = scope.label(&namespace, &name);
        let blob = hybrid::seal(key().public_key(), &value, &label).expect("seal");
        prop_assert_eq!(blob.len(), 2 + key().size_bytes() + value.len() + hybrid::TAG_LEN);
        let opened = hybrid::open(key(), &blob, &label).expect("open");
        prop_assert_eq!(opened.expose_secret(), value.as_slice());
    }

    #[test]
    fn no_other_label_opens_a_sealed_value(
        value in prop::collection::vec(any::<u8>(), 0..256),
        (scope, namespace, name) in place(),
        (other_scope, other_namespace, other_name) in place(),
    ) {
        let label = scope.label(&namespace, &name);
        let other = other_scope.label(&other_namespace, &other_name);
        prop_assume!(label != other);
        let blob = hybrid::seal(key().public_key(), &value, &label).expect("seal");
        prop_assert!(matches!(hybrid::open(key(), &blob, &other), Err(Error::Decrypt)));
    }

    #[test]
    fn a_value_moved_to_another_namespace_or_name_fails_under_strict_scope(
        value in prop::collection::vec(any::<u8>(), 0..64),
        namespace in ident(),
        name in ident(),
        moved_namespace in ident(),
        moved_name in ident(),
    ) {
        prop_assume!((namespace.as_str(), name.as_str()) != (moved_namespace.as_str(), moved_name.as_str()));
        let label = Scope::Strict.label(&namespace, &name);
        let moved = Scope::Strict.label(&moved_namespace, &moved_name);
        // "a/b" + "c" and "a" + "b/c" give the same label: Bitnami's format cannot tell
        // them apart, and Kubernetes names cannot hold a '/'.
        prop_assume!(label != moved);
        let blob = hybrid::seal(key().public_key(), &value, &label).expect("seal");
        prop_assert!(matches!(hybrid::open(key(), &blob, &moved), Err(Error::Decrypt)));
    }

    #[test]
    fn any_value_round_trips_through_the_age_envelope_under_any_scope(
        value in prop::collection::vec(any::<u8>(), 0..4096),
        (scope, namespace, name) in place(),
    ) {
        let label = scope.label(&namespace, &name);
        let blob = age_envelope::seal(&[identity().recipient().clone()], &label, &value)
            .expect("seal");
        prop_assert!(age_envelope::is_age(&blob));
        let opened = age_envelope::open(std::slice::from_ref(identity()), &label, &blob)
            .expect("open");
        prop_assert_eq!(opened.expose_secret(), value.as_slice());
    }

    #[test]
    fn no_other_label_opens_an_age_sealed_value(
        value in prop::collection::vec(any::<u8>(), 0..256),
        (scope, namespace, name) in place(),
        (other_scope, other_namespace, other_name) in place(),
    ) {
        let label = scope.label(&namespace, &name);
        let other = other_scope.label(&other_namespace, &other_name);
        prop_assume!(label != other);
        let blob = age_envelope::seal(&[identity().recipient().clone()], &label, &value)
            .expect("seal");
        prop_assert!(matches!(
            age_envelope::open(std::slice::from_ref(identity()), &other, &blob),
            Err(Error::Decrypt)
        ));
    }
}
