//! The reconcile decision, as pure functions: what to do with one SealedSecret given
//! the Secret that exists now, and what its status should say. No I/O happens here,
//! so every rule is unit-tested; the controller loop only fetches, calls these, and
//! writes what they return.
//!
//! ```text
//!   SealedSecret + existing Secret?
//!     │ ownership(): Foreign ─────────────────────────────────────▶ Refuse(Unmanaged)   (no RSA work)
//!     │ digest::verify() proves existing data in sync ─▶ reuse it    (no RSA work)
//!     │ otherwise unseal (RSA, off the async runtime)
//!     ▼
//!   desired(): template metadata, type, immutable, ownerReference
//!     ▼
//!   decide(): Create │ Update (only if different) │ Unchanged │ Refuse(Immutable)
//!     ▼
//!   synced_status(): new status (with the in-sync proof), or None when only
//!   timestamps would change
//! ```
//!
//! Guarantees:
//! - a Secret that is not controlled by this SealedSecret and is neither
//!   `sealedsecrets.bitnami.com/managed: "true"` nor `patch: "true"` is never written;
//!   the error text is Bitnami's (`Resource "X" already exists and is not managed by
//!   SealedSecret`);
//! - `patch` merges data, labels and annotations into the existing Secret and keeps
//!   everything else; ownerReferences are replaced only if `managed` is also set;
//! - otherwise data, type, immutability, labels, annotations and ownerReferences are
//!   replaced by the SealedSecret's, as Bitnami does: an adopted `managed` Secret
//!   loses that annotation unless the template has it (so a Secret that should stay
//!   adoptable under `skip-set-owner-references` needs `managed: "true"` in
//!   `spec.template.metadata.annotations`, as with Bitnami);
//! - the Secret carries nothing the template did not ask for: the in-sync proof
//!   lives in the SealedSecret's status (see `sealant_crds::proof`);
//! - an update is planned only when the result differs (an absent and an empty map
//!   are the same);
//! - an immutable Secret whose data, type or immutability would change is refused
//!   with [`Error::Immutable`], which is [`ErrorClass::Terminal`]: no retry until
//!   something changes; a metadata-only change is still applied, as Kubernetes allows;
//! - the status is rewritten only when a condition's status, reason or message,
//!   `observedGeneration`, `keyFingerprints` (which keys opened the values) or the
//!   in-sync proof change: never for timestamps alone, so writing status does not
//!   re-trigger the controller, and a restart over in-sync objects writes nothing.
//!
//! Status, for GitOps tools (see [`synced_status`]):
//!
//! ```text
//!   pass succeeded       Synced=True   Ready=True (Unsealed)
//!   permanent failure    Synced=False  Ready=False (reason)  Stalled=True (reason)
//!   transient failure    Synced=False  Ready=False (reason)  Reconciling=True (reason)
//!   not processed yet    observedGeneration < metadata.generation
//! ```
//!
//! - `Synced` is exactly Bitnami's (no reason; the error as its message), first in the
//!   list, where the printer columns look; Argo CD's health check reads it. `Ready`,
//!   `Stalled` and `Reconciling` are for kstatus (Flux): `Stalled` makes it report
//!   Failed, `Reconciling` InProgress, `Ready=True` Current. Their reasons are the
//!   `REASON_*` constants and their message is `Synced`'s: the error text, which
//!   names objects, fields and keys, never a value (unseal errors are coarse).
//! - `Stalled` and `Reconciling` are present only while `True`.
//! - Work pending is shown by `observedGeneration`, not by writing `Reconciling=True`
//!   when a pass starts: that would be a second status write per object (a cold sync
//!   writes one Secret, one status and one event per object, and no more). The
//!   controller writes status only after a pass, so after a spec edit
//!   `observedGeneration` lags `metadata.generation` until the pass, which kstatus and
//!   Argo CD's health check both read as in progress. A new object has no status until
//!   its first pass: Argo CD's check calls it Progressing (no `observedGeneration`), but
//!   kstatus calls it Current, as it calls any object without a status. That gap lasts
//!   until the first pass; closing it would take that second write, or a schema
//!   default for `status`, which breaks Bitnami's rule that a status means processed
//!   (its integration suite relies on it). `Reconciling=True` comes only with the
//!   result of a pass that failed and is retried soon (no key yet, an API error).
//! - `Ready=True` says the Secret matched at the end of the last pass. A Secret edited
//!   or deleted by hand triggers the pass that repairs it; the status does not change
//!   for it (the repaired Secret is in sync again).
//! - After an upgrade from a version that wrote only `Synced`, each object's status
//!   is written once more, to add `Ready`.
//!
//! Differences from Bitnami, on purpose: the `Unsealed` event is emitted when a
//! Secret is created or updated, not on every pass (a restart over 10,000 objects
//! would otherwise write 10,000 events).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sealant_crds::annotations::{MANAGED, PATCH, is_true};
use sealant_crds::proof::{self, CONDITION_IN_SYNC_PROOF, LEGACY_ANNOTATION};
use sealant_crds::{
    CONDITION_FALSE, CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED, CONDITION_SYNCED,
    CONDITION_TRUE, SealedSecret, SealedSecretCondition, SealedSecretStatus, Unsealed,
    owner_reference, unseal,
};
use sealant_keys::{Fingerprint, KeyRing};

use crate::{Error, ErrorClass};

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "sealant-controller";

/// The component name on events, as Bitnami's.
pub const EVENT_COMPONENT: &str = "sealed-secrets";

/// Event reason: the Secret was created or updated.
pub const EVENT_UNSEALED: &str = "Unsealed";

/// Event reason: the SealedSecret could not be unsealed.
pub const EVENT_ERR_UNSEAL_FAILED: &str = "ErrUnsealFailed";

/// Event reason: the Secret could not be written (or may not be).
pub const EVENT_ERR_UPDATE_FAILED: &str = "ErrUpdateFailed";

/// The message of the `Unsealed` event, as Bitnami's.
pub const UNSEALED_MESSAGE: &str = "SealedSecret unsealed successfully";

/// Condition reason (`Ready=True`): the Secret was produced from the SealedSecret.
pub const REASON_UNSEALED: &str = "Unsealed";
/// Condition reason: no active key can decrypt a value (named in the message).
pub const REASON_DECRYPTION_FAILED: &str = "DecryptionFailed";
/// Condition reason: a `spec.template.data` template failed (or exceeded its budget).
pub const REASON_TEMPLATE_FAILED: &str = "TemplateFailed";
/// Condition reason: `spec.template.data` while `--accept-template-data=false`.
pub const REASON_TEMPLATE_DATA_REFUSED: &str = "TemplateDataRefused";
/// Condition reason: `spec.data` while `--accept-deprecated-v1-data=false`.
pub const REASON_DEPRECATED_DATA_REFUSED: &str = "DeprecatedDataRefused";
/// Condition reason: the spec cannot be unsealed as written (bad base64, both `data`
/// and `encryptedData`, a decrypted `spec.data` that is not a Secret, ...).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Condition reason: a Secret the SealedSecret does not own is in the way.
pub const REASON_UNMANAGED_SECRET: &str = "UnmanagedSecret";
/// Condition reason: the Secret is immutable and would have to change.
pub const REASON_IMMUTABLE_SECRET: &str = "ImmutableSecret";
/// Condition reason: the API server refused the Secret as invalid (400, 422).
pub const REASON_SECRET_REJECTED: &str = "SecretRejected";
/// Condition reason: the SealedSecret cannot be decoded (see [`crate::decode`]).
pub const REASON_UNDECODABLE: &str = "Undecodable";
/// Condition reason (`Reconciling`): no key is loaded yet.
pub const REASON_NO_KEYS: &str = "NoKeys";
/// Condition reason (`Reconciling`): a Kubernetes API call failed; retried soon.
pub const REASON_API_ERROR: &str = "APIError";
/// Condition reason (`Reconciling`): an internal error; retried soon.
pub const REASON_INTERNAL_ERROR: &str = "InternalError";

/// Backoff after a transient error (API unavailable, conflict, timeout).
pub const TRANSIENT_BACKOFF: Duration = Duration::from_secs(5);

/// Backoff after a permanent error (bad ciphertext, bad spec, unmanaged Secret in the
/// way). Long, but not forever: a key that can open it may be added later.
pub const PERMANENT_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// How the existing Secret relates to the SealedSecret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// No Secret with that name exists.
    Absent,
    /// Controlled by this SealedSecret (ownerReference with `controller: true` and
    /// this SealedSecret's uid).
    Owned,
    /// Not owned, but annotated `managed: "true"`: adopted and replaced.
    Managed,
    /// Annotated `patch: "true"`: merged into. `managed` tells whether
    /// ownerReferences are replaced too.
    Patch {
        /// Also annotated `managed: "true"`.
        managed: bool,
    },
    /// Someone else's Secret: never touched.
    Foreign,
}

/// Classifies `existing` with respect to `sealed`. Cheap: call it before decrypting,
/// so a Secret in the way costs no RSA work.
pub fn ownership(sealed: &SealedSecret, existing: Option<&Secret>) -> Ownership {
    let Some(existing) = existing else {
        return Ownership::Absent;
    };
    let managed = is_true(&existing.metadata, MANAGED);
    if is_true(&existing.metadata, PATCH) {
        return Ownership::Patch { managed };
    }
    if is_controlled_by(existing, sealed) {
        return Ownership::Owned;
    }
    if managed {
        return Ownership::Managed;
    }
    Ownership::Foreign
}

fn is_controlled_by(secret: &Secret, sealed: &SealedSecret) -> bool {
    let Some(uid) = sealed.metadata.uid.as_deref().filter(|u| !u.is_empty()) else {
        return false;
    };
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// What to do with the Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Create this Secret.
    Create(Secret),
    /// Replace the existing Secret with this one (it carries the existing
    /// `resourceVersion`, so a concurrent change makes the write fail and retry).
    Update(Secret),
    /// The Secret is already as it should be.
    Unchanged,
}

/// Unseals `sealed` with `ring` (RSA work: call it off the async runtime), refusing
/// the deprecated `spec.data` unless `accept_v1_data` (`--accept-deprecated-v1-data`).
pub fn unseal_checked(
    sealed: &SealedSecret,
    ring: &KeyRing,
    hint: Option<&Fingerprint>,
    accept_v1_data: bool,
) -> Result<Unsealed, Error> {
    if sealed.spec.data.is_some() && !accept_v1_data {
        return Err(Error::DeprecatedDataRefused {
            object: sealed.object_ref(),
        });
    }
    Ok(unseal(sealed, ring, hint)?)
}

/// Refuses a SealedSecret with `spec.template.data` when the controller runs with
/// `--accept-template-data=false`, before the in-sync proof or any decryption: such a
/// cluster never runs a template an author wrote, not even one already unsealed.
pub fn check_template_data(sealed: &SealedSecret, accept: bool) -> Result<(), Error> {
    let has_templates = sealed
        .spec
        .template
        .as_ref()
        .and_then(|t| t.data.as_ref())
        .is_some_and(|d| !d.is_empty());
    if has_templates && !accept {
        return Err(Error::TemplateDataRefused {
            object: sealed.object_ref(),
        });
    }
    Ok(())
}

/// Finishes the Secret that unsealing (or the in-sync proof) produced: adds the
/// ownerReference, unless the template asks for none. Nothing else is added: the
/// Secret carries exactly what the template says, as Bitnami's does.
pub fn desired(sealed: &SealedSecret, mut produced: Secret) -> Secret {
    produced.metadata.owner_references = owner_reference(sealed).map(|r| vec![r]);
    produced
}

/// Decides what to write, given the Secret that should exist (`desired`, from
/// [`desired`]) and the one that does.
pub fn decide(
    sealed: &SealedSecret,
    existing: Option<&Secret>,
    desired: Secret,
) -> Result<Plan, Error> {
    let Some(existing) = existing else {
        return Ok(Plan::Create(desired));
    };
    let next = match ownership(sealed, Some(existing)) {
        Ownership::Absent => return Ok(Plan::Create(desired)),
        Ownership::Foreign => {
            return Err(Error::Unmanaged {
                name: existing.metadata.name.clone().unwrap_or_default(),
            });
        }
        Ownership::Patch { managed } => {
            let mut next = existing.clone();
            merge_map(&mut next.data, desired.data);
            merge_map(&mut next.metadata.labels, desired.metadata.labels);
            merge_map(&mut next.metadata.annotations, desired.metadata.annotations);
            if managed {
                next.metadata.owner_references = desired.metadata.owner_references;
            }
            // sealant 0.1 kept its in-sync proof here; it lives in the status now.
            if let Some(annotations) = next.metadata.annotations.as_mut() {
                annotations.remove(LEGACY_ANNOTATION);
            }
            next
        }
        Ownership::Owned | Ownership::Managed => {
            // As Bitnami: the Secret becomes exactly the template's, so an adopted
            // Secret loses its `managed` annotation (unless the template has it).
            let mut next = existing.clone();
            next.data = desired.data;
            next.type_ = desired.type_;
            next.immutable = desired.immutable;
            next.metadata.labels = desired.metadata.labels;
            next.metadata.annotations = desired.metadata.annotations;
            next.metadata.owner_references = desired.metadata.owner_references;
            next
        }
    };
    if same(existing, &next) {
        return Ok(Plan::Unchanged);
    }
    let payload_changes = !same_map(&existing.data, &next.data)
        || secret_type(existing) != secret_type(&next)
        || existing.immutable.unwrap_or(false) != next.immutable.unwrap_or(false);
    if existing.immutable == Some(true) && payload_changes {
        return Err(Error::Immutable {
            object: sealed.object_ref(),
        });
    }
    Ok(Plan::Update(next))
}

fn merge_map<V>(into: &mut Option<BTreeMap<String, V>>, from: Option<BTreeMap<String, V>>) {
    let Some(from) = from else { return };
    into.get_or_insert_default().extend(from);
}

fn same_map<V: PartialEq>(
    a: &Option<BTreeMap<String, V>>,
    b: &Option<BTreeMap<String, V>>,
) -> bool {
    let empty = BTreeMap::new();
    a.as_ref().unwrap_or(&empty) == b.as_ref().unwrap_or(&empty)
}

/// The Secret's type as the API server stores it: an absent type is defaulted to
/// `Opaque`, so the two must compare equal or every pass would rewrite the Secret.
fn secret_type(secret: &Secret) -> &str {
    secret.type_.as_deref().unwrap_or("Opaque")
}

/// Semantic equality of the fields the controller writes.
fn same(a: &Secret, b: &Secret) -> bool {
    same_map(&a.data, &b.data)
        && secret_type(a) == secret_type(b)
        && a.immutable.unwrap_or(false) == b.immutable.unwrap_or(false)
        && same_map(&a.metadata.labels, &b.metadata.labels)
        && same_map(&a.metadata.annotations, &b.metadata.annotations)
        && a.metadata.owner_references.clone().unwrap_or_default()
            == b.metadata.owner_references.clone().unwrap_or_default()
}

/// What a successful pass learnt about the values: which keys opened them and the
/// proof that the Secret's data is what they produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The fingerprints of the keys that opened the values ([`key_fingerprints`]).
    pub keys: Vec<String>,
    /// The in-sync proof (`None` for objects the fast path does not cover).
    pub proof: Option<String>,
}

/// A failed pass, as the status tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The message of every condition it sets: the error with its causes.
    pub message: &'a str,
    /// One of the `REASON_*` constants.
    pub reason: &'static str,
    /// Permanent (`Stalled=True`); otherwise retried soon (`Reconciling=True`).
    pub stalled: bool,
}

impl<'a> Failure<'a> {
    /// The failure `error` stands for, with `message` (its text with causes).
    pub fn of(error: &Error, message: &'a str) -> Self {
        Self {
            message,
            reason: failure_reason(error),
            stalled: error.class() != ErrorClass::Transient,
        }
    }
}

/// The condition reason for `error`: one of the `REASON_*` constants.
pub fn failure_reason(error: &Error) -> &'static str {
    match error {
        Error::Unseal(sealant_crds::Error::Decrypt { .. }) => REASON_DECRYPTION_FAILED,
        Error::Unseal(sealant_crds::Error::Template { .. }) => REASON_TEMPLATE_FAILED,
        Error::Unseal(_) => REASON_INVALID_SPEC,
        Error::TemplateDataRefused { .. } => REASON_TEMPLATE_DATA_REFUSED,
        Error::DeprecatedDataRefused { .. } => REASON_DEPRECATED_DATA_REFUSED,
        Error::Unmanaged { .. } => REASON_UNMANAGED_SECRET,
        Error::Immutable { .. } => REASON_IMMUTABLE_SECRET,
        Error::NoKeys => REASON_NO_KEYS,
        Error::Kube { .. } if error.class() == ErrorClass::Transient => REASON_API_ERROR,
        Error::Kube { .. } => REASON_SECRET_REJECTED,
        _ => REASON_INTERNAL_ERROR,
    }
}

/// The conditions this controller owns (the in-sync proof aside): every other type
/// someone else wrote is kept as it is.
const OWN_CONDITIONS: [&str; 4] = [
    CONDITION_SYNCED,
    CONDITION_READY,
    CONDITION_STALLED,
    CONDITION_RECONCILING,
];

/// One condition as a pass wants it, timestamps aside.
#[derive(Debug, PartialEq)]
struct Wanted<'a> {
    type_: &'static str,
    status: &'static str,
    reason: Option<&'static str>,
    message: Option<&'a str>,
}

impl Wanted<'_> {
    fn matches(&self, c: &SealedSecretCondition) -> bool {
        c.type_ == self.type_
            && c.status == self.status
            && c.reason.as_deref() == self.reason
            && c.message.as_deref() == self.message
    }
}

/// The conditions after a pass with `outcome` (see the module docs).
fn wanted(outcome: Result<(), Failure<'_>>) -> Vec<Wanted<'_>> {
    let Err(f) = outcome else {
        return vec![
            Wanted {
                type_: CONDITION_SYNCED,
                status: CONDITION_TRUE,
                reason: None,
                message: None,
            },
            Wanted {
                type_: CONDITION_READY,
                status: CONDITION_TRUE,
                reason: Some(REASON_UNSEALED),
                message: None,
            },
        ];
    };
    let because = |type_, status| Wanted {
        type_,
        status,
        reason: Some(f.reason),
        message: Some(f.message),
    };
    vec![
        // Bitnami's: no reason.
        Wanted {
            type_: CONDITION_SYNCED,
            status: CONDITION_FALSE,
            reason: None,
            message: Some(f.message),
        },
        because(CONDITION_READY, CONDITION_FALSE),
        if f.stalled {
            because(CONDITION_STALLED, CONDITION_TRUE)
        } else {
            because(CONDITION_RECONCILING, CONDITION_TRUE)
        },
    ]
}

/// The status after a pass: `Synced`, `Ready`, and `Stalled` or `Reconciling` for a
/// failure (see the module docs), and, after a successful pass, `record`: the keys
/// that opened the values (`keyFingerprints`) and the in-sync proof (a
/// `sealant.dev/InSyncProof` condition). `None` keeps both as they are (a failed pass
/// says nothing new about either).
///
/// Returns `None` when the current status already says the same (each condition's
/// status, reason and message, `observedGeneration`, `keyFingerprints` and the proof),
/// so no write happens for timestamps alone. A condition's `lastTransitionTime`
/// moves only when its status flips.
pub fn synced_status(
    current: Option<&SealedSecretStatus>,
    generation: Option<i64>,
    outcome: Result<(), Failure<'_>>,
    record: Option<Record>,
    now: Time,
) -> Option<SealedSecretStatus> {
    let current_keys = current.and_then(|s| s.key_fingerprints.clone());
    let current_proof = current.and_then(|s| s.in_sync_proof()).map(str::to_owned);
    let (key_fingerprints, proof) = match record {
        Some(r) => ((!r.keys.is_empty()).then_some(r.keys), r.proof),
        None => (current_keys.clone(), current_proof.clone()),
    };
    let current_conditions = current
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let find = |type_: &str| current_conditions.iter().find(|c| c.type_ == type_);
    let wanted = wanted(outcome);
    let own_now = current_conditions
        .iter()
        .filter(|c| OWN_CONDITIONS.contains(&c.type_.as_str()))
        .count();
    let same_conditions = own_now == wanted.len()
        && wanted
            .iter()
            .all(|w| find(w.type_).is_some_and(|c| w.matches(c)));
    if same_conditions
        && current.and_then(|s| s.observed_generation) == generation
        && current_keys == key_fingerprints
        && current_proof == proof
    {
        return None;
    }
    let written = |w: &Wanted<'_>| {
        let last_transition_time = match find(w.type_) {
            Some(p) if p.status == w.status => p.last_transition_time.clone().or(Some(now.clone())),
            _ => Some(now.clone()),
        };
        SealedSecretCondition {
            type_: w.type_.to_owned(),
            status: w.status.to_owned(),
            last_update_time: Some(now.clone()),
            last_transition_time,
            reason: w.reason.map(str::to_owned),
            message: w.message.map(str::to_owned),
        }
    };
    // An unchanged proof keeps its condition (and timestamps) as it is.
    let proof_condition = proof.map(|p| match find(CONDITION_IN_SYNC_PROOF) {
        Some(c) if c.message.as_deref() == Some(p.as_str()) => c.clone(),
        _ => proof::condition(p, now.clone()),
    });
    // Synced first, where the printer columns (`.status.conditions[0]`) look, then the
    // proof, then Ready and Stalled or Reconciling, then any other condition types
    // someone else wrote.
    let (synced, rest) = wanted.split_first()?;
    let mut conditions = vec![written(synced)];
    conditions.extend(proof_condition);
    conditions.extend(rest.iter().map(written));
    conditions.extend(
        current_conditions
            .iter()
            .filter(|c| {
                !OWN_CONDITIONS.contains(&c.type_.as_str()) && c.type_ != CONDITION_IN_SYNC_PROOF
            })
            .cloned(),
    );
    Some(SealedSecretStatus {
        observed_generation: generation,
        conditions: Some(conditions),
        key_fingerprints,
    })
}

/// The `status.keyFingerprints` value for the keys that opened a SealedSecret's
/// values: their fingerprints, sorted (a value opened by a key generation's age
/// identity is already named by that generation's RSA key).
pub fn key_fingerprints(keys: &BTreeSet<Fingerprint>) -> Vec<String> {
    keys.iter().map(|k| k.as_str().to_owned()).collect()
}

/// An event to record on the SealedSecret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// One of the `EVENT_*` reasons.
    pub reason: &'static str,
    /// The text.
    pub note: String,
}

/// The event for a pass that wrote `plan`.
pub fn success_event(plan: &Plan) -> Option<EventSpec> {
    match plan {
        Plan::Create(_) | Plan::Update(_) => Some(EventSpec {
            type_: "Normal",
            reason: EVENT_UNSEALED,
            note: UNSEALED_MESSAGE.to_owned(),
        }),
        Plan::Unchanged => None,
    }
}

/// The Warning event for a failed pass, as Bitnami words it.
pub fn failure_event(error: &Error) -> EventSpec {
    match error {
        Error::Unseal(_)
        | Error::DeprecatedDataRefused { .. }
        | Error::TemplateDataRefused { .. }
        | Error::NoKeys => EventSpec {
            type_: "Warning",
            reason: EVENT_ERR_UNSEAL_FAILED,
            note: format!("Failed to unseal: {error}"),
        },
        _ => EventSpec {
            type_: "Warning",
            reason: EVENT_ERR_UPDATE_FAILED,
            note: error.to_string(),
        },
    }
}

/// How long to wait before the next pass after `error`; `None` means wait for a
/// change to the SealedSecret, its Secret or the keys.
pub fn retry_after(error: &Error) -> Option<Duration> {
    match error.class() {
        ErrorClass::Transient => Some(TRANSIENT_BACKOFF),
        ErrorClass::Permanent => Some(PERMANENT_BACKOFF),
        ErrorClass::Terminal => None,
    }
}

#[cfg(test)]
mod tests;
