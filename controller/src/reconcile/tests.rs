//! Unit tests of the reconcile decisions: plans, status and its conditions, write
//! skipping.

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
            annotations: labels(&[(sealant_crds::annotations::SKIP_SET_OWNER_REFERENCES, "true")]),
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
    let failed = synced_status(None, Some(3), Err(bad("bad")), None, now(100)).expect("written");
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
    let st =
        synced_status(None, Some(1), Ok(()), record(&["SHA256:a"], None), now(100)).expect("first");
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
    let failed =
        synced_status(Some(&changed), Some(1), Err(bad("bad")), None, now(300)).expect("failed");
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
    let retrying = synced_status(Some(&failed), Some(1), Err(retry), None, now(300)).expect("w");
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
