//! Everything that talks to a cluster, and the one thing read from a kubeconfig offline.
//!
//! Sealing with `--cert` must stay fast and must work on a laptop without any
//! kubeconfig, so nothing here runs unless a command really needs the cluster: the
//! tokio runtime and the kube client are built only in [`Cluster::connect`], and the
//! default namespace is read from the kubeconfig file only when an input Secret has
//! no namespace of its own ([`kubeconfig_namespace`], plain file IO, no network).
//!
//! The controller is reached the way kubeseal reaches it, through the API server's
//! service proxy, so users need no port-forward and no ingress:
//!
//! ```text
//! sealant ──HTTPS──▶ kube-apiserver ──▶ /api/v1/namespaces/{ns}/services/http:{name}:{port}/proxy/v1/...
//!                                        └──▶ controller :8080  (cert.pem, age-recipient,
//!                                                                verify, rotate)
//! ```
//!
//! `{port}` is the name of the Service's first port (`http` in Bitnami's manifests),
//! looked up first exactly as kubeseal does; the proxy matches endpoints by port name,
//! so an empty name would only reach an unnamed port.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Service;
use kube::config::{KubeConfigOptions, Kubeconfig};
use sealant_crds::api;

use crate::args::ClusterArgs;

/// Set in every pod; its absence means there is no in-cluster configuration.
const IN_CLUSTER_ENV: &str = "KUBERNETES_SERVICE_HOST";

/// The HTTP status the controller answers when no key can decrypt a SealedSecret.
const CONFLICT: u16 = 409;

/// The HTTP status of an endpoint the controller does not serve.
const NOT_FOUND: u16 = 404;

/// The namespace of the kubeconfig's current (or `--context`) context.
///
/// Returns `Ok(None)` when there is no kubeconfig at all (no `--kubeconfig`, no
/// `KUBECONFIG`, no `~/.kube/config`), or when the context names no namespace. An
/// explicit `--kubeconfig` that cannot be read is an error; so is a kubeconfig that
/// exists but cannot be parsed.
pub fn kubeconfig_namespace(args: &ClusterArgs) -> Result<Option<String>> {
    let Some(config) = read_kubeconfig(args.kubeconfig.as_deref())? else {
        return Ok(None);
    };
    let Some(context_name) = args.context.clone().or(config.current_context.clone()) else {
        return Ok(None);
    };
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .ok_or_else(|| anyhow!("context {context_name:?} not found in the kubeconfig"))?;
    Ok(context
        .context
        .as_ref()
        .and_then(|c| c.namespace.clone())
        .filter(|ns| !ns.is_empty()))
}

/// Reads the kubeconfig as kubectl finds it: `--kubeconfig`, else every existing file
/// of `KUBECONFIG` merged, else `~/.kube/config` if it exists.
fn read_kubeconfig(explicit: Option<&Path>) -> Result<Option<Kubeconfig>> {
    if let Some(path) = explicit {
        let config = Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
        return Ok(Some(config));
    }
    let paths: Vec<PathBuf> = match std::env::var_os("KUBECONFIG") {
        Some(list) if !list.is_empty() => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect(),
        _ => home_kubeconfig()
            .filter(|p| p.exists())
            .into_iter()
            .collect(),
    };
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        let next = Kubeconfig::read_from(&path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
        merged = Some(match merged {
            Some(config) => config
                .merge(next)
                .with_context(|| format!("cannot merge kubeconfig {}", path.display()))?,
            None => next,
        });
    }
    Ok(merged)
}

/// True when `KUBECONFIG` names an existing file, or `~/.kube/config` exists.
fn kubeconfig_exists() -> bool {
    match std::env::var_os("KUBECONFIG") {
        Some(list) if !list.is_empty() => std::env::split_paths(&list).any(|p| p.is_file()),
        _ => home_kubeconfig().is_some_and(|p| p.is_file()),
    }
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::home_dir().map(|home| home.join(".kube").join("config"))
}

/// A connection to the API server, with the runtime that drives it.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    controller_namespace: String,
    controller_name: String,
}

impl Cluster {
    /// Builds a runtime and a client from the kubeconfig (or the in-cluster
    /// environment when there is no kubeconfig and no kubeconfig flag).
    pub fn connect(
        args: &ClusterArgs,
        controller_namespace: &str,
        controller_name: &str,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let options = KubeConfigOptions {
            context: args.context.clone(),
            cluster: args.cluster.clone(),
            user: args.user.clone(),
        };
        let explicit = args.kubeconfig.clone();
        let any_option =
            options.context.is_some() || options.cluster.is_some() || options.user.is_some();
        let client = runtime.block_on(async move {
            let config = match explicit {
                Some(path) => {
                    let kubeconfig = Kubeconfig::read_from(&path)
                        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                        .await
                        .with_context(|| format!("cannot load kubeconfig {}", path.display()))?
                }
                None if any_option => kube::Config::from_kubeconfig(&options)
                    .await
                    .context("cannot load the kubeconfig")?,
                None if !kubeconfig_exists() && std::env::var_os(IN_CLUSTER_ENV).is_none() => {
                    bail!(
                        "no kubeconfig found (looked at $KUBECONFIG and ~/.kube/config) and not \
                         running in a cluster: pass --cert FILE|URL to seal offline, or \
                         --kubeconfig FILE to reach the controller"
                    )
                }
                None => kube::Config::infer()
                    .await
                    .context("cannot load the kubeconfig or the in-cluster configuration")?,
            };
            kube::Client::try_from(config).context("cannot create the Kubernetes client")
        })?;
        Ok(Self {
            runtime,
            client,
            controller_namespace: controller_namespace.to_owned(),
            controller_name: controller_name.to_owned(),
        })
    }

    /// The client, for commands that talk to the API server directly (`sealant keys`).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Runs `future` to completion on this connection's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// `GET /v1/cert.pem` from the controller.
    pub fn fetch_cert(&self) -> Result<Vec<u8>> {
        self.runtime.block_on(async {
            let path = self.proxy_path(api::CERT).await?;
            let request = http::Request::get(path)
                .header(
                    http::header::ACCEPT,
                    format!("{}, */*", api::PEM_MEDIA_TYPE),
                )
                .body(Vec::new())
                .context("cannot build the certificate request")?;
            let text = self
                .client
                .request_text(request)
                .await
                .context("cannot fetch certificate")?;
            Ok(text.into_bytes())
        })
    }

    /// `GET /v1/age-recipient` from the controller: the text of its newest age
    /// recipient, unchecked (see [`crate::recipients::parse_controller_answer`]).
    pub fn fetch_age_recipient(&self) -> Result<String> {
        self.runtime.block_on(async {
            let path = self.proxy_path(api::AGE_RECIPIENT).await?;
            let request = http::Request::get(path)
                .header(http::header::ACCEPT, "text/plain, */*")
                .body(Vec::new())
                .context("cannot build the age recipient request")?;
            match self.client.request_text(request).await {
                Ok(text) => Ok(text),
                Err(err) if status_code(&err) == Some(NOT_FOUND) => bail!(
                    "cannot fetch the age recipient: the controller {}/{} does not serve \
                     /v1/age-recipient (a Bitnami controller, or a sealant controller \
                     without age support); seal with its certificate instead",
                    self.controller_namespace,
                    self.controller_name
                ),
                Err(err) => Err(anyhow!(err).context("cannot fetch the age recipient")),
            }
        })
    }

    /// `POST /v1/verify`: Ok when the controller can decrypt `sealed` (JSON).
    pub fn verify(&self, sealed: Vec<u8>) -> Result<()> {
        self.runtime.block_on(async {
            let path = self.proxy_path(api::VERIFY).await?;
            match self.post(path, sealed).await {
                Ok(_) => Ok(()),
                Err(err) if status_code(&err) == Some(CONFLICT) => {
                    bail!("unable to decrypt sealed secret")
                }
                Err(err) => Err(anyhow!(err).context("cannot validate sealed secret")),
            }
        })
    }

    /// `POST /v1/rotate`: the SealedSecret re-encrypted with the newest key (JSON).
    pub fn rotate(&self, sealed: Vec<u8>) -> Result<String> {
        self.runtime.block_on(async {
            let path = self.proxy_path(api::ROTATE).await?;
            match self.post(path, sealed).await {
                Ok(body) => Ok(body),
                Err(err) if status_code(&err) == Some(CONFLICT) => bail!("unable to rotate secret"),
                Err(err) => Err(anyhow!(err).context("cannot re-encrypt secret")),
            }
        })
    }

    async fn post(&self, path: String, body: Vec<u8>) -> kube::Result<String> {
        let request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(kube::Error::HttpError)?;
        self.client.request_text(request).await
    }

    /// The service-proxy path to `suffix` on the controller, after looking up the
    /// name of the Service's first port.
    async fn proxy_path(&self, suffix: &str) -> Result<String> {
        let (ns, name) = (&self.controller_namespace, &self.controller_name);
        let services: kube::Api<Service> = kube::Api::namespaced(self.client.clone(), ns);
        let service = services.get(name).await.with_context(|| {
            format!(
                "cannot get sealed secret service {ns}/{name}; use --controller-name and \
                 --controller-namespace to name the sealed secrets controller"
            )
        })?;
        let port = service
            .spec
            .and_then(|spec| spec.ports)
            .and_then(|ports| ports.into_iter().next())
            .and_then(|port| port.name)
            .unwrap_or_default();
        Ok(proxy_path(ns, name, &port, suffix))
    }
}

/// `/api/v1/namespaces/{ns}/services/http:{name}:{port}/proxy{suffix}`.
fn proxy_path(namespace: &str, name: &str, port: &str, suffix: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/services/http:{name}:{port}/proxy{suffix}")
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_path_names_scheme_service_and_port() {
        assert_eq!(
            proxy_path(
                "kube-system",
                "sealed-secrets-controller",
                "http",
                "/v1/cert.pem"
            ),
            "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem"
        );
    }

    #[test]
    fn namespace_comes_from_the_selected_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n\
             - name: a\n  context: {cluster: c, user: u, namespace: team-a}\n\
             - name: b\n  context: {cluster: c, user: u}\n\
             clusters: []\nusers: []\n",
        )
        .expect("write kubeconfig");
        let mut args = ClusterArgs {
            kubeconfig: Some(path),
            ..ClusterArgs::default()
        };
        assert_eq!(
            kubeconfig_namespace(&args).expect("read").as_deref(),
            Some("team-a")
        );
        args.context = Some("b".into());
        assert_eq!(kubeconfig_namespace(&args).expect("read"), None);
        args.context = Some("missing".into());
        assert!(kubeconfig_namespace(&args).is_err());
    }
}
