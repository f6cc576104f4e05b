//! The RSA-4096 private-key operation, which bounds how fast a controller can unseal.
//!
//! - `hybrid_open_rsa4096_small_value`: [`hybrid::open`] of a 6-byte value, as the
//!   controller runs it per Secret value (OAEP decrypt + AES-256-GCM + the checks).
//! - `aws_lc_oaep_sha256_decrypt_rsa4096`: the raw AWS-LC RSA-OAEP-SHA256 decrypt of a
//!   32-byte session key, with no sealant code around it.
//!
//! Both use the committed vector key `tests/testdata/rsa4096.pem`. Compare them with
//! `openssl speed rsa4096` (its `sign/s` column is private-key operations per second);
//! BENCHMARKS.md at the repository root has the commands and the figures.

use std::hint::black_box;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use criterion::{Criterion, criterion_group, criterion_main};
use pkcs8::der::Encode as _;
use sealant_keys::{PrivateKey, Scope, hybrid};

fn read_key_pem() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/rsa4096.pem");
    std::fs::read(path).expect("the committed RSA-4096 vector key")
}

/// The same key handed straight to AWS-LC, which reads PKCS#8 only.
fn raw_aws_lc_key(pem_text: &[u8]) -> OaepPrivateDecryptingKey {
    let block = pem::parse(pem_text).expect("PEM");
    assert_eq!(block.tag(), "RSA PRIVATE KEY");
    let info = pkcs8::PrivateKeyInfo {
        algorithm: pkcs8::AlgorithmIdentifierRef {
            oid: pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
            parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
        },
        private_key: block.contents(),
        public_key: None,
    };
    let der = info.to_der().expect("PKCS#8");
    let key = PrivateDecryptingKey::from_pkcs8(&der).expect("AWS-LC key");
    OaepPrivateDecryptingKey::new(key).expect("OAEP key")
}

fn rsa4096_private_key_operation(c: &mut Criterion) {
    let pem_text = read_key_pem();
    let key = PrivateKey::from_pem(&pem_text).expect("vector key");
    let label = Scope::Strict.label("prod", "db");
    let blob = hybrid::seal(key.public_key(), b"s3cret", &label).expect("seal");
    let rsa_part = blob[2..2 + key.size_bytes()].to_vec();

    let mut group = c.benchmark_group("rsa4096");
    group.bench_function("hybrid_open_rsa4096_small_value", |b| {
        b.iter(|| hybrid::open(&key, black_box(&blob), black_box(&label)).expect("open"));
    });

    let raw = raw_aws_lc_key(&pem_text);
    let mut out = vec![0u8; raw.min_output_size()];
    group.bench_function("aws_lc_oaep_sha256_decrypt_rsa4096", |b| {
        b.iter(|| {
            let session_key = raw
                .decrypt(
                    &OAEP_SHA256_MGF1SHA256,
                    black_box(&rsa_part),
                    &mut out,
                    Some(&label),
                )
                .expect("decrypt");
            assert_eq!(session_key.len(), hybrid::SESSION_KEY_LEN);
        });
    });
    group.finish();
}

criterion_group!(benches, rsa4096_private_key_operation);
criterion_main!(benches);
