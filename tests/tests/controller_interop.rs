//! `sealant-controller` with the real Bitnami controller and the CLI, on a control
//! plane of its own (the controllers share `kube-system`'s keys and the Service
//! `kube-system/sealed-secrets-controller`, so this is one ordered test):
//!
//! 1. the Bitnami controller writes its key, and stops;
//! 2. our controller loads that key, unseals what was sealed with Bitnami's cert, and
//!    serves `sealant --fetch-cert`, `--validate` and `--re-encrypt` through the
//!    service proxy with the CLI's default flags;
//! 3. our controller renews its key (SIGUSR1), and stops;
//! 4. a new Bitnami controller loads the key ours wrote, and unseals with it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use sealant_e2e::fixtures::{kubectl_apply, seal};
use sealant_e2e::sealant_controller::SealantController;
use sealant_e2e::{TestNamespace, bitnami, cluster, tools};

fn sealant(kubeconfig: &Path) -> Command {
    let mut cmd = Command::new(tools::sealant().expect("sealant binary"));
    cmd.env("KUBECONFIG", kubeconfig);
    cmd
}

/// Waits up to 30 s for the Secret `name` to hold `k: value`.
async fn wait_for_value(api: &Api<Secret>, name: &str, value: &str) {
    let start = Instant::now();
    loop {
        if let Ok(Some(secret)) = api.get_opt(name).await {
            let data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            if data.get("k").map(Vec::as_slice) == Some(value.as_bytes()) {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for Secret {name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn keys_load_both_ways_with_the_bitnami_controller_and_the_cli_works_through_the_proxy() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "interop").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client, &ns.name);
    let user = cp
        .new_service_account_kubeconfig(&ns.name, "developer")
        .await
        .expect("an ordinary user's kubeconfig");

    // 1. Bitnami writes the first key in kube-system.
    let theirs = cp.bitnami().expect("Bitnami controller");
    let bitnami_cert = theirs.cert_pem().expect("Bitnami's cert");
    theirs.kill();

    // 2. Ours loads it: same cert, and it unseals what Bitnami's cert sealed.
    let additional = format!("--additional-namespaces={}", ns.name);
    let ours = SealantController::start_on_port(cp, bitnami::NAMESPACE, 8080, &[&additional])
        .await
        .expect("sealant-controller in kube-system");
    assert_eq!(
        ours.cert_pem().expect("our cert"),
        bitnami_cert,
        "sealant-controller serves the key the Bitnami controller wrote"
    );
    let sealed_by_bitnami_cert = seal(&bitnami_cert, &ns.name, "from-bitnami", &[("k", "v1")]);
    kubectl_apply(cp, &sealed_by_bitnami_cert);
    wait_for_value(&secrets, "from-bitnami", "v1").await;

    // The CLI, with its default controller namespace and name, through the proxy.
    let fetched = tools::run(sealant(&user).arg("--fetch-cert"), b"").expect("--fetch-cert");
    assert_eq!(String::from_utf8_lossy(&fetched.stdout), bitnami_cert);
    tools::run(sealant(&user).arg("--validate"), &sealed_by_bitnami_cert)
        .expect("--validate accepts a SealedSecret our controller can open");
    let wrong = String::from_utf8(seal(&bitnami_cert, "elsewhere", "x", &[("k", "v")]))
        .expect("UTF-8")
        .replace("namespace: elsewhere", &format!("namespace: {}", ns.name));
    let refused = tools::run_unchecked(sealant(&user).arg("--validate"), wrong.as_bytes())
        .expect("run --validate");
    assert!(
        !refused.status.success(),
        "--validate refuses a SealedSecret moved to another namespace"
    );

    // 3. Ours renews (SIGUSR1): a key Secret written by sealant is now the newest.
    ours.renew_key().expect("SIGUSR1");
    let start = Instant::now();
    let our_cert = loop {
        let cert = ours.cert_pem().expect("our cert");
        if cert != bitnami_cert {
            break cert;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no renewal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let re_encrypted = tools::run(
        sealant(&user).args(["--re-encrypt", "-o", "yaml"]),
        &sealed_by_bitnami_cert,
    )
    .expect("--re-encrypt");
    assert_ne!(re_encrypted.stdout, sealed_by_bitnami_cert);
    tools::run(sealant(&user).arg("--validate"), &re_encrypted.stdout)
        .expect("the re-encrypted SealedSecret validates");
    ours.kill();

    // 4. A new Bitnami controller loads the key ours wrote, and unseals with it.
    let again = bitnami::start_another(cp)
        .await
        .expect("the Bitnami controller again");
    assert_eq!(
        again.cert_pem().expect("Bitnami's cert"),
        our_cert,
        "the Bitnami controller serves the key sealant-controller wrote"
    );
    kubectl_apply(
        cp,
        &seal(&our_cert, &ns.name, "from-sealant", &[("k", "v2")]),
    );
    wait_for_value(&secrets, "from-sealant", "v2").await;
    again.kill();
}
