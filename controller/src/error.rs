//! The one error type of `sealant-controller`.
//!
//! Every variant names the object it is about (`namespace/name`) and, where there is
//! one, the field. Unseal failures are carried as [`sealant_crds::Error`], which is
//! coarse on purpose: it names the fields that failed, never why.
//!
//! [`Error::class`] sorts errors for the reconcile loop's retry policy; the stable
//! `reason` label of `sealed_secrets_controller_unseal_errors_total` is chosen where
//! the error happens (`crate::metrics::ErrorReason`, set by each step of a pass).
//! [`chain`] prints an error with its causes on one line, for logs and status.

/// Everything that can go wrong in `sealant-controller`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key Secret cannot be read as key material; the error names the Secret and
    /// the field ([`sealant_crds::key_secret`]).
    #[error(transparent)]
    KeyMaterial(sealant_crds::Error),

    /// Generating a new key or its certificate failed.
    #[error("cannot generate a new sealing key")]
    KeyGeneration(#[source] sealant_keys::Error),

    /// The controller holds no key yet, so it can neither seal nor unseal.
    #[error("no sealing key is loaded yet")]
    NoKeys,

    /// A SealedSecret could not be unsealed (bad ciphertext, bad spec). Permanent until
    /// the object or the keys change.
    #[error(transparent)]
    Unseal(#[from] sealant_crds::Error),

    /// A SealedSecret uses the deprecated `spec.data` while
    /// `--accept-deprecated-v1-data=false`.
    #[error(
        "sealed secret {object}: the deprecated spec.data field is refused (--accept-deprecated-v1-data=false); re-seal it with a current kubeseal or sealant"
    )]
    DeprecatedDataRefused {
        /// `namespace/name`.
        object: String,
    },

    /// The SealedSecret has `spec.template.data`, and this controller runs with
    /// `--accept-template-data=false` (no author-controlled template ever runs).
    #[error(
        "sealed secret {object}: spec.template.data is refused (--accept-template-data=false); seal the rendered values instead"
    )]
    TemplateDataRefused {
        /// `namespace/name`.
        object: String,
    },

    /// A Secret with the SealedSecret's name exists, is not owned by it, and is
    /// neither `managed` nor `patch`. The text is Bitnami's, word for word.
    #[error("Resource {name:?} already exists and is not managed by SealedSecret")]
    Unmanaged {
        /// The Secret's name.
        name: String,
    },

    /// The existing Secret is immutable and its data or type would change. The text
    /// is Bitnami's, word for word (its integration suite matches it).
    #[error(
        "Error updating {object}: the target Secret is immutable. Once a Secret is marked as immutable, it is not possible to revert this change nor to mutate the contents of the data field. You can only delete and recreate the Secret."
    )]
    Immutable {
        /// `namespace/name` of the SealedSecret (and so of its Secret).
        object: String,
    },

    /// A Kubernetes API call failed.
    #[error("cannot {action} {object}")]
    Kube {
        /// What was being done, for example `update Secret`.
        action: &'static str,
        /// `namespace/name`.
        object: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },

    /// A request body to the HTTP API is not a SealedSecret.
    #[error("cannot parse the request body as a SealedSecret")]
    BadRequestBody(#[source] sealant_crds::Error),

    /// Sealing (for `/v1/rotate`) failed.
    #[error("cannot re-encrypt {object}")]
    Reseal {
        /// `namespace/name`.
        object: String,
        /// What went wrong (boxed: it is large, and this error is rare).
        #[source]
        source: Box<sealant_crds::Error>,
    },

    /// A flag asks for something sealant does not do yet; refused rather than
    /// silently ignored.
    #[error("not supported yet: {what}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },

    /// Flags that cannot work together.
    #[error("invalid {flag}: {reason}")]
    Flag {
        /// The flag or flag family.
        flag: &'static str,
        /// Why.
        reason: String,
    },

    /// This replica led and no longer does: it stops so that it never writes as a
    /// stale leader.
    #[error("lost the leadership of Lease {lease}: {reason}")]
    LeadershipLost {
        /// `namespace/name` of the Lease.
        lease: String,
        /// Why.
        reason: String,
    },

    /// Encrypting the escrow bundle of the active keys to the `--escrow-recipient`s
    /// failed. Names nothing secret: the cause is age's encryption error.
    #[error("cannot encrypt the escrow bundle to the --escrow-recipient recipients")]
    Escrow(#[source] sealant_keys::Error),

    /// A worker task panicked (a bug); the pass is retried.
    #[error("internal error while {what}")]
    Internal {
        /// What the task was doing.
        what: &'static str,
    },

    /// Binding or serving a listener failed.
    #[error("cannot serve on {addr}")]
    Serve {
        /// The listen address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// How the reconcile loop treats an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying soon may succeed (API errors, conflicts, timeouts): short backoff.
    Transient,
    /// Nothing changes until the object or the keys change (bad ciphertext, bad spec,
    /// an unmanaged Secret in the way): Warning event, `Synced=False`, long backoff.
    Permanent,
    /// Retrying can never succeed without a person deleting something (an immutable
    /// Secret): say so once and wait for a change.
    Terminal,
}

impl Error {
    /// How the reconcile loop should retry after this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Immutable { .. } => ErrorClass::Terminal,
            Error::Unseal(_)
            | Error::DeprecatedDataRefused { .. }
            | Error::TemplateDataRefused { .. }
            | Error::Unmanaged { .. }
            | Error::KeyMaterial(_)
            | Error::BadRequestBody(_)
            | Error::Unsupported { .. }
            | Error::Flag { .. } => ErrorClass::Permanent,
            Error::Kube { source, .. } => match source {
                // 400 Bad Request and 422 Invalid: the object we send is wrong, and
                // sending it again will not help until the SealedSecret changes.
                kube::Error::Api(status) if status.code == 400 || status.code == 422 => {
                    ErrorClass::Permanent
                }
                _ => ErrorClass::Transient,
            },
            Error::KeyGeneration(_)
            | Error::NoKeys
            | Error::Reseal { .. }
            | Error::Internal { .. }
            | Error::Escrow(_)
            | Error::Serve { .. }
            | Error::LeadershipLost { .. } => ErrorClass::Transient,
        }
    }
}

/// The error and its causes on one line (no cause ever holds a secret value: unseal
/// errors are coarse, and Kubernetes API errors quote no Secret data).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
