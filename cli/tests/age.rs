//! The `sealant` binary with age: sealing to recipients (`--recipient`,
//! `--recipients-file`, `--raw`, `--merge-into`, `create`), fetching the controller's
//! recipient, `keygen-escrow`, and `--recovery-unseal` with age identity files, key
//! Secrets holding `age.key`, and encrypted key bundles.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::{Sandbox, json, s, secret_data, secret_yaml};
use sealant_keys::{AgeIdentity, AgeRecipient, KeyRing, OffsetDateTime, Scope, age_envelope};

const DB: &[(&str, &str)] = &[("password", "hunter2"), ("user", "admin")];

fn expect_db_values(secret: &serde_json::Value) {
    assert_eq!(
        secret_data(secret),
        vec![
            ("password".to_owned(), b"hunter2".to_vec()),
            ("user".to_owned(), b"admin".to_vec())
        ]
    );
}

/// Writes `identity` as an identity file (age-keygen layout) and returns its path.
fn identity_file(sb: &Sandbox, name: &str, identity: &AgeIdentity) -> String {
    let path = sb.write(name, identity.expose_identity_file().as_bytes());
    s(&path).to_owned()
}

fn recovery(sb: &Sandbox, sealed: &str, key: &str) -> common::Run {
    sb.run(
        &["--recovery-unseal", "--recovery-private-key", key],
        sealed,
    )
}

fn decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("standard base64")
}

#[test]
fn sealed_to_two_recipients_each_identity_alone_recovers_it_in_every_scope() {
    let sb = Sandbox::new();
    let (a, b) = (AgeIdentity::generate(), AgeIdentity::generate());
    let (key_a, key_b) = (
        identity_file(&sb, "a.key", &a),
        identity_file(&sb, "b.key", &b),
    );
    for scope in ["strict", "namespace-wide", "cluster-wide"] {
        let sealed = sb
            .run(
                &[
                    "--recipient",
                    &a.recipient().to_string(),
                    "--recipient",
                    &b.recipient().to_string(),
                    "--scope",
                    scope,
                ],
                &secret_yaml(Some("prod"), "db", DB),
            )
            .success();
        let value = json(&sealed);
        assert_eq!(value["kind"], "SealedSecret");
        for blob in value["spec"]["encryptedData"]
            .as_object()
            .expect("data")
            .values()
        {
            let blob = decode(blob.as_str().expect("string"));
            assert!(age_envelope::is_age(&blob), "{scope}: not an age blob");
            assert_eq!(
                blob.windows(9).filter(|w| w == b"-> X25519").count(),
                2,
                "{scope}: one stanza per recipient"
            );
        }
        if scope != "strict" {
            assert_eq!(
                value["metadata"]["annotations"][format!("sealedsecrets.bitnami.com/{scope}")],
                "true"
            );
        }
        for key in [&key_a, &key_b] {
            let secret = json(&recovery(&sb, &sealed, key).success());
            assert_eq!(secret["metadata"]["name"], "db");
            expect_db_values(&secret);
        }
        let stranger = identity_file(&sb, "c.key", &AgeIdentity::generate());
        recovery(&sb, &sealed, &stranger).failure("unable to decrypt sealed secret");
    }
}

#[test]
fn strict_age_value_moved_to_another_namespace_or_name_is_unable_to_decrypt() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let key = identity_file(&sb, "id.key", &id);
    let sealed = sb
        .run(
            &["--recipient", &id.recipient().to_string()],
            &secret_yaml(Some("prod"), "db", DB),
        )
        .success();
    expect_db_values(&json(&recovery(&sb, &sealed, &key).success()));
    let moved = sealed.replace("\"namespace\": \"prod\"", "\"namespace\": \"dev\"");
    assert_ne!(moved, sealed);
    recovery(&sb, &moved, &key).failure("unable to decrypt sealed secret");
    let renamed = sealed.replace("\"name\": \"db\"", "\"name\": \"other\"");
    assert_ne!(renamed, sealed);
    recovery(&sb, &renamed, &key).failure("unable to decrypt sealed secret");
}

#[test]
fn recipients_file_with_comments_and_blank_lines_seals_to_every_recipient() {
    let sb = Sandbox::new();
    let (a, b, c) = (
        AgeIdentity::generate(),
        AgeIdentity::generate(),
        AgeIdentity::generate(),
    );
    let file = sb.write(
        "recipients.txt",
        format!(
            "# staging cluster\n{}\n\n  # production cluster\n{}\r\n",
            a.recipient(),
            b.recipient()
        ),
    );
    let sealed = sb
        .run(
            &[
                "--recipients-file",
                s(&file),
                "--recipient",
                &c.recipient().to_string(),
                "-o",
                "yaml",
            ],
            &secret_yaml(Some("prod"), "db", DB),
        )
        .success();
    assert!(sealed.starts_with("---\n"), "{sealed}");
    for (name, id) in [("a.key", &a), ("b.key", &b), ("c.key", &c)] {
        let key = identity_file(&sb, name, id);
        expect_db_values(&json(&recovery(&sb, &sealed, &key).success()));
    }
}

#[test]
fn bad_recipient_text_names_the_flag_the_line_and_the_problem() {
    let sb = Sandbox::new();
    let input = secret_yaml(Some("prod"), "db", DB);
    let err = sb
        .run(&["--recipient", "age1nope"], &input)
        .failure("--recipient");
    assert!(err.contains("age1nope"), "{err}");
    assert!(err.contains("Bech32"), "{err}");

    sb.run(&["--recipient", "ssh-ed25519 AAAA"], &input)
        .failure("SSH public keys are not supported");

    let good = AgeIdentity::generate().recipient().to_string();
    let file = sb.write("r.txt", format!("# ok\n{good}\nnot-a-recipient\n"));
    let err = sb
        .run(&["--recipients-file", s(&file)], &input)
        .failure("at line 3");
    assert!(
        err.contains(&format!("--recipients-file {}", s(&file))),
        "{err}"
    );
    assert!(err.contains("not an age recipient"), "{err}");

    let empty = sb.write("empty.txt", "# nobody yet\n\n");
    sb.run(&["--recipients-file", s(&empty)], &input)
        .failure("no age1... recipient found");

    sb.run(&["--recipients-file", "missing.txt"], &input)
        .failure("--recipients-file missing.txt: cannot read the file");
}

#[test]
fn a_secret_key_given_as_a_recipient_is_refused_and_never_echoed() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let secret = id.expose_secret().to_string();
    let input = secret_yaml(Some("prod"), "db", DB);
    let tail = &secret["AGE-SECRET-KEY-1".len()..];
    let err = sb
        .run(&["--recipient", &secret], &input)
        .failure("this is an identity (secret key), not a recipient");
    assert!(!err.to_ascii_uppercase().contains(tail), "{err}");

    // An identity file handed to --recipients-file by mistake.
    let key = identity_file(&sb, "id.key", &id);
    let err = sb
        .run(&["--recipients-file", &key], &input)
        .failure("at line 2");
    assert!(err.contains("[REDACTED]"), "{err}");
    assert!(!err.to_ascii_uppercase().contains(tail), "{err}");
}

#[test]
fn certificate_and_recipients_together_are_refused() {
    let sb = Sandbox::new();
    let r = AgeIdentity::generate().recipient().to_string();
    let input = secret_yaml(Some("prod"), "db", DB);
    sb.run(&["--cert", &sb.cert(), "--recipient", &r], &input)
        .failure("--cert (or SEALED_SECRETS_CERT) cannot be combined with --recipient");
    let mut cmd = sb.command();
    cmd.env("SEALED_SECRETS_CERT", sb.cert())
        .args(["--recipient", &r]);
    common::run(cmd, &input).failure("unset SEALED_SECRETS_CERT");
    // --fetch-cert with a recipient is a usage error (exit 1, nothing on stdout).
    let run = sb.run(&["--fetch-cert", "--recipient", &r], "");
    assert_eq!(run.code(), Some(1));
    assert_eq!(run.stdout(), "");
    assert!(
        run.stderr().contains("cannot be used with"),
        "{}",
        run.stderr()
    );
}

#[test]
fn recipients_are_refused_outside_sealing_modes() {
    let sb = Sandbox::new();
    let r = AgeIdentity::generate().recipient().to_string();
    let key = identity_file(&sb, "id.key", &AgeIdentity::generate());
    sb.run(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            &key,
            "--recipient",
            &r,
        ],
        "{}",
    )
    .failure("cannot be combined with --recovery-unseal");
    sb.run(&["--re-encrypt", "--recipient", &r], "{}")
        .failure("cannot be combined with --re-encrypt");
}

#[test]
fn raw_with_a_recipient_prints_bare_base64_of_an_age_blob_bound_to_its_label() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let mut ring = KeyRing::new();
    ring.insert_age(id.clone(), OffsetDateTime::UNIX_EPOCH, None);
    let value = sb.write("value.txt", "s3cret");
    for (scope, label) in [
        ("strict", &b"prod/db"[..]),
        ("namespace-wide", b"prod"),
        ("cluster-wide", b""),
    ] {
        let out = sb
            .run(
                &[
                    "--raw",
                    "--recipient",
                    &id.recipient().to_string(),
                    "--scope",
                    scope,
                    "-n",
                    "prod",
                    "--name",
                    "db",
                    "--from-file",
                    s(&value),
                ],
                "",
            )
            .success();
        assert!(!out.ends_with('\n'), "raw output has no newline");
        let blob = decode(&out);
        assert!(age_envelope::is_age(&blob), "{scope}");
        let opened = ring
            .open(&blob, label, None)
            .expect("opens under its label");
        assert_eq!(opened.plaintext.expose_secret(), b"s3cret");
        if scope != "cluster-wide" {
            assert!(ring.open(&blob, b"dev/db", None).is_err(), "{scope}");
        }
    }
    // Strict scope still needs a name, with kubeseal's words.
    sb.run(
        &[
            "--raw",
            "--recipient",
            &id.recipient().to_string(),
            "-n",
            "prod",
        ],
        "v",
    )
    .failure("must provide the --name flag with --raw and --scope strict");
}

#[test]
fn merge_into_a_yaml_file_with_recipients_keeps_yaml_and_the_other_values() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let r = id.recipient().to_string();
    let key = identity_file(&sb, "id.key", &id);
    let file = sb.path("sealed.yaml");
    let first = sb
        .run(
            &["--recipient", &r, "-o", "yaml", "--scope", "namespace-wide"],
            &secret_yaml(
                Some("prod"),
                "db",
                &[("user", "admin"), ("password", "old")],
            ),
        )
        .success();
    std::fs::write(&file, &first).expect("write");
    let user_before = first
        .lines()
        .find(|l| l.trim_start().starts_with("user:"))
        .expect("user line")
        .to_owned();

    sb.run(
        &["--recipient", &r, "--merge-into", s(&file)],
        &secret_yaml(None, "ignored", &[("password", "hunter2")]),
    )
    .success();
    let merged = sb.read("sealed.yaml");
    assert!(merged.starts_with("---\n"), "{merged}");
    assert!(merged.contains("kind: SealedSecret"), "{merged}");
    assert!(
        merged.contains(&user_before),
        "other values are kept byte for byte"
    );
    assert!(
        merged.contains("sealedsecrets.bitnami.com/namespace-wide"),
        "{merged}"
    );
    expect_db_values(&json(&recovery(&sb, &merged, &key).success()));
}

#[test]
fn create_seals_to_recipients_without_a_certificate() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let key = identity_file(&sb, "id.key", &id);
    let sealed = sb
        .run(
            &[
                "create",
                "db",
                "-n",
                "prod",
                "--from-literal",
                "password=hunter2",
                "--from-literal",
                "user=admin",
                "--recipient",
                &id.recipient().to_string(),
            ],
            "",
        )
        .success();
    expect_db_values(&json(&recovery(&sb, &sealed, &key).success()));
}

#[test]
fn recovery_takes_rsa_keys_and_age_identities_together() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let age_key = identity_file(&sb, "id.key", &id);
    let age_sealed = sb
        .run(
            &["--recipient", &id.recipient().to_string()],
            &secret_yaml(Some("a"), "one", DB),
        )
        .success();
    let rsa_sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("b"), "two", DB))
        .success();
    let out = sb
        .run(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                &format!("{},{age_key}", sb.key()),
            ],
            &format!("{age_sealed}{rsa_sealed}"),
        )
        .success();
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("JSON stream");
    assert_eq!(docs.len(), 2);
    for doc in &docs {
        expect_db_values(doc);
    }
    // The RSA key alone cannot open the age value.
    recovery(&sb, &age_sealed, &sb.key()).failure("unable to decrypt sealed secret");
}

#[test]
fn bad_age_identity_file_names_the_line_and_never_the_key() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let secret = id.expose_secret().to_string();
    let cut = &secret[..secret.len() - 5];
    let file = sb.write("bad.key", format!("# created: now\n{secret}\n{cut}\n"));
    let err = recovery(&sb, "{}", s(&file)).failure("at line 3");
    assert!(
        err.contains(&format!("--recovery-private-key {}", s(&file))),
        "{err}"
    );
    assert!(err.contains("invalid age identity"), "{err}");
    assert!(!err.to_ascii_uppercase().contains(&cut[20..]), "{err}");
}

#[test]
fn keygen_escrow_writes_a_0600_identity_and_prints_a_parseable_recipient() {
    let sb = Sandbox::new();
    let run = sb.run(&["keygen-escrow", "-o", "escrow.key"], "");
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let stdout = run.stdout();
    let recipient: AgeRecipient = stdout.trim_end().parse().expect("stdout is a recipient");
    assert_eq!(stdout, format!("{recipient}\n"), "exactly one line");
    let stderr = run.stderr();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("offline"), "{stderr}");
    assert!(!stderr.contains("AGE-SECRET-KEY"), "{stderr}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(sb.path("escrow.key"))
            .expect("identity file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = sb.read("escrow.key");
    assert!(text.starts_with("# created: "), "{text}");
    let ids = AgeIdentity::parse_file(&text).expect("identity file");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].recipient(), &recipient);

    // What is sealed to the printed recipient opens with the written file.
    let sealed = sb
        .run(
            &["--recipient", &recipient.to_string()],
            &secret_yaml(Some("prod"), "db", DB),
        )
        .success();
    expect_db_values(&json(&recovery(&sb, &sealed, "escrow.key").success()));
}

#[test]
fn keygen_escrow_refuses_to_overwrite_unless_forced() {
    let sb = Sandbox::new();
    let created = sb.run(&["keygen-escrow", "--output", "escrow.key"], "");
    assert_eq!(created.code(), Some(0), "{}", created.stderr());
    let before = sb.read("escrow.key");

    sb.run(&["keygen-escrow", "-o", "escrow.key"], "")
        .failure("escrow.key already exists; pass --force to replace it");
    assert_eq!(sb.read("escrow.key"), before, "the old identity is kept");

    let forced = sb.run(&["keygen-escrow", "-o", "escrow.key", "--force"], "");
    assert_eq!(forced.code(), Some(0), "{}", forced.stderr());
    let after = sb.read("escrow.key");
    assert_ne!(after, before);
    let ids = AgeIdentity::parse_file(&after).expect("identity file");
    assert_eq!(ids[0].recipient().to_string(), forced.stdout().trim_end());
}

#[test]
fn keygen_escrow_needs_an_output_and_writes_to_a_pipe_only_when_asked() {
    let sb = Sandbox::new();
    sb.run(&["keygen-escrow"], "")
        .failure("keygen-escrow needs -o FILE");
    let run = sb.run(&["keygen-escrow", "-o", "-"], "");
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let ids = AgeIdentity::parse_file(&run.stdout()).expect("identity file on stdout");
    let stderr = run.stderr();
    assert!(
        stderr.starts_with(&format!("Public key: {}\n", ids[0].recipient())),
        "{stderr}"
    );
}

/// A fake API server that answers the Service lookup and the proxied
/// `/v1/age-recipient` with `status` and `body`, and records each request line.
fn fake_api(
    sb: &Sandbox,
    status: &'static str,
    body: String,
) -> (PathBuf, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let request_line = request_line.trim().to_owned();
            seen.lock().expect("lock").push(request_line.clone());
            let path = request_line.split(' ').nth(1).unwrap_or_default();
            let (status, kind, reply) = match path {
                "/api/v1/namespaces/kube-system/services/sealed-secrets-controller" => (
                    "200 OK",
                    "application/json",
                    r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"sealed-secrets-controller"},
                       "spec":{"ports":[{"name":"http","port":8080}]}}"#
                        .to_owned(),
                ),
                "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/age-recipient" => {
                    (status, "text/plain", body.clone())
                }
                _ => (
                    "404 Not Found",
                    "application/json",
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#
                        .to_owned(),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    let kubeconfig = sb.write(
        "fake-kubeconfig",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\n\
             clusters:\n- name: fake\n  cluster: {{server: \"http://{addr}\"}}\n\
             users:\n- name: fake\n  user: {{token: t}}\n"
        ),
    );
    (kubeconfig, requests)
}

#[test]
fn fetch_recipient_goes_through_the_service_proxy_and_prints_one_line() {
    let sb = Sandbox::new();
    let recipient = AgeIdentity::generate().recipient().to_string();
    let (kubeconfig, requests) = fake_api(&sb, "200 OK", format!("{recipient}\n"));
    let out = sb
        .run(&["--fetch-recipient", "--kubeconfig", s(&kubeconfig)], "")
        .success();
    assert_eq!(out, format!("{recipient}\n"));
    assert_eq!(
        requests.lock().expect("lock").clone(),
        vec![
            "GET /api/v1/namespaces/kube-system/services/sealed-secrets-controller HTTP/1.1",
            "GET /api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/age-recipient HTTP/1.1",
        ]
    );
}

#[test]
fn fetch_recipient_refuses_an_answer_that_is_not_a_recipient() {
    let sb = Sandbox::new();
    let (kubeconfig, _) = fake_api(&sb, "200 OK", "<html>hello</html>\n".to_owned());
    sb.run(&["--fetch-recipient", "--kubeconfig", s(&kubeconfig)], "")
        .failure("the controller's answer to /v1/age-recipient is not an age recipient");
}

#[test]
fn fetch_recipient_from_a_controller_without_age_says_so() {
    let sb = Sandbox::new();
    let (kubeconfig, _) = fake_api(
        &sb,
        "404 Not Found",
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#.to_owned(),
    );
    sb.run(&["--fetch-recipient", "--kubeconfig", s(&kubeconfig)], "")
        .failure("does not serve /v1/age-recipient");
}

/// The independent Python age decryptor (`keys/tests/testdata/open_age_blob.py`) opens
/// a raw value sealed by the CLI, and refuses it under another label. The interpreter is
/// `$SEALANT_PYTHON` (default `python3`, which must have `cryptography`); a missing
/// interpreter fails this test rather than skipping it.
#[test]
fn python_age_decryptor_opens_a_raw_value_sealed_by_the_cli() {
    let sb = Sandbox::new();
    let id = AgeIdentity::generate();
    let key = identity_file(&sb, "id.key", &id);
    let out = sb
        .run(
            &[
                "--raw",
                "--recipient",
                &id.recipient().to_string(),
                "-n",
                "prod",
                "--name",
                "db",
            ],
            "s3cret\u{0}\u{ff}",
        )
        .success();
    let blob = sb.write("blob.age", decode(&out));
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../keys/tests/testdata/open_age_blob.py");
    let python = std::env::var("SEALANT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let open = |namespace: &str| {
        Command::new(&python)
            .arg(&script)
            .args(["--identity", &key, "--scope", Scope::Strict.as_str()])
            .args(["--namespace", namespace, "--name", "db"])
            .arg(&blob)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python:?} ($SEALANT_PYTHON): {e}"))
    };
    let opened = open("prod");
    let stderr = String::from_utf8_lossy(&opened.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "{python} lacks `cryptography`: run scripts/test.sh or set SEALANT_PYTHON\n{stderr}"
    );
    assert!(opened.status.success(), "{stderr}");
    assert_eq!(opened.stdout, "s3cret\u{0}\u{ff}".as_bytes());
    let moved = open("dev");
    assert_eq!(
        moved.status.code(),
        Some(1),
        "cannot decrypt under another label"
    );
    assert!(moved.stdout.is_empty());
}

/// A key Secret of the main test key, with `identity` as its `age.key` when given.
fn key_secret(identity: Option<&AgeIdentity>) -> k8s_openapi::api::core::v1::Secret {
    let pair = common::pair();
    k8s_openapi::api::core::v1::Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("sealed-secrets-keyabcde".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(sealant_crds::key_secret::key_data(
            &pair.key, &pair.cert, identity,
        )),
        ..Default::default()
    }
}

/// An escrow bundle of [`key_secret`] (with `generation` as its age.key), sealed to
/// `escrow`.
fn escrow_bundle(escrow: &AgeIdentity, generation: &AgeIdentity) -> String {
    let list =
        sealant_crds::key_secret::key_list(&[key_secret(Some(generation))]).expect("key list");
    sealant_keys::bundle::seal(&[escrow.recipient().clone()], list.as_bytes()).expect("bundle")
}

#[test]
fn recovery_opens_an_encrypted_bundle_with_an_escrow_identity_given_in_either_order() {
    let sb = Sandbox::new();
    let (escrow, generation) = (AgeIdentity::generate(), AgeIdentity::generate());
    let escrow_key = identity_file(&sb, "escrow.key", &escrow);
    let bundle = sb.write("escrow-bundle.age", escrow_bundle(&escrow, &generation));
    let rsa_sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("b"), "two", DB))
        .success();
    // Sealed to the key generation's age identity, which only the bundle holds.
    let age_sealed = sb
        .run(
            &["--recipient", &generation.recipient().to_string()],
            &secret_yaml(Some("a"), "one", DB),
        )
        .success();
    for keys in [[&escrow_key, s(&bundle)], [s(&bundle), &escrow_key]] {
        for sealed in [&rsa_sealed, &age_sealed] {
            let out = sb
                .run(
                    &[
                        "--recovery-unseal",
                        "--recovery-private-key",
                        keys[0],
                        "--recovery-private-key",
                        keys[1],
                    ],
                    sealed,
                )
                .success();
            expect_db_values(&json(&out));
        }
    }
    // The bundle alone: nothing to open it with, and the error names the file.
    let err = recovery(&sb, &rsa_sealed, s(&bundle)).failure("no age identity to open it");
    assert!(
        err.contains(&format!("--recovery-private-key {}", s(&bundle))),
        "{err}"
    );
    // The wrong identity.
    let other = identity_file(&sb, "other.key", &AgeIdentity::generate());
    sb.run(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            &format!("{},{other}", s(&bundle)),
        ],
        &rsa_sealed,
    )
    .failure("cannot decrypt the key bundle with any of the 1 age identities given");
}

#[test]
fn recovery_reads_the_bundle_of_the_escrow_configmap() {
    let sb = Sandbox::new();
    let (escrow, generation) = (AgeIdentity::generate(), AgeIdentity::generate());
    let escrow_key = identity_file(&sb, "escrow.key", &escrow);
    let armored = escrow_bundle(&escrow, &generation);
    let config_map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sealant-escrow-bundle", "namespace": "kube-system"},
        "data": {"bundle.age": armored},
    });
    let cm = sb.write(
        "cm.yaml",
        serde_yaml_ng::to_string(&config_map).expect("yaml"),
    );
    let sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("b"), "two", DB))
        .success();
    let out = sb
        .run(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                &format!("{},{escrow_key}", s(&cm)),
            ],
            &sealed,
        )
        .success();
    expect_db_values(&json(&out));
}

#[test]
fn recovery_opens_age_values_with_the_age_key_of_a_key_secret() {
    let sb = Sandbox::new();
    let generation = AgeIdentity::generate();
    let file = sb.write(
        "key-secret.yaml",
        sealant_crds::secret_to_yaml(&key_secret(Some(&generation))),
    );
    let sealed = sb
        .run(
            &["--recipient", &generation.recipient().to_string()],
            &secret_yaml(Some("a"), "one", DB),
        )
        .success();
    expect_db_values(&json(&recovery(&sb, &sealed, s(&file)).success()));
    // Without age.key, the same Secret opens nothing sealed to age.
    let bare = sb.write("bare.yaml", sealant_crds::secret_to_yaml(&key_secret(None)));
    recovery(&sb, &sealed, s(&bare)).failure("unable to decrypt sealed secret");
}

#[test]
fn a_passphrase_bundle_takes_its_passphrase_from_the_environment_only() {
    let sb = Sandbox::new();
    let list = sealant_crds::key_secret::key_list(&[key_secret(None)]).expect("key list");
    let bundle =
        sealant_keys::bundle::seal_with_passphrase_work_factor("correct horse", list.as_bytes(), 4)
            .expect("bundle");
    let file = sb.write("backup.age", bundle);
    let sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("b"), "two", DB))
        .success();
    let args = ["--recovery-unseal", "--recovery-private-key", s(&file)];
    let mut cmd = sb.command();
    cmd.args(args).env_remove("SEALANT_BACKUP_PASSPHRASE");
    common::run(cmd, &sealed).failure(&format!(
        "--recovery-private-key {}: a passphrase-protected key bundle: set \
         SEALANT_BACKUP_PASSPHRASE",
        s(&file)
    ));
    let mut cmd = sb.command();
    cmd.args(args).env("SEALANT_BACKUP_PASSPHRASE", "wrong");
    common::run(cmd, &sealed).failure("cannot decrypt the key bundle with the passphrase");
    let mut cmd = sb.command();
    cmd.args(args)
        .env("SEALANT_BACKUP_PASSPHRASE", "correct horse");
    expect_db_values(&json(&common::run(cmd, &sealed).success()));
}
