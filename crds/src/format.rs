//! Reading and writing objects as text, deterministically.
//!
//! A SealedSecret lives in Git, so the same object must always print as the same
//! bytes: otherwise every re-seal or merge shows up as a noisy diff. Output has every
//! object key sorted at every level, no `status` when there is none, and ends with one
//! newline. YAML output starts with `---`, as kubeseal's does, so several outputs can
//! be concatenated into one valid multi-document file.
//!
//! Input may hold several YAML documents, or several concatenated JSON values (what
//! `kubectl get -o json` piped through a loop produces); empty documents are skipped.
//! Parse errors point at the document, and for Secrets never quote a value.

use std::path::Path;

use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::object_ref;
use crate::{API_VERSION, Error, KIND, SealedSecret};

/// A text format for objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Pretty-printed JSON, the kubeseal default.
    Json,
    /// YAML, starting with `---`.
    Yaml,
}

impl Format {
    /// Guesses the format of `input`: JSON when the first non-blank character opens a
    /// JSON object or array, YAML otherwise. Used by `--merge-into` to write a file
    /// back in the format it was read in.
    pub fn detect(input: &str) -> Format {
        match input.trim_start().chars().next() {
            Some('{' | '[') => Format::Json,
            _ => Format::Yaml,
        }
    }

    /// The format a file name asks for, as kubeseal's `-w` reads it: `.yaml` and `.yml`
    /// mean YAML, `.json` means JSON, anything else says nothing.
    pub fn for_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Renders a SealedSecret in this format.
    pub fn render(self, sealed: &SealedSecret) -> String {
        match self {
            Format::Json => to_json(sealed),
            Format::Yaml => to_yaml(sealed),
        }
    }
}

/// A SealedSecret as pretty JSON with sorted keys and a trailing newline.
pub fn to_json(sealed: &SealedSecret) -> String {
    json_text(&sorted_value(sealed))
}

/// A SealedSecret as YAML with sorted keys, starting with `---` and ending with one
/// newline.
pub fn to_yaml(sealed: &SealedSecret) -> String {
    yaml_text(&sorted_value(sealed))
}

/// A Secret (for example the output of a recovery unseal) as pretty JSON with sorted
/// keys and a trailing newline.
pub fn secret_to_json(secret: &Secret) -> String {
    json_text(&sorted_value(secret))
}

/// A Secret as YAML with sorted keys, starting with `---`.
pub fn secret_to_yaml(secret: &Secret) -> String {
    yaml_text(&sorted_value(secret))
}

/// Splits `input` into its documents: several YAML documents separated by `---`, or
/// several concatenated JSON values. Empty documents (blank, comments only, or `null`)
/// are skipped.
pub fn parse_documents(input: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    match Format::detect(input) {
        Format::Json => {
            let stream = serde_json::Deserializer::from_str(input).into_iter::<Value>();
            for (i, doc) in stream.enumerate() {
                let doc = doc.map_err(|source| Error::ParseJson {
                    index: i + 1,
                    source,
                })?;
                if !doc.is_null() {
                    out.push(doc);
                }
            }
        }
        Format::Yaml => {
            for (i, doc) in serde_yaml_ng::Deserializer::from_str(input).enumerate() {
                let doc = Value::deserialize(doc).map_err(|source| Error::ParseYaml {
                    index: i + 1,
                    source,
                })?;
                if !doc.is_null() {
                    out.push(doc);
                }
            }
        }
    }
    Ok(out)
}

/// Reads a parsed document as a v1 Secret.
///
/// `kind` must be `Secret` and `apiVersion`, if present, `v1`. When a field has the
/// wrong shape the parser's message is withheld, because it can quote a secret value;
/// the error names the object and says what kind of problem it is.
pub fn secret_from_value(value: Value) -> Result<Secret, Error> {
    check_kind(&value, "Secret", "v1", "v1 Secret")?;
    let object = value_object_ref(&value);
    serde_json::from_value(value).map_err(|e| Error::InvalidObject {
        kind: "Secret",
        object,
        reason: format!(
            "a field has the wrong type or shape ({} error; details withheld because they may quote a secret value)",
            category(&e)
        ),
        source: None,
    })
}

/// Reads a parsed document as a `bitnami.com/v1alpha1` SealedSecret.
pub fn sealed_secret_from_value(value: Value) -> Result<SealedSecret, Error> {
    check_kind(
        &value,
        KIND,
        API_VERSION,
        "bitnami.com/v1alpha1 SealedSecret",
    )?;
    let object = value_object_ref(&value);
    serde_json::from_value(value).map_err(|source| Error::InvalidObject {
        kind: KIND,
        object,
        reason: source.to_string(),
        source: Some(source),
    })
}

fn check_kind(
    value: &Value,
    kind: &str,
    api_version: &str,
    expected: &'static str,
) -> Result<(), Error> {
    let Some(map) = value.as_object() else {
        return Err(Error::WrongKind {
            expected,
            reason: "it is not a mapping".to_owned(),
        });
    };
    let found_kind = map.get("kind").and_then(Value::as_str);
    if found_kind != Some(kind) {
        return Err(Error::WrongKind {
            expected,
            reason: match found_kind {
                Some(k) => format!("its kind is {k:?}"),
                None => "it has no kind".to_owned(),
            },
        });
    }
    match map.get("apiVersion") {
        None => Ok(()),
        Some(Value::String(v)) if v == api_version => Ok(()),
        Some(other) => Err(Error::WrongKind {
            expected,
            reason: format!("its apiVersion is {other}"),
        }),
    }
}

/// `namespace/name` read leniently out of an unparsed object, for error messages.
fn value_object_ref(value: &Value) -> String {
    let meta = value
        .get("metadata")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    object_ref(&meta)
}

/// The kind of a JSON error, as a word, without the message (which may quote input).
pub(crate) fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "eof",
    }
}

/// `obj` as a JSON value whose object keys are sorted at every level.
pub(crate) fn sorted_value<T: Serialize>(obj: &T) -> Value {
    // Kubernetes API types serialize to JSON infallibly: every map has string keys and
    // there are no floats, so an error here is a bug in a type definition.
    #[allow(clippy::expect_used)]
    let value = serde_json::to_value(obj).expect("Kubernetes objects always serialize to JSON");
    sort_keys(value)
}

/// Rebuilds every object with its keys in sorted order, whether or not `serde_json`
/// keeps insertion order in this build.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn json_text(value: &Value) -> String {
    // A `Value` always serializes: its maps have string keys.
    #[allow(clippy::expect_used)]
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value always serializes");
    text.push('\n');
    text
}

pub(crate) fn yaml_text(value: &Value) -> String {
    // A `Value` holds only strings, numbers, booleans, nulls, arrays and string-keyed
    // maps, all of which YAML can represent.
    #[allow(clippy::expect_used)]
    let body = serde_yaml_ng::to_string(value).expect("a JSON value always serializes as YAML");
    let mut text = String::with_capacity(body.len() + 4);
    text.push_str("---\n");
    text.push_str(&body);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
