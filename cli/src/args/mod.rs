//! The command line, flag for flag as Bitnami's `kubeseal` has it.
//!
//! A script that runs `kubeseal --cert c.pem -o yaml < s.yaml` must work unchanged as
//! `sealant --cert c.pem -o yaml < s.yaml`, so the kubeseal flags live at the top level
//! and need no subcommand. sealant's own additions are either subcommands (`create`,
//! `keygen-escrow`, `completion`) or top-level flags that kubeseal does not have
//! (`--recipient`, `--recipients-file`, `--fetch-recipient`); clap refuses to mix
//! top-level kubeseal flags with a subcommand, so a flag always has exactly one
//! meaning.
//!
//! Flag names, short forms, defaults and `SEALED_SECRETS_*` environment variables
//! follow `kubeseal`; where kubeseal reads an environment variable for every flag, we
//! read it for the ones that carry values people set per machine or per pipeline.
//!
//! The option groups several commands share live here, below the commands, which
//! import them (never the reverse): [`SealToArgs`] (the certificate or age recipients,
//! and the cluster) is what every sealing command seals to, and [`SealingArgs`] (that,
//! the output and the sealing options) is what the kubeseal mode and `create` share.
//! The controller's flags are declared once too: [`ControllerServiceArgs`]
//! (`--controller-namespace`, `--controller-name`) wherever the controller's Service
//! is reached, and [`ControllerNamespaceArg`] alone for `keys`, which reads key
//! Secrets and never calls the Service.

pub mod keys;
pub mod reencrypt;
pub mod scan;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sealant_keys::Scope;

/// Seal Kubernetes Secrets for GitOps: a drop-in replacement for `kubeseal`.
///
/// Reads a Secret (YAML or JSON, several documents allowed) from stdin or
/// `--secret-file` and prints a SealedSecret that only the cluster's controller can
/// open.
#[derive(Debug, Parser)]
#[command(
    name = "sealant",
    version,
    args_conflicts_with_subcommands = true,
    // As kubeseal (pflag): a flag given twice takes its last value. Bitnami's own
    // integration suite passes --kubeconfig twice.
    args_override_self = true,
    after_help = "Examples:\n  \
        sealant --fetch-cert > cert.pem\n  \
        sealant --cert cert.pem -o yaml < secret.yaml > sealed.yaml\n  \
        sealant create db -n prod --from-literal password=s3cret --cert cert.pem -w db.yaml\n  \
        sealant --recovery-unseal --recovery-private-key main.key < sealed.yaml\n\n\
        Multi-cluster (age recipients):\n  \
        sealant --fetch-recipient --context staging >> recipients.txt\n  \
        sealant --fetch-recipient --context prod >> recipients.txt\n  \
        sealant keygen-escrow -o escrow.key >> recipients.txt\n  \
        sealant --recipients-file recipients.txt -o yaml < secret.yaml > sealed.yaml\n  \
        sealant --recovery-unseal --recovery-private-key escrow.key < sealed.yaml"
)]
pub struct Cli {
    /// sealant's own commands; without one, sealant behaves as `kubeseal`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The kubeseal flags.
    #[command(flatten)]
    pub kubeseal: KubesealArgs,
}

/// sealant's additions to the kubeseal command line.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a Secret in memory and print it sealed, so that no plaintext manifest
    /// ever touches the disk (like `kubectl create secret generic` piped into
    /// kubeseal).
    Create(Box<CreateArgs>),
    /// Create an offline age identity for escrow and break-glass recovery: writes the
    /// identity file (mode 0600) and prints its recipient (age1...), to seal to with
    /// --recipient and to give the controller as --escrow-recipient.
    KeygenEscrow(KeygenEscrowArgs),
    /// Re-seal the SealedSecrets in files and directories to a new certificate or age
    /// recipients, offline, opening them with the old keys (--recovery-private-key);
    /// only the ciphertext strings of each file change.
    Reencrypt(Box<reencrypt::ReencryptArgs>),
    /// Back up, restore, list, retire and prune the controller's sealing keys (key
    /// Secrets in --controller-namespace).
    Keys(Box<keys::KeysArgs>),
    /// Find plaintext Secrets (YAML, JSON, Lists, Helm templates, kustomize
    /// secretGenerator) and lint SealedSecrets offline, in files, the Git index
    /// (--staged) or history (--since). Exit 0 clean, 1 findings, 2 error.
    Scan(Box<scan::ScanArgs>),
    /// Print a shell completion script.
    Completion {
        /// The shell to print completions for.
        shell: clap_complete::Shell,
    },
}

/// Every kubeseal flag, for the top-level (kubeseal-compatible) mode.
#[derive(Debug, Args)]
pub struct KubesealArgs {
    /// What to seal to, the output, and the sealing options (shared with `create`).
    #[command(flatten)]
    pub sealing: SealingArgs,

    /// Secret (input) file [default: stdin]
    #[arg(short = 'f', long = "secret-file", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Write the certificate to stdout. Useful for later use with --cert
    #[arg(long, conflicts_with_all = ["recipient", "recipients_file", "fetch_recipient"])]
    pub fetch_cert: bool,

    /// Write the controller's age recipient (age1..., its newest key generation) to
    /// stdout, fetched through the API server like --fetch-cert. Useful for later use
    /// with --recipient or --recipients-file
    #[arg(long, conflicts_with_all = ["recipient", "recipients_file"])]
    pub fetch_recipient: bool,

    /// Validate that the sealed secret can be decrypted by the controller
    #[arg(long)]
    pub validate: bool,

    /// Encrypt a raw value passed via --from-file (or stdin) instead of the whole
    /// secret object; prints bare base64
    #[arg(long)]
    pub raw: bool,

    /// Name of the sealed secret (required with --raw and the default strict scope);
    /// overrides metadata.name of the input Secret
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// (only with --raw) The value to encrypt, read from a file: [KEY=]PATH. Use
    /// /dev/stdin to read pipe input
    #[arg(long = "from-file", value_name = "[KEY=]PATH", value_delimiter = ',')]
    pub from_file: Vec<String>,

    /// Re-encrypt the given sealed secret with the controller's newest key
    #[arg(long)]
    pub re_encrypt: bool,

    /// Deprecated: use --re-encrypt
    #[arg(long, hide = true)]
    pub rotate: bool,

    /// Decrypt sealed secrets offline with --recovery-private-key (disaster recovery)
    #[arg(long)]
    pub recovery_unseal: bool,

    /// Private key files for --recovery-unseal: PEM keys, key Secrets, a List of key
    /// Secrets (`kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o
    /// yaml`), age identity files (AGE-SECRET-KEY-1... lines, as `sealant
    /// keygen-escrow` and age-keygen write them), or encrypted key bundles (the escrow
    /// bundle or its `sealant-escrow-bundle` ConfigMap, opened with an identity file
    /// given alongside; a passphrase backup reads SEALANT_BACKUP_PASSPHRASE). Repeat
    /// the flag or give a comma-separated list
    #[arg(long, value_name = "FILE", value_delimiter = ',')]
    pub recovery_private_key: Vec<PathBuf>,
}

/// `sealant create NAME`: a Secret built from literals and files, then sealed.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// metadata.name of the Secret.
    pub name: String,

    /// The Secret's type.
    #[arg(long = "type", value_name = "TYPE", default_value = "Opaque")]
    pub secret_type: String,

    /// A literal value: KEY=VALUE (repeatable).
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    pub from_literal: Vec<String>,

    /// A value read from a file: [KEY=]PATH; without KEY the file's base name is the
    /// key; a directory adds each regular file in it (repeatable).
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    pub from_file: Vec<String>,

    /// Values read from KEY=VALUE lines of a file (repeatable).
    #[arg(long = "from-env-file", value_name = "FILE")]
    pub from_env_file: Vec<PathBuf>,

    /// What to seal to, the output, and the sealing options.
    #[command(flatten)]
    pub sealing: SealingArgs,
}

/// `sealant keygen-escrow`: a new offline age identity.
#[derive(Debug, Args)]
pub struct KeygenEscrowArgs {
    /// Identity file to create, with mode 0600. Required: the identity is a secret
    /// key. `-` writes it to stdout instead (for a pipe into a secret store; refused
    /// when stdout is a terminal), and the recipient then goes to stderr
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Replace an existing identity file. The identity it held is lost, and with it
    /// every value sealed only to its recipient
    #[arg(long)]
    pub force: bool,
}

/// Everything that decides how a Secret is sealed and where the result goes: the
/// options the kubeseal mode and `create` share.
#[derive(Debug, Args)]
pub struct SealingArgs {
    /// What values are sealed to, and the cluster.
    #[command(flatten)]
    pub to: SealToArgs,

    /// Output format and file.
    #[command(flatten)]
    pub output: OutputArgs,

    /// Sealing options.
    #[command(flatten)]
    pub seal: SealArgs,
}

impl SealingArgs {
    /// Refuses `--merge-into` together with `-w`.
    pub fn refuse_merge_into_with_output_file(&self) -> anyhow::Result<()> {
        if self.seal.merge_into.is_some() && self.output.sealed_secret_file.is_some() {
            anyhow::bail!("--merge-into updates its file in place and cannot be combined with -w");
        }
        Ok(())
    }
}

/// What values are sealed to: the certificate (a file, a URL, or the controller's,
/// fetched through the cluster) or age recipients; and how to reach that cluster. The
/// options of every command that seals (`sealant`, `create`, `reencrypt`).
#[derive(Debug, Args)]
pub struct SealToArgs {
    /// Where the sealing certificate comes from.
    #[command(flatten)]
    pub cert: CertArgs,

    /// age recipients to seal to instead of the certificate.
    #[command(flatten)]
    pub recipients: RecipientArgs,

    /// How to reach the cluster, and the default namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// age recipients to seal to, instead of the certificate. Values sealed to them are
/// sealant age envelopes: any one of the matching identities opens them.
#[derive(Debug, Args, Default)]
pub struct RecipientArgs {
    /// Seal to this age recipient (age1...) instead of the certificate; repeat for
    /// several, for example one per cluster plus an offline escrow key. Cannot be
    /// combined with --cert or SEALED_SECRETS_CERT
    #[arg(long = "recipient", value_name = "age1...")]
    pub recipient: Vec<String>,

    /// Seal to every age recipient in FILE: one age1... per line, blank lines and
    /// lines starting with # ignored (repeatable, combines with --recipient)
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
}

impl RecipientArgs {
    /// True when any recipient flag was given: values are then sealed to age.
    pub fn is_given(&self) -> bool {
        !self.recipient.is_empty() || !self.recipients_file.is_empty()
    }
}

/// Where the sealing certificate comes from.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Certificate file or URL (http, https, file) to seal with. Overrides
    /// --controller-*
    #[arg(long, env = "SEALED_SECRETS_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,

    /// The controller's Service, asked for the certificate without --cert.
    #[command(flatten)]
    pub controller: ControllerServiceArgs,
}

/// The namespace of the sealed-secrets controller: where its Service and its key
/// Secrets live. Every command that reaches the controller or its keys takes it.
#[derive(Clone, Debug, Args)]
pub struct ControllerNamespaceArg {
    /// Namespace of the sealed-secrets controller (its Service and key Secrets)
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system",
        value_name = "NAMESPACE"
    )]
    pub controller_namespace: String,
}

/// The sealed-secrets controller's Service, reached through the API server's service
/// proxy: for its certificate, and for `--validate` and `--re-encrypt`.
#[derive(Clone, Debug, Args)]
pub struct ControllerServiceArgs {
    /// Its namespace.
    #[command(flatten)]
    pub namespace: ControllerNamespaceArg,

    /// Name of the sealed-secrets controller (its Service)
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller",
        value_name = "NAME"
    )]
    pub controller_name: String,
}

impl ControllerServiceArgs {
    /// The Service's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace.controller_namespace
    }

    /// The Service's name.
    pub fn name(&self) -> &str {
        &self.controller_name
    }
}

/// The kubectl-style flags that choose a cluster and a namespace.
#[derive(Debug, Args, Default, Clone)]
pub struct ClusterArgs {
    /// Path to a kubeconfig file [default: $KUBECONFIG, then ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The kubeconfig cluster to use
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,

    /// The kubeconfig user to use
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Namespace of the Secret [default: the input's, else the kubeconfig context's,
    /// else "default"]
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

impl ClusterArgs {
    /// Refuses `-n/--namespace` for a `command` where it would mean nothing, saying
    /// `why`.
    pub fn refuse_namespace(&self, command: &str, why: &str) -> anyhow::Result<()> {
        if self.namespace.is_some() {
            anyhow::bail!("-n/--namespace does not apply to `{command}`: {why}");
        }
        Ok(())
    }
}

/// Output format and destination.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format [default: json, or yaml for a -w file ending in .yaml/.yml]
    #[arg(
        short = 'o',
        long = "format",
        env = "SEALED_SECRETS_FORMAT",
        value_enum,
        ignore_case = true,
        value_name = "FORMAT"
    )]
    pub format: Option<Format>,

    /// Sealed secret (output) file, written atomically and only on success [default:
    /// stdout]
    #[arg(short = 'w', long = "sealed-secret-file", value_name = "FILE")]
    pub sealed_secret_file: Option<PathBuf>,
}

/// Options that change what is sealed.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// Scope of the sealed secret [default: strict, or the input's
    /// sealedsecrets.bitnami.com/{cluster,namespace}-wide annotation]
    #[arg(long, value_enum, env = "SEALED_SECRETS_SCOPE", value_name = "SCOPE")]
    pub scope: Option<ScopeArg>,

    /// Allow a Secret with no data
    #[arg(long)]
    pub allow_empty_data: bool,

    /// Merge the input's values into an existing sealed secret file, in place;
    /// values not in the input are kept as they are
    #[arg(long, value_name = "FILE")]
    pub merge_into: Option<PathBuf>,
}

impl SealArgs {
    /// The scope that overrides the input's annotations. As in kubeseal, `strict` is the
    /// default and never overrides them: a Secret annotated cluster-wide stays
    /// cluster-wide under `--scope strict`.
    pub fn scope_override(&self) -> Option<Scope> {
        self.scope.map(Scope::from).filter(|s| *s != Scope::Strict)
    }
}

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Pretty-printed JSON.
    Json,
    /// YAML, each document starting with `---`.
    Yaml,
}

/// `--scope`, spelled as kubeseal spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Only as a Secret with this exact name and namespace.
    Strict,
    /// As a Secret of any name in this namespace.
    NamespaceWide,
    /// As any Secret in any namespace.
    ClusterWide,
}

impl From<ScopeArg> for Scope {
    fn from(arg: ScopeArg) -> Self {
        match arg {
            ScopeArg::Strict => Scope::Strict,
            ScopeArg::NamespaceWide => Scope::NamespaceWide,
            ScopeArg::ClusterWide => Scope::ClusterWide,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kubeseal_flags_parse_without_a_subcommand() {
        let cli = Cli::try_parse_from([
            "sealant",
            "--cert",
            "c.pem",
            "-o",
            "YAML",
            "--scope",
            "namespace-wide",
            "--recovery-private-key",
            "a.key,b.key",
            "--recovery-private-key",
            "c.key",
            "--rotate",
        ])
        .expect("valid kubeseal flags");
        assert!(cli.command.is_none());
        assert_eq!(cli.kubeseal.sealing.output.format, Some(Format::Yaml));
        assert_eq!(
            cli.kubeseal.sealing.seal.scope,
            Some(ScopeArg::NamespaceWide)
        );
        assert_eq!(cli.kubeseal.recovery_private_key.len(), 3);
        assert!(cli.kubeseal.rotate);
    }

    #[test]
    fn recipient_flags_repeat_and_refuse_fetch_cert() {
        let cli = Cli::try_parse_from([
            "sealant",
            "--recipient",
            "age1a",
            "--recipient",
            "age1b",
            "--recipients-file",
            "r.txt",
        ])
        .expect("valid recipient flags");
        assert_eq!(
            cli.kubeseal.sealing.to.recipients.recipient,
            ["age1a", "age1b"]
        );
        assert!(cli.kubeseal.sealing.to.recipients.is_given());
        assert!(Cli::try_parse_from(["sealant", "--fetch-cert", "--recipient", "age1a"]).is_err());
        assert!(Cli::try_parse_from(["sealant", "--fetch-cert", "--fetch-recipient"]).is_err());
    }

    #[test]
    fn keygen_escrow_takes_dash_o_or_output() {
        for flag in ["-o", "--output"] {
            let cli = Cli::try_parse_from(["sealant", "keygen-escrow", flag, "e.key"])
                .expect("valid keygen-escrow");
            let Some(Command::KeygenEscrow(args)) = cli.command else {
                panic!("not keygen-escrow");
            };
            assert_eq!(args.output.as_deref(), Some(std::path::Path::new("e.key")));
            assert!(!args.force);
        }
    }

    #[test]
    fn kubeseal_flags_are_refused_before_a_subcommand() {
        assert!(Cli::try_parse_from(["sealant", "--raw", "create", "x"]).is_err());
    }
}
