//! The Kubernetes API client, with client-go's patience for a busy API server.
//!
//! kube's default client retries 429, 503 and 504 up to 15 times, doubling its wait
//! from 5 ms up to 1000 s. Against an API server that sheds load (API Priority and
//! Fairness, `--max-requests-inflight`), one unlucky request then waits for minutes,
//! and the worker holding it with it: the fault test that squeezes the API server saw
//! writes spaced 24, 35 and 54 s apart at the end of a sync. client-go, which
//! Bitnami's controller uses, waits the server's `Retry-After` (1 s from a squeezed
//! API server) at most 10 times.
//!
//! This client does the same within the same bound: at most [`RETRIES`] retries, each
//! after the server's `Retry-After` or a jittered backoff from [`MIN_DELAY`] to
//! [`MAX_DELAY`], whichever is longer; about 10 s in all. Then the error reaches the
//! reconcile loop, which reports it in the status and requeues the object
//! ([`crate::reconcile::TRANSIENT_BACKOFF`]), so a worker is never held for long.
//!
//! ```text
//!   request ─▶ Retry (429/503/504: wait, resend) ─▶ Buffer (makes kube's stack cloneable) ─▶ kube's stack
//! ```

use std::time::Duration;

use http::Request;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use tower::ServiceBuilder;
use tower::buffer::BufferLayer;
use tower::layer::util::{Identity, Stack};
use tower::retry::RetryLayer;

use crate::Error;

/// Retries of one request after 429, 503 or 504, as client-go's 10 at most.
pub const RETRIES: u32 = 6;
/// The first backoff, when the server gives no longer `Retry-After`.
pub const MIN_DELAY: Duration = Duration::from_millis(200);
/// The longest backoff between two tries.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// Requests waiting for the shared connection stack: more than workers and watches.
const BUFFER: usize = 1024;

/// The layers added on top of kube's client stack.
type Retrying =
    ServiceBuilder<Stack<BufferLayer<Request<Body>>, Stack<RetryLayer<RetryPolicy>, Identity>>>;

/// Retries with [`RETRIES`], [`MIN_DELAY`] and [`MAX_DELAY`], honouring `Retry-After`.
pub(crate) fn retrying() -> Result<Retrying, Error> {
    // Fails only for constants out of order (min > max), which a test would catch.
    let policy =
        RetryPolicy::new(MIN_DELAY, MAX_DELAY, RETRIES, true).map_err(|_| Error::Internal {
            what: "build the API client's retry policy",
        })?;
    Ok(ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .layer(BufferLayer::new(BUFFER)))
}

/// The client for the in-cluster configuration or the kubeconfig (as
/// `Client::try_default`), with [`retrying`] in place of kube's default retry.
pub(crate) async fn client() -> Result<Client, Error> {
    let connect = |source| Error::Kube {
        action: "connect to",
        object: "the Kubernetes API server".to_owned(),
        source,
    };
    let mut config = Config::infer()
        .await
        .map_err(|e| connect(kube::Error::InferConfig(e)))?;
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).map_err(connect)?;
    Ok(builder.with_layer(&retrying()?).build())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use http::{Response, StatusCode};
    use http_body_util::Full;
    use k8s_openapi::api::core::v1::Secret;
    use kube::Api;

    use super::*;

    /// A client whose API server answers with `statuses` in turn (the last one
    /// forever), each 429 with `Retry-After: 1`; and the number of requests it got.
    fn scripted(statuses: &'static [StatusCode]) -> (Client, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let service = tower::service_fn(move |_req: Request<Body>| {
            let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
            let status = statuses[n.min(statuses.len() - 1)];
            async move {
                let body = if status == StatusCode::OK {
                    r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"app"}}"#
                        .to_owned()
                } else {
                    format!(
                        r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","code":{},"message":"busy"}}"#,
                        status.as_u16()
                    )
                };
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .header("retry-after", "1")
                    .body(Full::new(axum::body::Bytes::from(body)))
                    .expect("response");
                Ok::<_, Infallible>(response)
            }
        });
        let service = retrying().expect("policy").service(service);
        (Client::new(service, "app"), calls)
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_retried_after_the_servers_retry_after_and_then_succeeds() {
        let (client, calls) = scripted(&[StatusCode::TOO_MANY_REQUESTS, StatusCode::OK]);
        let started = tokio::time::Instant::now();
        let secret = Api::<Secret>::namespaced(client, "app")
            .get("db")
            .await
            .expect("the second try succeeds");
        assert_eq!(secret.metadata.name.as_deref(), Some("db"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited {:?}, less than the server's Retry-After",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_keeps_refusing_gets_a_bounded_number_of_tries_in_bounded_time() {
        let (client, calls) = scripted(&[StatusCode::TOO_MANY_REQUESTS]);
        let started = tokio::time::Instant::now();
        let error = Api::<Secret>::namespaced(client, "app")
            .get("db")
            .await
            .expect_err("every try is refused");
        assert!(
            matches!(&error, kube::Error::Api(s) if s.code == 429),
            "{error}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), RETRIES + 1);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(u64::from(RETRIES)),
            "waited {waited:?}: Retry-After not honoured"
        );
        assert!(
            waited <= MAX_DELAY * (RETRIES + 1),
            "waited {waited:?}: more than {RETRIES} backoffs of at most {MAX_DELAY:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_not_retried_here() {
        let answers: [&'static [StatusCode]; 2] = [
            &[StatusCode::INTERNAL_SERVER_ERROR],
            &[StatusCode::CONFLICT],
        ];
        for statuses in answers {
            let (client, calls) = scripted(statuses);
            Api::<Secret>::namespaced(client, "app")
                .get("db")
                .await
                .expect_err("refused");
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{statuses:?}");
        }
    }
}
