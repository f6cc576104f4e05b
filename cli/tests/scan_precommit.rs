//! The `sealant-scan` hook of `.pre-commit-hooks.yaml`, run by the real `pre-commit`
//! (from PyPI) in a throwaway Git repository: every plaintext form of the corpus is
//! refused at `git commit`, and SealedSecrets and other clean manifests commit.

mod scan_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use scan_support::{copy_dir, corpus_dir, git, git_repo, scan_python, sealant_bin};

/// Runs `git commit` in `repo` with the installed hook; returns (success, output).
fn commit(repo: &Path, env: &[(&str, String)], message: &str) -> (bool, String) {
    let mut cmd = Command::new("git");
    cmd.args(["commit", "-qm", message])
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run git commit");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A Git repository holding this project's `.pre-commit-hooks.yaml`, as pre-commit
/// clones a hook repository; returns it and its commit.
fn hook_repo() -> (tempfile::TempDir, String) {
    let repo = git_repo();
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.pre-commit-hooks.yaml");
    std::fs::copy(hooks, repo.path().join(".pre-commit-hooks.yaml")).unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-qm", "hooks"]);
    let rev = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    (repo, rev)
}

#[test]
fn pre_commit_hook_refuses_each_plaintext_form_and_passes_sealed_secrets() {
    let python = scan_python();
    let (hooks, rev) = hook_repo();
    let project = git_repo();
    let root = project.path();
    let cache = tempfile::tempdir().unwrap();

    let bin_dir: PathBuf = Path::new(sealant_bin()).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("PATH", path),
        ("PRE_COMMIT_HOME", cache.path().display().to_string()),
    ];
    std::fs::write(
        root.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n- repo: {}\n  rev: {rev}\n  hooks:\n  - id: sealant-scan\n",
            hooks.path().display()
        ),
    )
    .unwrap();
    let install = Command::new(&python)
        .args(["-m", "pre_commit", "install"])
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    git(root, &["add", ".pre-commit-config.yaml"]);
    let (ok, out) = commit(root, &env, "config");
    assert!(ok, "a commit without manifests passes: {out}");

    // Each leak form, committed alone, is refused and named.
    let leaks = corpus_dir().join("leaks");
    let mut forms: Vec<_> = std::fs::read_dir(&leaks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    forms.sort();
    assert!(forms.len() >= 12, "{forms:?}");
    for form in forms {
        let name = form.file_name().unwrap().to_str().unwrap().to_owned();
        let target = root.join(&name);
        if form.is_dir() {
            copy_dir(&form, &target);
        } else {
            std::fs::copy(&form, &target).unwrap();
        }
        git(root, &["add", "--", &name]);
        let (ok, out) = commit(root, &env, &format!("add {name}"));
        assert!(!ok, "{name} was committed:\n{out}");
        assert!(
            out.contains(&name),
            "{name} is named in the hook's output:\n{out}"
        );
        assert!(
            !out.contains("PLANT-"),
            "{name}: a value in the output:\n{out}"
        );
        git(root, &["rm", "-rqf", "--cached", "--", &name]);
        if target.is_dir() {
            std::fs::remove_dir_all(&target).unwrap();
        } else {
            std::fs::remove_file(&target).unwrap();
        }
    }
    assert_eq!(git(root, &["rev-list", "--count", "HEAD"]).trim(), "1");

    // SealedSecrets and the other clean manifests pass.
    for dir in ["clean", "sealed"] {
        copy_dir(&corpus_dir().join(dir), &root.join(dir));
    }
    git(root, &["add", "."]);
    let (ok, out) = commit(root, &env, "sealed secrets");
    assert!(ok, "clean manifests were refused:\n{out}");
    assert_eq!(git(root, &["rev-list", "--count", "HEAD"]).trim(), "2");
}
