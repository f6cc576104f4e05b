//! Shared fixtures: keys are generated once per test binary, because RSA key
//! generation is the slowest thing these tests do.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_keys::{KeyRing, OffsetDateTime, PrivateKey};

/// The key most tests seal to.
pub fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).expect("generate test key"))
}

/// A second, unrelated key.
pub fn other_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).expect("generate test key"))
}

/// A ring holding exactly `keys`.
pub fn ring(keys: &[&PrivateKey]) -> KeyRing {
    let mut ring = KeyRing::new();
    for (i, k) in keys.iter().enumerate() {
        ring.insert((*k).clone(), OffsetDateTime::UNIX_EPOCH + time_secs(i));
    }
    ring
}

fn time_secs(i: usize) -> std::time::Duration {
    std::time::Duration::from_secs(i as u64)
}

/// A Secret `namespace/name` with the given `data` values.
pub fn secret(namespace: &str, name: &str, data: &[(&str, &[u8])]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// A string map from pairs.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
