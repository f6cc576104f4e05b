//! Small builders the suites share: Secret manifests, sealing through the `sealant`
//! binary, `kubectl apply` as admin, value maps to compare against, and
//! `deploy/rbac.yaml`'s namespaced rights moved into a test's namespace.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use k8s_openapi::api::core::v1::Secret;
use std::time::Duration;

use sealant_keys::{Certificate, OffsetDateTime, PrivateKey, Scope};

use crate::{ControlPlane, tools};

/// An active key Secret named `name` in Bitnami's shape (its label and TLS type),
/// holding `key_pem` and `cert_pem` as given: a test may pass broken ones.
pub fn key_secret(name: &str, key_pem: &str, cert_pem: &str) -> Secret {
    Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                [(
                    "sealedsecrets.bitnami.com/sealed-secrets-key".to_owned(),
                    "active".to_owned(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        string_data: Some(
            [
                ("tls.key".to_owned(), key_pem.to_owned()),
                ("tls.crt".to_owned(), cert_pem.to_owned()),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

/// A fresh 2048-bit key and its self-signed certificate, valid for a day from
/// `not_before`.
pub fn key_and_cert(not_before: OffsetDateTime) -> (PrivateKey, Certificate) {
    let key = PrivateKey::generate(2048).expect("key");
    let cert = Certificate::self_signed(&key, Duration::from_secs(86_400), "e2e", not_before)
        .expect("cert");
    (key, cert)
}

/// A Secret manifest (YAML) with string values, annotated with `scope` unless strict.
pub fn secret_yaml(namespace: &str, name: &str, values: &[(&str, &str)], scope: Scope) -> String {
    let annotations = match scope {
        Scope::Strict => String::new(),
        wide => format!("  annotations:\n    sealedsecrets.bitnami.com/{wide}: \"true\"\n"),
    };
    let data: String = values
        .iter()
        .map(|(k, v)| format!("  {k}: {v:?}\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         {annotations}type: Opaque\nstringData:\n{data}"
    )
}

/// Seals `values` as the strict `namespace/name` with `cert_pem` through the `sealant`
/// binary, and returns the SealedSecret as YAML.
pub fn seal(cert_pem: &str, namespace: &str, name: &str, values: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, cert_pem).expect("write cert");
    tools::run(
        Command::new(tools::sealant().expect("sealant binary"))
            .arg("--cert")
            .arg(&cert)
            .args(["-o", "yaml"]),
        secret_yaml(namespace, name, values, Scope::Strict).as_bytes(),
    )
    .expect("sealant seals")
    .stdout
}

/// Seals `values` as the strict `namespace/name` to the age `recipients` through the
/// `sealant` binary (`--recipient`, repeated), and returns the SealedSecret as YAML.
pub fn seal_to_recipients(
    recipients: &[&str],
    namespace: &str,
    name: &str,
    values: &[(&str, &str)],
) -> Vec<u8> {
    let mut cmd = Command::new(tools::sealant().expect("sealant binary"));
    for r in recipients {
        cmd.args(["--recipient", r]);
    }
    tools::run(
        cmd.args(["-o", "yaml"]),
        secret_yaml(namespace, name, values, Scope::Strict).as_bytes(),
    )
    .expect("sealant seals to age recipients")
    .stdout
}

/// `kubectl` with the control plane's admin kubeconfig.
pub fn kubectl(cp: &ControlPlane) -> Command {
    let mut cmd = Command::new(tools::kubectl().expect("kubectl"));
    cmd.arg("--kubeconfig").arg(&cp.admin_kubeconfig);
    cmd
}

/// `kubectl apply -f -` of `yaml`, as admin.
pub fn kubectl_apply(cp: &ControlPlane, yaml: &[u8]) {
    tools::run(kubectl(cp).args(["apply", "-f", "-"]), yaml).expect("kubectl apply");
}

/// A Secret's `data`, decoded as UTF-8 strings.
pub fn secret_values(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| {
            let text = String::from_utf8(v.0.clone()).expect("UTF-8 value");
            (k.clone(), text)
        })
        .collect()
}

/// `values` as the map [`secret_values`] returns.
pub fn expected(values: &[(&str, &str)]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Applies `deploy/rbac.yaml`'s Role and RoleBinding named `name`, moved from
/// `kube-system` into `namespace`: a test's controller keeps its keys (and its Lease,
/// its escrow ConfigMap) in the test's namespace, not in `kube-system`. The subject
/// stays the controller's ServiceAccount in `kube-system`. Fails if `deploy/rbac.yaml`
/// has no such pair.
pub async fn grant_in_namespace(cp: &ControlPlane, name: &str, namespace: &str) -> Result<()> {
    use serde::Deserialize as _;
    let mut out = String::new();
    let mut kinds = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(crate::sealant_controller::RBAC) {
        let mut value = serde_json::Value::deserialize(doc).context("deploy/rbac.yaml parses")?;
        if value["metadata"]["name"] != name || value["metadata"]["namespace"] != "kube-system" {
            continue;
        }
        kinds.push(value["kind"].as_str().unwrap_or_default().to_owned());
        value["metadata"]["namespace"] = namespace.into();
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&value)?);
    }
    kinds.sort();
    if kinds != ["Role", "RoleBinding"] {
        bail!("deploy/rbac.yaml has no Role and RoleBinding named {name} in kube-system");
    }
    crate::bitnami::apply_manifests(&cp.client().await?, &out)
        .await
        .with_context(|| format!("apply {name} in {namespace}"))
}
