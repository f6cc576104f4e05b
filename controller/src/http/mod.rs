//! The HTTP API, as Bitnami's controller serves it, so `kubeseal` and `sealant` reach
//! it unchanged through the API server's service proxy; and the metrics listener.
//!
//! | path | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` |
//! | `GET /v1/cert.pem` | the newest certificate, `application/x-pem-file`; 500 while no key is loaded |
//! | `GET /v1/age-recipient` | sealant only: the newest key generation's age recipient (`age1...` and a newline), `text/plain; charset=utf-8`; 404 when no loaded key generation has an age identity (only Bitnami-written keys) |
//! | `GET /v1/escrow-bundle` | sealant only: the escrow bundle of the active keys (an ASCII-armored age file, see [`crate::escrow`]), `text/plain; charset=utf-8`, as built from this replica's loaded keys; 404 without `--escrow-recipient`; 503 while no key is loaded |
//! | `POST /v1/verify` | body: one SealedSecret, JSON or YAML. 200 every sealed value opens, 409 not, 500 unparsable; 413 over 2 MiB or 512 values; 429 rate limited; 408 slower than 30 s |
//! | `POST /v1/rotate` | body: one SealedSecret. 200 and the SealedSecret with its sealed values re-encrypted with the newest key (JSON), same scope, template and metadata; 409 not decryptable; 500 unparsable; 413, 429 and 408 as verify |
//! | `GET /metrics` (metrics listener) | OpenMetrics text |
//!
//! Guarantees:
//! - `/v1/verify` and `/v1/rotate` share one token bucket (`--rate-limit` per second,
//!   `--rate-limit-burst` extra, as Bitnami's GCRA allows `burst + 1` at once) and
//!   answer 429 when it is empty, before the body is read or anything decrypted;
//! - the bucket is charged by RSA work, not only by requests: admission takes one
//!   token, and a SealedSecret with more than [`VALUES_PER_TOKEN`] values takes one
//!   more per started [`VALUES_PER_TOKEN`] before anything is decrypted (the bucket
//!   may go into debt, so a large object still passes once, and later requests wait
//!   for the debt to be refilled); more than [`MAX_VALUES_PER_REQUEST`] values are
//!   refused with 413, and a key whose size cannot match a blob is never tried;
//! - request bodies above [`MAX_BODY_BYTES`] are refused with 413: at once when the
//!   declared `Content-Length` is larger (without reading the body or spending a
//!   token), and otherwise as soon as the body read passes the cap;
//! - `/v1/verify` and `/v1/rotate` decrypt the sealed values and run no template
//!   ([`sealant_crds::decrypt`]): the answer depends only on whether every value opens
//!   under the scope of the SealedSecret's own metadata, so a template appended to a
//!   SealedSecret taken from Git cannot turn them into a plaintext oracle; they stop
//!   at the first value that no key opens;
//! - `/v1/rotate` re-seals exactly the sealed values, byte for byte: a template key
//!   that shadows a sealed key changes nothing in `encryptedData`;
//! - RSA work runs on the blocking pool, never on the async workers;
//! - `/v1/escrow-bundle` answers the bundle built when the keys last changed (no
//!   encryption per request), so like `/v1/cert.pem` it is cheap and not rate
//!   limited; it is ciphertext only, readable by the escrow identities alone;
//! - answers never include plaintext or the reason a decryption failed: a 409 says
//!   only that no known key could decrypt the object.
//!
//! - every connection is bounded ([`LimitedListener`], [`CONNECTION_LIMITS`]): at most
//!   256 are served at once (more wait in the kernel's accept queue); one that sends
//!   nothing for 10 s while the server reads (slow headers, a stalled body, an idle
//!   keep-alive) is cut, and so is any connection after 60 s; every API request,
//!   body read included, is answered within [`REQUEST_TIMEOUT`] (408 otherwise).
//!
//! The routers are plain `axum::Router`s, tested in-process with `tower::ServiceExt::oneshot`;
//! the listener is tested over loopback sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use sealant_crds::annotations::scope_of;
use sealant_crds::{
    SealOptions, SealedSecret, Unsealed, decrypt, parse_documents, seal_secret, seal_value, to_json,
};

use crate::Error;
use crate::escrow::Escrow;
use crate::key_secrets::{KeyStore, Keys};
use crate::metrics::{self, Metrics};

mod bucket;
mod listener;

pub use bucket::TokenBucket;
pub use listener::{CONNECTION_LIMITS, ConnectionLimits, LimitedListener, LimitedStream};

/// The largest request body accepted. A SealedSecret is stored in etcd, whose
/// objects are at most about 1.5 MiB, so nothing legitimate is larger.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The most sealed values one `/v1/verify` or `/v1/rotate` request may hold. A Secret
/// with more keys is rare; each value may cost an RSA operation per loaded key.
pub const MAX_VALUES_PER_REQUEST: usize = 512;

/// How many sealed values one token of the rate limit pays for.
pub const VALUES_PER_TOKEN: usize = 16;

/// How long one API request may take, from its headers to its answer (the body read
/// included). Longer gets 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The content type of `/v1/cert.pem`.
pub const PEM_CONTENT_TYPE: &str = "application/x-pem-file";

/// The content type of `/v1/age-recipient` and `/v1/escrow-bundle`.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// What the API handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// The keys held now.
    pub keys: Arc<KeyStore>,
    /// Where request metrics go.
    pub metrics: Arc<Metrics>,
    /// The rate limit of `/v1/verify` and `/v1/rotate`.
    pub limiter: TokenBucket,
    /// `--accept-deprecated-v1-data`.
    pub accept_v1_data: bool,
    /// The escrow bundle, kept current by the key manager.
    pub escrow: Arc<Escrow>,
}

/// The API router: `/healthz`, `/v1/cert.pem`, `/v1/age-recipient`,
/// `/v1/escrow-bundle`, `/v1/verify`, `/v1/rotate`.
pub fn api_router(state: Arc<ApiState>) -> Router {
    api_router_with_timeout(state, REQUEST_TIMEOUT)
}

/// [`api_router`] with another request timeout (for tests).
pub fn api_router_with_timeout(state: Arc<ApiState>, timeout: Duration) -> Router {
    let metrics = state.metrics.clone();
    let limited = Router::new()
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/cert.pem", get(cert_pem))
        .route("/v1/age-recipient", get(age_recipient))
        .route("/v1/escrow-bundle", get(escrow_bundle))
        .merge(limited)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .layer(middleware::from_fn_with_state(timeout, deadline))
        .layer(middleware::from_fn_with_state(metrics, record))
}

/// Answers 408 when a request, body read included, takes longer than `timeout`. Work
/// already handed to the blocking pool finishes on its own (it is bounded by the
/// value cap and the template budget) and its answer is dropped.
async fn deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    }
}

/// The metrics router: `/metrics`.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn cert_pem(State(state): State<Arc<ApiState>>) -> Response {
    let keys = state.keys.snapshot();
    match keys.newest_certificate() {
        Some(cert) => ([(header::CONTENT_TYPE, PEM_CONTENT_TYPE)], cert.to_pem()).into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "no sealing key is loaded yet\n",
        )
            .into_response(),
    }
}

async fn age_recipient(State(state): State<Arc<ApiState>>) -> Response {
    let keys = state.keys.snapshot();
    match keys.newest_age_recipient() {
        Some(recipient) => (
            [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
            format!("{recipient}\n"),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no loaded sealing key has an age identity (keys written by the Bitnami controller have none; renew the key to get one)\n",
        )
            .into_response(),
    }
}

async fn escrow_bundle(State(state): State<Arc<ApiState>>) -> Response {
    if !state.escrow.is_enabled() {
        return (
            StatusCode::NOT_FOUND,
            "key escrow is off: start the controller with --escrow-recipient age1... to serve an escrow bundle\n",
        )
            .into_response();
    }
    match state.escrow.bundle() {
        Some(bundle) => (
            [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
            bundle.armored.clone(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no sealing key is loaded yet, so there is nothing to escrow\n",
        )
            .into_response(),
    }
}

/// Admission for `/v1/verify` and `/v1/rotate`, before the body is read: a declared
/// body over the cap is refused (413) without spending a token, then the token bucket
/// decides (429).
async fn admit(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 2 MiB\n",
        )
            .into_response();
    }
    if !state.limiter.try_acquire(Instant::now()) {
        return too_many();
    }
    next.run(request).await
}

async fn verify(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let keys = state.keys.snapshot();
    let accept = state.accept_v1_data;
    let limiter = state.clone();
    let outcome =
        tokio::task::spawn_blocking(move || verify_body(&body, &keys, accept, &limiter.limiter))
            .await;
    match outcome {
        Ok(Outcome::Ok(())) => StatusCode::OK.into_response(),
        Ok(other) => other.into_response(),
        Err(_) => internal(),
    }
}

async fn rotate(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let keys = state.keys.snapshot();
    let accept = state.accept_v1_data;
    let limiter = state.clone();
    let outcome =
        tokio::task::spawn_blocking(move || rotate_body(&body, &keys, accept, &limiter.limiter))
            .await;
    match outcome {
        Ok(Outcome::Ok(json)) => {
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Ok(Outcome::Unparsable(e)) => Outcome::<()>::Unparsable(e).into_response(),
        Ok(Outcome::Undecryptable) => Outcome::<()>::Undecryptable.into_response(),
        Ok(Outcome::TooManyValues) => Outcome::<()>::TooManyValues.into_response(),
        Ok(Outcome::Failed(e)) => Outcome::<()>::Failed(e).into_response(),
        Err(_) => internal(),
    }
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics.encode(),
    )
        .into_response()
}

/// Records `http_requests_total` and `http_request_duration_seconds`, labelled with
/// the route pattern (never the raw path, so labels stay bounded).
async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.http_request(
        &handler,
        &method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

fn too_many() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        "rate limit exceeded, try again later\n",
    )
        .into_response()
}

fn internal() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

/// The result of `/v1/verify` or `/v1/rotate`, before it becomes a response.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Success.
    Ok(T),
    /// The body is not one SealedSecret (500, as Bitnami).
    Unparsable(String),
    /// No known key can decrypt it (409).
    Undecryptable,
    /// It holds more than [`MAX_VALUES_PER_REQUEST`] sealed values (413).
    TooManyValues,
    /// Something else failed (500).
    Failed(String),
}

impl IntoResponse for Outcome<()> {
    fn into_response(self) -> Response {
        match self {
            Outcome::Ok(()) => StatusCode::OK.into_response(),
            Outcome::Unparsable(m) | Outcome::Failed(m) => {
                (StatusCode::INTERNAL_SERVER_ERROR, format!("{m}\n")).into_response()
            }
            Outcome::Undecryptable => (
                StatusCode::CONFLICT,
                "unable to decrypt sealed secret: no known key can decrypt it\n",
            )
                .into_response(),
            Outcome::TooManyValues => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the SealedSecret holds more than {MAX_VALUES_PER_REQUEST} sealed values\n"
                ),
            )
                .into_response(),
        }
    }
}

/// Reads a request body as exactly one SealedSecret (JSON or YAML).
pub fn parse_sealed(body: &[u8]) -> Result<SealedSecret, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_owned())?;
    let mut docs = parse_documents(text).map_err(|e| format!("{}", Error::BadRequestBody(e)))?;
    if docs.len() != 1 {
        return Err(format!(
            "expected one SealedSecret in the body, found {} documents",
            docs.len()
        ));
    }
    let doc = docs.remove(0);
    sealant_crds::sealed_secret_from_value(doc).map_err(|e| e.to_string())
}

/// Decrypts the sealed values of `sealed` and runs no template; `None` when a value
/// does not open, or when the object uses the deprecated `spec.data` and that is not
/// accepted (`--accept-deprecated-v1-data`), which Bitnami also answers with 409.
fn decrypt_checked(sealed: &SealedSecret, keys: &Keys, accept_v1_data: bool) -> Option<Unsealed> {
    if sealed.spec.data.is_some() && !accept_v1_data {
        return None;
    }
    decrypt(sealed, &keys.ring, None).ok()
}

/// Charges `limiter` for the RSA work that decrypting `sealed` may take, beyond the
/// token its request paid at admission: one token per started [`VALUES_PER_TOKEN`]
/// values. `false` (and nothing charged) when it holds more than
/// [`MAX_VALUES_PER_REQUEST`] values.
fn charge_values(sealed: &SealedSecret, limiter: &TokenBucket) -> bool {
    let values = sealed.spec.encrypted_data.len() + usize::from(sealed.spec.data.is_some());
    if values > MAX_VALUES_PER_REQUEST {
        return false;
    }
    let tokens = values.div_ceil(VALUES_PER_TOKEN).max(1);
    limiter.charge(tokens - 1, Instant::now());
    true
}

/// `/v1/verify` without HTTP: can `keys` decrypt every sealed value of the
/// SealedSecret in `body`? Templates are not run.
pub fn verify_body(
    body: &[u8],
    keys: &Keys,
    accept_v1_data: bool,
    limiter: &TokenBucket,
) -> Outcome<()> {
    let sealed = match parse_sealed(body) {
        Ok(s) => s,
        Err(m) => return Outcome::Unparsable(m),
    };
    if !charge_values(&sealed, limiter) {
        return Outcome::TooManyValues;
    }
    match decrypt_checked(&sealed, keys, accept_v1_data) {
        Some(_) => Outcome::Ok(()),
        None => Outcome::Undecryptable,
    }
}

/// `/v1/rotate` without HTTP: the SealedSecret in `body` re-encrypted to the newest
/// key, as JSON.
///
/// Everything but the ciphertext is kept: metadata, scope, template. Exactly the
/// sealed values are re-sealed, never a template's output. A deprecated `spec.data`
/// object comes back in the current `spec.encryptedData` form, its template rebuilt
/// from the Secret inside the blob.
pub fn rotate_body(
    body: &[u8],
    keys: &Keys,
    accept_v1_data: bool,
    limiter: &TokenBucket,
) -> Outcome<String> {
    let sealed = match parse_sealed(body) {
        Ok(s) => s,
        Err(m) => return Outcome::Unparsable(m),
    };
    if !charge_values(&sealed, limiter) {
        return Outcome::TooManyValues;
    }
    let Some(cert) = keys.newest_certificate() else {
        return Outcome::Failed(Error::NoKeys.to_string());
    };
    let Some(unsealed) = decrypt_checked(&sealed, keys, accept_v1_data) else {
        return Outcome::Undecryptable;
    };
    let scope = scope_of(&sealed.metadata);
    let object = sealed.object_ref();
    let mut out = sealed.clone();
    if sealed.spec.data.is_some() {
        let secret = unsealed.into_secret();
        let opts = SealOptions {
            scope: Some(scope),
            allow_empty_data: true,
        };
        match seal_secret(&secret, cert.public_key(), &opts) {
            Ok(resealed) => {
                out.spec = resealed.spec;
            }
            Err(source) => {
                return Outcome::Failed(
                    Error::Reseal {
                        object,
                        source: Box::new(source),
                    }
                    .to_string(),
                );
            }
        }
    } else {
        let namespace = sealed.metadata.namespace.clone().unwrap_or_default();
        let name = sealed.metadata.name.clone().unwrap_or_default();
        for (k, v) in unsealed.data() {
            match seal_value(
                cert.public_key(),
                v.expose_secret(),
                scope,
                &namespace,
                &name,
            ) {
                Ok(b64) => {
                    out.spec.encrypted_data.insert(k.clone(), b64);
                }
                Err(source) => {
                    return Outcome::Failed(
                        Error::Reseal {
                            object,
                            source: Box::new(source),
                        }
                        .to_string(),
                    );
                }
            }
        }
    }
    out.status = None;
    Outcome::Ok(to_json(&out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use http_body_util::BodyExt as _;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use sealant_crds::unseal;
    use sealant_keys::{OffsetDateTime, Scope};
    use tower::ServiceExt as _;

    use super::*;
    use crate::key_secrets::tests::test_keys;

    pub(super) fn keys(indices: &[usize]) -> Keys {
        let mut keys = Keys::default();
        for &i in indices {
            let (k, c) = &test_keys()[i];
            keys.insert(k.clone(), c.clone(), None, c.not_before());
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
            keys.insert(k.clone(), c.clone(), Some(identity.clone()), c.not_before());
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
            let (status, body, ct) =
                call(api_router(st.clone()), "GET", "/v1/escrow-bundle", "").await;
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
            let (status, body, _) =
                call(api_router(st.clone()), "GET", "/v1/age-recipient", "").await;
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
        let mut sealed: SealedSecret =
            serde_json::from_str(&sealed_json(1, None, "v")).expect("json");
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

    #[tokio::test]
    async fn verify_is_rate_limited_with_burst_plus_one() {
        let router = api_router(state(keys(&[1]), 1, 2));
        let body = sealed_json(1, None, "v");
        let mut codes = Vec::new();
        for _ in 0..5 {
            codes.push(
                call(router.clone(), "POST", "/v1/verify", body.clone())
                    .await
                    .0,
            );
        }
        assert_eq!(&codes[..3], &[StatusCode::OK; 3]);
        assert!(
            codes[3..].contains(&StatusCode::TOO_MANY_REQUESTS),
            "{codes:?}"
        );
    }

    /// `sealed_json(1, None, "v")` with `n` more values that no key opens.
    fn with_junk_values(n: usize) -> String {
        let mut sealed: SealedSecret =
            serde_json::from_str(&sealed_json(1, None, "v")).expect("json");
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

    #[tokio::test]
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
            let (status, answer, _) =
                call(router.clone(), "POST", "/v1/rotate", body.clone()).await;
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
        let (status, text, ct) =
            call(metrics_router(st.metrics.clone()), "GET", "/metrics", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some(metrics::CONTENT_TYPE));
        assert!(text.contains(r#"sealed_secrets_controller_http_requests_total{handler="/healthz",method="GET",code="200"} 1"#), "{text}");
        assert!(
            text.contains(r#"handler="/v1/verify",method="POST",code="409"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
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
}
