//! The reverse direction of the age known-answer vectors: values sealed by
//! sealant-keys (through the `age` crate) are opened by an independent age v1
//! implementation (`testdata/open_age_blob.py`, Python `cryptography`, written from the
//! age specification and the envelope layout in `src/age.rs`).
//!
//! The interpreter is `$SEALANT_PYTHON`, or `python3`. A missing interpreter or a
//! missing `cryptography` package FAILS these tests with instructions, on purpose: a
//! skipped interop test looks exactly like a passing one.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use sealant_keys::{AgeIdentity, AgeRecipient, Scope, age_envelope, bundle};

fn run(args: &[&OsStr]) -> Output {
    let script = common::testdata().join("open_age_blob.py");
    Command::new(common::python())
        .arg(Path::new(&script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

/// Runs `open_age_blob.py` on `blob` with `identity`, written as an identity file.
fn python_open(
    identity: &AgeIdentity,
    blob: &[u8],
    scope: Scope,
    namespace: &str,
    name: &str,
) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let blob_file = dir.path().join("blob.age");
    std::fs::write(&blob_file, blob).expect("write blob");
    let key_file = dir.path().join("identity.txt");
    std::fs::write(&key_file, identity.expose_identity_file().as_bytes()).expect("write key");
    run(&[
        "--identity".as_ref(),
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

fn python_open_passphrase(passphrase: &str, blob: &[u8]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let blob_file = dir.path().join("blob.age");
    std::fs::write(&blob_file, blob).expect("write blob");
    let pass_file = dir.path().join("passphrase");
    std::fs::write(&pass_file, passphrase).expect("write passphrase");
    run(&[
        "--passphrase-file".as_ref(),
        pass_file.as_os_str(),
        blob_file.as_os_str(),
    ])
}

fn assert_opened(out: &Output, expected: &[u8], what: &str) {
    assert!(
        out.status.success(),
        "{what}: open_age_blob.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == expected,
        "{what}: plaintext differs ({} bytes, expected {})",
        out.stdout.len(),
        expected.len()
    );
}

/// A value whose envelope spans two STREAM chunks.
fn large_value() -> Vec<u8> {
    (0..64 * 1024 + 777)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[test]
fn python_opens_values_sealed_here_for_every_scope() {
    let identity = AgeIdentity::generate();
    let to = [identity.recipient().clone()];
    let large = large_value();
    let values: [&[u8]; 4] = [b"s3cret", b"", &[0xff, 0x00, 0xfe, 0x80, 0x0a], &large];
    for scope in Scope::ALL {
        for value in values {
            let blob = age_envelope::seal(&to, &scope.label("prod", "db"), value).expect("seal");
            let out = python_open(&identity, &blob, scope, "prod", "db");
            assert_opened(&out, value, &format!("{scope}, {} bytes", value.len()));
        }
    }
}

#[test]
fn python_opens_a_value_sealed_to_several_recipients_with_each_identity() {
    let ids = [AgeIdentity::generate(), AgeIdentity::generate()];
    let to: Vec<AgeRecipient> = ids.iter().map(|i| i.recipient().clone()).collect();
    let blob = age_envelope::seal(&to, b"prod", b"two clusters").expect("seal");
    for identity in &ids {
        let out = python_open(identity, &blob, Scope::NamespaceWide, "prod", "any");
        assert_opened(&out, b"two clusters", "namespace-wide, two recipients");
    }
    let stranger = python_open(
        &AgeIdentity::generate(),
        &blob,
        Scope::NamespaceWide,
        "prod",
        "x",
    );
    common::assert_refused(&stranger, "an identity it was not sealed to");
}

#[test]
fn python_refuses_a_strict_value_moved_to_another_namespace_or_name() {
    let identity = AgeIdentity::generate();
    let blob = age_envelope::seal(
        &[identity.recipient().clone()],
        &Scope::Strict.label("prod", "db"),
        b"bound",
    )
    .expect("seal");
    // The same blob opens where it belongs, so the failures below are the label's doing.
    assert_opened(
        &python_open(&identity, &blob, Scope::Strict, "prod", "db"),
        b"bound",
        "home",
    );
    for (scope, namespace, name) in [
        (Scope::Strict, "dev", "db"),
        (Scope::Strict, "prod", "other"),
        (Scope::NamespaceWide, "prod", "db"),
        (Scope::ClusterWide, "prod", "db"),
    ] {
        let out = python_open(&identity, &blob, scope, namespace, name);
        common::assert_refused(&out, &format!("{scope} {namespace}/{name}"));
    }
}

#[test]
fn python_opens_passphrase_files_sealed_here_and_refuses_other_passphrases() {
    let large = large_value();
    for value in [&b"backup bytes"[..], b"", &large] {
        let blob = age_envelope::seal_with_passphrase_work_factor("correct horse", value, 10)
            .expect("seal");
        let out = python_open_passphrase("correct horse", &blob);
        assert_opened(&out, value, &format!("passphrase, {} bytes", value.len()));
    }
    let blob =
        age_envelope::seal_with_passphrase_work_factor("correct horse", b"x", 10).expect("seal");
    common::assert_refused(
        &python_open_passphrase("wrong horse", &blob),
        "wrong passphrase",
    );
}

/// Runs `open_age_blob.py --bundle` on an armored key bundle.
fn python_open_bundle(secret: (&str, &[u8]), file: &[u8]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle_file = dir.path().join("bundle.age");
    std::fs::write(&bundle_file, file).expect("write bundle");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, secret.1).expect("write secret");
    run(&[
        "--bundle".as_ref(),
        secret.0.as_ref(),
        secret_file.as_os_str(),
        bundle_file.as_os_str(),
    ])
}

#[test]
fn python_opens_armored_key_bundles_sealed_here_and_refuses_other_keys() {
    let list = large_value();
    let ids = [AgeIdentity::generate(), AgeIdentity::generate()];
    let to: Vec<AgeRecipient> = ids.iter().map(|i| i.recipient().clone()).collect();
    let file = bundle::seal(&to, &list).expect("seal");
    for identity in &ids {
        let key = identity.expose_identity_file();
        let out = python_open_bundle(("--identity", key.as_bytes()), file.as_bytes());
        assert_opened(&out, &list, "bundle to two recipients");
    }
    let stranger = AgeIdentity::generate().expose_identity_file();
    let out = python_open_bundle(("--identity", stranger.as_bytes()), file.as_bytes());
    common::assert_refused(&out, "bundle opened by an identity it was not sealed to");

    let file =
        bundle::seal_with_passphrase_work_factor("correct horse", b"keys", 10).expect("seal");
    let out = python_open_bundle(("--passphrase-file", b"correct horse"), file.as_bytes());
    assert_opened(&out, b"keys", "passphrase bundle");
    let out = python_open_bundle(("--passphrase-file", b"wrong"), file.as_bytes());
    common::assert_refused(&out, "passphrase bundle, wrong passphrase");
}
