//! `sealant keys restore`: put the keys of a backup back into a cluster, once each.
//!
//! ```text
//! FILE ─┬─ age file, armored or binary ─┬─ passphrase (scrypt) ─▶ --passphrase-file / $SEALANT_BACKUP_PASSPHRASE
//!       │                               └─ recipients ─────────▶ --identity F ...
//!       ├─ ConfigMap with data["bundle.age"] (the controller's escrow bundle) ─▶ as above
//!       └─ plain: a List of key Secrets, or key Secret documents (YAML or JSON)
//!                 ─▶ parse_key_list ─▶ read_key_secret each (all checked before any write)
//!                 ─▶ per key: same RSA fingerprint in --controller-namespace? skipped
//!                                                                      : created (name kept if free)
//! ```
//!
//! Restoring is idempotent: a key is identified by the fingerprint of its RSA key,
//! not by its Secret's name, so running a restore twice, or restoring into a cluster
//! that still has some of the keys, creates no duplicates. A key keeps its label value
//! (a retired key stays retired) and gets the key label if it had none; it lands in
//! `--controller-namespace` whatever namespace the backup names. A running controller
//! picks up the new active keys through its key watch.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use sealant_crds::key_secret::{
    ACTIVE, ESCROW_BUNDLE_KEY, KEY_LABEL, TLS_SECRET_TYPE, backup_secret, escrow_bundle_in,
    object_ref, parse_key_list, read_key_secret,
};
use sealant_keys::{AgeIdentity, bundle};
use serde_json::Value;
use zeroize::Zeroizing;

use super::inventory::key_secrets;
use super::{PASSPHRASE_ENV, RestoreArgs, Session, passphrase};
use crate::files::{self, Limit};

/// The HTTP status of a name that is already taken.
const CONFLICT: u16 = 409;

/// One key of the backup, checked.
struct BackupKey {
    /// The Secret as the backup holds it.
    secret: Secret,
    /// `SHA256:...` of its RSA key.
    fingerprint: String,
}

/// Runs `keys restore`.
pub fn run(args: &RestoreArgs) -> Result<()> {
    let label = args.file.display().to_string();
    let keys = read_backup(args).with_context(|| format!("keys restore {label}"))?;
    let session = Session::connect(&args.controller)?;
    let present: BTreeMap<String, String> = key_secrets(&session)?
        .into_iter()
        .filter_map(|k| Some((k.fingerprint.clone().ok()?, k.name().to_owned())))
        .collect();

    let (mut created, mut skipped) = (0, 0);
    let mut seen: Vec<String> = Vec::new();
    for key in keys {
        let backup_name = key.secret.metadata.name.clone().unwrap_or_default();
        if let Some(name) = present.get(&key.fingerprint) {
            skipped += 1;
            let verb = if args.dry_run {
                "would skip"
            } else {
                "skipped"
            };
            println!("{}  {name}  {verb} (already present)", key.fingerprint);
            continue;
        }
        if seen.contains(&key.fingerprint) {
            skipped += 1;
            let verb = if args.dry_run {
                "would skip"
            } else {
                "skipped"
            };
            println!(
                "{}  {backup_name}  {verb} (twice in the backup)",
                key.fingerprint
            );
            continue;
        }
        seen.push(key.fingerprint.clone());
        let secret = to_create(&key.secret, &session.namespace);
        if args.dry_run {
            let name = match &secret.metadata.name {
                Some(name) if !name_taken(&session, name)? => name.clone(),
                _ => format!("{}<random>", session.prefix),
            };
            println!("{}  {name}  would create", key.fingerprint);
            created += 1;
            continue;
        }
        let name = create(&session, secret)?;
        println!("{}  {name}  created", key.fingerprint);
        created += 1;
    }
    let (would, dry) = if args.dry_run {
        ("would be ", " (dry run: nothing changed)")
    } else {
        ("", "")
    };
    eprintln!(
        "{created} key(s) {would}created and {skipped} {would}skipped in namespace {}{dry}. A \
         running controller loads new active keys through its watch; no restart is needed.",
        session.namespace
    );
    Ok(())
}

/// Reads, decrypts, parses and checks the whole backup. Nothing is created unless
/// every key in it is readable.
fn read_backup(args: &RestoreArgs) -> Result<Vec<BackupKey>> {
    let bytes = read_file(&args.file)?;
    let plaintext = plaintext(args, &bytes)?;
    let text = std::str::from_utf8(&plaintext)
        .map_err(|_| anyhow!("the backup is not UTF-8 text (nor an age file)"))?;
    let secrets = parse_key_list(text)?;
    if secrets.is_empty() {
        bail!("the backup holds no key Secrets");
    }
    secrets
        .into_iter()
        .enumerate()
        .map(|(i, secret)| {
            let material = read_key_secret(&secret).with_context(|| {
                format!(
                    "item {} (Secret {}) is not a readable key; nothing was restored",
                    i + 1,
                    object_ref(&secret.metadata)
                )
            })?;
            let fingerprint = material.key.fingerprint().as_str().to_owned();
            Ok(BackupKey {
                secret,
                fingerprint,
            })
        })
        .collect()
}

/// The bytes of `path`, or of stdin for `-`.
fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    if path == Path::new("-") {
        return files::read_stdin(Limit::MANIFESTS).context("cannot read stdin");
    }
    files::read(path, Limit::MANIFESTS).context("cannot read the file")
}

/// The backup's plaintext: the file itself, or what its age file (possibly inside the
/// escrow ConfigMap) decrypts to.
fn plaintext(args: &RestoreArgs, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if bundle::is_encrypted(bytes) {
        return decrypt(args, bytes);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(Zeroizing::new(bytes.to_vec()));
    };
    if let Some(bundle) = config_map_bundle(text)? {
        return decrypt(args, bundle.as_bytes())
            .context(format!("ConfigMap data.{ESCROW_BUNDLE_KEY}"));
    }
    Ok(Zeroizing::new(bytes.to_vec()))
}

/// The escrow bundle of a ConfigMap document, if the text is one (YAML or JSON);
/// `None` for any other text. A ConfigMap without the bundle is an error.
fn config_map_bundle(text: &str) -> Result<Option<String>> {
    let Ok(docs) = sealant_crds::parse_documents(text) else {
        return Ok(None);
    };
    let Some(map) = docs
        .iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("ConfigMap"))
    else {
        return Ok(None);
    };
    if docs.len() > 1 {
        let name = map.pointer("/metadata/name").and_then(Value::as_str);
        bail!(
            "the file holds ConfigMap {} and other documents; restore one at a time",
            name.unwrap_or("<none>")
        );
    }
    Ok(escrow_bundle_in(map)?.map(str::to_owned))
}

/// Opens an age file with the passphrase or the identities, whichever it needs.
fn decrypt(args: &RestoreArgs, file: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if bundle::is_passphrase_protected(file) {
        let Some(pass) = passphrase(args.passphrase_file.as_deref())? else {
            bail!(
                "the backup is protected by a passphrase: pass --passphrase-file FILE (or set \
                 ${PASSPHRASE_ENV})"
            );
        };
        let plaintext = bundle::open_with_passphrase(&pass, file).map_err(|_| {
            anyhow!("cannot decrypt the backup: wrong passphrase, or a damaged file")
        })?;
        return Ok(Zeroizing::new(plaintext.expose_secret().to_vec()));
    }
    if args.identity.is_empty() {
        bail!(
            "the backup is encrypted to age recipients: pass --identity FILE (the identity file \
             `sealant keygen-escrow` wrote)"
        );
    }
    let mut identities = Vec::new();
    for path in &args.identity {
        let text = files::read_text(path, Limit::SMALL_FILE)
            .with_context(|| format!("--identity {}: cannot read it", path.display()))?;
        identities.extend(
            AgeIdentity::parse_file(&text)
                .with_context(|| format!("--identity {}", path.display()))?,
        );
    }
    let plaintext = bundle::open(&identities, file).map_err(|_| {
        anyhow!(
            "cannot decrypt the backup: none of the --identity files matches its recipients, or \
             the file is damaged"
        )
    })?;
    Ok(Zeroizing::new(plaintext.expose_secret().to_vec()))
}

/// The Secret to create for a backed-up key: the backup's name, labels, annotations
/// and data, in `namespace`, typed `kubernetes.io/tls`, with the key label (value
/// `active` when the backup had none).
fn to_create(secret: &Secret, namespace: &str) -> Secret {
    let mut secret = backup_secret(secret);
    secret.metadata.namespace = Some(namespace.to_owned());
    secret
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .entry(KEY_LABEL.to_owned())
        .or_insert_with(|| ACTIVE.to_owned());
    secret.type_ = Some(TLS_SECRET_TYPE.to_owned());
    secret
}

/// True when a Secret named `name` exists in the controller's namespace.
fn name_taken(session: &Session, name: &str) -> Result<bool> {
    let found = session
        .cluster
        .block_on(session.secrets().get_metadata_opt(name))
        .with_context(|| format!("cannot get Secret {}/{name}", session.namespace))?;
    Ok(found.is_some())
}

/// Creates `secret` under its own name if it is free, else under a name generated from
/// the prefix, and returns the name it got.
fn create(session: &Session, mut secret: Secret) -> Result<String> {
    let api = session.secrets();
    let use_name = match &secret.metadata.name {
        Some(name) => !name_taken(session, name)?,
        None => false,
    };
    if use_name {
        match session
            .cluster
            .block_on(api.create(&PostParams::default(), &secret))
        {
            Ok(created) => return Ok(created.metadata.name.unwrap_or_default()),
            Err(kube::Error::Api(status)) if status.code == CONFLICT => {}
            Err(e) => {
                return Err(anyhow!(e)).with_context(|| {
                    format!("cannot create Secret {}", object_ref(&secret.metadata))
                });
            }
        }
    }
    secret.metadata.name = None;
    secret.metadata.generate_name = Some(session.prefix.clone());
    let created = session
        .cluster
        .block_on(api.create(&PostParams::default(), &secret))
        .with_context(|| {
            format!(
                "cannot create a key Secret {}/{}...",
                session.namespace, session.prefix
            )
        })?;
    Ok(created.metadata.name.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use sealant_crds::key_secret::{RETIRED, label_value};

    #[test]
    fn restored_secret_moves_namespace_keeps_a_retired_label_and_gains_a_missing_one() {
        let mut secret = Secret {
            metadata: ObjectMeta {
                name: Some("sealed-secrets-keyabc".to_owned()),
                namespace: Some("old".to_owned()),
                uid: Some("u".to_owned()),
                labels: Some(BTreeMap::from([(KEY_LABEL.to_owned(), RETIRED.to_owned())])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        };
        let out = to_create(&secret, "new");
        assert_eq!(out.metadata.namespace.as_deref(), Some("new"));
        assert_eq!(out.metadata.uid, None);
        assert_eq!(label_value(&out), Some(RETIRED));
        assert_eq!(out.type_.as_deref(), Some(TLS_SECRET_TYPE));
        secret.metadata.labels = None;
        assert_eq!(label_value(&to_create(&secret, "new")), Some(ACTIVE));
    }

    #[test]
    fn config_maps_without_the_bundle_are_refused_and_other_text_is_not_a_config_map() {
        let err = config_map_bundle(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {other: x}\n",
        )
        .expect_err("no bundle");
        assert!(
            format!("{err:#}").contains("ConfigMap cm: no data.bundle.age"),
            "{err}"
        );
        assert!(
            config_map_bundle("apiVersion: v1\nkind: List\nitems: []\n")
                .expect("not a ConfigMap")
                .is_none()
        );
    }
}
