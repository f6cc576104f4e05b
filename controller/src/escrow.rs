//! Key escrow: a copy of every active key, encrypted to recipients the operator holds
//! offline (`--escrow-recipient age1...`), kept in the cluster next to the keys, so
//! that losing the cluster (or its etcd backup) does not lose the keys.
//!
//! ```text
//!   key set changes (start-up load, key created or renewed, key Secrets added, removed, relabelled)
//!     └─▶ Escrow::refresh(keys): coverage (fingerprints newest first, recipients) changed?
//!           └─ yes ─▶ build(): key_list(active key Secrets as loaded) ─▶ bundle::seal(recipients) ─▶ Bundle (cached)
//!                       ├─▶ every replica: GET /v1/escrow-bundle answers the cached armored text
//!                       └─▶ leader only: keep_written() ─▶ ConfigMap sealant-escrow-bundle
//!                             get ─▶ needs_rewrite? (annotations only) ─▶ create / replace (resourceVersion), retry on 409
//! ```
//!
//! The bundle is an ASCII-armored age file ([`sealant_keys::bundle`]) whose plaintext
//! is [`sealant_crds::key_secret::key_list`] of the active key Secrets, as loaded and
//! trimmed by [`sealant_crds::key_secret::backup_secret`]: a Bitnami-style `v1` `List`.
//! So a restore needs only the stock tools:
//!
//! ```text
//!   kubectl -n kube-system get configmap sealant-escrow-bundle -o jsonpath='{.data.bundle\.age}' \
//!     | age -d -i escrow.key | kubectl apply -f -
//! ```
//!
//! The ConfigMap ([`CONFIG_MAP`], in the controller's namespace) holds:
//!
//! | where | what |
//! |---|---|
//! | `data["bundle.age"]` ([`BUNDLE_KEY`]) | the armored bundle |
//! | annotation [`FINGERPRINTS_ANNOTATION`] | comma-separated fingerprints of the keys inside, newest first |
//! | annotation [`RECIPIENTS_ANNOTATION`] | comma-separated recipients it is encrypted to |
//! | label [`MANAGED_BY_LABEL`]`=`[`MANAGED_BY`] | who writes it |
//!
//! Guarantees:
//! - age ciphertext is random, so the bundle is never compared: the ConfigMap is
//!   rewritten only when its two annotations differ from what the loaded keys and the
//!   recipients call for (or its bundle is missing), so a restart over unchanged keys
//!   writes nothing ([`needs_rewrite`]);
//! - only the leader (or the single replica without `--leader-elect`) writes, with the
//!   read `resourceVersion`, and a conflict is retried from a fresh read;
//! - the bundle is built once per change of what it covers, not per request;
//! - with no key loaded there is no bundle: the ConfigMap keeps the last one and
//!   `/v1/escrow-bundle` answers 503;
//! - the plaintext (private keys) lives only in zeroizing memory while it is
//!   encrypted; nothing here logs or returns it. The bundle itself is ciphertext:
//!   publishing it (to anyone who may read the ConfigMap or call the HTTP API) is as
//!   safe as the escrow identities are kept.
//!
//! Errors: a failed write is logged and retried every [`RETRY`] (or sooner, when the
//! keys change); it never stops the controller, so a missing RBAC grant shows as a
//! warning in the log, not as an outage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use sealant_crds::key_secret::key_list;
use sealant_keys::{AgeRecipient, Fingerprint, bundle};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::Error;
use crate::key_secrets::Keys;
use crate::metrics::Metrics;
use crate::reconcile::FIELD_MANAGER;

/// The name of the escrow ConfigMap, in the controller's namespace, and the data key of
/// the armored bundle in it (shared with the CLI, which restores from them).
pub use sealant_crds::key_secret::{
    ESCROW_BUNDLE_KEY as BUNDLE_KEY, ESCROW_CONFIG_MAP as CONFIG_MAP,
};

/// The annotation listing the fingerprints of the keys in the bundle, newest first.
pub const FINGERPRINTS_ANNOTATION: &str = "sealant.dev/escrow-fingerprints";

/// The annotation listing the recipients the bundle is encrypted to.
pub const RECIPIENTS_ANNOTATION: &str = "sealant.dev/escrow-recipients";

/// The label naming the ConfigMap's writer.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "sealant-controller";

/// How long a failed ConfigMap write waits before it is tried again (unless the keys
/// change first).
pub const RETRY: Duration = Duration::from_secs(10);

/// How many times one write re-reads and retries after a conflict.
const CONFLICT_ATTEMPTS: usize = 5;

/// What a bundle covers: the keys inside and who can open it. This, never the
/// ciphertext, decides whether the ConfigMap is rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// The fingerprints of the keys inside, newest first.
    pub fingerprints: Vec<Fingerprint>,
    /// The recipients it is encrypted to, in flag order.
    pub recipients: Vec<AgeRecipient>,
}

impl Coverage {
    /// What a bundle of `keys` (those with a loaded key Secret) to `recipients`
    /// covers.
    pub fn of(keys: &Keys, recipients: &[AgeRecipient]) -> Self {
        Self {
            fingerprints: keys
                .key_secrets()
                .into_iter()
                .map(|(f, _)| f.clone())
                .collect(),
            recipients: recipients.to_vec(),
        }
    }

    /// The ConfigMap annotations that record this coverage.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let fingerprints: Vec<&str> = self.fingerprints.iter().map(Fingerprint::as_str).collect();
        let recipients: Vec<String> = self.recipients.iter().map(ToString::to_string).collect();
        BTreeMap::from([
            (FINGERPRINTS_ANNOTATION.to_owned(), fingerprints.join(",")),
            (RECIPIENTS_ANNOTATION.to_owned(), recipients.join(",")),
        ])
    }
}

/// A built escrow bundle: ciphertext only, safe to hold, log the size of and serve.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The ASCII-armored age file.
    pub armored: String,
    /// What it covers.
    pub coverage: Coverage,
}

/// Encrypts the key Secrets of `keys` (newest first) to `recipients`. `None` when no
/// key has a loaded key Secret: there is nothing to escrow.
pub fn build(keys: &Keys, recipients: &[AgeRecipient]) -> Result<Option<Bundle>, Error> {
    let coverage = Coverage::of(keys, recipients);
    if coverage.fingerprints.is_empty() {
        return Ok(None);
    }
    let mut secrets: Vec<Secret> = keys
        .key_secrets()
        .into_iter()
        .map(|(_, s)| s.expose_secret().clone())
        .collect();
    let plaintext = key_list(&secrets);
    wipe(&mut secrets);
    let plaintext = plaintext.map_err(Error::KeyMaterial)?;
    let armored = bundle::seal(recipients, plaintext.as_bytes()).map_err(Error::Escrow)?;
    Ok(Some(Bundle { armored, coverage }))
}

/// Overwrites the data of `secrets` (copies of key Secrets) before they are dropped.
fn wipe(secrets: &mut [Secret]) {
    use zeroize::Zeroize as _;
    for secret in secrets {
        for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
            value.0.zeroize();
        }
        for value in secret.string_data.iter_mut().flat_map(|d| d.values_mut()) {
            value.zeroize();
        }
    }
}

/// True when `existing` (the ConfigMap as read, if any) must be rewritten to record
/// `coverage`: it is missing, one of its two annotations differs, or it holds no
/// bundle. The ciphertext itself is never compared (age output is random).
pub fn needs_rewrite(existing: Option<&ConfigMap>, coverage: &Coverage) -> bool {
    let Some(existing) = existing else {
        return true;
    };
    let have = existing.metadata.annotations.as_ref();
    let annotated = coverage
        .annotations()
        .iter()
        .all(|(k, v)| have.and_then(|a| a.get(k)) == Some(v));
    let holds_bundle = existing
        .data
        .as_ref()
        .and_then(|d| d.get(BUNDLE_KEY))
        .is_some_and(|b| bundle::is_encrypted(b.as_bytes()));
    !(annotated && holds_bundle)
}

/// The ConfigMap that holds `bundle` in `namespace`. Over an `existing` one, its
/// `resourceVersion` is kept (so a concurrent write conflicts instead of being
/// overwritten) and so are labels and annotations other than ours; its data is
/// replaced.
pub fn config_map(bundle: &Bundle, namespace: &str, existing: Option<&ConfigMap>) -> ConfigMap {
    let old = existing.map(|c| &c.metadata);
    let mut labels = old.and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    let mut annotations = old.and_then(|m| m.annotations.clone()).unwrap_or_default();
    annotations.extend(bundle.coverage.annotations());
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            resource_version: old.and_then(|m| m.resource_version.clone()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            BUNDLE_KEY.to_owned(),
            bundle.armored.clone(),
        )])),
        ..ConfigMap::default()
    }
}

/// The escrow state every replica shares between its key manager, its HTTP API and
/// (on the leader) the ConfigMap writer: the recipients, and the last bundle built.
#[derive(Debug)]
pub struct Escrow {
    recipients: Vec<AgeRecipient>,
    bundle: watch::Sender<Option<Arc<Bundle>>>,
}

impl Escrow {
    /// Escrow to `recipients`; with none, escrow is off and nothing is ever built.
    pub fn new(recipients: Vec<AgeRecipient>) -> Self {
        Self {
            recipients,
            bundle: watch::Sender::new(None),
        }
    }

    /// True when `--escrow-recipient` was given.
    pub fn is_enabled(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// The recipients.
    pub fn recipients(&self) -> &[AgeRecipient] {
        &self.recipients
    }

    /// The last bundle built, if any.
    pub fn bundle(&self) -> Option<Arc<Bundle>> {
        self.bundle.borrow().clone()
    }

    /// Rebuilds the bundle for `keys` when what it covers changed (and escrow is on).
    /// Returns whether a new bundle (or none, when no key is loaded) was installed.
    pub fn refresh(&self, keys: &Keys) -> Result<bool, Error> {
        if !self.is_enabled() {
            return Ok(false);
        }
        let coverage = Coverage::of(keys, &self.recipients);
        let current = self.bundle.borrow().as_ref().map(|b| b.coverage.clone());
        let unchanged = match &current {
            Some(c) => *c == coverage,
            None => coverage.fingerprints.is_empty(),
        };
        if unchanged {
            return Ok(false);
        }
        let built = build(keys, &self.recipients)?;
        self.bundle.send_replace(built.map(Arc::new));
        Ok(true)
    }

    /// A receiver that sees every new bundle.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Bundle>>> {
        self.bundle.subscribe()
    }
}

/// Makes the ConfigMap hold `bundle`: reads it, and creates or replaces it when
/// [`needs_rewrite`] says so; a conflict (someone wrote meanwhile) is retried from a
/// fresh read. Returns whether it wrote.
pub async fn ensure(api: &Api<ConfigMap>, namespace: &str, bundle: &Bundle) -> Result<bool, Error> {
    let object = format!("{namespace}/{CONFIG_MAP}");
    let kube_error = |action: &'static str, source: kube::Error| Error::Kube {
        action,
        object: object.clone(),
        source,
    };
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let existing = api
            .get_opt(CONFIG_MAP)
            .await
            .map_err(|source| kube_error("read ConfigMap", source))?;
        if !needs_rewrite(existing.as_ref(), &bundle.coverage) {
            return Ok(false);
        }
        let want = config_map(bundle, namespace, existing.as_ref());
        let written = match existing {
            None => api.create(&params, &want).await,
            Some(_) => api.replace(CONFIG_MAP, &params, &want).await,
        };
        match written {
            Ok(_) => return Ok(true),
            // 409: created meanwhile (AlreadyExists) or changed since the read
            // (Conflict). Read again and decide again.
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < CONFLICT_ATTEMPTS => {}
            Err(source) => return Err(kube_error("write ConfigMap", source)),
        }
    }
}

/// Leader only: keeps the ConfigMap in step with the latest bundle, until the task is
/// aborted (when the controller stops or loses the lead).
pub async fn keep_written(
    api: Api<ConfigMap>,
    namespace: String,
    escrow: Arc<Escrow>,
    metrics: Arc<Metrics>,
) {
    let mut latest = escrow.subscribe();
    loop {
        let bundle = latest.borrow_and_update().clone();
        let mut retry = false;
        if let Some(bundle) = bundle {
            match ensure(&api, &namespace, &bundle).await {
                Ok(written) => {
                    let keys = bundle.coverage.fingerprints.len();
                    metrics.set_escrow_bundle_keys(keys);
                    if written {
                        info!(
                            config_map = %format!("{namespace}/{CONFIG_MAP}"),
                            keys,
                            recipients = bundle.coverage.recipients.len(),
                            "escrow bundle written"
                        );
                    }
                }
                Err(e) => {
                    warn!(error = %crate::chain(&e), retry_in = ?RETRY, "escrow bundle not written");
                    retry = true;
                }
            }
        }
        let changed = latest.changed();
        if retry {
            // Retry after RETRY, or sooner with a new bundle; stop when the key
            // manager is gone.
            if let Ok(Err(_)) = tokio::time::timeout(RETRY, changed).await {
                return;
            }
        } else if changed.await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use sealant_keys::AgeIdentity;

    use super::*;
    use crate::fixtures::request_parts;
    use crate::key_secrets::tests::test_keys;
    use crate::key_secrets::{ACTIVE, KEY_LABEL, new_key_secret};
    use sealant_crds::key_secret::KeyEntry;

    /// Keys 0 and 1 of `test_keys()`, each with its key Secret (named `k0`, `k1`,
    /// with a uid and resourceVersion as read from the API server).
    fn keys_with_secrets(indices: &[usize]) -> Keys {
        let mut keys = Keys::default();
        for &i in indices {
            let (k, c) = &test_keys()[i];
            let mut secret = new_key_secret(
                k,
                c,
                None,
                "kube-system",
                "sealed-secrets-key",
                &BTreeMap::new(),
                &BTreeMap::new(),
            );
            secret.metadata.name = Some(format!("k{i}"));
            secret.metadata.uid = Some(format!("uid-{i}"));
            secret.metadata.resource_version = Some("7".to_owned());
            keys.insert(KeyEntry::new(k.clone(), c.clone(), None, c.not_before()));
            keys.set_secret(k.fingerprint(), &secret);
        }
        keys
    }

    fn recipients(n: usize) -> (Vec<AgeIdentity>, Vec<AgeRecipient>) {
        let ids: Vec<AgeIdentity> = (0..n).map(|_| AgeIdentity::generate()).collect();
        let rs = ids.iter().map(|i| i.recipient().clone()).collect();
        (ids, rs)
    }

    fn open(bundle: &Bundle, id: &AgeIdentity) -> Vec<Secret> {
        let plain = bundle::open(std::slice::from_ref(id), bundle.armored.as_bytes())
            .expect("the escrow identity opens the bundle");
        let text = std::str::from_utf8(plain.expose_secret()).expect("UTF-8");
        sealant_crds::key_secret::parse_key_list(text).expect("a List of key Secrets")
    }

    #[test]
    fn bundle_holds_the_loaded_key_secrets_newest_first_and_opens_with_any_recipient() {
        let keys = keys_with_secrets(&[0, 1, 2]);
        let (ids, rs) = recipients(2);
        let bundle = build(&keys, &rs).expect("builds").expect("keys to escrow");
        assert!(bundle.armored.starts_with(bundle::ARMOR_BEGIN));
        let newest_first: Vec<Fingerprint> = keys
            .ring
            .iter()
            .map(|e| e.key.fingerprint().clone())
            .collect();
        assert_eq!(bundle.coverage.fingerprints, newest_first);
        assert_eq!(bundle.coverage.recipients, rs);
        for id in &ids {
            let secrets = open(&bundle, id);
            let opened: Vec<Fingerprint> = secrets
                .iter()
                .map(|s| {
                    sealant_crds::key_secret::read_rsa(s)
                        .expect("a key Secret")
                        .0
                        .fingerprint()
                        .clone()
                })
                .collect();
            assert_eq!(opened, newest_first);
            for s in &secrets {
                assert!(s.metadata.uid.is_none() && s.metadata.resource_version.is_none());
                assert_eq!(
                    s.metadata.labels.as_ref().and_then(|l| l.get(KEY_LABEL)),
                    Some(&ACTIVE.to_owned())
                );
                assert!(
                    s.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with('k'))
                );
            }
        }
        let stranger = AgeIdentity::generate();
        assert!(bundle::open(&[stranger], bundle.armored.as_bytes()).is_err());
    }

    #[test]
    fn no_loaded_key_secret_means_no_bundle() {
        let (_, rs) = recipients(1);
        assert!(build(&Keys::default(), &rs).expect("builds").is_none());
        // A key held without its Secret (never the case when loaded) is not escrowed.
        let mut keys = Keys::default();
        let (k, c) = &test_keys()[0];
        keys.insert(KeyEntry::new(k.clone(), c.clone(), None, c.not_before()));
        assert!(build(&keys, &rs).expect("builds").is_none());
    }

    #[test]
    fn annotations_list_fingerprints_newest_first_and_recipients_comma_separated() {
        let keys = keys_with_secrets(&[0, 2]);
        let (_, rs) = recipients(2);
        let coverage = Coverage::of(&keys, &rs);
        let a = coverage.annotations();
        let newest = test_keys()[2].0.fingerprint().as_str().to_owned();
        let older = test_keys()[0].0.fingerprint().as_str().to_owned();
        assert_eq!(a[FINGERPRINTS_ANNOTATION], format!("{newest},{older}"));
        assert_eq!(a[RECIPIENTS_ANNOTATION], format!("{},{}", rs[0], rs[1]));
        assert_eq!(a.len(), 2);
    }

    fn written(bundle: &Bundle) -> ConfigMap {
        let mut cm = config_map(bundle, "kube-system", None);
        cm.metadata.resource_version = Some("41".to_owned());
        cm
    }

    #[test]
    fn same_keys_and_recipients_need_no_rewrite_although_the_ciphertext_differs() {
        let keys = keys_with_secrets(&[0, 1]);
        let (_, rs) = recipients(1);
        let first = build(&keys, &rs).expect("builds").expect("bundle");
        let again = build(&keys, &rs).expect("builds").expect("bundle");
        assert_ne!(first.armored, again.armored, "age output is random");
        let stored = written(&first);
        assert!(!needs_rewrite(Some(&stored), &again.coverage));
    }

    #[test]
    fn missing_configmap_new_key_other_recipients_or_lost_bundle_need_a_rewrite() {
        let (_, rs) = recipients(2);
        let keys = keys_with_secrets(&[0, 1]);
        let bundle = build(&keys, &rs).expect("builds").expect("bundle");
        let stored = written(&bundle);
        assert!(needs_rewrite(None, &bundle.coverage), "missing");

        let renewed = keys_with_secrets(&[0, 1, 2]);
        assert!(
            needs_rewrite(Some(&stored), &Coverage::of(&renewed, &rs)),
            "a new key"
        );
        let retired = keys_with_secrets(&[1]);
        assert!(
            needs_rewrite(Some(&stored), &Coverage::of(&retired, &rs)),
            "a key left the active set"
        );
        assert!(
            needs_rewrite(Some(&stored), &Coverage::of(&keys, &rs[..1])),
            "a recipient fewer"
        );
        let mut reordered = bundle.coverage.clone();
        reordered.fingerprints.reverse();
        assert!(
            needs_rewrite(Some(&stored), &reordered),
            "another newest key"
        );

        let mut edited = stored.clone();
        edited
            .metadata
            .annotations
            .as_mut()
            .expect("annotations")
            .remove(RECIPIENTS_ANNOTATION);
        assert!(
            needs_rewrite(Some(&edited), &bundle.coverage),
            "annotation removed"
        );
        let mut emptied = stored.clone();
        emptied.data = None;
        assert!(
            needs_rewrite(Some(&emptied), &bundle.coverage),
            "bundle removed"
        );
        let mut garbled = stored;
        garbled
            .data
            .as_mut()
            .expect("data")
            .insert(BUNDLE_KEY.to_owned(), "plain text".to_owned());
        assert!(needs_rewrite(Some(&garbled), &bundle.coverage), "not age");
    }

    #[test]
    fn configmap_keeps_resource_version_and_foreign_metadata_and_replaces_data() {
        let (_, rs) = recipients(1);
        let bundle = build(&keys_with_secrets(&[0]), &rs)
            .expect("builds")
            .expect("bundle");
        let fresh = config_map(&bundle, "ns", None);
        assert_eq!(fresh.metadata.name.as_deref(), Some(CONFIG_MAP));
        assert_eq!(fresh.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(fresh.metadata.resource_version, None);
        assert_eq!(
            fresh
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL)),
            Some(&MANAGED_BY.to_owned())
        );
        assert_eq!(
            fresh.data.as_ref().and_then(|d| d.get(BUNDLE_KEY)),
            Some(&bundle.armored)
        );

        let mut existing = written(&bundle);
        existing
            .metadata
            .labels
            .as_mut()
            .expect("labels")
            .insert("team".to_owned(), "ops".to_owned());
        existing
            .metadata
            .annotations
            .as_mut()
            .expect("annotations")
            .insert(FINGERPRINTS_ANNOTATION.to_owned(), "stale".to_owned());
        existing
            .data
            .as_mut()
            .expect("data")
            .insert("extra".to_owned(), "x".to_owned());
        let replaced = config_map(&bundle, "ns", Some(&existing));
        assert_eq!(replaced.metadata.resource_version.as_deref(), Some("41"));
        let labels = replaced.metadata.labels.expect("labels");
        assert_eq!(labels.get("team").map(String::as_str), Some("ops"));
        let annotations = replaced.metadata.annotations.expect("annotations");
        assert_eq!(
            annotations[FINGERPRINTS_ANNOTATION],
            bundle.coverage.annotations()[FINGERPRINTS_ANNOTATION]
        );
        assert_eq!(replaced.data.map(|d| d.len()), Some(1));
    }

    #[test]
    fn refresh_rebuilds_only_when_the_coverage_changes_and_is_off_without_recipients() {
        let off = Escrow::new(Vec::new());
        assert!(!off.is_enabled());
        assert!(!off.refresh(&keys_with_secrets(&[0])).expect("refresh"));
        assert!(off.bundle().is_none());

        let (_, rs) = recipients(1);
        let escrow = Escrow::new(rs);
        assert!(
            !escrow.refresh(&Keys::default()).expect("refresh"),
            "no keys"
        );
        let mut seen = escrow.subscribe();
        assert!(escrow.refresh(&keys_with_secrets(&[0])).expect("refresh"));
        assert!(seen.has_changed().expect("open"));
        let first = escrow.bundle().expect("bundle").armored.clone();
        seen.borrow_and_update();
        assert!(!escrow.refresh(&keys_with_secrets(&[0])).expect("refresh"));
        assert!(!seen.has_changed().expect("open"), "same keys: cached");
        assert_eq!(escrow.bundle().expect("bundle").armored, first);
        assert!(
            escrow
                .refresh(&keys_with_secrets(&[0, 1]))
                .expect("refresh")
        );
        assert_eq!(
            escrow.bundle().expect("bundle").coverage.fingerprints.len(),
            2
        );
        assert!(escrow.refresh(&Keys::default()).expect("refresh"));
        assert!(escrow.bundle().is_none(), "no key loaded: no bundle");
    }

    /// A scripted API server holding at most one ConfigMap: GET, POST and PUT of
    /// [`CONFIG_MAP`], a PUT with a stale `resourceVersion` answered 409, and the first
    /// `conflicts` writes answered 409 as if someone wrote meanwhile. Returns the
    /// client and the log of (method, resourceVersion sent).
    struct FakeApi {
        stored: Option<ConfigMap>,
        conflicts: usize,
        log: Vec<(String, Option<String>)>,
    }

    fn fake_api(
        stored: Option<ConfigMap>,
        conflicts: usize,
    ) -> (Api<ConfigMap>, Arc<std::sync::Mutex<FakeApi>>) {
        use http_body_util::Full;
        let state = Arc::new(std::sync::Mutex::new(FakeApi {
            stored,
            conflicts,
            log: Vec::new(),
        }));
        let shared = state.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let shared = shared.clone();
            async move {
                let (method, uri, bytes) = request_parts(req).await;
                let path = uri.path();
                let sent: Option<ConfigMap> = serde_json::from_slice(&bytes).ok();
                let mut fake = shared.lock().expect("lock");
                fake.log.push((
                    method.clone(),
                    sent.as_ref()
                        .and_then(|c| c.metadata.resource_version.clone()),
                ));
                let status = |code: u16, reason: &str| {
                    (
                        code,
                        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason}),
                    )
                };
                let named = path == format!("/api/v1/namespaces/ns/configmaps/{CONFIG_MAP}");
                let (code, reply) = match (method.as_str(), named) {
                    ("GET", true) => match &fake.stored {
                        Some(c) => (200, serde_json::to_value(c).expect("json")),
                        None => status(404, "NotFound"),
                    },
                    ("POST" | "PUT", _) if fake.conflicts > 0 => {
                        fake.conflicts -= 1;
                        // Someone else wrote: the stored object moves on.
                        if let Some(c) = fake.stored.as_mut() {
                            c.metadata.resource_version = Some("99".to_owned());
                        }
                        status(409, "Conflict")
                    }
                    ("POST", false) if fake.stored.is_some() => status(409, "AlreadyExists"),
                    ("PUT", true)
                        if sent
                            .as_ref()
                            .and_then(|c| c.metadata.resource_version.clone())
                            != fake
                                .stored
                                .as_ref()
                                .and_then(|c| c.metadata.resource_version.clone()) =>
                    {
                        status(409, "Conflict")
                    }
                    ("POST", false) | ("PUT", true) => {
                        let mut c = sent.expect("a ConfigMap body");
                        c.metadata.resource_version = Some("100".to_owned());
                        fake.stored = Some(c.clone());
                        (200, serde_json::to_value(c).expect("json"))
                    }
                    _ => status(500, "unexpected"),
                };
                let response = http::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Full::new(axum::body::Bytes::from(reply.to_string())))
                    .expect("response");
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let client = kube::Client::new(service, "ns");
        (Api::namespaced(client, "ns"), state)
    }

    fn methods(state: &std::sync::Mutex<FakeApi>) -> Vec<String> {
        state
            .lock()
            .expect("lock")
            .log
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }

    #[tokio::test]
    async fn ensure_creates_a_missing_configmap_then_leaves_a_current_one_alone() {
        let (_, rs) = recipients(1);
        let keys = keys_with_secrets(&[0, 1]);
        let bundle = build(&keys, &rs).expect("builds").expect("bundle");
        let (api, state) = fake_api(None, 0);
        assert!(ensure(&api, "ns", &bundle).await.expect("writes"));
        assert_eq!(methods(&state), ["GET", "POST"]);
        let stored = state.lock().expect("lock").stored.clone().expect("created");
        assert_eq!(
            stored.metadata.annotations.expect("annotations"),
            bundle.coverage.annotations()
        );

        // A restart: same keys, a freshly encrypted bundle, and nothing is written.
        let again = build(&keys, &rs).expect("builds").expect("bundle");
        state.lock().expect("lock").log.clear();
        assert!(!ensure(&api, "ns", &again).await.expect("reads"));
        assert_eq!(methods(&state), ["GET"]);
    }

    #[tokio::test]
    async fn ensure_replaces_with_the_read_resource_version_and_retries_a_conflict() {
        let (_, rs) = recipients(1);
        let old = build(&keys_with_secrets(&[0]), &rs)
            .expect("builds")
            .expect("bundle");
        let renewed = build(&keys_with_secrets(&[0, 1]), &rs)
            .expect("builds")
            .expect("bundle");
        let (api, state) = fake_api(Some(written(&old)), 1);
        assert!(ensure(&api, "ns", &renewed).await.expect("writes"));
        let log = state.lock().expect("lock").log.clone();
        let sent: Vec<(&str, Option<&str>)> = log
            .iter()
            .map(|(m, v)| (m.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            sent,
            [
                ("GET", None),
                ("PUT", Some("41")),
                ("GET", None),
                ("PUT", Some("99")),
            ],
            "the conflict is retried from a fresh read"
        );
        let stored = state.lock().expect("lock").stored.clone().expect("stored");
        assert_eq!(
            stored.metadata.annotations.expect("annotations")[FINGERPRINTS_ANNOTATION],
            renewed.coverage.annotations()[FINGERPRINTS_ANNOTATION]
        );
        assert_eq!(
            stored.data.expect("data")[BUNDLE_KEY],
            renewed.armored,
            "the new bundle"
        );
    }

    #[tokio::test]
    async fn ensure_gives_up_after_repeated_conflicts_with_an_error_naming_the_configmap() {
        let (_, rs) = recipients(1);
        let bundle = build(&keys_with_secrets(&[0]), &rs)
            .expect("builds")
            .expect("bundle");
        let (api, _) = fake_api(None, 100);
        let err = ensure(&api, "ns", &bundle).await.expect_err("gives up");
        assert_eq!(
            err.to_string(),
            format!("cannot write ConfigMap ns/{CONFIG_MAP}")
        );
    }

    #[test]
    fn bundle_text_never_contains_key_material() {
        let keys = keys_with_secrets(&[0]);
        let (_, rs) = recipients(1);
        let bundle = build(&keys, &rs).expect("builds").expect("bundle");
        let (k, _) = &test_keys()[0];
        let pem = k.expose_pkcs1_pem();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let b64 =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pem.as_bytes());
        for needle in [&body[..40], &b64[..40]] {
            assert!(!bundle.armored.contains(needle));
        }
        assert!(!format!("{bundle:?}").contains("PRIVATE KEY"));
        let loaded = keys.secrets.values().next().expect("secret");
        assert_eq!(format!("{loaded:?}"), "LoadedSecret(kube-system/k0)");
    }
}
