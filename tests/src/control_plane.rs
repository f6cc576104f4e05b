//! etcd, kube-apiserver and kube-controller-manager as child processes: one shared set
//! per test binary ([`cluster`]), ready before the first test uses them, and as many
//! more as a test asks for ([`ControlPlane::start_another`]).
//!
//! Start order and readiness:
//!
//! ```text
//!  reaper ─> test host (netns + veth) ─> certificates ─> etcd (/health)
//!    ─> kube-apiserver (/readyz, RBAC on) ─> kube-controller-manager
//!    ─> CRD from crds/sealedsecret.yaml (Established)
//!    ─> ServiceAccount "default" in "default" (the controller-manager is working)
//! ```
//!
//! The API server listens only on the host side of the test host's veth pair, so the
//! controller inside the test host's network namespace and every client on this machine
//! reach it at the same address, and its service proxy can reach the controller.
//!
//! The shared control plane holds no `kube::Client`: each test has its own tokio
//! runtime, and a client's connections die with the runtime that made them. Tests call
//! [`ControlPlane::client`] instead.
//!
//! Every control plane is independent: its own directory, reaper, test host (network
//! namespace, veth and /30), ports and Bitnami controller. A test that needs two
//! clusters (multi-cluster sealing) or one it may destroy (a disaster drill) starts its
//! own with [`ControlPlane::start_another`], and [`ControlPlane::destroy`] ends one:
//! every process it started is killed and its data, network namespace and veth are
//! gone, as after the test binary's exit. The shared one cannot be destroyed.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::bitnami::BitnamiController;
use crate::netns::TestHost;
use crate::peers::Peers;
use crate::pki::Pki;
use crate::process::{Component, Reaper, tail};

/// How long any one component may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The shared control plane of this test binary, started on first use.
pub fn cluster() -> Result<&'static ControlPlane> {
    static CLUSTER: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            block_on_own_thread(ControlPlane::start)
                .map(|mut cp| {
                    cp.shared = true;
                    cp
                })
                .map_err(|e| format!("the local control plane did not start: {e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs an async job to completion on a fresh thread with its own runtime, so that it
/// can be called from sync code and from inside any test's runtime alike (e.g. to set
/// up, once, what several tests of a binary share).
pub fn block_on_own_thread<T, F, Fut>(job: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("build a tokio runtime")?
            .block_on(job())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the control-plane thread panicked"))?
}

/// How long each start-up phase took, measured from the start of [`ControlPlane::start`].
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// etcd answered `/health`.
    pub etcd: Duration,
    /// kube-apiserver answered `/readyz`.
    pub apiserver: Duration,
    /// The SealedSecret CRD was Established.
    pub crd: Duration,
    /// The controller-manager had created the `default` ServiceAccount.
    pub controller_manager: Duration,
}

/// A running control plane. See the module docs.
pub struct ControlPlane {
    /// The temporary directory with certificates, data, kubeconfigs and logs.
    pub dir: PathBuf,
    /// The peers in use.
    pub peers: Peers,
    /// The test host (network namespace) and its addresses.
    pub host: TestHost,
    /// The API server's URL.
    pub server: String,
    /// The API server's port on [`TestHost::host_ip`].
    pub apiserver_port: u16,
    /// A kubeconfig for a `system:masters` admin.
    pub admin_kubeconfig: PathBuf,
    /// The CA that signed the API server's certificate (PEM).
    pub ca_pem: String,
    /// Start-up timings.
    pub timings: Timings,
    /// Whether `SEALANT_TEST_KEEP=1` asked to keep namespaces and the directory.
    pub keep: bool,
    pub(crate) reaper: Reaper,
    /// etcd, kube-apiserver, kube-controller-manager (a restarted one replaces its
    /// predecessor).
    components: Mutex<Vec<Component>>,
    /// kube-apiserver's arguments, to start it again after a fault.
    apiserver_args: Vec<std::ffi::OsString>,
    /// etcd's client address (loopback, plain HTTP).
    etcd_client: SocketAddr,
    pub(crate) bitnami: OnceLock<Result<BitnamiController, String>>,
    /// Whether this is the binary's shared control plane ([`cluster`]).
    shared: bool,
    /// Whether [`Self::destroy`] has run.
    destroyed: AtomicBool,
}

impl ControlPlane {
    /// Starts everything; see the module docs for the order.
    pub async fn start() -> Result<Self> {
        Self::start_with(Vec::new()).await
    }

    /// As [`Self::start`], with `extra_apiserver_args` after the API server's own
    /// flags (a fault test squeezes its concurrency limits with them).
    pub async fn start_with(extra_apiserver_args: Vec<String>) -> Result<Self> {
        let started = Instant::now();
        let keep = std::env::var("SEALANT_TEST_KEEP").is_ok_and(|v| v == "1");
        let peers = crate::peers::peers()?.clone();
        let dir = tempfile::Builder::new()
            .prefix("sealant-e2e-")
            .tempdir()
            .context("create the control plane's temporary directory")?
            .keep();
        let host = TestHost::plan()?;
        let reaper = Reaper::start(&dir, &host.netns, &host.veth_host, keep)?;
        host.create()?;
        for sub in [
            "logs",
            "etcd",
            "kcm",
            "flex",
            "apiserver-certs",
            "kubeconfigs",
        ] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let logs = dir.join("logs");

        let pki = Pki::generate(&[IpAddr::V4(host.host_ip), IpAddr::V4(Ipv4Addr::LOCALHOST)])?;
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            Ok(path)
        };
        let ca = write("ca.crt", &pki.ca_pem)?;
        let apiserver_crt = write("apiserver.crt", &pki.apiserver.cert_pem)?;
        let apiserver_key = write("apiserver.key", &pki.apiserver.key_pem)?;
        let sa_key = write("sa.key", &pki.service_account_key_pem)?;
        let sa_pub = write("sa.pub", &pki.service_account_pub_pem)?;
        // The API server's identity towards a kubelet (logs, exec, the node proxy),
        // when a test runs a node (crate::node): the admin's certificate.
        let kubelet_client_crt = write("kubelet-client.crt", &pki.admin.cert_pem)?;
        let kubelet_client_key = write("kubelet-client.key", &pki.admin.key_pem)?;

        // etcd, on loopback.
        let etcd_client = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let etcd_peer = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let client_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let mut cmd = Command::new(&peers.etcd);
        cmd.arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--name", "e2e"])
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("e2e={peer_url}")])
            .args(["--unsafe-no-fsync", "--log-level", "warn"]);
        let etcd = reaper.spawn("etcd", cmd, &logs.join("etcd.log"))?;
        wait_until(&etcd, "etcd /health", || {
            Ok(
                http_get(SocketAddr::from(([127, 0, 0, 1], etcd_client)), "/health")
                    .is_ok_and(|(code, body)| code == 200 && body.contains("\"health\":\"true\"")),
            )
        })?;
        let etcd_ready = started.elapsed();

        // kube-apiserver, on the host side of the veth pair.
        let apiserver_port = free_port(IpAddr::V4(host.host_ip))?;
        let server = format!("https://{}:{apiserver_port}", host.host_ip);
        let mut cmd = Command::new(&peers.kube_apiserver);
        cmd.arg(format!("--etcd-servers={client_url}"))
            .arg(format!("--bind-address={}", host.host_ip))
            .arg(format!("--advertise-address={}", host.host_ip))
            .arg(format!("--secure-port={apiserver_port}"))
            .arg(path_flag("--cert-dir", &dir.join("apiserver-certs")))
            .arg(path_flag("--tls-cert-file", &apiserver_crt))
            .arg(path_flag("--tls-private-key-file", &apiserver_key))
            .arg(path_flag("--client-ca-file", &ca))
            .arg("--authorization-mode=RBAC")
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(path_flag("--service-account-key-file", &sa_pub))
            .arg(path_flag("--service-account-signing-key-file", &sa_key))
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--endpoint-reconciler-type=none")
            .arg(path_flag(
                "--kubelet-client-certificate",
                &kubelet_client_crt,
            ))
            .arg(path_flag("--kubelet-client-key", &kubelet_client_key))
            .arg("--profiling=false")
            .args(&extra_apiserver_args);
        let apiserver_args: Vec<std::ffi::OsString> =
            cmd.get_args().map(ToOwned::to_owned).collect();
        let apiserver = reaper.spawn("kube-apiserver", cmd, &logs.join("kube-apiserver.log"))?;

        let admin_kubeconfig = dir.join("kubeconfigs/admin.yaml");
        std::fs::write(
            &admin_kubeconfig,
            kubeconfig(
                &server,
                &pki.ca_pem,
                &User::Cert(&pki.admin.cert_pem, &pki.admin.key_pem),
                "default",
            ),
        )?;
        let client = client_from(&admin_kubeconfig).await?;
        wait_until_async(&apiserver, "kube-apiserver /readyz", || async {
            Ok(get_text(&client, "/readyz")
                .await
                .is_ok_and(|t| t.trim() == "ok"))
        })
        .await?;
        let apiserver_ready = started.elapsed();

        // kube-controller-manager, on loopback, with nothing written outside `dir`.
        let kcm_kubeconfig = dir.join("kubeconfigs/kube-controller-manager.yaml");
        std::fs::write(
            &kcm_kubeconfig,
            kubeconfig(
                &server,
                &pki.ca_pem,
                &User::Cert(
                    &pki.controller_manager.cert_pem,
                    &pki.controller_manager.key_pem,
                ),
                "kube-system",
            ),
        )?;
        let kcm_port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let mut cmd = Command::new(&peers.kube_controller_manager);
        cmd.arg(path_flag("--kubeconfig", &kcm_kubeconfig))
            .arg(path_flag("--authentication-kubeconfig", &kcm_kubeconfig))
            .arg(path_flag("--authorization-kubeconfig", &kcm_kubeconfig))
            .arg("--authentication-skip-lookup=true")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={kcm_port}"))
            .arg(path_flag("--cert-dir", &dir.join("kcm")))
            .arg("--leader-elect=false")
            .arg("--use-service-account-credentials=true")
            .arg(path_flag("--service-account-private-key-file", &sa_key))
            .arg(path_flag("--root-ca-file", &ca))
            .arg(path_flag("--flex-volume-plugin-dir", &dir.join("flex")))
            .arg("--profiling=false");
        let kcm = reaper.spawn(
            "kube-controller-manager",
            cmd,
            &logs.join("kube-controller-manager.log"),
        )?;

        install_crd(&client, &apiserver).await?;
        let crd_ready = started.elapsed();

        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        wait_until_async(
            &kcm,
            "the default ServiceAccount (from the controller-manager)",
            || {
                let sas = sas.clone();
                async move { Ok(sas.get_opt("default").await.ok().flatten().is_some()) }
            },
        )
        .await?;
        let kcm_ready = started.elapsed();

        Ok(Self {
            dir,
            peers,
            host,
            server,
            apiserver_port,
            admin_kubeconfig,
            ca_pem: pki.ca_pem,
            timings: Timings {
                etcd: etcd_ready,
                apiserver: apiserver_ready,
                crd: crd_ready,
                controller_manager: kcm_ready,
            },
            keep,
            reaper,
            components: Mutex::new(vec![etcd, apiserver, kcm]),
            apiserver_args,
            etcd_client: SocketAddr::from(([127, 0, 0, 1], etcd_client)),
            bitnami: OnceLock::new(),
            shared: false,
            destroyed: AtomicBool::new(false),
        })
    }

    /// Starts a control plane of the caller's own, independent of [`cluster`] and of
    /// every other one, and keeps it for the rest of the process (as [`cluster`] keeps
    /// the shared one), so [`crate::TestNamespace`] and [`Self::bitnami`] work with it.
    /// Callable from sync code and from inside a test's runtime.
    pub fn start_another() -> Result<&'static Self> {
        Self::start_another_with(&[])
    }

    /// As [`Self::start_another`], with `extra_apiserver_args` for its API server.
    pub fn start_another_with(extra_apiserver_args: &[&str]) -> Result<&'static Self> {
        let args: Vec<String> = extra_apiserver_args
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        let cp = block_on_own_thread(move || Self::start_with(args))
            .context("another local control plane did not start")?;
        Ok(Box::leak(Box::new(cp)))
    }

    /// Destroys this control plane now: kills etcd, the API server, the
    /// controller-manager and every controller started on it, and deletes its network
    /// namespace, veth and directory (the directory stays if `SEALANT_TEST_KEEP=1`).
    /// Its API server is unreachable afterwards and nothing can be started on it.
    /// Fails for the shared control plane, which other tests are using.
    pub fn destroy(&self) -> Result<()> {
        if self.shared {
            bail!("the shared control plane cannot be destroyed; use ControlPlane::start_another");
        }
        self.destroyed.store(true, Ordering::SeqCst);
        let bitnami = self
            .bitnami
            .get()
            .and_then(|b| b.as_ref().ok())
            .map(|b| &b.component);
        let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        for c in components.iter().rev().chain(bitnami) {
            c.kill();
        }
        // The reaper kills what remains (controllers the tests started) and cleans up.
        self.reaper.finish()
    }

    /// Whether [`Self::destroy`] has run.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::SeqCst)
    }

    /// A fresh admin client, bound to the caller's runtime.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from(&self.admin_kubeconfig).await
    }

    /// A token for the ServiceAccount `namespace/name`, from the TokenRequest API.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let client = self.client().await?;
        let api: Api<ServiceAccount> = Api::namespaced(client, namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![],
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{name}"))?;
        Ok(answer
            .status
            .context("TokenRequest answered without a status")?
            .token)
    }

    /// A kubeconfig that acts as the ServiceAccount `namespace/name`, with exactly the
    /// rights RBAC grants it. Its default namespace is `namespace`.
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        let token = self.service_account_token(namespace, name).await?;
        let path = self.dir.join(format!(
            "kubeconfigs/sa-{namespace}-{name}-{}.yaml",
            crate::random_hex(3)
        ));
        std::fs::write(
            &path,
            kubeconfig(&self.server, &self.ca_pem, &User::Token(&token), namespace),
        )?;
        Ok(path)
    }

    /// Creates the ServiceAccount `namespace/name`, with no rights beyond what every
    /// authenticated user has, and returns a kubeconfig that acts as it.
    pub async fn new_service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<PathBuf> {
        let account = ServiceAccount {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(self.client().await?, namespace)
            .create(&PostParams::default(), &account)
            .await
            .with_context(|| format!("cannot create the ServiceAccount {namespace}/{name}"))?;
        self.service_account_kubeconfig(namespace, name).await
    }

    /// Sends the signal `signal` (e.g. `STOP`, `CONT`) to the component `name`
    /// (`etcd`, `kube-apiserver`, `kube-controller-manager`), for fault injection.
    pub fn signal_component(&self, name: &str, signal: &str) -> Result<()> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("no component {name}"))?
            .signal(signal)
    }

    /// Compacts etcd's history up to its current revision (through etcd's JSON
    /// gateway), so that any watch from an older resourceVersion fails with 410 Gone.
    /// Returns the revision.
    pub fn compact_etcd(&self) -> Result<u64> {
        let (code, body) = http_post_json(self.etcd_client, "/v3/kv/range", r#"{"key":"AA=="}"#)?;
        if code != 200 {
            bail!("etcd /v3/kv/range answered {code}: {body}");
        }
        let value: serde_json::Value = serde_json::from_str(&body).context("etcd's answer")?;
        let revision: u64 = value["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .context("no revision in etcd's answer")?;
        let (code, body) = http_post_json(
            self.etcd_client,
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{revision}","physical":true}}"#),
        )?;
        if code != 200 {
            bail!("etcd /v3/kv/compaction answered {code}: {body}");
        }
        Ok(revision)
    }

    /// Kills kube-apiserver (SIGKILL), waits `down`, and starts it again with the same
    /// arguments (same port, same etcd), until it answers `/readyz`. For fault
    /// injection.
    pub async fn restart_apiserver(&self, down: Duration) -> Result<()> {
        let mut cmd = Command::new(&self.peers.kube_apiserver);
        cmd.args(&self.apiserver_args);
        {
            let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
            components
                .iter()
                .find(|c| c.name == "kube-apiserver")
                .context("no kube-apiserver")?
                .kill();
        }
        tokio::time::sleep(down).await;
        let restarted = self.reaper.spawn(
            "kube-apiserver",
            cmd,
            &self
                .dir
                .join(format!("logs/kube-apiserver-{}.log", crate::random_hex(3))),
        )?;
        let client = self.client().await?;
        wait_until_async(
            &restarted,
            "kube-apiserver /readyz after a restart",
            || async {
                Ok(get_text(&client, "/readyz")
                    .await
                    .is_ok_and(|t| t.trim() == "ok"))
            },
        )
        .await?;
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        components.retain(|c| c.name != "kube-apiserver");
        components.insert(1, restarted);
        Ok(())
    }

    /// The Bitnami controller, started on first use. See [`crate::bitnami`].
    pub fn bitnami(&'static self) -> Result<&'static BitnamiController> {
        self.bitnami
            .get_or_init(|| {
                block_on_own_thread(move || crate::bitnami::start(self))
                    .map_err(|e| format!("the Bitnami controller did not start: {e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}\n{}", self.log_tails(30)))
    }

    /// The last `lines` lines of every component's log, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let bitnami = self
            .bitnami
            .get()
            .and_then(|b| b.as_ref().ok())
            .map(|b| &b.component);
        let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        for c in components.iter().chain(bitnami) {
            out.push_str(&format!(
                "----- last {lines} lines of {} ({}) -----\n{}\n",
                c.name,
                c.log.display(),
                tail(&c.log, lines)
            ));
        }
        out
    }
}

/// Creates the SealedSecret CRD from `crds/sealedsecret.yaml` and waits until it is
/// Established.
async fn install_crd(client: &kube::Client, apiserver: &Component) -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/sealedsecret.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not a CustomResourceDefinition", path.display()))?;
    let name = crd.metadata.name.clone().context("the CRD has no name")?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &crd)
        .await
        .with_context(|| format!("the API server refused the CRD in {}", path.display()))?;
    wait_until_async(apiserver, "the SealedSecret CRD to be Established", || {
        let api = api.clone();
        let name = name.clone();
        async move {
            let crd = api.get(&name).await?;
            Ok(crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True"))
        }
    })
    .await
}

/// A client for `kubeconfig`.
pub async fn client_from(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("read {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// GET `path` as text with `client`.
pub async fn get_text(client: &kube::Client, path: &str) -> Result<String> {
    let request = http::Request::get(path).body(Vec::new())?;
    Ok(client.request_text(request).await?)
}

/// Non-watch requests the API server has answered on Secrets, SealedSecrets and events
/// so far (its own `apiserver_request_total`), by `"VERB resource[/subresource]"`.
pub async fn request_counts(
    client: &kube::Client,
) -> Result<std::collections::BTreeMap<String, f64>> {
    let text = get_text(client, "/metrics")
        .await
        .context("kube-apiserver /metrics")?;
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_owned())
    };
    let mut counts = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let (Some(verb), Some(resource)) = (label(line, "verb"), label(line, "resource")) else {
            continue;
        };
        if verb == "WATCH" || !["secrets", "sealedsecrets", "events"].contains(&resource.as_str()) {
            continue;
        }
        let subresource = label(line, "subresource").unwrap_or_default();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let key = if subresource.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{subresource}")
        };
        *counts.entry(key).or_insert(0.0) += value;
    }
    Ok(counts)
}

/// The requests of `after` not yet in `before`, by key; zeros left out.
pub fn request_delta(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// Who a kubeconfig authenticates as.
enum User<'a> {
    /// Client certificate and key, PEM.
    Cert(&'a str, &'a str),
    /// Bearer token.
    Token(&'a str),
}

fn kubeconfig(server: &str, ca_pem: &str, user: &User<'_>, namespace: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let user = match user {
        User::Cert(cert, key) => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert),
            b64(key)
        ),
        User::Token(token) => format!("    token: {token}\n"),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {}\nusers:\n- name: e2e\n  user:\n{user}contexts:\n- name: e2e\n  \
         context:\n    cluster: e2e\n    user: e2e\n    namespace: {namespace}\ncurrent-context: e2e\n",
        b64(ca_pem)
    )
}

fn path_flag(flag: &str, path: &Path) -> String {
    format!("{flag}={}", path.display())
}

/// A port that was free on `ip` a moment ago.
pub(crate) fn free_port(ip: IpAddr) -> Result<u16> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("bind {ip}:0"))?;
    Ok(listener.local_addr()?.port())
}

/// A plain HTTP/1.0 GET, for health endpoints that speak no TLS.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    http_request(addr, "GET", path, None)
}

/// `POST path` with a JSON `body` to a plain-HTTP endpoint; returns the status and body.
pub fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    http_request(addr, "POST", path, Some(body))
}

fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    match body {
        None => write!(stream, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?,
        Some(body) => write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )?,
    }
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("not an HTTP response")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Polls `ready` until it says yes, failing early if `component` exits.
pub(crate) fn wait_until(
    component: &Component,
    what: &str,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        component.check_running()?;
        let last = match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => "not yet".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if start.elapsed() > READY_TIMEOUT {
            bail!(
                "timed out after {READY_TIMEOUT:?} waiting for {what} (last answer: {last}); \
                 last lines of {}:\n{}",
                component.log.display(),
                tail(&component.log, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_until`] for async checks.
pub(crate) async fn wait_until_async<F, Fut>(
    component: &Component,
    what: &str,
    mut ready: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    loop {
        component.check_running()?;
        let last = match ready().await {
            Ok(true) => return Ok(()),
            Ok(false) => "not yet".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if start.elapsed() > READY_TIMEOUT {
            bail!(
                "timed out after {READY_TIMEOUT:?} waiting for {what} (last answer: {last}); \
                 last lines of {}:\n{}",
                component.log.display(),
                tail(&component.log, 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
