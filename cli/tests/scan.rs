//! `sealant scan`: every plaintext form of the corpus is found where it is written,
//! nothing clean is flagged, no output holds a value, and the inputs (paths, stdin,
//! the index, history), suppressions and exit codes behave as documented.

mod scan_support;

use base64::Engine as _;
use scan_support::{corpus_copy, corpus_dir, findings, git, git_repo, run_in, scan};

const SECRET_YAML: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\n  namespace: dev\nstringData:\n  password: PLANT-test-leak\n";
const CLEAN_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata:\n  a: b\n";

fn f(path: &str, line: u64, rule: &str, key: &str) -> (String, u64, String, String) {
    (path.to_owned(), line, rule.to_owned(), key.to_owned())
}

#[test]
fn every_plaintext_form_in_the_corpus_is_found_at_its_line_and_key() {
    let dir = corpus_copy();
    let run = scan(dir.path(), &["leaks", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let mut expected = vec![
        f("leaks/anchors.yaml", 8, "secret-plaintext", "shared-token"),
        f("leaks/anchors.yaml", 8, "secret-plaintext", "shared-token"),
        f("leaks/anchors.yaml", 14, "secret-plaintext", "own"),
        f("leaks/anchors.yaml", 15, "secret-plaintext", "again"),
        f("leaks/bom-crlf.yaml", 7, "secret-plaintext", "password"),
        f(
            "leaks/chart/templates/secret.yaml",
            11,
            "secret-plaintext",
            "literal",
        ),
        f("leaks/flow-style.yaml", 1, "secret-plaintext", "api-key"),
        f(
            "leaks/kustomize/kustomization.yaml",
            7,
            "kustomize-secret-literal",
            "api-token",
        ),
        f(
            "leaks/kustomize/kustomization.yaml",
            11,
            "kustomize-secret-file",
            "app.env",
        ),
        f(
            "leaks/kustomize/kustomization.yaml",
            13,
            "kustomize-secret-file",
            "tls.key",
        ),
        f("leaks/list.json", 7, "secret-plaintext", "secret"),
        f("leaks/list.yaml", 10, "secret-plaintext", "token"),
        f(
            "leaks/multi-doc.yaml",
            16,
            "secret-plaintext",
            ".dockerconfigjson",
        ),
        f("leaks/multi-doc.yaml", 25, "secret-plaintext", "username"),
        f("leaks/multi-doc.yaml", 26, "secret-plaintext", "password"),
        f(
            "leaks/multi-doc.yaml",
            33,
            "secret-plaintext",
            "ssh-privatekey",
        ),
        f(
            "leaks/opaque-stringdata.yaml",
            8,
            "secret-plaintext",
            "password",
        ),
        f(
            "leaks/quoted-keys-any-order.yaml",
            2,
            "secret-plaintext",
            "token",
        ),
        f(
            "leaks/sealed-pasted-base64.yaml",
            8,
            "sealed-value-not-encrypted",
            "password",
        ),
        f("leaks/secret.json", 5, "secret-plaintext", "api_key"),
        f("leaks/tls.yml", 8, "secret-plaintext", "tls.crt"),
        f("leaks/tls.yml", 9, "secret-plaintext", "tls.key"),
    ];
    expected.sort();
    assert_eq!(findings(&run), expected, "{}", run.stdout);
}

#[test]
fn clean_corpus_has_no_findings_and_exits_0() {
    let dir = corpus_copy();
    let run = scan(dir.path(), &["clean"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert!(run.stderr.contains("0 findings"), "{}", run.stderr);
    assert!(!run.stderr.contains("skipped:"), "{}", run.stderr);
}

#[test]
fn text_report_names_path_line_col_rule_object_and_key() {
    let dir = corpus_copy();
    let run = scan(dir.path(), &["leaks/opaque-stringdata.yaml"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "leaks/opaque-stringdata.yaml:8:3: secret-plaintext Secret prod/db key \"password\": \
         plaintext value in a Secret\n"
    );
}

/// Every value planted in the corpus (`PLANT-...`, written plainly or as base64).
fn planted_values() -> Vec<String> {
    let mut values = std::collections::BTreeSet::new();
    let mut stack = vec![corpus_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c))) {
                if let Some(at) = token.find("PLANT-") {
                    values.insert(token[at..].to_owned());
                }
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token)
                    && let Ok(decoded) = String::from_utf8(bytes)
                    && decoded.starts_with("PLANT-")
                {
                    values.insert(decoded);
                }
            }
        }
    }
    values.into_iter().collect()
}

#[test]
fn no_format_prints_a_planted_value_in_plaintext_or_base64() {
    let planted = planted_values();
    assert!(planted.len() >= 20, "{planted:?}");
    let dir = corpus_copy();
    for format in ["text", "json", "sarif"] {
        let run = scan(dir.path(), &["leaks", "lint", "clean", "--format", format]);
        assert_eq!(run.code, 1, "{format}: {}", run.stderr);
        let output = format!("{}{}", run.stdout, run.stderr);
        for value in &planted {
            let b64 = base64::engine::general_purpose::STANDARD.encode(value);
            let b64_raw = base64::engine::general_purpose::STANDARD_NO_PAD.encode(value);
            for needle in [value.as_str(), &b64, &b64_raw] {
                assert!(
                    !output.contains(needle),
                    "{format} output holds {needle:?}:\n{output}"
                );
            }
        }
        // Not even a part: every planted value starts with PLANT-, which is
        // UExBTlQt in base64.
        for part in ["PLANT", "UExBTlQt"] {
            assert!(
                !output.contains(part),
                "{format} output holds {part:?}:\n{output}"
            );
        }
    }
}

#[test]
fn stdin_dash_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["scan", "-"], SECRET_YAML);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("<stdin>:7:3: secret-plaintext Secret dev/leak"),
        "{}",
        run.stdout
    );
    let clean = run_in(dir.path(), &["scan", "-"], CLEAN_YAML);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = scan(dir.path(), &["no-such-dir"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no-such-dir"), "{}", missing.stderr);
    let bad_flag = scan(dir.path(), &["--no-such-flag"]);
    assert_eq!(bad_flag.code, 2, "{}", bad_flag.stderr);
    let not_git = scan(dir.path(), &["--staged"]);
    assert_eq!(not_git.code, 2, "{}", not_git.stderr);
    assert!(
        not_git.stderr.contains("Git repository"),
        "{}",
        not_git.stderr
    );
    let bad_baseline = scan(dir.path(), &["--baseline", "nope.json"]);
    assert_eq!(bad_baseline.code, 2, "{}", bad_baseline.stderr);
}

#[test]
fn gitignored_files_and_the_git_dir_are_not_scanned_but_hidden_dirs_are() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join(".gitignore"), "ignored/\n*.local.yaml\n").unwrap();
    for path in [
        "ignored/a.yaml",
        "b.local.yaml",
        ".git/c.yaml",
        ".github/d.yaml",
        "e.yml",
    ] {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, SECRET_YAML).unwrap();
    }
    std::fs::write(root.join("notes.txt"), SECRET_YAML).unwrap();
    let run = scan(root, &["--format", "json"]);
    let paths: Vec<String> = findings(&run).into_iter().map(|f| f.0).collect();
    assert_eq!(paths, vec![".github/d.yaml", "e.yml"], "{}", run.stderr);
    // A file named on the command line is read whatever its name.
    let named = scan(root, &["notes.txt"]);
    assert_eq!(named.code, 1, "{}", named.stderr);
}

#[test]
fn root_config_file_excludes_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("fixtures/deep")).unwrap();
    std::fs::write(root.join("fixtures/deep/a.yaml"), SECRET_YAML).unwrap();
    std::fs::write(root.join("kept.yaml"), SECRET_YAML).unwrap();
    std::fs::write(
        root.join(".sealant.yaml"),
        "scan:\n  exclude:\n    - fixtures/\n",
    )
    .unwrap();
    let run = scan(root, &["--format", "json"]);
    let paths: Vec<String> = findings(&run).into_iter().map(|f| f.0).collect();
    assert_eq!(paths, vec!["kept.yaml"], "{}", run.stderr);

    std::fs::write(root.join(".sealant.yaml"), "scan:\n  exclud: [x]\n").unwrap();
    let bad = scan(root, &[]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains(".sealant.yaml"), "{}", bad.stderr);
}

#[test]
fn baseline_silences_known_findings_but_not_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("old.yaml"), SECRET_YAML).unwrap();
    let report = scan(root, &["--format", "json"]);
    assert_eq!(report.code, 1);
    std::fs::write(root.join("baseline.json"), &report.stdout).unwrap();
    assert_eq!(scan(root, &["--baseline", "baseline.json"]).code, 0);

    // Moving the finding down the file keeps it known; a new key is new.
    std::fs::write(
        root.join("old.yaml"),
        format!("# moved\n{SECRET_YAML}  token: PLANT-new\n"),
    )
    .unwrap();
    let run = scan(root, &["--baseline", "baseline.json", "--format", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        findings(&run),
        vec![f("old.yaml", 9, "secret-plaintext", "token")]
    );
}

#[test]
fn allow_comment_with_a_reason_suppresses_and_without_one_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("a.yaml"),
        format!("{SECRET_YAML}# sealant:allow  \n"),
    )
    .unwrap();
    let run = scan(root, &["--format", "json"]);
    assert_eq!(run.code, 1);
    let rules: Vec<String> = findings(&run).into_iter().map(|f| f.2).collect();
    assert_eq!(rules, vec!["secret-plaintext", "allow-without-reason"]);

    // The comment covers only its own document.
    let two_docs = format!("{SECRET_YAML}# sealant:allow local fixture\n---\n{SECRET_YAML}");
    std::fs::write(root.join("a.yaml"), two_docs).unwrap();
    let run = scan(root, &["--format", "json"]);
    assert_eq!(
        findings(&run),
        vec![f("a.yaml", 16, "secret-plaintext", "password")]
    );
}

#[test]
fn staged_scans_the_index_not_the_work_tree() {
    let repo = git_repo();
    let root = repo.path();
    std::fs::write(root.join("a.yaml"), CLEAN_YAML).unwrap();
    git(root, &["add", "a.yaml"]);
    std::fs::write(root.join("a.yaml"), SECRET_YAML).unwrap();
    std::fs::write(root.join("untracked.yaml"), SECRET_YAML).unwrap();
    let run = scan(root, &["--staged"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    git(root, &["add", "a.yaml"]);
    std::fs::write(root.join("a.yaml"), CLEAN_YAML).unwrap();
    let run = scan(root, &["--staged", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        findings(&run),
        vec![f("a.yaml", 7, "secret-plaintext", "password")]
    );

    // From a subdirectory, paths stay relative to the repository root.
    std::fs::create_dir(root.join("sub")).unwrap();
    let run = scan(&root.join("sub"), &["--staged", "--format", "json"]);
    assert_eq!(
        findings(&run),
        vec![f("a.yaml", 7, "secret-plaintext", "password")]
    );
}

#[test]
fn since_finds_a_leak_already_committed_and_deleted_with_its_commit() {
    let repo = git_repo();
    let root = repo.path();
    std::fs::write(root.join("readme.md"), "x").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "start"]);
    let start = git(root, &["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::create_dir(root.join("deploy")).unwrap();
    std::fs::write(root.join("deploy/db.yaml"), SECRET_YAML).unwrap();
    // A blob over the size cap, read past (not kept) on the way to the next one.
    let huge = format!("{SECRET_YAML}# {}\n", "x".repeat(17 << 20));
    std::fs::write(root.join("deploy/a-huge.yaml"), huge).unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "leak"]);
    let leak = git(root, &["rev-parse", "HEAD"]).trim().to_owned();
    git(root, &["rm", "-q", "deploy/db.yaml", "deploy/a-huge.yaml"]);
    git(root, &["commit", "-qm", "oops"]);

    assert_eq!(scan(root, &[]).code, 0, "the work tree is clean");
    let run = scan(root, &["--since", &start, "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let found = &report["findings"][0];
    assert_eq!(found["path"], "deploy/db.yaml");
    assert_eq!(found["commit"], leak.as_str());
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);
    assert!(
        run.stderr
            .contains("warning: deploy/a-huge.yaml: skipped: larger than 16 MiB"),
        "{}",
        run.stderr
    );

    assert_eq!(
        scan(root, &["--since", &leak]).code,
        0,
        "nothing added after the leak"
    );

    // The empty tree stands for the whole history: a leak in the first commit too.
    let empty_tree = git(root, &["hash-object", "-t", "tree", "/dev/null"])
        .trim()
        .to_owned();
    let all = scan(root, &["--since", &empty_tree, "--format", "json"]);
    assert_eq!(all.code, 1, "{}", all.stderr);
    let first = git_repo();
    std::fs::write(first.path().join("s.yaml"), SECRET_YAML).unwrap();
    git(first.path(), &["add", "."]);
    git(first.path(), &["commit", "-qm", "root commit leaks"]);
    let root_commit = git(first.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    assert_eq!(scan(first.path(), &["--since", &root_commit]).code, 0);
    let run = scan(first.path(), &["--since", &empty_tree, "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["findings"][0]["commit"], root_commit.as_str());
    assert_eq!(scan(root, &["--since", "no-such-rev"]).code, 2);
}

#[test]
fn kustomize_files_ignored_by_git_or_absent_are_not_findings() {
    let repo = git_repo();
    let root = repo.path();
    std::fs::write(root.join(".gitignore"), "*.secret.env\n").unwrap();
    std::fs::write(root.join("db.secret.env"), "PASSWORD=PLANT-ignored\n").unwrap();
    std::fs::write(root.join("committed.env"), "PASSWORD=PLANT-committed\n").unwrap();
    std::fs::write(
        root.join("kustomization.yaml"),
        "secretGenerator:\n- name: db\n  envs:\n  - db.secret.env\n  - absent.env\n  - committed.env\n",
    )
    .unwrap();
    let run = scan(root, &["--format", "json"]);
    assert_eq!(
        findings(&run),
        vec![f(
            "kustomization.yaml",
            6,
            "kustomize-secret-file",
            "committed.env"
        )]
    );
}

#[test]
fn bad_input_is_skipped_with_a_warning_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("binary.yaml"), b"kind: Secret\0\x01\x02").unwrap();
    std::fs::write(root.join("latin1.yaml"), b"kind: Secret\nname: caf\xe9\n").unwrap();
    std::fs::write(
        root.join("deep.json"),
        format!("{{\"kind\": \"Secret\", \"x\": {}}}", "[".repeat(50_000)),
    )
    .unwrap();
    std::fs::write(root.join("broken.yaml"), "kind: Secret\ndata: {a: [}\n").unwrap();
    let mut huge = SECRET_YAML.to_owned();
    huge.push_str(&format!("# {}\n", "x".repeat(17 << 20)));
    std::fs::write(root.join("huge.yaml"), huge).unwrap();
    std::fs::write(root.join("leak.yaml"), SECRET_YAML).unwrap();
    let run = scan(root, &[]);
    assert_eq!(
        run.code, 1,
        "the readable leak is still found: {}",
        run.stderr
    );
    for name in [
        "binary.yaml",
        "latin1.yaml",
        "deep.json",
        "broken.yaml",
        "huge.yaml",
    ] {
        assert!(
            run.stderr.contains(&format!("warning: {name}: skipped")),
            "{name}: {}",
            run.stderr
        );
    }
    assert!(run.stdout.starts_with("leak.yaml:7:3"), "{}", run.stdout);
}

#[test]
fn lint_flags_each_broken_sealed_secret_with_its_own_rule() {
    let dir = corpus_copy();
    let run = scan(dir.path(), &["lint", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let mut expected = vec![
        f("lint/no-namespace.yaml", 4, "sealed-no-namespace", "-"),
        f("lint/scope-mismatch.yaml", 14, "sealed-scope-mismatch", "-"),
        f(
            "lint/template-invalid.yaml",
            11,
            "sealed-template-invalid",
            "digest",
        ),
        f(
            "lint/template-metadata.yaml",
            11,
            "sealed-template-metadata",
            "-",
        ),
        f(
            "lint/template-metadata.yaml",
            12,
            "sealed-template-metadata",
            "-",
        ),
        f(
            "lint/truncated-blob.yaml",
            8,
            "sealed-value-not-encrypted",
            "password",
        ),
    ];
    expected.sort();
    assert_eq!(findings(&run), expected, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("function \\\"sha256sum\\\" is not supported"),
        "{}",
        run.stdout
    );
}

#[test]
fn cert_flags_values_sealed_for_another_key_size() {
    let dir = corpus_copy();
    let run = scan(
        dir.path(),
        &[
            "lint/sealed-2048.yaml",
            "sealed",
            "--cert",
            "lint/cert-4096.pem",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        findings(&run),
        vec![f("lint/sealed-2048.yaml", 9, "sealed-key-size", "password")]
    );
    assert!(
        run.stdout
            .contains("sealed for a 2048-bit key, the certificate's is 4096-bit")
    );
    // Without --cert the same file is well formed.
    assert_eq!(scan(dir.path(), &["lint/sealed-2048.yaml"]).code, 0);
    let missing = scan(dir.path(), &["sealed", "--cert", "nope.pem"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}

#[test]
fn well_formed_sealed_secrets_rsa_age_and_templated_are_clean() {
    let dir = corpus_copy();
    let run = scan(dir.path(), &["sealed", "--cert", "lint/cert-4096.pem"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert!(
        run.stderr.contains("(6 scanned, 0 skipped)"),
        "{}",
        run.stderr
    );
}

#[test]
fn this_repository_holds_no_plaintext_secret_outside_the_excluded_corpus() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = scan(&repo, &[]);
    assert_eq!(
        run.code, 0,
        "seal it, or exclude a deliberate fixture in .sealant.yaml:\n{}{}",
        run.stdout, run.stderr
    );
    // The corpus is excluded by the root .sealant.yaml, and only by it.
    let corpus = scan(&repo, &["cli/tests/scan_corpus/leaks"]);
    assert_eq!(corpus.code, 0, "{}", corpus.stderr);
    assert!(corpus.stderr.contains("(0 scanned"), "{}", corpus.stderr);
}
