//! One reconcile pass against a scripted API server (a `tower::service_fn`, no sockets):
//! which requests one reconcile pass sends, in which order, with which bodies.

use std::convert::Infallible;
use std::sync::Mutex;

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use sealant_crds::SealedSecretStatus;
use sealant_crds::key_secret::KeyEntry;

use kube::runtime::events::Reporter;

use super::*;
use crate::fixtures::request_parts;
use crate::key_secrets::tests::{sealed_app_db, test_keys};
use crate::reconcile::EVENT_COMPONENT;

/// One request the controller sent: method, path (with query) and JSON body.
type Sent = (String, String, serde_json::Value);

struct Fake {
    existing: Option<Secret>,
    sealed: SealedSecret,
}

/// One SealedSecret for every test: sealing again would give new ciphertext, which
/// the in-sync proof rightly treats as a change.
fn sealed() -> SealedSecret {
    static SEALED: std::sync::OnceLock<SealedSecret> = std::sync::OnceLock::new();
    SEALED
        .get_or_init(|| {
            let mut s = sealed_app_db("uid-1");
            s.metadata.generation = Some(1);
            s
        })
        .clone()
}

/// A Secret named like the SealedSecret that it does not own.
fn foreign_secret() -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("db".to_owned()),
            namespace: Some("app".to_owned()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    }
}

/// `sealed` as a controller has already reported on it (it has a status).
fn reported(mut sealed: SealedSecret) -> SealedSecret {
    sealed.status = Some(Default::default());
    sealed
}

fn context(fake: Fake) -> (Arc<Context>, Arc<Mutex<Vec<Sent>>>) {
    context_with(fake, true)
}

/// As [`context`], with `--accept-template-data` as given.
fn context_with(fake: Fake, accept_template_data: bool) -> (Arc<Context>, Arc<Mutex<Vec<Sent>>>) {
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let log = sent.clone();
    let fake = Arc::new(fake);
    let service = tower::service_fn(move |req: Request<kube::client::Body>| {
        let log = log.clone();
        let fake = fake.clone();
        async move {
            let (method, uri, bytes) = request_parts(req).await;
            let path = uri.to_string();
            let body: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            log.lock()
                .expect("lock")
                .push((method.clone(), path.clone(), body.clone()));
            let route = path.split('?').next().unwrap_or_default().to_owned();
            let (status, reply) = match (method.as_str(), route.as_str()) {
                ("GET", "/api/v1/namespaces/app/secrets/db") => match &fake.existing {
                    Some(s) => (StatusCode::OK, serde_json::to_value(s).expect("json")),
                    None => (
                        StatusCode::NOT_FOUND,
                        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "secrets \"db\" not found"}),
                    ),
                },
                ("POST", "/api/v1/namespaces/app/secrets") if fake.existing.is_some() => (
                    StatusCode::CONFLICT,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409, "message": "secrets \"db\" already exists"}),
                ),
                ("POST", "/api/v1/namespaces/app/secrets") => {
                    // The API server defaults the type, as a real one does.
                    let mut stored = body;
                    if stored.get("type").is_none() {
                        stored["type"] = serde_json::json!("Opaque");
                    }
                    stored["metadata"]["namespace"] = serde_json::json!("app");
                    stored["metadata"]["resourceVersion"] = serde_json::json!("7");
                    (StatusCode::CREATED, stored)
                }
                ("PUT", "/api/v1/namespaces/app/secrets/db") => {
                    let mut stored = body;
                    stored["metadata"]["namespace"] = serde_json::json!("app");
                    stored["metadata"]["resourceVersion"] = serde_json::json!("8");
                    (StatusCode::OK, stored)
                }
                ("PATCH", "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status") => (
                    StatusCode::OK,
                    serde_json::to_value(&fake.sealed).expect("json"),
                ),
                ("POST", "/apis/events.k8s.io/v1/namespaces/app/events") => {
                    (StatusCode::CREATED, body)
                }
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"unexpected": path}),
                ),
            };
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(axum::body::Bytes::from(reply.to_string())))
                .expect("response");
            Ok::<_, Infallible>(response)
        }
    });
    let client = Client::new(service, "default");
    let mut keys = Keys::default();
    for (k, c) in test_keys() {
        keys.insert(KeyEntry::new(k.clone(), c.clone(), None, c.not_before()));
    }
    let reporter = Reporter {
        controller: EVENT_COMPONENT.to_owned(),
        instance: None,
    };
    let ctx = Context {
        client: client.clone(),
        keys: Arc::new(KeyStore::new(keys)),
        metrics: Arc::new(Metrics::new("test", false)),
        recorder: Recorder::new(client, reporter.clone()),
        reporter,
        update_status: true,
        accept_v1_data: true,
        accept_template_data,
        created: Default::default(),
        proofs: Default::default(),
        own_writes: Default::default(),
    };
    (Arc::new(ctx), sent)
}

fn calls(sent: &Mutex<Vec<Sent>>) -> Vec<(String, String)> {
    sent.lock()
        .expect("lock")
        .iter()
        .map(|(m, p, _)| {
            (
                m.clone(),
                p.split('?').next().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn body_of(sent: &Mutex<Vec<Sent>>, method: &str, path_prefix: &str) -> serde_json::Value {
    sent.lock()
        .expect("lock")
        .iter()
        .find(|(m, p, _)| m == method && p.starts_with(path_prefix))
        .map(|(_, _, b)| b.clone())
        .unwrap_or_else(|| panic!("no {method} {path_prefix}"))
}

#[tokio::test]
async fn first_pass_creates_owned_secret_without_reading_it_first_and_reports_synced() {
    let s = sealed();
    let (ctx, sent) = context(Fake {
        existing: None,
        sealed: s.clone(),
    });
    let action = reconcile(Arc::new(s), ctx.clone())
        .await
        .expect("reconciles");
    assert_eq!(action, Action::await_change());
    let methods = calls(&sent);
    // No status yet: the Secret is created straight away, without a GET.
    assert_eq!(
        methods[0],
        (
            "POST".to_owned(),
            "/api/v1/namespaces/app/secrets".to_owned()
        )
    );
    let create_path = sent.lock().expect("lock")[0].1.clone();
    assert!(
        create_path.contains("fieldManager=sealant-controller"),
        "{create_path}"
    );
    let created = body_of(&sent, "POST", "/api/v1/namespaces/app/secrets");
    assert_eq!(created["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    assert_eq!(created["data"]["password"], "aHVudGVyMg==");
    assert_eq!(
        created["metadata"]["annotations"],
        serde_json::Value::Null,
        "exactly the template's metadata"
    );
    let status = body_of(
        &sent,
        "PATCH",
        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
    );
    assert_eq!(status["status"]["conditions"][0]["status"], "True");
    assert_eq!(
        status["status"]["conditions"][1]["type"],
        sealant_crds::proof::CONDITION_IN_SYNC_PROOF
    );
    assert!(
        status["status"]["conditions"][1]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("v1:SHA256:"))
    );
    assert_eq!(status["status"]["observedGeneration"], 1);
    let fingerprint = test_keys()[2].0.fingerprint().as_str();
    assert_eq!(
        status["status"]["keyFingerprints"],
        serde_json::json!([fingerprint])
    );
    let text = ctx.metrics.encode();
    for needle in [
        format!(r#"sealant_controller_key_decryptions_total{{fingerprint="{fingerprint}"}} 1"#),
        format!(r#"sealant_controller_key_sealed_secrets{{fingerprint="{fingerprint}"}} 1"#),
    ] {
        assert!(text.contains(&needle), "missing {needle}\n{text}");
    }
    let event = body_of(
        &sent,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/app/events",
    );
    assert_eq!(event["reason"], "Unsealed");
    assert_eq!(
        (ctx.metrics.decryptions(), ctx.metrics.in_sync_skips()),
        (1, 0)
    );
}

/// What the first pass wrote, as the API server would return it: the Secret, the
/// status, and the context (which remembers the proof it wrote).
async fn first_pass() -> (Secret, SealedSecretStatus, Arc<Context>) {
    let s = sealed();
    let (ctx, sent) = context(Fake {
        existing: None,
        sealed: s.clone(),
    });
    reconcile(Arc::new(s), ctx.clone())
        .await
        .expect("reconciles");
    let mut secret: Secret =
        serde_json::from_value(body_of(&sent, "POST", "/api/v1/namespaces/app/secrets"))
            .expect("Secret");
    secret.metadata.resource_version = Some("5".to_owned());
    let status = body_of(
        &sent,
        "PATCH",
        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
    );
    let status = serde_json::from_value(status["status"].clone()).expect("status");
    (secret, status, ctx)
}

async fn written_secret() -> Secret {
    first_pass().await.0
}

/// Runs one pass over `s` with `existing`, and returns the calls it made and the
/// (decryptions, in-sync skips) it counted.
async fn pass(
    s: SealedSecret,
    existing: Secret,
    carry: Option<&Context>,
) -> (Vec<(String, String)>, Arc<Mutex<Vec<Sent>>>, (u64, u64)) {
    let (ctx, sent) = context(Fake {
        existing: Some(existing),
        sealed: s.clone(),
    });
    if let Some(from) = carry {
        let proofs = from.proofs.lock().expect("lock").clone();
        ctx.proofs.lock().expect("lock").extend(proofs);
        let created = from.created.lock().expect("lock").clone();
        ctx.created.lock().expect("lock").extend(created);
    }
    reconcile(Arc::new(s), ctx.clone())
        .await
        .expect("reconciles");
    let counts = (ctx.metrics.decryptions(), ctx.metrics.in_sync_skips());
    (calls(&sent), sent, counts)
}

#[tokio::test]
async fn restart_over_in_sync_secret_decrypts_nothing_and_writes_nothing() {
    let (existing, status, _) = first_pass().await;
    let mut s = sealed();
    s.status = Some(status);
    let (calls, _, counts) = pass(s, existing, None).await;
    assert_eq!(
        calls,
        vec![(
            "GET".to_owned(),
            "/api/v1/namespaces/app/secrets/db".to_owned()
        )]
    );
    assert_eq!(counts, (0, 1));
}

#[tokio::test]
async fn restart_without_a_proof_in_the_status_decrypts_once_and_writes_it() {
    let (existing, status, _) = first_pass().await;
    let mut s = sealed();
    // Bitnami's controller wrote this status: Synced only, no proof.
    s.status = Some(SealedSecretStatus {
        conditions: status.conditions.map(|c| c[..1].to_vec()),
        ..SealedSecretStatus::default()
    });
    let (calls, sent, counts) = pass(s, existing, None).await;
    assert_eq!(counts, (1, 0));
    assert!(
        !calls
            .iter()
            .any(|(m, p)| m == "PUT" && p.contains("/secrets")),
        "{calls:?}"
    );
    let patched = body_of(
        &sent,
        "PATCH",
        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
    );
    assert_eq!(
        patched["status"]["conditions"][1]["type"],
        sealant_crds::proof::CONDITION_IN_SYNC_PROOF
    );
}

#[tokio::test]
async fn the_secret_a_pass_writes_is_remembered_until_its_echo() {
    let (_, _, ctx) = first_pass().await;
    assert_eq!(ctx.own_writes.pending(), 1);
    assert!(ctx.own_writes.is_echo("app", "db", Some("7")).await);
    // A repair (PUT) is remembered too.
    let mut edited = written_secret().await;
    edited
        .data
        .get_or_insert_default()
        .insert("password".to_owned(), ByteString(b"edited".to_vec()));
    let (ctx, _) = context(Fake {
        existing: Some(edited),
        sealed: reported(sealed()),
    });
    reconcile(Arc::new(reported(sealed())), ctx.clone())
        .await
        .expect("repairs");
    assert!(ctx.own_writes.is_echo("app", "db", Some("8")).await);
}

#[tokio::test]
async fn secret_written_by_a_controller_that_died_before_the_status_is_decrypted_once() {
    // The last controller created the Secret and was killed before it wrote the
    // status: the next one tries to create it (no status), meets the 409, reads it,
    // and finds it in step with the values it decrypted for the create. One RSA pass,
    // no write to the Secret, and the status reports it.
    let existing = written_secret().await;
    let (calls, sent, counts) = pass(sealed(), existing, None).await;
    assert_eq!(counts, (1, 0));
    let secret_calls: Vec<_> = calls
        .iter()
        .filter(|(_, p)| p.contains("/secrets"))
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(secret_calls, ["POST", "GET"]);
    let patched = body_of(
        &sent,
        "PATCH",
        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
    );
    assert_eq!(patched["status"]["conditions"][0]["status"], "True");
}

#[tokio::test]
async fn pass_triggered_by_its_own_write_proves_with_the_proof_it_just_wrote() {
    // The Secret's creation triggers a second pass, usually before the cache shows
    // the status the first pass wrote: that pass must not decrypt again.
    let (existing, _, ctx) = first_pass().await;
    let (_, _, counts) = pass(sealed(), existing, Some(&ctx)).await;
    assert_eq!(counts, (0, 1));
}

#[tokio::test]
async fn upgrade_from_the_proof_annotation_decrypts_nothing_and_moves_it_to_the_status() {
    let (mut existing, status, _) = first_pass().await;
    let proof = status.in_sync_proof().expect("proof").to_owned();
    existing
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(
            sealant_crds::proof::LEGACY_ANNOTATION.to_owned(),
            proof.clone(),
        );
    let mut s = sealed();
    s.status = Some(SealedSecretStatus {
        conditions: status.conditions.map(|c| c[..1].to_vec()),
        ..status
    });
    let (_, sent, counts) = pass(s, existing, None).await;
    assert_eq!(counts, (0, 1), "the old annotation still proves");
    let put = body_of(&sent, "PUT", "/api/v1/namespaces/app/secrets/db");
    assert_eq!(put["metadata"]["annotations"], serde_json::Value::Null);
    let patched = body_of(
        &sent,
        "PATCH",
        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
    );
    assert_eq!(patched["status"]["conditions"][1]["message"], proof);
}

#[tokio::test]
async fn hand_edited_secret_is_decrypted_and_repaired_with_optimistic_replace() {
    let mut existing = written_secret().await;
    existing
        .data
        .as_mut()
        .expect("data")
        .insert("password".to_owned(), ByteString(b"edited".to_vec()));
    let s = reported(sealed());
    let (ctx, sent) = context(Fake {
        existing: Some(existing),
        sealed: s.clone(),
    });
    reconcile(Arc::new(s), ctx.clone())
        .await
        .expect("reconciles");
    let put = body_of(&sent, "PUT", "/api/v1/namespaces/app/secrets/db");
    assert_eq!(put["data"]["password"], "aHVudGVyMg==");
    assert_eq!(put["metadata"]["resourceVersion"], "5");
    assert_eq!(
        (ctx.metrics.decryptions(), ctx.metrics.in_sync_skips()),
        (1, 0)
    );
}

#[tokio::test]
async fn template_data_refused_by_flag_sends_no_secret_request_and_reports_synced_false() {
    let mut s = sealed();
    s.spec.template.get_or_insert_default().data =
        Some([("dsn".to_owned(), "db://{{ .password }}".to_owned())].into());
    let (ctx, sent) = context_with(
        Fake {
            existing: None,
            sealed: s.clone(),
        },
        false,
    );
    let err = reconcile(Arc::new(s), ctx.clone())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::TemplateDataRefused { .. }), "{err:?}");
    assert!(
        !calls(&sent).iter().any(|(_, p)| p.contains("/secrets")),
        "no Secret request: {:?}",
        calls(&sent)
    );
    let status = body_of(
        &sent,
        "PATCH",
        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
    );
    assert_eq!(status["status"]["conditions"][0]["status"], "False");
    assert!(
        status["status"]["conditions"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--accept-template-data=false"))
    );
    let event = body_of(
        &sent,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/app/events",
    );
    assert_eq!(event["reason"], "ErrUnsealFailed");
    assert_eq!(ctx.metrics.decryptions(), 0);
}

#[tokio::test]
async fn foreign_secret_is_not_written_and_the_refusal_is_reported() {
    let s = sealed();
    let (ctx, sent) = context(Fake {
        existing: Some(foreign_secret()),
        sealed: s.clone(),
    });
    let err = reconcile(Arc::new(s), ctx.clone())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Unmanaged { .. }), "{err:?}");
    // A new SealedSecret (no status) tries to create its Secret; the API server
    // refuses (it exists), and the Secret is then read and left alone.
    let secret_calls: Vec<_> = calls(&sent)
        .into_iter()
        .filter(|(_, p)| p.contains("/secrets"))
        .collect();
    assert_eq!(
        secret_calls,
        [
            (
                "POST".to_owned(),
                "/api/v1/namespaces/app/secrets".to_owned()
            ),
            (
                "GET".to_owned(),
                "/api/v1/namespaces/app/secrets/db".to_owned()
            ),
        ]
    );
    let status = body_of(
        &sent,
        "PATCH",
        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
    );
    assert_eq!(status["status"]["conditions"][0]["status"], "False");
    assert_eq!(
        status["status"]["conditions"][0]["message"],
        r#"Resource "db" already exists and is not managed by SealedSecret"#
    );
    let event = body_of(
        &sent,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/app/events",
    );
    assert_eq!(event["reason"], "ErrUpdateFailed");
    assert_eq!(event["type"], "Warning");
    // The create-first attempt decrypted once before the conflict was known; once
    // the refusal is in the status, retries read first and do no RSA work.
    assert_eq!(ctx.metrics.decryptions(), 1);
    let (ctx, _) = context(Fake {
        existing: Some(foreign_secret()),
        sealed: reported(sealed()),
    });
    reconcile(Arc::new(reported(sealed())), ctx.clone())
        .await
        .expect_err("refused again");
    assert_eq!(
        ctx.metrics.decryptions(),
        0,
        "no RSA work for a Secret in the way"
    );
    assert!(
        ctx.metrics
            .encode()
            .contains(r#"unseal_errors_total{reason="unmanaged",namespace="app"} 1"#)
    );
}
