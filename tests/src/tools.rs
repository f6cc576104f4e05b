//! The command-line tools the suites run: our `sealant`, Bitnami's `kubeseal`, and
//! `kubectl`, each located once per test binary.
//!
//! `sealant` is a binary of another package, so Cargo gives this crate no
//! `CARGO_BIN_EXE_sealant`. The harness asks Cargo to build it into the same target
//! directory and profile as the running test (a no-op when `cargo test --workspace`
//! already did), so a test never runs a stale binary. `SEALANT_BIN` overrides this.
//! `sealant-controller` is found the same way (`SEALANT_CONTROLLER_BIN`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, bail};

/// Our `sealant` binary: `$SEALANT_BIN`, or built by Cargo next to this test binary.
pub fn sealant() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        locate("SEALANT_BIN", "sealant-cli", "sealant").map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// Our `sealant-controller` binary: `$SEALANT_CONTROLLER_BIN`, or built by Cargo next
/// to this test binary.
pub fn sealant_controller() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        locate(
            "SEALANT_CONTROLLER_BIN",
            "sealant-controller",
            "sealant-controller",
        )
        .map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// `$<env_var>` if set, else `bin` of `package`, built by Cargo into this test
/// binary's target directory and profile.
fn locate(env_var: &str, package: &str, bin: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{env_var}={} is not a file", path.display());
        }
        return Ok(path);
    }
    // target/<profile>/deps/<test binary>, or target/<profile>/<binary> (local-cluster)
    let exe = std::env::current_exe().context("current_exe")?;
    let dir = exe.parent().context("the binary has no directory")?;
    let profile_dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()
            .context("test binary is not in target/<profile>/deps")?
    } else {
        dir
    };
    let target_dir = profile_dir
        .parent()
        .context("test binary is not in target/<profile>/deps")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir)
        .stdout(Stdio::null());
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    // A first build takes minutes: say so rather than go silent.
    eprintln!("# building {bin} (cargo build -p {package}): minutes on a first run");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run cargo to build {bin}"))?;
    if !status.success() {
        bail!("cargo build -p {package} --bin {bin} failed ({status})");
    }
    let path = profile_dir.join(bin);
    if !path.is_file() {
        bail!("cargo built {bin}, but {} does not exist", path.display());
    }
    Ok(path)
}

/// `kubectl`: `$TEST_ASSET_KUBECTL`, or the one `tests/peers/build.sh` builds from
/// the same Kubernetes release as the API server (so its version always matches).
pub fn kubectl() -> Result<PathBuf> {
    Ok(crate::peers::peers()?.kubectl.clone())
}

/// Runs `cmd` with `stdin` as its input and fails, showing its output, unless it
/// exits 0.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Result<Output> {
    let out = run_unchecked(cmd, stdin)?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}):\nstdout: {}\nstderr: {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs `cmd` with `stdin` as its input, whatever its exit status.
pub fn run_unchecked(cmd: &mut Command, stdin: &[u8]) -> Result<Output> {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let mut input = child.stdin.take().context("stdin was not piped")?;
    let data = stdin.to_vec();
    // A separate writer, so a child that prints a lot before reading cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output()?;
    let _ = writer.join();
    Ok(out)
}
