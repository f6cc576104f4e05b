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
use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use sealant_crds::SealedSecret;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use zeroize::{Zeroize as _, Zeroizing};

use crate::files::{self, Limit};

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

/// Reads all of stdin, or the file, into a zeroizing buffer, up to
/// [`Limit::MANIFESTS`].
pub fn read_input(path: Option<&Path>) -> Result<Zeroizing<String>> {
    let bytes = match path {
        Some(path) => files::read(path, Limit::MANIFESTS)
            .with_context(|| format!("cannot read input file {}", path.display()))?,
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("(tty detected: expecting json/yaml k8s resource in stdin)");
            }
            files::read_stdin(Limit::MANIFESTS).context("cannot read stdin")?
        }
    };
    let text = std::str::from_utf8(&bytes).context("the input is not UTF-8")?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Splits the input into documents; empty documents are skipped. At least one is
/// required.
///
/// A mapping that repeats a key is an error naming the document, the mapping and the
/// key: YAML and JSON parsers keep the last value silently, so a Secret with two
/// `password:` lines would seal a value its author may not have meant.
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
    if let Some((index, duplicate)) = first_duplicate_key(input) {
        let label = documents.get(index.wrapping_sub(1)).map_or_else(
            || format!("document {index}"),
            |doc| doc.label().to_string(),
        );
        bail!("{label}: {duplicate}");
    }
    Ok(documents)
}

/// Refuses text whose YAML or JSON repeats a key in a mapping, naming the document by
/// position (among the non-empty ones), the mapping and the key. For readers that
/// parse by other means than [`parse`], which checks this itself. Text that does not
/// parse passes: the parser's own error is the one to report.
pub fn check_unique_keys(input: &str) -> Result<()> {
    match first_duplicate_key(input) {
        Some((index, duplicate)) => bail!("document {index}: {duplicate}"),
        None => Ok(()),
    }
}

/// The first mapping in the input that repeats a key, with the 1-based position of
/// its document among the non-empty ones. A parse error ends the walk quietly: the
/// parser that reads the text for real reports it.
fn first_duplicate_key(input: &str) -> Option<(usize, Duplicate)> {
    let mut index = 0;
    let mut visit = |check: KeyCheck| {
        if !check.null {
            index += 1;
        }
        check.duplicate.map(|duplicate| (index, duplicate))
    };
    match sealant_crds::Format::detect(input) {
        sealant_crds::Format::Json => serde_json::Deserializer::from_str(input)
            .into_iter::<KeyCheck>()
            .map_while(std::result::Result::ok)
            .find_map(&mut visit),
        sealant_crds::Format::Yaml => serde_yaml_ng::Deserializer::from_str(input)
            .map_while(|doc| KeyCheck::deserialize(doc).ok())
            .find_map(&mut visit),
    }
}

/// What a walk over one document found: whether it is empty, and the first mapping
/// that repeats a key. The walk builds nothing: scalars are skipped unread, and only
/// keys (never values) are kept, so no plaintext is copied.
struct KeyCheck {
    null: bool,
    duplicate: Option<Duplicate>,
}

/// A repeated key and where its mapping is, innermost segment first while the walk
/// unwinds.
#[derive(Debug)]
struct Duplicate {
    key: String,
    path_from_inside: Vec<Segment>,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = String::new();
        for segment in self.path_from_inside.iter().rev() {
            match segment {
                Segment::Key(key) if path.is_empty() => path.push_str(key),
                Segment::Key(key) => {
                    path.push('.');
                    path.push_str(key);
                }
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        write!(
            f,
            "the key {:?} appears more than once; give each key once",
            self.key
        )
    }
}

impl KeyCheck {
    fn clean() -> Self {
        Self {
            null: false,
            duplicate: None,
        }
    }

    /// Records `segment` on the way out of a nested duplicate.
    fn within(mut self, segment: Segment) -> Self {
        if let Some(duplicate) = self.duplicate.as_mut() {
            duplicate.path_from_inside.push(segment);
        }
        self
    }
}

impl<'de> Deserialize<'de> for KeyCheck {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyCheckVisitor)
    }
}

struct KeyCheckVisitor;

impl<'de> Visitor<'de> for KeyCheckVisitor {
    type Value = KeyCheck;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyCheck, E> {
        Ok(KeyCheck::clean())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyCheck, E> {
        Ok(KeyCheck::clean())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyCheck, E> {
        Ok(KeyCheck::clean())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyCheck, E> {
        Ok(KeyCheck::clean())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<KeyCheck, E> {
        Ok(KeyCheck::clean())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<KeyCheck, E> {
        Ok(KeyCheck::clean())
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyCheck, E> {
        Ok(KeyCheck {
            null: true,
            duplicate: None,
        })
    }

    fn visit_none<E: de::Error>(self) -> Result<KeyCheck, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<KeyCheck, D::Error> {
        KeyCheck::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<KeyCheck, D::Error> {
        KeyCheck::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyCheck, A::Error> {
        let mut found = None;
        let mut index = 0;
        while let Some(item) = seq.next_element::<KeyCheck>()? {
            if found.is_none() && item.duplicate.is_some() {
                found = Some(item.within(Segment::Index(index)));
            }
            index += 1;
        }
        Ok(found.unwrap_or_else(KeyCheck::clean))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyCheck, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<KeyCheck>()?;
            if found.is_some() {
                continue;
            }
            if seen.contains(&key) {
                found = Some(KeyCheck {
                    null: false,
                    duplicate: Some(Duplicate {
                        key,
                        path_from_inside: Vec::new(),
                    }),
                });
            } else if value.duplicate.is_some() {
                found = Some(value.within(Segment::Key(key)));
            } else {
                seen.insert(key);
            }
        }
        Ok(found.unwrap_or_else(KeyCheck::clean))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<KeyCheck, A::Error> {
        // A YAML tag (`!Thing value`); the parse into JSON values has refused it already.
        de::IgnoredAny.visit_enum(data).map(|_| KeyCheck::clean())
    }
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
    fn a_repeated_key_is_found_with_its_document_and_path() {
        let yaml = "a: 1\n---\n---\nkind: Secret\nstringData:\n  password: x\n  user: y\n  \
                    password: z\n";
        let (index, dup) = first_duplicate_key(yaml).expect("duplicate");
        assert_eq!(index, 2, "the empty document is not counted");
        assert_eq!(
            dup.to_string(),
            "stringData: the key \"password\" appears more than once; give each key once"
        );
        let json = r#"{"items": [{}, {"metadata": {"labels": {"a": "1", "a": "2"}}}]}"#;
        let (index, dup) = first_duplicate_key(json).expect("duplicate");
        assert_eq!(index, 1);
        assert!(
            dup.to_string()
                .starts_with("items[1].metadata.labels: the key \"a\""),
            "{dup}"
        );
        let top = first_duplicate_key("{\"kind\": \"Secret\", \"kind\": \"Secret\"}");
        assert_eq!(
            top.map(|(_, d)| d.to_string()).as_deref(),
            Some("the key \"kind\" appears more than once; give each key once")
        );
        assert!(first_duplicate_key("a: {b: 1}\nc: {b: 2}\n---\n[{x: 1}, {x: 2}]\n").is_none());
    }

    #[test]
    fn parse_refuses_a_repeated_key_naming_the_document_but_no_value() {
        let yaml = "kind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  \
                    password: hunter2\n  password: hunter3\n";
        let err = parse(yaml, "Secret").map(|_| ()).expect_err("duplicate");
        let text = format!("{err:#}");
        assert!(
            text.starts_with("document 1 (prod/db): stringData: the key \"password\""),
            "{text}"
        );
        assert!(!text.contains("hunter"), "{text}");
    }

    #[test]
    fn other_kinds_are_refused_with_their_kind() {
        let d = doc(1, serde_json::json!({"kind": "ConfigMap"}));
        let err = d.to_secret().expect_err("wrong kind").to_string();
        assert!(err.contains("ConfigMap"), "{err}");
    }
}
