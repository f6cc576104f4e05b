//! Which files a scan reads from the work tree, and the root config file.
//!
//! - Directories are walked with the `ignore` crate: `.gitignore` (also outside a Git
//!   repository), `.git/info/exclude` and the global excludes are honoured, hidden
//!   files are scanned, and `.git` itself is skipped.
//! - In a directory, only `*.yaml`, `*.yml`, `*.json` (any case) and `Kustomization`
//!   are read; a file named on the command line is always read.
//! - `exclude` patterns from `.sealant.yaml` at the repository root (gitignore syntax,
//!   relative to the root) drop paths in every mode.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::Deserialize;

/// The name of the config file at the repository root.
pub const CONFIG_FILE: &str = ".sealant.yaml";

/// `.sealant.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    scan: ScanConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanConfig {
    /// Paths (gitignore patterns, relative to the root) never scanned.
    #[serde(default)]
    exclude: Vec<String>,
}

/// The path excludes of the config file.
pub struct Excludes(Gitignore);

impl Excludes {
    /// Reads `root/.sealant.yaml`, if there is one.
    pub fn load(root: &Path) -> Result<Excludes> {
        let path = root.join(CONFIG_FILE);
        let config: ConfigFile = match std::fs::read_to_string(&path) {
            Ok(text) => serde_yaml_ng::from_str::<Option<ConfigFile>>(&text)
                .with_context(|| format!("{}: invalid config", path.display()))?
                .unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut builder = GitignoreBuilder::new(root);
        for pattern in &config.scan.exclude {
            builder
                .add_line(None, pattern)
                .with_context(|| format!("{}: bad exclude pattern {pattern:?}", path.display()))?;
        }
        let matcher = builder
            .build()
            .with_context(|| format!("{}: bad exclude patterns", path.display()))?;
        Ok(Excludes(matcher))
    }

    /// True when a repository-relative path (or one of its parents) is excluded.
    pub fn excludes(&self, repo_path: &str, is_dir: bool) -> bool {
        if repo_path.is_empty() || repo_path.starts_with("../") {
            return false;
        }
        self.0
            .matched_path_or_any_parents(repo_path, is_dir)
            .is_ignore()
    }
}

/// One file found on disk.
pub struct FoundFile {
    /// The path to open and to show.
    pub path: PathBuf,
    /// Relative to the repository root.
    pub repo_path: String,
}

/// Maps paths on disk to repository-relative ones.
pub struct Paths {
    /// The repository root (or the current directory outside Git), absolute.
    pub root: PathBuf,
    cwd: PathBuf,
}

impl Paths {
    /// Paths relative to `root`, for a process running in `cwd`.
    pub fn new(root: PathBuf, cwd: PathBuf) -> Paths {
        Paths { root, cwd }
    }

    /// `path` relative to the root, `/`-separated; paths outside the root keep their
    /// own (normalised) form.
    pub fn repo_path(&self, path: &Path) -> String {
        let absolute = normalize(&self.cwd.join(path));
        let shown = match absolute.strip_prefix(&self.root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => absolute,
        };
        shown
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// True for the files a directory walk reads.
pub fn is_manifest_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name == "Kustomization" {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Every file to scan under `targets` (files and directories).
pub fn files(targets: &[PathBuf], paths: &Paths, excludes: &Excludes) -> Result<Vec<FoundFile>> {
    let mut found = Vec::new();
    for target in targets {
        let meta = std::fs::metadata(target)
            .with_context(|| format!("cannot read {}", target.display()))?;
        if !meta.is_dir() {
            let repo_path = paths.repo_path(target);
            if !excludes.excludes(&repo_path, false) {
                found.push(FoundFile {
                    path: target.clone(),
                    repo_path,
                });
            }
            continue;
        }
        let walker = ignore::WalkBuilder::new(target)
            .hidden(false)
            .require_git(false)
            .follow_links(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .build();
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => bail!("cannot walk {}: {err}", target.display()),
            };
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            if is_dir || !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let path = entry.path();
            if !is_manifest_name(path) {
                continue;
            }
            let repo_path = paths.repo_path(path);
            if excludes.excludes(&repo_path, false) {
                continue;
            }
            let shown = path.strip_prefix(".").unwrap_or(path).to_path_buf();
            found.push(FoundFile {
                path: shown,
                repo_path,
            });
        }
    }
    Ok(found)
}
