//! # sealant-crds
//!
//! The `SealedSecret` custom resource and everything that converts between it and a
//! plain `Secret`, with no network and no async runtime: the CLI and the controller
//! both build on it, so a SealedSecret sealed by one is read the same way by the other.
//!
//! ```text
//!            seal_secret (CLI)                         unseal (controller, recovery)
//!   Secret ─────────────────────▶ SealedSecret ─────────────────────────────▶ Unsealed ──into_secret──▶ Secret
//!            PublicKey + scope                 KeyRing + label from the
//!                                              SealedSecret's own metadata
//! ```
//!
//! - [`SealedSecret`] and its spec and status types, field for field as Bitnami's
//!   `bitnami.com/v1alpha1`; [`crd()`] and [`crd_yaml()`] give the CRD.
//! - [`annotations`]: the `sealedsecrets.bitnami.com/` annotations and the scope rules.
//! - [`api`]: the controller's HTTP paths and media types, for both sides.
//! - [`seal_secret`], [`seal_value`], [`merge_into`]: what `kubeseal` does, to an RSA
//!   certificate or (see [`Sealer`]) to age recipients.
//! - [`unseal`] and [`Unsealed`]: what the controller does; [`owner_reference`];
//!   [`decrypt`], the same without templates, for `/v1/verify` and `/v1/rotate`.
//! - [`key_secret`]: key Secrets in Bitnami's shape, and the key backups and escrow
//!   bundles (a `List` of them) that the CLI and the controller share; its
//!   [`key_secret::read_entry`] is the one loader from key Secret to key ring, for the
//!   controller and for recovery alike.
//! - [`proof`]: where the controller keeps its in-sync proof (a status condition)
//!   and the proof's text format.
//! - [`template`]: `spec.template.data`, Go `text/template` over the decrypted values.
//! - [`to_json`], [`to_yaml`], [`parse_documents`]: deterministic output, and input
//!   that may hold several YAML or JSON documents.
//!
//! ## Errors
//!
//! One [`Error`] enum. Decryption failures are coarse: they name the object and the
//! field, never why the key did not fit.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod annotations;
pub mod api;
mod crd;
mod error;
mod format;
pub mod key_secret;
pub mod proof;
mod seal;
pub mod template;
mod types;
mod unseal;

pub use crd::{CRD_PATH, crd, crd_yaml};
pub use error::Error;
pub use format::{
    Format, parse_documents, sealed_secret_from_value, secret_from_value, secret_to_json,
    secret_to_yaml, to_json, to_yaml,
};
pub use seal::{SealOptions, Sealer, merge_into, seal_secret, seal_value};
pub use types::{
    API_VERSION, CONDITION_FALSE, CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED,
    CONDITION_SYNCED, CONDITION_TRUE, CONDITION_UNKNOWN, GROUP, KIND, PLURAL, SealedSecret,
    SealedSecretCondition, SealedSecretSpec, SealedSecretStatus, SecretTemplateSpec, VERSION,
};
pub use unseal::{Unsealed, decrypt, owner_reference, secret_shell, unseal};

/// Re-exported so that callers name the scope with the same type this crate uses.
pub use sealant_keys::Scope;
