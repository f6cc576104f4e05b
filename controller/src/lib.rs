//! # sealant-controller
//!
//! The cluster side of sealant: a drop-in replacement for the Bitnami Sealed Secrets
//! controller. This crate is built in layers, each provable without a cluster:
//!
//! ```text
//!   flags ──▶ key_secrets (Secrets ⇄ KeyRing, renewal schedule)
//!                  │
//!                  ▼
//!   SealedSecret + existing Secret ──▶ reconcile::decide ──▶ Create / Update / Unchanged / Refuse
//!                  │                        ▲
//!                  └── digest (HMAC proof that a Secret is in sync: no RSA on restart)
//!   http (healthz, cert.pem, verify, rotate; rate and size limited) + metrics
//!   key_secrets ──▶ escrow (age bundle of the active key Secrets) ──▶ ConfigMap + /v1/escrow-bundle
//! ```
//!
//! - [`flags`]: every Bitnami controller flag and its `SEALED_SECRETS_*` variable.
//! - [`key_secrets`]: which Secrets are keys, loading them (each read by
//!   [`sealant_crds::key_secret::read_entry`], the loader the CLI shares), writing new
//!   ones as Bitnami stores them, and when to renew.
//! - [`digest`]: the zero-decryption in-sync check.
//! - [`reconcile`]: the pure decision of what to do with one SealedSecret, the `Synced`
//!   condition, and the retry policy.
//! - [`http`] and [`metrics`]: the public endpoints.
//! - [`leader`]: Lease-based leader election, so several replicas can run.
//! - [`escrow`]: the active keys encrypted to `--escrow-recipient`s, kept in a
//!   ConfigMap by the leader and served at `/v1/escrow-bundle`.
//! - [`mod@run`]: the wiring (servers, leader election, one kube-runtime Controller per
//!   watched namespace); `pass` (one reconcile pass and its `Context`) and
//!   `key_manager` (load, generate, renew and watch key Secrets) are what it runs.
//! - `fixtures` (tests only): what the mock-API tests share.
//!
//! ## Errors
//!
//! One [`Error`] enum; [`Error::class`] drives retries.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod api_client;
mod decode;
pub mod digest;
mod error;
pub mod escrow;
#[cfg(test)]
mod fixtures;
pub mod flags;
pub mod http;
mod key_manager;
pub mod key_secrets;
pub mod leader;
pub mod metrics;
mod own_writes;
mod pass;
pub mod reconcile;
pub mod run;

pub use error::{Error, ErrorClass, chain};
pub use flags::Flags;
pub use run::run;
