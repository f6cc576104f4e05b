//! sealant against the reference age tools (filippo.io/age's `age` and `age-keygen`,
//! pinned and built by `tests/peers/build.sh`), offline: no control plane.
//!
//! The README promises that the stock tools restore a key bundle at 3 a.m.:
//!
//! ```text
//!   age -d -i escrow.key escrow-bundle.age | kubectl apply -f -
//! ```
//!
//! These tests hold sealant to that, in both directions:
//!
//! ```text
//!   sealant keygen-escrow / bundle::seal ──▶ age -d -i          (bundle = the key List)
//!   sealant --raw --recipient            ──▶ age -d -i          (value = the envelope)
//!   age-keygen -o / -y                   ──▶ sealant --recipient, --recovery-private-key
//!   age -e [-a] -r                       ──▶ bundle::open, sealant --recovery-unseal
//! ```
//!
//! and must-fail: the wrong identity opens nothing, whichever side holds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealant_crds::key_secret::{
    ACTIVE, KEY_LABEL, TLS_SECRET_TYPE, key_data, key_list, parse_key_list, read_key_secret,
};
use sealant_e2e::fixtures::{key_and_cert, secret_yaml};
use sealant_e2e::{peers, tools};
use sealant_keys::{
    AgeIdentity, AgeRecipient, Certificate, Error, OffsetDateTime, PrivateKey, Scope, age_envelope,
    bundle,
};

/// The values of the Secret the CLI tests seal.
const DB: &[(&str, &str)] = &[("password", "hunter2"), ("user", "admin")];

/// A scratch directory for one test.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The real `age`.
fn age() -> Command {
    Command::new(&peers::peers().expect("test peers").age)
}

/// The real `age-keygen`.
fn age_keygen() -> Command {
    Command::new(&peers::peers().expect("test peers").age_keygen)
}

/// Our `sealant`, with no kubeconfig and no `SEALED_SECRETS_*` settings from the
/// caller's environment, in `dir`.
fn sealant(dir: &Dir) -> Command {
    let mut cmd = Command::new(tools::sealant().expect("sealant binary"));
    cmd.current_dir(dir.0.path())
        .env("HOME", dir.0.path())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("SEALANT_BACKUP_PASSPHRASE");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SEALED_SECRETS_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs `cmd` with `stdin`, failing the test unless it exits 0; returns stdout.
fn ok(cmd: &mut Command, stdin: &[u8]) -> Vec<u8> {
    tools::run(cmd, stdin).expect("command succeeds").stdout
}

/// Runs `cmd` with `stdin`, failing the test unless it exits non-zero with nothing on
/// stdout; returns stderr.
fn refused(cmd: &mut Command, stdin: &[u8]) -> String {
    let out: Output = tools::run_unchecked(cmd, stdin).expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "{cmd:?} printed to stdout on failure"
    );
    stderr
}

/// A fresh identity file written by the real `age-keygen -o`, and its recipient as
/// `age-keygen -y` prints it.
fn keygen(dir: &Dir, name: &str) -> (PathBuf, String) {
    let path = dir.path(name);
    ok(age_keygen().arg("-o").arg(&path), b"");
    let recipient = String::from_utf8(ok(age_keygen().arg("-y").arg(&path), b""))
        .expect("age-keygen -y prints text");
    let recipient = recipient.trim_end().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    assert!(!recipient.contains('\n'), "one recipient: {recipient}");
    (path, recipient)
}

/// The identities in an identity file, as sealant reads them.
fn identities(path: &Path) -> Vec<AgeIdentity> {
    let text = std::fs::read_to_string(path).expect("read identity file");
    AgeIdentity::parse_file(&text).expect("an identity file sealant reads")
}

/// A key Secret as the controller writes it, with `generation` as its `age.key`.
fn key_secret(key: &PrivateKey, cert: &Certificate, generation: &AgeIdentity) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("sealed-secrets-keyabcde".to_owned()),
            namespace: Some("kube-system".to_owned()),
            labels: Some(BTreeMap::from([(KEY_LABEL.to_owned(), ACTIVE.to_owned())])),
            ..ObjectMeta::default()
        },
        type_: Some(TLS_SECRET_TYPE.to_owned()),
        data: Some(key_data(key, cert, Some(generation))),
        ..Secret::default()
    }
}

/// The bundle plaintext of one fresh key generation: (RSA key, certificate, its age
/// identity, the YAML `List` of its key Secret).
fn key_generation() -> (PrivateKey, Certificate, AgeIdentity, String) {
    let (key, cert) = key_and_cert(OffsetDateTime::now_utc());
    let generation = AgeIdentity::generate();
    let list = key_list(&[key_secret(&key, &cert, &generation)]).expect("key list");
    let list = list.to_string();
    (key, cert, generation, list)
}

/// Asserts that `plaintext` is a key list holding exactly the key generation
/// (`key`, `generation`).
fn assert_holds_key(plaintext: &[u8], key: &PrivateKey, generation: &AgeIdentity) {
    let text = std::str::from_utf8(plaintext).expect("the key list is UTF-8");
    let secrets = parse_key_list(text).expect("a List of key Secrets");
    assert_eq!(secrets.len(), 1, "one key Secret");
    assert_eq!(
        secrets[0].metadata.name.as_deref(),
        Some("sealed-secrets-keyabcde")
    );
    let material = read_key_secret(&secrets[0]).expect("a readable key Secret");
    assert_eq!(material.key.fingerprint(), key.fingerprint());
    assert_eq!(material.certificate.fingerprint(), key.fingerprint());
    let age = material.age.expect("the bundle keeps age.key");
    assert_eq!(age.recipient(), generation.recipient());
}

/// The values of the Secret printed by `sealant --recovery-unseal`, decoded.
fn unsealed_values(stdout: &[u8]) -> BTreeMap<String, String> {
    let secret: serde_json::Value = serde_json::from_slice(stdout).expect("JSON Secret");
    assert_eq!(secret["kind"], "Secret");
    secret["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().expect("base64 string"))
                .expect("standard base64");
            (k.clone(), String::from_utf8(bytes).expect("UTF-8 value"))
        })
        .collect()
}

fn db_values() -> BTreeMap<String, String> {
    DB.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `sealant --recovery-unseal --recovery-private-key KEYS` (SealedSecret on stdin).
fn recover(dir: &Dir, keys: &str) -> Command {
    let mut cmd = sealant(dir);
    cmd.args(["--recovery-unseal", "--recovery-private-key", keys]);
    cmd
}

#[test]
fn real_age_decrypts_an_escrow_bundle_to_the_exact_key_list() {
    let dir = Dir::new();
    // The escrow identity as the README has it made: `sealant keygen-escrow -o escrow.key`.
    let escrow_key = dir.path("escrow.key");
    let printed = ok(
        sealant(&dir).args(["keygen-escrow", "-o", text(&escrow_key)]),
        b"",
    );
    let escrow: AgeRecipient = String::from_utf8(printed)
        .expect("recipient text")
        .parse()
        .expect("keygen-escrow prints its recipient");
    let stranger = AgeIdentity::generate();
    let (key, _, generation, list) = key_generation();
    let armored = bundle::seal(
        &[escrow.clone(), stranger.recipient().clone()],
        list.as_bytes(),
    )
    .expect("seal bundle");
    assert!(armored.starts_with(bundle::ARMOR_BEGIN));
    let file = dir.write("escrow-bundle.age", &armored);

    // As the README runs it: the file as an argument.
    let plaintext = ok(age().arg("-d").arg("-i").arg(&escrow_key).arg(&file), b"");
    assert_eq!(plaintext, list.as_bytes(), "byte-identical to the key list");
    assert_holds_key(&plaintext, &key, &generation);
    // And from stdin, as in `... | age -d -i escrow.key`.
    let piped = ok(
        age().arg("--decrypt").arg("--identity").arg(&escrow_key),
        armored.as_bytes(),
    );
    assert_eq!(piped, list.as_bytes());
    // Any one recipient of the bundle suffices, whoever made the identity file.
    let other_key = dir.write("other.key", stranger.expose_identity_file().as_bytes());
    let plaintext = ok(age().arg("-d").arg("-i").arg(&other_key).arg(&file), b"");
    assert_eq!(plaintext, list.as_bytes());
}

#[test]
fn age_keygen_identity_is_a_sealant_recipient_and_recovery_key() {
    let dir = Dir::new();
    let (id_file, recipient) = keygen(&dir, "id.key");
    // age-keygen's "# public key:" comment and `-y` agree, and sealant reads the file.
    let contents = std::fs::read_to_string(&id_file).expect("identity file");
    assert!(
        contents.contains(&format!("# public key: {recipient}\n")),
        "{contents}"
    );
    let ids = identities(&id_file);
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].recipient().to_string(), recipient);

    let input = secret_yaml("prod", "db", DB, Scope::Strict);
    let sealed = ok(
        sealant(&dir).args(["--recipient", &recipient]),
        input.as_bytes(),
    );
    let value: serde_json::Value = serde_json::from_slice(&sealed).expect("JSON SealedSecret");
    assert_eq!(value["kind"], "SealedSecret");
    for blob in value["spec"]["encryptedData"]
        .as_object()
        .expect("encryptedData")
        .values()
    {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(blob.as_str().expect("string"))
            .expect("base64");
        assert!(age_envelope::is_age(&blob), "sealed to the age recipient");
    }
    let out = ok(&mut recover(&dir, text(&id_file)), &sealed);
    assert_eq!(unsealed_values(&out), db_values());

    // Another age-keygen identity opens nothing.
    let (stranger, _) = keygen(&dir, "stranger.key");
    let stderr = refused(&mut recover(&dir, text(&stranger)), &sealed);
    assert!(
        stderr.contains("unable to decrypt sealed secret"),
        "{stderr}"
    );
}

#[test]
fn real_age_opens_a_raw_sealed_value_to_the_documented_envelope() {
    let dir = Dir::new();
    let (id_file, recipient) = keygen(&dir, "id.key");
    let value = b"s3cret\0\xff\nline two";
    let from_file = dir.write("value.bin", value);
    for (scope, label) in [
        (Scope::Strict, &b"prod/db"[..]),
        (Scope::NamespaceWide, b"prod"),
        (Scope::ClusterWide, b""),
    ] {
        let raw = ok(
            sealant(&dir).args([
                "--raw",
                "--recipient",
                &recipient,
                "--scope",
                scope.as_str(),
                "--namespace",
                "prod",
                "--name",
                "db",
                "--from-file",
                text(&from_file),
            ]),
            b"",
        );
        let blob = base64::engine::general_purpose::STANDARD
            .decode(&raw)
            .expect("--raw prints bare standard base64");
        let blob_file = dir.write("value.age", &blob);
        let opened = ok(age().arg("-d").arg("-i").arg(&id_file).arg(&blob_file), b"");

        let mut expected = b"sealant.dev/age/v1\n".to_vec();
        let length = u16::try_from(label.len()).expect("short label");
        expected.extend_from_slice(&length.to_be_bytes());
        expected.extend_from_slice(label);
        expected.extend_from_slice(value);
        assert_eq!(
            opened,
            expected,
            "{}: header, u16-BE label length, label {:?}, value",
            scope.as_str(),
            String::from_utf8_lossy(label)
        );
    }
}

#[test]
fn bundles_encrypted_by_real_age_open_in_sealant_armored_and_binary() {
    let dir = Dir::new();
    let (id_file, recipient) = keygen(&dir, "escrow.key");
    let (key, cert, generation, list) = key_generation();
    let list_file = dir.write("keys.yaml", &list);
    let cert_file = dir.write("cert.pem", cert.to_pem());

    let armored = dir.path("bundle.age");
    ok(
        age()
            .args(["-e", "-a", "-r", &recipient, "-o"])
            .arg(&armored)
            .arg(&list_file),
        b"",
    );
    let binary = dir.path("bundle.bin");
    ok(
        age()
            .args(["-e", "-r", &recipient, "-o"])
            .arg(&binary)
            .arg(&list_file),
        b"",
    );
    let armored_bytes = std::fs::read(&armored).expect("armored bundle");
    let binary_bytes = std::fs::read(&binary).expect("binary bundle");
    assert!(armored_bytes.starts_with(bundle::ARMOR_BEGIN.as_bytes()));
    assert!(age_envelope::is_age(&binary_bytes));
    assert!(!bundle::is_passphrase_protected(&armored_bytes));

    // Sealed with the bundle's RSA key and with its age identity: only the bundle
    // holds the private halves.
    let rsa_sealed = ok(
        sealant(&dir).args(["--cert", text(&cert_file)]),
        secret_yaml("prod", "db", DB, Scope::Strict).as_bytes(),
    );
    let age_sealed = ok(
        sealant(&dir).args(["--recipient", &generation.recipient().to_string()]),
        secret_yaml("prod", "db", DB, Scope::Strict).as_bytes(),
    );

    let ids = identities(&id_file);
    for (file, bytes) in [(&armored, &armored_bytes), (&binary, &binary_bytes)] {
        assert!(bundle::is_encrypted(bytes));
        let opened = bundle::open(&ids, bytes).expect("bundle::open reads real age output");
        assert_eq!(opened.expose_secret(), list.as_bytes());
        assert_holds_key(opened.expose_secret(), &key, &generation);

        let keys = format!("{},{}", text(&id_file), text(file));
        for sealed in [&rsa_sealed, &age_sealed] {
            let out = ok(&mut recover(&dir, &keys), sealed);
            assert_eq!(unsealed_values(&out), db_values(), "{}", file.display());
        }
        // The bundle without its identity opens nothing.
        refused(&mut recover(&dir, text(file)), &rsa_sealed);
    }
}

#[test]
fn real_age_with_the_wrong_identity_cannot_open_a_sealant_bundle() {
    let dir = Dir::new();
    let (_, recipient) = keygen(&dir, "escrow.key");
    let (wrong, _) = keygen(&dir, "wrong.key");
    let (_, _, _, list) = key_generation();
    let escrow: AgeRecipient = recipient.parse().expect("recipient");
    let armored = bundle::seal(&[escrow], list.as_bytes()).expect("seal bundle");
    let file = dir.write("escrow-bundle.age", &armored);
    let stderr = refused(age().arg("-d").arg("-i").arg(&wrong).arg(&file), b"");
    assert!(
        stderr.contains("no identity matched any of the recipients"),
        "{stderr}"
    );
}

#[test]
fn bundle_open_refuses_a_real_age_file_for_another_recipient() {
    let dir = Dir::new();
    let (id_file, _) = keygen(&dir, "escrow.key");
    let (_, other) = keygen(&dir, "other.key");
    let (_, _, _, list) = key_generation();
    let ids = identities(&id_file);
    for armor in [true, false] {
        let mut cmd = age();
        cmd.args(["-e", "-r", &other]);
        if armor {
            cmd.arg("-a");
        }
        let file = ok(&mut cmd, list.as_bytes());
        assert!(bundle::is_encrypted(&file), "armor {armor}");
        assert!(
            matches!(bundle::open(&ids, &file), Err(Error::Decrypt)),
            "armor {armor}: opened a bundle for another recipient"
        );
    }
}
