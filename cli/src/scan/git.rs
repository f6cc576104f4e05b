//! What `--staged` and `--since` read: blobs from Git, not files from the work tree.
//!
//! ```text
//!   --staged      git diff --cached --raw ─▶ (path, index blob) of every added/changed file
//!   --since REV   git log REV..HEAD --raw ─▶ (path, blob, commit) of every blob added
//!                                  │
//!                                  ▼
//!                        git cat-file --batch ─▶ contents (capped; bigger ones skipped)
//! ```
//!
//! Only regular files are read (no symlinks or submodules). A blob that appears in
//! several commits under the same path is scanned once, attributed to the oldest.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// One blob to scan.
pub struct Blob {
    /// Path relative to the repository root.
    pub path: String,
    /// The object id.
    pub id: String,
    /// The commit that added it (`--since` only).
    pub commit: Option<String>,
}

/// The top level of the work tree that holds `dir`, or `None` outside Git.
pub fn toplevel(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(text.trim_end_matches(['\n', '\r'])))
}

fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run git (is it installed?)")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("git {} failed: {}", args.join(" "), stderr.trim());
    }
    Ok(out.stdout)
}

/// Every file `git commit` would commit now: added, copied or modified in the index.
pub fn staged(root: &Path) -> Result<Vec<Blob>> {
    let out = git(
        root,
        &[
            "diff",
            "--cached",
            "--raw",
            "-z",
            "--no-renames",
            "--no-abbrev",
            "--diff-filter=ACM",
        ],
    )?;
    let mut blobs = Vec::new();
    parse_raw(&out, |commit, path, id| {
        blobs.push(Blob { path, id, commit })
    });
    Ok(blobs)
}

/// Every blob added or modified by the commits in `REV..HEAD`; with the empty tree as
/// REV, by every commit of `HEAD`'s history.
pub fn since(root: &Path, rev: &str) -> Result<Vec<Blob>> {
    if rev.starts_with('-') {
        bail!("--since {rev:?}: a revision cannot start with '-'");
    }
    // The empty tree (`git hash-object -t tree /dev/null`) stands for "before the
    // first commit": the whole history, the root commits included.
    let range = if is_empty_tree(root, rev) {
        "HEAD".to_owned()
    } else {
        git(
            root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .with_context(|| format!("--since {rev:?} is not a commit in this repository"))?;
        format!("{rev}..HEAD")
    };
    let out = git(
        root,
        &[
            "log",
            "--no-renames",
            "--root",
            "--diff-filter=AM",
            "--raw",
            "--no-abbrev",
            "-z",
            "--format=commit %H",
            &range,
            "--",
        ],
    )?;
    // Newest first: the last commit seen for a (path, blob) is the one that added it.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut commit_of: HashMap<(String, String), String> = HashMap::new();
    parse_raw(&out, |commit, path, id| {
        let key = (path, id);
        if !commit_of.contains_key(&key) {
            order.push(key.clone());
        }
        commit_of.insert(key, commit.unwrap_or_default());
    });
    Ok(order
        .into_iter()
        .map(|key| {
            let commit = commit_of.remove(&key);
            Blob {
                path: key.0,
                id: key.1,
                commit,
            }
        })
        .collect())
}

/// The object id of the empty tree, in SHA-1 and SHA-256 repositories.
const EMPTY_TREES: [&str; 2] = [
    "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
];

fn is_empty_tree(root: &Path, rev: &str) -> bool {
    git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{tree}}"),
        ],
    )
    .ok()
    .and_then(|out| String::from_utf8(out).ok())
    .is_some_and(|id| EMPTY_TREES.contains(&id.trim()))
        && git(
            root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .is_err()
}

/// Parses `--raw -z` output (optionally with `commit <id>` records) into
/// (commit, path, new blob id) of regular files.
fn parse_raw(out: &[u8], mut each: impl FnMut(Option<String>, String, String)) {
    let mut commit = None;
    let mut tokens = out.split(|b| *b == 0);
    while let Some(token) = tokens.next() {
        let token = String::from_utf8_lossy(token);
        let token = token.trim_start_matches('\n');
        if let Some(id) = token.strip_prefix("commit ") {
            commit = Some(id.to_owned());
            continue;
        }
        let Some(meta) = token.strip_prefix(':') else {
            continue;
        };
        let Some(path) = tokens.next() else { break };
        let fields: Vec<&str> = meta.split(' ').collect();
        let (Some(mode), Some(id)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        if !mode.starts_with("100") {
            continue;
        }
        each(
            commit.clone(),
            String::from_utf8_lossy(path).into_owned(),
            (*id).to_owned(),
        );
    }
}

/// Hands the contents of each blob to `each`, in order, one at a time (so memory stays
/// bounded by what `each` keeps); `None` for a blob larger than `max` bytes.
pub fn cat_blobs(
    root: &Path,
    ids: &[&str],
    max: u64,
    mut each: impl FnMut(usize, Option<Vec<u8>>) -> Result<()>,
) -> Result<()> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run git cat-file")?;
    let mut stdin = child.stdin.take().context("git cat-file has no stdin")?;
    let requests: Vec<u8> = ids
        .iter()
        .flat_map(|id| format!("{id}\n").into_bytes())
        .collect();
    // Written from another thread, so that a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(&requests));
    let mut stdout = BufReader::new(child.stdout.take().context("git cat-file has no stdout")?);
    for (index, id) in ids.iter().enumerate() {
        let mut header = String::new();
        stdout
            .read_line(&mut header)
            .context("cannot read from git cat-file")?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        let size: u64 = match fields.as_slice() {
            [_, "blob", size] => size.parse().context("bad size from git cat-file")?,
            _ => bail!("git cat-file cannot read blob {id}: {}", header.trim()),
        };
        let mut limited = (&mut stdout).take(size + 1);
        if size > max {
            std::io::copy(&mut limited, &mut std::io::sink())
                .context("cannot read from git cat-file")?;
            each(index, None)?;
            continue;
        }
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or_default() + 1);
        limited
            .read_to_end(&mut buf)
            .context("cannot read from git cat-file")?;
        buf.pop(); // the newline after each blob
        each(index, Some(buf))?;
    }
    match writer.join() {
        Ok(result) => result.context("cannot write to git cat-file")?,
        Err(_) => bail!("the thread feeding git cat-file panicked"),
    }
    let status = child.wait().context("git cat-file")?;
    if !status.success() {
        bail!("git cat-file failed: {status}");
    }
    Ok(())
}

/// The paths in the index, for `--staged`.
pub fn index_paths(root: &Path) -> Result<HashSet<String>> {
    paths(&git(root, &["ls-files", "-z"])?)
}

/// The paths in `HEAD`'s tree, for `--since`.
pub fn head_paths(root: &Path) -> Result<HashSet<String>> {
    paths(&git(root, &["ls-tree", "-r", "-z", "--name-only", "HEAD"])?)
}

fn paths(out: &[u8]) -> Result<HashSet<String>> {
    Ok(out
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect())
}

/// True when Git would ignore `path` (relative to `root`).
pub fn is_ignored(root: &Path, path: &str) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["check-ignore", "-q", "--", path])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
