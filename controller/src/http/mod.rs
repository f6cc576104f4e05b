//! The HTTP API, as Bitnami's controller serves it, so `kubeseal` and `sealant` reach
//! it unchanged through the API server's service proxy; and the metrics listener.
//!
//! | path | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` (liveness: the process serves) |
//! | `GET /readyz` | sealant only: `200 ok` once a sealing key is loaded, 503 before (readiness: a replica that cannot answer `/v1/cert.pem` takes no traffic) |
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
use sealant_crds::api;
use sealant_crds::{
    SealOptions, SealedSecret, Unsealed, decrypt, parse_documents, seal_secret, seal_value, to_json,
};
use sealant_keys::Certificate;

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
pub const PEM_CONTENT_TYPE: &str = api::PEM_MEDIA_TYPE;

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

/// The API router: `/healthz`, `/readyz`, `/v1/cert.pem`, `/v1/age-recipient`,
/// `/v1/escrow-bundle`, `/v1/verify`, `/v1/rotate`.
pub fn api_router(state: Arc<ApiState>) -> Router {
    api_router_with_timeout(state, REQUEST_TIMEOUT)
}

/// [`api_router`] with another request timeout (for tests).
pub fn api_router_with_timeout(state: Arc<ApiState>, timeout: Duration) -> Router {
    let metrics = state.metrics.clone();
    let limited = Router::new()
        .route(api::VERIFY, post(verify))
        .route(api::ROTATE, post(rotate))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit));
    Router::new()
        .route(api::HEALTHZ, get(healthz))
        .route(api::READYZ, get(readyz))
        .route(api::CERT, get(cert_pem))
        .route(api::AGE_RECIPIENT, get(age_recipient))
        .route(api::ESCROW_BUNDLE, get(escrow_bundle))
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
        .route(api::METRICS, get(serve_metrics))
        .with_state(metrics)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    if state.keys.snapshot().newest_certificate().is_some() {
        "ok".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no sealing key is loaded yet\n",
        )
            .into_response()
    }
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
    if !state.limiter.try_acquire(bucket_now()) {
        return too_many();
    }
    next.run(request).await
}

async fn verify(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    on_blocking_pool(state, body, verify_body).await
}

async fn rotate(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    on_blocking_pool(state, body, |body, keys, accept_v1_data, limiter| {
        rotate_body(body, keys, accept_v1_data, limiter)
            .map(|json| ([(header::CONTENT_TYPE, "application/json")], json))
    })
    .await
}

/// Runs `work` (the body of `/v1/verify` or `/v1/rotate`) on the blocking pool, so its
/// RSA work never holds an async worker, over a snapshot of the keys and the request
/// body; a task that does not come back answers 500.
async fn on_blocking_pool<T, F>(state: Arc<ApiState>, body: Bytes, work: F) -> Response
where
    T: IntoResponse + Send + 'static,
    F: FnOnce(&[u8], &Keys, bool, &TokenBucket) -> Outcome<T> + Send + 'static,
{
    let keys = state.keys.snapshot();
    let outcome = tokio::task::spawn_blocking(move || {
        work(&body, &keys, state.accept_v1_data, &state.limiter)
    })
    .await;
    match outcome {
        Ok(outcome) => outcome.into_response(),
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

/// The token bucket's clock: tokio's, which is the system's monotonic clock except in
/// a test that pauses it (`start_paused`, `tokio::time::advance`), where the bucket's
/// refill is then driven without waiting. Outside a runtime it is the system's.
fn bucket_now() -> Instant {
    tokio::time::Instant::now().into_std()
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

impl<T> Outcome<T> {
    /// The same outcome with its success value mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ok(value) => Outcome::Ok(f(value)),
            Outcome::Unparsable(m) => Outcome::Unparsable(m),
            Outcome::Undecryptable => Outcome::Undecryptable,
            Outcome::TooManyValues => Outcome::TooManyValues,
            Outcome::Failed(m) => Outcome::Failed(m),
        }
    }
}

/// A success answers `T` (`()` is an empty 200); a failure, its status and message.
impl<T: IntoResponse> IntoResponse for Outcome<T> {
    fn into_response(self) -> Response {
        match self {
            Outcome::Ok(value) => value.into_response(),
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
    limiter.charge(tokens - 1, bucket_now());
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
    match reseal(&sealed, unsealed, cert) {
        Ok(out) => Outcome::Ok(to_json(&out)),
        Err(source) => Outcome::Failed(
            Error::Reseal {
                object: sealed.object_ref(),
                source: Box::new(source),
            }
            .to_string(),
        ),
    }
}

/// `sealed` with its sealed values, decrypted into `unsealed`, sealed again to `cert`
/// under the scope of its own metadata, and no status.
fn reseal(
    sealed: &SealedSecret,
    unsealed: Unsealed,
    cert: &Certificate,
) -> Result<SealedSecret, sealant_crds::Error> {
    let scope = scope_of(&sealed.metadata);
    let mut out = sealed.clone();
    if sealed.spec.data.is_some() {
        let secret = unsealed.into_secret();
        let opts = SealOptions {
            scope: Some(scope),
            allow_empty_data: true,
        };
        out.spec = seal_secret(&secret, cert.public_key(), &opts)?.spec;
    } else {
        let namespace = sealed.metadata.namespace.clone().unwrap_or_default();
        let name = sealed.metadata.name.clone().unwrap_or_default();
        for (k, v) in unsealed.data() {
            let b64 = seal_value(
                cert.public_key(),
                v.expose_secret(),
                scope,
                &namespace,
                &name,
            )?;
            out.spec.encrypted_data.insert(k.clone(), b64);
        }
    }
    out.status = None;
    Ok(out)
}

#[cfg(test)]
mod tests;
