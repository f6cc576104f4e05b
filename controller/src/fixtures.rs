//! Fixtures shared by the mock-API tests, which script the API server as a
//! `tower::service_fn` (no sockets), as controller-rs does in its `fixtures.rs`.

use axum::body::Bytes;
use http::{Request, Uri};
use http_body_util::BodyExt as _;

/// The method, URI and body of a request the scripted API server received. A body
/// that cannot be read is empty.
pub(crate) async fn request_parts(req: Request<kube::client::Body>) -> (String, Uri, Bytes) {
    let method = req.method().to_string();
    let uri = req.uri().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (method, uri, body)
}
