//! Any input to `hybrid::open` and `KeyRing::open` gives the plaintext or exactly
//! `Error::Decrypt`, and never panics.
//!
//! The first byte picks the label length; the rest is label then blob. The key is the
//! committed RSA-2048 vector key, so seeds can be real blobs from
//! `keys/tests/testdata/cases/` (prefix them with a label-length byte of 0).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealant_keys::{Error, KeyRing, OffsetDateTime, PrivateKey, hybrid};

fn ring() -> &'static (PrivateKey, KeyRing) {
    static RING: OnceLock<(PrivateKey, KeyRing)> = OnceLock::new();
    RING.get_or_init(|| {
        let pem = include_bytes!("../../tests/testdata/rsa2048-a.pem");
        let key = PrivateKey::from_pem(pem).expect("committed vector key");
        let mut ring = KeyRing::new();
        ring.insert(key.clone(), OffsetDateTime::UNIX_EPOCH);
        (key, ring)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (label, blob) = rest.split_at(usize::from(n).min(rest.len()));
    let (key, ring) = ring();
    match hybrid::open(key, blob, label) {
        Ok(_) | Err(Error::Decrypt) => {}
        Err(other) => panic!("hybrid::open gave {other:?}"),
    }
    match ring.open(blob, label, Some(key.fingerprint())) {
        Ok(_) | Err(Error::Decrypt) => {}
        Err(other) => panic!("KeyRing::open gave {other:?}"),
    }
});
