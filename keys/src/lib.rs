//! # sealant-keys
//!
//! All of sealant's cryptography and key material, and nothing else: no Kubernetes, no
//! async runtime, no network, no clock and no file system. Callers hand in bytes and
//! the current time; this crate hands back bytes.
//!
//! ```text
//!   Certificate ──public key──▶ hybrid::seal(plaintext, scope label) ──▶ blob
//!   AgeRecipient(s) ──────────▶ age_envelope::seal(label, plaintext) ──▶ age blob
//!   KeyRing(PrivateKey, AgeIdentity, ...) ◀── KeyRing::open ◀── either blob,
//!                                             told apart by the age header
//! ```
//!
//! - [`scope`]: the three Bitnami scopes and their labels.
//! - [`hybrid`]: the Bitnami ciphertext format, byte for byte.
//! - [`age`]: age recipients and identities, and the frozen layout of the sealant age
//!   envelope (the scope label bound inside the authenticated age payload).
//! - [`age_envelope`]: sealing and opening that envelope, the header test
//!   [`age_envelope::is_age`], and passphrase-protected age files for key backups.
//! - [`bundle`]: key backups and escrow bundles, ASCII-armored age files to recipients
//!   or a passphrase, which `age -d` also opens.
//! - [`PrivateKey`], [`PublicKey`], [`Fingerprint`]: RSA key material.
//! - [`Certificate`]: self-signed certificates as the Bitnami controller makes them.
//! - [`KeyRing`]: many keys (RSA, and age identities beside them), newest first, most
//!   likely key tried first, reporting which key opened a value.
//! - [`Plaintext`]: the zeroizing box every secret value lives in.
//!
//! ## Errors
//!
//! One [`Error`] enum. Every decryption failure, RSA or age, is [`Error::Decrypt`],
//! with no detail.
//!
//! ## Choice of RSA implementation
//!
//! RSA runs on [AWS-LC](https://github.com/aws/aws-lc) through `aws-lc-rs`, not on the
//! pure-Rust RustCrypto `rsa` crate. The private-key operation is the one secret-dependent
//! computation a controller runs on attacker-supplied input (any SealedSecret in the
//! cluster), so it must be constant-time, and it is the cost of every unsealed value.
//!
//! - **Side channels.** RustCrypto `rsa` carries RUSTSEC-2023-0071 (the Marvin attack:
//!   key recovery through timing), and the advisory lists no patched version; its 0.10
//!   README says side channels were fixed but constant-time hardening is ongoing.
//!   docs/design.md allows no open advisory on the decrypt path, so `deny.toml` bans `rsa`
//!   from the workspace. AWS-LC's RSA (BoringSSL lineage) uses blinding and
//!   constant-time modular exponentiation, and no RustSec advisory affects the
//!   `aws-lc-sys` version in use (RUSTSEC-2026-0044 to -0048 concern X.509, PKCS#7, CRLs
//!   and AES-CCM, and were patched in 0.38/0.39).
//! - **Speed.** One RSA-4096 OAEP-SHA256 decryption, measured on the project machine
//!   (2 vCPU AMD EPYC Zen 5; see `BENCHMARKS.md` for commands and all rounds):
//!
//!   | implementation | time per op | ops/s |
//!   |---|---|---|
//!   | aws-lc-rs 1.19 (raw OAEP decrypt) | 1.37 ms | 728 |
//!   | [`hybrid::open`] of a small value | 1.45 ms | 689 |
//!   | `openssl speed rsa4096` (OpenSSL 3.0.19, sign) | 3.48 ms | 287 |
//!   | RustCrypto `rsa` 0.10.0 | 8.36 ms | 120 |
//!
//!   The target is at most 1.3x OpenSSL's time; AWS-LC takes 0.39x of it, and is 6x
//!   faster than RustCrypto `rsa`.
//!
//! ## Randomness
//!
//! Session keys, OAEP seeds, RSA keys and certificate serials come from AWS-LC's DRBG.
//! The workspace builds AWS-LC without its CPU-jitter entropy source
//! (`AWS_LC_SYS_NO_JITTER_ENTROPY=1` in `.cargo/config.toml`), so the DRBG is seeded
//! from the kernel's `getrandom`, the same source BoringSSL, ring, Go and OpenSSL
//! rely on. The jitter source adds no security a Linux `getrandom` lacks, and it cost
//! about 25 ms of CPU at every process start, which made one offline seal slower than
//! `kubeseal` (see `BENCHMARKS.md`).
//!
//! ## How this crate is tested
//!
//! - unit tests beside the code;
//! - `tests/vectors.rs`: known-answer vectors, one JSON file per case, sealed by an
//!   independent implementation (`tests/testdata/gen_vectors.py`, Python
//!   `cryptography`), including must-fail cases that must all be [`Error::Decrypt`];
//! - `tests/age_vectors.rs`: the same for age, from `tests/testdata/gen_age_vectors.py`,
//!   an age v1 implementation written from the specification in Python;
//! - `tests/bundle_vectors.rs`: key bundles (armored and binary age files, and must-fail
//!   armor and payload cases) from `tests/testdata/gen_bundle_vectors.py`;
//! - `tests/python_open.rs` and `tests/python_open_age.rs`: the reverse, our blobs and
//!   bundles opened by `tests/testdata/open_blob.py` and `open_age_blob.py`;
//! - `tests/properties.rs` and `tests/fuzz_open.rs`: proptest round trips, wrong labels,
//!   and arbitrary or mutated blobs (RSA and age), which must never panic;
//! - `fuzz/`: a cargo-fuzz target (nightly, not part of the suite);
//! - `benches/decrypt.rs`: the RSA-4096 private-key operation.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod age;
pub mod age_envelope;
pub mod bundle;
mod cert;
mod error;
pub mod hybrid;
mod keyring;
mod rsa;
pub mod scope;
mod secret;

pub use age::{AgeIdentity, AgeRecipient};
pub use cert::Certificate;
pub use error::Error;
pub use keyring::{AgeEntry, KeyRing, Opened, RingEntry};
pub use rsa::{Fingerprint, PrivateKey, PublicKey};
pub use scope::Scope;
pub use secret::Plaintext;

/// Re-exported so that callers name times with the same type this crate uses.
pub use time::OffsetDateTime;
