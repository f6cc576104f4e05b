//! The arguments of `sealant scan` (the command is `crate::scan`).

use std::path::PathBuf;

use clap::Args;

use super::{ClusterArgs, ControllerServiceArgs};

/// The report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One line per finding.
    Text,
    /// A JSON document (usable as a --baseline).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

/// `sealant scan` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 nothing found, 1 findings, 2 usage or I/O error.\n\n\
    Examples:\n  \
    sealant scan                        # the work tree, honouring .gitignore\n  \
    sealant scan --staged               # what `git commit` would commit (pre-commit hook)\n  \
    sealant scan --since origin/main    # every blob added since, history included\n  \
    sealant scan --format sarif > scan.sarif\n  \
    kubectl get secret db -o yaml | sealant scan -"
)]
pub struct ScanArgs {
    /// Files and directories to scan; `-` reads stdin [default: .]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Scan what `git commit` would commit: the blobs in the index, not the work tree.
    #[arg(long, conflicts_with_all = ["paths", "since"])]
    pub staged: bool,

    /// Scan every blob added in the commits REV..HEAD, to find leaks already committed
    /// (REV = the empty tree, `git hash-object -t tree /dev/null`: the whole history).
    #[arg(long, value_name = "REV", conflicts_with = "paths")]
    pub since: Option<String>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Known findings to ignore: a `--format json` report of an earlier scan (matched by
    /// rule, path, object and key).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Check that every RSA-sealed value fits this certificate's key size (file or
    /// http/https/file URL).
    #[arg(long, value_name = "FILE|URL", conflicts_with = "fetch_cert")]
    pub cert: Option<String>,

    /// Like --cert, with the certificate fetched from the controller (as `sealant
    /// --fetch-cert` does).
    #[arg(long)]
    pub fetch_cert: bool,

    /// The controller's Service (with --fetch-cert).
    #[command(flatten)]
    pub controller: ControllerServiceArgs,

    /// How to reach the cluster (with --fetch-cert).
    #[command(flatten)]
    pub cluster: ClusterArgs,
}
