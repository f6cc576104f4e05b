//! Prometheus metrics, under Bitnami's names so existing dashboards and alerts keep
//! working, plus sealant's own counters under `sealant_controller_`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `sealed_secrets_controller_build_info` | `revision` | always 1 |
//! | `sealed_secrets_controller_unseal_requests_total` | | reconcile passes that tried to unseal |
//! | `sealed_secrets_controller_unseal_errors_total` | `reason` (`fetch`, `unseal`, `update`, `unmanaged`, `status`), `namespace` | failed passes |
//! | `sealed_secrets_controller_condition_info` | `namespace`, `name`, `condition` | 1 = True, 0 = False, -1 = Unknown |
//! | `sealed_secrets_controller_http_requests_total` | `handler`, `method`, `code` | HTTP API requests |
//! | `sealed_secrets_controller_http_request_duration_seconds` | `handler`, `method` | HTTP API latency |
//! | `sealant_controller_decryptions_total` | | SealedSecrets actually decrypted (RSA work) |
//! | `sealant_controller_in_sync_skips_total` | | passes where the in-sync proof made decryption unnecessary |
//! | `sealant_controller_leader` | | 1 while this replica reconciles and writes (always, without `--leader-elect`), 0 while it stands by |
//!
//! The last two are how the end-to-end suite proves that a restart over in-sync
//! objects does zero decryptions. Labels never carry values or key material.

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `reason` label of `unseal_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// Reading the Secret or SealedSecret failed.
    Fetch,
    /// Decryption or the spec failed.
    Unseal,
    /// Writing the Secret failed (or is impossible: immutable).
    Update,
    /// An unowned, unmanaged Secret is in the way.
    Unmanaged,
    /// Writing the status failed.
    Status,
}

impl ErrorReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Fetch => "fetch",
            ErrorReason::Unseal => "unseal",
            ErrorReason::Update => "update",
            ErrorReason::Unmanaged => "unmanaged",
            ErrorReason::Status => "status",
        }
    }
}

impl fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    reason: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    namespace: String,
    name: String,
    condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    handler: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpDurationLabels {
    handler: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    revision: String,
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    unseal_requests: Counter,
    unseal_errors: Family<ErrorLabels, Counter>,
    condition_info: Family<ConditionLabels, Gauge>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpDurationLabels, Histogram>,
    decryptions: Counter,
    in_sync_skips: Counter,
    leader: Gauge,
    omit_secret_labels: bool,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every metric. `omit_secret_labels` (`--metrics-omit-secret-labels`)
    /// keeps SealedSecret names out of `condition_info`.
    pub fn new(version: &str, omit_secret_labels: bool) -> Self {
        let mut registry = Registry::default();
        let unseal_requests = Counter::default();
        let unseal_errors = Family::<ErrorLabels, Counter>::default();
        let condition_info = Family::<ConditionLabels, Gauge>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<HttpDurationLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 16))) as fn() -> Histogram,
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                revision: version.to_owned(),
            })
            .set(1);
        let decryptions = Counter::default();
        let in_sync_skips = Counter::default();
        let leader = Gauge::default();

        {
            let bitnami = registry.sub_registry_with_prefix("sealed_secrets_controller");
            bitnami.register("build_info", "Build information", build_info);
            bitnami.register(
                "unseal_requests",
                "Total number of sealed secret unseal requests",
                unseal_requests.clone(),
            );
            bitnami.register(
                "unseal_errors",
                "Total number of sealed secret unseal errors by reason",
                unseal_errors.clone(),
            );
            bitnami.register(
                "condition_info",
                "Current SealedSecret condition status: 1 True, 0 False, -1 Unknown",
                condition_info.clone(),
            );
            bitnami.register(
                "http_requests",
                "Total number of HTTP requests by handler, method and status code",
                http_requests.clone(),
            );
            bitnami.register(
                "http_request_duration_seconds",
                "HTTP request latencies in seconds",
                http_duration.clone(),
            );
        }
        {
            let ours = registry.sub_registry_with_prefix("sealant_controller");
            ours.register(
                "decryptions",
                "SealedSecrets decrypted with a private key (RSA work)",
                decryptions.clone(),
            );
            ours.register(
                "in_sync_skips",
                "Reconcile passes where the in-sync proof made decryption unnecessary",
                in_sync_skips.clone(),
            );
            ours.register(
                "leader",
                "1 while this replica reconciles and writes, 0 while it stands by",
                leader.clone(),
            );
        }
        Self {
            registry,
            unseal_requests,
            unseal_errors,
            condition_info,
            http_requests,
            http_duration,
            decryptions,
            in_sync_skips,
            leader,
            omit_secret_labels,
        }
    }

    /// One reconcile pass that needs the SealedSecret's data.
    pub fn unseal_request(&self) {
        self.unseal_requests.inc();
    }

    /// One failed pass.
    pub fn unseal_error(&self, reason: ErrorReason, namespace: &str) {
        self.unseal_errors
            .get_or_create(&ErrorLabels {
                reason: reason.as_str().to_owned(),
                namespace: namespace.to_owned(),
            })
            .inc();
    }

    /// One SealedSecret decrypted.
    pub fn decryption(&self) {
        self.decryptions.inc();
    }

    /// One pass that reused the in-sync Secret's data.
    pub fn in_sync_skip(&self) {
        self.in_sync_skips.inc();
    }

    /// Whether this replica leads (reconciles and writes) now.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// How many SealedSecrets were decrypted so far.
    pub fn decryptions(&self) -> u64 {
        self.decryptions.get()
    }

    /// How many passes reused in-sync data so far.
    pub fn in_sync_skips(&self) -> u64 {
        self.in_sync_skips.get()
    }

    /// Records the `Synced` status (`True`, `False` or `Unknown`) of a SealedSecret.
    pub fn condition(&self, namespace: &str, name: &str, condition: &str, status: &str) {
        if self.omit_secret_labels {
            return;
        }
        let value = match status {
            "True" => 1,
            "False" => 0,
            _ => -1,
        };
        self.condition_info
            .get_or_create(&ConditionLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                condition: condition.to_owned(),
            })
            .set(value);
    }

    /// Forgets a deleted SealedSecret's condition.
    pub fn forget_condition(&self, namespace: &str, name: &str, condition: &str) {
        self.condition_info.remove(&ConditionLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            condition: condition.to_owned(),
        });
    }

    /// One HTTP request served.
    pub fn http_request(&self, handler: &str, method: &str, code: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                handler: handler.to_owned(),
                method: method.to_owned(),
                code: code.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&HttpDurationLabels {
                handler: handler.to_owned(),
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a
        // metric's label encoding, and an incomplete scrape is better than none.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitnami_metric_names_are_exported() {
        let m = Metrics::new("v1.2.3", false);
        m.unseal_request();
        m.unseal_error(ErrorReason::Unmanaged, "app");
        m.condition("app", "db", "Synced", "True");
        m.http_request("/v1/verify", "POST", 200, 0.01);
        m.set_leader(true);
        let text = m.encode();
        for needle in [
            r#"sealed_secrets_controller_build_info{revision="v1.2.3"} 1"#,
            "sealed_secrets_controller_unseal_requests_total 1",
            r#"sealed_secrets_controller_unseal_errors_total{reason="unmanaged",namespace="app"} 1"#,
            r#"sealed_secrets_controller_condition_info{namespace="app",name="db",condition="Synced"} 1"#,
            r#"sealed_secrets_controller_http_requests_total{handler="/v1/verify",method="POST",code="200"} 1"#,
            r#"sealed_secrets_controller_http_request_duration_seconds_count{handler="/v1/verify",method="POST"} 1"#,
            "sealant_controller_decryptions_total 0",
            "sealant_controller_in_sync_skips_total 0",
            "sealant_controller_leader 1",
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
        assert!(
            !text.contains("..\n"),
            "help texts end in one period\n{text}"
        );
    }

    #[test]
    fn condition_values_and_forgetting() {
        let m = Metrics::new("v", false);
        m.condition("a", "x", "Synced", "False");
        assert!(m.encode().contains(r#"condition="Synced"} 0"#));
        m.condition("a", "x", "Synced", "Unknown");
        assert!(m.encode().contains(r#"condition="Synced"} -1"#));
        m.forget_condition("a", "x", "Synced");
        assert!(!m.encode().contains(r#"name="x""#));
    }

    #[test]
    fn omit_secret_labels_keeps_names_out() {
        let m = Metrics::new("v", true);
        m.condition("app", "db-password", "Synced", "True");
        assert!(!m.encode().contains("db-password"));
    }

    #[test]
    fn decryption_and_skip_counters_count() {
        let m = Metrics::new("v", false);
        m.decryption();
        m.in_sync_skip();
        m.in_sync_skip();
        assert_eq!((m.decryptions(), m.in_sync_skips()), (1, 2));
        assert!(
            m.encode()
                .contains("sealant_controller_in_sync_skips_total 2")
        );
    }
}
