//! `sealant keys` against the harness's real control plane: a backup restored into an
//! empty namespace brings back the very key a controller there then seals with, a
//! plain Bitnami backup restores into a running controller through its key watch,
//! restores never duplicate a key, `list` counts the SealedSecrets that need each key,
//! and `retire` and `prune` refuse while anything may still need a key.
//!
//! The CLI runs as the cluster admin (`cp.admin_kubeconfig`); each test's controller
//! keeps its keys in the test's namespace, which the CLI reaches with
//! `--controller-namespace`. `list`, `retire` and `prune` read SealedSecrets in all
//! namespaces, so the tests that create SealedSecrets or retire keys hold
//! [`CLUSTER_WIDE`] and leave no SealedSecret without a key record behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams};
use sealant_crds::SealedSecret;
use sealant_crds::key_secret::{KEY_LABEL, RETIRED, label_value, read_rsa};
use sealant_e2e::fixtures::{expected, key_and_cert, kubectl_apply, seal, secret_values};
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{ControlPlane, TestNamespace, cluster, random_hex, tools};
use sealant_keys::OffsetDateTime;

/// Held by the tests whose outcome depends on the SealedSecrets of every namespace.
static CLUSTER_WIDE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `sealant keys ARGS --controller-namespace NS` as the cluster admin, whatever its
/// exit status.
fn keys(cp: &ControlPlane, namespace: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(tools::sealant().expect("sealant binary"));
    cmd.arg("keys")
        .args(args)
        .arg("--kubeconfig")
        .arg(&cp.admin_kubeconfig)
        .args(["--controller-namespace", namespace])
        .env_remove("SEALANT_BACKUP_PASSPHRASE");
    tools::run_unchecked(&mut cmd, b"").expect("run sealant keys")
}

/// As [`keys`], failing the test unless it exits 0; returns stdout and stderr.
fn keys_ok(cp: &ControlPlane, namespace: &str, args: &[&str]) -> (String, String) {
    let out = keys(cp, namespace, args);
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "sealant keys {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// As [`keys`], failing the test unless it exits 1 with `needle` in stderr; returns
/// stderr.
fn keys_refused(cp: &ControlPlane, namespace: &str, args: &[&str], needle: &str) -> String {
    let out = keys(cp, namespace, args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sealant keys {args:?} should fail:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    stderr
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every key Secret in `namespace` (any label value), by fingerprint.
async fn key_secrets(client: &kube::Client, namespace: &str) -> BTreeMap<String, Secret> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default().labels(KEY_LABEL))
        .await
        .expect("list key Secrets")
        .items
        .into_iter()
        .map(|s| {
            let (key, _) = read_rsa(&s).expect("a readable key Secret");
            (key.fingerprint().as_str().to_owned(), s)
        })
        .collect()
}

/// `keys list -o json`, parsed.
fn list_json(cp: &ControlPlane, namespace: &str) -> serde_json::Value {
    let (stdout, _) = keys_ok(cp, namespace, &["list", "-o", "json"]);
    serde_json::from_str(&stdout).expect("keys list -o json prints JSON")
}

/// The `list` JSON row of `fingerprint`.
fn row<'a>(list: &'a serde_json::Value, fingerprint: &str) -> &'a serde_json::Value {
    list["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["fingerprint"] == fingerprint)
        .unwrap_or_else(|| panic!("no row for {fingerprint} in {list}"))
}

/// Waits until `name` is Synced with `status`.
async fn synced(api: &Api<SealedSecret>, controller: &SealantController, name: &str, status: &str) {
    eventually(&format!("{name} Synced={status}"), controller, || async {
        let s = api.get_opt(name).await.ok().flatten()?;
        let condition = s.status.as_ref()?.conditions.as_ref()?.first()?.clone();
        (condition.type_ == "Synced" && condition.status == status).then_some(())
    })
    .await;
}

/// Deletes every SealedSecret in `namespace` and waits until they are gone, so none is
/// left without a key record for the next test.
async fn delete_sealed_secrets(api: &Api<SealedSecret>, controller: &SealantController) {
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete SealedSecrets");
    eventually("SealedSecrets deleted", controller, || async {
        api.list(&ListParams::default())
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(|_| ())
    })
    .await;
}

/// Makes the controller write a second key generation and waits until it seals with
/// it; returns its fingerprint.
async fn renew(client: &kube::Client, controller: &SealantController, old: &str) -> String {
    let old_cert = controller.cert_pem().expect("cert");
    controller.renew_key().expect("SIGUSR1");
    let new = eventually("a second key generation", controller, || async {
        let all = key_secrets(client, &controller.namespace).await;
        (all.len() == 2).then(|| all.into_keys().find(|f| f != old))?
    })
    .await;
    eventually(
        "the controller seals with the new key",
        controller,
        || async { controller.cert_pem().ok().filter(|c| *c != old_cert) },
    )
    .await;
    new
}

#[tokio::test]
async fn backup_to_a_recipient_restores_into_an_empty_namespace_whose_controller_seals_with_the_same_key()
 {
    let cp = cluster().expect("control plane");
    let client = cp.client().await.expect("client");
    let source = TestNamespace::new(cp, "keys-backup")
        .await
        .expect("namespace");
    let original = SealantController::start(cp, &source.name, &[])
        .await
        .expect("sealant-controller");
    let cert = original.cert_pem().expect("cert");
    let fingerprint = key_secrets(&client, &source.name)
        .await
        .into_keys()
        .next()
        .expect("one key");
    original.kill();

    let dir = tempfile::tempdir().expect("tempdir");
    let escrow = dir.path().join("escrow.key");
    let recipient = tools::run(
        Command::new(tools::sealant().expect("sealant"))
            .args(["keygen-escrow", "-o"])
            .arg(&escrow),
        b"",
    )
    .expect("keygen-escrow")
    .stdout;
    let recipient = String::from_utf8(recipient).expect("UTF-8");
    let backup = dir.path().join("keys.age");
    let backup_arg = backup.to_str().expect("UTF-8 path");
    let (stdout, stderr) = keys_ok(
        cp,
        &source.name,
        &["backup", "-o", backup_arg, "--recipient", recipient.trim()],
    );
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("Backed up 1 key") && stderr.contains(&fingerprint),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    assert_mode_0600(&backup);
    let text = std::fs::read_to_string(&backup).expect("read backup");
    assert!(
        text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{text}"
    );
    keys_refused(
        cp,
        &source.name,
        &["backup", "-o", backup_arg, "--recipient", recipient.trim()],
        "already exists",
    );

    // A dry run changes nothing.
    let target = TestNamespace::new(cp, "keys-restore")
        .await
        .expect("namespace");
    let escrow_arg = escrow.to_str().expect("UTF-8 path");
    let (stdout, _) = keys_ok(
        cp,
        &target.name,
        &["restore", backup_arg, "-i", escrow_arg, "--dry-run"],
    );
    assert!(
        stdout.contains(&fingerprint) && stdout.contains("would create"),
        "{stdout}"
    );
    assert!(key_secrets(&client, &target.name).await.is_empty());

    let (stdout, _) = keys_ok(cp, &target.name, &["restore", backup_arg, "-i", escrow_arg]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&fingerprint) && stdout.trim_end().ends_with("created"),
        "{stdout}"
    );
    let restored = key_secrets(&client, &target.name).await;
    let secret = restored.get(&fingerprint).expect("the restored key");
    assert_eq!(
        secret.metadata.namespace.as_deref(),
        Some(target.name.as_str())
    );
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert!(secret.data.as_ref().expect("data").contains_key("age.key"));

    // Twice: nothing new.
    let (stdout, _) = keys_ok(cp, &target.name, &["restore", backup_arg, "-i", escrow_arg]);
    assert!(stdout.contains("skipped (already present)"), "{stdout}");
    assert_eq!(key_secrets(&client, &target.name).await.len(), 1);

    let controller = SealantController::start(cp, &target.name, &[])
        .await
        .expect("sealant-controller");
    assert_eq!(controller.cert_pem().expect("cert"), cert);
    assert_eq!(
        key_secrets(&client, &target.name).await.len(),
        1,
        "the controller made no key of its own"
    );
}

#[cfg(unix)]
fn assert_mode_0600(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

#[cfg(not(unix))]
fn assert_mode_0600(_path: &Path) {}

#[tokio::test]
async fn plain_bitnami_backup_restores_into_a_running_controller_without_a_restart() {
    let _cluster_wide = CLUSTER_WIDE.lock().await;
    let cp = cluster().expect("control plane");
    let client = cp.client().await.expect("client");
    let ns = TestNamespace::new(cp, "keys-bitnami")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");

    // A key from elsewhere, as `kubectl get secret -l ... -o yaml` prints it (server
    // fields included, another namespace, no age.key).
    let (key, cert) =
        key_and_cert(OffsetDateTime::now_utc() - std::time::Duration::from_secs(3600));
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let name = format!("sealed-secrets-key{}", random_hex(3));
    let list = format!(
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    tls.crt: {}\n    tls.key: {}\n  \
         kind: Secret\n  metadata:\n    creationTimestamp: \"2024-01-01T00:00:00Z\"\n    \
         generateName: sealed-secrets-key\n    labels:\n      \
         sealedsecrets.bitnami.com/sealed-secrets-key: active\n    name: {name}\n    \
         namespace: kube-system\n    resourceVersion: \"1234\"\n    uid: \
         0b5f1a8e-0000-4000-8000-000000000000\n  type: kubernetes.io/tls\nkind: List\n\
         metadata:\n  resourceVersion: \"\"\n",
        b64(cert.to_pem().as_bytes()),
        b64(key.expose_pkcs1_pem().as_bytes()),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bitnami-keys.yaml");
    std::fs::write(&path, list).expect("write");
    let path_arg = path.to_str().expect("UTF-8 path");

    // Sealed to that key: the controller cannot open it yet.
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    let password = format!("pw-{}", random_hex(6));
    kubectl_apply(
        cp,
        &seal(&cert.to_pem(), &ns.name, "db", &[("password", &password)]),
    );
    synced(&sealed_api, &controller, "db", "False").await;

    let (stdout, _) = keys_ok(cp, &ns.name, &["restore", path_arg]);
    let fingerprint = key.fingerprint().as_str();
    assert_eq!(
        stdout.trim_end(),
        format!("{fingerprint}  {name}  created"),
        "the backup's name is kept"
    );
    let restored = key_secrets(&client, &ns.name).await;
    assert_eq!(
        restored.len(),
        2,
        "the controller's own key and the restored one"
    );
    assert_eq!(
        label_value(&restored[fingerprint]),
        Some("active"),
        "the backup's label value is kept"
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let want = expected(&[("password", &password)]);
    eventually(
        "the Secret unsealed with the restored key",
        &controller,
        || async {
            secrets
                .get_opt("db")
                .await
                .ok()
                .flatten()
                .filter(|s| secret_values(s) == want)
        },
    )
    .await;
    synced(&sealed_api, &controller, "db", "True").await;

    // The same key again, now under a different name: skipped by fingerprint.
    let renamed = std::fs::read_to_string(&path)
        .expect("read")
        .replace(&name, "sealed-secrets-keyother");
    std::fs::write(&path, renamed).expect("write");
    let (stdout, _) = keys_ok(cp, &ns.name, &["restore", path_arg]);
    assert_eq!(
        stdout.trim_end(),
        format!("{fingerprint}  {name}  skipped (already present)")
    );
    assert_eq!(key_secrets(&client, &ns.name).await.len(), 2);
    delete_sealed_secrets(&sealed_api, &controller).await;
}

#[tokio::test]
async fn list_counts_dependents_and_retire_waits_for_them_unless_forced() {
    let _cluster_wide = CLUSTER_WIDE.lock().await;
    let cp = cluster().expect("control plane");
    let client = cp.client().await.expect("client");
    let ns = TestNamespace::new(cp, "keys-retire")
        .await
        .expect("namespace");
    let unwatched = TestNamespace::new(cp, "keys-unwatched")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let old_cert = controller.cert_pem().expect("cert");
    let old = key_secrets(&client, &ns.name)
        .await
        .into_keys()
        .next()
        .expect("one key");

    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    for name in ["db", "api"] {
        kubectl_apply(cp, &seal(&old_cert, &ns.name, name, &[("v", name)]));
        synced(&sealed_api, &controller, name, "True").await;
    }
    // No controller watches this one: it has no key record and could need any key.
    kubectl_apply(
        cp,
        &seal(&old_cert, &unwatched.name, "orphan", &[("v", "x")]),
    );

    let list = list_json(cp, &ns.name);
    let first = row(&list, &old);
    assert_eq!(first["sealedSecrets"], 2, "{list}");
    assert_eq!(first["sealing"], true, "{list}");
    assert_eq!(first["label"], "active", "{list}");
    let orphan = format!("{}/orphan", unwatched.name);
    assert!(
        list["unknown"]
            .as_array()
            .expect("unknown")
            .iter()
            .any(|u| u == orphan.as_str()),
        "{list}"
    );
    let (table, _) = keys_ok(cp, &ns.name, &["list"]);
    assert!(table.starts_with("FINGERPRINT"), "{table}");
    assert!(
        table.contains("active (sealing)") && table.contains("\nunknown"),
        "{table}"
    );

    let new = renew(&client, &controller, &old).await;
    let prefix = &old["SHA256:".len()..old.len() - 20];
    let refused = keys_refused(cp, &ns.name, &["retire", prefix], "refusing to retire");
    assert!(
        refused.contains(&format!("{}/db", ns.name))
            && refused.contains(&format!("{}/api", ns.name))
            && refused.contains(&orphan),
        "{refused}"
    );
    assert_eq!(
        label_value(&key_secrets(&client, &ns.name).await[&old]),
        Some("active")
    );

    let (stdout, _) = keys_ok(cp, &ns.name, &["retire", prefix, "--force"]);
    assert!(
        stdout.contains(&old) && stdout.contains(RETIRED),
        "{stdout}"
    );
    let after = key_secrets(&client, &ns.name).await;
    assert_eq!(after.len(), 2, "retire deletes nothing");
    assert_eq!(label_value(&after[&old]), Some(RETIRED));

    // The controller stops decrypting with the retired key.
    kubectl_apply(cp, &seal(&old_cert, &ns.name, "late", &[("v", "late")]));
    synced(&sealed_api, &controller, "late", "False").await;
    let list = list_json(cp, &ns.name);
    assert_eq!(row(&list, &old)["label"], RETIRED, "{list}");
    assert_eq!(row(&list, &new)["sealing"], true, "{list}");

    keys_refused(cp, &ns.name, &["retire", &new], "last active key");

    Api::<SealedSecret>::namespaced(client.clone(), &unwatched.name)
        .delete("orphan", &DeleteParams::default())
        .await
        .expect("delete orphan");
    delete_sealed_secrets(&sealed_api, &controller).await;
}

#[tokio::test]
async fn prune_refuses_an_active_key_and_deletes_a_retired_one() {
    let _cluster_wide = CLUSTER_WIDE.lock().await;
    let cp = cluster().expect("control plane");
    let client = cp.client().await.expect("client");
    let ns = TestNamespace::new(cp, "keys-prune")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let old = key_secrets(&client, &ns.name)
        .await
        .into_keys()
        .next()
        .expect("one key");
    let new = renew(&client, &controller, &old).await;

    keys_refused(cp, &ns.name, &["prune", &old], "retire it first");
    assert_eq!(key_secrets(&client, &ns.name).await.len(), 2);

    keys_ok(cp, &ns.name, &["retire", &old]);
    let (stdout, stderr) = keys_ok(cp, &ns.name, &["prune", &old]);
    assert!(
        stdout.contains(&old) && stdout.contains("deleted"),
        "{stdout}"
    );
    assert!(
        stderr.contains("only copy") && stderr.contains("There is no ConfigMap"),
        "{stderr}"
    );
    let left = key_secrets(&client, &ns.name).await;
    assert_eq!(left.keys().collect::<Vec<_>>(), [&new]);
    controller
        .check_running()
        .expect("the controller keeps running");
}
