//! GitOps health that tells the truth (issue 15): what Flux and Argo CD conclude from a
//! SealedSecret's status, judged by their own code on the harness's real control plane.
//!
//! - Flux judges custom resources with kstatus (`sigs.k8s.io/cli-utils`): the
//!   `kstatus` peer runs `status.Compute` on the object.
//! - Argo CD runs its built-in `health.lua` for `bitnami.com/SealedSecret`: the
//!   `argocd-health` peer runs that file, taken from the argo-cd module, in gopher-lua.
//!
//! Both read the object as the API server returns it. Each phase first waits for a
//! positive signal that the controller has (or, stopped, has not) processed the object
//! (its `observedGeneration`, its Secret), then asks both judges once.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use sealant_crds::SealedSecret;
use sealant_e2e::fixtures::{
    expected, key_and_cert, key_secret, kubectl_apply, seal, secret_values,
};
use sealant_e2e::peers::peers;
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{ControlPlane, TestNamespace, cluster, random_hex, record_timing, tools};
use sealant_keys::OffsetDateTime;

/// What a judge said.
#[derive(Debug, PartialEq)]
struct Verdict {
    status: String,
    message: String,
}

/// Runs the judge `peer` on `object` (its JSON on stdin).
fn judge(peer: &Path, object: &serde_json::Value) -> Verdict {
    let out = tools::run(&mut Command::new(peer), object.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{} on {object}: {e:#}", peer.display()));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON verdict");
    Verdict {
        status: v["status"].as_str().expect("status").to_owned(),
        message: v["message"].as_str().expect("message").to_owned(),
    }
}

/// What kstatus (Flux) and Argo CD say about `object`.
fn verdicts(object: &serde_json::Value) -> (Verdict, Verdict) {
    let peers = peers().expect("peers");
    (
        judge(&peers.kstatus, object),
        judge(&peers.argocd_health, object),
    )
}

/// The SealedSecrets of a namespace, untyped: exactly what the API server returns.
fn sealed_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<SealedSecret>(&()),
    )
}

async fn get(api: &Api<DynamicObject>, name: &str) -> serde_json::Value {
    serde_json::to_value(api.get(name).await.expect("get the SealedSecret")).expect("JSON")
}

/// The condition `type_` of `object`, if any.
fn condition<'a>(object: &'a serde_json::Value, type_: &str) -> Option<&'a serde_json::Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Waits until the controller has written the status of `name` for its current
/// generation with `Ready` as `ready`, and returns the object.
async fn processed(
    api: &Api<DynamicObject>,
    controller: &SealantController,
    name: &str,
    ready: &str,
) -> serde_json::Value {
    eventually(
        &format!("{name} processed with Ready={ready}"),
        controller,
        || async {
            let object = get(api, name).await;
            let current =
                object["status"]["observedGeneration"] == object["metadata"]["generation"];
            let ready_as = condition(&object, "Ready").is_some_and(|c| c["status"] == ready);
            (current && ready_as).then_some(object)
        },
    )
    .await
}

async fn start(cp: &ControlPlane, namespace: &str) -> SealantController {
    SealantController::start(cp, namespace, &[])
        .await
        .expect("sealant-controller")
}

#[tokio::test]
async fn kstatus_and_argo_cd_tell_new_unsealed_failed_edited_and_recovered_apart() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "health").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let sealed = sealed_api(&client, &ns.name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);

    // The controller makes its key, then stops: what follows is applied while no
    // controller runs.
    let first = start(cp, &ns.name).await;
    let cert = first.cert_pem().expect("cert");
    first.kill();
    let value = format!("v1-{}", random_hex(8));
    kubectl_apply(cp, &seal(&cert, &ns.name, "app", &[("password", &value)]));
    // Sealed to a key the controller does not have (yet).
    let (lost_key, lost_cert) = key_and_cert(OffsetDateTime::now_utc());
    let lost_value = format!("lost-{}", random_hex(8));
    kubectl_apply(
        cp,
        &seal(
            &lost_cert.to_pem(),
            &ns.name,
            "lost",
            &[("password", &lost_value)],
        ),
    );

    // New, not yet seen by any controller: no status at all (as with Bitnami's).
    // Argo CD says Progressing; kstatus cannot tell it from a finished object and says
    // Current (the gap the README documents: it lasts until the first pass).
    let new = get(&sealed, "app").await;
    assert_eq!(new.get("status"), None, "{new}");
    let (flux, argo) = verdicts(&new);
    assert_eq!(flux.status, "Current", "{flux:?}");
    assert_eq!(argo.status, "Progressing", "{argo:?}");

    // Unsealed: Current / Healthy.
    let started = Instant::now();
    let controller = start(cp, &ns.name).await;
    let app = processed(&sealed, &controller, "app", "True").await;
    record_timing(&format!(
        "gitops health: a SealedSecret applied while the controller was down was Ready \
         {:.2} s after the controller started",
        started.elapsed().as_secs_f64()
    ));
    let secret = secrets.get("app").await.expect("the Secret");
    assert_eq!(secret_values(&secret), expected(&[("password", &value)]));
    let (flux, argo) = verdicts(&app);
    assert_eq!(flux.status, "Current", "{flux:?}");
    assert_eq!(argo.status, "Healthy", "{argo:?}");
    assert_eq!(condition(&app, "Stalled"), None);
    assert_eq!(condition(&app, "Reconciling"), None);

    // Failed decryption: Failed / Degraded, naming the key, never the value.
    let lost = processed(&sealed, &controller, "lost", "False").await;
    let (flux, argo) = verdicts(&lost);
    assert_eq!(flux.status, "Failed", "{flux:?}");
    assert_eq!(argo.status, "Degraded", "{argo:?}");
    for message in [&flux.message, &argo.message] {
        assert!(
            message.contains("no key could decrypt secret (spec.encryptedData.password)"),
            "{message}"
        );
    }
    let stalled = condition(&lost, "Stalled").expect("Stalled");
    assert_eq!(
        (&stalled["status"], &stalled["reason"]),
        (&"True".into(), &"DecryptionFailed".into())
    );
    let status_text = lost["status"].to_string();
    assert!(
        !status_text.contains(&lost_value),
        "the status holds the value"
    );
    assert!(secrets.get_opt("lost").await.expect("get").is_none());

    // Spec edited and not yet processed: InProgress / Progressing, never a stale
    // Current, although Synced and Ready still say True for the old generation.
    controller.kill();
    let edited = format!("v2-{}", random_hex(8));
    kubectl_apply(cp, &seal(&cert, &ns.name, "app", &[("password", &edited)]));
    let stale = get(&sealed, "app").await;
    assert_eq!(stale["metadata"]["generation"], 2);
    assert_eq!(stale["status"]["observedGeneration"], 1);
    assert_eq!(condition(&stale, "Ready").expect("Ready")["status"], "True");
    let (flux, argo) = verdicts(&stale);
    assert_eq!(flux.status, "InProgress", "{flux:?}");
    assert!(
        flux.message
            .contains("generation is 2, but latest observed generation is 1"),
        "{flux:?}"
    );
    assert_eq!(argo.status, "Progressing", "{argo:?}");

    // Processed: Current / Healthy again, with the new value.
    let controller = start(cp, &ns.name).await;
    let app = processed(&sealed, &controller, "app", "True").await;
    assert_eq!(app["status"]["observedGeneration"], 2);
    let (flux, argo) = verdicts(&app);
    assert_eq!(flux.status, "Current", "{flux:?}");
    assert_eq!(argo.status, "Healthy", "{argo:?}");
    let secret = secrets.get("app").await.expect("the Secret");
    assert_eq!(secret_values(&secret), expected(&[("password", &edited)]));

    // Recovered after the key is restored: Current / Healthy, Stalled gone.
    secrets
        .create(
            &PostParams::default(),
            &key_secret(
                "restored-key",
                &lost_key.expose_pkcs1_pem(),
                &lost_cert.to_pem(),
            ),
        )
        .await
        .expect("restore the key");
    let lost = processed(&sealed, &controller, "lost", "True").await;
    let (flux, argo) = verdicts(&lost);
    assert_eq!(flux.status, "Current", "{flux:?}");
    assert_eq!(argo.status, "Healthy", "{argo:?}");
    assert_eq!(condition(&lost, "Stalled"), None);
    let secret = secrets.get("lost").await.expect("the Secret");
    assert_eq!(
        secret_values(&secret),
        expected(&[("password", &lost_value)])
    );

    // New and seen, but not yet unsealed because the API server refuses the Secret for
    // now (a quota of zero Secrets: 403, retried soon): Reconciling=True, which kstatus
    // reads as InProgress. Argo CD's check reads only Synced, which is False: Degraded.
    let quota: k8s_openapi::api::core::v1::ResourceQuota = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "no-secrets"}, "spec": {"hard": {"secrets": "0"}}}),
    )
    .expect("quota");
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(client.clone(), &ns.name);
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .expect("create the quota");
    kubectl_apply(cp, &seal(&cert, &ns.name, "waiting", &[("k", "v")]));
    let waiting = processed(&sealed, &controller, "waiting", "False").await;
    let reconciling = condition(&waiting, "Reconciling").expect("Reconciling");
    assert_eq!(
        (&reconciling["status"], &reconciling["reason"]),
        (&"True".into(), &"APIError".into()),
        "{waiting}"
    );
    assert_eq!(condition(&waiting, "Stalled"), None);
    let (flux, argo) = verdicts(&waiting);
    assert_eq!(flux.status, "InProgress", "{flux:?}");
    assert_eq!(argo.status, "Degraded", "{argo:?}");
    // The quota goes; the retry (5 s later) unseals it.
    quotas
        .delete("no-secrets", &Default::default())
        .await
        .expect("delete the quota");
    let waiting = processed(&sealed, &controller, "waiting", "True").await;
    let (flux, argo) = verdicts(&waiting);
    assert_eq!(flux.status, "Current", "{flux:?}");
    assert_eq!(argo.status, "Healthy", "{argo:?}");
    assert_eq!(condition(&waiting, "Reconciling"), None);

    // A restart over all three, now in sync, writes no status: their resourceVersions
    // stay put. The anchor: all proven in sync, then a later object unsealed.
    let names = ["app", "lost", "waiting"];
    let versions = || async {
        let mut v = Vec::new();
        for name in names {
            v.push(get(&sealed, name).await["metadata"]["resourceVersion"].clone());
        }
        v
    };
    let before = versions().await;
    controller.kill();
    let controller = start(cp, &ns.name).await;
    controller.wait_for_in_sync_skips(names.len()).await;
    kubectl_apply(cp, &seal(&cert, &ns.name, "later", &[("k", "v")]));
    processed(&sealed, &controller, "later", "True").await;
    let after = versions().await;
    assert_eq!(
        after, before,
        "a restart over in-sync objects wrote a status"
    );
    controller.check_running().expect("still running");
}

#[test]
fn kstatus_calls_a_sealed_secret_without_status_current_and_argo_cd_progressing() {
    // A new object has no status until a controller's first pass: kstatus has nothing
    // to tell it from a finished one; Argo CD's check wants observedGeneration.
    let object = serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "app", "generation": 1},
        "spec": {"encryptedData": {"password": "AgA="}},
    });
    let (flux, argo) = verdicts(&object);
    assert_eq!(flux.status, "Current", "{flux:?}");
    assert_eq!(argo.status, "Progressing", "{argo:?}");
    assert_eq!(flux.message, "Resource is current");
}

#[test]
fn argocd_health_peer_gives_argo_cds_own_expected_results_for_sealed_secret() {
    // Argo CD's own test cases for this health.lua (health_test.yaml and testdata/,
    // embedded in the peer from the same module): the peer runs the script as Argo CD
    // does, or these differ.
    let peer = &peers().expect("peers").argocd_health;
    let out = tools::run(Command::new(peer).arg("--argo-tests"), b"").expect("--argo-tests");
    let files: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&out.stdout).expect("a JSON object of files");
    let suite: serde_json::Value =
        serde_yaml_ng::from_str(&files["health_test.yaml"]).expect("health_test.yaml");
    let cases = suite["tests"].as_array().expect("tests");
    assert!(cases.len() >= 6, "{} cases", cases.len());
    for case in cases {
        let path = case["inputPath"].as_str().expect("inputPath");
        let object: serde_json::Value =
            serde_yaml_ng::from_str(&files[path]).unwrap_or_else(|e| panic!("{path}: {e}"));
        let want = &case["healthStatus"];
        assert_eq!(
            judge(peer, &object),
            Verdict {
                status: want["status"].as_str().expect("status").to_owned(),
                message: want["message"].as_str().unwrap_or_default().to_owned(),
            },
            "{path}"
        );
    }
}
