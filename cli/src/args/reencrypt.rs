//! The arguments of `sealant reencrypt` (the command is `crate::reencrypt`).

use std::path::PathBuf;

use clap::Args;

use super::SealToArgs;

/// `sealant reencrypt PATH...`: re-seal SealedSecrets in files to a new key, offline.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sealant reencrypt deploy/ --recovery-private-key old-keys.yaml --cert new-cert.pem --dry-run\n  \
    sealant reencrypt deploy/ --recovery-private-key old-keys.yaml --cert new-cert.pem\n  \
    sealant reencrypt . --recovery-private-key escrow.key,escrow-bundle.age --context new-cluster")]
pub struct ReencryptArgs {
    /// Files and directories to rewrite in place. Directories are walked recursively
    /// for *.yaml, *.yml and *.json files; hidden directories such as .git are skipped
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The old keys, to open the values with: PEM keys, key Secrets, Lists of key
    /// Secrets, age identity files, or encrypted key bundles (as for --recovery-unseal).
    /// Repeat the flag or give a comma-separated list
    #[arg(long, value_name = "FILE", value_delimiter = ',', required = true)]
    pub recovery_private_key: Vec<PathBuf>,

    /// The new certificate or age recipients, and how to reach the cluster whose
    /// certificate is fetched without --cert (`-n` is refused: each SealedSecret keeps
    /// its own namespace).
    #[command(flatten)]
    pub to: SealToArgs,

    /// Write nothing; print, for each value, the key that opened it and what would be
    /// done
    #[arg(long)]
    pub dry_run: bool,

    /// Seal again also the values whose key already is the target certificate's
    #[arg(long)]
    pub force: bool,
}
