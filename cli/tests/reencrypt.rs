//! `sealant reencrypt PATH...`: SealedSecrets in a directory tree, sealed to key A,
//! re-sealed offline to key B (or to age recipients) with A as the recovery key, and
//! every other byte of every file left alone.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::{Pair, Sandbox, other_pair, pair, s, secret_yaml};
use sealant_crds::Sealer;
use sealant_keys::{AgeIdentity, KeyRing, OffsetDateTime, PrivateKey, Scope, age_envelope};

/// Seals `value` to `to` for `namespace/name` under `scope`, as base64.
fn seal(to: &Pair, value: &str, scope: Scope, namespace: &str, name: &str) -> String {
    sealant_crds::seal_value(
        Sealer::Rsa(to.cert.public_key()),
        value.as_bytes(),
        scope,
        namespace,
        name,
    )
    .expect("seal")
}

/// A third key, never used to seal anything.
fn stranger() -> PrivateKey {
    PrivateKey::generate(2048).expect("generate")
}

fn ring_of(key: &PrivateKey) -> KeyRing {
    let mut ring = KeyRing::new();
    ring.insert(key.clone(), OffsetDateTime::UNIX_EPOCH);
    ring
}

/// Opens a base64 value with `ring` under `label`, as text.
fn open(ring: &KeyRing, value: &str, label: &[u8]) -> Option<String> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(value)
        .expect("base64");
    let opened = ring.open(&blob, label, None).ok()?;
    Some(String::from_utf8(opened.plaintext.expose_secret().to_vec()).expect("UTF-8"))
}

/// `spec.encryptedData` of every SealedSecret in a file, by `namespace/name`.
fn values_of(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for doc in sealant_crds::parse_documents(text).expect("parse") {
        if doc["kind"] != "SealedSecret" {
            continue;
        }
        let meta = &doc["metadata"];
        let id = format!(
            "{}/{}",
            meta["namespace"].as_str().unwrap_or(""),
            meta["name"].as_str().expect("name")
        );
        let values = doc["spec"]["encryptedData"]
            .as_object()
            .expect("encryptedData")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
            .collect();
        out.insert(id, values);
    }
    out
}

/// Asserts that `new` differs from `old` only by ciphertexts: the same lines, and each
/// changed line is the old line with one of `old_values` replaced by something else.
#[track_caller]
fn only_ciphertext_lines_changed(old: &str, new: &str, old_values: &[&str]) -> usize {
    let (old_lines, new_lines): (Vec<_>, Vec<_>) = (old.lines().collect(), new.lines().collect());
    assert_eq!(old_lines.len(), new_lines.len(), "line count:\n{new}");
    assert_eq!(old.ends_with('\n'), new.ends_with('\n'));
    let mut changed = 0;
    for (o, n) in old_lines.iter().zip(&new_lines) {
        if o == n {
            continue;
        }
        changed += 1;
        let value = old_values
            .iter()
            .find(|v| o.contains(**v))
            .unwrap_or_else(|| panic!("a line without a ciphertext changed:\n{o}\n{n}"));
        let (before, after) = o.split_once(value).expect("contains");
        assert!(
            n.starts_with(before) && n.ends_with(after) && n.len() > before.len() + after.len(),
            "more than the ciphertext changed:\n{o}\n{n}"
        );
    }
    changed
}

/// The tree of the main tests: a multi-document YAML file, a JSON file, a YAML file
/// without SealedSecrets, a Helm template, and a `.git` directory that must be skipped.
struct Tree {
    sb: Sandbox,
    multi: String,
    json: String,
    plain: String,
    /// Old ciphertexts: db.password, db.user, api.token, shared.token.
    old: [String; 4],
}

fn tree() -> Tree {
    let sb = Sandbox::new();
    let a = pair();
    let old = [
        seal(a, "hunter2", Scope::Strict, "prod", "db"),
        seal(a, "admin", Scope::Strict, "prod", "db"),
        seal(a, "t0ken", Scope::NamespaceWide, "prod", "api"),
        String::new(),
    ];
    let multi = format!(
        "# Apps for prod: do not edit by hand\n\
         apiVersion: bitnami.com/v1alpha1\n\
         kind: SealedSecret\n\
         metadata:\n    name: db          # the database\n    namespace: prod\n\
         spec:\n      encryptedData:\n          password: {}\n          user: \"{}\"\n\
         \x20     template:\n          metadata:\n              name: db\n\
         ---\n\
         # a config map in between\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: prod}}\n\
         data:\n  color: blue   # trailing comment\n\
         --- # the API token\n\
         apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  annotations:\n    \
         sealedsecrets.bitnami.com/namespace-wide: \"true\"\n  name: api\n  namespace: prod\n\
         spec:\n  encryptedData: {{token: '{}'}}\n",
        old[0], old[1], old[2]
    );
    std::fs::create_dir_all(sb.path("repo/apps")).expect("mkdir");
    std::fs::create_dir_all(sb.path("repo/shared")).expect("mkdir");
    std::fs::create_dir_all(sb.path("repo/.git")).expect("mkdir");
    std::fs::create_dir_all(sb.path("repo/chart/templates")).expect("mkdir");
    sb.write("repo/apps/multi.yaml", &multi);

    // The JSON file as the binary writes it: cluster-wide, without a namespace.
    let json = sb
        .run(
            &["--cert", &sb.cert(), "--scope", "cluster-wide"],
            &secret_yaml(None, "shared", &[("token", "everywhere")]),
        )
        .success();
    sb.write("repo/shared/shared.json", &json);
    let plain = "# nothing sealed here\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
    sb.write("repo/apps/plain.yaml", plain);
    sb.write("repo/notes.txt", "kind: SealedSecret\n");
    sb.write(
        "repo/chart/templates/secret.yaml",
        "kind: SealedSecret\nspec:\n  encryptedData: {{ .Values.sealed | toYaml }}\n",
    );
    // Sealed to a key nobody holds: the run fails if it reads .git.
    let hidden = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: h\n  \
         namespace: prod\nspec:\n  encryptedData:\n    x: {}\n",
        seal(other_pair(), "x", Scope::Strict, "prod", "h")
    );
    sb.write("repo/.git/hidden.yaml", hidden);

    let shared = values_of(&json)["/shared"]["token"].clone();
    let [p, u, t, _] = old;
    Tree {
        sb,
        multi,
        json,
        plain: plain.to_owned(),
        old: [p, u, t, shared],
    }
}

impl Tree {
    fn run(&self, extra: &[&str]) -> common::Run {
        let cert_b = self.sb.write("b.pem", other_pair().cert.to_pem());
        let mut args = vec![
            "reencrypt",
            "repo",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            s(&cert_b),
        ];
        self.sb.key();
        args.extend_from_slice(extra);
        self.sb.run(&args, "")
    }

    fn read(&self, name: &str) -> String {
        self.sb.read(name)
    }

    fn unchanged(&self) {
        assert_eq!(self.read("repo/apps/multi.yaml"), self.multi);
        assert_eq!(self.read("repo/shared/shared.json"), self.json);
        assert_eq!(self.read("repo/apps/plain.yaml"), self.plain);
    }
}

#[test]
fn reencrypt_to_a_new_certificate_changes_only_the_ciphertexts_and_keeps_each_scope() {
    let t = tree();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let perms = std::fs::Permissions::from_mode(0o640);
        std::fs::set_permissions(t.sb.path("repo/apps/multi.yaml"), perms).expect("chmod");
    }
    let run = t.run(&[]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.stdout(), "");
    let stderr = run.stderr();
    assert!(
        stderr.contains("multi.yaml: re-sealed 3 values in 2 SealedSecrets"),
        "{stderr}"
    );
    assert!(
        stderr.contains("shared.json: re-sealed 1 value in 1 SealedSecret"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: skipping repo/chart/templates/secret.yaml"),
        "{stderr}"
    );

    let multi = t.read("repo/apps/multi.yaml");
    let json = t.read("repo/shared/shared.json");
    let old: Vec<&str> = t.old.iter().map(String::as_str).collect();
    assert_eq!(only_ciphertext_lines_changed(&t.multi, &multi, &old), 3);
    assert_eq!(only_ciphertext_lines_changed(&t.json, &json, &old), 1);
    assert_eq!(t.read("repo/apps/plain.yaml"), t.plain);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(t.sb.path("repo/apps/multi.yaml"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    let (ring_a, ring_b) = (ring_of(&pair().key), ring_of(&other_pair().key));
    let values = values_of(&multi);
    let (db, api) = (&values["prod/db"], &values["prod/api"]);
    let shared = &values_of(&json)["/shared"];
    let cases = [
        (&db["password"], &b"prod/db"[..], "hunter2"),
        (&db["user"], b"prod/db", "admin"),
        (&api["token"], b"prod", "t0ken"),
        (&shared["token"], b"", "everywhere"),
    ];
    for (value, label, plaintext) in cases {
        assert_eq!(open(&ring_b, value, label).as_deref(), Some(plaintext));
        assert_eq!(open(&ring_a, value, label), None, "still opens with A");
    }
    // Strict stays strict: the new value does not open under another name.
    assert_eq!(open(&ring_b, &db["password"], b"prod/other"), None);
}

#[test]
fn dry_run_writes_nothing_and_prints_the_old_key_of_every_value() {
    let t = tree();
    let run = t.run(&["--dry-run"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let out = run.stdout();
    let a = pair().key.fingerprint().to_string();
    assert!(out.contains("repo/apps/multi.yaml\n"), "{out}");
    assert!(
        out.contains("  SealedSecret prod/db (document 1)\n"),
        "{out}"
    );
    for key in ["password", "user", "token"] {
        assert!(
            out.contains(&format!("    {key}: re-seal (opened with {a})\n")),
            "{out}"
        );
    }
    assert!(
        out.contains("  SealedSecret shared (document 1)\n"),
        "{out}"
    );
    assert!(
        out.contains("2 files, 3 SealedSecrets, 4 values: 4 to re-seal, 0 unchanged\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("opened with:\n  {a}: 4 values\n")),
        "{out}"
    );
    t.unchanged();
}

#[test]
fn a_wrong_recovery_key_fails_naming_every_value_and_writes_nothing() {
    let t = tree();
    t.sb.write("key.pem", stranger().expose_pkcs1_pem().as_bytes());
    let cert_b = t.sb.write("b.pem", other_pair().cert.to_pem());
    let run = t.sb.run(
        &[
            "reencrypt",
            "repo",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            s(&cert_b),
        ],
        "",
    );
    let err = run.stderr();
    assert_eq!(run.code(), Some(1), "{err}");
    assert_eq!(run.stdout(), "");
    assert!(
        err.contains("error: cannot decrypt 4 values with the recovery keys given"),
        "{err}"
    );
    for needle in [
        "repo/apps/multi.yaml: document 1 (prod/db): spec.encryptedData.password",
        "repo/apps/multi.yaml: document 1 (prod/db): spec.encryptedData.user",
        "repo/apps/multi.yaml: document 3 (prod/api): spec.encryptedData.token",
        "repo/shared/shared.json: document 1 (shared): spec.encryptedData.token",
        "nothing was written",
    ] {
        assert!(err.contains(needle), "{needle:?} in {err}");
    }
    t.unchanged();
}

#[test]
fn values_already_sealed_to_the_target_are_left_untouched_unless_forced() {
    let sb = Sandbox::new();
    let (a, b) = (pair(), other_pair());
    let on_b = seal(b, "kept", Scope::Strict, "ns", "mixed");
    let on_a = seal(a, "moved", Scope::Strict, "ns", "mixed");
    let text = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: mixed\n  \
         namespace: ns\nspec:\n  encryptedData:\n    new: {on_b}\n    old: {on_a}\n"
    );
    let file = sb.write("mixed.yml", &text);
    let keys = sb.write("a.pem", a.key.expose_pkcs1_pem().as_bytes());
    let b_key = sb.write("b.key", b.key.expose_pkcs1_pem().as_bytes());
    let cert_b = sb.write("b.pem", b.cert.to_pem());
    let args = |extra: &[&str]| {
        let mut v = vec![
            "reencrypt".to_owned(),
            s(&file).to_owned(),
            "--recovery-private-key".to_owned(),
            format!("{},{}", s(&keys), s(&b_key)),
            "--cert".to_owned(),
            s(&cert_b).to_owned(),
        ];
        v.extend(extra.iter().map(|e| (*e).to_owned()));
        v
    };
    let run_with = |extra: &[&str]| {
        let args = args(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        sb.run(&refs, "")
    };

    let dry = run_with(&["--dry-run"]);
    let out = dry.stdout();
    let fp_b = b.key.fingerprint().to_string();
    assert!(
        out.contains(&format!("    new: unchanged (opened with {fp_b})\n")),
        "{out}"
    );
    assert!(out.contains("1 to re-seal, 1 unchanged"), "{out}");

    let run = run_with(&[]);
    assert!(
        run.stderr()
            .contains("re-sealed 1 value in 1 SealedSecret (1 unchanged)"),
        "{}",
        run.stderr()
    );
    let after = sb.read("mixed.yml");
    assert!(after.contains(&format!("    new: {on_b}\n")), "{after}");
    assert!(!after.contains(&on_a), "{after}");

    // A second run has nothing to do.
    let again = run_with(&[]);
    assert!(
        again
            .stderr()
            .contains("nothing to re-seal: 2 values in 1 file"),
        "{}",
        again.stderr()
    );
    assert_eq!(sb.read("mixed.yml"), after);

    // --force seals even the values already on B.
    run_with(&["--force"]);
    let forced = sb.read("mixed.yml");
    assert!(!forced.contains(&on_b), "{forced}");
    let values = &values_of(&forced)["ns/mixed"];
    let ring_b = ring_of(&b.key);
    assert_eq!(
        open(&ring_b, &values["new"], b"ns/mixed").as_deref(),
        Some("kept")
    );
    assert_eq!(
        open(&ring_b, &values["old"], b"ns/mixed").as_deref(),
        Some("moved")
    );
}

/// A key Secret (YAML) of `pair` with `identity` as its `age.key`.
fn key_secret_yaml(pair: &Pair, identity: &AgeIdentity) -> String {
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("sealed-secrets-key1".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(sealant_crds::key_secret::key_data(
            &pair.key,
            &pair.cert,
            Some(identity),
        )),
        ..Default::default()
    };
    sealant_crds::key_secret::key_list(&[secret])
        .expect("key list")
        .to_string()
}

#[test]
fn age_sealed_values_are_resealed_to_a_recipient_under_the_same_scope() {
    let sb = Sandbox::new();
    let (old, new) = (AgeIdentity::generate(), AgeIdentity::generate());
    let sealed = sb
        .run(
            &[
                "--recipient",
                &old.recipient().to_string(),
                "--scope",
                "namespace-wide",
                "-o",
                "yaml",
            ],
            &secret_yaml(Some("team"), "age", &[("token", "from-age")]),
        )
        .success();
    let file = sb.write("age.yaml", &sealed);
    // The old identity as a controller key Secret's age.key: the plan names the key
    // generation by its RSA fingerprint.
    let keys = sb.write("keys.yaml", key_secret_yaml(pair(), &old));
    let recipient = new.recipient().to_string();
    let base = [
        "reencrypt",
        s(&file),
        "--recovery-private-key",
        s(&keys),
        "--recipient",
        &recipient,
    ];
    let dry = sb.run(&[&base[..], &["--dry-run"]].concat(), "");
    let fp = pair().key.fingerprint().to_string();
    assert!(
        dry.stdout()
            .contains(&format!("    token: re-seal (opened with {fp} (age))\n")),
        "{}",
        dry.stdout()
    );

    let run = sb.run(&base, "");
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let text = sb.read("age.yaml");
    assert_eq!(
        only_ciphertext_lines_changed(&sealed, &text, &[&values_of(&sealed)["team/age"]["token"]]),
        1
    );
    let value = &values_of(&text)["team/age"]["token"];
    let blob = base64::engine::general_purpose::STANDARD
        .decode(value)
        .expect("base64");
    assert!(age_envelope::is_age(&blob));
    let mut ring = KeyRing::new();
    ring.insert_age(new.clone(), OffsetDateTime::UNIX_EPOCH, None);
    assert_eq!(open(&ring, value, b"team").as_deref(), Some("from-age"));
    let mut old_ring = KeyRing::new();
    old_ring.insert_age(old, OffsetDateTime::UNIX_EPOCH, None);
    assert_eq!(open(&old_ring, value, b"team"), None);

    // Sealed to exactly this one recipient already: a second run leaves it.
    let new_key = sb.write("new.key", new.expose_identity_file().as_bytes());
    let again = sb.run(
        &[
            "reencrypt",
            s(&file),
            "--recovery-private-key",
            s(&new_key),
            "--recipient",
            &recipient,
        ],
        "",
    );
    assert!(
        again.stderr().contains("nothing to re-seal"),
        "{}",
        again.stderr()
    );
    assert_eq!(sb.read("age.yaml"), text);
}

#[test]
fn a_value_not_written_on_one_line_is_refused_by_name_and_nothing_is_written() {
    let sb = Sandbox::new();
    sb.key();
    let cert_b = sb.write("b.pem", other_pair().cert.to_pem());
    let value = seal(pair(), "v", Scope::Strict, "ns", "folded");
    let (head, tail) = value.split_at(40);
    let good = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: ok\n  \
         namespace: ns\nspec:\n  encryptedData:\n    a: {}\n",
        seal(pair(), "v", Scope::Strict, "ns", "ok")
    );
    let folded = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: folded\n  \
         namespace: ns\nspec:\n  encryptedData:\n    a: >-\n      {head}\n      {tail}\n"
    );
    sb.write("1-good.yaml", &good);
    sb.write("2-folded.yaml", &folded);
    let run = sb.run(
        &[
            "reencrypt",
            "1-good.yaml",
            "2-folded.yaml",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            s(&cert_b),
        ],
        "",
    );
    run.failure("2-folded.yaml: document 1 (ns/folded): spec.encryptedData.a: the value is not written verbatim");
    assert_eq!(sb.read("1-good.yaml"), good);
    assert_eq!(sb.read("2-folded.yaml"), folded);
}

#[test]
fn the_deprecated_spec_data_is_refused_naming_the_object() {
    let sb = Sandbox::new();
    sb.key();
    let cert_b = sb.write("b.pem", other_pair().cert.to_pem());
    let text = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: old\n  \
                namespace: ns\nspec:\n  data: QUJD\n";
    sb.write("legacy.yaml", text);
    sb.run(
        &[
            "reencrypt",
            "legacy.yaml",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            s(&cert_b),
        ],
        "",
    )
    .failure("document 1 (ns/old): SealedSecret ns/old uses the deprecated spec.data");
    assert_eq!(sb.read("legacy.yaml"), text);
}

#[test]
fn a_list_of_sealed_secrets_is_rewritten_item_by_item() {
    let sb = Sandbox::new();
    sb.key();
    let cert_b = sb.write("b.pem", other_pair().cert.to_pem());
    let (one, two) = (
        seal(pair(), "1", Scope::Strict, "ns", "one"),
        seal(pair(), "2", Scope::Strict, "ns", "two"),
    );
    let item = |name: &str, value: &str| {
        format!(
            "- apiVersion: bitnami.com/v1alpha1\n  kind: SealedSecret\n  metadata:\n    name: \
             {name}\n    namespace: ns\n  spec:\n    encryptedData:\n      v: {value}\n"
        )
    };
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}{}",
        item("one", &one),
        item("two", &two)
    );
    sb.write("list.yaml", &text);
    let run = sb.run(
        &[
            "reencrypt",
            "list.yaml",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            s(&cert_b),
            "--dry-run",
        ],
        "",
    );
    assert!(
        run.stdout()
            .contains("  SealedSecret ns/two (document 1, items[1])\n"),
        "{}",
        run.stdout()
    );
    let run = sb.run(
        &[
            "reencrypt",
            "list.yaml",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            s(&cert_b),
        ],
        "",
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let new = sb.read("list.yaml");
    assert_eq!(only_ciphertext_lines_changed(&text, &new, &[&one, &two]), 2);
    let doc = &sealant_crds::parse_documents(&new).expect("parse")[0];
    let value = doc["items"][1]["spec"]["encryptedData"]["v"]
        .as_str()
        .expect("v");
    assert_eq!(
        open(&ring_of(&other_pair().key), value, b"ns/two").as_deref(),
        Some("2")
    );
}
