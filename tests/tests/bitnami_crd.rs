//! sealant-controller under **Bitnami's** CRD, as a user who keeps Bitnami's chart (and
//! so its CRD) and swaps only the controller runs it.
//!
//! Bitnami's CRD has a structural status schema of its own (`conditions` and
//! `observedGeneration`), so the API server prunes every status field it does not
//! know, such as sealant's `keyFingerprints`. This test replaces the harness's CRD with
//! the one in Bitnami's chart (from its Go module, pinned by `tests/peers/build.sh`)
//! and shows that what sealant adds still works:
//!
//! - `Synced` and `observedGeneration` as Bitnami writes them;
//! - the in-sync proof (a `sealant.dev/InSyncProof` condition, which the schema
//!   keeps), so a restart over in-sync objects decrypts nothing;
//! - `sealant keys list`, which counts the SealedSecrets that need each key from the
//!   keys that proof names;
//! - the escrow bundle (a ConfigMap: no CRD involved).

use std::process::Command;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use sealant_crds::SealedSecret;
use sealant_crds::proof::CONDITION_IN_SYNC_PROOF;
use sealant_e2e::fixtures::{
    expected, grant_in_namespace, kubectl, kubectl_apply, seal, secret_values,
};
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{TestNamespace, cluster, tools};
use sealant_keys::AgeIdentity;

const N: usize = 3;

#[tokio::test]
async fn status_in_sync_proof_key_inventory_and_escrow_work_under_bitnamis_crd() {
    let cp = cluster().expect("control plane");
    // Bitnami's CRD in place of ours (same name), as its chart installs it.
    tools::run(
        kubectl(cp)
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(&cp.peers.bitnami_crd),
        b"",
    )
    .expect("apply Bitnami's CRD");
    tools::run(
        kubectl(cp).args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/sealedsecrets.bitnami.com",
        ]),
        b"",
    )
    .expect("Bitnami's CRD is established");
    let crd = tools::run(
        kubectl(cp).args(["get", "crd", "sealedsecrets.bitnami.com", "-o", "json"]),
        b"",
    )
    .expect("read the CRD");
    let crd = String::from_utf8_lossy(&crd.stdout).into_owned();
    assert!(
        !crd.contains("keyFingerprints"),
        "the CRD in place is Bitnami's, which knows no keyFingerprints"
    );

    let ns = TestNamespace::new(cp, "bitnami-crd")
        .await
        .expect("namespace");
    grant_in_namespace(cp, "sealant-escrow", &ns.name)
        .await
        .expect("grant sealant-escrow");
    let identity = AgeIdentity::generate();
    let escrow = format!("--escrow-recipient={}", identity.recipient());
    let first = SealantController::start(cp, &ns.name, &[&escrow])
        .await
        .expect("sealant-controller");
    let cert = first.cert_pem().expect("cert");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);

    let mut all = Vec::new();
    for i in 0..N {
        all.extend(seal(
            &cert,
            &ns.name,
            &format!("s{i}"),
            &[("k", &format!("v{i}"))],
        ));
    }
    kubectl_apply(cp, &all);
    for i in 0..N {
        let name = format!("s{i}");
        let secret = eventually(&format!("Secret {name}"), &first, || async {
            secrets.get_opt(&name).await.ok().flatten()
        })
        .await;
        assert_eq!(secret_values(&secret), expected(&[("k", &format!("v{i}"))]));
        assert_eq!(
            secret.metadata.annotations, None,
            "the Secret carries nothing the template did not ask for"
        );
        // Synced and the proof, as written; keyFingerprints pruned by the schema.
        let status = eventually(&format!("{name} status with its proof"), &first, || async {
            let s = sealed.get_opt(&name).await.ok().flatten()?;
            let status = s.status?;
            status.in_sync_proof()?;
            Some(status)
        })
        .await;
        let conditions = status.conditions.clone().expect("conditions");
        assert_eq!(
            (conditions[0].type_.as_str(), conditions[0].status.as_str()),
            ("Synced", "True")
        );
        assert_eq!(conditions[1].type_, CONDITION_IN_SYNC_PROOF);
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(
            status.key_fingerprints, None,
            "Bitnami's schema prunes keyFingerprints"
        );
        assert!(status.keys_used().is_some(), "the proof names the key");
    }
    assert!(
        first
            .metric("sealant_controller_decryptions_total")
            .expect("metric")
            >= N as f64
    );

    // The key inventory reads the keys from the proof.
    let list = tools::run(
        Command::new(tools::sealant().expect("sealant"))
            .args([
                "keys",
                "list",
                "-o",
                "json",
                "--controller-namespace",
                &ns.name,
            ])
            .arg("--kubeconfig")
            .arg(&cp.admin_kubeconfig),
        b"",
    )
    .expect("sealant keys list");
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON");
    let counted: u64 = list["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["sealedSecrets"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, N as u64, "{list}");
    assert!(
        !list["unknown"]
            .as_array()
            .expect("unknown")
            .iter()
            .any(|o| o
                .as_str()
                .is_some_and(|o| o.starts_with(&format!("{}/", ns.name)))),
        "none of ours is unknown: {list}"
    );

    // Escrow: the bundle exists and covers the key.
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    eventually("the escrow bundle", &first, || async {
        maps.get_opt("sealant-escrow-bundle")
            .await
            .ok()
            .flatten()
            .and_then(|m| m.data)
            .filter(|d| d.contains_key("bundle.age"))
    })
    .await;
    first.kill();

    // A restart over in-sync objects decrypts nothing: the proof survived the schema.
    let second = SealantController::start(cp, &ns.name, &[&escrow])
        .await
        .expect("sealant-controller again");
    eventually("every SealedSecret checked", &second, || async {
        let skips = second
            .metric("sealant_controller_in_sync_skips_total")
            .ok()?;
        (skips >= N as f64).then_some(())
    })
    .await;
    assert_eq!(
        second
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        0.0,
        "a restart under Bitnami's CRD does no RSA work"
    );
    second.check_running().expect("still running");
}
