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
//!
//! It also runs the controller against a SealedSecret that only Bitnami's CRD lets in
//! (`spec.template.metadata.creationTimestamp: garbage`, which sealant's own CRD
//! refuses): that object is reported on itself, and every other SealedSecret is
//! unsealed, before and after a restart.

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

/// Bitnami's CRD in place of ours (same name), as its chart installs it.
fn install_bitnami_crd(cp: &sealant_e2e::ControlPlane) {
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
}

#[tokio::test]
async fn status_in_sync_proof_key_inventory_and_escrow_work_under_bitnamis_crd() {
    let cp = cluster().expect("control plane");
    install_bitnami_crd(cp);
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
        // Ready, for kstatus (Flux), survives the schema too.
        assert!(
            conditions
                .iter()
                .any(|c| (c.type_.as_str(), c.status.as_str()) == ("Ready", "True")),
            "{conditions:?}"
        );
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
    second.wait_for_in_sync_skips(N).await;
    assert_eq!(
        second
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        0.0,
        "a restart under Bitnami's CRD does no RSA work"
    );
    second.check_running().expect("still running");
}

#[tokio::test]
async fn a_sealed_secret_no_reader_can_decode_is_reported_alone_and_never_stops_the_others() {
    let cp = cluster().expect("control plane");
    install_bitnami_crd(cp);
    let ns = TestNamespace::new(cp, "poisoned").await.expect("namespace");
    let first = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let cert = first.cert_pem().expect("cert");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &kube::api::ApiResource::erase::<SealedSecret>(&()),
    );

    // The poisoned object: valid ciphertext, template metadata no decoder accepts.
    let poisoned =
        String::from_utf8(seal(&cert, &ns.name, "poisoned", &[("k", "v")])).expect("UTF-8");
    let mut poisoned: serde_json::Value = serde_yaml_ng::from_str(&poisoned).expect("YAML");
    poisoned["spec"]["template"]["metadata"]["creationTimestamp"] = "garbage".into();
    kubectl_apply(
        cp,
        serde_json::to_string(&poisoned).expect("JSON").as_bytes(),
    );
    kubectl_apply(cp, &seal(&cert, &ns.name, "good-1", &[("k", "v1")]));

    let wait_secret = |name: &'static str, value: &'static str| {
        let secrets = secrets.clone();
        async move {
            let s = secrets.get_opt(name).await.ok().flatten()?;
            (secret_values(&s) == expected(&[("k", value)])).then_some(())
        }
    };
    eventually("good-1 unsealed beside the poisoned one", &first, || {
        wait_secret("good-1", "v1")
    })
    .await;
    // The poisoned one reports on itself, naming the field (read untyped: it cannot
    // be decoded as a SealedSecret, which is the point).
    let conditions = eventually("the poisoned object's Synced=False", &first, || async {
        let o = raw.get_opt("poisoned").await.ok().flatten()?;
        let conditions = o.data.get("status")?.get("conditions")?.as_array()?.clone();
        let c = conditions.first()?;
        (c["type"] == "Synced" && c["status"] == "False").then_some(conditions)
    })
    .await;
    let message = conditions[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.template.metadata"), "{message}");
    // Stalled (kstatus: Failed), with the same message.
    assert!(
        conditions.iter().any(|c| c["type"] == "Stalled"
            && c["status"] == "True"
            && c["reason"] == "Undecodable"
            && c["message"] == message),
        "{conditions:?}"
    );
    assert!(
        secrets.get_opt("poisoned").await.expect("get").is_none(),
        "the poisoned object made no Secret"
    );
    let log = first.log().expect("log");
    assert!(log.contains("cannot be read"), "logged by name");
    assert!(!log.contains("garbage"), "the object's body is not logged");

    // A restart lists everything again, the poisoned object included: the others are
    // still unsealed, one applied while the controller was down among them.
    first.kill();
    kubectl_apply(cp, &seal(&cert, &ns.name, "good-2", &[("k", "v2")]));
    let second = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller again");
    eventually("good-2 unsealed after the restart", &second, || {
        wait_secret("good-2", "v2")
    })
    .await;
    eventually("good-1 still in sync", &second, || async {
        let s = sealed.get_opt("good-1").await.ok().flatten()?;
        let c = s.status?.conditions?.first()?.clone();
        (c.status == "True").then_some(())
    })
    .await;
    second.check_running().expect("still running");
}
