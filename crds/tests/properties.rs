//! Property tests: whatever a Secret holds, sealing then unsealing gives it back, and
//! the printed SealedSecret reads back as the same object.

mod common;

use std::collections::BTreeMap;

use common::{key, ring};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;
use sealant_crds::{
    Scope, SealOptions, parse_documents, seal_secret, sealed_secret_from_value, to_json, to_yaml,
    unseal,
};

fn data_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,20}"
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::Strict),
        Just(Scope::NamespaceWide),
        Just(Scope::ClusterWide)
    ]
}

proptest! {
    // Each case does a few RSA operations; a few dozen cases are plenty.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn seal_then_unseal_returns_every_value(
        data in prop::collection::btree_map(data_key(), prop::collection::vec(any::<u8>(), 0..64), 0..4),
        string_data in prop::collection::btree_map(data_key(), ".{0,16}", 0..3),
        scope in scope(),
    ) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("prod".into()),
                ..ObjectMeta::default()
            },
            data: Some(data.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect()),
            string_data: Some(string_data.clone()),
            ..Secret::default()
        };
        let mut expected: BTreeMap<String, Vec<u8>> = data.clone();
        for (k, v) in &string_data {
            expected.insert(k.clone(), v.clone().into_bytes());
        }
        let opts = SealOptions { scope: Some(scope), allow_empty_data: true };
        let sealed = seal_secret(&secret, key().public_key(), &opts).unwrap();

        for text in [to_json(&sealed), to_yaml(&sealed)] {
            let doc = parse_documents(&text).unwrap().pop().unwrap();
            prop_assert_eq!(&sealed_secret_from_value(doc).unwrap(), &sealed);
        }

        let u = unseal(&sealed, &ring(&[key()]), None).unwrap();
        let got: BTreeMap<String, Vec<u8>> = u
            .data()
            .iter()
            .map(|(k, v)| (k.clone(), v.expose_secret().to_vec()))
            .collect();
        prop_assert_eq!(got, expected);
    }
}
