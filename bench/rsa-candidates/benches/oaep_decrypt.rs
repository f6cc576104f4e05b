//! RSA-4096 OAEP-SHA256 (MGF1-SHA256, with a label) decryption of a 32-byte session
//! key, the operation sealant runs once per sealed value: RustCrypto `rsa` versus
//! aws-lc-rs, same key, same ciphertext.

use std::hint::black_box;

use aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256;
use criterion::{Criterion, criterion_group, criterion_main};
use rsa::Oaep;
use rsa::sha2::Sha256;

const LABEL: &[u8] = b"prod/db";

fn oaep_decrypt_rsa4096(c: &mut Criterion) {
    let keys = rsa_candidates::keys().expect("load the vector key");
    let session_key = [7u8; 32];
    let mut ciphertext = vec![0u8; keys.public.ciphertext_size()];
    keys.public
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &session_key,
            &mut ciphertext,
            Some(LABEL),
        )
        .expect("encrypt");

    // Both libraries must agree before either is timed.
    let mut out = vec![0u8; keys.aws_lc.min_output_size()];
    let by_aws_lc = keys
        .aws_lc
        .decrypt(&OAEP_SHA256_MGF1SHA256, &ciphertext, &mut out, Some(LABEL))
        .expect("aws-lc decrypt");
    assert_eq!(by_aws_lc, session_key);
    let by_rust_crypto = keys
        .rust_crypto
        .decrypt(Oaep::<Sha256>::new_with_label(LABEL), &ciphertext)
        .expect("rsa decrypt");
    assert_eq!(by_rust_crypto, session_key);

    let mut group = c.benchmark_group("oaep_sha256_decrypt_rsa4096");
    group.bench_function("aws-lc-rs", |b| {
        b.iter(|| {
            keys.aws_lc
                .decrypt(
                    &OAEP_SHA256_MGF1SHA256,
                    black_box(&ciphertext),
                    &mut out,
                    Some(LABEL),
                )
                .expect("decrypt")
                .len()
        });
    });
    group.bench_function("rustcrypto-rsa-0.10", |b| {
        b.iter(|| {
            keys.rust_crypto
                .decrypt(
                    Oaep::<Sha256>::new_with_label(LABEL),
                    black_box(&ciphertext),
                )
                .expect("decrypt")
        });
    });
    group.finish();
}

criterion_group!(benches, oaep_decrypt_rsa4096);
criterion_main!(benches);
