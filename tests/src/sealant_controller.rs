//! Our `sealant-controller`, run out of cluster as the Bitnami controller is (see
//! [`crate::bitnami`]): in the test host's network namespace, listening on the
//! namespace-side address, with the rights of `deploy/rbac.yaml` only.
//!
//! Guarantees:
//! - the controller acts with a TokenRequest token of the ServiceAccount
//!   `kube-system/sealed-secrets-controller`, bound by `deploy/rbac.yaml`, never as
//!   admin, so a grant missing from `deploy/` fails a test;
//! - each controller watches one namespace only (`--all-namespaces=false`) and keeps
//!   its keys there (`POD_NAMESPACE`), so tests that each start one in their own
//!   [`crate::TestNamespace`] cannot see each other's objects or keys;
//! - its combined output is captured in `<control plane dir>/logs/`, and
//!   [`SealantController::log`] reads it back (to prove no plaintext is ever logged).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};

use crate::bitnami::apply_manifests;
use crate::control_plane::{ControlPlane, http_get, wait_until};
use crate::fixtures::{kubectl_apply, seal};
use crate::process::Component;

/// The controller's ServiceAccount (in `kube-system`), as `deploy/` names it.
pub const SERVICE_ACCOUNT: &str = "sealed-secrets-controller";
/// `deploy/rbac.yaml`: the rights the controller runs with.
pub const RBAC: &str = include_str!("../../deploy/rbac.yaml");

/// A running `sealant-controller`.
pub struct SealantController {
    /// Its HTTP API on the test host.
    pub addr: SocketAddr,
    /// Its metrics endpoint on the test host.
    pub metrics_addr: SocketAddr,
    /// The namespace it watches and keeps its keys in.
    pub namespace: String,
    component: Component,
}

impl SealantController {
    /// Starts a controller that watches `namespace` and keeps its keys there, with
    /// `extra_args` after the harness's own flags, and waits until it serves a
    /// certificate (its keys are loaded or made).
    pub async fn start(
        cluster: &ControlPlane,
        namespace: &str,
        extra_args: &[&str],
    ) -> Result<Self> {
        Self::start_on_port(cluster, namespace, next_port(), extra_args).await
    }

    /// As [`Self::start`], acting as whoever `kubeconfig` names (for example a
    /// ServiceAccount with only the rights a test granted) instead of the `deploy/`
    /// ServiceAccount.
    pub async fn start_as(
        cluster: &ControlPlane,
        namespace: &str,
        kubeconfig: &Path,
        extra_args: &[&str],
    ) -> Result<Self> {
        Self::spawn(
            cluster,
            namespace,
            next_port(),
            kubeconfig,
            extra_args,
            true,
        )
        .await
    }

    /// As [`Self::start`], but on the machine's own network (loopback addresses)
    /// instead of the test host's namespace, so that cutting the test host's link
    /// partitions the controllers there and not this one.
    pub async fn start_outside_test_host(
        cluster: &ControlPlane,
        namespace: &str,
        extra_args: &[&str],
    ) -> Result<Self> {
        let kubeconfig = service_account_kubeconfig(cluster).await?;
        Self::spawn(
            cluster,
            namespace,
            next_port(),
            &kubeconfig,
            extra_args,
            false,
        )
        .await
    }

    /// As [`Self::start`], with the HTTP API on `port` and metrics on `port + 1`:
    /// 8080 is where the service proxy of [`crate::bitnami`]'s Service and Endpoints
    /// routes to, so the CLI reaches it with its default flags.
    pub async fn start_on_port(
        cluster: &ControlPlane,
        namespace: &str,
        port: u16,
        extra_args: &[&str],
    ) -> Result<Self> {
        let kubeconfig = service_account_kubeconfig(cluster).await?;
        Self::spawn(cluster, namespace, port, &kubeconfig, extra_args, true).await
    }

    async fn spawn(
        cluster: &ControlPlane,
        namespace: &str,
        port: u16,
        kubeconfig: &Path,
        extra_args: &[&str],
        in_test_host: bool,
    ) -> Result<Self> {
        let ip = if in_test_host {
            cluster.host.ns_ip
        } else {
            std::net::Ipv4Addr::LOCALHOST
        };
        let addr = SocketAddr::from((ip, port));
        let metrics_addr = SocketAddr::from((ip, port + 1));
        let bin = crate::tools::sealant_controller()?;
        let mut cmd = if in_test_host {
            cluster.host.command(&bin.to_string_lossy())
        } else {
            std::process::Command::new(&bin)
        };
        // One namespace unless the caller says otherwise (the sync benchmark watches
        // all of them, as Bitnami does by default).
        if !extra_args.iter().any(|a| a.starts_with("--all-namespaces")) {
            cmd.arg("--all-namespaces=false");
        }
        cmd.arg(format!("--listen-addr={addr}"))
            .arg(format!("--listen-metrics-addr={metrics_addr}"))
            // 2048-bit keys: a 4096-bit one takes seconds in a debug build.
            .arg("--key-size=2048")
            .args(extra_args)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", namespace)
            .env("POD_NAME", format!("sealant-controller-{port}"))
            .env_remove("SEALED_SECRETS_LOG_FORMAT");
        let component = cluster.reaper.spawn(
            "sealant-controller",
            cmd,
            &cluster
                .dir
                .join(format!("logs/sealant-controller-{namespace}-{port}.log")),
        )?;
        wait_until(&component, "sealant-controller's /v1/cert.pem", || {
            Ok(http_get(addr, "/v1/cert.pem")
                .is_ok_and(|(code, body)| code == 200 && body.contains("BEGIN CERTIFICATE")))
        })?;
        Ok(Self {
            addr,
            metrics_addr,
            namespace: namespace.to_owned(),
            component,
        })
    }

    /// The certificate it currently seals with, fetched directly.
    pub fn cert_pem(&self) -> Result<String> {
        let (code, body) = http_get(self.addr, "/v1/cert.pem")?;
        if code != 200 {
            bail!("GET /v1/cert.pem answered {code}: {body}");
        }
        Ok(body)
    }

    /// The value of the unlabelled metric `name` on its metrics endpoint.
    pub fn metric(&self, name: &str) -> Result<f64> {
        let (code, body) = http_get(self.metrics_addr, "/metrics")?;
        if code != 200 {
            bail!("GET /metrics answered {code}: {body}");
        }
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("no metric {name} in:\n{body}"))?
            .trim()
            .parse()
            .with_context(|| format!("metric {name} is not a number"))
    }

    /// Waits (as [`eventually`]) until it has proven at least `n` SealedSecrets in sync
    /// without decrypting them (`sealant_controller_in_sync_skips_total`).
    pub async fn wait_for_in_sync_skips(&self, n: usize) {
        self.wait_for_metric("sealant_controller_in_sync_skips_total", n as f64)
            .await;
    }

    /// Waits (as [`eventually`]) until the unlabelled metric `name` is at least `n`.
    pub async fn wait_for_metric(&self, name: &str, n: f64) {
        eventually(&format!("{name} >= {n}"), self, || async {
            (self.metric(name).ok()? >= n).then_some(())
        })
        .await;
    }

    /// The anchor of a negative check ("X did not happen"): applies a new SealedSecret
    /// `name` in its namespace, sealed to its certificate, and waits until it reports
    /// the object `Synced=True` in `sealed_secrets_controller_condition_info` (its
    /// Secret written, then its status), then checks that it is still running.
    ///
    /// A controller that crashed, stalled or never watched anything fails here, so an
    /// absence checked afterwards is the controller's doing. Work already queued when
    /// the object was applied (a watch event for an earlier change, say) has had a
    /// pass started by then; whether that pass is also finished is for the caller's
    /// counters (`sealant_controller_decryptions_total`, which counts before any RSA
    /// work) to tell.
    pub async fn wait_for_later_object(&self, cluster: &ControlPlane, name: &str) {
        let cert = self.cert_pem().expect("cert.pem");
        kubectl_apply(
            cluster,
            &seal(&cert, &self.namespace, name, &[("later", "unsealed")]),
        );
        let synced = format!(
            r#"sealed_secrets_controller_condition_info{{namespace="{}",name="{name}",condition="Synced"}}"#,
            self.namespace
        );
        self.wait_for_metric(&synced, 1.0).await;
        self.check_running()
            .expect("sealant-controller is still running");
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> Result<String> {
        std::fs::read_to_string(&self.component.log)
            .with_context(|| format!("read {}", self.component.log.display()))
    }

    /// Fails, with the end of its log, if it has exited.
    pub fn check_running(&self) -> Result<()> {
        self.component.check_running()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.component.pid()
    }

    /// The path of its log file.
    pub fn log_path(&self) -> PathBuf {
        self.component.log.clone()
    }

    /// Sends it SIGUSR1 (renew the key now).
    pub fn renew_key(&self) -> Result<()> {
        self.component.signal("USR1")
    }

    /// Freezes (`STOP`) or resumes (`CONT`) it, for fault injection.
    pub fn signal(&self, name: &str) -> Result<()> {
        self.component.signal(name)
    }

    /// Asks it to stop (SIGTERM), as Kubernetes does before deleting a Pod.
    pub fn terminate(&self) -> Result<()> {
        self.component.signal("TERM")
    }

    /// Kills it (SIGKILL), as a crash or an evicted Pod would end it.
    pub fn kill(&self) {
        self.component.kill();
    }
}

impl Drop for SealantController {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- last 40 lines of {} -----\n{}",
                self.component.log.display(),
                crate::process::tail(&self.component.log, 40)
            );
        }
        self.component.kill();
    }
}

/// The holder of the `sealant-controller` Lease in `leases`' namespace, if any.
pub async fn lease_holder(
    leases: &Api<k8s_openapi::api::coordination::v1::Lease>,
) -> Option<String> {
    leases
        .get_opt("sealant-controller")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

/// Two ports per controller, distinct within the test binary (its own netns).
fn next_port() -> u16 {
    static NEXT_PORT: AtomicU16 = AtomicU16::new(18080);
    NEXT_PORT.fetch_add(2, Ordering::Relaxed)
}

/// Applies `deploy/rbac.yaml` and the ServiceAccount, and returns a kubeconfig with a
/// fresh token for it.
async fn service_account_kubeconfig(cluster: &ControlPlane) -> Result<PathBuf> {
    let client = cluster.client().await?;
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(SERVICE_ACCOUNT.to_owned()),
            namespace: Some("kube-system".to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut value = serde_json::to_value(&account)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "ServiceAccount".into();
    Api::<ServiceAccount>::namespaced(client.clone(), "kube-system")
        .patch(
            SERVICE_ACCOUNT,
            &PatchParams::apply("sealant-e2e"),
            &Patch::Apply(&value),
        )
        .await
        .context("apply the controller's ServiceAccount")?;
    apply_manifests(&client, RBAC)
        .await
        .context("apply deploy/rbac.yaml")?;
    cluster
        .service_account_kubeconfig("kube-system", SERVICE_ACCOUNT)
        .await
}

/// Polls `check` every 100 ms until it returns `Some`, for at most 30 s, failing early
/// (with the end of its log) if `controller` exits.
pub async fn eventually<T, F, Fut>(what: &str, controller: &SealantController, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if let Err(e) = controller.check_running() {
            panic!("sealant-controller stopped while waiting for {what}: {e:#}");
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "timed out after 30 s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
