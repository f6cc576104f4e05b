//! SealedSecrets decoded one at a time, so one malformed object never stops the others.
//!
//! The API server stores whatever passes the CRD's schema, and `spec.template.metadata`
//! keeps unknown fields (as Bitnami's CRD does), so an object such as
//! `spec.template.metadata.creationTimestamp: garbage` is accepted. A typed watch
//! decodes a whole LIST response at once: one such object fails the list, the watch
//! retries the same list forever, and no SealedSecret in any namespace is unsealed
//! (Bitnami's controller fails the same way). Any tenant who can create a SealedSecret
//! could stop the cluster's secret delivery.
//!
//! So the controller watches SealedSecrets untyped ([`DynamicObject`]: only the
//! top-level metadata, which the API server itself validates, is typed) and decodes
//! each object here, on its own:
//!
//! ```text
//!   watch (DynamicObject) ──▶ typed() ──▶ Event<SealedSecret> ──▶ cache ──▶ reconcile
//!                                └─ decode fails ─▶ Bad { object, field, reason } ─▶ reported on that object
//! ```
//!
//! A bad object never enters the cache. It is reported on itself (a `Synced=False`
//! status naming the field, an `ErrUnsealFailed` event, a log line with its name and
//! the field, never its body) by the caller, and the watch goes on with the others.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use sealant_crds::{SealedSecret, SealedSecretSpec, SealedSecretStatus, SecretTemplateSpec};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A SealedSecret that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    /// `namespace/name`.
    pub object: String,
    /// The innermost part that does not decode, for example `spec.template.metadata`.
    pub field: &'static str,
    /// Why, in the decoder's words (it quotes at most one scalar of that part, and no
    /// part of a SealedSecret but its ciphertexts is secret; a ciphertext is safe).
    pub reason: String,
}

impl Bad {
    /// The message for the status and the event.
    pub fn message(&self) -> String {
        format!(
            "sealed secret {} cannot be read: {} does not match the SealedSecret schema ({}); fix the object",
            self.object, self.field, self.reason
        )
    }
}

/// Decodes one object. On failure, names the innermost part that does not decode.
pub fn decode(object: &DynamicObject) -> Result<SealedSecret, Bad> {
    let value = serde_json::to_value(object).map_err(|e| Bad {
        object: object_ref(object),
        field: "metadata",
        reason: e.to_string(),
    })?;
    serde_json::from_value::<SealedSecret>(value.clone()).map_err(|whole| {
        let part = |path: &[&str]| path.iter().try_fold(&value, |v, k| v.get(*k));
        // Innermost first: the first part that fails on its own is the one to name.
        let checks: [(&'static str, Option<String>); 4] = [
            (
                "spec.template.metadata",
                fails::<ObjectMeta>(part(&["spec", "template", "metadata"])),
            ),
            (
                "spec.template",
                fails::<SecretTemplateSpec>(part(&["spec", "template"])),
            ),
            ("spec", fails::<SealedSecretSpec>(part(&["spec"]))),
            ("status", fails::<SealedSecretStatus>(part(&["status"]))),
        ];
        let (field, reason) = checks
            .into_iter()
            .find_map(|(field, failed)| failed.map(|r| (field, r)))
            .unwrap_or(("the object", whole.to_string()));
        Bad {
            object: object_ref(object),
            field,
            reason,
        }
    })
}

/// The decoder's message when `value` is present and is not a `T`.
fn fails<T: DeserializeOwned>(value: Option<&Value>) -> Option<String> {
    let value = value.filter(|v| !v.is_null())?;
    serde_json::from_value::<T>(value.clone())
        .err()
        .map(|e| e.to_string())
}

fn object_ref(object: &DynamicObject) -> String {
    sealant_crds::key_secret::object_ref(&object.metadata)
}

/// A watch event with its object decoded; `None` (after handing the failure to `bad`)
/// when the object does not decode, so it never reaches the cache.
pub fn typed(
    event: watcher::Event<DynamicObject>,
    bad: &mut impl FnMut(&DynamicObject, Bad),
) -> Option<watcher::Event<SealedSecret>> {
    let mut one = |object: DynamicObject| match decode(&object) {
        Ok(sealed) => Some(sealed),
        Err(failure) => {
            bad(&object, failure);
            None
        }
    };
    Some(match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(one(o)?),
        watcher::Event::InitApply(o) => watcher::Event::InitApply(one(o)?),
        watcher::Event::Delete(o) => watcher::Event::Delete(one(o)?),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(spec: Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "app", "uid": "u1"},
            "spec": spec,
        }))
        .expect("a DynamicObject")
    }

    #[test]
    fn a_well_formed_object_decodes() {
        let o = object(serde_json::json!({"encryptedData": {"k": "AgA="}}));
        let sealed = decode(&o).expect("decodes");
        assert_eq!(sealed.object_ref(), "app/db");
        assert_eq!(sealed.spec.encrypted_data["k"], "AgA=");
    }

    #[test]
    fn garbage_template_metadata_is_named_not_fatal() {
        for bad in [
            serde_json::json!({"creationTimestamp": "garbage"}),
            serde_json::json!({"generation": "x"}),
            serde_json::json!({"labels": {"a": 1}}),
        ] {
            let o = object(serde_json::json!({
                "encryptedData": {},
                "template": {"metadata": bad},
            }));
            let failure = decode(&o).expect_err("refused");
            assert_eq!(failure.object, "app/db");
            assert_eq!(failure.field, "spec.template.metadata", "{bad}");
            assert!(failure.message().contains("spec.template.metadata"));
        }
    }

    #[test]
    fn a_wrongly_typed_spec_is_named() {
        let o = object(serde_json::json!({"encryptedData": {"k": 5}}));
        assert_eq!(decode(&o).expect_err("refused").field, "spec");
    }

    #[test]
    fn a_bad_object_is_dropped_from_the_stream_and_handed_over_the_rest_pass() {
        let good = object(serde_json::json!({"encryptedData": {}}));
        let poisoned = object(serde_json::json!({
            "encryptedData": {},
            "template": {"metadata": {"creationTimestamp": "garbage"}},
        }));
        let mut reported = Vec::new();
        let mut bad = |o: &DynamicObject, b: Bad| reported.push((o.metadata.uid.clone(), b.field));
        assert!(typed(watcher::Event::InitApply(poisoned), &mut bad).is_none());
        assert!(matches!(
            typed(watcher::Event::InitApply(good), &mut bad),
            Some(watcher::Event::InitApply(_))
        ));
        assert!(matches!(
            typed(watcher::Event::InitDone, &mut bad),
            Some(watcher::Event::InitDone)
        ));
        assert_eq!(
            reported,
            vec![(Some("u1".to_owned()), "spec.template.metadata")]
        );
    }
}
