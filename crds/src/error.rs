//! The one error type of `sealant-crds`.
//!
//! Every message names the object (`namespace/name`) and the field where it can, so a
//! user with a hundred SealedSecrets knows which one to fix. Some texts are Bitnami's
//! `kubeseal` texts word for word, because scripts match on them.
//!
//! Two rules keep secrets out of messages:
//! - a decryption failure is [`Error::Decrypt`] and names only the object and the
//!   fields, never a cause (which key failed, or why, would help an attacker);
//! - a parse error over decrypted or plaintext input never chains the parser's error,
//!   because parser messages quote the offending value.

/// Everything that can go wrong in `sealant-crds`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input Secret has no `metadata.name`. The text is kubeseal's.
    #[error("missing metadata.name in input Secret")]
    MissingSecretName,

    /// The input Secret has no `metadata.namespace`. The caller (the CLI) is expected
    /// to fill it from `--namespace` or the kubeconfig context before sealing.
    #[error(
        "missing metadata.namespace in input Secret {name:?}: set it in the input, or pass --namespace"
    )]
    MissingSecretNamespace {
        /// The Secret's name.
        name: String,
    },

    /// The input Secret has neither `data` nor `stringData` keys. The text is
    /// kubeseal's.
    #[error(
        "secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used"
    )]
    EmptySecretData,

    /// Raw mode was asked to seal with a scope whose label needs a name or namespace
    /// that was not given. For a missing name the text is kubeseal's.
    #[error("must provide the {missing} flag with --raw and --scope {scope}")]
    RawScopeNeeds {
        /// The scope that was asked for.
        scope: sealant_keys::Scope,
        /// What is missing, as the user would supply it (`--name`, `--namespace`).
        missing: &'static str,
    },

    /// Encrypting one value failed inside `sealant-keys` (not caused by input).
    #[error("cannot seal {field} of {object}")]
    Seal {
        /// `namespace/name` of the Secret being sealed.
        object: String,
        /// The field, for example `data.password`.
        field: String,
        /// What the crypto layer reported.
        #[source]
        source: sealant_keys::Error,
    },

    /// A SealedSecret lacks metadata that unsealing needs (its name or namespace, from
    /// which the scope label is built).
    #[error("sealed secret {object} has no {field}")]
    SealedSecretMissingField {
        /// `namespace/name`, with `<none>` for the missing part.
        object: String,
        /// `metadata.name` or `metadata.namespace`.
        field: &'static str,
    },

    /// Both the deprecated `spec.data` and a non-empty `spec.encryptedData` are set.
    #[error(
        "sealed secret {object}: cannot use the field 'encryptedData' and the deprecated field 'data' at the same time"
    )]
    BothDataAndEncryptedData {
        /// `namespace/name`.
        object: String,
    },

    /// A sealed value is not valid standard base64.
    #[error("sealed secret {object}: {field} is not valid base64")]
    InvalidBase64 {
        /// `namespace/name`.
        object: String,
        /// `spec.encryptedData.<key>` or `spec.data`.
        field: String,
        /// The decoder's explanation (about ciphertext, which is public).
        #[source]
        source: base64::DecodeError,
    },

    /// No known key could decrypt one or more values. Coarse on purpose: the cause is
    /// never reported. The words are kubeseal's ("no key could decrypt secret (...)",
    /// which Bitnami's integration suite matches).
    #[error("unable to decrypt sealed secret {object}: no key could decrypt secret ({})", fields.join(", "))]
    Decrypt {
        /// `namespace/name`.
        object: String,
        /// Every field that failed, for example `spec.encryptedData.password`.
        fields: Vec<String>,
    },

    /// The deprecated `spec.data` decrypted, but the plaintext is not the JSON of a v1
    /// Secret. The parser's message is withheld because it could quote secret bytes.
    #[error(
        "sealed secret {object}: spec.data decrypted, but is not the JSON of a v1 Secret ({category} error at line {line}, column {column})"
    )]
    LegacyPayload {
        /// `namespace/name`.
        object: String,
        /// The kind of parse failure: syntax, data, eof or io.
        category: &'static str,
        /// Where in the plaintext the parse failed.
        line: usize,
        /// Where in the plaintext the parse failed.
        column: usize,
    },

    /// A `spec.template.data` value (a Go text/template over the decrypted values) could
    /// not be parsed or rendered, or the object's templates exceeded their budget
    /// (see [`crate::template::Limits`]). The message names the template, the function
    /// and the position in it, never a value or anything computed from one.
    #[error("sealed secret {object}: cannot render {field}: {source}")]
    Template {
        /// `namespace/name`.
        object: String,
        /// `spec.template.data.<key>`.
        field: String,
        /// Where in the template, and why.
        #[source]
        source: crate::template::TemplateError,
    },

    /// A YAML document of the input could not be parsed.
    #[error("cannot parse YAML document {index} of the input")]
    ParseYaml {
        /// 1-based position among the input's documents.
        index: usize,
        /// The YAML parser's explanation.
        #[source]
        source: serde_yaml_ng::Error,
    },

    /// A JSON value of the input could not be parsed.
    #[error("cannot parse JSON value {index} of the input")]
    ParseJson {
        /// 1-based position among the input's JSON values.
        index: usize,
        /// The JSON parser's explanation.
        #[source]
        source: serde_json::Error,
    },

    /// A key Secret has a field that cannot be read as key material.
    #[error("key secret {secret}: cannot read {field}")]
    KeySecret {
        /// `namespace/name` of the key Secret.
        secret: String,
        /// `data.tls.key`, `data.tls.crt` or `data.age.key`.
        field: &'static str,
        /// What the crypto layer reported (never key bytes).
        #[source]
        source: sealant_keys::Error,
    },

    /// A key Secret lacks a field.
    #[error("key secret {secret}: {field} is missing")]
    KeySecretMissingField {
        /// `namespace/name` of the key Secret.
        secret: String,
        /// `data.tls.key`, `data.tls.crt` or `metadata.creationTimestamp`.
        field: &'static str,
    },

    /// A key Secret's certificate holds another public key than its private key.
    #[error("key secret {secret}: data.tls.crt does not belong to the private key in data.tls.key")]
    KeyCertificateMismatch {
        /// `namespace/name` of the key Secret.
        secret: String,
    },

    /// A key backup could not be serialized. The serializer's message is withheld: it
    /// could quote key material.
    #[error("cannot serialize key Secret {secret} into a key backup")]
    KeyListSerialize {
        /// `namespace/name` of the key Secret, or `the List`.
        secret: String,
    },

    /// A parsed document is not an object of the expected kind.
    #[error("document is not a {expected}: {reason}")]
    WrongKind {
        /// `v1 Secret` or `bitnami.com/v1alpha1 SealedSecret`.
        expected: &'static str,
        /// What was found instead.
        reason: String,
    },

    /// A document has the right kind but a field has the wrong shape. For Secrets the
    /// parser's detail is withheld (it could quote a secret value); for SealedSecrets,
    /// which hold only ciphertext, it is chained.
    #[error("invalid {kind} {object}: {reason}")]
    InvalidObject {
        /// `Secret` or `SealedSecret`.
        kind: &'static str,
        /// `namespace/name` if it could be read, else `<unknown>`.
        object: String,
        /// What is wrong, as far as it can be told safely.
        reason: String,
        /// The parser's explanation, only where it cannot hold plaintext.
        #[source]
        source: Option<serde_json::Error>,
    },
}
