//! `sealant scan`: keep plaintext Secrets out of Git, and lint SealedSecrets offline.
//!
//! ```text
//!   PATH... / -      ─▶ walk (gitignore, .sealant.yaml excludes) ─┐
//!   --staged         ─▶ git: index blobs of added/changed files   ─┼─▶ detect (N threads) ─▶ allow / baseline ─▶ report
//!   --since REV      ─▶ git: every blob added in REV..HEAD        ─┘      │
//!                                                                        └─ lint (SealedSecrets; --cert)
//! ```
//!
//! Exit codes, as CI and pre-commit expect: 0 nothing found, 1 findings, 2 a usage or
//! I/O error. A file that cannot be read as a manifest (binary, not UTF-8, not YAML,
//! too big) is skipped with a warning on stderr that names it; it never stops the
//! scan and never panics.
//!
//! No output ever holds a value: see [`finding`].

mod detect;
mod finding;
mod git;
mod helm;
mod kustomize;
mod lint;
mod report;
mod walk;
mod yaml;

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail};

use crate::args::CertArgs;
use detect::{Context, MAX_FILE_BYTES, Source};

/// How many bytes of Git blobs are held (and scanned) at once.
const BATCH_BYTES: usize = 64 << 20;
pub use crate::args::scan::ScanArgs;
use finding::Finding;

/// Findings were reported: exit 1, with nothing more to print.
#[derive(Debug)]
pub struct FindingsReported;

impl std::fmt::Display for FindingsReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("findings reported")
    }
}

impl std::error::Error for FindingsReported {}

/// Marks an error of `sealant scan` (usage or I/O): exit 2.
#[derive(Debug)]
struct ScanFailed;

impl std::fmt::Display for ScanFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sealant scan")
    }
}

/// The exit code for an error [`run`] returned: 1 (silently) for findings, 2 (after
/// printing the error) for anything else; `None` for errors of other commands.
pub fn exit_code(err: &anyhow::Error) -> Option<ExitCode> {
    if err.downcast_ref::<FindingsReported>().is_some() {
        return Some(ExitCode::from(1));
    }
    if err.downcast_ref::<ScanFailed>().is_some() {
        eprintln!("error: {err:#}");
        return Some(ExitCode::from(2));
    }
    None
}

/// True when the command line asks for `sealant scan`, so that clap's usage errors
/// exit 2 as well.
pub fn requested() -> bool {
    std::env::args_os().nth(1).is_some_and(|a| a == "scan")
}

/// Runs `sealant scan`. Findings are an error ([`FindingsReported`]), so that the
/// process exits 1.
pub fn run(args: &ScanArgs) -> Result<()> {
    let findings = scan(args).context(ScanFailed)?;
    if findings == 0 {
        Ok(())
    } else {
        Err(FindingsReported.into())
    }
}

/// Everything read, before detection: contents and where they came from.
struct Input {
    path: String,
    repo_path: String,
    commit: Option<String>,
    contents: Contents,
}

enum Contents {
    File(PathBuf),
    Bytes(Vec<u8>),
    TooBig,
}

fn scan(args: &ScanArgs) -> Result<usize> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let git_root = git::toplevel(&cwd);
    let root = git_root.clone().unwrap_or_else(|| cwd.clone());
    let root = root.canonicalize().unwrap_or(root);
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let excludes = walk::Excludes::load(&root)?;
    let paths = walk::Paths::new(root.clone(), cwd);

    let cert_rsa_bytes = certificate_key_bytes(args)?;
    let baseline = match &args.baseline {
        Some(path) => report::load_baseline(path)?,
        None => HashSet::new(),
    };

    let (mut findings, mut skipped, scanned) = if args.staged || args.since.is_some() {
        let Some(git_root) = git_root.as_deref() else {
            bail!("--staged and --since need a Git repository");
        };
        scan_git(args, git_root, &excludes, cert_rsa_bytes)?
    } else {
        let in_git = git_root.is_some();
        scan_disk(args, &paths, &excludes, cert_rsa_bytes, in_git)?
    };
    skipped.sort();
    for (path, why) in &skipped {
        eprintln!("warning: {path}: skipped: {why}");
    }
    findings.retain(|f| !baseline.contains(&f.fingerprint()));
    findings.sort();
    findings.dedup();

    let out = report::render(&findings, args.format);
    crate::output::write_stdout(out.as_bytes())?;
    let files: HashSet<&str> = findings.iter().map(|f| f.path.as_str()).collect();
    eprintln!(
        "sealant scan: {} finding{} in {} file{} ({} scanned, {} skipped)",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        scanned,
        skipped.len()
    );
    Ok(findings.len())
}

/// Findings, skipped inputs (with the reason) and how many inputs were scanned.
type Outcome = (Vec<Finding>, Skipped, usize);

/// `--staged` and `--since`: Git blobs, read one at a time and scanned in batches of
/// at most [`BATCH_BYTES`], so that a long history never sits in memory at once.
fn scan_git(
    args: &ScanArgs,
    root: &Path,
    excludes: &walk::Excludes,
    cert_rsa_bytes: Option<usize>,
) -> Result<Outcome> {
    let (blobs, repo_has) = git_blobs(args, root, excludes)?;
    let ctx = Context {
        cert_rsa_bytes,
        repo_has,
    };
    let mut findings = Vec::new();
    let mut skipped = Vec::new();
    let mut scanned = 0;
    let ids: Vec<&str> = blobs.iter().map(|b| b.id.as_str()).collect();
    let mut batch: Vec<Input> = Vec::new();
    let mut batch_bytes = 0;
    let mut flush = |batch: &mut Vec<Input>| -> Result<()> {
        let (mut found, mut skips) = detect_all(batch, &ctx)?;
        scanned += batch.len() - skips.len();
        findings.append(&mut found);
        skipped.append(&mut skips);
        batch.clear();
        Ok(())
    };
    git::cat_blobs(root, &ids, MAX_FILE_BYTES, |index, bytes| {
        let blob = &blobs[index];
        batch_bytes += bytes.as_ref().map_or(0, Vec::len);
        batch.push(Input {
            path: blob.path.clone(),
            repo_path: blob.path.clone(),
            commit: blob.commit.clone(),
            contents: bytes.map_or(Contents::TooBig, Contents::Bytes),
        });
        if batch_bytes >= BATCH_BYTES {
            batch_bytes = 0;
            flush(&mut batch)?;
        }
        Ok(())
    })?;
    flush(&mut batch)?;
    Ok((findings, skipped, scanned))
}

/// PATH... and `-`: files from the work tree (read by the workers) and stdin.
fn scan_disk(
    args: &ScanArgs,
    paths: &walk::Paths,
    excludes: &walk::Excludes,
    cert_rsa_bytes: Option<usize>,
    in_git: bool,
) -> Result<Outcome> {
    let inputs = disk_inputs(&args.paths, paths, excludes)?;
    let root = paths.root.clone();
    let has = move |rel: &str| root.join(rel).is_file() && !(in_git && git::is_ignored(&root, rel));
    let ctx = Context {
        cert_rsa_bytes,
        repo_has: Box::new(has),
    };
    let (findings, skipped) = detect_all(&inputs, &ctx)?;
    let scanned = inputs.len() - skipped.len();
    Ok((findings, skipped, scanned))
}

/// The RSA ciphertext length of `--cert` (or the controller's certificate).
fn certificate_key_bytes(args: &ScanArgs) -> Result<Option<usize>> {
    if args.cert.is_none() && !args.fetch_cert {
        return Ok(None);
    }
    let cert_args = CertArgs {
        cert: args.cert.clone(),
        controller: args.controller.clone(),
    };
    let pem = crate::cert::fetch(&cert_args, &args.cluster)?;
    let what = args.cert.as_deref().unwrap_or("the controller");
    let cert = sealant_keys::Certificate::from_pem(&pem)
        .with_context(|| format!("cannot use the certificate from {what}"))?;
    Ok(Some(cert.public_key().bits().div_ceil(8)))
}

fn disk_inputs(
    targets: &[PathBuf],
    paths: &walk::Paths,
    excludes: &walk::Excludes,
) -> Result<Vec<Input>> {
    let default = [PathBuf::from(".")];
    let targets = if targets.is_empty() {
        &default[..]
    } else {
        targets
    };
    let mut inputs = Vec::new();
    let mut stdin_read = false;
    let mut on_disk = Vec::new();
    for target in targets {
        if target.as_os_str() != "-" {
            on_disk.push(target.clone());
            continue;
        }
        if stdin_read {
            bail!("`-` (stdin) can be given only once");
        }
        stdin_read = true;
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        let contents = if bytes.len() as u64 > MAX_FILE_BYTES {
            Contents::TooBig
        } else {
            Contents::Bytes(bytes)
        };
        inputs.push(Input {
            path: "<stdin>".to_owned(),
            repo_path: "<stdin>".to_owned(),
            commit: None,
            contents,
        });
    }
    for found in walk::files(&on_disk, paths, excludes)? {
        inputs.push(Input {
            path: found.path.to_string_lossy().into_owned(),
            repo_path: found.repo_path,
            commit: None,
            contents: Contents::File(found.path),
        });
    }
    Ok(inputs)
}

/// Whether a repository-relative path is a file in the repository.
type RepoHas = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The findings of one input, or why it was skipped.
type Detected = Result<Vec<Finding>, String>;

fn git_blobs(
    args: &ScanArgs,
    root: &Path,
    excludes: &walk::Excludes,
) -> Result<(Vec<git::Blob>, RepoHas)> {
    let (blobs, mut known) = match &args.since {
        Some(rev) => (git::since(root, rev)?, git::head_paths(root)?),
        None => (git::staged(root)?, git::index_paths(root)?),
    };
    known.extend(blobs.iter().map(|b| b.path.clone()));
    let blobs = blobs
        .into_iter()
        .filter(|b| {
            walk::is_manifest_name(Path::new(&b.path)) && !excludes.excludes(&b.path, false)
        })
        .collect();
    Ok((blobs, Box::new(move |rel: &str| known.contains(rel))))
}

/// What detection over all inputs gives: findings, skipped inputs with the reason,
/// and I/O errors.
type Results = (Vec<Finding>, Skipped, Vec<anyhow::Error>);

/// Inputs that were not scanned, with the reason.
type Skipped = Vec<(String, String)>;

/// Runs detection over every input on all cores; returns the findings and the
/// skipped inputs with the reason, or the first I/O error.
fn detect_all(inputs: &[Input], ctx: &Context) -> Result<(Vec<Finding>, Skipped)> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Results> = Mutex::new((Vec::new(), Vec::new(), Vec::new()));
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(inputs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut findings = Vec::new();
                let mut skipped = Vec::new();
                let mut errors = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    match detect_one(input, ctx) {
                        Ok(Ok(mut found)) => findings.append(&mut found),
                        Ok(Err(why)) => skipped.push((input.path.clone(), why)),
                        Err(err) => errors.push(err),
                    }
                }
                // A poisoned lock means another worker panicked; keep what it left.
                let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
                all.0.append(&mut findings);
                all.1.append(&mut skipped);
                all.2.append(&mut errors);
            });
        }
    });
    let (findings, skipped, errors) = results.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(err) = errors.into_iter().next() {
        return Err(err);
    }
    Ok((findings, skipped))
}

/// Scans one input: its findings, or why it was skipped; an error when it cannot be
/// read at all.
fn detect_one(input: &Input, ctx: &Context) -> Result<Detected> {
    let bytes = match &input.contents {
        Contents::TooBig => return Ok(Err(too_big())),
        Contents::Bytes(bytes) => std::borrow::Cow::Borrowed(bytes.as_slice()),
        Contents::File(path) => match read_capped(path)? {
            Some(bytes) => std::borrow::Cow::Owned(bytes),
            None => return Ok(Err(too_big())),
        },
    };
    let source = Source {
        path: &input.path,
        repo_path: &input.repo_path,
        commit: input.commit.as_deref(),
        bytes: &bytes,
    };
    Ok(detect::scan(&source, ctx).map_err(|skip| skip.0))
}

fn too_big() -> String {
    format!("larger than {} MiB", MAX_FILE_BYTES >> 20)
}

/// The file's bytes, or `None` when it is larger than [`MAX_FILE_BYTES`].
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bytes.len() as u64 <= MAX_FILE_BYTES).then_some(bytes))
}
