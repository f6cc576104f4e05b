//! One file in, findings out: the part of `sealant scan` that reads manifests.
//!
//! ```text
//!   text ─▶ cheap pre-filter ─▶ (Helm template? neutralize actions) ─▶ yaml::Tree
//!        ─▶ per document: sops? skip │ Secret ─▶ plaintext values
//!                                    │ *List ─▶ each item
//!                                    │ SealedSecret ─▶ lint
//!                                    │ Kustomization ─▶ secretGenerator
//!        ─▶ drop what a `# sealant:allow <reason>` in the document covers
//! ```
//!
//! Every form of Secret people write goes through the same tree: YAML in any style
//! (flow, quoted keys, anchors and merge keys, BOM, CRLF), JSON (a YAML subset), Lists
//! and Helm templates. A value that is empty, null, a template expression or a SOPS
//! `ENC[...]` is not plaintext.

use std::path::Path;

use super::finding::{Finding, Rule};
use super::yaml::{NodeId, Tree};
use super::{helm, kustomize, lint};

/// The largest file scanned; bigger ones are skipped with a warning naming them.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// What the checks need besides the file itself.
pub struct Context {
    /// The RSA ciphertext length of the `--cert` key, when one was given.
    pub cert_rsa_bytes: Option<usize>,
    /// Whether a repository-relative path is a file in the repository (for kustomize
    /// `envs`/`files`).
    pub repo_has: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

/// One file (or blob, or stdin) to scan.
pub struct Source<'a> {
    /// The path shown to the user.
    pub path: &'a str,
    /// The path relative to the repository root.
    pub repo_path: &'a str,
    /// The commit that added it (`--since`).
    pub commit: Option<&'a str>,
    /// The contents.
    pub bytes: &'a [u8],
}

/// Why a file was not scanned.
#[derive(Debug)]
pub struct Skip(pub String);

/// The object a finding is about.
pub struct Object {
    /// The kind.
    pub kind: String,
    /// The namespace.
    pub namespace: Option<String>,
    /// The name.
    pub name: Option<String>,
}

/// Collects the findings of one file.
pub struct Sink<'a> {
    /// The file.
    pub source: &'a Source<'a>,
    /// What was found so far.
    pub findings: Vec<Finding>,
}

impl Sink<'_> {
    /// Records a finding at `node`'s position.
    pub fn add(
        &mut self,
        tree: &Tree,
        node: NodeId,
        rule: Rule,
        object: &Object,
        key: Option<&str>,
        detail: Option<String>,
    ) {
        let node = tree.node(node);
        self.findings.push(Finding {
            path: self.source.path.to_owned(),
            line: node.line,
            col: node.col,
            rule,
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            key: key.map(str::to_owned),
            detail,
            repo_path: self.source.repo_path.to_owned(),
            commit: self.source.commit.map(str::to_owned),
        });
    }
}

/// Scans one file.
pub fn scan(source: &Source<'_>, ctx: &Context) -> Result<Vec<Finding>, Skip> {
    let bytes = source.bytes;
    if !might_matter(bytes) {
        return Ok(Vec::new());
    }
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Err(Skip("binary file (NUL bytes)".to_owned()));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Skip(format!(
            "not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let templated = text.contains("{{");
    let tree = if templated && in_templates_dir(source.repo_path) {
        Tree::parse(&helm::neutralize(text))
    } else {
        Tree::parse(text).or_else(|err| {
            if templated {
                Tree::parse(&helm::neutralize(text))
            } else {
                Err(err)
            }
        })
    }
    .map_err(|e| Skip(e.to_string()))?;

    let kustomization_file = is_kustomization_file(source.repo_path);
    let mut sink = Sink {
        source,
        findings: Vec::new(),
    };
    let allow = AllowComments::find(text);
    for doc in &tree.docs {
        let Some(root) = doc.root else { continue };
        let before = sink.findings.len();
        document(&tree, root, kustomization_file, ctx, &mut sink, 0);
        if sink.findings.len() == before {
            continue;
        }
        match allow.in_lines(doc.first_line, doc.last_line) {
            Some(Allow::WithReason) => sink.findings.truncate(before),
            Some(Allow::WithoutReason { line, col }) => {
                let first = &sink.findings[before];
                let finding = Finding {
                    line,
                    col,
                    rule: Rule::AllowWithoutReason,
                    key: None,
                    detail: None,
                    ..first.clone()
                };
                sink.findings.push(finding);
            }
            None => {}
        }
    }
    Ok(sink.findings)
}

/// Cheap pre-filter: every object this command looks at names a kind with `Secret`
/// in it or a `secretGenerator` (escaped text is parsed anyway).
fn might_matter(bytes: &[u8]) -> bool {
    contains(bytes, b"Secret")
        || contains(bytes, b"secretGenerator")
        || contains(bytes, b"\\u")
        || contains(bytes, b"\\x")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn in_templates_dir(repo_path: &str) -> bool {
    repo_path.split('/').rev().skip(1).any(|c| c == "templates")
}

fn is_kustomization_file(repo_path: &str) -> bool {
    let name = repo_path.rsplit('/').next().unwrap_or(repo_path);
    matches!(
        name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// Dispatches one object (a document root or a List item) on its kind.
fn document(
    tree: &Tree,
    root: NodeId,
    kustomization_file: bool,
    ctx: &Context,
    sink: &mut Sink<'_>,
    depth: usize,
) {
    // SOPS-encrypted documents carry their metadata at the top level.
    if tree.get(root, "sops").is_some() {
        return;
    }
    let kind = tree.get_str(root, "kind").unwrap_or_default();
    let api_version = tree.get_str(root, "apiVersion").unwrap_or_default();
    match kind {
        "Secret" if api_version.is_empty() || api_version == "v1" => secret(tree, root, sink),
        "SealedSecret" if api_version.is_empty() || api_version.starts_with("bitnami.com/") => {
            lint::sealed_secret(tree, root, ctx, sink);
        }
        "Kustomization" => kustomize::secret_generators(tree, root, ctx, sink),
        _ if kind.ends_with("List") && depth == 0 => {
            if let Some(items) = tree.get(root, "items") {
                for &item in tree.items(items) {
                    document(tree, item, false, ctx, sink, depth + 1);
                }
            }
        }
        "" if kustomization_file => kustomize::secret_generators(tree, root, ctx, sink),
        _ => {}
    }
}

/// The kind, namespace and name of an object.
pub fn object(tree: &Tree, root: NodeId, kind: &str) -> Object {
    let meta = tree.get(root, "metadata");
    let field = |key| {
        let value = meta
            .and_then(|m| tree.get_str(m, key))
            .filter(|s| !s.is_empty())?;
        Some(
            if helm::is_template(value) {
                "(template)"
            } else {
                value
            }
            .to_owned(),
        )
    };
    Object {
        kind: kind.to_owned(),
        namespace: field("namespace"),
        name: field("name"),
    }
}

/// A Secret: every non-empty literal value in `data` and `stringData`.
fn secret(tree: &Tree, root: NodeId, sink: &mut Sink<'_>) {
    let object = object(tree, root, "Secret");
    for field in ["data", "stringData"] {
        let Some(map) = tree.get(root, field) else {
            continue;
        };
        for (key, value) in tree.entries(map) {
            if is_literal_value(tree, value) {
                let name = tree.str(key).map(|k| {
                    if helm::is_template(k) {
                        "(template)"
                    } else {
                        k
                    }
                });
                sink.add(tree, key, Rule::SecretPlaintext, &object, name, None);
            }
        }
    }
}

/// True for a value that holds a literal secret: not empty, not null, not a
/// template expression, not SOPS ciphertext. Collections count as literal data.
pub fn is_literal_value(tree: &Tree, value: NodeId) -> bool {
    if tree.is_empty_scalar(value) {
        return false;
    }
    match tree.str(value) {
        Some(s) => !helm::is_template(s) && !is_sops(s),
        None => true,
    }
}

fn is_sops(value: &str) -> bool {
    value.starts_with("ENC[") && value.ends_with(']')
}

/// The `# sealant:allow` comments of a file, by line.
struct AllowComments {
    /// (line, column, has a reason)
    found: Vec<(usize, usize, bool)>,
}

enum Allow {
    WithReason,
    WithoutReason { line: usize, col: usize },
}

impl AllowComments {
    const MARKER: &'static str = "sealant:allow";

    fn find(text: &str) -> AllowComments {
        let mut found = Vec::new();
        if !text.contains(Self::MARKER) {
            return AllowComments { found };
        }
        for (index, line) in text.lines().enumerate() {
            let Some(at) = line.find(Self::MARKER) else {
                continue;
            };
            let before = &line[..at];
            let Some(hash) = before.rfind('#') else {
                continue;
            };
            let is_comment = before[hash + 1..].trim().is_empty()
                && (hash == 0 || before[..hash].ends_with([' ', '\t']));
            if !is_comment {
                continue;
            }
            let reason = line[at + Self::MARKER.len()..].trim();
            let col = line[..hash].chars().count() + 1;
            found.push((index + 1, col, !reason.is_empty()));
        }
        AllowComments { found }
    }

    fn in_lines(&self, first: usize, last: usize) -> Option<Allow> {
        let mut without = None;
        for &(line, col, reason) in &self.found {
            if line < first || line > last {
                continue;
            }
            if reason {
                return Some(Allow::WithReason);
            }
            without.get_or_insert(Allow::WithoutReason { line, col });
        }
        without
    }
}

/// Joins a relative `entry` onto the directory of `base` (both `/`-separated,
/// repository-relative), resolving `.` and `..`; `None` when it leaves the repository
/// or is absolute.
pub fn join_repo_path(base: &str, entry: &str) -> Option<String> {
    if Path::new(entry).is_absolute() {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for part in entry.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    parts.retain(|p| !p.is_empty() && *p != ".");
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            cert_rsa_bytes: Some(512),
            repo_has: Box::new(|_| true),
        }
    }

    fn corpus_files() -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scan_corpus")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// Every prefix of every corpus file, and every file with bytes flipped, scans
    /// without a panic: truncated and corrupted manifests are an error or a skip.
    #[test]
    fn truncated_and_corrupted_corpus_files_never_panic() {
        let ctx = ctx();
        let mut runs = 0;
        for path in corpus_files() {
            let bytes = std::fs::read(&path).unwrap();
            let repo_path = format!("templates/{}", path.file_name().unwrap().to_string_lossy());
            let mut variants: Vec<Vec<u8>> = (0..=bytes.len())
                .step_by(3)
                .map(|n| bytes[..n].to_vec())
                .collect();
            for (i, flip) in [
                (7usize, b'{'),
                (13, b'"'),
                (29, b'\n'),
                (41, b'&'),
                (53, b'*'),
            ] {
                let mut changed = bytes.clone();
                if let Some(b) = changed.get_mut(i % bytes.len().max(1)) {
                    *b = flip;
                }
                variants.push(changed);
            }
            for variant in variants {
                for repo_path in [repo_path.as_str(), "kustomization.yaml"] {
                    let source = Source {
                        path: "x",
                        repo_path,
                        commit: None,
                        bytes: &variant,
                    };
                    let _ = scan(&source, &ctx);
                    runs += 1;
                }
            }
        }
        assert!(runs > 10_000, "{runs}");
    }

    #[test]
    fn join_repo_path_resolves_dots_and_refuses_escapes() {
        assert_eq!(
            join_repo_path("a/b/k.yaml", "../c.env").as_deref(),
            Some("a/c.env")
        );
        assert_eq!(join_repo_path("k.yaml", "./x/y").as_deref(), Some("x/y"));
        assert_eq!(join_repo_path("k.yaml", "../x"), None);
    }

    #[test]
    fn allow_comment_needs_to_be_a_comment() {
        let found = AllowComments::find(
            "a: 'x#sealant:allow'\n# sealant:allow fixture\nb: c # sealant:allow\n",
        )
        .found;
        assert_eq!(found, vec![(2, 1, true), (3, 6, false)]);
    }
}
