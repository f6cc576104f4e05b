//! `sealant-controller --escrow-recipient` on the harness's real control plane: the
//! controller keeps every active key, encrypted to an escrow recipient, in the
//! ConfigMap `sealant-escrow-bundle` of its namespace and serves the same bundle at
//! `/v1/escrow-bundle`; the bundle follows renewal and retirement, opens with the
//! escrow identity to a List of exactly the active key Secrets, and a restart over
//! unchanged keys does not rewrite the ConfigMap.
//!
//! The controller runs with `deploy/rbac.yaml`'s rights only. Each test's controller
//! keeps its keys (and so its ConfigMap) in the test's namespace, so the escrow Role
//! and RoleBinding of `deploy/rbac.yaml` are applied there (moved from
//! `kube-system`, subject unchanged): a missing grant fails the test.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use sealant_crds::key_secret::{parse_key_list, read_rsa};
use sealant_e2e::control_plane::http_get;
use sealant_e2e::fixtures::grant_in_namespace;
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{TestNamespace, cluster};
use sealant_keys::{AgeIdentity, bundle};

/// The key Secret label selector, as Bitnami and sealant write it.
const KEY_SELECTOR: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";
const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
const CONFIG_MAP: &str = "sealant-escrow-bundle";
const FINGERPRINTS: &str = "sealant.dev/escrow-fingerprints";
const RECIPIENTS: &str = "sealant.dev/escrow-recipients";
const BUNDLE_KEYS_METRIC: &str = "sealant_controller_escrow_bundle_keys";

/// The active key Secrets' fingerprints, newest (by creation) first.
async fn active_fingerprints(secrets: &Api<Secret>) -> Vec<String> {
    let mut list = secrets
        .list(&ListParams::default().labels(KEY_SELECTOR))
        .await
        .expect("list key Secrets")
        .items;
    list.sort_by_key(|s| std::cmp::Reverse(s.metadata.creation_timestamp.clone()));
    list.iter().map(fingerprint).collect()
}

fn fingerprint(secret: &Secret) -> String {
    read_rsa(secret)
        .expect("a key Secret")
        .0
        .fingerprint()
        .as_str()
        .to_owned()
}

/// Opens an escrow bundle with `identity`: the fingerprints of the key Secrets in it,
/// in order, after checking each is an active key Secret with its name.
fn open(identity: &AgeIdentity, armored: &str) -> Vec<String> {
    assert!(
        armored.starts_with(bundle::ARMOR_BEGIN),
        "armored: {armored:.60}"
    );
    let plain = bundle::open(std::slice::from_ref(identity), armored.as_bytes())
        .expect("the escrow identity opens the bundle");
    let text = std::str::from_utf8(plain.expose_secret()).expect("UTF-8");
    let secrets = parse_key_list(text).expect("a List of key Secrets");
    for s in &secrets {
        assert!(s.metadata.name.is_some(), "named as loaded");
        assert!(s.metadata.resource_version.is_none(), "trimmed for restore");
        assert_eq!(
            s.metadata.labels.as_ref().and_then(|l| l.get(KEY_LABEL)),
            Some(&"active".to_owned())
        );
    }
    secrets.iter().map(fingerprint).collect()
}

/// The ConfigMap's fingerprints annotation, split.
fn annotated(cm: &ConfigMap) -> Vec<String> {
    cm.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(FINGERPRINTS))
        .map(|f| f.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn bundle_of(cm: &ConfigMap) -> &str {
    cm.data
        .as_ref()
        .and_then(|d| d.get("bundle.age"))
        .expect("data.bundle.age")
}

/// Renews `controller`'s key (SIGUSR1) and waits for the second active key; returns
/// the active fingerprints, newest first. Creation times have a resolution of one
/// second: it renews only once the clock has passed the first key's second, so
/// "newest" is well defined.
async fn renew(controller: &SealantController, secrets: &Api<Secret>) -> Vec<String> {
    let first_created = secrets
        .list(&ListParams::default().labels(KEY_SELECTOR))
        .await
        .expect("list")
        .items
        .iter()
        .filter_map(|s| {
            s.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
        })
        .max()
        .expect("the first key's creation time");
    while k8s_openapi::jiff::Timestamp::now().as_second() <= first_created {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    controller.renew_key().expect("SIGUSR1");
    eventually("a second key", controller, || async {
        let f = active_fingerprints(secrets).await;
        (f.len() == 2).then_some(f)
    })
    .await
}

/// Waits until the ConfigMap's annotation lists exactly `want`.
async fn configmap_covering(
    api: &Api<ConfigMap>,
    controller: &SealantController,
    want: &[String],
) -> ConfigMap {
    eventually(
        &format!("ConfigMap {CONFIG_MAP} covering {want:?}"),
        controller,
        || async {
            let cm = api.get_opt(CONFIG_MAP).await.ok().flatten()?;
            (annotated(&cm) == want).then_some(cm)
        },
    )
    .await
}

/// Waits until `/v1/escrow-bundle` opens to exactly `want`.
async fn endpoint_covering(
    controller: &SealantController,
    identity: &AgeIdentity,
    want: &[String],
) {
    eventually(
        "/v1/escrow-bundle covering the keys",
        controller,
        || async {
            let (code, body) = http_get(controller.addr, "/v1/escrow-bundle").ok()?;
            (code == 200 && open(identity, &body) == want).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn escrow_bundle_covers_the_active_keys_follows_renewal_and_retirement_and_survives_restart_unwritten()
 {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "escrow").await.expect("namespace");
    grant_in_namespace(cp, "sealant-escrow", &ns.name)
        .await
        .expect("grant sealant-escrow");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let identity = AgeIdentity::generate();
    let other = AgeIdentity::generate();
    let flags = [
        format!("--escrow-recipient={}", identity.recipient()),
        format!("--escrow-recipient={}", other.recipient()),
    ];
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let controller = SealantController::start(cp, &ns.name, &args)
        .await
        .expect("sealant-controller");

    // Start-up: the first key is escrowed.
    let first = active_fingerprints(&secrets).await;
    assert_eq!(first.len(), 1);
    let cm = configmap_covering(&configmaps, &controller, &first).await;
    assert_eq!(open(&identity, bundle_of(&cm)), first);
    assert_eq!(
        open(&other, bundle_of(&cm)),
        first,
        "any recipient opens it"
    );
    let annotations = cm.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations[RECIPIENTS],
        format!("{},{}", identity.recipient(), other.recipient())
    );
    assert_eq!(
        cm.metadata.labels.clone().unwrap_or_default(),
        BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_owned(),
            "sealant-controller".to_owned()
        )])
    );
    endpoint_covering(&controller, &identity, &first).await;
    eventually("the escrow metric", &controller, || async {
        (controller.metric(BUNDLE_KEYS_METRIC).ok()? == 1.0).then_some(())
    })
    .await;

    // Renewal: the new key joins, newest first, in the ConfigMap and the endpoint.
    let renewed = renew(&controller, &secrets).await;
    assert_eq!(renewed[1], first[0]);
    let cm = configmap_covering(&configmaps, &controller, &renewed).await;
    assert_eq!(open(&identity, bundle_of(&cm)), renewed);
    endpoint_covering(&controller, &identity, &renewed).await;

    // Retirement (a relabelled key Secret): the old key leaves the bundle.
    let old = secrets
        .list(&ListParams::default().labels(KEY_SELECTOR))
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|s| fingerprint(s) == first[0])
        .expect("the first key Secret");
    let name = old.metadata.name.clone().expect("name");
    secrets
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {KEY_LABEL: "retired"}}})),
        )
        .await
        .expect("retire the first key");
    let current = vec![renewed[0].clone()];
    let cm = configmap_covering(&configmaps, &controller, &current).await;
    assert_eq!(open(&identity, bundle_of(&cm)), current);
    endpoint_covering(&controller, &identity, &current).await;
    let written = cm
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");

    // Restart over unchanged keys: the new process builds its own bundle (new
    // ciphertext), serves it, finds the ConfigMap current, and does not rewrite it.
    drop(controller);
    let restarted = SealantController::start(cp, &ns.name, &args)
        .await
        .expect("sealant-controller again");
    endpoint_covering(&restarted, &identity, &current).await;
    eventually(
        "the restarted leader checked the ConfigMap",
        &restarted,
        || async { (restarted.metric(BUNDLE_KEYS_METRIC).ok()? == 1.0).then_some(()) },
    )
    .await;
    let after = configmaps.get(CONFIG_MAP).await.expect("ConfigMap");
    assert_eq!(
        after.metadata.resource_version.as_deref(),
        Some(written.as_str()),
        "a restart over unchanged keys rewrote the escrow ConfigMap"
    );
    let log = restarted.log().expect("log");
    assert!(!log.contains("escrow bundle written"), "{log}");
    assert!(
        !log.to_ascii_uppercase().contains("AGE-SECRET-KEY"),
        "{log}"
    );
}

#[tokio::test]
async fn without_escrow_recipient_the_endpoint_is_404_and_no_configmap_is_written() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "noescrow").await.expect("namespace");
    // The rights are there: only the missing flag keeps the ConfigMap away.
    grant_in_namespace(cp, "sealant-escrow", &ns.name)
        .await
        .expect("grant sealant-escrow");
    let client = cp.client().await.expect("client");
    let configmaps: Api<ConfigMap> = Api::namespaced(client, &ns.name);
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let (code, body) = http_get(controller.addr, "/v1/escrow-bundle").expect("GET");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("--escrow-recipient"), "{body}");
    // The anchor: a SealedSecret applied now is unsealed. An escrowing controller
    // starts its bundle writer before its reconcile loops, with the keys it already
    // holds, so it would have written the ConfigMap by then.
    controller.wait_for_later_object(cp, "later").await;
    assert!(
        configmaps
            .get_opt(CONFIG_MAP)
            .await
            .expect("read ConfigMap")
            .is_none(),
        "no --escrow-recipient, yet {CONFIG_MAP} was written"
    );
    assert_eq!(controller.metric(BUNDLE_KEYS_METRIC).expect("metric"), 0.0);
}

#[tokio::test]
async fn with_two_replicas_only_the_leader_writes_the_bundle_both_serve_it_and_a_takeover_rewrites_nothing()
 {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "escrow-ha")
        .await
        .expect("namespace");
    for grant in ["sealant-escrow", "sealant-leader-election"] {
        grant_in_namespace(cp, grant, &ns.name)
            .await
            .unwrap_or_else(|e| panic!("grant {grant}: {e:#}"));
    }
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let identity = AgeIdentity::generate();
    let flags = [
        "--leader-elect".to_owned(),
        "--leader-elect-lease-duration=4s".to_owned(),
        "--leader-elect-renew-deadline=3s".to_owned(),
        "--leader-elect-retry-period=500ms".to_owned(),
        format!("--escrow-recipient={}", identity.recipient()),
    ];
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();

    // The first replica leads, makes the key and writes the bundle.
    let leader = SealantController::start(cp, &ns.name, &args)
        .await
        .expect("first replica");
    let keys = active_fingerprints(&secrets).await;
    assert_eq!(keys.len(), 1);
    configmap_covering(&configmaps, &leader, &keys).await;
    // The standby serves the same keys from its own bundle, but never writes.
    let standby = SealantController::start(cp, &ns.name, &args)
        .await
        .expect("second replica");
    assert_eq!(standby.metric("sealant_controller_leader").unwrap(), 0.0);
    endpoint_covering(&standby, &identity, &keys).await;
    endpoint_covering(&leader, &identity, &keys).await;
    // The anchor of "never writes": a renewal, which makes the leader write the bundle
    // again, reaches the standby too (its own bundle covers the new key), and the
    // standby still has written nothing.
    let renewed = renew(&leader, &secrets).await;
    let written = configmap_covering(&configmaps, &leader, &renewed).await;
    endpoint_covering(&standby, &identity, &renewed).await;
    assert_eq!(standby.metric(BUNDLE_KEYS_METRIC).unwrap(), 0.0);
    assert!(
        !standby
            .log()
            .expect("log")
            .contains("escrow bundle written")
    );
    standby.check_running().expect("the standby is running");

    // The leader dies; the standby takes over and finds the bundle up to date.
    leader.kill();
    eventually("the standby to lead", &standby, || async {
        let leads = standby.metric("sealant_controller_leader").ok()? == 1.0;
        let confirmed = standby.metric(BUNDLE_KEYS_METRIC).ok()? == renewed.len() as f64;
        (leads && confirmed).then_some(())
    })
    .await;
    let after = configmaps.get(CONFIG_MAP).await.expect("ConfigMap");
    assert_eq!(
        after.metadata.resource_version, written.metadata.resource_version,
        "a takeover over unchanged keys must not rewrite the bundle"
    );
    assert!(
        !standby
            .log()
            .expect("log")
            .contains("escrow bundle written")
    );
}
