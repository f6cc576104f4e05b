//! The documents cite only files that exist in this repository.
//!
//! A user or contributor has the repository and nothing else, so every file a
//! document points to must be in it:
//! - every relative Markdown link (`[text](path)` or `[text](path#anchor)`) in every
//!   Markdown file resolves to a file or directory;
//! - every repository path the README names in backticks (`tests/tests/docs.rs`,
//!   `deploy/rbac.yaml`, ...) exists;
//! - no Markdown file cites a design or compatibility document that lives outside the
//!   repository (those facts are in `docs/`);
//! - the README's shell blocks marked as try-outs (a fence that opens with
//!   `` ```sh runnable ``) run as written, in order, in an empty directory, with the
//!   `sealant` under test and the pinned `kubectl` on `PATH`.
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
                && s.split('/')
                    .next()
                    .is_some_and(|first| root().join(first).exists())
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
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
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
    assert!(
        missing.is_empty(),
        "the README names missing files: {missing:?}"
    );
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
    assert!(
        cited.is_empty(),
        "cites files outside the repository:\n{}",
        cited.join("\n")
    );
}

/// The bodies of the README's `` ```sh runnable `` blocks, in order.
fn runnable_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_end() == "```sh runnable" => current = Some(String::new()),
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn the_readmes_try_out_blocks_run_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let blocks = runnable_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "the README's try-outs were found: {blocks:?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let sealant = sealant_e2e::tools::sealant().expect("sealant");
    let kubectl = sealant_e2e::tools::kubectl().expect("kubectl");
    std::os::unix::fs::symlink(sealant, bin.join("sealant")).expect("link sealant");
    std::os::unix::fs::symlink(kubectl, bin.join("kubectl")).expect("link kubectl");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, block) in blocks.iter().enumerate() {
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(&work)
            .env("PATH", &path)
            .env_remove("KUBECONFIG")
            .env("HOME", dir.path())
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "README try-out block {} failed ({}):\n{block}\nstdout:\n{}\nstderr:\n{}",
            i + 1,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The last try-out opens what the others sealed.
    let recovered = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", blocks.last().expect("a block")])
        .current_dir(&work)
        .env("PATH", &path)
        .output()
        .expect("run bash");
    assert!(
        String::from_utf8_lossy(&recovered.stdout).contains("ca.crt"),
        "the recovered Secret has the values sealed above"
    );
}

#[test]
fn the_checks_find_what_they_look_for() {
    assert_eq!(
        runnable_blocks("```sh\nno\n```\n```sh runnable\necho a\necho b\n```\n"),
        ["echo a\necho b\n"]
    );
    assert_eq!(
        link_targets("see [a](docs/design.md#x) and [b](https://e.x) [c](#local)"),
        ["docs/design.md#x", "https://e.x", "#local"]
    );
    assert_eq!(
        backticked_paths("`deploy/rbac.yaml`, `~/.cache/x`, `a b/c`, `nothere/x.rs`"),
        ["deploy/rbac.yaml"]
    );
}
