//! `sealant-controller`'s deployment end to end, on the harness's real control plane:
//! `deploy/` applies with `kubectl`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sealant_e2e::{ControlPlane, cluster, tools};

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn kubectl(cp: &ControlPlane) -> Command {
    let mut cmd = Command::new(tools::kubectl().expect("kubectl"));
    cmd.arg("--kubeconfig").arg(&cp.admin_kubeconfig);
    cmd
}

#[test]
fn deploy_crd_is_a_copy_of_the_generated_crd() {
    let generated = std::fs::read_to_string(repo_path("crds/sealedsecret.yaml")).expect("crds/");
    let deployed = std::fs::read_to_string(repo_path("deploy/crd.yaml")).expect("deploy/");
    assert!(
        generated == deployed,
        "deploy/crd.yaml differs from crds/sealedsecret.yaml; run \
         `cp crds/sealedsecret.yaml deploy/crd.yaml`"
    );
}

#[tokio::test]
async fn deploy_manifests_apply_to_the_control_plane_with_kubectl() {
    let cp = cluster().expect("control plane");
    let out = tools::run(
        kubectl(cp).arg("apply").arg("-k").arg(repo_path("deploy")),
        b"",
    )
    .expect("kubectl apply -k deploy/");
    let text = String::from_utf8_lossy(&out.stdout);
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/sealedsecrets.bitnami.com",
        "clusterrole.rbac.authorization.k8s.io/secrets-unsealer",
        "role.rbac.authorization.k8s.io/sealed-secrets-key-admin",
        "role.rbac.authorization.k8s.io/sealed-secrets-service-proxier",
        "serviceaccount/sealed-secrets-controller",
        "deployment.apps/sealed-secrets-controller",
        "service/sealed-secrets-controller",
    ] {
        assert!(text.contains(object), "{object} not applied:\n{text}");
    }
    // The objects are really there (not a dry run), with the names the CLI expects.
    let out = tools::run(
        kubectl(cp).args([
            "-n",
            "kube-system",
            "get",
            "service/sealed-secrets-controller",
            "-o",
            "jsonpath={.spec.ports[0].name}:{.spec.ports[0].port}",
        ]),
        b"",
    )
    .expect("kubectl get service");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "http:8080");
}
