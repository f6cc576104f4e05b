//! `sealant-controller` end to end, on the harness's real control plane: `deploy/`
//! applies, and the controller (running with the rights of `deploy/rbac.yaml` only)
//! unseals, owns, repairs, refuses and restarts as issue #4 asks.
//!
//! Each test starts its own controller that watches only the test's namespace and
//! keeps its keys there, so the tests are independent.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use sealant_crds::SealedSecret;
use sealant_e2e::fixtures::{
    expected, key_and_cert, key_secret, kubectl, kubectl_apply, seal, secret_values,
};
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{ControlPlane, TestNamespace, cluster, random_hex, record_timing, tools};

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Seals `values` as `namespace/name` with the controller's certificate and applies the
/// SealedSecret with kubectl.
fn apply_sealed(
    cp: &ControlPlane,
    controller: &SealantController,
    namespace: &str,
    name: &str,
    values: &[(&str, &str)],
) {
    let cert = controller.cert_pem().expect("cert");
    kubectl_apply(cp, &seal(&cert, namespace, name, values));
}

/// Waits until the Secret `name` exists and `accept` holds for it.
async fn secret_where(
    api: &Api<Secret>,
    controller: &SealantController,
    name: &str,
    accept: impl Fn(&Secret) -> bool,
) -> Secret {
    eventually(&format!("Secret {name}"), controller, || async {
        api.get_opt(name).await.ok().flatten().filter(|s| accept(s))
    })
    .await
}

/// Waits for an event with `reason` about `name`, and returns its message.
async fn event(
    client: &kube::Client,
    namespace: &str,
    controller: &SealantController,
    name: &str,
    reason: &str,
) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    eventually(
        &format!("a {reason} event for {name}"),
        controller,
        || async {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items.into_iter().find_map(|e| {
                (e.reason.as_deref() == Some(reason)
                    && e.involved_object.name.as_deref() == Some(name))
                .then(|| e.message.unwrap_or_default())
            })
        },
    )
    .await
}

fn assert_no_plaintext_logged(controller: &SealantController, plaintext: &str) {
    let log = controller.log().expect("controller log");
    assert!(!log.is_empty(), "the controller logged nothing");
    assert!(
        !log.contains(plaintext),
        "{} contains the plaintext",
        controller.log_path().display()
    );
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

/// A control plane of these tests' own, with `kubectl apply -k deploy/` done on it
/// once, and what kubectl printed. Not the shared one: the harness creates the same
/// `sealed-secrets-controller` Service there for Bitnami's controller, so an apply
/// racing it fails with AlreadyExists, and the applied Service's selector would take
/// the harness's hand-made Endpoints away from the tests that use them.
fn deployed() -> (&'static ControlPlane, &'static str) {
    static DEPLOYED: OnceLock<(&'static ControlPlane, String)> = OnceLock::new();
    let (cp, text) = DEPLOYED.get_or_init(|| {
        let cp = ControlPlane::start_another().expect("a control plane of its own");
        let out = tools::run(
            kubectl(cp).arg("apply").arg("-k").arg(repo_path("deploy")),
            b"",
        )
        .expect("kubectl apply -k deploy/");
        (cp, String::from_utf8_lossy(&out.stdout).into_owned())
    });
    (cp, text)
}

/// What the API server answers to `kubectl auth can-i VERB RESOURCE` for the
/// controller's ServiceAccount.
/// `resource` may be `TYPE/NAME`; a `/status` suffix asks about that subresource.
fn controller_can(cp: &ControlPlane, verb: &str, resource: &str, namespace: &str) -> bool {
    let mut cmd = kubectl(cp);
    cmd.args(["auth", "can-i", verb, "-n", namespace]);
    match resource.strip_suffix("/status") {
        Some(object) => cmd.args([object, "--subresource=status"]),
        None => cmd.arg(resource),
    };
    cmd.args([
        "--as",
        "system:serviceaccount:kube-system:sealed-secrets-controller",
    ]);
    let out = tools::run_unchecked(&mut cmd, b"").expect("kubectl auth can-i");
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl auth can-i {verb} {resource}: {other:?}, stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[tokio::test]
async fn deployed_rbac_grants_the_controller_what_its_code_calls_and_nothing_bitnami_adds() {
    let (cp, _) = deployed();
    // controller/tests/rbac.rs maps each of these to its call.
    for (verb, resource, namespace) in [
        ("list", "sealedsecrets.bitnami.com", "default"),
        ("watch", "sealedsecrets.bitnami.com", "default"),
        ("patch", "sealedsecrets.bitnami.com/status", "default"),
        ("get", "secrets", "default"),
        ("create", "secrets", "default"),
        ("update", "secrets", "default"),
        ("create", "events.events.k8s.io", "default"),
        (
            "get",
            "leases.coordination.k8s.io/sealant-controller",
            "kube-system",
        ),
        ("get", "configmaps/sealant-escrow-bundle", "kube-system"),
    ] {
        assert!(
            controller_can(cp, verb, resource, namespace),
            "{verb} {resource} in {namespace} is not granted"
        );
    }
    // Bitnami's manifests grant these; no code path of sealant's uses them.
    for (verb, resource, namespace) in [
        ("delete", "secrets", "default"),
        ("delete", "secrets", "kube-system"),
        ("get", "namespaces", "default"),
        ("get", "sealedsecrets.bitnami.com", "default"),
        ("update", "sealedsecrets.bitnami.com/status", "default"),
        ("create", "events", "default"),
        ("get", "leases.coordination.k8s.io/another", "kube-system"),
        ("get", "configmaps/another", "kube-system"),
    ] {
        assert!(
            !controller_can(cp, verb, resource, namespace),
            "{verb} {resource} in {namespace} is granted, but no code path uses it"
        );
    }
}

#[tokio::test]
async fn deploy_manifests_apply_to_the_control_plane_with_kubectl() {
    let (cp, text) = deployed();
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/sealedsecrets.bitnami.com",
        "clusterrole.rbac.authorization.k8s.io/secrets-unsealer",
        "role.rbac.authorization.k8s.io/sealant-leader-election",
        "role.rbac.authorization.k8s.io/sealed-secrets-controller-service-proxier",
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

#[tokio::test]
async fn kubectl_applied_sealed_secret_becomes_an_owned_synced_secret_without_logging_plaintext() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "unseal").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let plaintext = format!("plaintext-{}", random_hex(8));
    let values = [("username", "admin"), ("password", plaintext.as_str())];
    let started = Instant::now();
    apply_sealed(cp, &controller, &ns.name, "db", &values);

    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let secret = secret_where(&secrets, &controller, "db", |_| true).await;
    record_timing(&format!(
        "sealant-controller created a Secret {:.2} s after kubectl apply",
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(secret_values(&secret), expected(&values));
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    let owner = sealed.get("db").await.expect("SealedSecret");
    let refs: Vec<OwnerReference> = secret.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0].kind, "SealedSecret");
    assert_eq!(refs[0].name, "db");
    assert_eq!(Some(&refs[0].uid), owner.metadata.uid.as_ref());
    assert_eq!(refs[0].controller, Some(true));

    tools::run(
        kubectl(cp).args([
            "-n",
            &ns.name,
            "wait",
            "--for=condition=Synced",
            "--timeout=30s",
            "sealedsecret/db",
        ]),
        b"",
    )
    .expect("kubectl wait --for=condition=Synced");
    let synced = sealed.get("db").await.expect("SealedSecret");
    assert_eq!(
        synced.status.as_ref().and_then(|s| s.observed_generation),
        synced.metadata.generation,
        "observedGeneration"
    );
    event(&client, &ns.name, &controller, "db", "Unsealed").await;
    assert_no_plaintext_logged(&controller, &plaintext);
}

#[tokio::test]
async fn unowned_secret_is_refused_with_a_warning_until_it_is_marked_managed() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "unowned").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let mut mine = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("app".to_owned()),
            ..Default::default()
        },
        string_data: Some([("token".to_owned(), "hand-made".to_owned())].into()),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &mine)
        .await
        .expect("create the unowned Secret");

    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let values = [("token", "sealed-value")];
    apply_sealed(cp, &controller, &ns.name, "app", &values);
    let message = event(&client, &ns.name, &controller, "app", "ErrUpdateFailed").await;
    assert!(
        message.contains(r#"Resource "app" already exists and is not managed by SealedSecret"#),
        "{message}"
    );
    let untouched = secrets.get("app").await.expect("Secret");
    assert_eq!(
        secret_values(&untouched),
        expected(&[("token", "hand-made")])
    );
    assert!(untouched.metadata.owner_references.is_none());

    // Marked managed, it is adopted: the SealedSecret's values and an ownerReference.
    mine = untouched;
    mine.metadata.annotations.get_or_insert_default().insert(
        "sealedsecrets.bitnami.com/managed".to_owned(),
        "true".to_owned(),
    );
    secrets
        .replace("app", &PostParams::default(), &mine)
        .await
        .expect("annotate the Secret");
    // The annotation is on the Secret; a change of the SealedSecret's annotations
    // triggers a pass (a Secret without an ownerReference does not).
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    sealed
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"e2e/poke": "1"}}})),
        )
        .await
        .expect("poke the SealedSecret");
    let adopted = secret_where(&secrets, &controller, "app", |s| {
        s.metadata.owner_references.is_some()
    })
    .await;
    assert_eq!(secret_values(&adopted), expected(&values));
}

#[tokio::test]
async fn deleted_secret_is_recreated_and_hand_edited_secret_is_repaired() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "repair").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let values = [("key", "original")];
    apply_sealed(cp, &controller, &ns.name, "s", &values);
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let first = secret_where(&secrets, &controller, "s", |_| true).await;

    secrets
        .delete("s", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    let recreated = secret_where(&secrets, &controller, "s", |s| {
        s.metadata.uid != first.metadata.uid
    })
    .await;
    assert_eq!(secret_values(&recreated), expected(&values));

    secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"key": "tampered"}})),
        )
        .await
        .expect("edit the Secret");
    let repaired = secret_where(&secrets, &controller, "s", |s| {
        secret_values(s) == expected(&values)
    })
    .await;
    assert_eq!(secret_values(&repaired), expected(&values));
}

#[tokio::test]
async fn deleting_the_sealed_secret_garbage_collects_its_secret() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "gc").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    apply_sealed(cp, &controller, &ns.name, "gone", &[("k", "v")]);
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    secret_where(&secrets, &controller, "gone", |_| true).await;
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    sealed
        .delete("gone", &DeleteParams::default())
        .await
        .expect("delete the SealedSecret");
    eventually(
        "the Secret to be garbage-collected",
        &controller,
        || async { matches!(secrets.get_opt("gone").await, Ok(None)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn restart_over_in_sync_objects_decrypts_nothing_yet_repairs_an_edit_made_while_down() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "restart").await.expect("namespace");
    let first = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let cert = first.cert_pem().expect("cert");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    const N: usize = 5;
    let mut all = Vec::new();
    for i in 0..N {
        all.extend(seal(
            &cert,
            &ns.name,
            &format!("s{i}"),
            &[("k", &format!("v{i}"))],
        ));
    }
    let started = Instant::now();
    kubectl_apply(cp, &all);
    for i in 0..N {
        secret_where(&secrets, &first, &format!("s{i}"), |_| true).await;
    }
    record_timing(&format!(
        "sealant-controller: all {N} Secrets exist {:.2} s after kubectl apply",
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(
        first
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        N as f64
    );
    first.kill();

    secrets
        .patch(
            "s0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"k": "tampered"}})),
        )
        .await
        .expect("edit a Secret while the controller is down");

    let restarted = Instant::now();
    let second = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller again");
    let repaired = secret_where(&secrets, &second, "s0", |s| {
        secret_values(s) == expected(&[("k", "v0")])
    })
    .await;
    assert_eq!(secret_values(&repaired), expected(&[("k", "v0")]));
    // Every other object was checked and found in sync: wait until all were seen.
    second.wait_for_in_sync_skips(N - 1).await;
    assert_eq!(
        second
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        1.0,
        "only the edited Secret is decrypted again"
    );
    record_timing(&format!(
        "sealant-controller restart over {N} in-sync SealedSecrets (one Secret edited): \
         repaired and all checked {:.2} s after start, 1 decryption, {} in-sync skips",
        restarted.elapsed().as_secs_f64(),
        second
            .metric("sealant_controller_in_sync_skips_total")
            .expect("metric")
    ));
}

#[tokio::test]
async fn sealed_secret_moved_to_another_namespace_is_not_synced_and_reports_unseal_failure() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "moved").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let plaintext = format!("moved-{}", random_hex(8));
    // Sealed for namespace "elsewhere", applied in the test's namespace.
    let yaml = String::from_utf8(seal(
        &controller.cert_pem().expect("cert"),
        "elsewhere",
        "m",
        &[("k", plaintext.as_str())],
    ))
    .expect("UTF-8");
    let moved = yaml.replace("namespace: elsewhere", &format!("namespace: {}", ns.name));
    kubectl_apply(cp, moved.as_bytes());

    let client = cp.client().await.expect("client");
    event(&client, &ns.name, &controller, "m", "ErrUnsealFailed").await;
    tools::run(
        kubectl(cp).args([
            "-n",
            &ns.name,
            "wait",
            "--for=condition=Synced=False",
            "--timeout=30s",
            "sealedsecret/m",
        ]),
        b"",
    )
    .expect("kubectl wait --for=condition=Synced=False");
    let secrets: Api<Secret> = Api::namespaced(client, &ns.name);
    assert!(secrets.get_opt("m").await.expect("get").is_none());
    assert_no_plaintext_logged(&controller, &plaintext);
    controller.check_running().expect("still running");
}

#[tokio::test]
async fn with_skip_recreate_a_deleted_secret_stays_deleted() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "skip-recreate")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &["--skip-recreate"])
        .await
        .expect("sealant-controller");
    apply_sealed(cp, &controller, &ns.name, "once", &[("k", "v")]);
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    secret_where(&secrets, &controller, "once", |_| true).await;
    secrets
        .delete("once", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    eventually("the Secret to be gone", &controller, || async {
        matches!(secrets.get_opt("once").await, Ok(None)).then_some(())
    })
    .await;
    // The anchor: a SealedSecret applied after the deletion is unsealed. A controller
    // that re-creates reacts to the deletion's watch event, which came first (the test
    // above shows it does), so it would have decrypted "once" again by then.
    controller.wait_for_later_object(cp, "later").await;
    assert!(
        secrets.get_opt("once").await.expect("get").is_none(),
        "--skip-recreate: the Secret was re-created"
    );
    assert_eq!(
        controller
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        2.0,
        "one decryption for \"once\", one for \"later\", none after the deletion"
    );
}

#[tokio::test]
async fn key_secret_added_while_running_is_used_and_a_broken_one_is_skipped() {
    use sealant_keys::OffsetDateTime;
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "new-key").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    // A key Secret that cannot be parsed: reported and skipped, not fatal.
    secrets
        .create(
            &PostParams::default(),
            &key_secret("broken-key", "not a key", "not a cert"),
        )
        .await
        .expect("create the broken key Secret");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller starts despite a broken key Secret");
    let log = controller.log().expect("log");
    assert!(
        log.contains("key Secret skipped") && log.contains("broken-key"),
        "the broken key Secret is reported:\n{log}"
    );

    // A key made elsewhere and added while the controller runs (newer than its own).
    let (key, cert) = key_and_cert(OffsetDateTime::now_utc() + Duration::from_secs(60));
    let cert_pem = cert.to_pem();
    secrets
        .create(
            &PostParams::default(),
            &key_secret("added-key", &key.expose_pkcs1_pem(), &cert_pem),
        )
        .await
        .expect("create the added key Secret");
    kubectl_apply(cp, &seal(&cert_pem, &ns.name, "late", &[("k", "v")]));
    let secret = secret_where(&secrets, &controller, "late", |_| true).await;
    assert_eq!(secret_values(&secret), expected(&[("k", "v")]));
    let served = controller.cert_pem().expect("cert");
    assert_eq!(served, cert_pem, "the newest key now seals");

    // Relabelled (retired, as Bitnami users do by hand): no longer loaded, no restart.
    secrets
        .patch(
            "added-key",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "compromised"}}
            })),
        )
        .await
        .expect("relabel the added key");
    eventually(
        "the relabelled key to stop sealing",
        &controller,
        || async { (controller.cert_pem().ok()? != cert_pem).then_some(()) },
    )
    .await;
    kubectl_apply(
        cp,
        &seal(&cert_pem, &ns.name, "after-retire", &[("k", "v")]),
    );
    event(
        &client,
        &ns.name,
        &controller,
        "after-retire",
        "ErrUnsealFailed",
    )
    .await;

    // The legacy key Secret (unlabelled, named exactly as --key-prefix) is watched too.
    let (legacy_key, legacy_cert) =
        key_and_cert(OffsetDateTime::now_utc() + Duration::from_secs(120));
    let mut legacy = key_secret(
        "sealed-secrets-key",
        &legacy_key.expose_pkcs1_pem(),
        &legacy_cert.to_pem(),
    );
    legacy.metadata.labels = None;
    secrets
        .create(&PostParams::default(), &legacy)
        .await
        .expect("create the legacy key Secret");
    eventually("the legacy key to seal", &controller, || async {
        (controller.cert_pem().ok()? == legacy_cert.to_pem()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn key_is_renewed_every_key_renew_period_and_old_keys_stay() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "renew").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &["--key-renew-period=2s"])
        .await
        .expect("sealant-controller");
    let first = controller.cert_pem().expect("cert");
    let keys: Api<Secret> = Api::namespaced(cp.client().await.expect("client"), &ns.name);
    let sealed_before = seal(
        &first,
        &ns.name,
        "old",
        &[("k", "sealed-with-the-first-key")],
    );
    let count = eventually("two renewals", &controller, || async {
        let listed = keys
            .list(
                &ListParams::default()
                    .labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"),
            )
            .await
            .ok()?;
        (listed.items.len() >= 3).then_some(listed.items.len())
    })
    .await;
    assert!(count >= 3);
    assert_ne!(
        controller.cert_pem().expect("cert"),
        first,
        "a newer key seals"
    );
    // Every active key still decrypts.
    kubectl_apply(cp, &sealed_before);
    let secrets: Api<Secret> = Api::namespaced(cp.client().await.expect("client"), &ns.name);
    let secret = secret_where(&secrets, &controller, "old", |_| true).await;
    assert_eq!(
        secret_values(&secret),
        expected(&[("k", "sealed-with-the-first-key")])
    );
}

/// Sends an HTTP/1.0 POST that declares `length` bytes and sends `body`, and returns
/// the status code.
fn http_post(addr: std::net::SocketAddr, path: &str, length: usize, body: &[u8]) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        length
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[tokio::test]
async fn verify_and_rotate_are_rate_limited_and_cap_the_body_size() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "limits").await.expect("namespace");
    let controller =
        SealantController::start(cp, &ns.name, &["--rate-limit=1", "--rate-limit-burst=3"])
            .await
            .expect("sealant-controller");
    let cert = controller.cert_pem().expect("cert");
    let sealed = seal(&cert, &ns.name, "limits", &[("k", "v")]);

    // A body declared over the 2 MiB cap is refused before it is read (only the
    // headers are sent), and spends no token.
    assert_eq!(
        http_post(controller.addr, "/v1/verify", 3 * 1024 * 1024, b""),
        413
    );

    // Counted, never timed: the clock only adds tokens (1 a second here), so what
    // follows holds however slow the machine is, short of a second per request.
    let verify = || http_post(controller.addr, "/v1/verify", sealed.len(), &sealed);
    let rotate = || http_post(controller.addr, "/v1/rotate", sealed.len(), &sealed);
    let mut refused = 0;
    // The bucket starts full: burst + 1 pass at once.
    let codes: Vec<u16> = (0..4).map(|_| verify()).collect();
    assert_eq!(codes, [200; 4], "burst + 1 pass");
    // Then it runs dry.
    let first_other = |call: &dyn Fn() -> u16, tries: usize| {
        (0..tries)
            .map(|_| call())
            .enumerate()
            .find(|(_, c)| *c != 200)
    };
    let (passed, code) = first_other(&verify, 20).expect("20 more verifications passed");
    assert_eq!(code, 429, "after {passed} more verifications");
    refused += 1;
    // /v1/rotate draws on the same bucket: with one of its own, burst + 1 would pass.
    let (rotated, code) = first_other(&rotate, 4).expect("burst + 1 rotations passed at once");
    assert_eq!(code, 429, "after {rotated} rotations");
    // It refills.
    eventually("a verification after the refill", &controller, || {
        let code = verify();
        if code == 429 {
            refused += 1;
        }
        async move { (code == 200).then_some(()) }
    })
    .await;
    // The controller counted each refusal it answered.
    let counted = r#"sealed_secrets_controller_http_requests_total{handler="/v1/verify",method="POST",code="429"}"#;
    assert_eq!(
        controller.metric(counted).expect("metric"),
        f64::from(refused)
    );
    controller.check_running().expect("still running");
}

/// `sealed` (YAML) with `template` merged into `spec.template`, as JSON.
fn with_template(sealed: &[u8], template: serde_json::Value) -> Vec<u8> {
    let mut value: serde_json::Value = serde_yaml_ng::from_slice(sealed).expect("SealedSecret");
    let slot = &mut value["spec"]["template"];
    for (k, v) in template.as_object().expect("an object") {
        slot[k] = v.clone();
    }
    serde_json::to_vec(&value).expect("JSON")
}

#[tokio::test]
async fn template_metadata_immutable_and_skip_set_owner_references_reach_the_secret() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "template").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let sealed = seal(
        &controller.cert_pem().expect("cert"),
        &ns.name,
        "tpl",
        &[("k", "v")],
    );
    let template = serde_json::json!({
        "metadata": {
            "name": "tpl",
            "namespace": ns.name,
            "labels": {"app": "web"},
            "annotations": {
                "e2e/note": "kept",
                "sealedsecrets.bitnami.com/skip-set-owner-references": "true"
            }
        },
        "type": "Opaque",
        "immutable": true
    });
    kubectl_apply(cp, &with_template(&sealed, template));
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let secret = secret_where(&secrets, &controller, "tpl", |_| true).await;
    assert_eq!(secret_values(&secret), expected(&[("k", "v")]));
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("e2e/note").map(String::as_str),
        Some("kept")
    );
    assert_eq!(secret.immutable, Some(true));
    assert!(
        secret.metadata.owner_references.is_none(),
        "skip-set-owner-references: {:?}",
        secret.metadata.owner_references
    );
}

#[tokio::test]
async fn template_data_is_rendered_as_go_templates_over_the_decrypted_values() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "template-data")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let sealed = seal(
        &controller.cert_pem().expect("cert"),
        &ns.name,
        "app-config",
        &[("user", "admin"), ("db-password", "s3cr3t")],
    );
    let template = serde_json::json!({
        "data": {
            "config.yaml": "user: {{ .user | quote }}\npassword: {{ index . \"db-password\" | quote }}\n",
            "dsn": "{{ printf \"postgres://%s:%s@db:5432/app\" .user (index . \"db-password\") }}",
            "user": "{{ .user | upper }}"
        }
    });
    kubectl_apply(cp, &with_template(&sealed, template));
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let secret = secret_where(&secrets, &controller, "app-config", |_| true).await;
    assert_eq!(
        secret_values(&secret),
        expected(&[
            ("config.yaml", "user: \"admin\"\npassword: \"s3cr3t\"\n"),
            ("db-password", "s3cr3t"),
            ("dsn", "postgres://admin:s3cr3t@db:5432/app"),
            ("user", "ADMIN"),
        ])
    );

    // A template that cannot run is a permanent, named failure, not a partial Secret.
    let broken = seal(
        &controller.cert_pem().expect("cert"),
        &ns.name,
        "broken-template",
        &[("user", "admin")],
    );
    let template = serde_json::json!({"data": {"x": "{{ .user | nosuchfunction }}"}});
    kubectl_apply(cp, &with_template(&broken, template));
    let message = event(
        &client,
        &ns.name,
        &controller,
        "broken-template",
        "ErrUnsealFailed",
    )
    .await;
    assert!(
        message.contains("spec.template.data.x") && message.contains("nosuchfunction"),
        "{message}"
    );
    assert!(
        !message.contains("admin"),
        "no value in the event: {message}"
    );
    assert!(
        secrets
            .get_opt("broken-template")
            .await
            .expect("get")
            .is_none()
    );
    assert_no_plaintext_logged(&controller, "s3cr3t");
    controller.check_running().expect("still running");
}

#[tokio::test]
async fn poisoned_templates_fail_alone_while_the_other_sealed_secrets_are_unsealed() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "poisoned-templates")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let cert = controller.cert_pem().expect("cert");
    // Issue 11's hostile templates, which need no valid ciphertext: a 40,000-deep
    // list (a stack overflow on a 2 MiB thread before the budget), a string doubled
    // past any memory, and a quadratic search.
    let poisons = [
        (
            "deep",
            "{{ $a := list }}{{ range 40000 }}{{ $a = list $a }}{{ end }}ok",
        ),
        (
            "doubled",
            "{{ $a := list \"x\" }}{{ range 40 }}{{ $a = list $a $a }}{{ end }}{{ toString $a }}",
        ),
        (
            "quadratic",
            "{{ $s := repeat 100000 \"a\" }}{{ $n := print (repeat 50000 \"a\") \"b\" }}{{ range 1000 }}{{ contains $n $s }}{{ end }}",
        ),
    ];
    let mut all = Vec::new();
    for (name, template) in poisons {
        let sealed = seal(&cert, &ns.name, name, &[("k", "v")]);
        all.extend(with_template(
            &sealed,
            serde_json::json!({"data": {"x": template}}),
        ));
        all.extend(b"\n---\n");
    }
    for i in 0..3 {
        all.extend(seal(
            &cert,
            &ns.name,
            &format!("good-{i}"),
            &[("k", &format!("v{i}"))],
        ));
    }
    kubectl_apply(cp, &all);
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    for i in 0..3 {
        let secret = secret_where(&secrets, &controller, &format!("good-{i}"), |_| true).await;
        assert_eq!(secret_values(&secret), expected(&[("k", &format!("v{i}"))]));
    }
    for (name, _) in poisons {
        let message = event(&client, &ns.name, &controller, name, "ErrUnsealFailed").await;
        assert!(
            message.contains("spec.template.data.x"),
            "{name}: {message}"
        );
        assert!(
            secrets.get_opt(name).await.expect("get").is_none(),
            "{name}"
        );
    }
    controller
        .check_running()
        .expect("the controller survives every poisoned template");
}

#[tokio::test]
async fn patch_annotated_secret_gets_the_sealed_values_merged_and_keeps_its_own() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "patch").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let existing = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("merged".to_owned()),
            annotations: Some(
                [(
                    "sealedsecrets.bitnami.com/patch".to_owned(),
                    "true".to_owned(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        string_data: Some(
            [
                ("keep".to_owned(), "mine".to_owned()),
                ("k".to_owned(), "old".to_owned()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &existing)
        .await
        .expect("create the Secret to patch");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    apply_sealed(cp, &controller, &ns.name, "merged", &[("k", "new")]);
    let merged = secret_where(&secrets, &controller, "merged", |s| {
        secret_values(s).get("k").map(String::as_str) == Some("new")
    })
    .await;
    assert_eq!(
        secret_values(&merged),
        expected(&[("keep", "mine"), ("k", "new")])
    );
}

#[tokio::test]
async fn json_debug_logs_are_json_lines_without_the_plaintext_or_its_base64() {
    use base64::Engine as _;
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "json-logs")
        .await
        .expect("namespace");
    let controller =
        SealantController::start(cp, &ns.name, &["--log-format=json", "--log-level=debug"])
            .await
            .expect("sealant-controller");
    let plaintext = format!("json-plaintext-{}", random_hex(8));
    apply_sealed(cp, &controller, &ns.name, "j", &[("k", plaintext.as_str())]);
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    secret_where(&secrets, &controller, "j", |_| true).await;
    event(&client, &ns.name, &controller, "j", "Unsealed").await;
    let log = controller.log().expect("log");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    assert!(
        log.contains(r#""level":"DEBUG""#),
        "debug lines are logged:\n{log}"
    );
    assert_no_plaintext_logged(&controller, &plaintext);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&plaintext);
    assert_no_plaintext_logged(&controller, &encoded);
}

#[tokio::test]
async fn restart_keeps_the_key_and_key_cutoff_time_renews_it_at_start() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "cutoff").await.expect("namespace");
    let first = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let cert = first.cert_pem().expect("cert");
    first.kill();
    let second = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller again");
    assert_eq!(
        second.cert_pem().expect("cert"),
        cert,
        "a restart reuses the key"
    );
    second.kill();

    // Certificates' NotBefore has whole seconds, and on a tie the key created first
    // stays newest (as in Bitnami): let a second pass so the new key is later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A cutoff in the future: every existing key is older, so a new one is made.
    let cutoff = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let cutoff = cutoff
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
        ))
        .expect("RFC1123Z");
    let third = SealantController::start(cp, &ns.name, &[&format!("--key-cutoff-time={cutoff}")])
        .await
        .expect("sealant-controller with --key-cutoff-time");
    // It serves before the renewal at start-up, so the new cert may take a moment.
    eventually("a new key to seal", &third, || async {
        (third.cert_pem().ok()? != cert).then_some(())
    })
    .await;
    let keys: Api<Secret> = Api::namespaced(cp.client().await.expect("client"), &ns.name);
    let listed = keys
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"))
        .await
        .expect("list key Secrets");
    assert_eq!(listed.items.len(), 2, "the old key is kept");
}

#[tokio::test]
async fn label_selector_limits_which_sealed_secrets_are_unsealed() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "selector").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &["--label-selector=e2e/unseal=yes"])
        .await
        .expect("sealant-controller");
    let cert = controller.cert_pem().expect("cert");
    let labelled = {
        let mut value: serde_json::Value =
            serde_yaml_ng::from_slice(&seal(&cert, &ns.name, "picked", &[("k", "v")]))
                .expect("SealedSecret");
        value["metadata"]["labels"] = serde_json::json!({"e2e/unseal": "yes"});
        serde_json::to_vec(&value).expect("JSON")
    };
    kubectl_apply(cp, &seal(&cert, &ns.name, "ignored", &[("k", "v")]));
    kubectl_apply(cp, &labelled);
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    // The anchor: the labelled one, applied after the unlabelled one, is unsealed and
    // reported. A controller that watched the unlabelled one got its watch event
    // first, and had started its pass (and counted a decryption) by then.
    secret_where(&secrets, &controller, "picked", |_| true).await;
    event(&client, &ns.name, &controller, "picked", "Unsealed").await;
    assert!(secrets.get_opt("ignored").await.expect("get").is_none());
    assert_eq!(
        controller
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        1.0,
        "only the labelled SealedSecret was decrypted"
    );
    let sealed: Api<SealedSecret> = Api::namespaced(client, &ns.name);
    let ignored = sealed.get("ignored").await.expect("SealedSecret");
    assert!(
        ignored.status.is_none(),
        "the unlabelled SealedSecret got a status: {:?}",
        ignored.status
    );
    controller.check_running().expect("still running");
}
