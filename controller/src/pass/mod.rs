//! One pass over one SealedSecret: the [`Context`] every pass shares, `reconcile` and
//! `error_policy` for kube-runtime's Controller, and the effectful steps around the
//! pure decisions of [`crate::reconcile`] and [`crate::digest`].
//!
//! ```text
//!   reconcile(): fetch Secret ─▶ ownership ─▶ in-sync proof or unseal (blocking pool)
//!                ─▶ decide ─▶ write ─▶ status (with the proof), event, metrics
//! ```
//!
//! Each successful pass knows which keys the values need: the keys that opened them,
//! or, on the zero-decryption path, the keys the in-sync proof in the status names
//! (inside its MAC). That set goes to `status.keyFingerprints` and to the key inventory
//! metrics.
//!
//! Writes: Secrets are created (`POST`) and replaced (`PUT` with the read
//! `resourceVersion`), with the field manager [`FIELD_MANAGER`]. Replace, not
//! server-side apply, because Bitnami's semantics are "the Secret becomes exactly
//! this" (a key someone added by hand is removed), which apply cannot express for
//! fields another manager owns; and the `resourceVersion` makes a concurrent edit fail
//! and retry instead of being overwritten blindly. Status is a merge patch of
//! `status` on the status subresource (RBAC: `sealedsecrets/status` `patch`).
//!
//! Its tests (`tests.rs` beside this file) drive one pass against a scripted API
//! server: the requests sent, their order and bodies (create, zero-decryption restart,
//! repair, refusal).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt as _};
use sealant_crds::{CONDITION_SYNCED, SealedSecret, secret_shell};
use sealant_keys::Fingerprint;
use tracing::{info, instrument, warn};

use crate::chain;
use crate::digest;
use crate::key_secrets::{KeyStore, Keys};
use crate::metrics::{ErrorReason, Metrics};
use crate::own_writes::OwnWrites;
use crate::reconcile::{
    self, FIELD_MANAGER, Ownership, Plan, decide, desired, ownership, unseal_checked,
};
use crate::{Error, ErrorClass};

/// Everything a reconcile pass needs.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) metrics: Arc<Metrics>,
    /// Publishes Warning events, aggregating a repeated one into a series.
    pub(crate) recorder: Recorder,
    /// Who reports events (the Recorder's reporter, for the Normal events [`publish`]
    /// creates itself).
    pub(crate) reporter: Reporter,
    pub(crate) update_status: bool,
    pub(crate) accept_v1_data: bool,
    /// `--accept-template-data`.
    pub(crate) accept_template_data: bool,
    /// SealedSecrets (by uid) whose Secret this process created and whose status it
    /// has not seen back yet: their next pass must not assume the Secret is absent.
    pub(crate) created: std::sync::Mutex<BTreeSet<String>>,
    /// In-sync proofs (by SealedSecret uid) that this process wrote to a status the
    /// cache has not shown yet: the pass that the Secret's own write triggers proves
    /// with it instead of decrypting again. Dropped once the cache shows the status.
    pub(crate) proofs: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The Secrets this process is writing or wrote, until the watch shows their echo
    /// ([`crate::own_writes`]).
    pub(crate) own_writes: OwnWrites,
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

    pub(crate) fn forget(&self, uid: &str) {
        self.proofs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(uid);
    }
}

/// One pass over one SealedSecret, timed for `reconcile_duration_seconds`.
#[instrument(skip(sealed, ctx), fields(object = %sealed.object_ref()))]
pub(crate) async fn reconcile(
    sealed: Arc<SealedSecret>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_once(sealed, ctx.clone()).await;
    ctx.metrics.pass(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_once(sealed: Arc<SealedSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
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
        let failure = outcome
            .as_ref()
            .err()
            .zip(message.as_deref())
            .map(|((_, e), m)| reconcile::Failure::of(e, m));
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
            failure.map_or(Ok(()), Err),
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

pub(crate) fn error_policy(
    _sealed: Arc<SealedSecret>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    match reconcile::retry_after(error) {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    }
}

/// Fetches the Secret, decides, and writes. Returns the plan and the keys the values
/// need; the error carries the metric reason.
async fn sync_secret(sealed: &SealedSecret, ctx: &Context) -> Result<Synced, (ErrorReason, Error)> {
    // A refused template costs no API request and no RSA work.
    reconcile::check_template_data(sealed, ctx.accept_template_data)
        .map_err(|e| (ErrorReason::Unseal, e))?;
    // A SealedSecret no controller has reported on yet (no status) almost never has
    // its Secret: create it straight away, one request fewer per object on a cold
    // sync. If the Secret does exist after all (409), it is read then and its ownership
    // checked before anything else is written, with the values already decrypted.
    // The creation itself triggers another pass (the owned Secret appeared), often
    // before the status written meanwhile reaches the cache: `created` sends that pass
    // down the full path, where the proof this process remembers spares the RSA work.
    let uid = sealed.metadata.uid.clone().unwrap_or_default();
    fn created(ctx: &Context) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        ctx.created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    if sealed.status.is_some() {
        created(ctx).remove(&uid);
    } else if ctx.update_status && !created(ctx).contains(&uid) {
        let done = sync_secret_from(sealed, ctx, Assume::Absent).await;
        if matches!(done, Ok((Plan::Create(_), _, _))) {
            created(ctx).insert(uid);
        }
        return done;
    }
    sync_secret_from(sealed, ctx, Assume::Nothing).await
}

/// What [`sync_secret_from`] may assume about the Secret before reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Assume {
    /// Read it.
    Nothing,
    /// It does not exist: go straight to create. If it does after all (409), read it
    /// then and decide again with the values already decrypted.
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
        Assume::Nothing => fetch(&secrets, &namespace, &name).await?,
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
    let mut plan = decide(sealed, existing.as_ref(), want).map_err(refusal)?;
    let mut written = write(&secrets, &name, &plan, &ctx.own_writes).await;
    if assume == Assume::Absent
        && matches!(&written, Err(kube::Error::Api(status)) if status.code == 409)
    {
        // The Secret exists after all (a controller stopped between writing it and
        // its status, or someone else's Secret is in the way): read it, and decide
        // again with the values this pass already decrypted, not decrypting twice.
        plan = match plan {
            Plan::Create(want) => {
                let existing = fetch(&secrets, &namespace, &name).await?;
                decide(sealed, existing.as_ref(), want).map_err(refusal)?
            }
            other => other,
        };
        written = write(&secrets, &name, &plan, &ctx.own_writes).await;
    }
    written.map_err(|source| {
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

/// Reads the Secret `namespace/name`, if it exists.
async fn fetch(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
) -> Result<Option<Secret>, (ErrorReason, Error)> {
    secrets.get_opt(name).await.map_err(|source| {
        (
            ErrorReason::Fetch,
            Error::Kube {
                action: "read Secret",
                object: format!("{namespace}/{name}"),
                source,
            },
        )
    })
}

/// The metric reason of a plan [`decide`] refused.
fn refusal(e: Error) -> (ErrorReason, Error) {
    let reason = match e {
        Error::Unmanaged { .. } => ErrorReason::Unmanaged,
        _ => ErrorReason::Update,
    };
    (reason, e)
}

/// Carries out `plan` (create, or replace with the read `resourceVersion`), telling
/// `own` about the write from before it is sent until its answer.
async fn write(
    secrets: &Api<Secret>,
    name: &str,
    plan: &Plan,
    own: &OwnWrites,
) -> Result<(), kube::Error> {
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    let (secret, create) = match plan {
        Plan::Unchanged => return Ok(()),
        Plan::Create(secret) => (secret, true),
        Plan::Update(secret) => (secret, false),
    };
    let pending = own.begin(secrets.namespace().unwrap_or_default(), name);
    let written = if create {
        secrets.create(&params, secret).await
    } else {
        secrets.replace(name, &params, secret).await
    };
    pending.finish(written.as_ref().ok());
    written.map(drop)
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
    let published = match event.type_ {
        EventType::Normal => create_event(ctx, &event, reference).await,
        EventType::Warning => ctx.recorder.publish(&event, reference).await,
    };
    if let Err(e) = published {
        warn!(error = %e, "cannot publish event");
    }
}

/// Creates a Normal event as kube's `Recorder` would (the same events.k8s.io/v1 object
/// and name), without its cache. A Normal event (`Unsealed`) is published once per
/// change of an object, so nothing repeats to be aggregated into a series, while the
/// Recorder keeps every event it publishes for six minutes and scans them all on every
/// publish: in a cold sync of 10,000 that cache was 35 MB of the 108 MB peak (heap
/// profile in BENCHMARKS.md).
async fn create_event(
    ctx: &Context,
    ev: &Event,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
) -> Result<(), kube::Error> {
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    let now = k8s_openapi::jiff::Timestamp::now();
    let controller = &ctx.reporter.controller;
    let event = K8sEvent {
        action: Some(ev.action.clone()),
        reason: Some(ev.reason.clone()),
        note: ev.note.clone(),
        event_time: Some(MicroTime(now)),
        regarding: Some(reference.clone()),
        related: ev.secondary.clone(),
        reporting_controller: Some(controller.clone()),
        reporting_instance: Some(
            ctx.reporter
                .instance
                .clone()
                .unwrap_or_else(|| controller.clone()),
        ),
        type_: Some("Normal".to_owned()),
        metadata: kube::api::ObjectMeta {
            namespace: reference.namespace.clone(),
            name: Some(format!(
                "{}.{:x}",
                reference.name.as_deref().unwrap_or(controller),
                now.as_nanosecond()
            )),
            ..Default::default()
        },
        ..Default::default()
    };
    let namespace = reference.namespace.as_deref().unwrap_or("default");
    Api::<K8sEvent>::namespaced(ctx.client.clone(), namespace)
        .create(&PostParams::default(), &event)
        .await
        .map(drop)
}

/// Reports a SealedSecret that cannot be decoded ([`crate::decode`]) on itself: a
/// `Synced=False`, `Ready=False` and `Stalled=True` status (reason
/// [`reconcile::REASON_UNDECODABLE`]) naming the field and an `ErrUnsealFailed` event, once per
/// message (its own status write comes back as a watch event, which must not write
/// again). It never reaches the cache or reconcile; the others go on.
pub(crate) async fn report_unreadable(
    ctx: &Context,
    object: &kube::api::DynamicObject,
    failure: &crate::decode::Bad,
) {
    let message = failure.message();
    let status = object.data.get("status");
    let current = status
        .and_then(|s| s.get("conditions"))
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"))
        .and_then(serde_json::Value::as_str);
    if current == Some(message.as_str()) {
        return;
    }
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    ctx.metrics.unseal_error(ErrorReason::Unseal, &namespace);
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(sealant_crds::API_VERSION.to_owned()),
        kind: Some(sealant_crds::KIND.to_owned()),
        name: Some(name.clone()),
        namespace: Some(namespace.clone()),
        uid: object.metadata.uid.clone(),
        resource_version: object.metadata.resource_version.clone(),
        ..Default::default()
    };
    publish(
        ctx,
        &reference,
        reconcile::EventSpec {
            type_: "Warning",
            reason: reconcile::EVENT_ERR_UNSEAL_FAILED,
            note: format!("Failed to unseal: {message}"),
        },
    )
    .await;
    if !ctx.update_status {
        return;
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let condition = |type_: &str, status: &str, reason: Option<&str>| {
        let mut c = serde_json::json!({
            "type": type_,
            "status": status,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "message": message,
        });
        if let Some(reason) = reason {
            c["reason"] = reason.into();
        }
        c
    };
    let reason = Some(reconcile::REASON_UNDECODABLE);
    let patch = serde_json::json!({ "status": {
        "observedGeneration": object.metadata.generation,
        "conditions": [
            condition(CONDITION_SYNCED, sealant_crds::CONDITION_FALSE, None),
            condition(sealant_crds::CONDITION_READY, sealant_crds::CONDITION_FALSE, reason),
            condition(sealant_crds::CONDITION_STALLED, sealant_crds::CONDITION_TRUE, reason),
        ],
    }});
    // Untyped: the answer is the object itself, which does not decode as a
    // SealedSecret (and the client would log the whole body if asked to).
    let resource = kube::api::ApiResource::erase::<SealedSecret>(&());
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &resource);
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        warn!(object = %failure.object, error = %e, "cannot report an unreadable SealedSecret");
    }
}

#[cfg(test)]
mod tests;
