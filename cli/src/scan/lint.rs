//! Offline lint of a SealedSecret: everything that can be checked without a private
//! key, so that CI catches what `--validate` would need a cluster for.
//!
//! - each `spec.encryptedData` value (and the legacy `spec.data`) is standard base64
//!   of a well-formed Bitnami blob (a u16 length prefix that fits the ciphertext, an
//!   RSA part the size of a real key, room for the AES-GCM tag) or of an age v1 file
//!   with at least one recipient and a header MAC line; anything else, typically the
//!   base64 of the plaintext, is [`Rule::SealedNotEncrypted`];
//! - with `--cert`, a Bitnami blob whose RSA part is not that key's size;
//! - the scope annotations of the object and of `spec.template.metadata` agree, and
//!   the template's name and namespace are the object's;
//! - every `spec.template.data` value renders with sealant's template engine (the one
//!   the controller uses), with each sealed key standing for an empty value;
//! - a strict or namespace-wide SealedSecret has a namespace.
//!
//! Nothing here decrypts, and no finding carries a value or anything computed from
//! one: a malformed value is reported by its key.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_crds::annotations::{CLUSTER_WIDE, NAMESPACE_WIDE, scope_of};
use sealant_keys::{Plaintext, Scope, age_envelope, hybrid};

use super::detect::{Context, Sink, is_literal_value, object};
use super::finding::Rule;
use super::helm;
use super::yaml::{NodeId, Tree};

/// The smallest and largest RSA modulus, in bytes, a real sealing key has (1024 to
/// 16384 bits).
const RSA_BYTES: std::ops::RangeInclusive<usize> = 128..=2048;

/// What an `encryptedData` value decodes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    /// A Bitnami blob with an RSA part of this many bytes.
    Bitnami { rsa_bytes: usize },
    /// A sealant age envelope (an age v1 file).
    Age,
    /// Neither.
    Unsealed,
}

/// Classifies one `encryptedData` value (base64 text).
pub fn classify(value: &str) -> Shape {
    let compact: String = value.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) else {
        return Shape::Unsealed;
    };
    if age_envelope::is_age(&blob) {
        let has_mac_line = blob.windows(5).any(|w| w == b"\n--- ");
        return if age_envelope::recipient_stanzas(&blob) > 0 && has_mac_line {
            Shape::Age
        } else {
            Shape::Unsealed
        };
    }
    let Some((prefix, rest)) = blob.split_first_chunk::<2>() else {
        return Shape::Unsealed;
    };
    let rsa_bytes = usize::from(u16::from_be_bytes(*prefix));
    let real_key = RSA_BYTES.contains(&rsa_bytes) && rsa_bytes % 64 == 0;
    if real_key && rest.len() >= rsa_bytes + hybrid::TAG_LEN {
        Shape::Bitnami { rsa_bytes }
    } else {
        Shape::Unsealed
    }
}

/// Lints one SealedSecret object.
pub fn sealed_secret(tree: &Tree, root: NodeId, ctx: &Context, sink: &mut Sink<'_>) {
    let object = object(tree, root, "SealedSecret");
    let Some(spec) = tree.get(root, "spec") else {
        return;
    };
    let mut keys = Vec::new();
    let mut values: Vec<(NodeId, Option<String>, &str)> = Vec::new();
    if let Some(map) = tree.get(spec, "encryptedData") {
        for (key, value) in tree.entries(map) {
            let name = tree.str(key).map(str::to_owned);
            keys.extend(name.clone());
            if let Some(text) = tree.str(value) {
                values.push((key, name, text));
            } else if is_literal_value(tree, value) {
                sink.add(
                    tree,
                    key,
                    Rule::SealedNotEncrypted,
                    &object,
                    name.as_deref(),
                    None,
                );
            }
        }
    }
    if let Some(data) = tree.get(spec, "data")
        && let Some(text) = tree.str(data)
    {
        values.push((data, Some("spec.data".to_owned()), text));
    }
    for (node, key, text) in values {
        if tree.is_empty_scalar(node) || text.is_empty() || helm::is_template(text) {
            continue;
        }
        match classify(text) {
            Shape::Unsealed => {
                sink.add(
                    tree,
                    node,
                    Rule::SealedNotEncrypted,
                    &object,
                    key.as_deref(),
                    None,
                );
            }
            Shape::Bitnami { rsa_bytes } => {
                if let Some(expected) = ctx.cert_rsa_bytes
                    && expected != rsa_bytes
                {
                    let detail = format!(
                        "sealed for a {}-bit key, the certificate's is {}-bit",
                        rsa_bytes * 8,
                        expected * 8
                    );
                    sink.add(
                        tree,
                        node,
                        Rule::SealedKeySize,
                        &object,
                        key.as_deref(),
                        Some(detail),
                    );
                }
            }
            Shape::Age => {}
        }
    }

    let meta = tree.get(root, "metadata");
    let template = tree.get(spec, "template");
    let template_meta = template.and_then(|t| tree.get(t, "metadata"));
    let scope = scope_of(&object_meta(tree, meta));
    if let Some(tmeta) = template_meta {
        let tmeta_k8s = object_meta(tree, Some(tmeta));
        let sets_scope = tmeta_k8s
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CLUSTER_WIDE) || a.contains_key(NAMESPACE_WIDE));
        if sets_scope && scope_of(&tmeta_k8s) != scope {
            let at = tree.get(tmeta, "annotations").unwrap_or(tmeta);
            let detail = format!(
                "the object is {}, its template says {}",
                scope_name(scope),
                scope_name(scope_of(&tmeta_k8s))
            );
            sink.add(
                tree,
                at,
                Rule::SealedScopeMismatch,
                &object,
                None,
                Some(detail),
            );
        }
        for (field, own) in [("name", &object.name), ("namespace", &object.namespace)] {
            let Some(node) = tree.get(tmeta, field) else {
                continue;
            };
            let Some(value) = tree
                .str(node)
                .filter(|v| !v.is_empty() && !helm::is_template(v))
            else {
                continue;
            };
            if own.as_deref().is_some_and(|own| own != value) {
                let detail = format!("spec.template.metadata.{field} differs");
                sink.add(
                    tree,
                    node,
                    Rule::SealedTemplateMetadata,
                    &object,
                    None,
                    Some(detail),
                );
            }
        }
    }
    if let Some(data) = template.and_then(|t| tree.get(t, "data")) {
        let dot: BTreeMap<String, Plaintext> = keys
            .iter()
            .map(|k| (k.clone(), Plaintext::new(Vec::new())))
            .collect();
        for (key, value) in tree.entries(data) {
            let Some(source) = tree.str(value) else {
                continue;
            };
            if helm::is_neutralized(source) {
                continue;
            }
            if let Err(err) = sealant_crds::template::render(source, &dot) {
                let name = tree.str(key);
                sink.add(
                    tree,
                    key,
                    Rule::SealedTemplateInvalid,
                    &object,
                    name,
                    Some(err.to_string()),
                );
            }
        }
    }
    if scope != Scope::ClusterWide && object.namespace.is_none() {
        let at = meta.unwrap_or(root);
        sink.add(
            tree,
            at,
            Rule::SealedNoNamespace,
            &object,
            None,
            Some(scope_name(scope).to_owned()),
        );
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Strict => "strict",
        Scope::NamespaceWide => "namespace-wide",
        Scope::ClusterWide => "cluster-wide",
    }
}

/// The parts of `metadata` the scope rules read, as the type `crds` takes.
fn object_meta(tree: &Tree, meta: Option<NodeId>) -> ObjectMeta {
    let annotations = meta.and_then(|m| tree.get(m, "annotations")).map(|a| {
        tree.entries(a)
            .into_iter()
            .filter_map(|(k, v)| Some((tree.str(k)?.to_owned(), tree.str(v)?.to_owned())))
            .collect::<BTreeMap<_, _>>()
    });
    ObjectMeta {
        annotations,
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn base64_of_plaintext_is_not_sealed() {
        assert_eq!(classify(&b64(b"hunter2")), Shape::Unsealed);
        assert_eq!(classify("not base64 at all!"), Shape::Unsealed);
    }

    #[test]
    fn well_formed_bitnami_blob_is_recognised_with_its_key_size() {
        let mut blob = vec![0x02, 0x00];
        blob.extend(vec![7u8; 512 + 16 + 5]);
        assert_eq!(classify(&b64(&blob)), Shape::Bitnami { rsa_bytes: 512 });
    }

    #[test]
    fn length_prefix_past_the_end_is_not_sealed() {
        let mut blob = vec![0x02, 0x00];
        blob.extend(vec![7u8; 512]);
        assert_eq!(classify(&b64(&blob)), Shape::Unsealed);
    }

    #[test]
    fn rsa_part_of_no_real_key_size_is_not_sealed() {
        let mut blob = vec![0x00, 0x21];
        blob.extend(vec![7u8; 600]);
        assert_eq!(classify(&b64(&blob)), Shape::Unsealed);
    }

    #[test]
    fn age_header_without_recipients_is_not_sealed() {
        let mut blob = age_envelope::AGE_HEADER.to_vec();
        blob.extend_from_slice(b"--- abc\n0123456789abcdef0123456789abcdef");
        assert_eq!(classify(&b64(&blob)), Shape::Unsealed);
    }
}
