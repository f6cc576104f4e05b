//! Re-encrypting a repository of SealedSecret files (issue 16): `sealant reencrypt`
//! over the whole directory, against what a Bitnami user runs, a loop of
//! `kubeseal --re-encrypt` over the same files (each one a request to the controller's
//! `/v1/rotate` through the API server's service proxy), and the same loop with
//! `sealant --re-encrypt`.
//!
//! ```text
//! cargo run --release -p sealant-e2e --bin bench-reencrypt -- [--n 1000]
//! ```
//!
//! It starts a local control plane and Bitnami's controller (its `/v1/rotate` rate
//! limit raised to 1000 per second: at its default of 2 the loop would be refused with
//! 429 after the first few files), seals N Secrets of 2 values with `sealant --cert`,
//! then times each way on its own copy of the files, and checks that every file it
//! rewrote still opens to the same values with the key backup. The sealant and
//! kubeseal binaries are `SEALANT_BIN` (default: built next to this one) and the
//! `kubeseal` peer. Prints a markdown table.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use sealant_e2e::{bitnami, cluster, fixtures, peers::peers, tools};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-reencrypt: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut n = 1000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--n" => n = args.next().context("--n needs a value")?.parse()?,
            other => bail!("unknown argument {other:?}; usage: bench-reencrypt [--n N]"),
        }
    }
    let sealant = tools::sealant()?;
    let kubeseal = peers()?.kubeseal.clone();
    eprintln!("bench-reencrypt: starting a control plane and Bitnami's controller");
    let cp = cluster()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let _controller = runtime.block_on(bitnami::start_with_args(
        cp,
        &["--rate-limit=1000", "--rate-limit-burst=1000"],
    ))?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let kubeconfig = cp.admin_kubeconfig.clone();

    // The certificate, the key backup, and the files.
    let cert = dir.join("cert.pem");
    let pem = tools::run(
        Command::new(&kubeseal)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--fetch-cert"),
        b"",
    )?
    .stdout;
    std::fs::write(&cert, pem)?;
    let keys = dir.join("keys.yaml");
    let backup = tools::run(
        fixtures::kubectl(cp).args([
            "-n",
            "kube-system",
            "get",
            "secret",
            "-l",
            "sealedsecrets.bitnami.com/sealed-secrets-key",
            "-o",
            "yaml",
        ]),
        b"",
    )?
    .stdout;
    std::fs::write(&keys, backup)?;
    eprintln!("bench-reencrypt: sealing {n} files");
    let original = dir.join("original");
    std::fs::create_dir(&original)?;
    for i in 0..n {
        let values = [
            ("username", format!("user-{i}")),
            ("password", format!("pw-{i:06}")),
        ];
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let secret = fixtures::secret_yaml(
            "apps",
            &format!("s{i}"),
            &values,
            sealant_keys::Scope::Strict,
        );
        let sealed = tools::run(
            Command::new(&sealant)
                .arg("--cert")
                .arg(&cert)
                .args(["-o", "yaml"]),
            secret.as_bytes(),
        )?
        .stdout;
        std::fs::write(original.join(format!("s{i:04}.yaml")), sealed)?;
    }

    let copy = |name: &str| -> Result<PathBuf> {
        let to = dir.join(name);
        std::fs::create_dir(&to)?;
        for entry in std::fs::read_dir(&original)? {
            let entry = entry?;
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
        Ok(to)
    };
    // What each original opens to, read once: every way's output must open to it.
    let opened: Vec<Vec<u8>> = sorted(&original)?
        .iter()
        .map(|file| open(&sealant, &keys, file))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();

    // sealant reencrypt: offline, the whole directory in one process. `--force`
    // re-seals values already sealed to the target certificate, as `/v1/rotate` does
    // (after a key renewal every value needs it anyway).
    let repo = copy("sealant-reencrypt")?;
    let started = Instant::now();
    tools::run(
        Command::new(&sealant)
            .arg("reencrypt")
            .arg(&repo)
            .arg("--recovery-private-key")
            .arg(&keys)
            .arg("--cert")
            .arg(&cert)
            .arg("--force"),
        b"",
    )?;
    rows.push((
        "`sealant reencrypt DIR --force` (offline, one process)",
        started.elapsed(),
    ));
    check(&sealant, &keys, &original, &opened, &repo)?;

    // The loops: one process and one /v1/rotate request per file.
    for (label, program, name) in [
        (
            "`kubeseal --re-encrypt` per file (through the controller)",
            &kubeseal,
            "kubeseal-loop",
        ),
        (
            "`sealant --re-encrypt` per file (through the controller)",
            &sealant,
            "sealant-loop",
        ),
    ] {
        let repo = copy(name)?;
        eprintln!("bench-reencrypt: {label}");
        let started = Instant::now();
        for entry in sorted(&repo)? {
            let input = std::fs::read(&entry)?;
            let out = tools::run(
                Command::new(program)
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("--re-encrypt")
                    .args(["-o", "yaml"])
                    .stderr(Stdio::piped()),
                &input,
            )
            .with_context(|| format!("{label}: {}", entry.display()))?;
            std::fs::write(&entry, out.stdout)?;
        }
        rows.push((label, started.elapsed()));
        check(&sealant, &keys, &original, &opened, &repo)?;
    }

    let base = rows[0].1.as_secs_f64();
    println!(
        "{n} SealedSecret files of 2 values each, RSA-4096, Bitnami's controller v0.36.6 for the loops.\n"
    );
    println!("| how | wall time (s) | per file (ms) | x `sealant reencrypt` |\n|---|---|---|---|");
    for (label, took) in rows {
        let s = took.as_secs_f64();
        println!(
            "| {label} | {s:.2} | {:.1} | {:.1}x |",
            s * 1000.0 / n as f64,
            s / base
        );
    }
    Ok(())
}

/// The `.yaml` files of `dir`, sorted.
fn sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    Ok(files)
}

/// Every file of `repo` was rewritten (its ciphertext differs from `original`'s) and
/// opens with the key backup to what the original opened to (`opened`, in order).
fn check(
    sealant: &Path,
    keys: &Path,
    original: &Path,
    opened: &[Vec<u8>],
    repo: &Path,
) -> Result<()> {
    for ((before, after), want) in sorted(original)?.iter().zip(sorted(repo)?).zip(opened) {
        if std::fs::read(before)? == std::fs::read(&after)? {
            bail!("{} was not re-encrypted", after.display());
        }
        if open(sealant, keys, &after)? != *want {
            bail!(
                "{} opens to other values after re-encryption",
                after.display()
            );
        }
    }
    Ok(())
}

/// `sealant --recovery-unseal` of `file` with the key backup `keys`: the Secret (YAML).
fn open(sealant: &Path, keys: &Path, file: &Path) -> Result<Vec<u8>> {
    Ok(tools::run(
        Command::new(sealant)
            .arg("--recovery-unseal")
            .arg("--recovery-private-key")
            .arg(keys)
            .args(["-o", "yaml"]),
        &std::fs::read(file)?,
    )?
    .stdout)
}
