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

pub use crate::args::keys::{
    BackupArgs, ControllerArgs, KeysArgs, KeysCommand, ListArgs, ListFormat, PruneArgs,
    RestoreArgs, RetireArgs,
};
pub(crate) use crate::passphrase::{PASSPHRASE_ENV, passphrase};

use crate::cluster::Cluster;
use anyhow::{Result, bail};

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
        let namespace = &args.namespace.controller_namespace;
        if namespace.is_empty() {
            bail!("--controller-namespace must not be empty");
        }
        Ok(Self {
            cluster: Cluster::connect(&args.cluster, namespace, "")?,
            namespace: namespace.clone(),
            prefix: args.key_prefix.clone(),
        })
    }

    /// The Secrets of the controller's namespace.
    fn secrets(&self) -> kube::Api<k8s_openapi::api::core::v1::Secret> {
        kube::Api::namespaced(self.cluster.client().clone(), &self.namespace)
    }
}
