//! # sealant-cli
//!
//! The `sealant` command: a drop-in replacement for Bitnami's `kubeseal`, plus
//! `sealant create` (seal a Secret that never touches the disk), sealing to age
//! recipients (one SealedSecret for several clusters and an offline escrow key),
//! `sealant keygen-escrow` (that offline key) and `sealant completion`.
//!
//! `main.rs` only parses the command line; everything else starts at [`run`], where
//! tests can reach it. The modes are kubeseal's, checked in kubeseal's order:
//!
//! ```text
//! --recovery-unseal ─▶ keys (PEM, key Secrets, age identities) from files ─▶ unseal each document ─▶ Secrets
//! reencrypt PATH... ─▶ old keys open each value in the files ─▶ re-seal to --cert/--recipient ─▶ only ciphertexts replaced
//! keys backup|restore|list|retire|prune ─▶ key Secrets in --controller-namespace (age bundles, SealedSecret status)
//! --validate ────────▶ POST /v1/verify (through the API server's service proxy)
//! --re-encrypt ──────▶ POST /v1/rotate ─▶ SealedSecrets
//! --fetch-recipient ─▶ GET /v1/age-recipient (service proxy) ─▶ checked age1... line
//! otherwise: --recipient/--recipients-file (age), else the certificate (--cert
//! file/URL, or the controller)
//!   --fetch-cert ────▶ the PEM as is
//!   --merge-into F ──▶ seal under F's name/namespace/scope, merge, replace F atomically
//!   --raw ───────────▶ one value ─▶ bare base64
//!   (default) ───────▶ seal each document ─▶ SealedSecrets
//! ```
//!
//! ## Errors
//!
//! Commands return `anyhow` errors with context naming the document and the field;
//! [`exit_code`] prints the chain on one line as `error: ...` and exits 1. A closed
//! stdout (`sealant ... | head`) is a success, as for any Unix filter.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod args;
mod cert;
mod cluster;
mod create;
mod documents;
mod escrow;
mod files;
mod keys;
mod output;
mod passphrase;
mod recipients;
mod recovery;
mod reencrypt;
mod scan;
mod seal;

use std::io::{self, IsTerminal as _};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::CommandFactory as _;
use zeroize::Zeroizing;

pub use args::Cli;
use args::{Command, CreateArgs, KubesealArgs};
use output::Output;
use recipients::SealingKey;
use seal::{Namespaces, Sealing};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Completion { shell }) => completion(shell),
        Some(Command::Create(args)) => create(&args),
        Some(Command::KeygenEscrow(args)) => escrow::run(&args),
        Some(Command::Reencrypt(args)) => reencrypt::run(&args),
        Some(Command::Keys(args)) => keys::run(&args),
        Some(Command::Scan(args)) => scan::run(&args),
        None => kubeseal(cli.kubeseal),
    }
}

/// What `kubeseal --version` prints, when this binary was started under the name
/// `kubeseal` (a symlink or a copy) with `--version` among its arguments: Bitnami's
/// format, `kubeseal version: vX.Y.Z`, for scripts (and Bitnami's own integration
/// suite) that parse it. Under any other name clap prints sealant's own version line.
pub fn kubeseal_version(program: &std::ffi::OsStr, args: &[std::ffi::OsString]) -> Option<String> {
    let name = std::path::Path::new(program).file_name()?;
    (name == "kubeseal" && args.iter().any(|a| a == "--version"))
        .then(|| format!("kubeseal version: v{}\n", env!("CARGO_PKG_VERSION")))
}

/// Turns the outcome of [`run`] into an exit code, printing errors to stderr.
pub fn exit_code(result: Result<()>) -> ExitCode {
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    if is_broken_pipe(&err) {
        return ExitCode::SUCCESS;
    }
    if let Some(code) = scan::exit_code(&err) {
        return code;
    }
    eprintln!("error: {}", error_text(&err));
    ExitCode::FAILURE
}

/// The error and its causes on one line, as `{:#}` prints them, except that an
/// operating-system error reads as Go (and so kubeseal) prints it: `no such file or
/// directory`, not `No such file or directory (os error 2)`. Scripts, and Bitnami's
/// integration suite, match kubeseal's lower-case text.
fn error_text(err: &anyhow::Error) -> String {
    err.chain()
        .map(|cause| match cause.downcast_ref::<io::Error>() {
            Some(e) if e.raw_os_error().is_some() => os_error_text(e),
            _ => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error ").next().unwrap_or_default();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

/// Handles a command line clap refused: help and version go to stdout with exit 0;
/// usage errors go to stderr (clap starts them with `error:`) with exit 1, as every
/// other error.
pub fn clap_exit(err: &clap::Error) -> ExitCode {
    // Printing can only fail on a closed stream, and then there is no one to tell.
    let _ = err.print();
    if err.use_stderr() && scan::requested() {
        // `sealant scan` promises CI exit 2 for usage errors.
        return ExitCode::from(2);
    }
    if err.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn completion(shell: clap_complete::Shell) -> Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sealant", &mut buf);
    output::write_stdout(&buf)
}

/// The kubeseal-compatible top level.
fn kubeseal(args: KubesealArgs) -> Result<()> {
    if !args.from_file.is_empty() && !args.raw {
        bail!("--from-file requires --raw");
    }
    if args.rotate {
        eprintln!("Flag --rotate has been deprecated, please use --re-encrypt instead");
    }
    let re_encrypt = args.re_encrypt || args.rotate;
    let sealing = &args.sealing;
    sealing.refuse_merge_into_with_output_file()?;
    let mut out = Output::from_args(&sealing.output);
    // --re-encrypt with only -f rewrites that file in place, as kubeseal does.
    if re_encrypt
        && sealing.output.sealed_secret_file.is_none()
        && let Some(input) = &args.secret_file
    {
        out = Output::from_args(&args::OutputArgs {
            format: sealing.output.format,
            sealed_secret_file: Some(input.clone()),
        });
    }

    if sealing.to.recipients.is_given() {
        let mode = if args.recovery_unseal {
            Some("--recovery-unseal")
        } else if args.validate {
            Some("--validate")
        } else if re_encrypt {
            Some("--re-encrypt")
        } else {
            None
        };
        if let Some(mode) = mode {
            bail!(
                "--recipient and --recipients-file only apply when sealing; they cannot be \
                 combined with {mode}"
            );
        }
    }

    if args.recovery_unseal {
        let ring = recovery::load_keys(&args.recovery_private_key)?;
        let input = documents::read_input(args.secret_file.as_deref())?;
        let docs = documents::parse(&input, "SealedSecret")?;
        let rendered = recovery::unseal_documents(&docs, &ring, out.format).map_err(|e| {
            if args.recovery_private_key.is_empty() {
                e.context(
                    "no --recovery-private-key given (a key backup, key Secret or age identity)",
                )
            } else {
                e
            }
        })?;
        return out.write(rendered.as_bytes(), true);
    }
    if !args.recovery_private_key.is_empty() {
        eprintln!(
            "warning: ignoring --recovery-private-key because unseal command not chosen with \
             --recovery-unseal"
        );
    }
    if args.validate {
        return validate(&args);
    }
    if re_encrypt {
        return re_encrypt_documents(&args, &out);
    }

    if args.fetch_recipient {
        return fetch_recipient(&args, &out);
    }
    if args.fetch_cert {
        let pem = cert::fetch(&sealing.to.cert, &sealing.to.cluster)?;
        return out.write(&pem, false);
    }
    let key = SealingKey::load(&sealing.to)?;
    let scope = sealing.seal.scope_override();

    if args.raw && sealing.seal.merge_into.is_none() {
        return raw(&args, key.sealer(), scope, &out);
    }

    let input = documents::read_input(args.secret_file.as_deref())?;
    let docs = documents::parse(&input, "Secret")?;
    let mut sealer = Sealing {
        to: key.sealer(),
        scope,
        allow_empty_data: sealing.seal.allow_empty_data,
        name: args.name.as_deref(),
        namespaces: Namespaces::new(&sealing.to.cluster),
    };
    if let Some(path) = &sealing.seal.merge_into {
        let inputs = docs
            .iter()
            .map(|doc| (doc.label().to_string(), doc.to_secret()))
            .collect();
        return seal::merge_into_file(path, inputs, &mut sealer, sealing.output.format);
    }
    let rendered = seal::seal_documents(&docs, &mut sealer, out.format)?;
    out.write(rendered.as_bytes(), false)
}

/// `--fetch-recipient`: the controller's age recipient, checked, on one line.
fn fetch_recipient(args: &KubesealArgs, out: &Output) -> Result<()> {
    let cluster = connect_controller(&args.sealing.to)?;
    let text = cluster.fetch_age_recipient()?;
    let recipient = recipients::parse_controller_answer(&text)?;
    out.write(format!("{recipient}\n").as_bytes(), false)
}

/// The connection to the controller named by `--controller-namespace` and
/// `--controller-name`, through the API server's service proxy.
fn connect_controller(to: &args::SealToArgs) -> Result<cluster::Cluster> {
    cluster::Cluster::connect(
        &to.cluster,
        to.cert.controller.namespace(),
        to.cert.controller.name(),
    )
}

/// `--raw`: seal one value and print bare base64, no newline.
fn raw(
    args: &KubesealArgs,
    to: sealant_crds::Sealer<'_>,
    scope: Option<sealant_keys::Scope>,
    out: &Output,
) -> Result<()> {
    use sealant_keys::Scope;
    let scope = scope.unwrap_or_default();
    let name = args.name.as_deref().unwrap_or_default();
    if scope == Scope::Strict && name.is_empty() {
        bail!("must provide the --name flag with --raw and --scope strict");
    }
    let namespace = match scope {
        Scope::ClusterWide => String::new(),
        _ => match args
            .sealing
            .to
            .cluster
            .namespace
            .as_deref()
            .filter(|ns| !ns.is_empty())
        {
            Some(ns) => ns.to_owned(),
            None => Namespaces::new(&args.sealing.to.cluster).default_namespace()?,
        },
    };
    let value = match args.from_file.as_slice() {
        [] => {
            if io::stdin().is_terminal() {
                eprintln!("(tty detected: expecting a secret to encrypt in stdin)");
            }
            files::read_stdin(files::Limit::VALUE).context("cannot read the value from stdin")?
        }
        [source] => {
            let path = source.split_once('=').map_or(source.as_str(), |(_, p)| p);
            files::read(std::path::Path::new(path), files::Limit::VALUE)
                .with_context(|| format!("--from-file: cannot read {path}"))?
        }
        _ => bail!("must provide only one --from-file when encrypting a single item with --raw"),
    };
    let sealed = sealant_crds::seal_value(to, &value, scope, &namespace, name)?;
    out.write(sealed.as_bytes(), false)
}

/// `--validate`: ask the controller whether it can decrypt each document.
fn validate(args: &KubesealArgs) -> Result<()> {
    let (cluster, bodies) = controller_requests(args)?;
    for (label, body) in bodies {
        cluster.verify(body).with_context(|| label.to_string())?;
    }
    Ok(())
}

/// `--re-encrypt`: have the controller re-encrypt each document with its newest key.
fn re_encrypt_documents(args: &KubesealArgs, out: &Output) -> Result<()> {
    let (cluster, bodies) = controller_requests(args)?;
    let mut rendered = Zeroizing::new(String::new());
    for (label, body) in bodies {
        let response = cluster.rotate(body).with_context(|| label.to_string())?;
        let mut sealed: sealant_crds::SealedSecret = serde_json::from_str(&response)
            .context("the controller's answer is not a SealedSecret")
            .with_context(|| label.to_string())?;
        sealed.metadata.creation_timestamp = None;
        sealed.metadata.deletion_timestamp = None;
        sealed.metadata.generation = None;
        rendered.push_str(&seal::render_sealed(&sealed, out.format));
    }
    out.write(rendered.as_bytes(), false)
}

/// One SealedSecret of the input, as the JSON body the controller takes.
type RequestBody = (documents::DocumentLabel, Vec<u8>);

/// The input's documents, each checked to be a SealedSecret, as request bodies, and the
/// connection to the controller that will take them.
fn controller_requests(args: &KubesealArgs) -> Result<(cluster::Cluster, Vec<RequestBody>)> {
    let input = documents::read_input(args.secret_file.as_deref())?;
    let docs = documents::parse(&input, "SealedSecret")?;
    let bodies = docs
        .iter()
        .map(|doc| {
            let label = doc.label();
            let sealed = doc.to_sealed_secret().with_context(|| label.to_string())?;
            let body = serde_json::to_vec(&sealed).context("cannot encode the SealedSecret")?;
            Ok((label, body))
        })
        .collect::<Result<Vec<_>>>()?;
    let cluster = connect_controller(&args.sealing.to)?;
    Ok((cluster, bodies))
}

/// `sealant create NAME ...`.
fn create(args: &CreateArgs) -> Result<()> {
    let sealing = &args.sealing;
    let out = Output::from_args(&sealing.output);
    sealing.refuse_merge_into_with_output_file()?;
    let key = SealingKey::load(&sealing.to)?;
    let secret = create::build_secret(args)?;
    let mut sealer = Sealing {
        to: key.sealer(),
        scope: sealing.seal.scope_override(),
        allow_empty_data: sealing.seal.allow_empty_data,
        name: None,
        namespaces: Namespaces::new(&sealing.to.cluster),
    };
    if let Some(path) = &sealing.seal.merge_into {
        let label = format!("secret {}", args.name);
        return seal::merge_into_file(
            path,
            vec![(label, Ok(secret))],
            &mut sealer,
            sealing.output.format,
        );
    }
    let rendered = seal::seal_secrets(vec![secret], &mut sealer, out.format)?;
    out.write(rendered.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use std::ffi::{OsStr, OsString};

    use clap::Parser as _;

    use super::*;

    #[test]
    fn os_errors_read_as_kubeseal_prints_them() {
        let missing = io::Error::from_raw_os_error(2);
        let err = anyhow::Error::new(missing).context("cannot read certificate file /x");
        assert_eq!(
            error_text(&err),
            "cannot read certificate file /x: no such file or directory"
        );
        let other = anyhow::anyhow!("Plain Text stays");
        assert_eq!(error_text(&other), "Plain Text stays");
    }

    #[test]
    fn kubeseal_version_line_only_under_the_kubeseal_name() {
        let version = [OsString::from("--version")];
        assert_eq!(
            kubeseal_version(OsStr::new("/usr/local/bin/kubeseal"), &version).as_deref(),
            Some(format!("kubeseal version: v{}\n", env!("CARGO_PKG_VERSION")).as_str())
        );
        assert_eq!(kubeseal_version(OsStr::new("sealant"), &version), None);
        assert_eq!(
            kubeseal_version(OsStr::new("kubeseal"), &[OsString::from("--raw")]),
            None
        );
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value_as_with_kubeseal() {
        let cli = Cli::try_parse_from([
            "sealant",
            "--kubeconfig",
            "/first",
            "-n",
            "a",
            "--kubeconfig",
            "/second",
            "-n",
            "b",
        ])
        .expect("parses");
        assert_eq!(
            cli.kubeseal.sealing.to.cluster.kubeconfig.as_deref(),
            Some(std::path::Path::new("/second"))
        );
        assert_eq!(
            cli.kubeseal.sealing.to.cluster.namespace.as_deref(),
            Some("b")
        );
        // Repeatable flags still collect every value.
        let cli = Cli::try_parse_from([
            "sealant",
            "--recovery-unseal",
            "--recovery-private-key",
            "a.key",
            "--recovery-private-key",
            "b.key",
        ])
        .expect("parses");
        assert_eq!(cli.kubeseal.recovery_private_key.len(), 2);
    }
}
