//! Where the controller keeps its in-sync proof, and the proof's text format.
//!
//! The controller proves that a Secret's data is exactly what unsealing a SealedSecret
//! produced with an HMAC that only it can compute (the MAC itself lives in the
//! controller: see its `digest` module). The proof has to survive a restart, so it is
//! stored in the cluster. Its home is the SealedSecret's **status**, as a condition:
//!
//! ```text
//! status:
//!   conditions:
//!   - type: Synced                      # Bitnami's, always first
//!     status: "True"
//!   - type: sealant.dev/InSyncProof     # this module
//!     status: "True"
//!     reason: Unsealed
//!     message: v1:SHA256:<key fingerprint>:<base64 HMAC-SHA256>
//! ```
//!
//! Why there:
//! - the produced Secret carries exactly what the template asks for, as Bitnami's
//!   does, so the proof cannot be an annotation on it (sealant 0.1 put it there, as
//!   [`LEGACY_ANNOTATION`]; it is still read once, so an upgrade decrypts nothing, and
//!   then removed);
//! - Bitnami's own CRD prunes unknown status fields (such as `keyFingerprints`) but
//!   keeps every condition, since its condition schema has `type`, `status`, `reason`
//!   and `message`; so the proof, and the key names in it, work under either CRD;
//! - the status is written on every change anyway, so the proof costs no extra
//!   request;
//! - Argo CD's health check reads only `Synced`, kstatus only `Ready`, `Reconciling`
//!   and `Stalled`, and the printer columns read `conditions[0]`: an extra condition
//!   type changes what none of them shows.
//!
//! The text is `v1:<fingerprint>:<mac>` when one key opened every value, or
//! `v2:<fp1>,<fp2>,...:<mac>` (sorted, no repeats) when several key generations did.
//! A fingerprint is `SHA256:<base64>` and contains a colon itself, so the MAC is
//! what follows the last colon. [`parse`] checks the shape only; only the controller
//! can check the MAC.

use sealant_keys::Fingerprint;

use crate::{SealedSecretCondition, SealedSecretStatus};

/// The condition type that holds the proof in its `message`.
pub const CONDITION_IN_SYNC_PROOF: &str = "sealant.dev/InSyncProof";

/// The condition's `reason`.
pub const REASON: &str = "Unsealed";

/// Where sealant 0.1 kept the proof: an annotation on the produced Secret. Read (so an
/// upgrade decrypts nothing) and removed, never written.
pub const LEGACY_ANNOTATION: &str = "sealant.dev/unsealed-digest";

const V1: &str = "v1";
const V2: &str = "v2";

/// A proof's parts, as written; nothing here is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof<'a> {
    /// The keys that opened the values, the signing key first.
    pub keys: Vec<Fingerprint>,
    /// The base64 MAC (standard alphabet, no padding).
    pub mac: &'a str,
}

impl Proof<'_> {
    /// `v2` when several keys opened the values (their list is then inside the MAC).
    pub fn is_multi_key(&self) -> bool {
        self.keys.len() > 1
    }
}

/// The proof text for `keys` (sorted, at least one) and a base64 MAC.
pub fn format(keys: &[Fingerprint], mac: &str) -> String {
    let version = if keys.len() > 1 { V2 } else { V1 };
    format!("{version}:{}:{mac}", key_list(keys))
}

/// The keys of a proof, comma-separated: what a `v2` MAC covers.
pub fn key_list(keys: &[Fingerprint]) -> String {
    keys.iter()
        .map(Fingerprint::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a proof into its keys and MAC. `None` unless it is well-formed: a known
/// version, non-empty key names, and for `v2` at least two keys in strict order.
pub fn parse(value: &str) -> Option<Proof<'_>> {
    let (version, rest) = value.split_once(':')?;
    let (list, mac) = rest.rsplit_once(':')?;
    let keys: Vec<Fingerprint> = match version {
        V1 => vec![Fingerprint::from_string(list.to_owned())],
        V2 => list
            .split(',')
            .map(|k| Fingerprint::from_string(k.to_owned()))
            .collect(),
        _ => return None,
    };
    let canonical = version == V1 || (keys.len() > 1 && keys.windows(2).all(|w| w[0] < w[1]));
    let named = keys.iter().all(|k| !k.as_str().is_empty());
    (canonical && named && !mac.is_empty()).then_some(Proof { keys, mac })
}

impl SealedSecretStatus {
    /// The proof text this status carries, if any (unverified).
    pub fn in_sync_proof(&self) -> Option<&str> {
        self.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == CONDITION_IN_SYNC_PROOF)
            .and_then(|c| c.message.as_deref())
    }

    /// The keys the values needed the last time they were unsealed: `keyFingerprints`,
    /// or, under Bitnami's CRD (which prunes that field), the keys the proof names.
    /// Says nothing about whether the status is current: callers check
    /// `observedGeneration`.
    pub fn keys_used(&self) -> Option<Vec<String>> {
        if let Some(keys) = &self.key_fingerprints {
            return Some(keys.clone());
        }
        let proof = parse(self.in_sync_proof()?)?;
        let mut keys: Vec<String> = proof.keys.iter().map(|k| k.as_str().to_owned()).collect();
        keys.sort();
        Some(keys)
    }
}

/// The condition that carries `proof`, stamped `now`.
pub fn condition(
    proof: String,
    now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> SealedSecretCondition {
    SealedSecretCondition {
        type_: CONDITION_IN_SYNC_PROOF.to_owned(),
        status: crate::CONDITION_TRUE.to_owned(),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
        reason: Some(REASON.to_owned()),
        message: Some(proof),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::from_string(s.to_owned())
    }

    #[test]
    fn one_key_proof_round_trips_with_the_colon_inside_the_fingerprint() {
        let text = format(&[fp("SHA256:abc")], "MAC");
        assert_eq!(text, "v1:SHA256:abc:MAC");
        let p = parse(&text).expect("parses");
        assert_eq!(p.keys, vec![fp("SHA256:abc")]);
        assert_eq!(p.mac, "MAC");
        assert!(!p.is_multi_key());
    }

    #[test]
    fn several_keys_make_a_v2_proof_in_sorted_order() {
        let text = format(&[fp("SHA256:a"), fp("SHA256:b")], "M");
        assert_eq!(text, "v2:SHA256:a,SHA256:b:M");
        assert_eq!(parse(&text).expect("parses").keys.len(), 2);
    }

    #[test]
    fn malformed_proofs_are_refused() {
        for bad in [
            "",
            "v1",
            "v1:SHA256:abc:",
            "v3:SHA256:a:M",
            "v2:SHA256:b,SHA256:a:M",
            "v2:SHA256:a,SHA256:a:M",
            "v2:SHA256:a:M",
            "v2:SHA256:a,:M",
            "v1::M",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_used_falls_back_to_the_proof_when_key_fingerprints_was_pruned() {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
        let mut status = SealedSecretStatus {
            observed_generation: Some(1),
            conditions: Some(vec![condition("v2:SHA256:a,SHA256:b:M".to_owned(), now)]),
            key_fingerprints: None,
        };
        assert_eq!(status.in_sync_proof(), Some("v2:SHA256:a,SHA256:b:M"));
        assert_eq!(
            status.keys_used(),
            Some(vec!["SHA256:a".to_owned(), "SHA256:b".to_owned()])
        );
        status.key_fingerprints = Some(vec!["SHA256:k".to_owned()]);
        assert_eq!(status.keys_used(), Some(vec!["SHA256:k".to_owned()]));
        status.key_fingerprints = None;
        status.conditions = None;
        assert_eq!(status.keys_used(), None);
    }
}
