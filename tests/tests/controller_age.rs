//! `sealant-controller` and age recipients, on the harness's real control plane (issue
//! #5, "age recipients and multi-cluster sealing"): every key generation the
//! controller writes also holds an age identity, the controller publishes its
//! recipient at `/v1/age-recipient`, and unseals values sealed to it exactly as it
//! unseals RSA values: same scope rules, same status, same zero-decryption restart.
//!
//! Each test starts its own controller that watches only the test's namespace and
//! keeps its keys there. That the Bitnami controller still loads a key Secret with the
//! extra `age.key` is proven in `controller_interop.rs` (its step 4 loads a key this
//! controller wrote).

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams};
use sealant_crds::{SealedSecret, parse_documents, sealed_secret_from_value, to_json};
use sealant_e2e::control_plane::http_get;
use sealant_e2e::fixtures::{expected, kubectl_apply, seal, seal_to_recipients, secret_values};
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{TestNamespace, cluster, random_hex};
use sealant_keys::{AgeIdentity, AgeRecipient, PrivateKey, Scope, age_envelope};

/// The key Secret label selector, as Bitnami and sealant write it.
const KEY_SELECTOR: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";

/// `GET /v1/age-recipient`, checked to be a 200 with one recipient and a newline.
fn age_recipient(controller: &SealantController) -> AgeRecipient {
    let (code, body) = http_get(controller.addr, "/v1/age-recipient").expect("GET");
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("age1") && body.ends_with('\n'), "{body:?}");
    assert_eq!(body.lines().count(), 1, "{body:?}");
    body.trim().parse().expect("an age recipient")
}

/// The only key Secret in `namespace`, and the fingerprint of its RSA key.
async fn key_secret(client: &kube::Client, namespace: &str) -> (Secret, String) {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut list = api
        .list(&ListParams::default().labels(KEY_SELECTOR))
        .await
        .expect("list key Secrets")
        .items;
    assert_eq!(list.len(), 1, "one key generation");
    let secret = list.remove(0);
    let tls_key = &secret.data.as_ref().expect("data")["tls.key"].0;
    let fingerprint = PrivateKey::from_pem(tls_key)
        .expect("tls.key")
        .fingerprint()
        .as_str()
        .to_owned();
    (secret, fingerprint)
}

/// One value sealed as an age envelope to `recipient` for the strict `namespace/name`,
/// base64 as `spec.encryptedData` holds it.
fn age_value(recipient: &AgeRecipient, namespace: &str, name: &str, value: &str) -> String {
    let label = Scope::Strict.label(namespace, name);
    let blob = age_envelope::seal(std::slice::from_ref(recipient), &label, value.as_bytes())
        .expect("age seals");
    base64::engine::general_purpose::STANDARD.encode(blob)
}

fn parse_sealed(yaml: &[u8]) -> SealedSecret {
    let text = std::str::from_utf8(yaml).expect("UTF-8");
    let doc = parse_documents(text)
        .expect("YAML")
        .into_iter()
        .next()
        .expect("one document");
    sealed_secret_from_value(doc).expect("a SealedSecret")
}

async fn secret_where(
    api: &Api<Secret>,
    controller: &SealantController,
    name: &str,
    want: &BTreeMap<String, String>,
) -> Secret {
    eventually(&format!("Secret {name}"), controller, || async {
        api.get_opt(name)
            .await
            .ok()
            .flatten()
            .filter(|s| &secret_values(s) == want)
    })
    .await
}

/// Waits until `name`'s status is `Synced` with `status`, and returns it.
async fn synced(
    api: &Api<SealedSecret>,
    controller: &SealantController,
    name: &str,
    status: &str,
) -> SealedSecret {
    eventually(&format!("{name} Synced={status}"), controller, || async {
        let s = api.get_opt(name).await.ok().flatten()?;
        let condition = s.status.as_ref()?.conditions.as_ref()?.first()?.clone();
        (condition.type_ == "Synced" && condition.status == status).then_some(s)
    })
    .await
}

#[tokio::test]
async fn controller_serves_the_age_recipient_of_the_identity_it_keeps_in_its_key_secret() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "age-recipient")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let served = age_recipient(&controller);
    let client = cp.client().await.expect("client");
    let (secret, _) = key_secret(&client, &ns.name).await;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.expect("data");
    let names: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(names, ["age.key", "tls.crt", "tls.key"]);
    let file = std::str::from_utf8(&data["age.key"].0).expect("UTF-8");
    let identities = AgeIdentity::parse_file(file).expect("an age identity file");
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].recipient(), &served);
    assert!(
        controller
            .metric(r#"sealed_secrets_controller_http_requests_total{handler="/v1/age-recipient",method="GET",code="200"}"#)
            .expect("metric")
            >= 1.0
    );
    let log = controller.log().expect("log");
    assert!(
        !log.contains("AGE-SECRET-KEY"),
        "the identity is never logged"
    );
}

#[tokio::test]
async fn sealed_secret_sealed_to_the_age_recipient_becomes_the_secret_and_status_names_the_key() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "age-unseal")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let recipient = age_recipient(&controller);
    let client = cp.client().await.expect("client");
    let (_, fingerprint) = key_secret(&client, &ns.name).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    let password = format!("age-{}", random_hex(8));

    // Sealed by the CLI to two recipients: this cluster's and another cluster's.
    let other = AgeIdentity::generate();
    let yaml = seal_to_recipients(
        &[&recipient.to_string(), &other.recipient().to_string()],
        &ns.name,
        "db",
        &[("password", &password), ("user", "admin")],
    );
    let parsed = parse_sealed(&yaml);
    for v in parsed.spec.encrypted_data.values() {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(v)
            .expect("base64");
        assert!(age_envelope::is_age(&blob), "the CLI sealed age values");
    }
    kubectl_apply(cp, &yaml);
    let want = expected(&[("password", &password), ("user", "admin")]);
    let secret = secret_where(&secrets, &controller, "db", &want).await;
    assert_eq!(
        secret.metadata.owner_references.expect("owned")[0].name,
        "db"
    );
    let status = synced(&sealed_api, &controller, "db", "True").await;
    assert_eq!(
        status.status.expect("status").key_fingerprints,
        Some(vec![fingerprint.clone()]),
        "the status names the RSA key of the key generation whose age identity opened it"
    );

    // One RSA value (the certificate) and one age value in the same SealedSecret.
    let mut mixed = parse_sealed(&seal(
        &controller.cert_pem().expect("cert"),
        &ns.name,
        "mixed",
        &[("rsa", "from the certificate")],
    ));
    mixed.spec.encrypted_data.insert(
        "age".to_owned(),
        age_value(&recipient, &ns.name, "mixed", "from the recipient"),
    );
    kubectl_apply(cp, to_json(&mixed).as_bytes());
    let want = expected(&[
        ("rsa", "from the certificate"),
        ("age", "from the recipient"),
    ]);
    secret_where(&secrets, &controller, "mixed", &want).await;
    let status = synced(&sealed_api, &controller, "mixed", "True").await;
    assert_eq!(
        status.status.expect("status").key_fingerprints,
        Some(vec![fingerprint.clone()])
    );
    let needing =
        format!(r#"sealant_controller_key_sealed_secrets{{fingerprint="{fingerprint}"}}"#);
    eventually("both SealedSecrets counted", &controller, || async {
        (controller.metric(&needing).ok()? == 2.0).then_some(())
    })
    .await;
    assert!(
        controller
            .metric(&format!(
                r#"sealant_controller_key_age_seconds{{fingerprint="{fingerprint}"}}"#
            ))
            .expect("key age")
            >= 0.0
    );
    assert!(
        controller
            .metric("sealant_controller_key_renewal_seconds")
            .expect("renewal")
            > 0.0
    );
    let log = controller.log().expect("log");
    assert!(!log.contains(&password), "no plaintext logged");
}

#[tokio::test]
async fn age_value_moved_to_another_name_is_not_synced_and_reports_unseal_failure() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "age-moved")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let recipient = age_recipient(&controller);
    let client = cp.client().await.expect("client");
    let plaintext = format!("moved-{}", random_hex(8));
    // Sealed for the name "original", applied as "moved".
    let yaml = seal_to_recipients(
        &[&recipient.to_string()],
        &ns.name,
        "original",
        &[("k", &plaintext)],
    );
    let mut moved = parse_sealed(&yaml);
    moved.metadata.name = Some("moved".to_owned());
    if let Some(t) = moved
        .spec
        .template
        .as_mut()
        .and_then(|t| t.metadata.as_mut())
    {
        t.name = Some("moved".to_owned());
    }
    kubectl_apply(cp, to_json(&moved).as_bytes());

    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    let status = synced(&sealed_api, &controller, "moved", "False").await;
    let message = status.status.expect("status").conditions.expect("c")[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(message.contains("spec.encryptedData.k"), "{message}");
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    eventually("an ErrUnsealFailed event", &controller, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("ErrUnsealFailed")
                    && e.involved_object.name.as_deref() == Some("moved")
            })
            .then_some(())
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(client, &ns.name);
    assert!(secrets.get_opt("moved").await.expect("get").is_none());
    assert!(!controller.log().expect("log").contains(&plaintext));
    controller.check_running().expect("still running");
}

#[tokio::test]
async fn restart_over_in_sync_age_sealed_secrets_decrypts_nothing() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "age-restart")
        .await
        .expect("namespace");
    let first = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let recipient = age_recipient(&first);
    let client = cp.client().await.expect("client");
    let (_, fingerprint) = key_secret(&client, &ns.name).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &ns.name);
    const N: usize = 3;
    for i in 0..N {
        let name = format!("a{i}");
        let yaml = seal_to_recipients(
            &[&recipient.to_string()],
            &ns.name,
            &name,
            &[("k", &format!("v{i}"))],
        );
        kubectl_apply(cp, &yaml);
    }
    for i in 0..N {
        let name = format!("a{i}");
        secret_where(
            &secrets,
            &first,
            &name,
            &expected(&[("k", &format!("v{i}"))]),
        )
        .await;
        synced(&sealed_api, &first, &name, "True").await;
    }
    assert_eq!(
        first
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        N as f64
    );
    assert_eq!(
        first
            .metric(&format!(
                r#"sealant_controller_key_decryptions_total{{fingerprint="{fingerprint}"}}"#
            ))
            .expect("metric"),
        N as f64
    );
    first.kill();

    let second = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller again");
    assert_eq!(
        age_recipient(&second),
        recipient,
        "the restart reuses the key"
    );
    second.wait_for_in_sync_skips(N).await;
    assert_eq!(
        second
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        0.0,
        "in-sync age SealedSecrets are proven without decrypting"
    );
    // The zero-decryption path still counts what each key is needed for (recorded
    // at the end of each pass, just after its in-sync skip is counted).
    let metric = format!(r#"sealant_controller_key_sealed_secrets{{fingerprint="{fingerprint}"}}"#);
    eventually(
        "the key inventory metric to count every SealedSecret",
        &second,
        || async { (second.metric(&metric).ok()? == N as f64).then_some(()) },
    )
    .await;
    assert_eq!(
        second
            .metric("sealant_controller_decryptions_total")
            .expect("metric"),
        0.0,
        "still no decryption"
    );
}
