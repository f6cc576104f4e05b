//! Shared loaders for the known-answer data in `tests/testdata/`, written by
//! `gen_vectors.py` with Python's `cryptography` (an implementation independent of ours).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use sealant_keys::{Certificate, PrivateKey, Scope};
use serde::Deserialize;

/// `keys/tests/testdata`.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata")
}

/// One entry of `keys.json`.
#[derive(Debug, Deserialize)]
pub struct KeyInfo {
    pub pem: String,
    pub cert: String,
    pub bits: usize,
    pub encoding: String,
    pub fingerprint: String,
}

pub fn key_manifest() -> BTreeMap<String, KeyInfo> {
    let path = testdata().join("keys.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn read(file: &str) -> Vec<u8> {
    let path = testdata().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The private key called `name` in `keys.json` (`rsa2048-a`, `rsa4096`, ...).
pub fn key(name: &str) -> PrivateKey {
    PrivateKey::from_pem(&read(&format!("{name}.pem"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The certificate of the key called `name`.
pub fn cert(name: &str) -> Certificate {
    Certificate::from_pem(&read(&format!("{name}.crt.pem")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What a case says must happen when the blob is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Ok,
    Fail,
}

/// One `cases/*.json` file, decoded.
#[derive(Debug)]
pub struct Case {
    pub file: String,
    pub key: String,
    pub scope: Scope,
    pub namespace: String,
    pub name: String,
    pub plaintext: Vec<u8>,
    pub blob: Vec<u8>,
    pub expected: Expected,
    pub behaviour: String,
    pub description: String,
}

impl Case {
    /// The OAEP label the case is opened with.
    pub fn label(&self) -> Vec<u8> {
        self.scope.label(&self.namespace, &self.name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    key: String,
    scope: String,
    namespace: String,
    name: String,
    plaintext: String,
    blob: String,
    expected: Expected,
    behaviour: String,
    description: String,
}

/// Every `*.json` file of `testdata/<folder>`, sorted by file name, parsed as `T`,
/// with its file name (for messages). Panics naming the file on any error.
fn json_files<T: serde::de::DeserializeOwned>(folder: &str) -> Vec<(String, T)> {
    let dir = testdata().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("read_dir entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let file = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
            let raw = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            (file, raw)
        })
        .collect()
}

/// Every case file, sorted by file name.
pub fn cases() -> Vec<Case> {
    let b64 = base64::engine::general_purpose::STANDARD;
    json_files::<RawCase>("cases")
        .into_iter()
        .map(|(file, raw)| Case {
            scope: raw.scope.parse().unwrap_or_else(|e| panic!("{file}: {e}")),
            plaintext: b64
                .decode(&raw.plaintext)
                .unwrap_or_else(|e| panic!("{file}: {e}")),
            blob: b64
                .decode(&raw.blob)
                .unwrap_or_else(|e| panic!("{file}: {e}")),
            key: raw.key,
            namespace: raw.namespace,
            name: raw.name,
            expected: raw.expected,
            behaviour: raw.behaviour,
            description: raw.description,
            file,
        })
        .collect()
}

/// One `age/*.json` file, written by `gen_age_vectors.py`, decoded.
#[derive(Debug)]
pub struct AgeCase {
    pub file: String,
    /// The identity to open with (`None` for passphrase cases).
    pub identity: Option<sealant_keys::AgeIdentity>,
    /// That identity's recipient as Python computed it.
    pub recipient: Option<String>,
    /// The passphrase to open with (`None` for X25519 cases).
    pub passphrase: Option<String>,
    pub sealed_to: Vec<String>,
    /// `None` for passphrase cases (scope "none").
    pub scope: Option<Scope>,
    pub namespace: String,
    pub name: String,
    /// The label as Python computed it.
    pub label: Vec<u8>,
    pub plaintext: Vec<u8>,
    pub blob: Vec<u8>,
    pub expected: Expected,
    pub behaviour: String,
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgeCase {
    identity: Option<String>,
    recipient: Option<String>,
    passphrase: Option<String>,
    sealed_to: Vec<String>,
    scope: String,
    namespace: String,
    name: String,
    label: String,
    plaintext: String,
    blob: String,
    expected: Expected,
    behaviour: String,
    description: String,
}

/// Every age case file, sorted by file name.
pub fn age_cases() -> Vec<AgeCase> {
    let b64 = base64::engine::general_purpose::STANDARD;
    json_files::<RawAgeCase>("age")
        .into_iter()
        .map(|(file, raw)| {
            let decode = |s: &str| b64.decode(s).unwrap_or_else(|e| panic!("{file}: {e}"));
            AgeCase {
                identity: raw
                    .identity
                    .as_deref()
                    .map(|s| s.parse().unwrap_or_else(|e| panic!("{file}: {e}"))),
                recipient: raw.recipient,
                passphrase: raw.passphrase,
                sealed_to: raw.sealed_to,
                scope: (raw.scope != "none")
                    .then(|| raw.scope.parse().unwrap_or_else(|e| panic!("{file}: {e}"))),
                namespace: raw.namespace,
                name: raw.name,
                label: decode(&raw.label),
                plaintext: decode(&raw.plaintext),
                blob: decode(&raw.blob),
                expected: raw.expected,
                behaviour: raw.behaviour,
                description: raw.description,
                file,
            }
        })
        .collect()
}

/// The interpreter for the independent Python implementations (`$SEALANT_PYTHON`, or
/// `python3`), checked once to have `cryptography`; panics with instructions if not.
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = std::env::var("SEALANT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let how = "Install it with `python3 -m venv ~/.cache/sealant/venv && \
                   ~/.cache/sealant/venv/bin/pip install cryptography==48.0.0` and run the tests \
                   with SEALANT_PYTHON=~/.cache/sealant/venv/bin/python (scripts/test.sh does this \
                   for you)";
        let probe = Command::new(&python)
            .args(["-c", "import cryptography; print(cryptography.__version__)"])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run the Python interpreter {python:?} ($SEALANT_PYTHON): {e}. {how}")
            });
        assert!(
            probe.status.success(),
            "{python:?} has no `cryptography` package, which the interop tests need: {}. {how}",
            String::from_utf8_lossy(&probe.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
        python
    })
}

/// One `bundle/*.json` file (written by `gen_bundle_vectors.py`), decoded.
#[derive(Debug)]
pub struct BundleCase {
    pub file: String,
    pub identity: Option<String>,
    pub passphrase: Option<String>,
    pub bundle: Vec<u8>,
    pub plaintext: Vec<u8>,
    pub expected: Expected,
    pub description: String,
}

#[derive(Deserialize)]
struct RawBundleCase {
    identity: Option<String>,
    passphrase: Option<String>,
    file: String,
    plaintext: String,
    expected: Expected,
    description: String,
}

/// Every bundle case file, sorted by file name.
pub fn bundle_cases() -> Vec<BundleCase> {
    let b64 = base64::engine::general_purpose::STANDARD;
    json_files::<RawBundleCase>("bundle")
        .into_iter()
        .map(|(file, raw)| BundleCase {
            bundle: b64
                .decode(&raw.file)
                .unwrap_or_else(|e| panic!("{file}: {e}")),
            plaintext: b64
                .decode(&raw.plaintext)
                .unwrap_or_else(|e| panic!("{file}: {e}")),
            identity: raw.identity,
            passphrase: raw.passphrase,
            expected: raw.expected,
            description: raw.description,
            file,
        })
        .collect()
}

/// The exit code of `open_blob.py` and `open_age_blob.py` for "cannot decrypt" (2 is a
/// usage error).
pub const EXIT_CANNOT_DECRYPT: i32 = 1;

/// Fails unless the Python opener refused with "cannot decrypt" and printed no
/// plaintext.
pub fn assert_refused(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(EXIT_CANNOT_DECRYPT),
        "{what}: expected `cannot decrypt`, got {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: no plaintext may be printed on failure"
    );
}
