//! `sealant reencrypt PATH...`: move every SealedSecret of a Git checkout to a new key,
//! offline, with the recovery keys of the old one.
//!
//! This is what follows a disaster recovery or a key compromise: the old controller
//! (and its keys) are gone or must go, a new cluster has a new certificate, and the
//! repository is full of values sealed to the old key. `kubeseal --re-encrypt` needs the
//! old controller running; this needs only its key backup.
//!
//! ```text
//!   PATH... ─walk─▶ *.yaml *.yml *.json ─split─▶ documents ─▶ SealedSecrets (also in Lists)
//!     each spec.encryptedData value ─found exactly once in its document's text?
//!       ─KeyRing::open(label from the object's own metadata)─▶ plaintext
//!       ─already sealed to the target certificate? ─yes─▶ unchanged (unless --force)
//!                                                   └no──▶ seal to --cert / --recipient
//!   plan complete, no failure ─▶ replace only the old base64 strings ─▶ re-parse and check
//!     ─▶ --dry-run: print the plan       otherwise: write each changed file atomically
//! ```
//!
//! Guarantees:
//! - a file's bytes change only where an old ciphertext stood: comments, indentation,
//!   key order, quoting and the other documents stay byte-identical, so the Git diff
//!   shows the ciphertext lines and nothing else. A value that is not found verbatim
//!   exactly once in its document's text (say, a folded multi-line scalar) stops the
//!   run with an error that names it;
//! - every rewritten document is parsed again and must equal the old one with just the
//!   new ciphertexts in place, or nothing is written;
//! - nothing is written unless every value of every file could be opened: failures are
//!   listed all together (file, object, key), coarse, as unsealing errors are;
//! - each changed file is replaced atomically (temporary file beside it, then rename)
//!   and keeps its permissions; a symlinked file given on the command line is written
//!   through the link;
//! - a value keeps its scope: it is sealed again under the same label, taken from the
//!   SealedSecret's own name, namespace and scope annotations, as the controller does;
//! - plaintext lives only in zeroizing buffers, between opening a value and sealing it
//!   again.
//!
//! Directories are walked recursively in name order; inside them only `*.yaml`,
//! `*.yml` and `*.json` files that mention `SealedSecret` are read, hidden directories
//! (`.git`) and symlinks are skipped, and such a file that is not YAML or JSON (a Helm
//! template, say) is skipped with a warning. A file named on the command line is always
//! read, and must parse.
//!
//! A value whose opening key already is the target certificate's key is left as it is,
//! so a second run changes nothing; `--force` seals it again anyway. With age
//! recipients as the target, a value is left as it is only when the target is one
//! recipient, the value's identity is that recipient's, and the value has exactly one
//! recipient stanza (an age file does not say who its other recipients are).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::ByteString;
use sealant_crds::{API_VERSION, Format, KIND, SealedSecret, Sealer};
use sealant_keys::{AgeRecipient, Certificate, KeyRing, Opened, age_envelope};
use serde_json::Value;

pub use crate::args::reencrypt::ReencryptArgs;
use crate::recipients::SealingKey;
use crate::recovery;
use crate::{documents, files, output};

/// Runs `sealant reencrypt`.
pub fn run(args: &ReencryptArgs) -> Result<()> {
    let candidates = collect(&args.paths)?;
    let ring = recovery::load_keys(&args.recovery_private_key)?;
    args.to.cluster.refuse_namespace(
        "sealant reencrypt",
        "each SealedSecret keeps its own namespace and scope",
    )?;
    let key = SealingKey::load(&args.to)?;
    let target = Target::new(&key);

    let mut plans = Vec::new();
    for candidate in &candidates {
        if let Some(plan) = FilePlan::read(candidate)? {
            plans.push(plan);
        }
    }

    let mut failures = Vec::new();
    for plan in &mut plans {
        plan.open(&ring, &target, args.force, args.dry_run, &mut failures)?;
    }
    if !failures.is_empty() {
        let mut msg = format!(
            "cannot decrypt {} value{} with the recovery keys given; nothing was written:",
            failures.len(),
            plural(failures.len())
        );
        for failure in &failures {
            let _ = write!(msg, "\n  {failure}");
        }
        bail!(msg);
    }

    let summary = Summary::of(&plans);
    if args.dry_run {
        let mut out = String::new();
        for plan in &plans {
            plan.describe(&mut out);
        }
        summary.describe(&mut out);
        return output::write_stdout(out.as_bytes());
    }

    let mut rewritten = Vec::new();
    for plan in &plans {
        if let Some(text) = plan.rewrite()? {
            rewritten.push((plan, text));
        }
    }
    for (plan, text) in &rewritten {
        files::write_public(&plan.write_to, text.as_bytes())?;
        let (objects, resealed, unchanged) = plan.counts();
        eprintln!(
            "{}: re-sealed {resealed} value{} in {objects} SealedSecret{}{}",
            plan.path.display(),
            plural(resealed),
            plural(objects),
            if unchanged > 0 {
                format!(" ({unchanged} unchanged)")
            } else {
                String::new()
            }
        );
    }
    if plans.is_empty() {
        eprintln!("no SealedSecret found in the paths given; nothing to do");
    } else if rewritten.is_empty() {
        eprintln!(
            "nothing to re-seal: {} value{} in {} file{} already sealed to the target",
            summary.values,
            plural(summary.values),
            summary.files,
            plural(summary.files)
        );
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What the values are sealed to, and how to tell a value already sealed to it.
struct Target<'a> {
    sealer: Sealer<'a>,
    kind: TargetKind<'a>,
}

enum TargetKind<'a> {
    Certificate(&'a Certificate),
    Recipients(&'a [AgeRecipient]),
}

impl<'a> Target<'a> {
    fn new(key: &'a SealingKey) -> Self {
        let kind = match key {
            SealingKey::Certificate(cert) => TargetKind::Certificate(cert),
            SealingKey::Recipients(recipients) => TargetKind::Recipients(recipients),
        };
        Self {
            sealer: key.sealer(),
            kind,
        }
    }

    /// True when the value `blob`, opened as `opened`, is already sealed to the target.
    fn holds(&self, opened: &Opened, blob: &[u8]) -> bool {
        match (&self.kind, &opened.age) {
            (TargetKind::Certificate(cert), None) => &opened.fingerprint == cert.fingerprint(),
            (TargetKind::Recipients([only]), Some(recipient)) => {
                only == recipient && age_envelope::recipient_stanzas(blob) == 1
            }
            _ => false,
        }
    }
}

/// A file to read, and whether it was named on the command line.
struct Candidate {
    path: PathBuf,
    explicit: bool,
}

/// Every file under `paths`, each once, in the order given (directories in name order).
fn collect(paths: &[PathBuf]) -> Result<Vec<Candidate>> {
    let mut found = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut found)?;
        } else {
            found.push(Candidate {
                path: path.clone(),
                explicit: true,
            });
        }
    }
    let mut seen = BTreeMap::new();
    let mut unique: Vec<Candidate> = Vec::new();
    for candidate in found {
        let real = std::fs::canonicalize(&candidate.path)
            .with_context(|| format!("cannot resolve {}", candidate.path.display()))?;
        match seen.get(&real) {
            Some(&at) => {
                let earlier: &mut Candidate = &mut unique[at];
                earlier.explicit |= candidate.explicit;
            }
            None => {
                seen.insert(real, unique.len());
                unique.push(candidate);
            }
        }
    }
    Ok(unique)
}

/// Adds the YAML and JSON files under `dir`, recursively, skipping hidden directories
/// and symlinks.
fn walk(dir: &Path, found: &mut Vec<Candidate>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if !name.starts_with('.') {
                walk(&path, found)?;
            }
        } else if kind.is_file() && Format::for_path(&path).is_some() {
            found.push(Candidate {
                path,
                explicit: false,
            });
        }
    }
    Ok(())
}

/// One file's SealedSecrets and what is to be done with each value.
struct FilePlan {
    /// The path as given or found, for messages.
    path: PathBuf,
    /// The real file, written through any symlink.
    write_to: PathBuf,
    text: String,
    segments: Vec<Segment>,
}

/// A piece of a file's text: one document and the separators before it, or only
/// separators and comments. Segments cover the whole text, in order.
struct Segment {
    range: Range<usize>,
    /// The document, when the segment holds one, with its 1-based position.
    doc: Option<(usize, Value)>,
    objects: Vec<ObjectPlan>,
}

/// One SealedSecret.
struct ObjectPlan {
    /// `document 2`, or `document 1, items[3]`.
    position: String,
    /// `document 2 (prod/db)`, or `document 1, items[3] (prod/db)`: how errors name it.
    label: String,
    /// `namespace/name`.
    object: String,
    /// Where it sits: `None` for the document itself, `Some(i)` for `items[i]`.
    item: Option<usize>,
    sealed: SealedSecret,
    values: Vec<ValuePlan>,
}

/// One `spec.encryptedData` value.
struct ValuePlan {
    key: String,
    /// Its offset in the segment's text.
    at: usize,
    /// The old base64 text.
    old: String,
    /// Set once the value is opened.
    outcome: Option<Outcome>,
}

/// What opening a value found, and what is done with it.
struct Outcome {
    /// How the plan names the key that opened it.
    opener: String,
    /// The new base64 text; `None` when the value stays as it is (or in a dry run).
    new: Option<String>,
    reseal: bool,
}

impl FilePlan {
    /// Reads a file and finds its SealedSecrets; `None` when it holds none. A file found
    /// by walking a directory is read only when its text mentions `SealedSecret`, and
    /// skipped with a warning when it then does not parse.
    fn read(candidate: &Candidate) -> Result<Option<Self>> {
        let path = &candidate.path;
        let mut bytes = files::read(path, files::Limit::MANIFESTS)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mentions_kind = bytes.windows(KIND.len()).any(|w| w == KIND.as_bytes());
        if !candidate.explicit && !mentions_kind {
            return Ok(None);
        }
        let parsed = String::from_utf8(std::mem::take(&mut *bytes))
            .map_err(|_| anyhow::anyhow!("not UTF-8 text"))
            .and_then(|text| {
                let segments = split(&text)?;
                Ok((text, segments))
            });
        let (text, segments) = match parsed {
            Ok(parsed) => parsed,
            Err(err) if candidate.explicit => {
                return Err(err.context(format!("cannot parse {}", path.display())));
            }
            Err(err) => {
                eprintln!(
                    "warning: skipping {}: it mentions SealedSecret but is not YAML or JSON \
                     ({err}); re-encrypt its values by hand",
                    path.display()
                );
                return Ok(None);
            }
        };
        let mut plan = Self {
            path: path.clone(),
            write_to: std::fs::canonicalize(path)
                .with_context(|| format!("cannot resolve {}", path.display()))?,
            text,
            segments,
        };
        for segment in &mut plan.segments {
            let Some((index, value)) = &segment.doc else {
                continue;
            };
            let seg_text = &plan.text[segment.range.clone()];
            segment.objects = find_objects(*index, value, seg_text)
                .with_context(|| path.display().to_string())?;
        }
        if plan.segments.iter().all(|s| s.objects.is_empty()) {
            return Ok(None);
        }
        Ok(Some(plan))
    }

    /// Opens every value; a value that fails is added to `failures`. Values are sealed
    /// to the target at once, so plaintext lives no longer than one value (not in a dry
    /// run, which seals nothing).
    fn open(
        &mut self,
        ring: &KeyRing,
        target: &Target<'_>,
        force: bool,
        dry_run: bool,
        failures: &mut Vec<String>,
    ) -> Result<()> {
        for object in self.segments.iter_mut().flat_map(|s| s.objects.iter_mut()) {
            // The label the values are bound to, by the one rule in crds; re-sealing
            // binds the new values to the same scope, name and namespace.
            let (scope, label) = object
                .sealed
                .scope_label()
                .with_context(|| format!("{}: {}", self.path.display(), object.label))?;
            let namespace = object.sealed.metadata.namespace.clone().unwrap_or_default();
            let name = object.sealed.metadata.name.clone().unwrap_or_default();
            let mut hint = None;
            for value in &mut object.values {
                let field = format!("spec.encryptedData.{}", value.key);
                let blob = decode(&value.old).with_context(|| {
                    format!(
                        "{}: {}: {field} is not valid base64",
                        self.path.display(),
                        object.label
                    )
                })?;
                let Ok(opened) = ring.open(&blob, &label, hint.as_ref()) else {
                    failures.push(format!(
                        "{}: {}: {field}",
                        self.path.display(),
                        object.label
                    ));
                    continue;
                };
                let reseal = force || !target.holds(&opened, &blob);
                let new = if reseal && !dry_run {
                    let sealed = sealant_crds::seal_value(
                        target.sealer,
                        opened.plaintext.expose_secret(),
                        scope,
                        &namespace,
                        &name,
                    )
                    .with_context(|| {
                        format!("{}: {}: {field}", self.path.display(), object.label)
                    })?;
                    Some(sealed)
                } else {
                    None
                };
                value.outcome = Some(Outcome {
                    opener: opener_name(&opened),
                    new,
                    reseal,
                });
                hint = Some(opened.fingerprint);
            }
        }
        Ok(())
    }

    /// The new text, or `None` when no value changes. Every changed document is parsed
    /// again and checked against what was meant.
    fn rewrite(&self) -> Result<Option<String>> {
        let mut out = String::with_capacity(self.text.len());
        let mut changed = false;
        for segment in &self.segments {
            let old = &self.text[segment.range.clone()];
            let mut edits: Vec<(usize, &ValuePlan, &str)> = segment
                .objects
                .iter()
                .flat_map(|o| o.values.iter())
                .filter_map(|v| {
                    let new = v.outcome.as_ref()?.new.as_deref()?;
                    Some((v.at, v, new))
                })
                .collect();
            if edits.is_empty() {
                out.push_str(old);
                continue;
            }
            changed = true;
            edits.sort_by_key(|(at, _, _)| *at);
            let mut text = String::with_capacity(old.len() + 1024);
            let mut pos = 0;
            for (at, value, new) in edits {
                text.push_str(&old[pos..at]);
                text.push_str(new);
                pos = at + value.old.len();
            }
            text.push_str(&old[pos..]);
            self.check(segment, &text)?;
            out.push_str(&text);
        }
        Ok(changed.then_some(out))
    }

    /// Checks that `new_text` parses to exactly the segment's document with the new
    /// ciphertexts in place.
    fn check(&self, segment: &Segment, new_text: &str) -> Result<()> {
        let Some((index, old)) = &segment.doc else {
            return Ok(());
        };
        let mut expected = old.clone();
        for object in &segment.objects {
            let target = match object.item {
                Some(i) => &mut expected["items"][i],
                None => &mut expected,
            };
            for value in &object.values {
                if let Some(new) = value.outcome.as_ref().and_then(|o| o.new.as_deref()) {
                    target["spec"]["encryptedData"][&value.key] = Value::String(new.to_owned());
                }
            }
        }
        let parsed = parse_one(new_text).ok().flatten();
        if parsed.as_ref() != Some(&expected) {
            bail!(
                "{}: document {index}: replacing the ciphertexts in the text would change \
                 more than the values; nothing was written",
                self.path.display()
            );
        }
        Ok(())
    }

    /// SealedSecrets, values re-sealed, values unchanged.
    fn counts(&self) -> (usize, usize, usize) {
        let objects = self.segments.iter().flat_map(|s| s.objects.iter());
        let values = || {
            self.segments
                .iter()
                .flat_map(|s| s.objects.iter())
                .flat_map(|o| o.values.iter())
                .filter_map(|v| v.outcome.as_ref())
        };
        let resealed = values().filter(|o| o.reseal).count();
        let unchanged = values().filter(|o| !o.reseal).count();
        (objects.count(), resealed, unchanged)
    }

    /// The dry-run plan of this file.
    fn describe(&self, out: &mut String) {
        let _ = writeln!(out, "{}", self.path.display());
        for object in self.segments.iter().flat_map(|s| s.objects.iter()) {
            let _ = writeln!(
                out,
                "  SealedSecret {} ({})",
                object.object, object.position
            );
            for value in &object.values {
                let Some(outcome) = &value.outcome else {
                    continue;
                };
                let action = if outcome.reseal {
                    "re-seal"
                } else {
                    "unchanged"
                };
                let _ = writeln!(
                    out,
                    "    {}: {action} (opened with {})",
                    value.key, outcome.opener
                );
            }
        }
    }
}

/// How the plan names the key that opened a value: the RSA fingerprint; for age, the
/// key generation's fingerprint or the identity's recipient, marked `(age)`.
fn opener_name(opened: &Opened) -> String {
    match &opened.age {
        None => opened.fingerprint.to_string(),
        Some(recipient) if opened.fingerprint.as_str() == recipient.to_string() => {
            format!("{recipient} (age)")
        }
        Some(_) => format!("{} (age)", opened.fingerprint),
    }
}

/// The whole run, for the dry-run summary.
struct Summary {
    files: usize,
    objects: usize,
    values: usize,
    resealed: usize,
    by_key: BTreeMap<String, usize>,
}

impl Summary {
    fn of(plans: &[FilePlan]) -> Self {
        let mut summary = Self {
            files: plans.len(),
            objects: 0,
            values: 0,
            resealed: 0,
            by_key: BTreeMap::new(),
        };
        for plan in plans {
            for object in plan.segments.iter().flat_map(|s| s.objects.iter()) {
                summary.objects += 1;
                for outcome in object.values.iter().filter_map(|v| v.outcome.as_ref()) {
                    summary.values += 1;
                    summary.resealed += usize::from(outcome.reseal);
                    *summary.by_key.entry(outcome.opener.clone()).or_default() += 1;
                }
            }
        }
        summary
    }

    fn describe(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{} file{}, {} SealedSecret{}, {} value{}: {} to re-seal, {} unchanged",
            self.files,
            plural(self.files),
            self.objects,
            plural(self.objects),
            self.values,
            plural(self.values),
            self.resealed,
            self.values - self.resealed
        );
        if !self.by_key.is_empty() {
            let _ = writeln!(out, "opened with:");
        }
        for (key, count) in &self.by_key {
            let _ = writeln!(out, "  {key}: {count} value{}", plural(*count));
        }
    }
}

/// Standard base64, as `spec.encryptedData` holds it.
fn decode(text: &str) -> Result<Vec<u8>> {
    let bytes: ByteString = serde_json::from_value(Value::String(text.to_owned()))?;
    Ok(bytes.0)
}

/// The SealedSecrets of one document (itself, or the items of a `List`), each value
/// located in `text`.
fn find_objects(index: usize, doc: &Value, text: &str) -> Result<Vec<ObjectPlan>> {
    let mut found = Vec::new();
    if doc.get("kind").and_then(Value::as_str) == Some("List")
        && let Some(items) = doc.get("items").and_then(Value::as_array)
    {
        for (i, item) in items.iter().enumerate() {
            if is_sealed_secret(item) {
                found.push((Some(i), item));
            }
        }
    } else if is_sealed_secret(doc) {
        found.push((None, doc));
    }
    let mut objects = Vec::new();
    for (item, value) in found {
        let position = match item {
            Some(i) => format!("document {index}, items[{i}]"),
            None => format!("document {index}"),
        };
        let sealed = sealant_crds::sealed_secret_from_value(value.clone())
            .with_context(|| position.clone())?;
        let object = display_ref(&sealed);
        let label = format!("{position} ({object})");
        if sealed.spec.data.is_some() {
            bail!(
                "{label}: SealedSecret {object} uses the deprecated spec.data, which cannot be \
                 re-encrypted offline; re-create it from its Secret (unseal it with \
                 --recovery-unseal, then seal it again)"
            );
        }
        let mut values = Vec::new();
        for (key, old) in &sealed.spec.encrypted_data {
            if old.is_empty() {
                bail!("{label}: spec.encryptedData.{key} is empty");
            }
            let mut hits = text.match_indices(old.as_str()).map(|(at, _)| at);
            let (Some(at), None) = (hits.next(), hits.next()) else {
                bail!(
                    "{label}: spec.encryptedData.{key}: the value is not written verbatim \
                     exactly once in the document's text (a folded or multi-line scalar, \
                     or a value repeated); write it on one line and run again"
                );
            };
            values.push(ValuePlan {
                key: key.clone(),
                at,
                old: old.clone(),
                outcome: None,
            });
        }
        objects.push(ObjectPlan {
            position,
            label,
            object,
            item,
            sealed,
            values,
        });
    }
    Ok(objects)
}

fn is_sealed_secret(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some(KIND)
        && value.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
}

/// `namespace/name`, or `name` for a SealedSecret without a namespace.
fn display_ref(sealed: &SealedSecret) -> String {
    match sealed.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => sealed.object_ref(),
        _ => sealed
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| "<none>".to_owned()),
    }
}

/// Splits a file into segments that cover it: JSON values as the JSON parser ends
/// them, YAML documents at their `---` and `...` lines (which YAML forbids inside a
/// document's content, so the split is exact).
fn split(text: &str) -> Result<Vec<Segment>> {
    documents::check_unique_keys(text)?;
    let mut segments = Vec::new();
    let mut index = 0;
    let mut push = |range: Range<usize>, value: Option<Value>| {
        let doc = value.filter(|v| !v.is_null()).map(|v| {
            index += 1;
            (index, v)
        });
        segments.push(Segment {
            range,
            doc,
            objects: Vec::new(),
        });
    };
    if Format::detect(text) == Format::Json {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut start = 0;
        let mut n = 0;
        while let Some(value) = stream.next() {
            n += 1;
            let value = value.map_err(|e| anyhow::anyhow!("JSON value {n}: {e}"))?;
            let end = stream.byte_offset();
            push(start..end, Some(value));
            start = end;
        }
        push(start..text.len(), None);
        return Ok(segments);
    }
    let mut start = 0;
    let mut pos = 0;
    let mut bounds = Vec::new();
    for line in text.split_inclusive('\n') {
        let end = pos + line.len();
        if is_marker(line, "---") && pos > start {
            bounds.push(start..pos);
            start = pos;
        } else if is_marker(line, "...") {
            bounds.push(start..end);
            start = end;
        }
        pos = end;
    }
    if start < text.len() || bounds.is_empty() {
        bounds.push(start..text.len());
    }
    for range in bounds {
        let line = text[..range.start].matches('\n').count() + 1;
        let value = parse_one(&text[range.clone()])
            .with_context(|| format!("the YAML document starting at line {line}"))?;
        push(range, value);
    }
    Ok(segments)
}

/// True for a YAML `---` or `...` marker line: the marker, then the end of the line
/// or a blank.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// The one document of a segment's text, `None` when it holds only blanks, comments or
/// separators.
fn parse_one(text: &str) -> Result<Option<Value>> {
    let mut docs = sealant_crds::parse_documents(text)?;
    if docs.len() > 1 {
        bail!("expected one document, found {}", docs.len());
    }
    Ok(docs.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_is_split_at_markers_and_segments_cover_the_text() {
        let text = "# head\n---\na: 1\n--- # two\nb: 2\n...\n---\n# only a comment\n---\nc: [3]\n";
        let segments = split(text).expect("split");
        let joined: String = segments.iter().map(|s| &text[s.range.clone()]).collect();
        assert_eq!(joined, text);
        let docs: Vec<_> = segments
            .iter()
            .filter_map(|s| s.doc.as_ref())
            .map(|(i, v)| (*i, v.clone()))
            .collect();
        assert_eq!(
            docs,
            vec![
                (1, serde_json::json!({"a": 1})),
                (2, serde_json::json!({"b": 2})),
                (3, serde_json::json!({"c": [3]})),
            ]
        );
    }

    #[test]
    fn json_values_are_split_where_the_parser_ends_them() {
        let text = "{\"a\": 1}\n  {\"b\": 2}\n";
        let segments = split(text).expect("split");
        let joined: String = segments.iter().map(|s| &text[s.range.clone()]).collect();
        assert_eq!(joined, text);
        assert_eq!(segments.iter().filter(|s| s.doc.is_some()).count(), 2);
    }

    #[test]
    fn a_line_that_only_starts_with_dashes_is_not_a_marker() {
        assert!(is_marker("---\n", "---"));
        assert!(is_marker("--- !tag\n", "---"));
        assert!(is_marker("---", "---"));
        assert!(!is_marker("----\n", "---"));
        assert!(!is_marker("---x\n", "---"));
        assert!(!is_marker(" ---\n", "---"));
    }

    #[test]
    fn a_value_written_twice_in_its_document_is_refused_by_name() {
        let doc = serde_json::json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "db", "namespace": "prod"},
            "spec": {"encryptedData": {"a": "QUJD", "b": "QUJD"}}
        });
        let text = "spec:\n  encryptedData:\n    a: QUJD\n    b: QUJD\n";
        let err = find_objects(2, &doc, text).err().expect("refused");
        let err = err.to_string();
        assert!(
            err.contains("document 2 (prod/db)") && err.contains("spec.encryptedData.a"),
            "{err}"
        );
    }
}
