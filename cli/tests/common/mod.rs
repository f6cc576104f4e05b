//! Test harness: run the real `sealant` binary in a clean environment, with keys that
//! are generated once per test binary.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use sealant_keys::{Certificate, OffsetDateTime, PrivateKey};

/// A key pair and its certificate.
pub struct Pair {
    pub key: PrivateKey,
    pub cert: Certificate,
}

fn make_pair(start: OffsetDateTime, days: u64) -> Pair {
    let key = PrivateKey::generate(2048).expect("generate key");
    let cert = Certificate::self_signed(&key, Duration::from_secs(days * 86_400), "test", start)
        .expect("self-signed certificate");
    Pair { key, cert }
}

/// The main test key, valid for a year.
pub fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| make_pair(OffsetDateTime::now_utc(), 365))
}

/// A second, unrelated key.
pub fn other_pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| make_pair(OffsetDateTime::now_utc(), 365))
}

/// A certificate that expired yesterday.
pub fn expired_pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| {
        make_pair(
            OffsetDateTime::now_utc() - Duration::from_secs(3 * 86_400),
            2,
        )
    })
}

/// A scratch directory with the usual files in it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write fixture");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read file")
    }

    /// `cert.pem` of [`pair`].
    pub fn cert(&self) -> String {
        self.write("cert.pem", pair().cert.to_pem())
            .to_string_lossy()
            .into_owned()
    }

    /// `key.pem` of [`pair`].
    pub fn key(&self) -> String {
        self.write("key.pem", pair().key.expose_pkcs1_pem().as_bytes())
            .to_string_lossy()
            .into_owned()
    }

    /// The command, run in this sandbox: no kubeconfig, no SEALED_SECRETS_* variables.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealant"));
        cmd.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SEALED_SECRETS_") {
                cmd.env_remove(name);
            }
        }
        cmd
    }

    /// Runs `sealant args` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        run(cmd, stdin)
    }
}

/// Runs a prepared command with `stdin`.
pub fn run(mut cmd: Command, stdin: &str) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sealant");
    let mut input = child.stdin.take().expect("stdin");
    // The child may exit before reading everything; a broken pipe here is fine.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    Run(child.wait_with_output().expect("wait for sealant"))
}

/// The outcome of one run.
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8(self.0.stdout.clone()).expect("stdout is UTF-8")
    }

    pub fn stderr(&self) -> String {
        String::from_utf8(self.0.stderr.clone()).expect("stderr is UTF-8")
    }

    pub fn code(&self) -> Option<i32> {
        self.0.status.code()
    }

    /// Asserts exit 0 and an empty stderr; returns stdout.
    #[track_caller]
    pub fn success(&self) -> String {
        assert_eq!(
            self.code(),
            Some(0),
            "expected success; stderr:\n{}",
            self.stderr()
        );
        assert_eq!(self.stderr(), "", "stderr should be empty");
        self.stdout()
    }

    /// Asserts exit 1, nothing on stdout, and one `error: ` line containing `needle`.
    #[track_caller]
    pub fn failure(&self, needle: &str) -> String {
        let stderr = self.stderr();
        assert_eq!(self.code(), Some(1), "expected exit 1; stderr:\n{stderr}");
        assert_eq!(self.stdout(), "", "stdout must be empty on error");
        assert!(stderr.starts_with("error: "), "stderr: {stderr}");
        assert!(
            stderr.contains(needle),
            "expected {needle:?} in stderr: {stderr}"
        );
        stderr
    }
}

/// A Secret manifest as YAML.
pub fn secret_yaml(namespace: Option<&str>, name: &str, data: &[(&str, &str)]) -> String {
    let mut text = format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n");
    if let Some(ns) = namespace {
        text.push_str(&format!("  namespace: {ns}\n"));
    }
    text.push_str("type: Opaque\nstringData:\n");
    for (k, v) in data {
        text.push_str(&format!("  {k}: {v:?}\n"));
    }
    text
}

/// Parses one JSON document (or YAML) into a value.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("valid JSON output")
}

/// The decoded `data` of an unsealed Secret.
pub fn secret_data(secret: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    secret["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().expect("string"))
                .expect("base64");
            (k.clone(), bytes)
        })
        .collect()
}

/// Path as &str.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
