//! What a scan reports: the rules, and one finding per rule broken.
//!
//! A [`Finding`] holds where (path, line, column, commit) and what (rule, object kind,
//! namespace, name, key). It has no field for a value, and nothing in it is computed
//! from one, so no report format can print a value, a part of one or a hash of one.

use std::fmt;

/// Every rule `sealant scan` checks. The id is stable: baselines and SARIF use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A Secret with a non-empty literal value in `data` or `stringData`.
    SecretPlaintext,
    /// A kustomize `secretGenerator` with `literals`.
    KustomizeLiteral,
    /// A kustomize `secretGenerator` whose `envs`/`files` point at a file in the repo.
    KustomizeFile,
    /// A SealedSecret value that is neither a Bitnami blob nor an age envelope.
    SealedNotEncrypted,
    /// A SealedSecret value whose RSA part does not fit the given certificate's key.
    SealedKeySize,
    /// Scope annotations of the SealedSecret and of `spec.template.metadata` disagree.
    SealedScopeMismatch,
    /// `spec.template.metadata` names another object than the SealedSecret.
    SealedTemplateMetadata,
    /// `spec.template.data` is not a template sealant (and Bitnami) can render.
    SealedTemplateInvalid,
    /// A strict or namespace-wide SealedSecret without a namespace.
    SealedNoNamespace,
    /// A `# sealant:allow` comment without a reason.
    AllowWithoutReason,
}

/// How serious a rule is, in SARIF's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A secret is (or may be) in plaintext.
    Error,
    /// A SealedSecret that will not unseal as intended.
    Warning,
}

impl Rule {
    /// Every rule, in the order reports list them.
    pub const ALL: [Rule; 10] = [
        Rule::SecretPlaintext,
        Rule::KustomizeLiteral,
        Rule::KustomizeFile,
        Rule::SealedNotEncrypted,
        Rule::SealedKeySize,
        Rule::SealedScopeMismatch,
        Rule::SealedTemplateMetadata,
        Rule::SealedTemplateInvalid,
        Rule::SealedNoNamespace,
        Rule::AllowWithoutReason,
    ];

    /// The stable id.
    pub fn id(self) -> &'static str {
        match self {
            Rule::SecretPlaintext => "secret-plaintext",
            Rule::KustomizeLiteral => "kustomize-secret-literal",
            Rule::KustomizeFile => "kustomize-secret-file",
            Rule::SealedNotEncrypted => "sealed-value-not-encrypted",
            Rule::SealedKeySize => "sealed-key-size",
            Rule::SealedScopeMismatch => "sealed-scope-mismatch",
            Rule::SealedTemplateMetadata => "sealed-template-metadata",
            Rule::SealedTemplateInvalid => "sealed-template-invalid",
            Rule::SealedNoNamespace => "sealed-no-namespace",
            Rule::AllowWithoutReason => "allow-without-reason",
        }
    }

    /// One line on what is wrong.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::SecretPlaintext => "plaintext value in a Secret",
            Rule::KustomizeLiteral => "plaintext literal in a kustomize secretGenerator",
            Rule::KustomizeFile => {
                "kustomize secretGenerator reads a file committed to the repository"
            }
            Rule::SealedNotEncrypted => {
                "SealedSecret value is not sealed (neither a Bitnami blob nor an age envelope)"
            }
            Rule::SealedKeySize => {
                "SealedSecret value was not sealed for the certificate's key size"
            }
            Rule::SealedScopeMismatch => {
                "scope annotations of the SealedSecret and its template disagree"
            }
            Rule::SealedTemplateMetadata => {
                "spec.template.metadata names another object than the SealedSecret"
            }
            Rule::SealedTemplateInvalid => {
                "spec.template.data is not a template sealant can render"
            }
            Rule::SealedNoNamespace => "strict or namespace-wide SealedSecret without a namespace",
            Rule::AllowWithoutReason => "# sealant:allow needs a reason",
        }
    }

    /// What to do about it.
    pub fn help(self) -> &'static str {
        match self {
            Rule::SecretPlaintext | Rule::KustomizeLiteral | Rule::KustomizeFile => {
                "Seal the Secret (sealant --cert cert.pem -o yaml < secret.yaml > sealed.yaml), \
                 commit only the SealedSecret, and rotate the value if it was ever pushed."
            }
            Rule::SealedNotEncrypted => {
                "Seal the value with sealant or kubeseal; a pasted base64 of the plaintext is \
                 not sealed, so rotate it if it was ever pushed."
            }
            Rule::SealedKeySize => "Re-seal the value with the cluster's current certificate.",
            Rule::SealedScopeMismatch => {
                "Set the sealedsecrets.bitnami.com/*-wide annotations the same way on both, \
                 or drop them from spec.template.metadata."
            }
            Rule::SealedTemplateMetadata => {
                "Drop name and namespace from spec.template.metadata, or make them the \
                 SealedSecret's own."
            }
            Rule::SealedTemplateInvalid => {
                "Use only the functions listed in the README's Templates section."
            }
            Rule::SealedNoNamespace => {
                "Give the SealedSecret a namespace, or seal it --scope cluster-wide."
            }
            Rule::AllowWithoutReason => "Write why: # sealant:allow <reason>.",
        }
    }

    /// The SARIF level.
    pub fn level(self) -> Level {
        match self {
            Rule::SecretPlaintext
            | Rule::KustomizeLiteral
            | Rule::KustomizeFile
            | Rule::SealedNotEncrypted
            | Rule::AllowWithoutReason => Level::Error,
            _ => Level::Warning,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One rule broken at one place. There is deliberately no value in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The path as the user sees it (as given, or relative to the repository root).
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// The rule.
    pub rule: Rule,
    /// The object's kind (`Secret`, `SealedSecret`, `Kustomization`).
    pub kind: String,
    /// The object's namespace, when it has one.
    pub namespace: Option<String>,
    /// The object's name, when it has one.
    pub name: Option<String>,
    /// The data key (or, for kustomize, the literal's key or the file's path).
    pub key: Option<String>,
    /// Why, for lint rules: written by sealant, never holding a value.
    pub detail: Option<String>,
    /// The path relative to the repository root: what SARIF and baselines use.
    pub repo_path: String,
    /// For `--since`: the commit that added the blob.
    pub commit: Option<String>,
}

impl Finding {
    /// `namespace/name`, `name` or `-`.
    pub fn object(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            (None, Some(name)) => name.clone(),
            (Some(ns), None) => format!("{ns}/-"),
            (None, None) => "-".to_owned(),
        }
    }

    /// The baseline fingerprint: rule, repository path, object and key; never a
    /// position (so edits above a finding keep it known) and never a value.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}:{}:{}/{}:{}",
            self.rule.id(),
            self.repo_path,
            self.kind,
            self.object(),
            self.key.as_deref().unwrap_or("-")
        )
    }

    /// One sentence: the rule's summary, the object and the key.
    pub fn message(&self) -> String {
        let mut text = format!("{}: {} {}", self.rule.summary(), self.kind, self.object());
        if let Some(key) = &self.key {
            text.push_str(&format!(", key {key:?}"));
        }
        if let Some(detail) = &self.detail {
            text.push_str(&format!(" ({detail})"));
        }
        text
    }
}
