//! The documents cite only files that exist in this repository.
//!
//! A user or contributor has the repository and nothing else, so every file a
//! document points to must be in it:
//! - every relative Markdown link (`[text](path)` or `[text](path#anchor)`) in every
//!   Markdown file resolves to a file or directory;
//! - every repository path the README names in backticks (`tests/tests/docs.rs`,
//!   `deploy/rbac.yaml`, ...) exists;
//! - no Markdown file cites a design or compatibility document that lives outside the
//!   repository (those facts are in `docs/`).
//!
//! No control plane is needed.

use std::path::{Path, PathBuf};

/// Inputs from outside the repository that documents may name on purpose, with why.
const EXTERNAL: [(&str, &str); 1] = [(
    "../shared/rustsec/advisory-db.bundle",
    "an optional offline copy of the RustSec database beside the repository, used by \
     scripts/deny.sh only when the network copy cannot be fetched",
)];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository root")
        .to_path_buf()
}

/// Every Markdown file of the repository (not build output, not Git's own files).
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    out.sort();
    out
}

/// The targets of the inline Markdown links in `text`: `](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        out.push(rest[..end].trim().to_owned());
        rest = &rest[end..];
    }
    out
}

/// The backticked spans of `text` that look like repository paths: a `/` inside,
/// no spaces, none of the marks of a command, a URL, a placeholder or an absolute or
/// home path.
fn backticked_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains('/')
                && !s.contains(char::is_whitespace)
                && !s.starts_with(['/', '~', '$', '.', '-'])
                && !s.contains([
                    ':', '<', '>', '*', '{', '}', '=', '|', '@', '[', ',', '(', '"', '\'',
                ])
                && !s.contains("...")
                && s.split('/').next().is_some_and(|first| root().join(first).exists())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_relative_markdown_link_resolves_to_a_file_in_the_repository() {
    let mut broken = Vec::new();
    for doc in markdown_files() {
        let text = std::fs::read_to_string(&doc).expect("read");
        let dir = doc.parent().expect("a directory");
        for target in link_targets(&text) {
            if target.is_empty()
                || target.starts_with('#')
                || target.contains("://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            if EXTERNAL.iter().any(|(p, _)| *p == path) {
                continue;
            }
            if !dir.join(path).exists() {
                broken.push(format!("{}: ({target})", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing:\n{}", broken.join("\n"));
}

#[test]
fn every_repository_path_the_readme_names_exists() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let named = backticked_paths(&readme);
    assert!(
        named.iter().any(|p| p == "deploy/rbac.yaml"),
        "the path finder found the README's paths: {named:?}"
    );
    let missing: Vec<&String> = named
        .iter()
        .filter(|p| !root().join(p.trim_end_matches('/')).exists())
        .collect();
    assert!(missing.is_empty(), "the README names missing files: {missing:?}");
}

#[test]
fn no_document_cites_a_design_or_compatibility_file_outside_the_repository() {
    let mut cited = Vec::new();
    for doc in markdown_files() {
        let text = std::fs::read_to_string(&doc).expect("read");
        for (n, line) in text.lines().enumerate() {
            for outside in ["DESIGN.md", "BITNAMI.md", "STYLE.md", "../shared/"] {
                let external = EXTERNAL.iter().any(|(p, _)| line.contains(p));
                if line.contains(outside) && !external {
                    cited.push(format!("{}:{}: {line}", doc.display(), n + 1));
                }
            }
        }
    }
    assert!(cited.is_empty(), "cites files outside the repository:\n{}", cited.join("\n"));
}

#[test]
fn the_checks_find_what_they_look_for() {
    assert_eq!(
        link_targets("see [a](docs/design.md#x) and [b](https://e.x) [c](#local)"),
        ["docs/design.md#x", "https://e.x", "#local"]
    );
    assert_eq!(
        backticked_paths("`deploy/rbac.yaml`, `~/.cache/x`, `a b/c`, `nothere/x.rs`"),
        ["deploy/rbac.yaml"]
    );
}
