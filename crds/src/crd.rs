//! The CustomResourceDefinition, generated from the Rust types so the two cannot
//! disagree, and committed as `crds/sealedsecret.yaml` so that reviewers and
//! `kubectl apply` see exactly what the code declares.
//!
//! The generated YAML is deterministic (keys sorted at every level), so the drift test
//! can compare it byte for byte with the committed file. Regenerate the file with
//! `cargo run -p sealant-crds --example gen-crd`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt as _;

use crate::SealedSecret;
use crate::format::{sorted_value, yaml_text};

/// The path of the committed CRD, relative to the workspace root.
pub const CRD_PATH: &str = "crds/sealedsecret.yaml";

/// The `sealedsecrets.bitnami.com` CRD: `bitnami.com/v1alpha1`, kind `SealedSecret`,
/// namespaced, with the status subresource and Bitnami's printer columns.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = SealedSecret::crd();
    // kube-derive leaves listKind to the apiserver's default; Bitnami's CRD spells it
    // out, and so do we, so that `kubectl diff` against either shows nothing.
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    crd
}

/// [`crd()`] as YAML: keys sorted, starting with `---`, ending with one newline. The
/// same on every run and every machine.
pub fn crd_yaml() -> String {
    yaml_text(&sorted_value(&crd()))
}
