//! Reading the input: one stream, many documents, each one named in errors.
//!
//! kubeseal takes exactly one object; sealant takes a whole multi-document YAML file
//! (or a stream of JSON values), so `kustomize build | sealant` works. With many
//! documents a bare "invalid type" is useless, so every error says which document it
//! is about, by position and by `namespace/name`, and which field is wrong:
//!
//! ```text
//! error: document 2 (prod/db): data.password: invalid base64 ...
//! ```
//!
//! The input text is plaintext (a Secret manifest), so it is held in a zeroizing
//! buffer, and parse errors of Secrets never quote values.

use std::fmt;
use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use sealant_crds::SealedSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::{Zeroize as _, Zeroizing};

/// One parsed input document and its 1-based position.
pub struct Document {
    /// 1-based position in the input.
    pub index: usize,
    /// The parsed object.
    pub value: Value,
}

impl Document {
    /// How errors name this document: `document 2 (prod/db)`.
    pub fn label(&self) -> DocumentLabel {
        let meta = &self.value["metadata"];
        DocumentLabel {
            index: self.index,
            namespace: meta["namespace"].as_str().map(str::to_owned),
            name: meta["name"].as_str().map(str::to_owned),
        }
    }

    /// Reads the document as a v1 Secret. Errors name the field but never a value.
    pub fn to_secret(&self) -> Result<Secret> {
        check_kind(&self.value, &["Secret"], "v1 Secret")?;
        typed::<Secret>(&self.value, false)
    }

    /// Reads the document as a SealedSecret.
    pub fn to_sealed_secret(&self) -> Result<SealedSecret> {
        check_kind(
            &self.value,
            &["SealedSecret"],
            "bitnami.com/v1alpha1 SealedSecret",
        )?;
        typed::<SealedSecret>(&self.value, true)
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        scrub_value(&mut self.value);
    }
}

/// `document N`, with `(namespace/name)` when the document says.
#[derive(Clone, Debug)]
pub struct DocumentLabel {
    index: usize,
    namespace: Option<String>,
    name: Option<String>,
}

impl fmt::Display for DocumentLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}", self.index)?;
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => write!(f, " ({ns}/{name})"),
            (None, Some(name)) => write!(f, " ({name})"),
            (Some(ns), None) => write!(f, " ({ns}/<no name>)"),
            (None, None) => Ok(()),
        }
    }
}

/// Reads all of stdin, or the file, into a zeroizing buffer.
pub fn read_input(path: Option<&Path>) -> Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::new());
    match path {
        Some(path) => {
            let mut file = std::fs::File::open(path)
                .with_context(|| format!("cannot open input file {}", path.display()))?;
            file.read_to_end(&mut bytes)
                .with_context(|| format!("cannot read input file {}", path.display()))?;
        }
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("(tty detected: expecting json/yaml k8s resource in stdin)");
            }
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
        }
    }
    let text = std::str::from_utf8(&bytes).context("the input is not UTF-8")?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Splits the input into documents; empty documents are skipped. At least one is
/// required.
pub fn parse(input: &str, what: &str) -> Result<Vec<Document>> {
    let values = sealant_crds::parse_documents(input)?;
    let documents: Vec<Document> = values
        .into_iter()
        .filter(|v| !v.is_null())
        .enumerate()
        .map(|(i, value)| Document {
            index: i + 1,
            value,
        })
        .collect();
    if documents.is_empty() {
        bail!("the input holds no {what}: expected YAML or JSON on stdin or in --secret-file");
    }
    Ok(documents)
}

fn check_kind(value: &Value, kinds: &[&str], expected: &str) -> Result<()> {
    if !value.is_object() {
        bail!("expected a {expected} object, found {}", json_type(value));
    }
    match value.get("kind") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(kind)) if kinds.contains(&kind.as_str()) => Ok(()),
        Some(Value::String(kind)) => bail!("expected kind {expected}, found kind {kind:?}"),
        Some(other) => bail!("kind: expected a string, found {}", json_type(other)),
    }
}

/// Deserializes with the path of the failing field. When the document may hold
/// plaintext (`!public`), the parser's own message is replaced by the field path and
/// a generic reason, because serde messages can quote the offending value.
fn typed<T: DeserializeOwned>(value: &Value, public: bool) -> Result<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(object) => Ok(object),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let reason = if public {
                inner.to_string()
            } else {
                classify(&inner)
            };
            if path == "." {
                bail!("{reason}");
            }
            bail!("{path}: {reason}");
        }
    }
}

/// A reason that never quotes input: what kind of value was wrong, not the value.
fn classify(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if text.starts_with("invalid type") {
        // "invalid type: string \"...\", expected ..." quotes the string; keep the
        // expectation only.
        match text.rsplit_once(", expected ") {
            Some((_, expected)) => format!("invalid type, expected {expected}"),
            None => "invalid type".to_owned(),
        }
    } else if text.contains("base64") || text.contains("Invalid") {
        "not valid base64".to_owned()
    } else if text.starts_with("missing field") || text.starts_with("unknown field") {
        text
    } else {
        "invalid value".to_owned()
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Wipes every string in a parsed document: input documents may be plaintext.
pub fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => map.values_mut().for_each(scrub_value),
        _ => {}
    }
}

/// Wipes the values of a Secret once it has been sealed or printed.
pub fn scrub_secret(secret: &mut Secret) {
    if let Some(data) = secret.data.as_mut() {
        data.values_mut().for_each(|v| v.0.zeroize());
    }
    if let Some(data) = secret.string_data.as_mut() {
        data.values_mut().for_each(|v| v.zeroize());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(index: usize, value: Value) -> Document {
        Document { index, value }
    }

    #[test]
    fn label_names_position_namespace_and_name() {
        let d = doc(
            2,
            serde_json::json!({"metadata": {"namespace": "prod", "name": "db"}}),
        );
        assert_eq!(d.label().to_string(), "document 2 (prod/db)");
        let d = doc(1, serde_json::json!({"metadata": {"name": "db"}}));
        assert_eq!(d.label().to_string(), "document 1 (db)");
        assert_eq!(
            doc(3, serde_json::json!({})).label().to_string(),
            "document 3"
        );
    }

    #[test]
    fn secret_parse_errors_name_the_field_but_not_the_value() {
        let d = doc(
            1,
            serde_json::json!({"kind": "Secret", "metadata": {"name": "x"},
                               "data": {"password": "hunter2!!not-base64"}}),
        );
        let err = format!("{:#}", d.to_secret().expect_err("bad base64"));
        assert!(err.contains("data.password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn other_kinds_are_refused_with_their_kind() {
        let d = doc(1, serde_json::json!({"kind": "ConfigMap"}));
        let err = d.to_secret().expect_err("wrong kind").to_string();
        assert!(err.contains("ConfigMap"), "{err}");
    }
}
