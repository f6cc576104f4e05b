//! The controller's HTTP API, as both sides name it: the paths the controller serves
//! and the CLI calls (through the API server's service proxy), and their media types.
//! The bodies are this crate's types: `/v1/verify` and `/v1/rotate` take one
//! [`crate::SealedSecret`] (JSON or YAML), and `/v1/rotate` answers one (JSON).
//!
//! | path | method | answer |
//! |---|---|---|
//! | [`HEALTHZ`] | GET | `ok` |
//! | [`READYZ`] | GET | `ok` once a sealing key is loaded, 503 before (sealant only) |
//! | [`CERT`] | GET | the newest certificate, [`PEM_MEDIA_TYPE`] |
//! | [`AGE_RECIPIENT`] | GET | the newest age recipient (sealant only) |
//! | [`ESCROW_BUNDLE`] | GET | the escrow bundle (sealant only) |
//! | [`VERIFY`] | POST | 200 when every value opens, 409 when not |
//! | [`ROTATE`] | POST | the SealedSecret re-sealed with the newest key |
//! | [`METRICS`] | GET | Prometheus metrics, on the metrics port |

/// Liveness: answers `ok`.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: `ok` once a sealing key is loaded, so a Service sends `/v1/cert.pem`
/// only to replicas that can answer it (sealant only).
pub const READYZ: &str = "/readyz";
/// The newest sealing certificate.
pub const CERT: &str = "/v1/cert.pem";
/// The newest age recipient (sealant only).
pub const AGE_RECIPIENT: &str = "/v1/age-recipient";
/// The escrow bundle of the active keys (sealant only).
pub const ESCROW_BUNDLE: &str = "/v1/escrow-bundle";
/// Whether every value of the posted SealedSecret opens under its scope.
pub const VERIFY: &str = "/v1/verify";
/// The posted SealedSecret, re-sealed with the newest key.
pub const ROTATE: &str = "/v1/rotate";
/// Prometheus metrics (on the metrics port).
pub const METRICS: &str = "/metrics";

/// The media type of [`CERT`]'s answer, as Bitnami's controller sends it.
pub const PEM_MEDIA_TYPE: &str = "application/x-pem-file";
