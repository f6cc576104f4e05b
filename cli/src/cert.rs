//! The sealing certificate: where it comes from and when it is refused.
//!
//! `--cert` names a file or an `http`/`https`/`file` URL; without it the certificate is
//! fetched from the controller through the API server (see [`crate::cluster`]). A
//! certificate past its NotAfter is refused, with kubeseal's words, because the
//! controller has most likely rotated away from it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use sealant_keys::{Certificate, OffsetDateTime};

use crate::args::{CertArgs, ClusterArgs};
use crate::cluster::Cluster;
use crate::files::{self, Limit};

/// Reads the raw certificate bytes from `--cert`, or from the controller.
pub fn fetch(cert: &CertArgs, cluster: &ClusterArgs) -> Result<Vec<u8>> {
    match cert.cert.as_deref() {
        Some(location) => open_local(location),
        None => Cluster::connect(cluster, cert.controller.namespace(), cert.controller.name())?
            .fetch_cert(),
    }
}

/// Fetches and parses the certificate, refusing an expired one.
pub fn load(cert: &CertArgs, cluster: &ClusterArgs) -> Result<Certificate> {
    let pem = fetch(cert, cluster)?;
    let what = cert.cert.as_deref().unwrap_or("the controller");
    parse(&pem, OffsetDateTime::now_utc())
        .with_context(|| format!("cannot use the certificate from {what}"))
}

/// Parses a PEM certificate and checks it is valid at `now`.
pub fn parse(pem: &[u8], now: OffsetDateTime) -> Result<Certificate> {
    let cert = Certificate::from_pem(pem)?;
    if cert.check_not_expired(now).is_err() {
        let end = cert.not_after();
        bail!(
            "failed to encrypt using an expired certificate on {} {}, {}",
            end.month(),
            end.day(),
            end.year()
        );
    }
    Ok(cert)
}

/// A file path, or a URL when the text starts with a scheme we fetch.
fn open_local(location: &str) -> Result<Vec<u8>> {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return fetch_url(location);
    }
    let path = match lower.strip_prefix("file://") {
        Some(_) => &location["file://".len()..],
        None => location,
    };
    let bytes = files::read(Path::new(path), Limit::CERTIFICATE)
        .with_context(|| format!("cannot read certificate file {path}"))?;
    Ok(bytes.to_vec())
}

/// GET over HTTP(S) with rustls on AWS-LC and the webpki root store.
fn fetch_url(url: &str) -> Result<Vec<u8>> {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot fetch {url:?}"))?;
    let status = response.status();
    if status != http::StatusCode::OK {
        bail!("cannot fetch {url:?}: {status}");
    }
    response
        .body_mut()
        .with_config()
        .limit(Limit::CERTIFICATE.bytes() as u64)
        .read_to_vec()
        .with_context(|| format!("cannot read the response from {url:?}"))
}
