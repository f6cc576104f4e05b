//! The API's handlers in-process (`tower::ServiceExt::oneshot`), and the fixtures
//! the listener's loopback tests share.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::BodyExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_crds::key_secret::KeyEntry;
use sealant_crds::unseal;
use sealant_keys::{OffsetDateTime, Scope};
use tower::ServiceExt as _;

use super::*;
use crate::key_secrets::tests::test_keys;

pub(super) fn keys(indices: &[usize]) -> Keys {
    let mut keys = Keys::default();
    for &i in indices {
        let (k, c) = &test_keys()[i];
        keys.insert(KeyEntry::new(k.clone(), c.clone(), None, c.not_before()));
    }
    keys
}

pub(super) fn state(keys: Keys, rate: u32, burst: u32) -> Arc<ApiState> {
    Arc::new(ApiState {
        keys: Arc::new(KeyStore::new(keys)),
        metrics: Arc::new(Metrics::new("test", false)),
        limiter: TokenBucket::new(rate, burst),
        accept_v1_data: true,
        escrow: Arc::new(Escrow::new(Vec::new())),
    })
}

fn sealed_json(key_index: usize, scope: Option<Scope>, value: &str) -> String {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("db".to_owned()),
            namespace: Some("app".to_owned()),
            labels: Some(BTreeMap::from([("team".to_owned(), "x".to_owned())])),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([("password".to_owned(), value.to_owned())])),
        ..Secret::default()
    };
    let opts = SealOptions {
        scope,
        allow_empty_data: false,
    };
    to_json(&seal_secret(&secret, test_keys()[key_index].1.public_key(), &opts).expect("seals"))
}

async fn call(
    router: Router,
    method: &str,
    path: &str,
    body: impl Into<axum::body::Body>,
) -> (StatusCode, String, Option<String>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(body.into())
        .expect("request");
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let ct = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned(), ct)
}

#[tokio::test]
async fn healthz_says_ok() {
    let (status, body, _) = call(
        api_router(state(Keys::default(), 2, 2)),
        "GET",
        "/healthz",
        "",
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn readyz_is_503_until_a_sealing_key_is_loaded_then_ok() {
    let (status, body, _) = call(
        api_router(state(Keys::default(), 2, 2)),
        "GET",
        "/readyz",
        "",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no sealing key is loaded yet\n"
        )
    );
    let (status, body, _) = call(api_router(state(keys(&[0]), 2, 2)), "GET", "/readyz", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn cert_pem_serves_the_newest_certificate() {
    let (status, body, ct) = call(
        api_router(state(keys(&[0, 2, 1]), 2, 2)),
        "GET",
        "/v1/cert.pem",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some(PEM_CONTENT_TYPE));
    assert_eq!(body, test_keys()[2].1.to_pem());
    assert!(!body.contains('\r'), "Bitnami serves LF line endings");
}

#[tokio::test]
async fn cert_pem_is_500_without_keys() {
    let (status, _, _) = call(
        api_router(state(Keys::default(), 2, 2)),
        "GET",
        "/v1/cert.pem",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// `keys(indices)` with an age identity beside each key, tied to it; the
/// identities in the same order.
fn keys_with_age(indices: &[usize]) -> (Keys, Vec<sealant_keys::AgeIdentity>) {
    let mut keys = Keys::default();
    let mut identities = Vec::new();
    for &i in indices {
        let (k, c) = &test_keys()[i];
        let identity = sealant_keys::AgeIdentity::generate();
        keys.insert(KeyEntry::new(
            k.clone(),
            c.clone(),
            Some(identity.clone()),
            c.not_before(),
        ));
        identities.push(identity);
    }
    (keys, identities)
}

#[tokio::test]
async fn age_recipient_serves_the_newest_key_generations_recipient_as_text() {
    let (keys, identities) = keys_with_age(&[0, 2, 1]);
    let st = state(keys, 2, 2);
    let (status, body, ct) = call(api_router(st.clone()), "GET", "/v1/age-recipient", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some(TEXT_CONTENT_TYPE));
    assert_eq!(body, format!("{}\n", identities[1].recipient()));
    assert!(body.starts_with("age1"), "{body}");
    assert!(!body.to_ascii_uppercase().contains("SECRET-KEY"));
    let text = st.metrics.encode();
    assert!(
        text.contains(r#"sealed_secrets_controller_http_requests_total{handler="/v1/age-recipient",method="GET",code="200"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn escrow_bundle_is_404_without_escrow_recipients() {
    let st = state(keys(&[0]), 2, 2);
    let (status, body, _) = call(api_router(st), "GET", "/v1/escrow-bundle", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("--escrow-recipient"), "{body}");
}

#[tokio::test]
async fn escrow_bundle_serves_the_cached_bundle_and_503_without_keys() {
    let identity = sealant_keys::AgeIdentity::generate();
    let escrow = Arc::new(Escrow::new(vec![identity.recipient().clone()]));
    let st = Arc::new(ApiState {
        keys: Arc::new(KeyStore::default()),
        metrics: Arc::new(Metrics::new("test", false)),
        limiter: TokenBucket::new(0, 0),
        accept_v1_data: true,
        escrow: escrow.clone(),
    });
    let (status, _, _) = call(api_router(st.clone()), "GET", "/v1/escrow-bundle", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no key loaded yet");

    let mut loaded = keys(&[0, 1]);
    for (k, c) in &test_keys()[..2] {
        let secret = crate::key_secrets::new_key_secret(
            k,
            c,
            None,
            "ns",
            "p",
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        loaded.set_secret(k.fingerprint(), &secret);
    }
    escrow.refresh(&loaded).expect("builds");
    let cached = escrow.bundle().expect("bundle").armored.clone();
    // Twice, past a rate limit of zero: served from the cache, not limited.
    for _ in 0..2 {
        let (status, body, ct) = call(api_router(st.clone()), "GET", "/v1/escrow-bundle", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some(TEXT_CONTENT_TYPE));
        assert_eq!(body, cached, "the cached bundle, not a new encryption");
    }
    let plain = sealant_keys::bundle::open(&[identity], cached.as_bytes()).expect("opens");
    let text = std::str::from_utf8(plain.expose_secret()).expect("UTF-8");
    let secrets = sealant_crds::key_secret::parse_key_list(text).expect("List");
    assert_eq!(secrets.len(), 2);
}

#[tokio::test]
async fn age_recipient_is_404_without_an_age_identity() {
    for keys in [Keys::default(), keys(&[0, 1])] {
        let st = state(keys, 2, 2);
        let (status, body, _) = call(api_router(st.clone()), "GET", "/v1/age-recipient", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("age identity"), "{body}");
        assert!(st.metrics.encode().contains(
            r#"http_requests_total{handler="/v1/age-recipient",method="GET",code="404"} 1"#
        ));
    }
}

#[tokio::test]
async fn verify_opens_values_sealed_to_the_age_recipient() {
    let (keys, identities) = keys_with_age(&[1]);
    let router = api_router(state(keys, 100, 100));
    let mut sealed: SealedSecret = serde_json::from_str(&sealed_json(1, None, "v")).expect("json");
    let label = Scope::Strict.label("app", "db");
    let blob = sealant_keys::age_envelope::seal(
        std::slice::from_ref(identities[0].recipient()),
        &label,
        b"age value",
    )
    .expect("seals");
    sealed.spec.encrypted_data.insert(
        "token".to_owned(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, blob),
    );
    let (status, _, _) = call(router.clone(), "POST", "/v1/verify", to_json(&sealed)).await;
    assert_eq!(status, StatusCode::OK);
    sealed.metadata.name = Some("moved".to_owned());
    let (status, _, _) = call(router, "POST", "/v1/verify", to_json(&sealed)).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn verify_answers_200_409_and_500() {
    let router = api_router(state(keys(&[1]), 100, 100));
    let (ok, _, _) = call(
        router.clone(),
        "POST",
        "/v1/verify",
        sealed_json(1, None, "v"),
    )
    .await;
    assert_eq!(ok, StatusCode::OK);
    let (conflict, body, _) = call(
        router.clone(),
        "POST",
        "/v1/verify",
        sealed_json(0, None, "v"),
    )
    .await;
    assert_eq!(conflict, StatusCode::CONFLICT);
    assert!(body.contains("unable to decrypt sealed secret"), "{body}");
    let (bad, _, _) = call(router.clone(), "POST", "/v1/verify", "{not json").await;
    assert_eq!(bad, StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, _, _) = call(
        router,
        "POST",
        "/v1/verify",
        r#"{"apiVersion":"v1","kind":"Secret"}"#,
    )
    .await;
    assert_eq!(kind, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn verify_accepts_yaml() {
    let json = sealed_json(1, None, "v");
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    let yaml = serde_yaml_ng::to_string(&value).expect("yaml");
    let (status, _, _) = call(
        api_router(state(keys(&[1]), 9, 9)),
        "POST",
        "/v1/verify",
        yaml,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

// The bucket reads tokio's clock (`bucket_now`), paused here: it moves only when the
// test advances it, so the refill is counted, never waited for.
#[tokio::test(start_paused = true)]
async fn verify_and_rotate_share_a_bucket_of_burst_plus_one_refilled_at_the_rate() {
    let router = api_router(state(keys(&[1]), 1, 2));
    let body = sealed_json(1, None, "v");
    let post = |path: &'static str| call(router.clone(), "POST", path, body.clone());
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(post("/v1/verify").await.0);
    }
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "burst + 1 pass"
    );
    assert_eq!(
        post("/v1/rotate").await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "/v1/rotate draws on the same bucket"
    );
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(
        post("/v1/verify").await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "half a token is not a token"
    );
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(
        post("/v1/rotate").await.0,
        StatusCode::OK,
        "one token a second"
    );
    assert_eq!(post("/v1/verify").await.0, StatusCode::TOO_MANY_REQUESTS);
    // A long quiet spell refills no more than the capacity.
    tokio::time::advance(Duration::from_secs(100)).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(post("/v1/verify").await.0);
    }
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "refilled to burst + 1, not beyond"
    );
}

/// `sealed_json(1, None, "v")` with `n` more values that no key opens.
fn with_junk_values(n: usize) -> String {
    let mut sealed: SealedSecret = serde_json::from_str(&sealed_json(1, None, "v")).expect("json");
    let junk_len = 2 + test_keys()[1].0.size_bytes() + 32;
    for i in 0..n {
        let mut blob = vec![0x5a; junk_len];
        blob[..2].copy_from_slice(&(test_keys()[1].0.size_bytes() as u16).to_be_bytes());
        sealed.spec.encrypted_data.insert(
            format!("junk{i:04}"),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, blob),
        );
    }
    to_json(&sealed)
}

#[tokio::test]
async fn verify_charges_one_token_per_sixteen_values() {
    // No refill, 5 tokens. 40 values cost 3 tokens, leaving 2 for one-value
    // requests; a request per value would have left 4.
    let router = api_router(state(keys(&[1]), 0, 4));
    let mut codes = vec![
        call(router.clone(), "POST", "/v1/verify", with_junk_values(39))
            .await
            .0,
    ];
    for _ in 0..3 {
        let body = sealed_json(1, None, "v");
        codes.push(call(router.clone(), "POST", "/v1/verify", body).await.0);
    }
    assert_eq!(
        codes,
        [
            StatusCode::CONFLICT,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn more_values_than_the_cap_are_refused_before_decrypting() {
    let router = api_router(state(keys(&[1]), 0, 1));
    let body = with_junk_values(MAX_VALUES_PER_REQUEST);
    let (status, answer, _) = call(router.clone(), "POST", "/v1/rotate", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    let (status, _, _) = call(router, "POST", "/v1/verify", sealed_json(1, None, "v")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the refused request took only its own token"
    );
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let (status, _, _) = call(
        api_router(state(keys(&[1]), 9, 9)),
        "POST",
        "/v1/verify",
        big,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

// Paused: no token is refilled between the two requests, however slow the machine.
#[tokio::test(start_paused = true)]
async fn declared_oversized_body_is_refused_unread_and_spends_no_token() {
    // Burst 0: exactly one request is admitted at once.
    let router = api_router(state(keys(&[1]), 1, 0));
    let request = Request::builder()
        .method("POST")
        .uri("/v1/verify")
        .header(header::CONTENT_LENGTH, (MAX_BODY_BYTES + 1).to_string())
        .body(axum::body::Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = call(router, "POST", "/v1/verify", sealed_json(1, None, "v")).await;
    assert_eq!(status, StatusCode::OK, "the refused request spent no token");
}

#[tokio::test]
async fn rotate_reencrypts_with_the_newest_key_keeping_scope_and_metadata() {
    for scope in [None, Some(Scope::NamespaceWide), Some(Scope::ClusterWide)] {
        let router = api_router(state(keys(&[0, 2]), 100, 100));
        let original = sealed_json(0, scope, "hunter2");
        let (status, body, ct) = call(router, "POST", "/v1/rotate", original.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert!(!body.contains("hunter2"));
        let rotated = parse_sealed(body.as_bytes()).expect("SealedSecret");
        let before = parse_sealed(original.as_bytes()).expect("SealedSecret");
        assert_eq!(rotated.metadata, before.metadata, "metadata and scope kept");
        assert_eq!(rotated.spec.template, before.spec.template);
        assert_ne!(rotated.spec.encrypted_data, before.spec.encrypted_data);
        // Only the newest key opens it now.
        let mut newest_only = sealant_keys::KeyRing::new();
        newest_only.insert(test_keys()[2].0.clone(), OffsetDateTime::now_utc());
        let u = unseal(&rotated, &newest_only, None).expect("newest key opens it");
        assert_eq!(u.data()["password"].expose_secret(), b"hunter2");
    }
}

/// `sealed_json(1, None, "hunter2")` with `template.data` set to `templates`.
fn with_templates(templates: &[(&str, &str)]) -> String {
    let mut sealed: SealedSecret =
        serde_json::from_str(&sealed_json(1, None, "hunter2")).expect("json");
    let template = sealed.spec.template.get_or_insert_default();
    template.data = Some(
        templates
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    to_json(&sealed)
}

#[tokio::test]
async fn verify_answers_by_the_ciphertexts_alone_never_by_a_template() {
    // The oracle of issue 11: a template that fails only when the plaintext
    // starts with "h". Both guesses, and a template that fails whatever the
    // value, must get the same answer as the ciphertexts alone.
    let router = api_router(state(keys(&[1]), 100, 100));
    for template in [
        r#"{{ if hasPrefix "h" .password }}{{ b64dec "!" }}{{ end }}"#,
        r#"{{ if hasPrefix "x" .password }}{{ b64dec "!" }}{{ end }}"#,
        "{{ nosuch }}",
        r#"{{ index (list) (index .password 0) }}"#,
    ] {
        let body = with_templates(&[("probe", template)]);
        let (status, answer, _) = call(router.clone(), "POST", "/v1/verify", body).await;
        assert_eq!(status, StatusCode::OK, "{template}: {answer}");
    }
    let undecryptable = api_router(state(keys(&[0]), 100, 100));
    let body = with_templates(&[("probe", "{{ .password }}")]);
    let (status, _, _) = call(undecryptable, "POST", "/v1/verify", body).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn rotate_reseals_exactly_the_sealed_values_under_a_shadowing_template() {
    let router = api_router(state(keys(&[1, 2]), 100, 100));
    let shadowing = with_templates(&[
        ("password", "{{ .password }}-rendered"),
        ("extra", "{{ .password | upper }}"),
    ]);
    // A template that fails whatever the value changes nothing either.
    let failing = with_templates(&[("password", r#"{{ b64dec "!" }}"#)]);
    for body in [shadowing, failing] {
        let (status, answer, _) = call(router.clone(), "POST", "/v1/rotate", body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let rotated = parse_sealed(answer.as_bytes()).expect("SealedSecret");
        let before = parse_sealed(body.as_bytes()).expect("SealedSecret");
        assert_eq!(
            rotated.spec.template, before.spec.template,
            "templates kept as they were"
        );
        assert_eq!(
            rotated.spec.encrypted_data.keys().collect::<Vec<_>>(),
            ["password"],
            "no template key becomes a sealed value"
        );
        let mut newest = sealant_keys::KeyRing::new();
        newest.insert(test_keys()[2].0.clone(), OffsetDateTime::now_utc());
        let opened = decrypt(&rotated, &newest, None).expect("the newest key opens it");
        assert_eq!(
            opened.data()["password"].expose_secret(),
            b"hunter2",
            "the sealed value, byte for byte, not the template's output"
        );
    }
}

#[tokio::test]
async fn rotate_of_undecryptable_is_409() {
    let (status, _, _) = call(
        api_router(state(keys(&[2]), 9, 9)),
        "POST",
        "/v1/rotate",
        sealed_json(0, None, "v"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn requests_are_counted_by_route_and_code() {
    let st = state(keys(&[1]), 9, 9);
    let router = api_router(st.clone());
    call(router.clone(), "GET", "/healthz", "").await;
    call(router, "POST", "/v1/verify", sealed_json(0, None, "v")).await;
    let (status, text, ct) = call(metrics_router(st.metrics.clone()), "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some(metrics::CONTENT_TYPE));
    assert!(text.contains(r#"sealed_secrets_controller_http_requests_total{handler="/healthz",method="GET",code="200"} 1"#), "{text}");
    assert!(
        text.contains(r#"handler="/v1/verify",method="POST",code="409"} 1"#),
        "{text}"
    );
}

// Paused: the 50 ms timeout elapses on tokio's clock as soon as the body stalls.
#[tokio::test(start_paused = true)]
async fn a_request_whose_body_stalls_gets_408() {
    let (_tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let request = Request::builder()
        .method("POST")
        .uri("/v1/verify")
        .body(axum::body::Body::from_stream(rx))
        .expect("request");
    let router = api_router_with_timeout(state(keys(&[1]), 9, 9), Duration::from_millis(50));
    let response = router.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}

#[test]
fn parse_sealed_wants_exactly_one_document() {
    let one = sealed_json(1, None, "v");
    assert!(parse_sealed(one.as_bytes()).is_ok());
    let two = format!("{one}\n{one}");
    assert!(
        parse_sealed(two.as_bytes())
            .expect_err("two")
            .contains("found 2")
    );
    assert!(parse_sealed(b"").is_err());
    assert!(parse_sealed(&[0xff, 0xfe]).is_err());
}
