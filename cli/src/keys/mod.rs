//! `sealant keys`: the life of a controller's sealing keys, from the command line.
//!
//! A controller key generation is one key Secret in the controller's namespace (type
//! `kubernetes.io/tls`, label `sealedsecrets.bitnami.com/sealed-secrets-key`, see
//! `sealant_crds::key_secret`). Bitnami leaves backups, restores and retirement to
//! `kubectl` and careful reading of its docs; these commands do the same steps with
//! the checks a person forgets at 3 a.m.:
//!
//! ```text
//! backup ──▶ every key Secret (active, retired, legacy) ─▶ key_list ─▶ bundle::seal / _with_passphrase ─▶ 0600 file
//! restore ─▶ bundle / passphrase backup / plain List / escrow ConfigMap ─▶ parse_key_list ─▶ read_key_secret (all, first)
//!            └─▶ per key: same RSA fingerprint already there? skip : create in --controller-namespace
//! list ────▶ key Secrets × SealedSecrets' status.keyFingerprints ─▶ one row per key (+ "unknown")
//! retire ──▶ dependency check ─▶ label value `retired` (the controller's watch drops the key)
//! prune ───▶ only retired keys, dependency check, reminder where the last copy lives ─▶ delete
//! ```
//!
//! Which keys exist is read from the cluster with the caller's kubeconfig; which keys
//! are still needed is read from the `status.keyFingerprints` the sealant controller
//! writes on every SealedSecret it unseals (or, under Bitnami's CRD, which prunes that
//! field, from the keys its in-sync proof condition names). A SealedSecret without such a record for
//! its current generation (never unsealed by sealant, or failing) could need any key,
//! so it blocks `retire` and `prune` as if it needed the key (`--force` overrides).
//!
//! Guarantees:
//! - nothing is deleted except by `prune`, and `prune` deletes retired keys only;
//! - `restore` reads and checks every key before it creates the first one, so a
//!   broken backup creates nothing;
//! - key material goes to the API server, to an encrypted bundle or to a 0600 file
//!   (never to stdout unencrypted unless stdout is a pipe), and never into a message.

mod backup;
mod inventory;
mod restore;

use std::path::PathBuf;

use crate::cluster::Cluster;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::args::ClusterArgs;

/// The environment variable that may hold the passphrase of `keys backup`, `keys
/// restore` (instead of `--passphrase-file`) and of a bundle given to
/// `--recovery-private-key`.
pub const PASSPHRASE_ENV: &str = "SEALANT_BACKUP_PASSPHRASE";

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

    /// Namespace of the sealed-secrets controller: where its key Secrets live
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system",
        value_name = "NAMESPACE"
    )]
    pub controller_namespace: String,

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

/// Runs `sealant keys ...`.
pub fn run(args: &KeysArgs) -> Result<()> {
    match &args.command {
        KeysCommand::Backup(args) => backup::run(args),
        KeysCommand::Restore(args) => restore::run(args),
        KeysCommand::List(args) => inventory::list(args),
        KeysCommand::Retire(args) => inventory::retire(args),
        KeysCommand::Prune(args) => inventory::prune(args),
    }
}

/// A connection to the cluster, and where the keys live.
struct Session {
    cluster: Cluster,
    namespace: String,
    prefix: String,
}

impl Session {
    /// Connects as the kubeseal modes do (`--kubeconfig`, `--context`, `--cluster`,
    /// `--user`, else `$KUBECONFIG`/`~/.kube/config`, else in-cluster). These commands
    /// only talk to the API server, never to the controller's Service.
    fn connect(args: &ControllerArgs) -> Result<Self> {
        args.cluster.refuse_namespace(
            "sealant keys",
            "key Secrets live in the controller's namespace; use --controller-namespace",
        )?;
        if args.controller_namespace.is_empty() {
            bail!("--controller-namespace must not be empty");
        }
        Ok(Self {
            cluster: Cluster::connect(&args.cluster, &args.controller_namespace, "")?,
            namespace: args.controller_namespace.clone(),
            prefix: args.key_prefix.clone(),
        })
    }

    /// The Secrets of the controller's namespace.
    fn secrets(&self) -> kube::Api<k8s_openapi::api::core::v1::Secret> {
        kube::Api::namespaced(self.cluster.client().clone(), &self.namespace)
    }
}

/// The first line of `path`, without its line ending, else `$SEALANT_BACKUP_PASSPHRASE`;
/// `None` when neither is given. An empty passphrase is refused.
pub(crate) fn passphrase(
    path: Option<&std::path::Path>,
) -> Result<Option<zeroize::Zeroizing<String>>> {
    let text = match path {
        Some(path) => crate::files::read_text(path, crate::files::Limit::SMALL_FILE)
            .with_context(|| format!("--passphrase-file {}: cannot read it", path.display()))?,
        None => match std::env::var(PASSPHRASE_ENV) {
            Ok(value) => zeroize::Zeroizing::new(value),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("${PASSPHRASE_ENV} is not UTF-8 text")
            }
        },
    };
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        match path {
            Some(path) => bail!(
                "--passphrase-file {}: the first line is empty",
                path.display()
            ),
            None => bail!("${PASSPHRASE_ENV} is empty"),
        }
    }
    Ok(Some(zeroize::Zeroizing::new(line.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_is_the_first_line_without_its_line_ending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pass");
        std::fs::write(&path, "correct horse\r\nsecond line\n").expect("write");
        let pass = passphrase(Some(&path)).expect("read").expect("some");
        assert_eq!(pass.as_str(), "correct horse");
        std::fs::write(&path, "\nlater\n").expect("write");
        let err = passphrase(Some(&path)).expect_err("empty first line");
        assert!(err.to_string().contains("first line is empty"), "{err}");
    }
}
