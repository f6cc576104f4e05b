//! The running controller: the effectful shell around the pure modules.
//!
//! ```text
//!   run()
//!    ├─ HTTP API on --listen-addr, metrics on --listen-metrics-addr   (up before any sync: probes pass early)
//!    ├─ key manager: list key Secrets ─▶ KeyStore (+ escrow bundle, with --escrow-recipient)
//!    │    └─ key watcher (label-selected Secrets and the legacy one, in the controller's namespace) ─▶ reload ─▶ reconcile all
//!    ├─ with --leader-elect: wait until this replica holds the Lease (then keep renewing it)
//!    ├─ generate a key if none, or past --key-cutoff-time; renewal loop: every --key-renew-period, or on SIGUSR1
//!    ├─ with --escrow-recipient: keep the ConfigMap sealant-escrow-bundle in step with the keys (crate::escrow)
//!    └─ one kube-runtime Controller per watched namespace (or one for all):
//!         SealedSecrets (with --label-selector), owned Secrets watched as metadata only
//!         reconcile(): fetch Secret ─▶ ownership ─▶ in-sync proof or unseal (blocking pool) ─▶ decide ─▶ write ─▶ status, event
//! ```
//!
//! This module is the wiring: it starts the HTTP servers, the key manager
//! (`key_manager`), leader election ([`crate::leader`]) and one kube-runtime
//! Controller per watched namespace, whose passes are `pass`. What is proven
//! where: every decision is unit-tested in [`crate::reconcile`], [`crate::digest`],
//! [`crate::key_secrets`] and [`crate::http`]; one pass against a scripted API server
//! in `pass`; the end-to-end suites in `tests/tests/controller*.rs` run the
//! binary against a real API server.
//!
//! With `--leader-elect`, the part that writes (key generation and renewal, the escrow
//! ConfigMap, the reconcile loops) starts only once this replica holds the Lease
//! ([`crate::leader`]); the HTTP API, the metrics, the key watch and the escrow bundle
//! it builds run on every replica.

use std::sync::Arc;

use futures::{Stream, StreamExt as _, TryStreamExt as _, future};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::DynamicObject;
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt as _, reflector, watcher};
use kube::{Api, Client, ResourceExt as _};
use sealant_crds::{CONDITION_SYNCED, SealedSecret};
use sealant_keys::OffsetDateTime;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::decode::{self, Bad};
use crate::escrow::{self, Escrow};
use crate::flags::Flags;
use crate::http::{
    ApiState, CONNECTION_LIMITS, LimitedListener, TokenBucket, api_router, metrics_router,
};
use crate::key_manager::KeyManager;
use crate::key_secrets::{self, KeyStore, Renewal};
use crate::leader;
use crate::metrics::Metrics;
use crate::pass::{Context, error_policy, reconcile, report_unreadable};
use crate::reconcile::EVENT_COMPONENT;
use crate::{Error, chain};

/// Runs the controller until SIGTERM or Ctrl-C (or, with `--leader-elect`, until it
/// loses the leadership it held, which is an error: the process must not go on).
pub async fn run(flags: Flags) -> Result<(), Error> {
    let election = flags.leader_elect.then(|| leader::Timing {
        lease_duration: flags.leader_elect_lease_duration.get(),
        renew_deadline: flags.leader_elect_renew_deadline.get(),
        retry_period: flags.leader_elect_retry_period.get(),
    });
    if let Some(timing) = &election {
        timing.validate()?;
    }
    let client = crate::api_client::client().await?;
    let namespace = key_secrets::my_namespace();
    let metrics = Arc::new(Metrics::new(
        env!("CARGO_PKG_VERSION"),
        flags.metrics_omit_secret_labels,
    ));
    let keys = Arc::new(KeyStore::default());
    let escrow = Arc::new(Escrow::new(flags.escrow_recipients()));
    metrics.set_escrow_recipients(escrow.recipients().len());
    if escrow.is_enabled() {
        let recipients: Vec<String> = escrow
            .recipients()
            .iter()
            .map(ToString::to_string)
            .collect();
        info!(recipients = %recipients.join(","), "escrowing the active keys");
    }

    // Serve first, so probes pass while keys load and the first sync runs. Every
    // replica serves, leader or not: the endpoints only read keys.
    let api_state = Arc::new(ApiState {
        keys: keys.clone(),
        metrics: metrics.clone(),
        limiter: TokenBucket::new(flags.rate_limit, flags.rate_limit_burst),
        accept_v1_data: flags.accept_deprecated_v1_data,
        escrow: escrow.clone(),
    });
    let api_server = serve(flags.listen_addr.0, api_router(api_state)).await?;
    let metrics_server =
        serve(flags.listen_metrics_addr.0, metrics_router(metrics.clone())).await?;
    let mut background = vec![api_server, metrics_server];

    let key_manager = Arc::new(KeyManager {
        api: Api::namespaced(client.clone(), &namespace),
        namespace: namespace.clone(),
        keys: keys.clone(),
        metrics: metrics.clone(),
        escrow: escrow.clone(),
        flags: flags.clone(),
    });
    key_manager.initial_load().await?;
    let (changed_tx, changed_rx) = watch::channel(0u64);
    background.push(tokio::spawn(key_manager.clone().watch(changed_tx)));

    // Everything below writes: with --leader-elect, only the leader gets there.
    let mut elector = match election {
        None => None,
        Some(timing) => {
            let mut elector = leader::Elector::new(
                Api::namespaced(client.clone(), &namespace),
                &namespace,
                leader::identity(),
                timing,
            );
            tokio::select! {
                acquired = elector.acquire() => acquired?,
                () = terminated() => {
                    info!("stopping before becoming the leader");
                    abort_all(background);
                    return Ok(());
                }
            }
            Some(elector)
        }
    };
    metrics.set_leader(true);

    if let Renewal::Now = key_secrets::renewal(
        keys.snapshot().newest_time(),
        OffsetDateTime::now_utc(),
        flags.key_renew_period.get(),
        flags.key_cutoff_time.0,
    ) {
        key_manager.renew().await?;
    }
    background.push(tokio::spawn(key_manager.clone().renewal_loop()));
    if escrow.is_enabled() {
        background.push(tokio::spawn(escrow::keep_written(
            Api::<ConfigMap>::namespaced(client.clone(), &namespace),
            namespace.clone(),
            escrow.clone(),
            metrics.clone(),
        )));
    }

    let reporter = Reporter {
        controller: EVENT_COMPONENT.to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        client: client.clone(),
        keys,
        metrics: metrics.clone(),
        recorder: Recorder::new(client.clone(), reporter.clone()),
        reporter,
        update_status: flags.update_status,
        accept_v1_data: flags.accept_deprecated_v1_data,
        accept_template_data: flags.accept_template_data,
        created: Default::default(),
        proofs: Default::default(),
        own_writes: Default::default(),
    });

    let mut scopes: Vec<Option<String>> = Vec::new();
    if flags.all_namespaces && flags.additional_namespaces().is_empty() {
        scopes.push(None);
    } else {
        scopes.push(Some(namespace.clone()));
        for ns in flags.additional_namespaces() {
            if !scopes.contains(&Some(ns.clone())) {
                scopes.push(Some(ns));
            }
        }
    }
    let controllers = future::join_all(scopes.into_iter().map(|scope| {
        run_controller(
            client.clone(),
            scope,
            &flags,
            context.clone(),
            changed_rx.clone(),
        )
    }));
    info!(namespace = %namespace, "sealant-controller started");
    let outcome = match elector.as_mut() {
        None => {
            controllers.await;
            Ok(())
        }
        Some(elector) => {
            tokio::select! {
                _ = controllers => {
                    elector.release().await;
                    Ok(())
                }
                // Dropping the controllers cancels every pass in flight: a replica
                // that may no longer lead stops writing at once.
                lost = elector.hold() => Err(lost),
            }
        }
    };
    metrics.set_leader(false);
    abort_all(background);
    outcome
}

fn abort_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.abort();
    }
}

/// Resolves on SIGTERM or Ctrl-C, as the controllers' own shutdown does.
async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

async fn serve(
    addr: std::net::SocketAddr,
    router: axum::Router,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Serve { addr, source })?;
    info!(%addr, "listening");
    Ok(tokio::spawn(async move {
        let listener = LimitedListener::new(listener, CONNECTION_LIMITS);
        if let Err(e) = axum::serve(listener, router).await {
            error!(%addr, error = %e, "HTTP server stopped");
        }
    }))
}

fn run_controller(
    client: Client,
    scope: Option<String>,
    flags: &Flags,
    context: Arc<Context>,
    key_changes: watch::Receiver<u64>,
) -> impl Future<Output = ()> {
    // SealedSecrets are watched untyped and decoded one at a time (crate::decode): a
    // malformed object is reported on itself and never stops the others.
    let resource = kube::api::ApiResource::erase::<SealedSecret>(&());
    let (sealed, secrets): (Api<DynamicObject>, Api<PartialObjectMeta<Secret>>) = match &scope {
        Some(ns) => (
            Api::namespaced_with(client.clone(), ns, &resource),
            Api::namespaced(client, ns),
        ),
        None => (Api::all_with(client.clone(), &resource), Api::all(client)),
    };
    let mut config = watcher::Config::default();
    if !flags.label_selector.is_empty() {
        config = config.labels(&flags.label_selector);
    }
    // Status writes (ours included) change neither the spec nor the scope: filtering
    // them out keeps a failing object from being decrypted again because its status
    // was just written.
    let (reader, writer) = reflector::store();
    let metrics = context.metrics.clone();
    let forget = context.clone();
    // The cache keeps what reconcile reads. managedFields and kubectl's
    // last-applied-configuration (a second copy of every ciphertext) are dropped before
    // an object is stored: with 10,000 SealedSecrets they were most of the memory.
    let reporter = context.clone();
    let mut unreadable = move |object: &DynamicObject, failure: Bad| {
        warn!(object = %failure.object, field = failure.field, "SealedSecret cannot be read; skipped");
        let ctx = reporter.clone();
        let object = object.clone();
        tokio::spawn(async move { report_unreadable(&ctx, &object, &failure).await });
    };
    let decoded = watcher(sealed, config).filter_map(move |event| {
        future::ready(match event {
            Ok(event) => decode::typed(event, &mut unreadable).map(Ok),
            Err(e) => Some(Err(e)),
        })
    });
    let stream = decoded.modify(|sealed| {
        sealed.metadata.managed_fields = None;
        if let Some(annotations) = sealed.metadata.annotations.as_mut() {
            annotations.remove(LAST_APPLIED);
        }
    });
    let trigger = reflector(writer, stream)
        .default_backoff()
        .inspect(move |event| {
            // A deleted SealedSecret no longer needs its keys.
            if let Ok(watcher::Event::Delete(gone)) = event {
                metrics.forget(
                    &gone.namespace().unwrap_or_default(),
                    &gone.name_any(),
                    CONDITION_SYNCED,
                );
                if let Some(uid) = gone.metadata.uid.as_deref() {
                    forget.forget(uid);
                }
            }
        })
        .applied_objects()
        .predicate_filter(spec_and_scope, PredicateConfig::default());
    let mut controller = Controller::for_stream(trigger, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(flags.workers))
        .reconcile_all_on(changes(key_changes))
        .shutdown_on_signal();
    if !flags.skip_recreate {
        // Metadata only (an `Api<PartialObjectMeta<_>>` lists and watches
        // `PartialObjectMetadata`, asked for in the Accept header): ownerReferences
        // are all the trigger needs, so no Secret's data crosses the wire or is held in
        // memory, however many Secrets the cluster has. Nothing is cached either: the
        // events only map to their owner.
        // Our own writes come back as events too: they are dropped here
        // (`crate::own_writes`), not left to trigger a pass that has nothing to do.
        let echoes = context.clone();
        let owned = watcher(secrets, watcher::Config::default())
            .default_backoff()
            .touched_objects()
            .try_filter(move |secret| {
                let echoes = echoes.clone();
                let meta = &secret.metadata;
                let (namespace, name) = (meta.namespace.clone(), meta.name.clone());
                let version = meta.resource_version.clone();
                async move {
                    !echoes
                        .own_writes
                        .is_echo(
                            namespace.as_deref().unwrap_or_default(),
                            name.as_deref().unwrap_or_default(),
                            version.as_deref(),
                        )
                        .await
                }
            });
        controller = controller.owns_stream(owned);
    }
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| {
            // A pass's failure is logged by the pass; a failed list or watch (retried
            // with backoff by `default_backoff`) is only seen here.
            if let Err(kube::runtime::controller::Error::QueueError(e)) = &result {
                warn!(error = %chain(e), "watch failed; retrying with backoff");
            }
            future::ready(())
        })
}

/// kubectl's copy of the applied manifest, which reconcile never reads.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a pass depends on, hashed: the object's identity, its spec (through
/// `generation`) and its annotations (the scope). Status and `resourceVersion` are
/// left out.
pub fn spec_and_scope(sealed: &SealedSecret) -> Option<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sealed.metadata.uid.hash(&mut h);
    sealed.metadata.generation.hash(&mut h);
    sealed.metadata.annotations.hash(&mut h);
    Some(h.finish())
}

fn changes(rx: watch::Receiver<u64>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::key_secrets::tests::sealed_app_db;
    use crate::reconcile;

    fn sealed() -> SealedSecret {
        let mut s = sealed_app_db("uid-1");
        s.metadata.generation = Some(1);
        s
    }

    #[test]
    fn status_writes_do_not_retrigger_but_spec_and_scope_changes_do() {
        let s = sealed();
        let base = spec_and_scope(&s);
        let mut status_only = s.clone();
        status_only.status = reconcile::synced_status(
            None,
            Some(1),
            Err(reconcile::Failure {
                message: "x",
                reason: reconcile::REASON_DECRYPTION_FAILED,
                stalled: true,
            }),
            None,
            Time(k8s_openapi::jiff::Timestamp::now()),
        );
        status_only.metadata.resource_version = Some("99".to_owned());
        assert_eq!(spec_and_scope(&status_only), base);
        let mut new_generation = s.clone();
        new_generation.metadata.generation = Some(2);
        assert_ne!(spec_and_scope(&new_generation), base);
        let mut rescoped = s.clone();
        sealant_crds::annotations::set_scope(
            &mut rescoped.metadata,
            sealant_keys::Scope::NamespaceWide,
        );
        assert_ne!(spec_and_scope(&rescoped), base);
    }
}
