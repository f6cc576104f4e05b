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
//! | `sealant_controller_key_decryptions_total` | `fingerprint` | SealedSecrets decrypted with each key (RSA or the key generation's age identity) |
//! | `sealant_controller_key_sealed_secrets` | `fingerprint` | SealedSecrets whose values need each key now, as of their last successful pass (the zero-decryption path included) |
//! | `sealant_controller_key_age_seconds` | `fingerprint` | age of each loaded key, from its ordering time (certificate NotBefore or Secret creation) |
//! | `sealant_controller_key_renewal_seconds` | | seconds until the next automatic key renewal; 0 when due, -1 when disabled (`--key-renew-period=0`) |
//! | `sealant_controller_escrow_bundle_keys` | | keys in the escrow bundle the leader last wrote or found current in its ConfigMap (`--escrow-recipient`); 0 until then and on standby replicas |
//!
//! `decryptions_total` and `in_sync_skips_total` are how the end-to-end suite proves
//! that a restart over in-sync objects does zero decryptions. The key inventory
//! (the last four) tells when a key is safe to retire: `key_sealed_secrets` drops to
//! zero for it. A key is named by its SSH-style fingerprint (`SHA256:...`), a value
//! sealed to a key generation's age recipient by that generation's RSA key. Labels
//! never carry values or key material. The two key-age gauges are computed at scrape
//! time.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sealant_keys::{Fingerprint, OffsetDateTime};

use crate::key_secrets::{self, Keys, Renewal};

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
struct KeyLabels {
    fingerprint: String,
}

impl KeyLabels {
    fn of(fingerprint: &Fingerprint) -> Self {
        Self {
            fingerprint: fingerprint.as_str().to_owned(),
        }
    }
}

/// What the key gauges are computed from at scrape time.
#[derive(Debug, Default)]
struct Inventory {
    /// Each loaded RSA key and its ordering time.
    keys: Vec<(Fingerprint, OffsetDateTime)>,
    /// The newest key's ordering time.
    newest: Option<OffsetDateTime>,
    /// `--key-renew-period`.
    period: Duration,
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
    key_decryptions: Family<KeyLabels, Counter>,
    key_sealed_secrets: Family<KeyLabels, Gauge>,
    key_age: Family<KeyLabels, Gauge>,
    key_renewal: Gauge,
    escrow_bundle_keys: Gauge,
    escrow_recipients: Gauge,
    pass_duration: Histogram,
    /// The keys each SealedSecret (`namespace/name`) needed at its last successful
    /// pass: what `key_sealed_secrets` counts.
    dependencies: Mutex<HashMap<String, BTreeSet<Fingerprint>>>,
    inventory: Mutex<Inventory>,
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
        let key_decryptions = Family::<KeyLabels, Counter>::default();
        let key_sealed_secrets = Family::<KeyLabels, Gauge>::default();
        let key_age = Family::<KeyLabels, Gauge>::default();
        let key_renewal = Gauge::default();
        let escrow_bundle_keys = Gauge::default();
        let escrow_recipients = Gauge::default();
        // 1 ms to 65 s: a pass is an RSA open or two and a few API round trips.
        let pass_duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));

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
            ours.register(
                "key_decryptions",
                "SealedSecrets decrypted with each key, by key fingerprint",
                key_decryptions.clone(),
            );
            ours.register(
                "key_sealed_secrets",
                "SealedSecrets whose values need each key, by key fingerprint",
                key_sealed_secrets.clone(),
            );
            ours.register(
                "key_age_seconds",
                "Age of each loaded key in seconds, by key fingerprint",
                key_age.clone(),
            );
            ours.register(
                "key_renewal_seconds",
                "Seconds until the next automatic key renewal; 0 when due, -1 when disabled",
                key_renewal.clone(),
            );
            ours.register(
                "escrow_bundle_keys",
                "Keys in the escrow bundle last written to (or found current in) its ConfigMap",
                escrow_bundle_keys.clone(),
            );
            ours.register(
                "reconcile_duration_seconds",
                "Time of one reconcile pass over a SealedSecret (decrypt, write, status), in seconds",
                pass_duration.clone(),
            );
            ours.register(
                "escrow_recipients",
                "Age recipients the keys are escrowed to (--escrow-recipient); 0 when escrow is off",
                escrow_recipients.clone(),
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
            key_decryptions,
            key_sealed_secrets,
            key_age,
            key_renewal,
            escrow_bundle_keys,
            escrow_recipients,
            pass_duration,
            dependencies: Mutex::default(),
            inventory: Mutex::default(),
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

    /// One SealedSecret decrypted with each of `keys`.
    pub fn key_decryptions(&self, keys: &BTreeSet<Fingerprint>) {
        for key in keys {
            self.key_decryptions
                .get_or_create(&KeyLabels::of(key))
                .inc();
        }
    }

    /// The SealedSecret `object` (`namespace/name`) needs exactly `keys` now (after a
    /// successful pass, decrypting or not).
    pub fn depends_on(&self, object: &str, keys: &BTreeSet<Fingerprint>) {
        // The map and the gauges are updated together under the lock; a panic
        // elsewhere cannot leave the map half-written, so a poisoned lock is reusable.
        let mut map = self
            .dependencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = map
            .insert(object.to_owned(), keys.clone())
            .unwrap_or_default();
        self.move_dependencies(&before, keys);
    }

    /// Forgets a deleted SealedSecret (`namespace/name`): its keys no longer count it,
    /// and its condition is no longer reported.
    pub fn forget(&self, namespace: &str, name: &str, condition: &str) {
        self.forget_condition(namespace, name, condition);
        let mut map = self
            .dependencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(before) = map.remove(&format!("{namespace}/{name}")) {
            self.move_dependencies(&before, &BTreeSet::new());
        }
    }

    fn move_dependencies(&self, before: &BTreeSet<Fingerprint>, after: &BTreeSet<Fingerprint>) {
        for gone in before.difference(after) {
            let labels = KeyLabels::of(gone);
            if self.key_sealed_secrets.get_or_create(&labels).dec() <= 1 {
                self.key_sealed_secrets.remove(&labels);
            }
        }
        for new in after.difference(before) {
            self.key_sealed_secrets
                .get_or_create(&KeyLabels::of(new))
                .inc();
        }
    }

    /// How many SealedSecrets need `key` now.
    pub fn sealed_secrets_needing(&self, key: &Fingerprint) -> i64 {
        self.key_sealed_secrets
            .get_or_create(&KeyLabels::of(key))
            .get()
    }

    /// Records the loaded keys and the renewal period, from which the key age and
    /// renewal gauges are computed at scrape time.
    pub fn set_keys(&self, keys: &Keys, renew_period: Duration) {
        let mut inventory = self
            .inventory
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *inventory = Inventory {
            keys: keys
                .ring
                .iter()
                .map(|e| (e.key.fingerprint().clone(), e.created))
                .collect(),
            newest: keys.newest_time(),
            period: renew_period,
        };
    }

    /// Sets the key age and renewal gauges for the time `now`.
    fn refresh_key_gauges(&self, now: OffsetDateTime) {
        let inventory = self
            .inventory
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.key_age.clear();
        for (fingerprint, created) in &inventory.keys {
            let age = (now - *created).whole_seconds().max(0);
            self.key_age
                .get_or_create(&KeyLabels::of(fingerprint))
                .set(age);
        }
        let renewal = match key_secrets::renewal(inventory.newest, now, inventory.period, None) {
            Renewal::Now => 0,
            Renewal::At(t) => (t - now).whole_seconds().max(0),
            Renewal::Never => -1,
        };
        self.key_renewal.set(renewal);
    }

    /// The escrow ConfigMap holds a bundle of `keys` keys now.
    pub fn set_escrow_bundle_keys(&self, keys: usize) {
        self.escrow_bundle_keys
            .set(i64::try_from(keys).unwrap_or(i64::MAX));
    }

    /// Escrow is on with `recipients` recipients (0: off).
    pub fn set_escrow_recipients(&self, recipients: usize) {
        self.escrow_recipients
            .set(i64::try_from(recipients).unwrap_or(i64::MAX));
    }

    /// One reconcile pass took `seconds`.
    pub fn pass(&self, seconds: f64) {
        self.pass_duration.observe(seconds);
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

    /// The OpenMetrics text of every metric, as of now.
    pub fn encode(&self) -> String {
        self.encode_at(OffsetDateTime::now_utc())
    }

    /// The OpenMetrics text of every metric, with the key gauges computed for `now`.
    pub fn encode_at(&self, now: OffsetDateTime) -> String {
        self.refresh_key_gauges(now);
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

    fn fp(name: &str) -> Fingerprint {
        Fingerprint::from_string(format!("SHA256:{name}"))
    }

    #[test]
    fn key_decryptions_count_per_fingerprint() {
        let m = Metrics::new("v", false);
        m.key_decryptions(&BTreeSet::from([fp("a"), fp("b")]));
        m.key_decryptions(&BTreeSet::from([fp("a")]));
        let text = m.encode();
        assert!(
            text.contains(r#"sealant_controller_key_decryptions_total{fingerprint="SHA256:a"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sealant_controller_key_decryptions_total{fingerprint="SHA256:b"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn key_sealed_secrets_follows_what_each_object_needs_now() {
        let m = Metrics::new("v", false);
        m.depends_on("app/one", &BTreeSet::from([fp("a")]));
        m.depends_on("app/two", &BTreeSet::from([fp("a"), fp("b")]));
        m.depends_on("app/two", &BTreeSet::from([fp("a"), fp("b")]));
        assert_eq!(
            (
                m.sealed_secrets_needing(&fp("a")),
                m.sealed_secrets_needing(&fp("b"))
            ),
            (2, 1)
        );
        // Re-sealed to the new key only.
        m.depends_on("app/one", &BTreeSet::from([fp("b")]));
        assert_eq!(
            (
                m.sealed_secrets_needing(&fp("a")),
                m.sealed_secrets_needing(&fp("b"))
            ),
            (1, 2)
        );
        m.forget("app", "two", "Synced");
        m.forget("app", "never-seen", "Synced");
        let text = m.encode();
        assert!(
            !text.contains(r#"key_sealed_secrets{fingerprint="SHA256:a"}"#),
            "a key nothing needs is not listed\n{text}"
        );
        assert!(
            text.contains(r#"sealant_controller_key_sealed_secrets{fingerprint="SHA256:b"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn key_age_and_renewal_are_computed_at_scrape_time() {
        use crate::key_secrets::tests::test_keys;
        use sealant_crds::key_secret::KeyEntry;
        let m = Metrics::new("v", false);
        let text = m.encode();
        assert!(
            text.contains("sealant_controller_key_renewal_seconds 0"),
            "no key yet: due\n{text}"
        );
        let mut keys = Keys::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let (k, c) = &test_keys()[0];
        keys.insert(KeyEntry::new(k.clone(), c.clone(), None, t0));
        m.set_keys(&keys, Duration::from_secs(3_600));
        let text = m.encode_at(t0 + time::Duration::seconds(600));
        let age = format!(
            r#"sealant_controller_key_age_seconds{{fingerprint="{}"}} 600"#,
            k.fingerprint()
        );
        assert!(text.contains(&age), "{text}");
        assert!(
            text.contains("sealant_controller_key_renewal_seconds 3000"),
            "{text}"
        );
        let text = m.encode_at(t0 + time::Duration::seconds(7_200));
        assert!(
            text.contains("sealant_controller_key_renewal_seconds 0"),
            "overdue\n{text}"
        );
        m.set_keys(&keys, Duration::ZERO);
        assert!(
            m.encode_at(t0)
                .contains("sealant_controller_key_renewal_seconds -1"),
            "disabled"
        );
        assert!(!m.encode().contains("PRIVATE KEY"));
    }
}
