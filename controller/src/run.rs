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
//! Each successful pass knows which keys the values need: the keys that opened them,
//! or, on the zero-decryption path, the keys the in-sync proof in the status names
//! (inside its MAC). That set goes to `status.keyFingerprints` and to the key inventory metrics.
//!
//! What is proven where: every decision is unit-tested in [`crate::reconcile`],
//! [`crate::digest`], [`crate::key_secrets`] and [`crate::http`]. This module only
//! moves data between those functions and the API server. Its unit tests drive one
//! reconcile pass against a scripted API server (the requests sent, their order and
//! bodies: create, zero-decryption restart, repair, refusal). The end-to-end suites in
//! `tests/tests/controller*.rs` run the binary against a real API server.
//!
//! Writes: Secrets are created (`POST`) and replaced (`PUT` with the read
//! `resourceVersion`), with the field manager [`FIELD_MANAGER`]. Replace, not
//! server-side apply, because Bitnami's semantics are "the Secret becomes exactly
//! this" (a key someone added by hand is removed), which apply cannot express for
//! fields another manager owns; and the `resourceVersion` makes a concurrent edit fail
//! and retry instead of being overwritten blindly. Status is a merge patch of
//! `status` on the status subresource (RBAC: `sealedsecrets/status` `patch`).
//!
//! With `--leader-elect`, the part that writes (key generation and renewal, the escrow
//! ConfigMap, the reconcile loops) starts only once this replica holds the Lease
//! ([`crate::leader`]); the HTTP API, the metrics, the key watch and the escrow bundle
//! it builds run on every replica.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _, future};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt as _, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt as _};
use sealant_crds::{CONDITION_SYNCED, SealedSecret, secret_shell};
use sealant_keys::{AgeIdentity, Fingerprint, OffsetDateTime};
use tokio::sync::watch;
use tracing::{error, info, instrument, warn};

use crate::digest;
use crate::escrow::{self, Escrow};
use crate::flags::Flags;
use crate::http::{
    ApiState, CONNECTION_LIMITS, LimitedListener, TokenBucket, api_router, metrics_router,
};
use crate::key_secrets::{self, KEY_SELECTOR, KeyStore, Keys, Renewal};
use crate::leader;
use crate::metrics::{ErrorReason, Metrics};
use crate::reconcile::{
    self, EVENT_COMPONENT, FIELD_MANAGER, Ownership, Plan, decide, desired, ownership,
    unseal_checked,
};
use crate::{Error, ErrorClass};

/// Everything a reconcile pass needs.
pub struct Context {
    client: Client,
    keys: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    update_status: bool,
    accept_v1_data: bool,
    /// SealedSecrets (by uid) whose Secret this process created and whose status it
    /// has not seen back yet: their next pass must not assume the Secret is absent.
    created: std::sync::Mutex<BTreeSet<String>>,
    /// In-sync proofs (by SealedSecret uid) that this process wrote to a status the
    /// cache has not shown yet: the pass that the Secret's own write triggers proves
    /// with it instead of decrypting again. Dropped once the cache shows the status.
    proofs: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Context {
    /// The proof this process wrote for `sealed` and the cache does not show yet.
    fn recent_proof(&self, sealed: &SealedSecret) -> Option<String> {
        let uid = sealed.metadata.uid.as_deref()?;
        let mut proofs = self
            .proofs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = proofs.get(uid)?;
        if sealed.status.as_ref().and_then(|s| s.in_sync_proof()) == Some(recent.as_str()) {
            proofs.remove(uid);
            return None;
        }
        Some(recent.clone())
    }

    fn remember_proof(&self, sealed: &SealedSecret, proof: Option<&str>) {
        let Some(uid) = sealed.metadata.uid.clone() else {
            return;
        };
        let mut proofs = self
            .proofs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match proof {
            Some(p) => proofs.insert(uid, p.to_owned()),
            None => proofs.remove(&uid),
        };
    }

    fn forget(&self, uid: &str) {
        self.proofs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(uid);
    }
}

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
    let client = Client::try_default().await.map_err(|source| Error::Kube {
        action: "connect to",
        object: "the Kubernetes API server".to_owned(),
        source,
    })?;
    let namespace = key_secrets::my_namespace();
    let metrics = Arc::new(Metrics::new(
        env!("CARGO_PKG_VERSION"),
        flags.metrics_omit_secret_labels,
    ));
    let keys = Arc::new(KeyStore::default());
    let escrow = Arc::new(Escrow::new(flags.escrow_recipients()));
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

    let context = Arc::new(Context {
        client: client.clone(),
        keys,
        metrics: metrics.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: EVENT_COMPONENT.to_owned(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        update_status: flags.update_status,
        accept_v1_data: flags.accept_deprecated_v1_data,
        created: Default::default(),
        proofs: Default::default(),
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
    let (sealed, secrets): (Api<SealedSecret>, Api<PartialObjectMeta<Secret>>) = match &scope {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
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
    let stream = watcher(sealed, config).modify(|sealed| {
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
        let owned = watcher(secrets, watcher::Config::default())
            .default_backoff()
            .touched_objects();
        controller = controller.owns_stream(owned);
    }
    controller
        .run(reconcile, error_policy, context)
        .for_each(|_| future::ready(()))
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

/// One pass over one SealedSecret.
#[instrument(skip(sealed, ctx), fields(object = %sealed.object_ref()))]
async fn reconcile(sealed: Arc<SealedSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = sealed.namespace().unwrap_or_default();
    ctx.metrics.unseal_request();
    let outcome = sync_secret(&sealed, &ctx).await;

    let reference = Resource::object_ref(&*sealed, &());
    match &outcome {
        Ok((plan, _, _)) => {
            if let Some(ev) = reconcile::success_event(plan) {
                publish(&ctx, &reference, ev).await;
            }
        }
        Err((reason, e)) => {
            ctx.metrics.unseal_error(*reason, &namespace);
            warn!(error = %chain(e), "reconcile failed");
            if e.class() != ErrorClass::Transient {
                publish(&ctx, &reference, reconcile::failure_event(e)).await;
            }
        }
    }

    if let Ok((_, keys, _)) = &outcome {
        ctx.metrics.depends_on(&sealed.object_ref(), keys);
    }

    if ctx.update_status {
        let message = outcome.as_ref().err().map(|(_, e)| chain(e));
        let record = outcome
            .as_ref()
            .ok()
            .map(|(_, keys, proof)| reconcile::Record {
                keys: reconcile::key_fingerprints(keys),
                proof: proof.clone(),
            });
        let proof = record.as_ref().and_then(|r| r.proof.clone());
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        if let Some(status) = reconcile::synced_status(
            sealed.status.as_ref(),
            sealed.metadata.generation,
            message.as_deref().map_or(Ok(()), Err),
            record,
            now,
        ) {
            let synced = status
                .conditions
                .as_ref()
                .and_then(|c| c.first())
                .map(|c| c.status.clone())
                .unwrap_or_default();
            let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
            let patch = serde_json::json!({ "status": status });
            if let Err(source) = api
                .patch_status(
                    &sealed.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                ctx.metrics.unseal_error(ErrorReason::Status, &namespace);
                let e = Error::Kube {
                    action: "update the status of",
                    object: sealed.object_ref(),
                    source,
                };
                warn!(error = %chain(&e), "status update failed");
                if outcome.is_ok() {
                    return Err(e);
                }
            } else {
                ctx.metrics
                    .condition(&namespace, &sealed.name_any(), CONDITION_SYNCED, &synced);
                if outcome.is_ok() {
                    ctx.remember_proof(&sealed, proof.as_deref());
                }
            }
        }
    }
    outcome.map(|_| Action::await_change()).map_err(|(_, e)| e)
}

/// What a successful pass did: the plan it carried out, the keys the values needed,
/// and the in-sync proof for the status.
type Synced = (Plan, BTreeSet<Fingerprint>, Option<String>);

fn error_policy(_sealed: Arc<SealedSecret>, error: &Error, _ctx: Arc<Context>) -> Action {
    match reconcile::retry_after(error) {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    }
}

/// Fetches the Secret, decides, and writes. Returns the plan and the keys the values
/// need; the error carries the metric reason.
async fn sync_secret(sealed: &SealedSecret, ctx: &Context) -> Result<Synced, (ErrorReason, Error)> {
    // A SealedSecret no controller has reported on yet (no status) almost never has
    // its Secret: create it straight away, one request fewer per object on a cold
    // sync. If the Secret does exist after all (409), take the full path, which reads
    // it and checks ownership before anything is written.
    // The creation itself triggers another pass (the owned Secret appeared), often
    // before the status written meanwhile reaches the cache: `created` keeps that pass
    // from decrypting again only to meet a 409.
    let uid = sealed.metadata.uid.clone().unwrap_or_default();
    fn created(ctx: &Context) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        ctx.created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    if sealed.status.is_some() {
        created(ctx).remove(&uid);
    } else if ctx.update_status && !created(ctx).contains(&uid) {
        match sync_secret_from(sealed, ctx, Assume::Absent).await {
            Err((
                _,
                Error::Kube {
                    source: kube::Error::Api(status),
                    ..
                },
            )) if status.code == 409 => {}
            done => {
                if matches!(done, Ok((Plan::Create(_), _, _))) {
                    created(ctx).insert(uid);
                }
                return done;
            }
        }
    }
    sync_secret_from(sealed, ctx, Assume::Nothing).await
}

/// What [`sync_secret_from`] may assume about the Secret before reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Assume {
    /// Read it.
    Nothing,
    /// It does not exist: go straight to create (which fails with 409 if it does).
    Absent,
}

async fn sync_secret_from(
    sealed: &SealedSecret,
    ctx: &Context,
    assume: Assume,
) -> Result<Synced, (ErrorReason, Error)> {
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = match assume {
        Assume::Absent => None,
        Assume::Nothing => secrets.get_opt(&name).await.map_err(|source| {
            (
                ErrorReason::Fetch,
                Error::Kube {
                    action: "read Secret",
                    object: format!("{namespace}/{name}"),
                    source,
                },
            )
        })?,
    };
    if ownership(sealed, existing.as_ref()) == Ownership::Foreign {
        return Err((ErrorReason::Unmanaged, Error::Unmanaged { name }));
    }

    let keys = ctx.keys.snapshot();
    let recent = ctx.recent_proof(sealed);
    let candidates = || digest::candidates(recent.as_deref(), sealed, existing.as_ref());
    let proven = existing.as_ref().and_then(|e| {
        let data = e.data.as_ref()?;
        candidates()
            .find_map(|proof| digest::verify(&keys.ring, sealed, proof, data))
            .map(|used| (e, used))
    });
    let (produced, used) = match proven {
        Some((existing, used)) => {
            ctx.metrics.in_sync_skip();
            let mut produced = secret_shell(sealed);
            produced.data = Some(in_sync_data(sealed, existing));
            (produced, used)
        }
        None => {
            let hint = candidates().find_map(digest::signer);
            decrypt(sealed, hint, &keys, ctx).await?
        }
    };
    let proof = digest::proof(
        &keys.ring,
        &used,
        sealed,
        produced.data.as_ref().unwrap_or(&BTreeMap::new()),
    );
    let want = desired(sealed, produced);
    let plan = decide(sealed, existing.as_ref(), want).map_err(|e| {
        let reason = match e {
            Error::Unmanaged { .. } => ErrorReason::Unmanaged,
            _ => ErrorReason::Update,
        };
        (reason, e)
    })?;
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    let write = match &plan {
        Plan::Create(secret) => secrets.create(&params, secret).await.map(drop),
        Plan::Update(secret) => secrets.replace(&name, &params, secret).await.map(drop),
        Plan::Unchanged => Ok(()),
    };
    write.map_err(|source| {
        (
            ErrorReason::Update,
            Error::Kube {
                action: "write Secret",
                object: format!("{namespace}/{name}"),
                source,
            },
        )
    })?;
    if !matches!(plan, Plan::Unchanged) {
        info!(secret = %format!("{namespace}/{name}"), "Secret written");
    }
    Ok((plan, used, proof))
}

/// The existing Secret's values of the sealed and template keys (the in-sync proof
/// covers exactly those).
fn in_sync_data(sealed: &SealedSecret, existing: &Secret) -> BTreeMap<String, ByteString> {
    let data = existing.data.clone().unwrap_or_default();
    digest::produced_keys(sealed)
        .into_iter()
        .filter_map(|k| data.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// Decrypts on the blocking pool, trying first `hint` (the key that signed the last
/// proof). Returns the Secret and the keys that opened its values.
async fn decrypt(
    sealed: &SealedSecret,
    hint: Option<Fingerprint>,
    keys: &Arc<Keys>,
    ctx: &Context,
) -> Result<(Secret, BTreeSet<Fingerprint>), (ErrorReason, Error)> {
    if keys.ring.is_empty() {
        return Err((ErrorReason::Unseal, Error::NoKeys));
    }
    let owned = sealed.clone();
    let ring_keys = keys.clone();
    let accept = ctx.accept_v1_data;
    ctx.metrics.decryption();
    let joined = tokio::task::spawn_blocking(move || {
        unseal_checked(&owned, &ring_keys.ring, hint.as_ref(), accept).map(|u| {
            let used = u.fingerprints().clone();
            (u.into_secret(), used)
        })
    })
    .await;
    match joined {
        Ok(Ok((secret, used))) => {
            ctx.metrics.key_decryptions(&used);
            Ok((secret, used))
        }
        Ok(Err(e)) => Err((ErrorReason::Unseal, e)),
        Err(_) => Err((ErrorReason::Unseal, Error::Internal { what: "unsealing" })),
    }
}

async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    ev: reconcile::EventSpec,
) {
    let event = Event {
        type_: if ev.type_ == "Warning" {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: ev.reason.to_owned(),
        note: Some(ev.note),
        action: "Unseal".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, reference).await {
        warn!(error = %e, "cannot publish event");
    }
}

/// The error and its causes on one line (no cause ever holds a secret value: unseal
/// errors are coarse, and Kubernetes API errors quote no Secret data).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Loads, renews and watches key Secrets.
struct KeyManager {
    api: Api<Secret>,
    namespace: String,
    keys: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    escrow: Arc<Escrow>,
    flags: Flags,
}

impl KeyManager {
    /// Lists key Secrets and the legacy one, and loads them.
    async fn initial_load(&self) -> Result<(), Error> {
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
    fn install(&self, items: &[Secret]) -> bool {
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
    async fn renew(&self) -> Result<(), Error> {
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
        let time = match self.flags.key_order_priority {
            crate::flags::KeyOrderPriority::CertNotBefore => certificate.not_before(),
            crate::flags::KeyOrderPriority::SecretCreationTimestamp => created
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.0.as_nanosecond()).ok())
                .unwrap_or_else(OffsetDateTime::now_utc),
        };
        let name = created.name_any();
        let mut keys = (*self.keys.snapshot()).clone();
        let fingerprint = key.fingerprint().clone();
        let recipient = age.recipient().to_string();
        keys.insert(key, certificate, Some(age), time);
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
    fn refresh_escrow(&self, keys: &Keys) {
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
    async fn renewal_loop(self: Arc<Self>) {
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
    async fn watch(self: Arc<Self>, changed: watch::Sender<u64>) {
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

    fn kube_error(&self, action: &'static str, source: kube::Error) -> Error {
        Error::Kube {
            action,
            object: format!("namespace {}", self.namespace),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The wiring against a scripted API server (a `tower::service_fn`, no sockets):
    //! which requests one reconcile pass sends, in which order, with which bodies.

    use std::convert::Infallible;
    use std::sync::Mutex;

    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt as _, Full};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use sealant_crds::SealedSecretStatus;

    use super::*;
    use crate::key_secrets::tests::{sealed_app_db, test_keys};

    /// One request the controller sent: method, path (with query) and JSON body.
    type Sent = (String, String, serde_json::Value);

    struct Fake {
        existing: Option<Secret>,
        sealed: SealedSecret,
    }

    /// One SealedSecret for every test: sealing again would give new ciphertext, which
    /// the in-sync proof rightly treats as a change.
    fn sealed() -> SealedSecret {
        static SEALED: std::sync::OnceLock<SealedSecret> = std::sync::OnceLock::new();
        SEALED
            .get_or_init(|| {
                let mut s = sealed_app_db("uid-1");
                s.metadata.generation = Some(1);
                s
            })
            .clone()
    }

    /// A Secret named like the SealedSecret that it does not own.
    fn foreign_secret() -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db".to_owned()),
                namespace: Some("app".to_owned()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    /// `sealed` as a controller has already reported on it (it has a status).
    fn reported(mut sealed: SealedSecret) -> SealedSecret {
        sealed.status = Some(Default::default());
        sealed
    }

    fn context(fake: Fake) -> (Arc<Context>, Arc<Mutex<Vec<Sent>>>) {
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let log = sent.clone();
        let fake = Arc::new(fake);
        let service = tower::service_fn(move |req: Request<kube::client::Body>| {
            let log = log.clone();
            let fake = fake.clone();
            async move {
                let method = req.method().to_string();
                let path = req.uri().to_string();
                let bytes = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let body: serde_json::Value =
                    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                log.lock()
                    .expect("lock")
                    .push((method.clone(), path.clone(), body.clone()));
                let route = path.split('?').next().unwrap_or_default().to_owned();
                let (status, reply) = match (method.as_str(), route.as_str()) {
                    ("GET", "/api/v1/namespaces/app/secrets/db") => match &fake.existing {
                        Some(s) => (StatusCode::OK, serde_json::to_value(s).expect("json")),
                        None => (
                            StatusCode::NOT_FOUND,
                            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "secrets \"db\" not found"}),
                        ),
                    },
                    ("POST", "/api/v1/namespaces/app/secrets") if fake.existing.is_some() => (
                        StatusCode::CONFLICT,
                        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409, "message": "secrets \"db\" already exists"}),
                    ),
                    ("POST", "/api/v1/namespaces/app/secrets") => {
                        // The API server defaults the type, as a real one does.
                        let mut stored = body;
                        if stored.get("type").is_none() {
                            stored["type"] = serde_json::json!("Opaque");
                        }
                        (StatusCode::CREATED, stored)
                    }
                    ("PUT", "/api/v1/namespaces/app/secrets/db") => (StatusCode::OK, body),
                    (
                        "PATCH",
                        "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
                    ) => (
                        StatusCode::OK,
                        serde_json::to_value(&fake.sealed).expect("json"),
                    ),
                    ("POST", "/apis/events.k8s.io/v1/namespaces/app/events") => {
                        (StatusCode::CREATED, body)
                    }
                    _ => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        serde_json::json!({"unexpected": path}),
                    ),
                };
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(axum::body::Bytes::from(reply.to_string())))
                    .expect("response");
                Ok::<_, Infallible>(response)
            }
        });
        let client = Client::new(service, "default");
        let mut keys = Keys::default();
        for (k, c) in test_keys() {
            keys.insert(k.clone(), c.clone(), None, c.not_before());
        }
        let ctx = Context {
            client: client.clone(),
            keys: Arc::new(KeyStore::new(keys)),
            metrics: Arc::new(Metrics::new("test", false)),
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: EVENT_COMPONENT.to_owned(),
                    instance: None,
                },
            ),
            update_status: true,
            accept_v1_data: true,
            created: Default::default(),
            proofs: Default::default(),
        };
        (Arc::new(ctx), sent)
    }

    fn calls(sent: &Mutex<Vec<Sent>>) -> Vec<(String, String)> {
        sent.lock()
            .expect("lock")
            .iter()
            .map(|(m, p, _)| {
                (
                    m.clone(),
                    p.split('?').next().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn body_of(sent: &Mutex<Vec<Sent>>, method: &str, path_prefix: &str) -> serde_json::Value {
        sent.lock()
            .expect("lock")
            .iter()
            .find(|(m, p, _)| m == method && p.starts_with(path_prefix))
            .map(|(_, _, b)| b.clone())
            .unwrap_or_else(|| panic!("no {method} {path_prefix}"))
    }

    #[test]
    fn status_writes_do_not_retrigger_but_spec_and_scope_changes_do() {
        let s = sealed();
        let base = spec_and_scope(&s);
        let mut status_only = s.clone();
        status_only.status = reconcile::synced_status(
            None,
            Some(1),
            Err("x"),
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

    #[tokio::test]
    async fn first_pass_creates_owned_secret_without_reading_it_first_and_reports_synced() {
        let s = sealed();
        let (ctx, sent) = context(Fake {
            existing: None,
            sealed: s.clone(),
        });
        let action = reconcile(Arc::new(s), ctx.clone())
            .await
            .expect("reconciles");
        assert_eq!(action, Action::await_change());
        let methods = calls(&sent);
        // No status yet: the Secret is created straight away, without a GET.
        assert_eq!(
            methods[0],
            (
                "POST".to_owned(),
                "/api/v1/namespaces/app/secrets".to_owned()
            )
        );
        let create_path = sent.lock().expect("lock")[0].1.clone();
        assert!(
            create_path.contains("fieldManager=sealant-controller"),
            "{create_path}"
        );
        let created = body_of(&sent, "POST", "/api/v1/namespaces/app/secrets");
        assert_eq!(created["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(created["data"]["password"], "aHVudGVyMg==");
        assert_eq!(
            created["metadata"]["annotations"],
            serde_json::Value::Null,
            "exactly the template's metadata"
        );
        let status = body_of(
            &sent,
            "PATCH",
            "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
        );
        assert_eq!(status["status"]["conditions"][0]["status"], "True");
        assert_eq!(
            status["status"]["conditions"][1]["type"],
            sealant_crds::proof::CONDITION_IN_SYNC_PROOF
        );
        assert!(
            status["status"]["conditions"][1]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("v1:SHA256:"))
        );
        assert_eq!(status["status"]["observedGeneration"], 1);
        let fingerprint = test_keys()[2].0.fingerprint().as_str();
        assert_eq!(
            status["status"]["keyFingerprints"],
            serde_json::json!([fingerprint])
        );
        let text = ctx.metrics.encode();
        for needle in [
            format!(r#"sealant_controller_key_decryptions_total{{fingerprint="{fingerprint}"}} 1"#),
            format!(r#"sealant_controller_key_sealed_secrets{{fingerprint="{fingerprint}"}} 1"#),
        ] {
            assert!(text.contains(&needle), "missing {needle}\n{text}");
        }
        let event = body_of(
            &sent,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/app/events",
        );
        assert_eq!(event["reason"], "Unsealed");
        assert_eq!(
            (ctx.metrics.decryptions(), ctx.metrics.in_sync_skips()),
            (1, 0)
        );
    }

    /// What the first pass wrote, as the API server would return it: the Secret, the
    /// status, and the context (which remembers the proof it wrote).
    async fn first_pass() -> (Secret, SealedSecretStatus, Arc<Context>) {
        let s = sealed();
        let (ctx, sent) = context(Fake {
            existing: None,
            sealed: s.clone(),
        });
        reconcile(Arc::new(s), ctx.clone())
            .await
            .expect("reconciles");
        let mut secret: Secret =
            serde_json::from_value(body_of(&sent, "POST", "/api/v1/namespaces/app/secrets"))
                .expect("Secret");
        secret.metadata.resource_version = Some("5".to_owned());
        let status = body_of(
            &sent,
            "PATCH",
            "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
        );
        let status = serde_json::from_value(status["status"].clone()).expect("status");
        (secret, status, ctx)
    }

    async fn written_secret() -> Secret {
        first_pass().await.0
    }

    /// Runs one pass over `s` with `existing`, and returns the calls it made and the
    /// (decryptions, in-sync skips) it counted.
    async fn pass(
        s: SealedSecret,
        existing: Secret,
        carry: Option<&Context>,
    ) -> (Vec<(String, String)>, Arc<Mutex<Vec<Sent>>>, (u64, u64)) {
        let (ctx, sent) = context(Fake {
            existing: Some(existing),
            sealed: s.clone(),
        });
        if let Some(from) = carry {
            let proofs = from.proofs.lock().expect("lock").clone();
            ctx.proofs.lock().expect("lock").extend(proofs);
            let created = from.created.lock().expect("lock").clone();
            ctx.created.lock().expect("lock").extend(created);
        }
        reconcile(Arc::new(s), ctx.clone())
            .await
            .expect("reconciles");
        let counts = (ctx.metrics.decryptions(), ctx.metrics.in_sync_skips());
        (calls(&sent), sent, counts)
    }

    #[tokio::test]
    async fn restart_over_in_sync_secret_decrypts_nothing_and_writes_nothing() {
        let (existing, status, _) = first_pass().await;
        let mut s = sealed();
        s.status = Some(status);
        let (calls, _, counts) = pass(s, existing, None).await;
        assert_eq!(
            calls,
            vec![(
                "GET".to_owned(),
                "/api/v1/namespaces/app/secrets/db".to_owned()
            )]
        );
        assert_eq!(counts, (0, 1));
    }

    #[tokio::test]
    async fn restart_without_a_proof_in_the_status_decrypts_once_and_writes_it() {
        let (existing, status, _) = first_pass().await;
        let mut s = sealed();
        // Bitnami's controller wrote this status: Synced only, no proof.
        s.status = Some(SealedSecretStatus {
            conditions: status.conditions.map(|c| c[..1].to_vec()),
            ..SealedSecretStatus::default()
        });
        let (calls, sent, counts) = pass(s, existing, None).await;
        assert_eq!(counts, (1, 0));
        assert!(
            !calls
                .iter()
                .any(|(m, p)| m == "PUT" && p.contains("/secrets")),
            "{calls:?}"
        );
        let patched = body_of(
            &sent,
            "PATCH",
            "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
        );
        assert_eq!(
            patched["status"]["conditions"][1]["type"],
            sealant_crds::proof::CONDITION_IN_SYNC_PROOF
        );
    }

    #[tokio::test]
    async fn pass_triggered_by_its_own_write_proves_with_the_proof_it_just_wrote() {
        // The Secret's creation triggers a second pass, usually before the cache shows
        // the status the first pass wrote: that pass must not decrypt again.
        let (existing, _, ctx) = first_pass().await;
        let (_, _, counts) = pass(sealed(), existing, Some(&ctx)).await;
        assert_eq!(counts, (0, 1));
    }

    #[tokio::test]
    async fn upgrade_from_the_proof_annotation_decrypts_nothing_and_moves_it_to_the_status() {
        let (mut existing, status, _) = first_pass().await;
        let proof = status.in_sync_proof().expect("proof").to_owned();
        existing
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(
                sealant_crds::proof::LEGACY_ANNOTATION.to_owned(),
                proof.clone(),
            );
        let mut s = sealed();
        s.status = Some(SealedSecretStatus {
            conditions: status.conditions.map(|c| c[..1].to_vec()),
            ..status
        });
        let (_, sent, counts) = pass(s, existing, None).await;
        assert_eq!(counts, (0, 1), "the old annotation still proves");
        let put = body_of(&sent, "PUT", "/api/v1/namespaces/app/secrets/db");
        assert_eq!(put["metadata"]["annotations"], serde_json::Value::Null);
        let patched = body_of(
            &sent,
            "PATCH",
            "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
        );
        assert_eq!(patched["status"]["conditions"][1]["message"], proof);
    }

    #[tokio::test]
    async fn hand_edited_secret_is_decrypted_and_repaired_with_optimistic_replace() {
        let mut existing = written_secret().await;
        existing
            .data
            .as_mut()
            .expect("data")
            .insert("password".to_owned(), ByteString(b"edited".to_vec()));
        let s = reported(sealed());
        let (ctx, sent) = context(Fake {
            existing: Some(existing),
            sealed: s.clone(),
        });
        reconcile(Arc::new(s), ctx.clone())
            .await
            .expect("reconciles");
        let put = body_of(&sent, "PUT", "/api/v1/namespaces/app/secrets/db");
        assert_eq!(put["data"]["password"], "aHVudGVyMg==");
        assert_eq!(put["metadata"]["resourceVersion"], "5");
        assert_eq!(
            (ctx.metrics.decryptions(), ctx.metrics.in_sync_skips()),
            (1, 0)
        );
    }

    #[tokio::test]
    async fn foreign_secret_is_not_written_and_the_refusal_is_reported() {
        let s = sealed();
        let (ctx, sent) = context(Fake {
            existing: Some(foreign_secret()),
            sealed: s.clone(),
        });
        let err = reconcile(Arc::new(s), ctx.clone())
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::Unmanaged { .. }), "{err:?}");
        // A new SealedSecret (no status) tries to create its Secret; the API server
        // refuses (it exists), and the Secret is then read and left alone.
        let secret_calls: Vec<_> = calls(&sent)
            .into_iter()
            .filter(|(_, p)| p.contains("/secrets"))
            .collect();
        assert_eq!(
            secret_calls,
            [
                (
                    "POST".to_owned(),
                    "/api/v1/namespaces/app/secrets".to_owned()
                ),
                (
                    "GET".to_owned(),
                    "/api/v1/namespaces/app/secrets/db".to_owned()
                ),
            ]
        );
        let status = body_of(
            &sent,
            "PATCH",
            "/apis/bitnami.com/v1alpha1/namespaces/app/sealedsecrets/db/status",
        );
        assert_eq!(status["status"]["conditions"][0]["status"], "False");
        assert_eq!(
            status["status"]["conditions"][0]["message"],
            r#"Resource "db" already exists and is not managed by SealedSecret"#
        );
        let event = body_of(
            &sent,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/app/events",
        );
        assert_eq!(event["reason"], "ErrUpdateFailed");
        assert_eq!(event["type"], "Warning");
        // The create-first attempt decrypted once before the conflict was known; once
        // the refusal is in the status, retries read first and do no RSA work.
        assert_eq!(ctx.metrics.decryptions(), 1);
        let (ctx, _) = context(Fake {
            existing: Some(foreign_secret()),
            sealed: reported(sealed()),
        });
        reconcile(Arc::new(reported(sealed())), ctx.clone())
            .await
            .expect_err("refused again");
        assert_eq!(
            ctx.metrics.decryptions(),
            0,
            "no RSA work for a Secret in the way"
        );
        assert!(
            ctx.metrics
                .encode()
                .contains(r#"unseal_errors_total{reason="unmanaged",namespace="app"} 1"#)
        );
    }
}
