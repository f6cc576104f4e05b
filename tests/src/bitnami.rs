//! Bitnami's real sealed-secrets controller, run out of cluster as if it were in a Pod.
//!
//! The controller only supports in-cluster configuration, and `kubeseal --fetch-cert`
//! reaches it only through the API server's service proxy, which refuses loopback
//! endpoints and wants a Pod behind each endpoint address. So the harness:
//!
//! 1. applies the RBAC of Bitnami's manifests (`tests/tests/fixtures/bitnami-rbac.yaml`)
//!    and mints a TokenRequest token for its ServiceAccount: the controller has exactly
//!    the rights its manifests grant, not admin;
//! 2. starts it in the test host's network namespace, listening on the namespace-side
//!    address, inside a private mount namespace (`unshare --mount`) where a tmpfs on
//!    `/run` and a bind mount put the token, CA and namespace at
//!    `/var/run/secrets/kubernetes.io/serviceaccount/` without touching the machine;
//! 3. makes the proxy route to it: a stand-in Pod (never scheduled; its status is
//!    patched to carry the address), a selector-less Service `sealed-secrets-controller`
//!    with port `http` 8080, and an Endpoints object that points at the Pod.

use std::net::SocketAddr;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{
    Container, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod,
    PodSpec, Service, ServicePort, ServiceSpec,
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};

use crate::control_plane::{ControlPlane, get_text, http_get, wait_until, wait_until_async};
use crate::process::Component;

/// The namespace the Bitnami controller runs in (its default).
pub const NAMESPACE: &str = "kube-system";
/// The controller's Service and ServiceAccount name (its default).
pub const NAME: &str = "sealed-secrets-controller";
/// The RBAC that Bitnami's manifests grant.
pub const RBAC: &str = include_str!("../tests/fixtures/bitnami-rbac.yaml");

/// A running Bitnami controller, reachable through the service proxy.
pub struct BitnamiController {
    /// Its HTTP API, on the test host: `http://ADDR:8080`.
    pub addr: SocketAddr,
    pub(crate) component: Component,
}

impl BitnamiController {
    /// Kills it. It is shared by the whole test binary and never restarted, so only a
    /// binary with a single test that needs it may call this.
    pub fn kill(&self) {
        self.component.kill();
    }

    /// Where its combined output goes.
    pub fn log_path(&self) -> std::path::PathBuf {
        self.component.log.clone()
    }

    /// The controller's process id (the `unshare` and `sh` wrappers exec into it).
    pub fn pid(&self) -> u32 {
        self.component.pid()
    }

    /// The certificate it currently seals with, fetched directly (not via the proxy).
    pub fn cert_pem(&self) -> Result<String> {
        let (code, body) = http_get(self.addr, "/v1/cert.pem")?;
        if code != 200 {
            bail!("GET /v1/cert.pem answered {code}: {body}");
        }
        Ok(body)
    }
}

/// The service-proxy path to `suffix` on the controller's port `http`. The proxy
/// matches endpoint ports by name, which is why kubeseal looks the Service up first.
pub fn proxy_path(suffix: &str) -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/services/http:{NAME}:http/proxy{suffix}")
}

/// Starts a Bitnami controller of the test's own, outside [`ControlPlane::bitnami`]:
/// for a test that stops the shared one (or never starts it) and needs another that
/// loads the keys in `kube-system` as they are now. The Service routing is reused.
pub async fn start_another(cluster: &ControlPlane) -> Result<BitnamiController> {
    start(cluster).await
}

pub(crate) async fn start(cluster: &ControlPlane) -> Result<BitnamiController> {
    start_with_args(cluster, &[]).await
}

/// As [`start_another`], with `extra_args` after the harness's own flags (the sync
/// benchmark raises `--kubeclient-qps` and `--kubeclient-burst` with it).
pub async fn start_with_args(
    cluster: &ControlPlane,
    extra_args: &[&str],
) -> Result<BitnamiController> {
    let client = cluster.client().await?;
    apply_manifests(&client, RBAC).await?;
    let controller = spawn(cluster, NAMESPACE, NAME, 8080, extra_args).await?;

    route_service_proxy(&client, cluster).await?;
    let path = proxy_path("/v1/cert.pem");
    wait_until_async(
        &controller.component,
        "the service proxy to reach the controller",
        || {
            let client = client.clone();
            let path = path.clone();
            async move {
                Ok(get_text(&client, &path)
                    .await?
                    .contains("BEGIN CERTIFICATE"))
            }
        },
    )
    .await?;
    Ok(controller)
}

/// Bitnami's controller in `namespace`, as the ServiceAccount `account` there with the
/// rights the caller granted it (its own chart's, say), with `args` after its listen
/// addresses (`port` and `port + 1` on the test host). Not behind the service proxy:
/// reach it at [`BitnamiController::addr`].
pub async fn start_as(
    cluster: &ControlPlane,
    namespace: &str,
    account: &str,
    port: u16,
    args: &[&str],
) -> Result<BitnamiController> {
    spawn(cluster, namespace, account, port, args).await
}

async fn spawn(
    cluster: &ControlPlane,
    namespace: &str,
    account: &str,
    port: u16,
    extra_args: &[&str],
) -> Result<BitnamiController> {
    // The in-cluster files, bind-mounted at the standard path in a private namespace.
    let sa_dir = cluster.dir.join(format!(
        "bitnami-serviceaccount-{namespace}-{account}-{port}"
    ));
    std::fs::create_dir_all(&sa_dir)?;
    let token = cluster.service_account_token(namespace, account).await?;
    std::fs::write(sa_dir.join("token"), token)?;
    std::fs::write(sa_dir.join("ca.crt"), &cluster.ca_pem)?;
    std::fs::write(sa_dir.join("namespace"), namespace)?;

    let addr = SocketAddr::from((cluster.host.ns_ip, port));
    let mut cmd = cluster.host.command("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "set -e; mount -t tmpfs -o mode=0755,size=1m sealant-e2e /run; \
             mkdir -p /run/secrets/kubernetes.io/serviceaccount; \
             mount --bind \"$0\" /run/secrets/kubernetes.io/serviceaccount; exec \"$@\"",
        )
        .arg(&sa_dir)
        .arg(&cluster.peers.sealed_secrets_controller)
        .arg(format!("--listen-addr={addr}"))
        .arg(format!(
            "--listen-metrics-addr={}:{}",
            cluster.host.ns_ip,
            port + 1
        ))
        .args(extra_args)
        .env("KUBERNETES_SERVICE_HOST", cluster.host.host_ip.to_string())
        .env(
            "KUBERNETES_SERVICE_PORT",
            cluster.apiserver_port.to_string(),
        )
        .env("POD_NAMESPACE", namespace)
        .env_remove("KUBECONFIG");
    let log = if namespace == NAMESPACE && port == 8080 {
        cluster.dir.join("logs/sealed-secrets-controller.log")
    } else {
        cluster.dir.join(format!(
            "logs/sealed-secrets-controller-{namespace}-{port}.log"
        ))
    };
    let component = cluster
        .reaper
        .spawn("sealed-secrets-controller", cmd, &log)?;
    // Ready once it serves a certificate: its first key is made and stored.
    wait_until(&component, "the Bitnami controller's /v1/cert.pem", || {
        Ok(http_get(addr, "/v1/cert.pem")
            .is_ok_and(|(code, body)| code == 200 && body.contains("BEGIN CERTIFICATE")))
    })?;
    Ok(BitnamiController { addr, component })
}

/// The Pod, Service and Endpoints that make the API server proxy to the test host
/// (`ns_ip:8080`), for whichever controller listens there; safe to call again.
pub async fn route_service_proxy(client: &kube::Client, cluster: &ControlPlane) -> Result<()> {
    let ip = cluster.host.ns_ip.to_string();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(NAME.to_string()),
            labels: Some([("name".to_string(), NAME.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            service_account_name: Some(NAME.to_string()),
            automount_service_account_token: Some(false),
            containers: vec![Container {
                name: "controller".to_string(),
                image: Some("sealant.invalid/stand-in:never-pulled".to_string()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = match pods.create(&PostParams::default(), &pod).await {
        Err(kube::Error::Api(e)) if e.code == 409 => pods.get(NAME).await,
        other => other,
    }
    .context("create the stand-in Pod")?;
    // No scheduler or kubelet runs: the harness plays the kubelet and reports the IP.
    let status = serde_json::json!({
        "status": { "podIP": ip, "podIPs": [{ "ip": ip }] }
    });
    pods.patch_status(NAME, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .context("patch the stand-in Pod's status")?;

    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let service = Service {
        metadata: ObjectMeta {
            name: Some(NAME.to_string()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".to_string()),
                port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    match services.create(&PostParams::default(), &service).await {
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        other => other.map(drop),
    }
    .context("create the controller's Service")?;

    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), NAMESPACE);
    let eps = Endpoints {
        metadata: ObjectMeta {
            name: Some(NAME.to_string()),
            ..Default::default()
        },
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip,
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".to_string()),
                    name: Some(NAME.to_string()),
                    namespace: Some(NAMESPACE.to_string()),
                    uid: pod.metadata.uid,
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ports: Some(vec![EndpointPort {
                name: Some("http".to_string()),
                port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }]),
    };
    // A second start (see [`start_another`]) finds the routing in place.
    match endpoints.create(&PostParams::default(), &eps).await {
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        other => other.map(drop),
    }
    .context("create the controller's Endpoints")?;
    Ok(())
}

/// Server-side applies every document of a multi-document YAML manifest.
pub async fn apply_manifests(client: &kube::Client, yaml: &str) -> Result<()> {
    use serde::Deserialize as _;
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(doc)?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value)?;
        let types = obj
            .types
            .clone()
            .context("a manifest document has no kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let resource = ApiResource::from_gvk(&gvk);
        let name = obj
            .metadata
            .name
            .clone()
            .context("a manifest document has no name")?;
        let api: Api<DynamicObject> = match &obj.metadata.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            &name,
            &PatchParams::apply("sealant-e2e"),
            &Patch::Apply(&obj),
        )
        .await
        .with_context(|| format!("apply {} {name}", gvk.kind))?;
    }
    Ok(())
}
