//! Where the real peers are: the `TEST_ASSET_*` variables, or `tests/peers/build.sh`.
//!
//! A plain `cargo test -p sealant-e2e` must work from a clean clone, so when any variable
//! is unset the harness runs `build.sh` itself (idempotent, 0.01 s when warm;
//! many minutes cold) and reads the `NAME=path` lines it prints. A peer that cannot be had
//! is an error that names the variable to set: the tests fail, they never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// The real programs the suites run against.
#[derive(Debug, Clone)]
pub struct Peers {
    /// `etcd`.
    pub etcd: PathBuf,
    /// `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `kube-controller-manager`.
    pub kube_controller_manager: PathBuf,
    /// Bitnami's `kubeseal`.
    pub kubeseal: PathBuf,
    /// Bitnami's controller.
    pub sealed_secrets_controller: PathBuf,
    /// The reference `age` (filippo.io/age), which must open sealant's bundles and values.
    pub age: PathBuf,
    /// The reference `age-keygen`, whose identity files sealant must read.
    pub age_keygen: PathBuf,
    /// Bitnami's own integration suite (its Ginkgo specs, compiled), the judge of the
    /// drop-in promise.
    pub bitnami_integration: PathBuf,
    /// Bitnami's CRD as its chart installs it (a YAML file, not a program).
    pub bitnami_crd: PathBuf,
    /// `kubectl`, from the same Kubernetes release as the API server.
    pub kubectl: PathBuf,
    /// kstatus (sigs.k8s.io/cli-utils), the status library Flux judges resources with:
    /// `tests/peers/kstatus`, an object's JSON on stdin, `{"status","message"}` out.
    pub kstatus: PathBuf,
    /// Argo CD's health check for SealedSecret (its `health.lua`, from the argo-cd
    /// module) run in gopher-lua: `tests/peers/argocd-health`, same input and output.
    pub argocd_health: PathBuf,
    /// `helm` (helm.sh/helm/v4), which renders and installs `charts/sealant`.
    pub helm: PathBuf,
    /// Bitnami's Helm chart (`helm/sealed-secrets` of its module), a directory: its
    /// `values.yaml` is what a Bitnami user brings to our chart.
    pub bitnami_chart: PathBuf,
    /// The kubelet, kube-proxy and kube-scheduler of the API server's release, for the
    /// test node ([`crate::node`]).
    pub kubelet: PathBuf,
    /// See [`Self::kubelet`].
    pub kube_proxy: PathBuf,
    /// See [`Self::kubelet`].
    pub kube_scheduler: PathBuf,
    /// The node's sandbox image, built from the Kubernetes module's `pause.c` (a docker
    /// archive).
    pub pause_image: PathBuf,
    /// Bitnami's controller as an image, for its chart on the node (a docker archive).
    pub bitnami_image: PathBuf,
}

/// The peers, resolved once per test binary.
pub fn peers() -> Result<&'static Peers> {
    static PEERS: std::sync::OnceLock<Result<Peers, String>> = std::sync::OnceLock::new();
    PEERS
        .get_or_init(|| Peers::resolve().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

const VARS: [&str; 19] = [
    "TEST_ASSET_ETCD",
    "TEST_ASSET_KUBE_APISERVER",
    "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
    "TEST_ASSET_KUBESEAL",
    "TEST_ASSET_SEALED_SECRETS_CONTROLLER",
    "TEST_ASSET_AGE",
    "TEST_ASSET_AGE_KEYGEN",
    "TEST_ASSET_BITNAMI_INTEGRATION",
    "TEST_ASSET_BITNAMI_CRD",
    "TEST_ASSET_KUBECTL",
    "TEST_ASSET_KSTATUS",
    "TEST_ASSET_ARGOCD_HEALTH",
    "TEST_ASSET_HELM",
    "TEST_ASSET_BITNAMI_CHART",
    "TEST_ASSET_KUBELET",
    "TEST_ASSET_KUBE_PROXY",
    "TEST_ASSET_KUBE_SCHEDULER",
    "TEST_ASSET_PAUSE_IMAGE",
    "TEST_ASSET_BITNAMI_IMAGE",
];

impl Peers {
    /// Finds every peer, building the missing ones with `tests/peers/build.sh`.
    pub fn resolve() -> Result<Self> {
        let mut found: HashMap<String, PathBuf> = VARS
            .iter()
            .filter_map(|v| std::env::var_os(v).map(|p| (v.to_string(), PathBuf::from(p))))
            .filter(|(_, p)| !p.as_os_str().is_empty())
            .collect();
        if VARS.iter().any(|v| !found.contains_key(*v)) {
            // build.sh honours the variables that are set and prints them as given.
            found = run_build_script(&build_script())?;
        }
        let take = |var: &str| -> Result<PathBuf> {
            let path = found
                .get(var)
                .cloned()
                .with_context(|| format!("tests/peers/build.sh printed no {var}"))?;
            // Every peer is a file, except Bitnami's chart (a directory).
            let usable = if var == "TEST_ASSET_BITNAMI_CHART" {
                path.is_dir()
            } else {
                path.is_file()
            };
            if !usable {
                bail!(
                    "{var}={} does not exist; unset it to let tests/peers/build.sh build the peer",
                    path.display()
                );
            }
            Ok(path)
        };
        Ok(Self {
            etcd: take(VARS[0])?,
            kube_apiserver: take(VARS[1])?,
            kube_controller_manager: take(VARS[2])?,
            kubeseal: take(VARS[3])?,
            sealed_secrets_controller: take(VARS[4])?,
            age: take(VARS[5])?,
            age_keygen: take(VARS[6])?,
            bitnami_integration: take(VARS[7])?,
            bitnami_crd: take(VARS[8])?,
            kubectl: take(VARS[9])?,
            kstatus: take(VARS[10])?,
            argocd_health: take(VARS[11])?,
            helm: take(VARS[12])?,
            bitnami_chart: take(VARS[13])?,
            kubelet: take(VARS[14])?,
            kube_proxy: take(VARS[15])?,
            kube_scheduler: take(VARS[16])?,
            pause_image: take(VARS[17])?,
            bitnami_image: take(VARS[18])?,
        })
    }
}

/// `tests/peers/build.sh` in this source tree.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/build.sh")
}

fn run_build_script(script: &Path) -> Result<HashMap<String, PathBuf>> {
    let out = Command::new("bash")
        .arg(script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}); it needs Go and the Go module proxy the first time, or set {} to \
             existing binaries (see tests/peers/README.md)",
            script.display(),
            out.status,
            VARS.join(", ")
        );
    }
    let stdout = String::from_utf8(out.stdout).context("build.sh printed non-UTF-8 paths")?;
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .with_context(|| format!("unexpected build.sh output line {line:?}"))?;
            Ok((name.to_string(), PathBuf::from(unquote(value)?)))
        })
        .collect()
}

/// Undoes bash's `printf %q` for the paths build.sh prints: backslash escapes only.
fn unquote(value: &str) -> Result<String> {
    if value.starts_with("$'") {
        bail!("build.sh printed a path with control characters: {value}");
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '\'' if value == "''" => {}
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn unquote_undoes_printf_q_backslashes() {
        assert_eq!(unquote("/a/b").unwrap(), "/a/b");
        assert_eq!(unquote(r"/a\ b/c\(1\)").unwrap(), "/a b/c(1)");
        assert!(unquote("$'\\n'").is_err());
    }
}
