//! The one error type of `sealant-keys`.
//!
//! Decryption failures are deliberately collapsed into [`Error::Decrypt`]: whether the
//! RSA-OAEP step, the label, the length prefix or the AES-GCM tag was wrong is exactly
//! the kind of detail that helps an attacker (a padding or timing oracle), so it never
//! leaves this crate.

/// Everything that can go wrong in `sealant-keys`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sealed value could not be decrypted with any key that was tried. Coarse on
    /// purpose: the cause is never reported.
    #[error("cannot decrypt with any known key")]
    Decrypt,

    /// Encryption failed inside the cryptographic library (for example the random
    /// number generator failed). Not caused by input.
    #[error("encryption failed in the cryptographic library")]
    Encrypt,

    /// The PEM text could not be parsed at all.
    #[error("invalid PEM")]
    Pem(#[source] pem::PemError),

    /// The PEM text parsed, but holds no block of the kind that was needed.
    #[error("no PEM block of type {expected} found")]
    MissingPemBlock {
        /// The PEM labels that would have been accepted.
        expected: &'static str,
    },

    /// A private key could not be read.
    #[error("invalid RSA private key: {reason}")]
    InvalidPrivateKey {
        /// What is wrong, in words a user can act on.
        reason: &'static str,
    },

    /// A public key could not be read.
    #[error("invalid RSA public key: {reason}")]
    InvalidPublicKey {
        /// What is wrong, in words a user can act on.
        reason: &'static str,
    },

    /// A certificate could not be parsed.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate {
        /// The parser's explanation.
        reason: String,
    },

    /// The certificate's NotAfter lies in the past.
    #[error("the certificate expired at {not_after}")]
    CertificateExpired {
        /// The certificate's NotAfter, RFC 3339.
        not_after: String,
    },

    /// Only RSA sizes that the constant-time backend supports can be generated.
    #[error("unsupported RSA key size {bits}: use 2048, 3072, 4096 or 8192")]
    UnsupportedKeySize {
        /// The size that was asked for.
        bits: usize,
    },

    /// Generating a key pair failed inside the cryptographic library.
    #[error("RSA key generation failed")]
    KeyGeneration,

    /// Building or signing the self-signed certificate failed.
    #[error("cannot create the self-signed certificate")]
    CertificateSigning(#[source] rcgen::Error),

    /// A scope name that is not one of the three known scopes.
    #[error("invalid scope {given:?}: expected strict, namespace-wide or cluster-wide")]
    InvalidScope {
        /// What was given.
        given: String,
    },

    /// An age identity (`AGE-SECRET-KEY-1...`) could not be read. The message names the
    /// line of an identity file, never its text.
    #[error("invalid age identity{}: {reason}", at_line(*.line))]
    InvalidAgeIdentity {
        /// The 1-based line of the identity file, when one was read.
        line: Option<usize>,
        /// What is wrong, in words a user can act on.
        reason: &'static str,
    },

    /// An age recipient (`age1...`) could not be read.
    #[error("invalid age recipient {given:?}{}: {reason}", at_line(*.line))]
    InvalidAgeRecipient {
        /// The text that was given, shortened; `[REDACTED]` if it looked like a
        /// secret key.
        given: String,
        /// The 1-based line of the recipients file, when one was read.
        line: Option<usize>,
        /// What is wrong, in words a user can act on.
        reason: &'static str,
    },

    /// A value cannot be sealed to age without at least one recipient.
    #[error("no age recipient given: seal to at least one age1... recipient")]
    NoAgeRecipients,

    /// More age recipients than a header sealant opens can hold
    /// ([`crate::age_envelope::MAX_RECIPIENTS`]).
    #[error("{given} age recipients is more than the {max} one value or bundle can be sealed to")]
    TooManyAgeRecipients {
        /// How many were given.
        given: usize,
        /// The most allowed.
        max: usize,
    },

    /// The age envelope stores the scope label's length in 16 bits.
    #[error("scope label of {len} bytes is longer than the age envelope allows (65535)")]
    LabelTooLong {
        /// The label's length in bytes.
        len: usize,
    },

    /// An empty passphrase protects nothing.
    #[error("the passphrase is empty")]
    EmptyPassphrase,

    /// An scrypt work factor that sealant would refuse to open.
    #[error("scrypt work factor 2^{log_n} is out of range: use 1 to {max}")]
    InvalidWorkFactor {
        /// The base-2 logarithm that was asked for.
        log_n: u8,
        /// The largest accepted logarithm.
        max: u8,
    },
}

/// `" at line N"` for errors that point into a file, or nothing.
fn at_line(line: Option<usize>) -> String {
    line.map(|n| format!(" at line {n}")).unwrap_or_default()
}
