//! The reverse direction of the known-answer vectors: values sealed by sealant-keys are
//! opened by an independent decryptor (`testdata/open_blob.py`, Python `cryptography`).
//!
//! The interpreter is `$SEALANT_PYTHON`, or `python3`. A missing interpreter or a
//! missing `cryptography` package FAILS these tests with instructions, on purpose: a
//! skipped interop test looks exactly like a passing one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sealant_keys::{Scope, hybrid};

fn script() -> PathBuf {
    common::testdata().join("open_blob.py")
}

/// Runs `open_blob.py` on `blob` with the vector key `key_name`.
fn python_open(key_name: &str, blob: &[u8], scope: Scope, namespace: &str, name: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let blob_file = dir.path().join("blob.bin");
    std::fs::write(&blob_file, blob).expect("write blob");
    let key_file: PathBuf = common::testdata().join(format!("{key_name}.pem"));
    run(&[
        "--key".as_ref(),
        key_file.as_os_str(),
        "--scope".as_ref(),
        scope.as_str().as_ref(),
        "--namespace".as_ref(),
        namespace.as_ref(),
        "--name".as_ref(),
        name.as_ref(),
        blob_file.as_os_str(),
    ])
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    let script = script();
    Command::new(common::python())
        .arg(Path::new(&script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

#[test]
fn python_opens_values_sealed_here_for_every_scope() {
    let values: [&[u8]; 3] = [b"s3cret", b"", &[0xff, 0x00, 0xfe, 0x80, 0x0a]];
    for key_name in ["rsa2048-a", "rsa4096"] {
        let cert = common::cert(key_name);
        for scope in Scope::ALL {
            for value in values {
                let blob = hybrid::seal(cert.public_key(), value, &scope.label("prod", "db"))
                    .expect("seal");
                let out = python_open(key_name, &blob, scope, "prod", "db");
                assert!(
                    out.status.success(),
                    "{key_name} {scope}: open_blob.py failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(out.stdout, value, "{key_name} {scope}: plaintext differs");
            }
        }
    }
}

#[test]
fn python_opens_a_large_value_sealed_here() {
    let cert = common::cert("rsa4096");
    let value: Vec<u8> = (0..64 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let label = Scope::NamespaceWide.label("prod", "db");
    let blob = hybrid::seal(cert.public_key(), &value, &label).expect("seal");
    let out = python_open("rsa4096", &blob, Scope::NamespaceWide, "prod", "other");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == value,
        "plaintext differs ({} bytes)",
        out.stdout.len()
    );
}

#[test]
fn python_refuses_a_strict_value_moved_to_another_namespace() {
    let cert = common::cert("rsa2048-a");
    let blob = hybrid::seal(
        cert.public_key(),
        b"bound",
        &Scope::Strict.label("prod", "db"),
    )
    .expect("seal");
    // The same blob opens where it belongs, so the failure below is the label's doing.
    let home = python_open("rsa2048-a", &blob, Scope::Strict, "prod", "db");
    assert!(
        home.status.success(),
        "{}",
        String::from_utf8_lossy(&home.stderr)
    );
    for (scope, namespace, name) in [
        (Scope::Strict, "dev", "db"),
        (Scope::Strict, "prod", "other"),
        (Scope::NamespaceWide, "prod", "db"),
        (Scope::ClusterWide, "prod", "db"),
    ] {
        let out = python_open("rsa2048-a", &blob, scope, namespace, name);
        common::assert_refused(&out, &format!("{scope} {namespace}/{name}"));
    }
}

#[test]
fn python_refuses_a_value_sealed_to_another_key() {
    let cert = common::cert("rsa2048-b");
    let blob = hybrid::seal(cert.public_key(), b"x", b"").expect("seal");
    let out = python_open("rsa2048-a", &blob, Scope::ClusterWide, "", "");
    common::assert_refused(&out, "a value sealed to another key");
}
