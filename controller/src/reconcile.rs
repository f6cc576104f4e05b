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
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use k8s_openapi::jiff::Timestamp;
    use sealant_crds::{SecretTemplateSpec, secret_shell};
    use sealant_keys::OffsetDateTime;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::key_secrets::tests::{sealed_app_db, test_keys};

    const UID: &str = "1111-2222";

    fn sealed_with(template: Option<SecretTemplateSpec>) -> SealedSecret {
        let mut s = sealed_app_db(UID);
        if template.is_some() {
            s.spec.template = template;
        }
        s
    }

    fn sealed() -> SealedSecret {
        sealed_with(None)
    }

    fn data(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, ByteString>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn want(s: &SealedSecret) -> Secret {
        let mut shell = secret_shell(s);
        shell.data = data(&[("password", "hunter2")]);
        desired(s, shell)
    }

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "bitnami.com/v1alpha1".to_owned(),
            kind: "SealedSecret".to_owned(),
            name: "db".to_owned(),
            uid: uid.to_owned(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    fn existing(annotations: &[(&str, &str)], owners: Vec<OwnerReference>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db".to_owned()),
                namespace: Some("app".to_owned()),
                resource_version: Some("42".to_owned()),
                annotations: labels(annotations),
                labels: labels(&[("hand", "made")]),
                owner_references: (!owners.is_empty()).then_some(owners),
                ..ObjectMeta::default()
            },
            data: data(&[("password", "old"), ("extra", "kept?")]),
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        }
    }

    #[test]
    fn missing_secret_is_created_with_owner_reference() {
        let s = sealed();
        let plan = decide(&s, None, want(&s)).expect("plan");
        let Plan::Create(secret) = plan else {
            panic!("expected Create, got {plan:?}")
        };
        assert_eq!(secret.metadata.owner_references, Some(vec![owner(UID)]));
        assert_eq!(secret.data, data(&[("password", "hunter2")]));
        assert_eq!(secret.metadata.name.as_deref(), Some("db"));
    }

    #[test]
    fn skip_set_owner_references_creates_without_owner() {
        let s = sealed_with(Some(SecretTemplateSpec {
            metadata: Some(ObjectMeta {
                annotations: labels(&[(
                    sealant_crds::annotations::SKIP_SET_OWNER_REFERENCES,
                    "true",
                )]),
                ..ObjectMeta::default()
            }),
            ..SecretTemplateSpec::default()
        }));
        let Ok(Plan::Create(secret)) = decide(&s, None, want(&s)) else {
            panic!("expected Create")
        };
        assert_eq!(secret.metadata.owner_references, None);
    }

    #[test]
    fn unowned_unannotated_secret_is_refused_with_bitnami_text() {
        let s = sealed();
        let e = existing(&[], vec![]);
        assert_eq!(ownership(&s, Some(&e)), Ownership::Foreign);
        let err = decide(&s, Some(&e), want(&s)).expect_err("refused");
        assert_eq!(
            err.to_string(),
            r#"Resource "db" already exists and is not managed by SealedSecret"#
        );
        assert_eq!(err.class(), ErrorClass::Permanent);
        let ev = failure_event(&err);
        assert_eq!((ev.type_, ev.reason), ("Warning", EVENT_ERR_UPDATE_FAILED));
    }

    #[test]
    fn secret_owned_by_another_sealed_secret_uid_is_foreign() {
        let s = sealed();
        let e = existing(&[], vec![owner("other-uid")]);
        assert_eq!(ownership(&s, Some(&e)), Ownership::Foreign);
        let mut not_controller = owner(UID);
        not_controller.controller = None;
        assert_eq!(
            ownership(&s, Some(&existing(&[], vec![not_controller]))),
            Ownership::Foreign
        );
    }

    #[test]
    fn owned_secret_is_replaced_entirely() {
        let s = sealed();
        let e = existing(&[("note", "x")], vec![owner(UID)]);
        let Ok(Plan::Update(next)) = decide(&s, Some(&e), want(&s)) else {
            panic!("expected Update")
        };
        assert_eq!(
            next.data,
            data(&[("password", "hunter2")]),
            "extra key removed, value repaired"
        );
        assert_eq!(
            next.metadata.labels, None,
            "labels replaced by the template's (none)"
        );
        assert_eq!(next.metadata.annotations, None, "annotations too");
        assert_eq!(next.type_, None);
        assert_eq!(
            next.metadata.resource_version.as_deref(),
            Some("42"),
            "optimistic concurrency"
        );
    }

    #[test]
    fn managed_secret_is_adopted_with_exactly_the_template_annotations() {
        let s = sealed();
        let e = existing(&[(MANAGED, "true"), ("note", "x")], vec![]);
        assert_eq!(ownership(&s, Some(&e)), Ownership::Managed);
        let Ok(Plan::Update(next)) = decide(&s, Some(&e), want(&s)) else {
            panic!("expected Update")
        };
        assert_eq!(next.metadata.owner_references, Some(vec![owner(UID)]));
        assert_eq!(
            next.metadata.annotations, None,
            "as Bitnami: managed goes too"
        );
        assert_eq!(next.data, data(&[("password", "hunter2")]));
    }

    #[test]
    fn patch_merges_data_labels_and_annotations_and_keeps_owner_references() {
        let s = sealed_with(Some(SecretTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: labels(&[("from", "template")]),
                annotations: labels(&[("a", "1")]),
                ..ObjectMeta::default()
            }),
            ..SecretTemplateSpec::default()
        }));
        let foreign_owner = owner("deployment-uid");
        let e = existing(&[(PATCH, "true")], vec![foreign_owner.clone()]);
        assert_eq!(ownership(&s, Some(&e)), Ownership::Patch { managed: false });
        let Ok(Plan::Update(next)) = decide(&s, Some(&e), want(&s)) else {
            panic!("expected Update")
        };
        assert_eq!(
            next.data,
            data(&[("password", "hunter2"), ("extra", "kept?")])
        );
        assert_eq!(
            next.metadata.labels,
            labels(&[("hand", "made"), ("from", "template")])
        );
        assert_eq!(
            next.metadata.annotations,
            labels(&[(PATCH, "true"), ("a", "1")])
        );
        assert_eq!(
            next.metadata.owner_references,
            Some(vec![foreign_owner]),
            "not managed: ownerRefs kept"
        );
        assert_eq!(
            next.type_.as_deref(),
            Some("Opaque"),
            "patch leaves the type alone"
        );
    }

    #[test]
    fn patch_with_managed_replaces_owner_references() {
        let s = sealed();
        let e = existing(
            &[(PATCH, "true"), (MANAGED, "true")],
            vec![owner("deployment-uid")],
        );
        assert_eq!(ownership(&s, Some(&e)), Ownership::Patch { managed: true });
        let Ok(Plan::Update(next)) = decide(&s, Some(&e), want(&s)) else {
            panic!("expected Update")
        };
        assert_eq!(next.metadata.owner_references, Some(vec![owner(UID)]));
    }

    #[test]
    fn secret_already_as_desired_is_unchanged() {
        let s = sealed();
        let mut e = want(&s);
        e.metadata.resource_version = Some("7".to_owned());
        e.metadata.uid = Some("secret-uid".to_owned());
        // An empty map and an absent one are the same.
        e.metadata.labels = Some(BTreeMap::new());
        assert_eq!(
            decide(&s, Some(&e), want(&s)).expect("plan"),
            Plan::Unchanged
        );
        let e2 = existing(&[(PATCH, "true")], vec![]);
        let Ok(Plan::Update(merged)) = decide(&s, Some(&e2), want(&s)) else {
            panic!("expected Update")
        };
        assert_eq!(
            decide(&s, Some(&merged), want(&s)).expect("plan"),
            Plan::Unchanged,
            "patch converges"
        );
    }

    #[test]
    fn server_defaulted_opaque_type_is_not_a_difference() {
        let s = sealed();
        let mut e = want(&s);
        assert_eq!(e.type_, None);
        e.type_ = Some("Opaque".to_owned());
        assert_eq!(
            decide(&s, Some(&e), want(&s)).expect("plan"),
            Plan::Unchanged
        );
        e.immutable = Some(true);
        let mut w = want(&s);
        w.immutable = Some(true);
        assert_eq!(
            decide(&s, Some(&e), w).expect("plan"),
            Plan::Unchanged,
            "not an immutability violation either"
        );
    }

    #[test]
    fn immutable_secret_whose_data_would_change_is_refused_terminally() {
        let s = sealed();
        let mut e = want(&s);
        e.immutable = Some(true);
        e.data = data(&[("password", "old")]);
        let err = decide(&s, Some(&e), want(&s)).expect_err("refused");
        assert!(matches!(err, Error::Immutable { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("Error updating app/db: the target Secret is immutable"),
            "{err}"
        );
        assert_eq!(retry_after(&err), None, "stop retrying");
    }

    #[test]
    fn immutable_secret_accepts_a_metadata_only_change() {
        let s = sealed_with(Some(SecretTemplateSpec {
            immutable: Some(true),
            metadata: Some(ObjectMeta {
                labels: labels(&[("new", "label")]),
                ..ObjectMeta::default()
            }),
            ..SecretTemplateSpec::default()
        }));
        let mut e = want(&s);
        e.metadata.labels = None;
        let Ok(Plan::Update(next)) = decide(&s, Some(&e), want(&s)) else {
            panic!("expected Update")
        };
        assert_eq!(next.metadata.labels, labels(&[("new", "label")]));
    }

    #[test]
    fn template_type_and_immutable_are_applied_on_create() {
        let s = sealed_with(Some(SecretTemplateSpec {
            type_: Some("kubernetes.io/basic-auth".to_owned()),
            immutable: Some(true),
            ..SecretTemplateSpec::default()
        }));
        let Ok(Plan::Create(c)) = decide(&s, None, want(&s)) else {
            panic!("expected Create")
        };
        assert_eq!(c.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(c.immutable, Some(true));
    }

    #[test]
    fn shell_plus_data_equals_what_unsealing_produces() {
        let mut ring = KeyRing::new();
        ring.insert(test_keys()[2].0.clone(), OffsetDateTime::now_utc());
        let templates = [
            None,
            Some(SecretTemplateSpec {
                metadata: Some(ObjectMeta {
                    name: Some("ignored".to_owned()),
                    namespace: Some("ignored".to_owned()),
                    uid: Some("server-set".to_owned()),
                    resource_version: Some("1".to_owned()),
                    labels: labels(&[("l", "v")]),
                    annotations: labels(&[("a", "b")]),
                    ..ObjectMeta::default()
                }),
                type_: Some("Opaque".to_owned()),
                immutable: Some(false),
                data: None,
            }),
        ];
        for template in templates {
            let s = sealed_with(template);
            let from_unseal = unseal(&s, &ring, None).expect("unseals").into_secret();
            let mut from_shell = secret_shell(&s);
            from_shell.data = from_unseal.data.clone();
            assert_eq!(from_shell, from_unseal);
        }
    }

    #[test]
    fn secret_carries_exactly_the_template_and_loses_the_legacy_proof_annotation_once() {
        let s = sealed();
        let w = want(&s);
        assert_eq!(w.metadata.annotations, None, "nothing the template lacks");
        // A Secret written by sealant 0.1 (proof annotation) is updated once to drop it
        // ...
        let mut old = w.clone();
        old.metadata
            .annotations
            .get_or_insert_default()
            .insert(LEGACY_ANNOTATION.to_owned(), "v1:SHA256:k:M".to_owned());
        let Ok(Plan::Update(updated)) = decide(&s, Some(&old), w.clone()) else {
            panic!("expected Update")
        };
        assert_eq!(updated.metadata.annotations, None);
        // ... and is then in sync.
        assert_eq!(
            decide(&s, Some(&updated), w.clone()).expect("plan"),
            Plan::Unchanged
        );
        // In patch mode too, where other annotations are kept.
        let mut patched = existing(&[(PATCH, "true"), (LEGACY_ANNOTATION, "v1:x:y")], vec![]);
        patched.data = data(&[("password", "hunter2")]);
        let Ok(Plan::Update(next)) = decide(&s, Some(&patched), w) else {
            panic!("expected Update")
        };
        assert_eq!(next.metadata.annotations, labels(&[(PATCH, "true")]));
    }

    #[test]
    fn immutable_refusal_uses_bitnamis_words() {
        let err = Error::Immutable {
            object: "app/db".to_owned(),
        };
        let ev = failure_event(&err);
        assert_eq!(ev.reason, EVENT_ERR_UPDATE_FAILED);
        assert!(
            ev.note
                .starts_with("Error updating app/db: the target Secret is immutable."),
            "{}",
            ev.note
        );
    }

    fn now(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("valid"))
    }

    /// A permanent failure with `message`.
    fn bad(message: &str) -> Failure<'_> {
        Failure {
            message,
            reason: REASON_DECRYPTION_FAILED,
            stalled: true,
        }
    }

    /// The conditions of `status` as (type, status, reason, message).
    fn summary(status: &SealedSecretStatus) -> Vec<(&str, &str, Option<&str>, Option<&str>)> {
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_deref(),
                    c.message.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn first_status_sets_synced_true_and_observed_generation() {
        let st = synced_status(None, Some(3), Ok(()), None, now(100)).expect("written");
        assert_eq!(st.observed_generation, Some(3));
        let c = &st.conditions.expect("conditions")[0];
        assert_eq!((c.type_.as_str(), c.status.as_str()), ("Synced", "True"));
        assert_eq!(c.last_transition_time, Some(now(100)));
        assert_eq!(c.message, None);
    }

    #[test]
    fn status_write_is_skipped_when_only_timestamps_would_change() {
        let st = synced_status(None, Some(3), Ok(()), None, now(100)).expect("written");
        assert_eq!(
            synced_status(Some(&st), Some(3), Ok(()), None, now(200)),
            None
        );
        let failed =
            synced_status(None, Some(3), Err(bad("bad")), None, now(100)).expect("written");
        assert_eq!(
            synced_status(Some(&failed), Some(3), Err(bad("bad")), None, now(200)),
            None
        );
    }

    #[test]
    fn new_generation_or_new_message_rewrites_status_keeping_transition_time() {
        let st = synced_status(None, Some(3), Err(bad("bad")), None, now(100)).expect("written");
        let next = synced_status(Some(&st), Some(4), Err(bad("bad")), None, now(200))
            .expect("generation moved");
        assert_eq!(next.observed_generation, Some(4));
        let c = &next.conditions.as_ref().expect("c")[0];
        assert_eq!(
            c.last_transition_time,
            Some(now(100)),
            "status did not flip"
        );
        assert_eq!(c.last_update_time, Some(now(200)));
        let other = synced_status(Some(&next), Some(4), Err(bad("worse")), None, now(300))
            .expect("message moved");
        assert_eq!(
            other.conditions.as_ref().expect("c")[0].message.as_deref(),
            Some("worse")
        );
    }

    #[test]
    fn flipping_to_true_moves_transition_time_and_clears_message() {
        let st = synced_status(None, Some(1), Err(bad("bad")), None, now(100)).expect("written");
        let ok = synced_status(Some(&st), Some(1), Ok(()), None, now(200)).expect("flipped");
        let c = &ok.conditions.expect("c")[0];
        assert_eq!(c.status, "True");
        assert_eq!(c.message, None);
        assert_eq!(c.last_transition_time, Some(now(200)));
    }

    #[test]
    fn other_condition_types_are_kept_after_synced() {
        let foreign = SealedSecretCondition {
            type_: "Other".to_owned(),
            status: "True".to_owned(),
            ..Default::default()
        };
        let st = SealedSecretStatus {
            observed_generation: None,
            conditions: Some(vec![foreign.clone()]),
            key_fingerprints: None,
        };
        let next = synced_status(Some(&st), Some(1), Ok(()), None, now(1)).expect("written");
        let conditions = next.conditions.expect("c");
        assert_eq!(conditions[0].type_, "Synced");
        assert_eq!(conditions.last(), Some(&foreign), "kept, after ours");
        assert_eq!(conditions.len(), 3, "Synced, Ready, Other");
    }

    #[test]
    fn unseal_failures_are_permanent_with_unseal_event() {
        let s = {
            let mut s = sealed();
            s.spec
                .encrypted_data
                .insert("password".to_owned(), "not base64!".to_owned());
            s
        };
        let err: Error = unseal(&s, &KeyRing::new(), None).expect_err("fails").into();
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert_eq!(retry_after(&err), Some(PERMANENT_BACKOFF));
        let ev = failure_event(&err);
        assert_eq!(ev.reason, EVENT_ERR_UNSEAL_FAILED);
        assert!(ev.note.starts_with("Failed to unseal: "), "{}", ev.note);
        assert!(
            ev.note.contains("spec.encryptedData.password"),
            "{}",
            ev.note
        );
    }

    #[test]
    fn api_errors_are_transient_except_invalid_objects() {
        let api = |code: u16| Error::Kube {
            action: "update Secret",
            object: "app/db".to_owned(),
            source: kube::Error::Api(
                kube::core::Status::failure("boom", "Reason")
                    .with_code(code)
                    .boxed(),
            ),
        };
        assert_eq!(api(500).class(), ErrorClass::Transient);
        assert_eq!(api(409).class(), ErrorClass::Transient);
        assert_eq!(retry_after(&api(503)), Some(TRANSIENT_BACKOFF));
        assert_eq!(api(422).class(), ErrorClass::Permanent);
    }

    #[test]
    fn template_data_is_refused_permanently_when_not_accepted() {
        let mut s = sealed();
        assert!(check_template_data(&s, false).is_ok(), "no templates: fine");
        s.spec.template.get_or_insert_default().data =
            Some([("dsn".to_owned(), "{{ .password }}".to_owned())].into());
        assert!(check_template_data(&s, true).is_ok());
        let err = check_template_data(&s, false).expect_err("refused");
        assert!(matches!(err, Error::TemplateDataRefused { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(err.to_string().contains("app/db"), "{err}");
        assert_eq!(failure_event(&err).reason, EVENT_ERR_UNSEAL_FAILED);
    }

    #[test]
    fn deprecated_spec_data_is_refused_when_not_accepted() {
        let mut s = sealed();
        s.spec.encrypted_data.clear();
        s.spec.data = Some("AAAA".to_owned());
        let err = unseal_checked(&s, &KeyRing::new(), None, false).expect_err("refused");
        assert!(
            matches!(err, Error::DeprecatedDataRefused { .. }),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Permanent);
        let accepted = unseal_checked(&s, &KeyRing::new(), None, true).expect_err("no key");
        assert!(matches!(accepted, Error::Unseal(_)), "{accepted:?}");
    }

    #[test]
    fn events_only_for_writes() {
        let s = sealed();
        assert_eq!(success_event(&Plan::Unchanged), None);
        let ev = success_event(&Plan::Create(want(&s))).expect("event");
        assert_eq!(
            (ev.type_, ev.reason, ev.note.as_str()),
            ("Normal", "Unsealed", UNSEALED_MESSAGE)
        );
    }

    fn record(keys: &[&str], proof: Option<&str>) -> Option<Record> {
        Some(Record {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            proof: proof.map(str::to_owned),
        })
    }

    #[test]
    fn key_fingerprints_are_recorded_on_success_kept_on_failure_and_rewritten_on_change() {
        let a = vec!["SHA256:a".to_owned()];
        let ab = vec!["SHA256:a".to_owned(), "SHA256:b".to_owned()];
        let st = synced_status(None, Some(1), Ok(()), record(&["SHA256:a"], None), now(100))
            .expect("first");
        assert_eq!(st.key_fingerprints, Some(a.clone()));
        assert_eq!(
            synced_status(
                Some(&st),
                Some(1),
                Ok(()),
                record(&["SHA256:a"], None),
                now(200)
            ),
            None,
            "same keys: no write"
        );
        let changed = synced_status(
            Some(&st),
            Some(1),
            Ok(()),
            record(&["SHA256:a", "SHA256:b"], None),
            now(200),
        )
        .expect("moved");
        assert_eq!(changed.key_fingerprints, Some(ab.clone()));
        let failed = synced_status(Some(&changed), Some(1), Err(bad("bad")), None, now(300))
            .expect("failed");
        assert_eq!(
            failed.key_fingerprints,
            Some(ab),
            "a failure keeps the last keys"
        );
        let none = synced_status(Some(&st), Some(1), Ok(()), record(&[], None), now(400))
            .expect("no sealed values");
        assert_eq!(none.key_fingerprints, None);
        let json = serde_json::to_value(&st).expect("json");
        assert_eq!(json["keyFingerprints"], serde_json::json!(["SHA256:a"]));
        let keys = BTreeSet::from([
            Fingerprint::from_string("SHA256:b".to_owned()),
            Fingerprint::from_string("SHA256:a".to_owned()),
        ]);
        assert_eq!(key_fingerprints(&keys), vec!["SHA256:a", "SHA256:b"]);
    }

    #[test]
    fn proof_is_a_second_condition_kept_on_failure_and_rewritten_only_when_it_changes() {
        let p1 = "v1:SHA256:a:MAC1";
        let st = synced_status(
            None,
            Some(1),
            Ok(()),
            record(&["SHA256:a"], Some(p1)),
            now(100),
        )
        .expect("first");
        let conditions = st.conditions.clone().expect("c");
        assert_eq!(conditions[0].type_, CONDITION_SYNCED, "Synced stays first");
        assert_eq!(conditions[1].type_, CONDITION_IN_SYNC_PROOF);
        assert_eq!(conditions[1].message.as_deref(), Some(p1));
        assert_eq!(st.in_sync_proof(), Some(p1));
        assert_eq!(
            synced_status(
                Some(&st),
                Some(1),
                Ok(()),
                record(&["SHA256:a"], Some(p1)),
                now(200)
            ),
            None,
            "same proof: no write"
        );
        let failed =
            synced_status(Some(&st), Some(1), Err(bad("bad")), None, now(300)).expect("failed");
        assert_eq!(
            failed.in_sync_proof(),
            Some(p1),
            "a failure keeps the proof"
        );
        assert_eq!(
            failed.conditions.as_ref().expect("c")[1],
            conditions[1],
            "untouched, timestamps included"
        );
        let p2 = "v1:SHA256:a:MAC2";
        let moved = synced_status(
            Some(&failed),
            Some(1),
            Ok(()),
            record(&["SHA256:a"], Some(p2)),
            now(400),
        )
        .expect("new proof");
        assert_eq!(moved.in_sync_proof(), Some(p2));
        let proofs = moved
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.type_ == CONDITION_IN_SYNC_PROOF)
            .count();
        assert_eq!(proofs, 1, "one proof");
        assert_eq!(
            moved.conditions.as_ref().expect("c").len(),
            3,
            "Synced, proof, Ready"
        );
        let dropped = synced_status(
            Some(&moved),
            Some(1),
            Ok(()),
            record(&["SHA256:a"], None),
            now(500),
        )
        .expect("proof dropped");
        assert_eq!(dropped.in_sync_proof(), None);
    }

    #[test]
    fn success_is_synced_and_ready_with_no_stalled_or_reconciling() {
        let st = synced_status(None, Some(2), Ok(()), None, now(100)).expect("written");
        assert_eq!(
            summary(&st),
            [
                ("Synced", "True", None, None),
                ("Ready", "True", Some(REASON_UNSEALED), None),
            ]
        );
        assert_eq!(st.observed_generation, Some(2));
    }

    #[test]
    fn permanent_failure_is_stalled_with_synceds_message_and_bitnamis_synced() {
        let message = "unable to decrypt sealed secret app/db: no key could decrypt secret \
                       (spec.encryptedData.password)";
        let err = Error::Unseal(sealant_crds::Error::Decrypt {
            object: "app/db".to_owned(),
            fields: vec!["spec.encryptedData.password".to_owned()],
        });
        let failure = Failure::of(&err, message);
        assert_eq!(
            failure,
            Failure {
                message,
                reason: REASON_DECRYPTION_FAILED,
                stalled: true
            }
        );
        let st = synced_status(None, Some(1), Err(failure), None, now(100)).expect("written");
        assert_eq!(
            summary(&st),
            [
                ("Synced", "False", None, Some(message)),
                (
                    "Ready",
                    "False",
                    Some(REASON_DECRYPTION_FAILED),
                    Some(message)
                ),
                (
                    "Stalled",
                    "True",
                    Some(REASON_DECRYPTION_FAILED),
                    Some(message)
                ),
            ]
        );
    }

    #[test]
    fn transient_failure_is_reconciling_not_stalled() {
        let err = Error::NoKeys;
        let message = err.to_string();
        let failure = Failure::of(&err, &message);
        assert!(!failure.stalled);
        let st = synced_status(None, Some(1), Err(failure), None, now(100)).expect("written");
        let types: Vec<_> = summary(&st).into_iter().map(|c| (c.0, c.1, c.2)).collect();
        assert_eq!(
            types,
            [
                ("Synced", "False", None),
                ("Ready", "False", Some(REASON_NO_KEYS)),
                ("Reconciling", "True", Some(REASON_NO_KEYS)),
            ]
        );
    }

    #[test]
    fn recovery_drops_stalled_and_flips_ready_and_synced() {
        let failed = synced_status(None, Some(1), Err(bad("bad")), None, now(100)).expect("w");
        let ok = synced_status(Some(&failed), Some(1), Ok(()), None, now(200)).expect("w");
        assert_eq!(
            summary(&ok),
            [
                ("Synced", "True", None, None),
                ("Ready", "True", Some(REASON_UNSEALED), None),
            ]
        );
        let ready = &ok.conditions.as_ref().expect("c")[1];
        assert_eq!(ready.last_transition_time, Some(now(200)), "flipped");
        // A stall that turns into a retry replaces Stalled with Reconciling.
        let retry = Failure {
            message: "bad",
            reason: REASON_API_ERROR,
            stalled: false,
        };
        let retrying =
            synced_status(Some(&failed), Some(1), Err(retry), None, now(300)).expect("w");
        let types: Vec<_> = summary(&retrying).into_iter().map(|c| c.0).collect();
        assert_eq!(types, ["Synced", "Ready", "Reconciling"]);
        let ready = &retrying.conditions.as_ref().expect("c")[1];
        assert_eq!(ready.last_transition_time, Some(now(100)), "still False");
    }

    #[test]
    fn a_new_reason_or_a_missing_ready_rewrites_status_but_nothing_else_does() {
        let failed = synced_status(None, Some(1), Err(bad("bad")), None, now(100)).expect("w");
        let other_reason = Failure {
            reason: REASON_TEMPLATE_FAILED,
            ..bad("bad")
        };
        let moved =
            synced_status(Some(&failed), Some(1), Err(other_reason), None, now(200)).expect("w");
        assert_eq!(
            moved.conditions.as_ref().expect("c")[2].reason.as_deref(),
            Some(REASON_TEMPLATE_FAILED)
        );
        assert_eq!(
            synced_status(Some(&moved), Some(1), Err(other_reason), None, now(300)),
            None
        );
        // A status written before Ready existed (Synced only) is completed once.
        let ok = synced_status(None, Some(1), Ok(()), None, now(100)).expect("w");
        let old = SealedSecretStatus {
            conditions: ok.conditions.as_ref().map(|c| c[..1].to_vec()),
            ..ok.clone()
        };
        let completed = synced_status(Some(&old), Some(1), Ok(()), None, now(200)).expect("w");
        assert_eq!(summary(&completed), summary(&ok));
        assert_eq!(
            synced_status(Some(&completed), Some(1), Ok(()), None, now(300)),
            None
        );
    }

    #[test]
    fn unseal_failures_are_told_apart_by_reason() {
        let mut ring = KeyRing::new();
        ring.insert(test_keys()[2].0.clone(), OffsetDateTime::now_utc());
        let no_key: Error = unseal(&sealed(), &KeyRing::new(), None)
            .expect_err("no key")
            .into();
        assert_eq!(failure_reason(&no_key), REASON_DECRYPTION_FAILED);
        let mut s = sealed();
        s.spec.template.get_or_insert_default().data =
            Some([("dsn".to_owned(), "{{ nosuchfunction }}".to_owned())].into());
        let template: Error = unseal(&s, &ring, None).expect_err("template").into();
        assert!(
            matches!(
                template,
                Error::Unseal(sealant_crds::Error::Template { .. })
            ),
            "{template:?}"
        );
        assert_eq!(failure_reason(&template), REASON_TEMPLATE_FAILED);
        assert!(Failure::of(&template, "m").stalled);
    }

    #[test]
    fn failure_reasons_name_the_cause_and_only_transient_errors_reconcile() {
        let template = Error::Unseal(sealant_crds::Error::BothDataAndEncryptedData {
            object: "app/db".to_owned(),
        });
        assert_eq!(failure_reason(&template), REASON_INVALID_SPEC);
        let unmanaged = Error::Unmanaged {
            name: "db".to_owned(),
        };
        assert_eq!(failure_reason(&unmanaged), REASON_UNMANAGED_SECRET);
        assert!(Failure::of(&unmanaged, "m").stalled);
        let immutable = Error::Immutable {
            object: "app/db".to_owned(),
        };
        assert_eq!(failure_reason(&immutable), REASON_IMMUTABLE_SECRET);
        assert!(Failure::of(&immutable, "m").stalled);
        let refused = Error::TemplateDataRefused {
            object: "app/db".to_owned(),
        };
        assert_eq!(failure_reason(&refused), REASON_TEMPLATE_DATA_REFUSED);
        let api = |code: u16| Error::Kube {
            action: "write Secret",
            object: "app/db".to_owned(),
            source: kube::Error::Api(
                kube::core::Status::failure("boom", "Reason")
                    .with_code(code)
                    .boxed(),
            ),
        };
        assert_eq!(failure_reason(&api(503)), REASON_API_ERROR);
        assert!(!Failure::of(&api(503), "m").stalled);
        assert_eq!(failure_reason(&api(422)), REASON_SECRET_REJECTED);
        assert!(Failure::of(&api(422), "m").stalled);
    }
}
