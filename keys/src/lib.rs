//! # sealant-keys
//!
//! All of sealant's cryptography and key material, and nothing else: no Kubernetes, no
//! async runtime, no network, no clock and no file system. Callers hand in bytes and
//! the current time; this crate hands back bytes.
//!
//! ```text
//!   Certificate ──public key──▶ hybrid::seal(plaintext, scope label) ──▶ blob
//!   KeyRing(PrivateKey, ...) ◀── hybrid::open / KeyRing::open ◀──────── blob
//! ```
//!
//! - [`scope`]: the three Bitnami scopes and their OAEP labels.
//! - [`hybrid`]: the Bitnami ciphertext format, byte for byte.
//! - [`PrivateKey`], [`PublicKey`], [`Fingerprint`]: RSA key material.
//! - [`Certificate`]: self-signed certificates as the Bitnami controller makes them.
//! - [`KeyRing`]: many keys, newest first, most likely key tried first.
//! - [`Plaintext`]: the zeroizing box every secret value lives in.
//!
//! ## Errors
//!
//! One [`Error`] enum. Every decryption failure is [`Error::Decrypt`], with no detail.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cert;
mod error;
pub mod hybrid;
mod keyring;
mod rsa;
pub mod scope;
mod secret;

pub use cert::Certificate;
pub use error::Error;
pub use keyring::{KeyRing, Opened, RingEntry};
pub use rsa::{Fingerprint, PrivateKey, PublicKey};
pub use scope::Scope;
pub use secret::Plaintext;

/// Re-exported so that callers name times with the same type this crate uses.
pub use time::OffsetDateTime;
