//! What keys the controller has and which SealedSecrets still need them: `keys list`,
//! `keys retire` and `keys prune`, and the key listing `backup` and `restore` share.
//!
//! ```text
//! Secrets in --controller-namespace
//!   ├─ label sealedsecrets.bitnami.com/sealed-secrets-key (any value) ─┐
//!   └─ legacy: named exactly --key-prefix ──────────────────────────────┴─▶ KeySecret (fingerprint from tls.crt)
//! SealedSecrets in all namespaces
//!   └─ status.keyFingerprints of the current generation, when Synced ──▶ Usage { by key, unknown }
//! ```
//!
//! A SealedSecret's key record counts only when it describes the object as it is now:
//! `status.observedGeneration` equals `metadata.generation` and the `Synced` condition
//! is `True`. Anything else (a Bitnami controller's status, a SealedSecret not yet
//! unsealed, one that fails) is *unknown*: it may need any key, so it blocks `retire`
//! and `prune` like a dependent (`--force` overrides).
//!
//! The fingerprint of a key Secret is read from its certificate (public data), so the
//! listing never parses a private key. The legacy key Secret (named exactly the
//! prefix) is loaded by controllers whatever its label, so it can be neither retired
//! by relabelling nor pruned here.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use sealant_crds::key_secret::{
    ACTIVE, ESCROW_CONFIG_MAP, KEY_LABEL, RETIRED, TLS_CERT, label_value, object_ref,
};
use sealant_crds::{CONDITION_SYNCED, CONDITION_TRUE, SealedSecret};
use sealant_keys::{Certificate, OffsetDateTime};
use serde_json::json;

use super::{ListArgs, ListFormat, PruneArgs, RetireArgs, Session};
use crate::output;

/// How many dependent SealedSecrets an error lists before "and N more".
const SHOWN_DEPENDENTS: usize = 10;

/// One key Secret of the controller's namespace.
pub struct KeySecret {
    /// The Secret as the API server returned it (it holds the private key: drop it).
    pub secret: Secret,
    /// `SHA256:...` of its RSA key, or why its certificate cannot be read.
    pub fingerprint: Result<String, String>,
    /// Its certificate's NotBefore, the time Bitnami and sealant order keys by.
    pub not_before: Option<OffsetDateTime>,
    /// True for the unlabelled legacy Secret named exactly the prefix.
    pub legacy: bool,
}

impl KeySecret {
    fn new(secret: Secret, prefix: &str) -> Self {
        let certificate = secret
            .data
            .as_ref()
            .and_then(|d| d.get(TLS_CERT))
            .ok_or_else(|| "no data.tls.crt".to_owned())
            .and_then(|pem| {
                Certificate::from_pem(&pem.0).map_err(|e| format!("data.tls.crt: {e}"))
            });
        let legacy = secret.metadata.name.as_deref() == Some(prefix);
        Self {
            fingerprint: certificate
                .as_ref()
                .map(|c| c.fingerprint().as_str().to_owned())
                .map_err(Clone::clone),
            not_before: certificate.ok().map(|c| c.not_before()),
            legacy,
            secret,
        }
    }

    /// The Secret's name.
    pub fn name(&self) -> &str {
        self.secret.metadata.name.as_deref().unwrap_or_default()
    }

    /// The fingerprint, or `<unreadable>`.
    pub fn fingerprint_text(&self) -> &str {
        self.fingerprint.as_deref().unwrap_or("<unreadable>")
    }

    /// True when controllers load it: labelled `active`, or the legacy Secret.
    pub fn is_active(&self) -> bool {
        self.legacy || label_value(&self.secret) == Some(ACTIVE)
    }

    /// The label value, `active` for the legacy Secret, as `list` shows it.
    fn status(&self) -> String {
        if self.legacy {
            return format!("{ACTIVE} (legacy)");
        }
        label_value(&self.secret).unwrap_or_default().to_owned()
    }

    fn creation(&self) -> Option<&Time> {
        self.secret.metadata.creation_timestamp.as_ref()
    }
}

/// Every key Secret of the controller's namespace: labelled with any value, plus the
/// legacy one, each once, ordered by name.
pub fn key_secrets(session: &Session) -> Result<Vec<KeySecret>> {
    let api = session.secrets();
    let namespace = &session.namespace;
    session.cluster.block_on(async {
        let mut secrets = api
            .list(&ListParams::default().labels(KEY_LABEL))
            .await
            .with_context(|| format!("cannot list the key Secrets in namespace {namespace}"))?
            .items;
        if !secrets
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(session.prefix.as_str()))
            && let Some(legacy) = api
                .get_opt(&session.prefix)
                .await
                .with_context(|| format!("cannot get Secret {namespace}/{}", session.prefix))?
        {
            secrets.push(legacy);
        }
        secrets.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(secrets
            .into_iter()
            .map(|s| KeySecret::new(s, &session.prefix))
            .collect())
    })
}

/// The fingerprint of the key the controller seals with: the active key with the
/// latest certificate NotBefore (the controller's default `--key-order-priority`),
/// the Secret created first on a tie.
fn sealing_key(keys: &[KeySecret]) -> Option<&str> {
    keys.iter()
        .filter(|k| k.is_active() && k.fingerprint.is_ok())
        .max_by(|a, b| {
            a.not_before
                .cmp(&b.not_before)
                .then_with(|| b.creation().cmp(&a.creation()))
        })
        .map(KeySecret::fingerprint_text)
}

/// Which SealedSecrets need which key.
#[derive(Default)]
pub struct Usage {
    /// `namespace/name` of the SealedSecrets whose key record lists each fingerprint.
    pub by_key: BTreeMap<String, Vec<String>>,
    /// `namespace/name` of the SealedSecrets with no key record for their current
    /// generation: they could need any key.
    pub unknown: Vec<String>,
}

impl Usage {
    /// Reads every SealedSecret in the cluster. They are listed untyped and decoded one
    /// at a time: one that cannot be decoded (only Bitnami's CRD lets such objects in)
    /// counts as `unknown`, rather than failing the whole list.
    pub fn read(session: &Session) -> Result<Self> {
        let resource = kube::api::ApiResource::erase::<SealedSecret>(&());
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::all_with(session.cluster.client().clone(), &resource);
        let list = session
            .cluster
            .block_on(api.list(&ListParams::default()))
            .context(
                "cannot list SealedSecrets in all namespaces (needed to know which keys are \
                 still in use)",
            )?;
        let mut usage = Self::default();
        for item in &list.items {
            let object = object_ref(&item.metadata);
            let decoded = serde_json::to_value(item)
                .ok()
                .and_then(|v| serde_json::from_value::<SealedSecret>(v).ok());
            let Some(sealed) = decoded else {
                usage.unknown.push(object);
                continue;
            };
            match key_record(&sealed) {
                Some(fingerprints) => {
                    for fingerprint in fingerprints {
                        usage
                            .by_key
                            .entry(fingerprint)
                            .or_default()
                            .push(object.clone());
                    }
                }
                None => usage.unknown.push(object),
            }
        }
        Ok(usage)
    }

    /// The SealedSecrets that need `fingerprint`.
    pub fn dependents(&self, fingerprint: &str) -> &[String] {
        self.by_key.get(fingerprint).map_or(&[], Vec::as_slice)
    }

    /// Fails, naming up to [`SHOWN_DEPENDENTS`] SealedSecrets, when any SealedSecret
    /// needs `fingerprint` or has an unknown key record.
    fn check_unused(&self, fingerprint: &str, action: &str) -> Result<()> {
        let needed = self.dependents(fingerprint);
        if needed.is_empty() && self.unknown.is_empty() {
            return Ok(());
        }
        let mut reasons = Vec::new();
        if !needed.is_empty() {
            reasons.push(format!(
                "{} SealedSecret(s) were last unsealed with it: {}",
                needed.len(),
                shown(needed)
            ));
        }
        if !self.unknown.is_empty() {
            reasons.push(format!(
                "{} SealedSecret(s) have no key record for their current generation (not yet \
                 unsealed by sealant, or failing) and could need it: {}",
                self.unknown.len(),
                shown(&self.unknown)
            ));
        }
        bail!(
            "refusing to {action} key {fingerprint}: {}; re-encrypt them with `sealant \
             --re-encrypt` (or fix them) first, or pass --force",
            reasons.join("; ")
        )
    }
}

/// The key record of the SealedSecret as it is now, when the status describes its
/// current generation and it is Synced: its `status.keyFingerprints`, or, under
/// Bitnami's CRD (which prunes that field), the keys its in-sync proof names.
fn key_record(sealed: &SealedSecret) -> Option<Vec<String>> {
    let status = sealed.status.as_ref()?;
    if status.observed_generation.is_none()
        || status.observed_generation != sealed.metadata.generation
    {
        return None;
    }
    let synced = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == CONDITION_SYNCED && c.status == CONDITION_TRUE);
    if !synced {
        return None;
    }
    status.keys_used()
}

/// Up to [`SHOWN_DEPENDENTS`] names, then "and N more".
fn shown(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(SHOWN_DEPENDENTS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN_DEPENDENTS {
        text.push_str(&format!(" and {} more", names.len() - SHOWN_DEPENDENTS));
    }
    text
}

/// The key Secrets whose fingerprint `query` names: the whole fingerprint or a prefix
/// of it, with or without `SHA256:`. Several Secrets may hold the same key; several
/// different keys are an error listing them.
pub fn resolve<'a>(
    keys: &'a [KeySecret],
    query: &str,
    namespace: &str,
) -> Result<Vec<&'a KeySecret>> {
    let query = query.trim();
    let wanted = if query.starts_with("SHA256:") {
        query.to_owned()
    } else {
        format!("SHA256:{query}")
    };
    if wanted == "SHA256:" {
        bail!("an empty fingerprint names no key");
    }
    let matches: Vec<&KeySecret> = keys
        .iter()
        .filter(|k| k.fingerprint.as_ref().is_ok_and(|f| f.starts_with(&wanted)))
        .collect();
    let mut distinct: Vec<&str> = matches.iter().map(|k| k.fingerprint_text()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    match distinct.len() {
        0 => bail!(
            "no key Secret in namespace {namespace} has fingerprint {wanted}...; see `sealant \
             keys list`"
        ),
        1 => Ok(matches),
        _ => bail!(
            "{query:?} matches several keys, give more of the fingerprint: {}",
            matches
                .iter()
                .map(|k| format!("{} ({})", k.fingerprint_text(), k.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `sealant keys list`.
pub fn list(args: &ListArgs) -> Result<()> {
    let session = Session::connect(&args.controller)?;
    let keys = key_secrets(&session)?;
    let usage = Usage::read(&session)?;
    let now = OffsetDateTime::now_utc();
    let rendered = match args.output {
        ListFormat::Table => table(&keys, &usage, now),
        ListFormat::Json => json_list(&keys, &usage, &session.namespace, now),
    };
    output::write_stdout(rendered.as_bytes())?;
    if keys.is_empty() {
        eprintln!(
            "no key Secrets in namespace {} (label {KEY_LABEL}, or named {})",
            session.namespace, session.prefix
        );
    }
    Ok(())
}

/// The `list` table: one row per key Secret, then one `unknown` row when some
/// SealedSecrets have no key record.
fn table(keys: &[KeySecret], usage: &Usage, now: OffsetDateTime) -> String {
    let sealing = sealing_key(keys);
    let mut rows = vec![[
        "FINGERPRINT".to_owned(),
        "NAME".to_owned(),
        "CREATED".to_owned(),
        "AGE".to_owned(),
        "STATUS".to_owned(),
        "SEALEDSECRETS".to_owned(),
    ]];
    for key in keys {
        let mut status = key.status();
        if key.fingerprint.is_ok() && sealing == Some(key.fingerprint_text()) {
            status.push_str(" (sealing)");
        }
        if let Err(e) = &key.fingerprint {
            status.push_str(&format!(" (unreadable: {e})"));
        }
        rows.push([
            key.fingerprint_text().to_owned(),
            key.name().to_owned(),
            key.not_before.map_or_else(|| "-".to_owned(), rfc3339),
            key.not_before
                .map_or_else(|| "-".to_owned(), |t| age(now, t)),
            status,
            usage.dependents(key.fingerprint_text()).len().to_string(),
        ]);
    }
    if !usage.unknown.is_empty() {
        rows.push([
            "unknown".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "no key record (could need any key)".to_owned(),
            usage.unknown.len().to_string(),
        ]);
    }
    let mut widths = [0; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `list` JSON: `{"namespace", "keys": [...], "unknown": [...]}`.
fn json_list(keys: &[KeySecret], usage: &Usage, namespace: &str, now: OffsetDateTime) -> String {
    let sealing = sealing_key(keys);
    let rows: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            let dependents = usage.dependents(key.fingerprint_text());
            let mut row = json!({
                "fingerprint": key.fingerprint.as_ref().ok(),
                "name": key.name(),
                "created": key.not_before.map(rfc3339),
                "ageSeconds": key.not_before.map(|t| seconds_between(now, t)),
                "label": label_value(&key.secret),
                "legacy": key.legacy,
                "active": key.is_active(),
                "sealing": key.fingerprint.is_ok() && sealing == Some(key.fingerprint_text()),
                "sealedSecrets": dependents.len(),
                "dependents": dependents,
            });
            if let (Err(e), Some(object)) = (&key.fingerprint, row.as_object_mut()) {
                object.insert("error".to_owned(), json!(e));
            }
            row
        })
        .collect();
    let document = json!({
        "namespace": namespace,
        "keys": rows,
        "unknown": usage.unknown,
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// `2024-05-01T12:00:00Z`.
fn rfc3339(t: OffsetDateTime) -> String {
    // The same instant in UTC (certificate times are UTC already).
    let t = OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A kubectl-style age of `then` at `now`: `42s`, `17m`, `5h`, `12d`.
fn age(now: OffsetDateTime, then: OffsetDateTime) -> String {
    match seconds_between(now, then) {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Whole seconds from `then` to `now`, never negative.
fn seconds_between(now: OffsetDateTime, then: OffsetDateTime) -> i64 {
    (now.unix_timestamp() - then.unix_timestamp()).max(0)
}

/// `sealant keys retire`.
pub fn retire(args: &RetireArgs) -> Result<()> {
    let session = Session::connect(&args.controller)?;
    let keys = key_secrets(&session)?;
    let targets = resolve(&keys, &args.fingerprint, &session.namespace)?;
    let fingerprint = targets
        .first()
        .map(|k| k.fingerprint_text().to_owned())
        .unwrap_or_default();
    if let Some(legacy) = targets.iter().find(|k| k.legacy) {
        bail!(
            "cannot retire {fingerprint}: it is the legacy key Secret {}/{}, which controllers \
             load whatever its label; back it up (`sealant keys backup`) and delete it with \
             kubectl if it must go",
            session.namespace,
            legacy.name()
        );
    }
    let to_retire: Vec<&KeySecret> = targets.into_iter().filter(|k| k.is_active()).collect();
    if to_retire.is_empty() {
        println!("{fingerprint} is already retired");
        return Ok(());
    }
    let remaining = keys
        .iter()
        .filter(|k| k.is_active() && k.fingerprint_text() != fingerprint)
        .count();
    if remaining == 0 && !args.force {
        bail!(
            "refusing to retire {fingerprint}: it is the last active key in namespace {} (a \
             controller would make a new one); pass --force",
            session.namespace
        );
    }
    check_dependencies(&session, &[fingerprint.as_str()], "retire", args.force)?;

    let api = session.secrets();
    let patch = json!({"metadata": {"labels": {KEY_LABEL: RETIRED}}});
    for key in to_retire {
        session
            .cluster
            .block_on(api.patch(key.name(), &PatchParams::default(), &Patch::Merge(&patch)))
            .with_context(|| {
                format!("cannot relabel Secret {}/{}", session.namespace, key.name())
            })?;
        println!("{fingerprint}  {}  {RETIRED}", key.name());
    }
    eprintln!(
        "A running controller stops decrypting with {fingerprint} as soon as its key watch sees \
         the label; `sealant keys prune {fingerprint}` deletes it once you are sure."
    );
    Ok(())
}

/// Reads which SealedSecrets need the keys and fails (or, with `force`, warns) when
/// any needs one of them or has an unknown key record.
fn check_dependencies(
    session: &Session,
    fingerprints: &[&str],
    action: &str,
    force: bool,
) -> Result<()> {
    let usage = match Usage::read(session) {
        Ok(usage) => usage,
        Err(e) if force => {
            eprintln!("warning: --force: not checking which SealedSecrets need the key: {e:#}");
            return Ok(());
        }
        Err(e) => return Err(e.context("pass --force to skip the check")),
    };
    for fingerprint in fingerprints {
        match usage.check_unused(fingerprint, action) {
            Ok(()) => {}
            Err(e) if force => eprintln!("warning: --force: {e:#}"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `sealant keys prune`.
pub fn prune(args: &PruneArgs) -> Result<()> {
    let session = Session::connect(&args.controller)?;
    let keys = key_secrets(&session)?;
    let mut targets: Vec<&KeySecret> = Vec::new();
    let mut fingerprints: Vec<&str> = Vec::new();
    for query in &args.fingerprints {
        let matched = resolve(&keys, query, &session.namespace)?;
        for key in matched {
            if key.is_active() {
                bail!(
                    "refusing to prune {}: Secret {}/{} is an active key; retire it first \
                     (`sealant keys retire {}`){}",
                    key.fingerprint_text(),
                    session.namespace,
                    key.name(),
                    key.fingerprint_text(),
                    if key.legacy {
                        " — it is the legacy key Secret, which controllers load whatever its \
                         label, so only kubectl can delete it"
                    } else {
                        ""
                    }
                );
            }
            if !targets.iter().any(|t| t.name() == key.name()) {
                targets.push(key);
            }
            if !fingerprints.contains(&key.fingerprint_text()) {
                fingerprints.push(key.fingerprint_text());
            }
        }
    }
    check_dependencies(&session, &fingerprints, "prune", args.force)?;

    let escrow = session
        .cluster
        .block_on(
            kube::Api::<ConfigMap>::namespaced(
                session.cluster.client().clone(),
                &session.namespace,
            )
            .get_opt(ESCROW_CONFIG_MAP),
        )
        .ok()
        .flatten()
        .is_some();
    eprintln!(
        "Deleted keys are gone from the cluster: the escrow bundle (ConfigMap {}/{ESCROW_CONFIG_MAP}, \
         or its copy in Git) or your last `sealant keys backup` is then the only copy. {}",
        session.namespace,
        if escrow {
            format!(
                "ConfigMap {}/{ESCROW_CONFIG_MAP} exists; check that a copy of it is kept \
                 outside the cluster.",
                session.namespace
            )
        } else {
            format!(
                "There is no ConfigMap {}/{ESCROW_CONFIG_MAP} in this cluster: make sure a \
                 backup holds these keys.",
                session.namespace
            )
        }
    );
    let api = session.secrets();
    for key in targets {
        session
            .cluster
            .block_on(api.delete(key.name(), &DeleteParams::default()))
            .with_context(|| {
                format!("cannot delete Secret {}/{}", session.namespace, key.name())
            })?;
        println!("{}  {}  deleted", key.fingerprint_text(), key.name());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn key(name: &str, fingerprint: &str, label: Option<&str>) -> KeySecret {
        KeySecret {
            secret: Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    labels: label.map(|l| BTreeMap::from([(KEY_LABEL.to_owned(), l.to_owned())])),
                    ..ObjectMeta::default()
                },
                ..Secret::default()
            },
            fingerprint: Ok(fingerprint.to_owned()),
            not_before: None,
            legacy: name == "sealed-secrets-key",
        }
    }

    #[test]
    fn fingerprints_resolve_by_unique_prefix_with_or_without_the_algorithm() {
        let keys = [
            key("a", "SHA256:abcdef", Some(ACTIVE)),
            key("b", "SHA256:abxyz", Some(RETIRED)),
            key("c", "SHA256:abcdef", Some(ACTIVE)),
        ];
        let found = resolve(&keys, "abc", "kube-system").expect("unique");
        assert_eq!(
            found.iter().map(|k| k.name()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(
            resolve(&keys, "SHA256:abx", "ns").expect("unique")[0].name(),
            "b"
        );
        let err = resolve(&keys, "ab", "ns")
            .err()
            .expect("ambiguous")
            .to_string();
        assert!(
            err.contains("SHA256:abcdef (a)") && err.contains("SHA256:abxyz (b)"),
            "{err}"
        );
        let err = resolve(&keys, "zz", "ns").err().expect("none").to_string();
        assert!(err.contains("no key Secret in namespace ns"), "{err}");
        assert!(resolve(&keys, "SHA256:", "ns").is_err());
    }

    #[test]
    fn only_a_synced_status_of_the_current_generation_is_a_key_record() {
        let mut sealed = SealedSecret::new("db", sealant_crds::SealedSecretSpec::default());
        sealed.metadata.generation = Some(2);
        assert_eq!(key_record(&sealed), None, "no status");
        let condition = |status: &str| sealant_crds::SealedSecretCondition {
            type_: CONDITION_SYNCED.to_owned(),
            status: status.to_owned(),
            ..Default::default()
        };
        sealed.status = Some(sealant_crds::SealedSecretStatus {
            observed_generation: Some(1),
            conditions: Some(vec![condition(CONDITION_TRUE)]),
            key_fingerprints: Some(vec!["SHA256:k".to_owned()]),
        });
        assert_eq!(key_record(&sealed), None, "an older generation");
        if let Some(status) = sealed.status.as_mut() {
            status.observed_generation = Some(2);
        }
        assert_eq!(key_record(&sealed), Some(vec!["SHA256:k".to_owned()]));
        // Under Bitnami's CRD keyFingerprints is pruned: the proof names the keys.
        if let Some(status) = sealed.status.as_mut() {
            status.key_fingerprints = None;
            status.conditions = Some(vec![
                condition(CONDITION_TRUE),
                sealant_crds::proof::condition(
                    "v1:SHA256:p:MAC".to_owned(),
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                    ),
                ),
            ]);
        }
        assert_eq!(key_record(&sealed), Some(vec!["SHA256:p".to_owned()]));
        if let Some(status) = sealed.status.as_mut() {
            status.conditions = Some(vec![condition("False")]);
        }
        assert_eq!(key_record(&sealed), None, "failing");
    }

    #[test]
    fn dependency_errors_name_at_most_ten_sealed_secrets() {
        let names: Vec<String> = (0..12).map(|i| format!("ns/s{i}")).collect();
        let usage = Usage {
            by_key: BTreeMap::from([("SHA256:k".to_owned(), names)]),
            unknown: Vec::new(),
        };
        let err = usage
            .check_unused("SHA256:k", "retire")
            .expect_err("needed");
        let text = err.to_string();
        assert!(
            text.contains("ns/s9") && !text.contains("ns/s10,"),
            "{text}"
        );
        assert!(
            text.contains("and 2 more") && text.contains("--force"),
            "{text}"
        );
        assert!(usage.check_unused("SHA256:other", "retire").is_ok());
        let usage = Usage {
            by_key: BTreeMap::new(),
            unknown: vec!["ns/legacy".to_owned()],
        };
        let err = usage
            .check_unused("SHA256:other", "prune")
            .expect_err("unknown");
        assert!(err.to_string().contains("ns/legacy"), "{err}");
    }

    #[test]
    fn table_marks_the_newest_active_key_as_sealing_and_counts_dependents() {
        let t = |s| OffsetDateTime::from_unix_timestamp(s).expect("time");
        let mut old = key("k-old", "SHA256:old", Some(ACTIVE));
        old.not_before = Some(t(1_700_000_000));
        let mut new = key("k-new", "SHA256:new", Some(ACTIVE));
        new.not_before = Some(t(1_700_086_400));
        let mut gone = key("k-gone", "SHA256:gone", Some(RETIRED));
        gone.not_before = Some(t(1_800_000_000));
        let usage = Usage {
            by_key: BTreeMap::from([("SHA256:old".to_owned(), vec!["a/b".to_owned()])]),
            unknown: vec!["c/d".to_owned()],
        };
        let text = table(&[old, new, gone], &usage, t(1_700_172_800));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("FINGERPRINT"), "{text}");
        assert!(
            lines[1].contains("k-old") && lines[1].contains("2023-11-14T22:13:20Z"),
            "{text}"
        );
        assert!(
            lines[1].split_whitespace().collect::<Vec<_>>()[3..] == ["2d", "active", "1"],
            "{text}"
        );
        assert!(
            lines[2].contains("active (sealing)") && lines[2].ends_with('0'),
            "{text}"
        );
        assert!(
            lines[3].contains("retired") && !lines[3].contains("sealing"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("unknown") && lines[4].ends_with('1'),
            "{text}"
        );
    }
}
