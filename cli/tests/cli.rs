//! End-to-end tests of the `sealant` binary: each test runs the real executable and
//! checks stdout, stderr and the exit code.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;

use common::{Sandbox, json, other_pair, pair, s, secret_data, secret_yaml};

const DB: &[(&str, &str)] = &[("password", "hunter2"), ("user", "admin")];

fn unseal(sb: &Sandbox, sealed: &str, key: &str) -> serde_json::Value {
    let out = sb
        .run(
            &["--recovery-unseal", "--recovery-private-key", key],
            sealed,
        )
        .success();
    json(&out)
}

fn expect_db_values(secret: &serde_json::Value) {
    assert_eq!(
        secret_data(secret),
        vec![
            ("password".to_owned(), b"hunter2".to_vec()),
            ("user".to_owned(), b"admin".to_vec())
        ]
    );
}

#[test]
fn seal_with_cert_prints_pretty_json_that_recovers_to_the_original_values() {
    let sb = Sandbox::new();
    let cert = sb.cert();
    let sealed = sb
        .run(&["--cert", &cert], &secret_yaml(Some("prod"), "db", DB))
        .success();
    assert!(sealed.starts_with("{\n"), "{sealed}");
    assert!(sealed.ends_with("}\n"), "{sealed}");
    assert!(!sealed.contains("hunter2"));
    let value = json(&sealed);
    assert_eq!(value["kind"], "SealedSecret");
    assert_eq!(value["apiVersion"], "bitnami.com/v1alpha1");
    assert_eq!(value["metadata"]["namespace"], "prod");
    assert_eq!(value["metadata"]["name"], "db");

    let secret = unseal(&sb, &sealed, &sb.key());
    assert_eq!(secret["metadata"]["name"], "db");
    assert_eq!(secret["metadata"]["namespace"], "prod");
    expect_db_values(&secret);
}

#[test]
fn every_scope_round_trips_through_recovery_unseal() {
    let sb = Sandbox::new();
    let (cert, key) = (sb.cert(), sb.key());
    for scope in ["strict", "namespace-wide", "cluster-wide"] {
        let sealed = sb
            .run(
                &["--cert", &cert, "--scope", scope],
                &secret_yaml(Some("prod"), "db", DB),
            )
            .success();
        let value = json(&sealed);
        let annotations = &value["metadata"]["annotations"];
        match scope {
            "strict" => assert!(annotations.is_null(), "{value}"),
            _ => assert_eq!(
                annotations[format!("sealedsecrets.bitnami.com/{scope}")],
                "true"
            ),
        }
        expect_db_values(&unseal(&sb, &sealed, &key));
    }
}

#[test]
fn scope_annotation_on_the_input_selects_the_scope() {
    let sb = Sandbox::new();
    let input = secret_yaml(Some("prod"), "db", DB).replace(
        "  namespace: prod\n",
        "  namespace: prod\n  annotations:\n    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
    );
    let sealed = sb.run(&["--cert", &sb.cert()], &input).success();
    let value = json(&sealed);
    assert_eq!(
        value["metadata"]["annotations"]["sealedsecrets.bitnami.com/namespace-wide"],
        "true"
    );
    // A namespace-wide value opens under another name in the same namespace.
    let renamed = sealed.replace("\"name\": \"db\"", "\"name\": \"other\"");
    expect_db_values(&unseal(&sb, &renamed, &sb.key()));
}

#[test]
fn explicit_strict_scope_keeps_the_input_annotation_as_kubeseal_does() {
    let sb = Sandbox::new();
    let input = secret_yaml(Some("prod"), "db", DB).replace(
        "  namespace: prod\n",
        "  namespace: prod\n  annotations:\n    sealedsecrets.bitnami.com/cluster-wide: \"true\"\n",
    );
    let sealed = sb
        .run(&["--cert", &sb.cert(), "--scope", "strict"], &input)
        .success();
    let value = json(&sealed);
    assert_eq!(
        value["metadata"]["annotations"]["sealedsecrets.bitnami.com/cluster-wide"],
        "true"
    );
    let moved = sealed.replace("\"namespace\": \"prod\"", "\"namespace\": \"dev\"");
    expect_db_values(&unseal(&sb, &moved, &sb.key()));
}

#[test]
fn strict_value_moved_to_another_namespace_cannot_be_unsealed() {
    let sb = Sandbox::new();
    let sealed = sb
        .run(
            &["--cert", &sb.cert()],
            &secret_yaml(Some("prod"), "db", DB),
        )
        .success();
    let moved = sealed.replace("\"namespace\": \"prod\"", "\"namespace\": \"dev\"");
    sb.run(
        &["--recovery-unseal", "--recovery-private-key", &sb.key()],
        &moved,
    )
    .failure("unable to decrypt sealed secret");
}

#[test]
fn yaml_output_starts_with_a_document_marker() {
    let sb = Sandbox::new();
    let out = sb
        .run(
            &["--cert", &sb.cert(), "-o", "yaml"],
            &secret_yaml(Some("prod"), "db", DB),
        )
        .success();
    assert!(out.starts_with("---\n"), "{out}");
    assert!(out.contains("kind: SealedSecret"), "{out}");
    // The recovered Secret comes out in YAML too, and opens from YAML input.
    let secret = sb
        .run(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                &sb.key(),
                "-o",
                "yaml",
            ],
            &out,
        )
        .success();
    assert!(secret.starts_with("---\n"), "{secret}");
    assert!(secret.contains("kind: Secret"), "{secret}");
}

#[test]
fn each_input_document_becomes_one_sealed_secret() {
    let sb = Sandbox::new();
    let input = format!(
        "{}---\n{}",
        secret_yaml(Some("a"), "one", &[("k", "1")]),
        secret_yaml(Some("b"), "two", &[("k", "2")])
    );
    let out = sb
        .run(&["--cert", &sb.cert(), "-o", "yaml"], &input)
        .success();
    assert_eq!(out.matches("kind: SealedSecret").count(), 2, "{out}");
    let recovered = sb
        .run(
            &["--recovery-unseal", "--recovery-private-key", &sb.key()],
            &out,
        )
        .success();
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&recovered)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("JSON stream");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["metadata"]["name"], "one");
    assert_eq!(secret_data(&docs[1]), vec![("k".to_owned(), b"2".to_vec())]);
}

#[test]
fn namespace_falls_back_to_default_without_any_kubeconfig() {
    let sb = Sandbox::new();
    let out = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(None, "db", DB))
        .success();
    assert_eq!(json(&out)["metadata"]["namespace"], "default");
}

#[test]
fn namespace_comes_from_the_kubeconfig_context_then_from_dash_n() {
    let sb = Sandbox::new();
    let config = sb.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\ncontexts:\n\
         - name: dev\n  context: {cluster: c, user: u, namespace: team-a}\n\
         clusters: []\nusers: []\n",
    );
    let cert = sb.cert();
    let input = secret_yaml(None, "db", DB);

    let out = sb
        .run(&["--cert", &cert, "--kubeconfig", s(&config)], &input)
        .success();
    assert_eq!(json(&out)["metadata"]["namespace"], "team-a");

    let mut cmd = sb.command();
    cmd.env("KUBECONFIG", &config).args(["--cert", &cert]);
    let out = common::run(cmd, &input).success();
    assert_eq!(json(&out)["metadata"]["namespace"], "team-a");

    let out = sb
        .run(
            &["--cert", &cert, "--kubeconfig", s(&config), "-n", "team-b"],
            &input,
        )
        .success();
    assert_eq!(json(&out)["metadata"]["namespace"], "team-b");
}

#[test]
fn namespace_flag_that_contradicts_the_input_is_an_error() {
    let sb = Sandbox::new();
    let stderr = sb
        .run(
            &["--cert", &sb.cert(), "-n", "b"],
            &secret_yaml(Some("a"), "db", DB),
        )
        .failure(r#"namespace mismatch: input secret is in namespace "a" but "b" was specified"#);
    assert!(stderr.contains("document 1 (a/db)"), "{stderr}");
}

#[test]
fn secret_without_a_name_is_refused_with_kubeseals_text() {
    let sb = Sandbox::new();
    let input = "apiVersion: v1\nkind: Secret\nmetadata:\n  namespace: a\nstringData:\n  k: v\n";
    sb.run(&["--cert", &sb.cert()], input)
        .failure("missing metadata.name in input Secret");
    // --name supplies it.
    let out = sb
        .run(&["--cert", &sb.cert(), "--name", "given"], input)
        .success();
    assert_eq!(json(&out)["metadata"]["name"], "given");
}

#[test]
fn secret_without_data_needs_allow_empty_data() {
    let sb = Sandbox::new();
    let input = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  namespace: a\n";
    sb.run(&["--cert", &sb.cert()], input).failure(
        "secret.data is empty in input Secret, assuming this is an error and aborting. \
         To work with empty data, --allow-empty-data can be used",
    );
    let out = sb
        .run(&["--cert", &sb.cert(), "--allow-empty-data"], input)
        .success();
    assert_eq!(json(&out)["metadata"]["name"], "x");
}

#[test]
fn unreadable_yaml_names_the_document() {
    let sb = Sandbox::new();
    let input = format!(
        "{}---\nmetadata: [unclosed\n",
        secret_yaml(Some("a"), "ok", &[("k", "v")])
    );
    sb.run(&["--cert", &sb.cert()], &input)
        .failure("document 2");
}

#[test]
fn bad_field_names_the_document_and_the_field_but_not_the_value() {
    let sb = Sandbox::new();
    let input = format!(
        "{}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: bad\n  namespace: a\n\
         data:\n  password: not*base64*hunter2\n",
        secret_yaml(Some("a"), "ok", &[("k", "v")])
    );
    let stderr = sb
        .run(&["--cert", &sb.cert()], &input)
        .failure("document 2 (a/bad)");
    assert!(stderr.contains("data.password"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn input_that_is_not_a_secret_is_refused() {
    let sb = Sandbox::new();
    sb.run(
        &["--cert", &sb.cert()],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .failure("ConfigMap");
}

#[test]
fn unknown_scope_is_a_usage_error_with_exit_code_1() {
    let sb = Sandbox::new();
    let run = sb.run(&["--cert", "c.pem", "--scope", "bogus"], "");
    assert_eq!(run.code(), Some(1));
    assert_eq!(run.stdout(), "");
    let stderr = run.stderr();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(stderr.contains("namespace-wide"), "{stderr}");
}

#[test]
fn expired_certificate_is_refused() {
    let sb = Sandbox::new();
    let cert = sb.write("old.pem", common::expired_pair().cert.to_pem());
    sb.run(&["--cert", s(&cert)], &secret_yaml(Some("a"), "db", DB))
        .failure("failed to encrypt using an expired certificate");
}

#[test]
fn bad_certificate_file_is_reported() {
    let sb = Sandbox::new();
    let bad = sb.write("bad.pem", "not a certificate\n");
    let stderr = sb
        .run(&["--cert", s(&bad)], &secret_yaml(Some("a"), "db", DB))
        .failure("bad.pem");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    sb.run(
        &["--cert", "missing.pem"],
        &secret_yaml(Some("a"), "db", DB),
    )
    .failure("cannot read certificate file missing.pem");
}

#[test]
fn raw_mode_needs_a_name_for_strict_scope() {
    let sb = Sandbox::new();
    sb.run(&["--cert", &sb.cert(), "--raw", "-n", "a"], "v")
        .failure("must provide the --name flag with --raw and --scope strict");
}

#[test]
fn raw_mode_prints_bare_base64_that_opens_under_the_label() {
    use base64::Engine as _;
    let sb = Sandbox::new();
    let value = sb.write("value.txt", "s3cret");
    let from_file = format!("ignored={}", s(&value));
    let out = sb
        .run(
            &[
                "--cert",
                &sb.cert(),
                "--raw",
                "--from-file",
                &from_file,
                "-n",
                "prod",
                "--name",
                "db",
            ],
            "",
        )
        .success();
    assert!(!out.ends_with('\n'), "no trailing newline: {out:?}");
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&out)
        .expect("bare base64");
    let opened = sealant_keys::hybrid::open(&pair().key, &blob, b"prod/db").expect("opens");
    assert_eq!(opened.expose_secret(), b"s3cret");

    // Cluster-wide needs neither name nor namespace; stdin is the value.
    let out = sb
        .run(
            &["--cert", &sb.cert(), "--raw", "--scope", "cluster-wide"],
            "from stdin",
        )
        .success();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&out)
        .expect("bare base64");
    let opened = sealant_keys::hybrid::open(&pair().key, &blob, b"").expect("opens");
    assert_eq!(opened.expose_secret(), b"from stdin");
}

#[test]
fn from_file_without_raw_is_refused() {
    let sb = Sandbox::new();
    sb.run(&["--cert", &sb.cert(), "--from-file", "x"], "")
        .failure("--from-file requires --raw");
}

#[test]
fn recovery_with_the_wrong_key_cannot_decrypt() {
    let sb = Sandbox::new();
    let sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("a"), "db", DB))
        .success();
    let wrong = sb.write("wrong.pem", other_pair().key.expose_pkcs1_pem().as_bytes());
    sb.run(
        &["--recovery-unseal", "--recovery-private-key", s(&wrong)],
        &sealed,
    )
    .failure("unable to decrypt sealed secret");
}

fn key_secret_yaml(name: &str, key_pem: &str, crt_pem: &str, indent: &str) -> String {
    use base64::Engine as _;
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let body = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: kube-system\n  \
         labels:\n    sealedsecrets.bitnami.com/sealed-secrets-key: active\n\
         type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(crt_pem),
        b64(key_pem)
    );
    body.lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                format!("{line}\n")
            } else {
                format!("{indent}{line}\n")
            }
        })
        .collect()
}

#[test]
fn recovery_accepts_a_key_secret_and_a_list_of_key_secrets_and_several_files() {
    let sb = Sandbox::new();
    let sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("a"), "db", DB))
        .success();
    let (key, crt) = (pair().key.expose_pkcs1_pem(), pair().cert.to_pem());

    let secret_file = sb.write("key-secret.yaml", key_secret_yaml("k1", &key, &crt, ""));
    expect_db_values(&unseal(&sb, &sealed, s(&secret_file)));

    // stringData works too.
    let string_data = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: k\nstringData:\n  tls.key: |\n{}",
        key.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let string_file = sb.write("key-string.yaml", string_data);
    expect_db_values(&unseal(&sb, &sealed, s(&string_file)));

    // What `kubectl get secret -l ... -o yaml` writes: a List, the right key second.
    let other = other_pair();
    let list = format!(
        "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n- {}- {}",
        key_secret_yaml(
            "old",
            &other.key.expose_pkcs1_pem(),
            &other.cert.to_pem(),
            "  "
        ),
        key_secret_yaml("new", &key, &crt, "  ")
    );
    let list_file = sb.write("main.key", list);
    expect_db_values(&unseal(&sb, &sealed, s(&list_file)));

    // A comma list and a repeated flag: the wrong key first, the right one later.
    let wrong = sb.write("wrong.pem", other.key.expose_pkcs1_pem().as_bytes());
    let comma = format!("{},{}", s(&wrong), sb.key());
    let out = sb
        .run(
            &["--recovery-unseal", "--recovery-private-key", &comma],
            &sealed,
        )
        .success();
    expect_db_values(&json(&out));
    let out = sb
        .run(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                s(&wrong),
                "--recovery-private-key",
                s(&list_file),
            ],
            &sealed,
        )
        .success();
    expect_db_values(&json(&out));
}

#[test]
fn recovery_key_file_that_holds_no_key_is_reported() {
    let sb = Sandbox::new();
    let junk = sb.write(
        "junk.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  a: b\n",
    );
    sb.run(
        &["--recovery-unseal", "--recovery-private-key", s(&junk)],
        "{}",
    )
    .failure("tls.key");
}

#[test]
fn output_file_is_written_atomically_as_yaml_and_kept_on_error() {
    let sb = Sandbox::new();
    let cert = sb.cert();
    let target = sb.path("sealed.yaml");
    let out = sb
        .run(
            &["--cert", &cert, "-w", s(&target)],
            &secret_yaml(Some("a"), "db", DB),
        )
        .success();
    assert_eq!(out, "", "nothing on stdout with -w");
    let written = sb.read("sealed.yaml");
    assert!(written.starts_with("---\n"), "{written}");

    // A failing run leaves the file exactly as it was, and no temporary behind.
    sb.run(
        &["--cert", &cert, "-w", s(&target)],
        "apiVersion: v1\nkind: Secret\nmetadata:\n  namespace: a\nstringData:\n  k: v\n",
    )
    .failure("missing metadata.name");
    assert_eq!(sb.read("sealed.yaml"), written);
    let leftovers: Vec<_> = std::fs::read_dir(sb.dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".sealant-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");

    // -o wins over the extension.
    sb.run(
        &["--cert", &cert, "-w", s(&target), "-o", "json"],
        &secret_yaml(Some("a"), "db", DB),
    )
    .success();
    assert!(sb.read("sealed.yaml").starts_with('{'));
}

fn merge_fixture(sb: &Sandbox, format: &str, file: &str) -> String {
    let cert = sb.cert();
    let target = sb.path(file);
    sb.run(
        &["--cert", &cert, "-o", format, "-w", s(&target)],
        &secret_yaml(Some("prod"), "db", &[("keep", "old"), ("change", "old")]),
    )
    .success();
    sb.read(file)
}

fn encrypted(text: &str) -> serde_json::Value {
    let value: serde_json::Value = if text.trim_start().starts_with('{') {
        json(text)
    } else {
        serde_yaml_ng::from_str(text).expect("YAML")
    };
    value["spec"]["encryptedData"].clone()
}

#[test]
fn merge_into_keeps_other_values_byte_identical_and_keeps_yaml() {
    let sb = Sandbox::new();
    let before = merge_fixture(&sb, "yaml", "sealed.yaml");
    let path = sb.path("sealed.yaml");
    // The input names another Secret; the file's name and namespace win.
    let out = sb
        .run(
            &["--cert", &sb.cert(), "--merge-into", s(&path)],
            &secret_yaml(None, "whatever", &[("change", "new"), ("added", "x")]),
        )
        .success();
    assert_eq!(out, "");
    let after = sb.read("sealed.yaml");
    assert!(after.starts_with("---\n"), "stays YAML: {after}");
    let (old, new) = (encrypted(&before), encrypted(&after));
    assert_eq!(
        old["keep"], new["keep"],
        "untouched value is byte-identical"
    );
    assert_ne!(old["change"], new["change"]);
    assert!(new["added"].is_string());

    let secret = sb
        .run(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                &sb.key(),
                "-f",
                s(&path),
            ],
            "",
        )
        .success();
    let data = secret_data(&json(&secret));
    assert_eq!(
        data,
        vec![
            ("added".to_owned(), b"x".to_vec()),
            ("change".to_owned(), b"new".to_vec()),
            ("keep".to_owned(), b"old".to_vec()),
        ]
    );
}

#[test]
fn merge_into_keeps_json_and_leaves_the_file_alone_on_error() {
    let sb = Sandbox::new();
    let before = merge_fixture(&sb, "json", "sealed.json");
    let path = sb.path("sealed.json");
    sb.run(
        &["--cert", &sb.cert(), "--merge-into", s(&path)],
        &secret_yaml(Some("prod"), "db", &[("change", "new")]),
    )
    .success();
    let after = sb.read("sealed.json");
    assert!(after.starts_with('{') && after.ends_with("}\n"), "{after}");
    assert_eq!(encrypted(&before)["keep"], encrypted(&after)["keep"]);

    // An input without data fails, and the file is untouched.
    sb.run(
        &["--cert", &sb.cert(), "--merge-into", s(&path)],
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n",
    )
    .failure("secret.data is empty");
    assert_eq!(sb.read("sealed.json"), after);
}

#[test]
fn create_seals_literals_files_and_env_files_without_writing_plaintext() {
    let sb = Sandbox::new();
    let file = sb.write("tls.crt", "CERT BYTES");
    let renamed = format!("ca={}", s(&file));
    let env = sb.write("app.env", "# comment\nAPI_KEY=abc=123\n");
    let target = sb.path("db.yaml");
    let out = sb
        .run(
            &[
                "create",
                "db",
                "-n",
                "prod",
                "--from-literal",
                "password=hunter2",
                "--from-file",
                s(&file),
                "--from-file",
                &renamed,
                "--from-env-file",
                s(&env),
                "--cert",
                &sb.cert(),
                "-w",
                s(&target),
            ],
            "",
        )
        .success();
    assert_eq!(out, "");
    let sealed = sb.read("db.yaml");
    assert!(sealed.starts_with("---\n"), "{sealed}");
    assert!(!sealed.contains("hunter2"));

    let secret = json(
        &sb.run(
            &["--recovery-unseal", "--recovery-private-key", &sb.key()],
            &sealed,
        )
        .success(),
    );
    assert_eq!(secret["metadata"]["namespace"], "prod");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret_data(&secret),
        vec![
            ("API_KEY".to_owned(), b"abc=123".to_vec()),
            ("ca".to_owned(), b"CERT BYTES".to_vec()),
            ("password".to_owned(), b"hunter2".to_vec()),
            ("tls.crt".to_owned(), b"CERT BYTES".to_vec()),
        ]
    );
}

#[test]
fn create_refuses_a_literal_without_equals_sign() {
    let sb = Sandbox::new();
    sb.run(
        &[
            "create",
            "db",
            "--from-literal",
            "novalue",
            "--cert",
            &sb.cert(),
        ],
        "",
    )
    .failure("--from-literal must be KEY=VALUE");
}

/// Serves `body` once per connection on 127.0.0.1, answering every request with it.
fn serve(body: String, status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/x-pem-file\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/v1/cert.pem")
}

#[test]
fn fetch_cert_from_an_http_url_prints_the_pem_and_seals_with_it() {
    let sb = Sandbox::new();
    let pem = pair().cert.to_pem();
    let url = serve(pem.clone(), "200 OK");
    let out = sb.run(&["--fetch-cert", "--cert", &url], "").success();
    assert_eq!(out, pem);

    let sealed = sb
        .run(&["--cert", &url], &secret_yaml(Some("a"), "db", DB))
        .success();
    expect_db_values(&unseal(&sb, &sealed, &sb.key()));
}

#[test]
fn cert_url_answering_an_error_status_is_reported() {
    let sb = Sandbox::new();
    let url = serve("nope".to_owned(), "404 Not Found");
    sb.run(&["--fetch-cert", "--cert", &url], "").failure("404");
}

#[test]
fn sealed_secrets_cert_environment_variable_is_honoured() {
    let sb = Sandbox::new();
    let mut cmd = sb.command();
    cmd.env("SEALED_SECRETS_CERT", sb.cert());
    let out = common::run(cmd, &secret_yaml(Some("a"), "db", DB)).success();
    expect_db_values(&unseal(&sb, &out, &sb.key()));
}

#[test]
fn without_cert_or_kubeconfig_the_error_says_what_is_missing() {
    let sb = Sandbox::new();
    let stderr = sb
        .run(&[], &secret_yaml(Some("a"), "db", DB))
        .failure("kubeconfig");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn closed_stdout_is_not_an_error() {
    use std::process::Stdio;
    let sb = Sandbox::new();
    let mut cmd = sb.command();
    cmd.args(["--cert", &sb.cert()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(secret_yaml(Some("a"), "db", DB).as_bytes())
        .expect("write input");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completion_prints_a_script_for_the_shell() {
    let sb = Sandbox::new();
    let out = sb.run(&["completion", "bash"], "").success();
    assert!(out.contains("sealant"), "{out}");
    assert!(out.contains("--recovery-private-key"), "{out}");
}

#[test]
fn help_and_version_exit_zero() {
    let sb = Sandbox::new();
    let help = sb.run(&["--help"], "").success();
    assert!(help.contains("--merge-into"), "{help}");
    let version = sb.run(&["--version"], "").success();
    assert!(version.starts_with("sealant "), "{version}");
}

#[test]
fn deprecated_rotate_flag_warns() {
    let sb = Sandbox::new();
    let kubeconfig = sb.write("empty-config", "apiVersion: v1\nkind: Config\n");
    let run = sb.run(&["--rotate", "--kubeconfig", s(&kubeconfig)], "{}");
    assert_eq!(run.code(), Some(1));
    assert!(
        run.stderr()
            .starts_with("Flag --rotate has been deprecated, please use --re-encrypt instead\n"),
        "{}",
        run.stderr()
    );
}

/// A fake API server: answers the Service lookup and the controller's proxied
/// endpoints the way kube-apiserver and the controller would, and records each
/// request line.
struct FakeApi {
    kubeconfig: std::path::PathBuf,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn fake_api(sb: &Sandbox, verify_status: &'static str) -> FakeApi {
    use std::io::Read as _;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = requests.clone();
    let pem = pair().cert.to_pem();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let request_line = request_line.trim().to_owned();
            seen.lock().expect("lock").push(request_line.clone());
            let proxy = "/api/v1/namespaces/kube-system/services/\
                         http:sealed-secrets-controller:http/proxy";
            let (status, reply) = match request_line.split(' ').take(2).collect::<Vec<_>>()[..] {
                ["GET", "/api/v1/namespaces/kube-system/services/sealed-secrets-controller"] => (
                    "200 OK",
                    r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"sealed-secrets-controller"},
                       "spec":{"ports":[{"name":"http","port":8080}]}}"#
                        .to_owned(),
                ),
                ["GET", path] if path == format!("{proxy}/v1/cert.pem") => ("200 OK", pem.clone()),
                ["POST", path] if path == format!("{proxy}/v1/verify") => {
                    (verify_status, String::new())
                }
                ["POST", path] if path == format!("{proxy}/v1/rotate") => {
                    let mut value: serde_json::Value =
                        serde_json::from_slice(&body).expect("JSON body");
                    value["spec"]["encryptedData"]["rotated"] = "yes".into();
                    value["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z".into();
                    ("200 OK", value.to_string())
                }
                _ => (
                    "404 Not Found",
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#
                        .to_owned(),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    let kubeconfig = sb.write(
        "fake-kubeconfig",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: from-ctx}}\n\
             clusters:\n- name: fake\n  cluster: {{server: \"http://{addr}\"}}\n\
             users:\n- name: fake\n  user: {{token: t}}\n"
        ),
    );
    FakeApi {
        kubeconfig,
        requests,
    }
}

#[test]
fn certificate_is_fetched_through_the_api_server_service_proxy() {
    let sb = Sandbox::new();
    let api = fake_api(&sb, "200 OK");
    let out = sb
        .run(&["--fetch-cert", "--kubeconfig", s(&api.kubeconfig)], "")
        .success();
    assert_eq!(out, pair().cert.to_pem());
    let requests = api.requests.lock().expect("lock").clone();
    assert_eq!(
        requests,
        vec![
            "GET /api/v1/namespaces/kube-system/services/sealed-secrets-controller HTTP/1.1",
            "GET /api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem HTTP/1.1",
        ]
    );

    // Sealing without --cert uses that certificate and the context's namespace.
    let sealed = sb
        .run(
            &["--kubeconfig", s(&api.kubeconfig)],
            &secret_yaml(None, "db", DB),
        )
        .success();
    assert_eq!(json(&sealed)["metadata"]["namespace"], "from-ctx");
    expect_db_values(&unseal(&sb, &sealed, &sb.key()));
}

#[test]
fn validate_reports_success_and_a_409_as_unable_to_decrypt() {
    let sb = Sandbox::new();
    let sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("a"), "db", DB))
        .success();
    let ok = fake_api(&sb, "200 OK");
    let out = sb
        .run(&["--validate", "--kubeconfig", s(&ok.kubeconfig)], &sealed)
        .success();
    assert_eq!(out, "");
    assert!(
        ok.requests
            .lock()
            .expect("lock")
            .iter()
            .any(|r| r.starts_with("POST ") && r.contains("/proxy/v1/verify")),
    );

    let conflict = fake_api(&sb, "409 Conflict");
    sb.run(
        &["--validate", "--kubeconfig", s(&conflict.kubeconfig)],
        &sealed,
    )
    .failure("unable to decrypt sealed secret");
}

#[test]
fn re_encrypt_prints_the_controllers_answer_without_server_metadata() {
    let sb = Sandbox::new();
    let sealed = sb
        .run(&["--cert", &sb.cert()], &secret_yaml(Some("a"), "db", DB))
        .success();
    let api = fake_api(&sb, "200 OK");
    let out = sb
        .run(
            &[
                "--re-encrypt",
                "--kubeconfig",
                s(&api.kubeconfig),
                "-o",
                "yaml",
            ],
            &sealed,
        )
        .success();
    assert!(out.starts_with("---\n"), "{out}");
    assert!(out.contains("rotated: yes"), "{out}");
    assert!(!out.contains("creationTimestamp"), "{out}");
}
