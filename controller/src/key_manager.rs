//! The key manager: loads the key Secrets at start, generates and renews keys (on
//! schedule, at `--key-cutoff-time`, on SIGUSR1), watches the key Secrets (labelled
//! and legacy) so key changes need no restart, and keeps the escrow bundle in step.
//! The decisions it acts on live in [`crate::key_secrets`]; this module only talks to
//! the API server.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt as _, future};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use kube::{Api, ResourceExt as _};
use sealant_crds::key_secret::KeyEntry;
use sealant_keys::{AgeIdentity, Fingerprint, OffsetDateTime};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::Error;
use crate::chain;
use crate::escrow::Escrow;
use crate::flags::Flags;
use crate::key_secrets::{self, KEY_SELECTOR, KeyStore, Keys, Renewal};
use crate::metrics::Metrics;
use crate::reconcile::FIELD_MANAGER;

/// Loads, renews and watches key Secrets.
pub(crate) struct KeyManager {
    pub(crate) api: Api<Secret>,
    pub(crate) namespace: String,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) escrow: Arc<Escrow>,
    pub(crate) flags: Flags,
}

impl KeyManager {
    /// Lists key Secrets and the legacy one, and loads them.
    pub(crate) async fn initial_load(&self) -> Result<(), Error> {
        let list = self
            .api
            .list(&ListParams::default().labels(KEY_SELECTOR))
            .await
            .map_err(|source| self.kube_error("list key Secrets in", source))?;
        let legacy = self
            .api
            .get_opt(&self.flags.key_prefix)
            .await
            .map_err(|source| self.kube_error("read the legacy key Secret in", source))?;
        let mut items = list.items;
        items.extend(legacy);
        self.install(&items);
        Ok(())
    }

    /// Loads `items` into the store; returns whether the set of keys changed.
    pub(crate) fn install(&self, items: &[Secret]) -> bool {
        let loaded =
            key_secrets::load(items, &self.flags.key_prefix, self.flags.key_order_priority);
        for rejected in &loaded.rejected {
            warn!(error = %chain(rejected), "key Secret skipped");
        }
        let before: BTreeSet<Fingerprint> =
            self.keys.snapshot().certificates.keys().cloned().collect();
        let after: BTreeSet<Fingerprint> = loaded.keys.certificates.keys().cloned().collect();
        let newest_before = self
            .keys
            .snapshot()
            .ring
            .newest()
            .map(|e| e.key.fingerprint().clone());
        let newest_after = loaded
            .keys
            .ring
            .newest()
            .map(|e| e.key.fingerprint().clone());
        self.metrics
            .set_keys(&loaded.keys, self.flags.key_renew_period.get());
        let age_identities = loaded.keys.ring.age_len();
        self.refresh_escrow(&loaded.keys);
        self.keys.replace(loaded.keys);
        info!(keys = after.len(), age_identities, newest = ?newest_after.as_ref().map(Fingerprint::as_str), "keys loaded");
        before != after || newest_before != newest_after
    }

    /// Generates a key, writes its Secret, and adds it to the store.
    pub(crate) async fn renew(&self) -> Result<(), Error> {
        let wait = key_secrets::wait_to_sort_newest(
            self.keys.snapshot().newest_time(),
            OffsetDateTime::now_utc(),
        );
        tokio::time::sleep(wait).await;
        let bits = self.flags.key_size;
        let ttl = self.flags.key_ttl.get();
        let cn = self.flags.my_cn.clone();
        let (key, certificate) = tokio::task::spawn_blocking(move || {
            key_secrets::generate(bits, ttl, &cn, OffsetDateTime::now_utc())
        })
        .await
        .map_err(|_| Error::Internal {
            what: "generating a key",
        })??;
        let age = AgeIdentity::generate();
        let secret = key_secrets::new_key_secret(
            &key,
            &certificate,
            Some(&age),
            &self.namespace,
            &self.flags.key_prefix,
            &self.flags.privatekey_labels.0,
            &self.flags.privatekey_annotations.0,
        );
        let params = PostParams {
            dry_run: false,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let created = self
            .api
            .create(&params, &secret)
            .await
            .map_err(|source| self.kube_error("create a key Secret in", source))?;
        drop(secret);
        let time = sealant_crds::key_secret::order_time(
            &created,
            &certificate,
            self.flags.key_order_priority.into(),
        )
        .unwrap_or_else(OffsetDateTime::now_utc);
        let name = created.name_any();
        let mut keys = (*self.keys.snapshot()).clone();
        let fingerprint = key.fingerprint().clone();
        let recipient = age.recipient().to_string();
        keys.insert(KeyEntry::new(key, certificate, Some(age), time));
        keys.set_secret(&fingerprint, &created);
        drop(created);
        self.metrics
            .set_keys(&keys, self.flags.key_renew_period.get());
        self.refresh_escrow(&keys);
        self.keys.replace(keys);
        info!(
            secret = %format!("{}/{}", self.namespace, name),
            fingerprint = %fingerprint,
            age_recipient = %recipient,
            "new sealing key written"
        );
        Ok(())
    }

    /// Rebuilds the escrow bundle if the keys it covers changed. A failure is logged:
    /// the previous bundle stays, and the next key change tries again.
    pub(crate) fn refresh_escrow(&self, keys: &Keys) {
        match self.escrow.refresh(keys) {
            Ok(true) => {
                let covered = self
                    .escrow
                    .bundle()
                    .map_or(0, |b| b.coverage.fingerprints.len());
                info!(keys = covered, "escrow bundle rebuilt");
            }
            Ok(false) => {}
            Err(e) => error!(error = %chain(&e), "cannot rebuild the escrow bundle"),
        }
    }

    /// Renews on schedule and on SIGUSR1.
    pub(crate) async fn renewal_loop(self: Arc<Self>) {
        let mut usr1 =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGUSR1; manual renewal is off");
                    None
                }
            };
        loop {
            let now = OffsetDateTime::now_utc();
            let wait = match key_secrets::renewal(
                self.keys.snapshot().newest_time(),
                now,
                self.flags.key_renew_period.get(),
                None,
            ) {
                Renewal::Now => Some(Duration::ZERO),
                Renewal::At(t) => Some(Duration::try_from(t - now).unwrap_or(Duration::ZERO)),
                Renewal::Never => None,
            };
            let sleep = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => future::pending::<()>().await,
                }
            };
            let signal = async {
                match usr1.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => future::pending::<()>().await,
                }
            };
            let forced = tokio::select! {
                () = sleep => false,
                () = signal => true,
            };
            if !forced {
                // Another writer may have renewed meanwhile: check the schedule again.
                let due = key_secrets::renewal(
                    self.keys.snapshot().newest_time(),
                    OffsetDateTime::now_utc(),
                    self.flags.key_renew_period.get(),
                    None,
                );
                if due != Renewal::Now {
                    continue;
                }
            }
            if let Err(e) = self.renew().await {
                error!(error = %chain(&e), "key renewal failed; retrying in 30s");
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    }

    /// Watches the key Secrets (label-selected, plus the legacy one by name) and
    /// reloads on every change; tells the controllers to reconcile everything when the
    /// keys changed.
    pub(crate) async fn watch(self: Arc<Self>, changed: watch::Sender<u64>) {
        let (labelled, labelled_writer) = reflector::store();
        let (legacy, legacy_writer) = reflector::store();
        let labelled_stream = reflector(
            labelled_writer,
            watcher(
                self.api.clone(),
                watcher::Config::default().labels(KEY_SELECTOR),
            ),
        )
        .default_backoff()
        .map(|event| (true, event));
        let legacy_stream = reflector(
            legacy_writer,
            watcher(
                self.api.clone(),
                watcher::Config::default()
                    .fields(&format!("metadata.name={}", self.flags.key_prefix)),
            ),
        )
        .default_backoff()
        .map(|event| (false, event));
        let stream = futures::stream::select(labelled_stream, legacy_stream);
        futures::pin_mut!(stream);
        let (mut labelled_ready, mut legacy_ready) = (false, false);
        while let Some((is_labelled, event)) = stream.next().await {
            match event {
                // A store is complete only after a whole (re)list: reloading on each
                // listed object would install a partial key set.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
                Ok(watcher::Event::InitDone) => {
                    if is_labelled {
                        labelled_ready = true;
                    } else {
                        legacy_ready = true;
                    }
                }
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {}
                Err(e) => {
                    warn!(error = %e, "key watch error");
                    continue;
                }
            }
            if !(labelled_ready && legacy_ready) {
                continue;
            }
            let mut items: Vec<Secret> = labelled.state().iter().map(|s| (**s).clone()).collect();
            for l in legacy.state() {
                if !items.iter().any(|s| s.metadata.name == l.metadata.name) {
                    items.push((*l).clone());
                }
            }
            if self.install(&items) {
                changed.send_modify(|n| *n += 1);
            }
        }
    }

    pub(crate) fn kube_error(&self, action: &'static str, source: kube::Error) -> Error {
        Error::Kube {
            action,
            object: format!("namespace {}", self.namespace),
            source,
        }
    }
}
