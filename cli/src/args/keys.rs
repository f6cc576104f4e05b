//! The arguments of `sealant keys` (the command is `crate::keys`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{ClusterArgs, ControllerNamespaceArg};

/// `sealant keys`: back up, restore, list, retire and prune the controller's keys.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do with the keys.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `sealant keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write every key Secret (active and retired) to an encrypted bundle: to age
    /// recipients, to a passphrase, or (only with --unencrypted) as the plain YAML List
    /// `kubectl apply` takes. The file is created with mode 0600.
    Backup(BackupArgs),
    /// Create the keys of a backup (escrow bundle, passphrase backup, Bitnami-style
    /// List or key Secret, or the escrow ConfigMap) in the controller's namespace.
    /// Keys already present are skipped; a running controller loads the new ones by
    /// its watch, without a restart.
    Restore(RestoreArgs),
    /// One row per key Secret: fingerprint, name, creation, status, and how many
    /// SealedSecrets still need it.
    List(ListArgs),
    /// Stop the controller from using a key (label value `retired`), once no
    /// SealedSecret needs it. Nothing is deleted.
    Retire(RetireArgs),
    /// Delete retired keys that no SealedSecret needs.
    Prune(PruneArgs),
}

/// Where the controller's keys live, and how to reach that cluster.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// How to reach the cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Where its key Secrets live.
    #[command(flatten)]
    pub namespace: ControllerNamespaceArg,

    /// Name prefix of the key Secrets (the controller's --key-prefix); an unlabelled
    /// Secret named exactly this is a legacy key, as in Bitnami
    #[arg(long, default_value = "sealed-secrets-key", value_name = "PREFIX")]
    pub key_prefix: String,
}

/// `sealant keys backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// File to create, with mode 0600; never replaced without --force. `-` writes to
    /// stdout (with --unencrypted only when stdout is a pipe)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    /// Replace an existing FILE
    #[arg(long)]
    pub force: bool,

    /// Encrypt to this age recipient (age1..., for example from `sealant
    /// keygen-escrow`); repeat for several
    #[arg(long = "recipient", value_name = "age1...")]
    pub recipient: Vec<String>,

    /// Encrypt to every age recipient in FILE: one age1... per line, blank lines and
    /// lines starting with # ignored (repeatable)
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,

    /// Encrypt to the passphrase on the first line of FILE (also read from
    /// $SEALANT_BACKUP_PASSPHRASE). age's scrypt: `age -d` opens it too
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Write the private keys unencrypted, as the YAML List `kubectl get secret -l
    /// sealedsecrets.bitnami.com/sealed-secrets-key -o yaml` prints
    #[arg(long)]
    pub unencrypted: bool,

    /// The controller and the cluster.
    #[command(flatten)]
    pub controller: ControllerArgs,
}

/// `sealant keys restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: an escrow bundle, a passphrase backup, a plain List of key Secrets
    /// or one key Secret (YAML or JSON), or the escrow ConfigMap
    /// (sealant-escrow-bundle, as YAML or JSON). `-` reads stdin
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// age identity file that opens an escrow bundle (as `sealant keygen-escrow`
    /// writes it); repeatable
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,

    /// The passphrase of a passphrase backup, on the first line of FILE (also read
    /// from $SEALANT_BACKUP_PASSPHRASE)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Print what would be created and skipped, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// The controller and the cluster.
    #[command(flatten)]
    pub controller: ControllerArgs,
}

/// `sealant keys list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "table",
        value_name = "FORMAT"
    )]
    pub output: ListFormat,

    /// The controller and the cluster.
    #[command(flatten)]
    pub controller: ControllerArgs,
}

/// The output formats of `keys list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns, for people.
    Table,
    /// One JSON object, for scripts.
    Json,
}

/// `sealant keys retire`.
#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The key's fingerprint (as `sealant keys list` prints it), or a unique prefix of
    /// it, with or without `SHA256:`
    #[arg(value_name = "FINGERPRINT")]
    pub fingerprint: String,

    /// Retire even while SealedSecrets need the key (they then fail to unseal once
    /// their Secret must be rewritten), or when it is the last active key (the
    /// controller then makes a new one)
    #[arg(long)]
    pub force: bool,

    /// The controller and the cluster.
    #[command(flatten)]
    pub controller: ControllerArgs,
}

/// `sealant keys prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Fingerprints (or unique prefixes) of retired keys to delete
    #[arg(value_name = "FINGERPRINT", required = true)]
    pub fingerprints: Vec<String>,

    /// Delete even while SealedSecrets need the keys
    #[arg(long)]
    pub force: bool,

    /// The controller and the cluster.
    #[command(flatten)]
    pub controller: ControllerArgs,
}
