//! `--recovery-unseal`: open SealedSecrets offline with backed-up private keys.
//!
//! This is the disaster-recovery path: the cluster is gone, and what is left is the
//! Git repository and a key backup. The backup may be in any of the shapes people
//! actually have:
//!
//! - a PEM private key (PKCS#1 or PKCS#8);
//! - a key Secret, as YAML or JSON, with `tls.key` in `data` (base64) or `stringData`,
//!   and sealant's optional `age.key` (the key generation's age identity);
//! - a `List` of key Secrets, exactly what `kubectl get secret -l
//!   sealedsecrets.bitnami.com/sealed-secrets-key -o yaml` writes;
//! - several of these as documents of one file;
//! - an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments and blank lines
//!   allowed), as `sealant keygen-escrow` and `age-keygen` write it: it opens values
//!   sealed to its recipient with `--recipient`;
//! - an encrypted key bundle (an age file, ASCII-armored or binary, whose plaintext is
//!   a `List` of key Secrets), or a ConfigMap holding one under `data["bundle.age"]`,
//!   as the controller writes its escrow bundle.
//!
//! ```text
//!   pass 1: PEM keys, key Secrets, Lists, identity files ──▶ KeyRing (RSA + age)
//!   pass 2: bundles ──open with every age identity of pass 1 (or $SEALANT_BACKUP_PASSPHRASE)
//!                   ──▶ List of key Secrets ──▶ KeyRing
//! ```
//!
//! Bundles are opened last, so `--recovery-private-key bundle.age
//! --recovery-private-key escrow.key` works in either order. A passphrase-protected
//! bundle takes its passphrase from the environment variable
//! [`PASSPHRASE_ENV`], never from the command line (where `ps` would show it).
//!
//! A file is taken for an age identity file when its first line that is neither blank
//! nor a `#` comment starts with `AGE-` (no PEM, YAML or JSON key file does); its
//! errors name the line, never the key. Every error names the file (and the document
//! or `items[i]` in it), never key material: the bundle's decrypted text is never
//! quoted.
//!
//! Every key from every file goes into one [`KeyRing`]; each SealedSecret is opened
//! with whichever key sealed it, RSA or age, told apart per value by the age header.
//! A key Secret is read by the loader the controller uses too,
//! [`key_secret::read_entry`], as a backup ([`KeyReading::Backup`]): only `tls.key`
//! is needed, and the age identity is tied to its RSA key.
//! The output is plaintext, so it is built in zeroizing buffers and a `-w` file is
//! created with mode 0600.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Secret;
use sealant_crds::SealedSecret;
use sealant_crds::key_secret::{self, KeyReading, TLS_KEY};
use sealant_keys::{AgeIdentity, KeyRing, OffsetDateTime, PrivateKey, bundle};

use crate::passphrase::{PASSPHRASE_ENV, passphrase};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::args::Format;
use crate::documents::{self, Document};
use crate::files::{self, Limit};
use crate::output;

/// Reads every key from every file: key files and identity files first, then the
/// encrypted bundles, opened with the age identities found so far.
pub fn load_keys(paths: &[impl AsRef<Path>]) -> Result<KeyRing> {
    // No key file is not an error here, as with kubeseal: each SealedSecret then
    // fails with "no key could decrypt secret", which the caller explains.
    let mut ring = KeyRing::new();
    let mut bundles = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let context = || format!("--recovery-private-key {}", path.display());
        if let Some(bundle) = load_file(&mut ring, path).with_context(context)? {
            bundles.push((path, bundle));
        }
    }
    for (path, bundle) in bundles {
        load_bundle(&mut ring, &bundle)
            .with_context(|| format!("--recovery-private-key {}", path.display()))?;
    }
    Ok(ring)
}

/// Loads the keys of one file, or returns the bundle it holds for the second pass.
fn load_file(ring: &mut KeyRing, path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let bytes = files::read(path, Limit::MANIFESTS).context("cannot read the file")?;
    if bundle::is_encrypted(&bytes) {
        return Ok(Some(bytes));
    }
    if let Ok(key) = PrivateKey::from_pem(&bytes) {
        ring.insert(key, OffsetDateTime::UNIX_EPOCH);
        return Ok(None);
    }
    const NOT_A_KEY: &str = "not a PEM private key, a key Secret, a List of key Secrets (YAML \
                             or JSON), an age identity file or an encrypted key bundle";
    let text = std::str::from_utf8(&bytes).context(NOT_A_KEY)?;
    if is_age_identity_file(text) {
        for identity in AgeIdentity::parse_file(text)? {
            ring.insert_age(identity, OffsetDateTime::UNIX_EPOCH, None);
        }
        return Ok(None);
    }
    let docs = documents::parse(text, "private key").context(NOT_A_KEY)?;
    if docs.iter().any(|doc| !doc.value.is_object()) {
        bail!(NOT_A_KEY);
    }
    if let [doc] = docs.as_slice()
        && let Some(bundle) =
            key_secret::escrow_bundle_in(&doc.value).with_context(|| doc.label().to_string())?
    {
        return Ok(Some(Zeroizing::new(bundle.as_bytes().to_vec())));
    }
    let mut found = 0;
    for doc in &docs {
        found += load_document(ring, doc).with_context(|| doc.label().to_string())?;
    }
    if found == 0 {
        bail!("no private key found");
    }
    Ok(None)
}

/// Decrypts a key bundle and loads every key Secret in it.
fn load_bundle(ring: &mut KeyRing, file: &[u8]) -> Result<()> {
    let plaintext = if bundle::is_passphrase_protected(file) {
        let passphrase = passphrase(None)?.with_context(|| {
            format!("a passphrase-protected key bundle: set {PASSPHRASE_ENV} to its passphrase")
        })?;
        bundle::open_with_passphrase(&passphrase, file).map_err(|_| {
            anyhow!("cannot decrypt the key bundle with the passphrase in {PASSPHRASE_ENV}")
        })?
    } else {
        let identities: Vec<AgeIdentity> = ring
            .iter_age()
            .map(|entry| entry.identity.clone())
            .collect();
        if identities.is_empty() {
            bail!(
                "an encrypted key bundle, and no age identity to open it: give the identity \
                 file it is sealed to (for example the escrow key) as another \
                 --recovery-private-key"
            );
        }
        bundle::open(&identities, file).map_err(|_| {
            anyhow!(
                "cannot decrypt the key bundle with any of the {} age identities given",
                identities.len()
            )
        })?
    };
    let text = std::str::from_utf8(plaintext.expose_secret())
        .map_err(|_| anyhow!("the decrypted key bundle is not UTF-8 text"))?;
    let mut secrets = key_secret::parse_key_list(text).map_err(|err| match err {
        // These name kinds and positions only; parser errors could quote key material.
        sealant_crds::Error::WrongKind { .. } => anyhow!("the decrypted key bundle: {err}"),
        _ => anyhow!("the decrypted key bundle is not a YAML or JSON List of key Secrets"),
    })?;
    let result = secrets.iter().enumerate().try_for_each(|(i, secret)| {
        insert_secret_key(ring, secret).with_context(|| {
            format!(
                "the decrypted key bundle, items[{i}] ({})",
                key_secret::object_ref(&secret.metadata)
            )
        })
    });
    secrets.iter_mut().for_each(documents::scrub_secret);
    result?;
    if secrets.is_empty() {
        bail!("the decrypted key bundle holds no key Secret");
    }
    Ok(())
}

/// True when the first line that is neither blank nor a `#` comment starts with
/// `AGE-` (any case): an age identity file, and never a PEM, YAML or JSON key file.
fn is_age_identity_file(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .is_some_and(|line| {
            line.get(..4)
                .is_some_and(|start| start.eq_ignore_ascii_case("AGE-"))
        })
}

/// Loads the key of a Secret, or of every Secret of a `List`. Returns how many.
fn load_document(ring: &mut KeyRing, doc: &Document) -> Result<usize> {
    if is_list(&doc.value) {
        let items = doc.value["items"]
            .as_array()
            .context("items: expected a list of key Secrets")?;
        for (i, item) in items.iter().enumerate() {
            let item_doc = Document {
                index: i + 1,
                value: item.clone(),
            };
            let secret = item_doc
                .to_secret()
                .and_then(|secret| insert_secret_key(ring, &secret))
                .with_context(|| format!("items[{i}]"));
            secret?;
        }
        return Ok(items.len());
    }
    let secret = doc.to_secret()?;
    insert_secret_key(ring, &secret)?;
    Ok(1)
}

/// A list of key Secrets: `kind: List` (kubectl), `kind: SecretList`, or no kind with
/// an `items` array (what Go's client writes when it marshals a typed list, as
/// Bitnami's integration suite does for its key backup).
fn is_list(value: &Value) -> bool {
    match value.get("kind").and_then(Value::as_str) {
        Some(kind) => kind == "List" || kind == "SecretList",
        None => value.get("items").is_some_and(Value::is_array),
    }
}

/// Loads a key Secret's RSA key and, when it has one, its `age.key` identity, tied to
/// that RSA key: [`key_secret::read_entry`], reading a backup. A missing or unreadable
/// `tls.crt` is tolerated (hand-made backups); it only orders the keys. An unreadable
/// `age.key` refuses the Secret.
fn insert_secret_key(ring: &mut KeyRing, secret: &Secret) -> Result<()> {
    let (entry, age_error) =
        key_secret::read_entry(secret, KeyReading::Backup).map_err(tls_key_error)?;
    if let Some(err) = age_error {
        return Err(err.into());
    }
    entry.insert_into(ring);
    Ok(())
}

/// Recovery's words for a `tls.key` that is missing or unreadable: the caller's
/// context already names the file and the document.
fn tls_key_error(err: sealant_crds::Error) -> anyhow::Error {
    match err {
        sealant_crds::Error::KeySecretMissingField { .. } => {
            anyhow!("the secret has no {TLS_KEY} in data or stringData")
        }
        sealant_crds::Error::KeySecret { source, .. } => {
            anyhow::Error::new(source).context(format!("data.{TLS_KEY}"))
        }
        other => other.into(),
    }
}

/// Opens every SealedSecret of the input and renders the Secrets.
pub fn unseal_documents(
    docs: &[Document],
    ring: &KeyRing,
    format: Format,
) -> Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::new());
    for doc in docs {
        let label = doc.label();
        let mut secret = doc
            .to_sealed_secret()
            .and_then(|sealed| unseal(&sealed, ring))
            .with_context(|| label.to_string())?;
        let rendered = Zeroizing::new(match format {
            Format::Json => sealant_crds::secret_to_json(&secret),
            Format::Yaml => sealant_crds::secret_to_yaml(&secret),
        });
        documents::scrub_secret(&mut secret);
        out.push_str(&output::normalize(rendered, format));
    }
    Ok(out)
}

/// Unseals one SealedSecret. A cluster-wide one may have no namespace (as kubeseal and
/// sealant write them, to be applied anywhere); its Secret is printed without one.
fn unseal(sealed: &SealedSecret, ring: &KeyRing) -> Result<Secret> {
    Ok(sealant_crds::unseal(sealed, ring, None)?.into_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_key_secrets_are_recognised_with_or_without_a_kind() {
        use serde_json::json;
        assert!(is_list(&json!({"kind": "List", "items": []})));
        assert!(is_list(&json!({"kind": "SecretList", "items": []})));
        assert!(is_list(&json!({"metadata": {}, "items": [{}]})));
        assert!(!is_list(&json!({"kind": "Secret", "items": []})));
        assert!(!is_list(&json!({"metadata": {}, "data": {}})));
        assert!(!is_list(&json!({"items": "not a list"})));
    }

    #[test]
    fn age_identity_files_are_told_from_pem_and_yaml_key_files() {
        assert!(is_age_identity_file(
            "# created: 2025-01-01T00:00:00Z\n# public key: age1x\n\nAGE-SECRET-KEY-1ABC\n"
        ));
        assert!(is_age_identity_file("age-secret-key-1abc"));
        assert!(is_age_identity_file("AGE-PLUGIN-YUBIKEY-1X\n"));
        assert!(!is_age_identity_file("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(!is_age_identity_file(
            "# AGE-SECRET-KEY-1 in a comment\napiVersion: v1\n"
        ));
        assert!(!is_age_identity_file("{\"kind\": \"List\"}"));
        assert!(!is_age_identity_file("# only comments\n"));
    }
}
