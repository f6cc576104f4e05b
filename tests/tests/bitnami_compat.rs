//! Compatibility with the real Bitnami peers, in both directions (docs/design.md, testing
//! ladder, rung 5): Bitnami's `kubeseal` and controller v0.36.6 against our `sealant`,
//! on the harness's real control plane.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use sealant_crds::SealedSecret;
use sealant_e2e::bitnami::{NAME, NAMESPACE};
use sealant_e2e::fixtures::{expected, key_and_cert, secret_values, secret_yaml};
use sealant_e2e::{TestNamespace, cluster, peers::peers, tools};
use sealant_keys::{OffsetDateTime, Scope};

/// The decoded `data` of a Secret printed as YAML.
fn yaml_secret_values(yaml: &[u8]) -> BTreeMap<String, String> {
    let secret: Secret = serde_yaml_ng::from_slice(yaml)
        .unwrap_or_else(|e| panic!("not a Secret ({e}):\n{}", String::from_utf8_lossy(yaml)));
    secret_values(&secret)
}

fn sealant() -> Command {
    Command::new(tools::sealant().expect("sealant binary"))
}

fn kubeseal(home: &Path) -> Command {
    let mut cmd = Command::new(&peers().expect("peers").kubeseal);
    // No ambient kubeconfig: only what each test passes.
    cmd.env("HOME", home).env_remove("KUBECONFIG");
    cmd
}

const VALUES: &[(&str, &str)] = &[
    ("username", "admin"),
    ("password", "s3cr3t: with \"quotes\""),
];

#[test]
fn kubeseal_sealed_values_are_recovered_by_sealant_recovery_unseal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, cert) = key_and_cert(OffsetDateTime::now_utc());
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.to_pem()).expect("write cert");
    std::fs::write(&key_path, key.expose_pkcs1_pem().as_bytes()).expect("write key");

    for scope in Scope::ALL {
        let input = secret_yaml("apps", "db", VALUES, scope);
        let sealed = tools::run(
            kubeseal(dir.path())
                .arg("--cert")
                .arg(&cert_path)
                .args(["-o", "yaml"]),
            input.as_bytes(),
        )
        .expect("kubeseal seals");
        let unsealed = tools::run(
            sealant()
                .args(["--recovery-unseal", "--recovery-private-key"])
                .arg(&key_path)
                .args(["-o", "yaml"]),
            &sealed.stdout,
        )
        .unwrap_or_else(|e| panic!("sealant recovers kubeseal's {scope} output: {e:#}"));
        assert_eq!(
            yaml_secret_values(&unsealed.stdout),
            expected(VALUES),
            "{scope}"
        );
    }
}

#[tokio::test]
async fn bitnami_controller_unseals_what_sealant_sealed_in_every_scope() {
    let cp = cluster().expect("control plane");
    let bitnami = cp.bitnami().expect("Bitnami controller");
    let ns = TestNamespace::new(cp, "bitnami-unseals")
        .await
        .expect("namespace");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, bitnami.cert_pem().expect("cert")).expect("write cert");

    let client = cp.client().await.expect("client");
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    let scopes = Scope::ALL;
    for scope in scopes {
        let input = secret_yaml(&ns.name, &format!("db-{scope}"), VALUES, scope);
        let out = tools::run(
            sealant().arg("--cert").arg(&cert_path).args(["-o", "yaml"]),
            input.as_bytes(),
        )
        .expect("sealant seals");
        let sealed: SealedSecret = serde_yaml_ng::from_slice(&out.stdout).expect("SealedSecret");
        sealed_api
            .create(&PostParams::default(), &sealed)
            .await
            .expect("create SealedSecret");
    }

    let secrets: Api<Secret> = Api::namespaced(client, &ns.name);
    for scope in scopes {
        let name = format!("db-{scope}");
        let mut secret = None;
        for _ in 0..300 {
            secret = secrets.get_opt(&name).await.expect("get Secret");
            if secret.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let secret = secret.unwrap_or_else(|| {
            panic!("the Bitnami controller produced no Secret {name} within 30 s")
        });
        assert_eq!(secret_values(&secret), expected(VALUES), "{scope}");
        let owner = &secret.metadata.owner_references.expect("ownerReferences")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("SealedSecret", name.as_str(), Some(true))
        );

        // Bitnami's controller writes status through our CRD's status subresource.
        let mut synced = None;
        for _ in 0..100 {
            let status = sealed_api
                .get(&name)
                .await
                .expect("get SealedSecret")
                .status;
            synced = status
                .and_then(|s| s.conditions)
                .and_then(|c| c.into_iter().find(|c| c.type_ == "Synced"));
            if synced.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let synced = synced.unwrap_or_else(|| panic!("{name} never got a Synced condition"));
        assert_eq!(synced.status, "True", "{name}: {synced:?}");
    }
}

#[tokio::test]
async fn sealant_fetches_the_bitnami_cert_through_the_service_proxy_with_default_flags() {
    let cp = cluster().expect("control plane");
    let bitnami = cp.bitnami().expect("Bitnami controller");
    let ns = TestNamespace::new(cp, "fetch-cert")
        .await
        .expect("namespace");
    // An ordinary user: only what system:authenticated is granted.
    let kubeconfig = cp
        .new_service_account_kubeconfig(&ns.name, "developer")
        .await
        .expect("kubeconfig");
    let served = bitnami.cert_pem().expect("cert from the controller");

    let ours = tools::run(
        sealant()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--controller-namespace",
                NAMESPACE,
                "--controller-name",
                NAME,
            ])
            .arg("--fetch-cert"),
        b"",
    )
    .expect("sealant --fetch-cert");
    assert_eq!(String::from_utf8_lossy(&ours.stdout), served);

    let home = tempfile::tempdir().expect("tempdir");
    let theirs = tools::run(
        kubeseal(home.path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--controller-namespace",
                NAMESPACE,
                "--controller-name",
                NAME,
            ])
            .arg("--fetch-cert"),
        b"",
    )
    .expect("kubeseal --fetch-cert");
    assert_eq!(
        ours.stdout, theirs.stdout,
        "sealant and kubeseal fetch the same cert"
    );

    // And sealing without --cert fetches it the same way.
    let sealed = tools::run(
        sealant()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--controller-namespace",
                NAMESPACE,
                "--controller-name",
                NAME,
            ])
            .args(["-o", "yaml"]),
        secret_yaml(&ns.name, "fetched", VALUES, Scope::Strict).as_bytes(),
    )
    .expect("sealant seals with the fetched cert");
    let sealed: SealedSecret = serde_yaml_ng::from_slice(&sealed.stdout).expect("SealedSecret");
    assert_eq!(sealed.spec.encrypted_data.len(), VALUES.len());
}

#[tokio::test]
async fn sealant_recovery_unseal_reads_the_bitnami_controllers_key_backup() {
    let cp = cluster().expect("control plane");
    let bitnami = cp.bitnami().expect("Bitnami controller");
    let ns = TestNamespace::new(cp, "recovery").await.expect("namespace");
    let dir = tempfile::tempdir().expect("tempdir");

    // The backup exactly as Bitnami's docs tell users to take it.
    let backup = tools::run(
        Command::new(tools::kubectl().expect("kubectl"))
            .arg("--kubeconfig")
            .arg(&cp.admin_kubeconfig)
            .args(["get", "secret", "-n", NAMESPACE])
            .args([
                "-l",
                "sealedsecrets.bitnami.com/sealed-secrets-key",
                "-o",
                "yaml",
            ]),
        b"",
    )
    .expect("kubectl get secret -l ... -o yaml");
    let backup_path = dir.path().join("main.key");
    std::fs::write(&backup_path, &backup.stdout).expect("write backup");
    assert!(
        String::from_utf8_lossy(&backup.stdout).contains("kubernetes.io/tls"),
        "the backup holds the controller's key Secrets"
    );

    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, bitnami.cert_pem().expect("cert")).expect("write cert");
    let sealed = tools::run(
        kubeseal(dir.path())
            .arg("--cert")
            .arg(&cert_path)
            .args(["-o", "yaml"]),
        secret_yaml(&ns.name, "db", VALUES, Scope::Strict).as_bytes(),
    )
    .expect("kubeseal seals with the controller's cert");
    let unsealed = tools::run(
        sealant()
            .args(["--recovery-unseal", "--recovery-private-key"])
            .arg(&backup_path)
            .args(["-o", "yaml"]),
        &sealed.stdout,
    )
    .expect("sealant --recovery-unseal with the backup");
    assert_eq!(yaml_secret_values(&unsealed.stdout), expected(VALUES));
}
