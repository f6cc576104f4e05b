//! `sealant keys` without a cluster: everything `backup` and `restore` must refuse
//! before they connect (missing or conflicting protection, an existing file, plaintext
//! to a file redirect, backups that cannot be opened or hold an unreadable key). The
//! commands against a real API server are in `tests/tests/keys_lifecycle.rs`.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;

use common::{Sandbox, pair, s};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_crds::key_secret::{ACTIVE, KEY_LABEL, TLS_CERT, key_data, key_list};
use sealant_keys::{AgeIdentity, bundle};

/// A key Secret of [`pair`] named `name`.
fn key_secret(name: &str) -> Secret {
    let p = pair();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("kube-system".to_owned()),
            labels: Some(BTreeMap::from([(KEY_LABEL.to_owned(), ACTIVE.to_owned())])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(key_data(&p.key, &p.cert, None)),
        ..Secret::default()
    }
}

/// Runs `sealant keys ARGS` in the sandbox with no passphrase in the environment.
fn keys(sb: &Sandbox, args: &[&str]) -> common::Run {
    let mut cmd = sb.command();
    cmd.env_remove("SEALANT_BACKUP_PASSPHRASE")
        .arg("keys")
        .args(args);
    common::run(cmd, "")
}

#[test]
fn backup_without_a_protection_flag_is_refused_and_writes_nothing() {
    let sb = Sandbox::new();
    let err = keys(&sb, &["backup", "-o", "keys.age"]).failure("needs a protection");
    assert!(
        err.contains("--unencrypted") && err.contains("--recipient"),
        "{err}"
    );
    assert!(!sb.path("keys.age").exists());
}

#[test]
fn backup_with_two_protections_is_refused() {
    let sb = Sandbox::new();
    let recipient = AgeIdentity::generate().recipient().to_string();
    keys(
        &sb,
        &[
            "backup",
            "-o",
            "k",
            "--recipient",
            &recipient,
            "--unencrypted",
        ],
    )
    .failure("choose one protection");
    let mut cmd = sb.command();
    cmd.env("SEALANT_BACKUP_PASSPHRASE", "from the environment")
        .args(["keys", "backup", "-o", "k", "--unencrypted"]);
    common::run(cmd, "").failure("which is set in the environment");
}

#[test]
fn backup_never_replaces_an_existing_file_without_force() {
    let sb = Sandbox::new();
    let path = sb.write("keys.age", "precious");
    let recipient = AgeIdentity::generate().recipient().to_string();
    keys(&sb, &["backup", "-o", s(&path), "--recipient", &recipient])
        .failure("already exists; pass --force");
    assert_eq!(sb.read("keys.age"), "precious");
}

#[test]
fn unencrypted_backup_to_stdout_is_refused_when_stdout_is_a_file() {
    let sb = Sandbox::new();
    let out = std::fs::File::create(sb.path("redirected.yaml")).expect("create");
    let mut cmd = sb.command();
    cmd.env_remove("SEALANT_BACKUP_PASSPHRASE")
        .args(["keys", "backup", "-o", "-", "--unencrypted"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped());
    let output = cmd.output().expect("run sealant");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unless it is a pipe"), "{stderr}");
    assert_eq!(sb.read("redirected.yaml"), "");
}

#[test]
fn keys_refuse_the_namespace_flag_and_point_to_the_controller_namespace() {
    let sb = Sandbox::new();
    keys(&sb, &["list", "-n", "team-a"]).failure("--controller-namespace");
}

#[test]
fn restore_refuses_the_whole_backup_naming_the_unreadable_item_and_field() {
    let sb = Sandbox::new();
    let mut broken = key_secret("sealed-secrets-keybroken");
    if let Some(data) = broken.data.as_mut() {
        data.insert(
            TLS_CERT.to_owned(),
            ByteString(b"not a certificate".to_vec()),
        );
    }
    let list = key_list(&[key_secret("sealed-secrets-keygood"), broken]).expect("key list");
    let path = sb.write("backup.yaml", list.as_bytes());
    let err = keys(&sb, &["restore", s(&path)]).failure("item 2");
    assert!(
        err.contains("kube-system/sealed-secrets-keybroken") && err.contains("data.tls.crt"),
        "{err}"
    );
    assert!(err.contains("nothing was restored"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[test]
fn restore_refuses_other_kinds_and_empty_lists() {
    let sb = Sandbox::new();
    let path = sb.write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
    );
    keys(&sb, &["restore", s(&path)]).failure("document 1");
    let path = sb.write("empty.yaml", "apiVersion: v1\nkind: List\nitems: []\n");
    keys(&sb, &["restore", s(&path)]).failure("holds no key Secrets");
}

#[test]
fn passphrase_backup_asks_for_the_passphrase_and_rejects_a_wrong_one() {
    let sb = Sandbox::new();
    let list = key_list(&[key_secret("sealed-secrets-keyabc")]).expect("key list");
    let text = bundle::seal_with_passphrase_work_factor("correct horse", list.as_bytes(), 2)
        .expect("seal");
    let path = sb.write("backup.age", &text);
    keys(&sb, &["restore", s(&path)]).failure("protected by a passphrase");
    let wrong = sb.write("wrong.txt", "battery staple\n");
    keys(&sb, &["restore", s(&path), "--passphrase-file", s(&wrong)]).failure("wrong passphrase");
    // The right passphrase opens it and every key reads; only then is the cluster
    // needed (and this sandbox has none).
    let right = sb.write("right.txt", "correct horse\n");
    let err = keys(
        &sb,
        &[
            "restore",
            s(&path),
            "--passphrase-file",
            s(&right),
            "--kubeconfig",
            "missing-kubeconfig",
        ],
    )
    .failure("cannot read kubeconfig missing-kubeconfig");
    assert!(!err.contains("passphrase"), "{err}");
}

#[test]
fn escrow_bundle_needs_a_matching_identity() {
    let sb = Sandbox::new();
    let escrow = AgeIdentity::generate();
    let list = key_list(&[key_secret("sealed-secrets-keyabc")]).expect("key list");
    let text =
        bundle::seal(std::slice::from_ref(escrow.recipient()), list.as_bytes()).expect("seal");
    let path = sb.write("bundle.age", &text);
    keys(&sb, &["restore", s(&path)]).failure("pass --identity");
    let other = sb.write(
        "other.key",
        AgeIdentity::generate().expose_identity_file().as_bytes(),
    );
    keys(&sb, &["restore", s(&path), "-i", s(&other)])
        .failure("none of the --identity files matches");
}

#[test]
fn escrow_config_map_is_opened_from_its_bundle_key() {
    let sb = Sandbox::new();
    let escrow = AgeIdentity::generate();
    let list = key_list(&[key_secret("sealed-secrets-keyabc")]).expect("key list");
    let text =
        bundle::seal(std::slice::from_ref(escrow.recipient()), list.as_bytes()).expect("seal");
    let config_map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sealant-escrow-bundle", "namespace": "kube-system"},
        "data": {"bundle.age": text},
    });
    let yaml = serde_yaml_ng::to_string(&config_map).expect("YAML");
    let path = sb.write("escrow-cm.yaml", yaml);
    let identity = sb.write("escrow.key", escrow.expose_identity_file().as_bytes());
    keys(&sb, &["restore", s(&path)]).failure("ConfigMap data.bundle.age");
    keys(
        &sb,
        &[
            "restore",
            s(&path),
            "-i",
            s(&identity),
            "--kubeconfig",
            "missing-kubeconfig",
        ],
    )
    .failure("cannot read kubeconfig missing-kubeconfig");

    let without = sb.write(
        "other-cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
    );
    keys(&sb, &["restore", s(&without)]).failure("invalid ConfigMap settings: no data.bundle.age");
}
