//! Bitnami's `sealedsecrets.bitnami.com/` annotations, and the one place that turns
//! them into a [`Scope`] and back.
//!
//! The scope decides the OAEP label, so reading it wrong means a value that cannot be
//! unsealed, or one that can be unsealed where it should not be. The rules are
//! Bitnami's: only the exact value `"true"` counts, and cluster-wide wins over
//! namespace-wide.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_keys::Scope;

/// `"true"` on a SealedSecret (or the input Secret): the value may be unsealed under
/// any name in any namespace.
pub const CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";

/// `"true"` on a SealedSecret (or the input Secret): the value may be unsealed under
/// any name in its namespace.
pub const NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";

/// `"true"` on an existing Secret: the controller adopts and overwrites it.
pub const MANAGED: &str = "sealedsecrets.bitnami.com/managed";

/// `"true"` on an existing Secret: the controller merges data, labels and annotations
/// into it instead of replacing it.
pub const PATCH: &str = "sealedsecrets.bitnami.com/patch";

/// `"true"` in `spec.template.metadata`: the produced Secret gets no ownerReference.
pub const SKIP_SET_OWNER_REFERENCES: &str = "sealedsecrets.bitnami.com/skip-set-owner-references";

/// The annotation `kubectl apply` leaves on objects: a full copy of the object,
/// plaintext values included, so it is never copied into a SealedSecret.
pub const KUBECTL_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The same annotation as written by kubecfg; stripped for the same reason.
pub const KUBECFG_LAST_APPLIED: &str = "kubecfg.ksonnet.io/last-applied-configuration";

/// True when `annotation` is set to exactly `"true"` on `meta`.
pub fn is_true(meta: &ObjectMeta, annotation: &str) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(annotation))
        .is_some_and(|v| v == "true")
}

/// The scope that `meta`'s annotations ask for: cluster-wide if that annotation is
/// exactly `"true"`, else namespace-wide if that one is, else strict.
pub fn scope_of(meta: &ObjectMeta) -> Scope {
    if is_true(meta, CLUSTER_WIDE) {
        Scope::ClusterWide
    } else if is_true(meta, NAMESPACE_WIDE) {
        Scope::NamespaceWide
    } else {
        Scope::Strict
    }
}

/// Makes `meta`'s annotations say `scope` and nothing else: both scope annotations are
/// removed, then the one for `scope` (if any) is written. An annotation map left empty
/// is removed, so a strict object does not gain an empty `annotations: {}`.
pub fn set_scope(meta: &mut ObjectMeta, scope: Scope) {
    let annotations = meta.annotations.get_or_insert_default();
    annotations.remove(CLUSTER_WIDE);
    annotations.remove(NAMESPACE_WIDE);
    match scope {
        Scope::Strict => {}
        Scope::NamespaceWide => {
            annotations.insert(NAMESPACE_WIDE.to_owned(), "true".to_owned());
        }
        Scope::ClusterWide => {
            annotations.insert(CLUSTER_WIDE.to_owned(), "true".to_owned());
        }
    }
    if annotations.is_empty() {
        meta.annotations = None;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            annotations: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn scope_is_strict_without_annotations() {
        assert_eq!(scope_of(&ObjectMeta::default()), Scope::Strict);
        assert_eq!(scope_of(&meta(&[])), Scope::Strict);
    }

    #[test]
    fn only_the_exact_value_true_sets_a_scope() {
        for value in ["True", "TRUE", "1", "yes", " true", ""] {
            assert_eq!(
                scope_of(&meta(&[(CLUSTER_WIDE, value)])),
                Scope::Strict,
                "{value:?}"
            );
            assert_eq!(
                scope_of(&meta(&[(NAMESPACE_WIDE, value)])),
                Scope::Strict,
                "{value:?}"
            );
        }
        assert_eq!(
            scope_of(&meta(&[(NAMESPACE_WIDE, "true")])),
            Scope::NamespaceWide
        );
        assert_eq!(
            scope_of(&meta(&[(CLUSTER_WIDE, "true")])),
            Scope::ClusterWide
        );
    }

    #[test]
    fn cluster_wide_wins_over_namespace_wide() {
        let both = meta(&[(CLUSTER_WIDE, "true"), (NAMESPACE_WIDE, "true")]);
        assert_eq!(scope_of(&both), Scope::ClusterWide);
    }

    #[test]
    fn set_scope_writes_one_annotation_and_removes_the_other() {
        let mut m = meta(&[(CLUSTER_WIDE, "true"), ("keep", "me")]);
        set_scope(&mut m, Scope::NamespaceWide);
        let a = m.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(NAMESPACE_WIDE).map(String::as_str), Some("true"));
        assert!(!a.contains_key(CLUSTER_WIDE));
        assert_eq!(a.get("keep").map(String::as_str), Some("me"));
        assert_eq!(scope_of(&m), Scope::NamespaceWide);

        set_scope(&mut m, Scope::ClusterWide);
        assert_eq!(scope_of(&m), Scope::ClusterWide);
        assert!(
            !m.annotations
                .clone()
                .unwrap_or_default()
                .contains_key(NAMESPACE_WIDE)
        );

        set_scope(&mut m, Scope::Strict);
        assert_eq!(scope_of(&m), Scope::Strict);
        assert_eq!(
            m.annotations.map(|a| a.len()),
            Some(1),
            "only `keep` is left"
        );
    }

    #[test]
    fn set_strict_scope_leaves_no_empty_annotation_map() {
        let mut m = ObjectMeta::default();
        set_scope(&mut m, Scope::Strict);
        assert_eq!(m.annotations, None);
        let mut m = meta(&[(NAMESPACE_WIDE, "true")]);
        set_scope(&mut m, Scope::Strict);
        assert_eq!(m.annotations, None);
    }
}
