//! The files `sealant` reads and writes (issue 11, finding 9), through the binary:
//! modes of `-w` files, symbolic links and special files, size caps on every input,
//! and repeated keys in YAML and JSON.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, Sandbox, s, secret_yaml};

const DB: &[(&str, &str)] = &[("password", "hunter2"), ("user", "admin")];

/// Runs `cmd` with an empty stdin, killing it after `limit`: a hang fails the test
/// instead of stalling the suite.
#[track_caller]
fn run_within(mut cmd: Command, limit: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sealant");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sealant still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run(child.wait_with_output().expect("output"))
}

fn sealed_yaml(sb: &Sandbox) -> String {
    sb.run(
        &["--cert", &sb.cert(), "-o", "yaml"],
        &secret_yaml(Some("prod"), "db", DB),
    )
    .success()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo failed");
}

/// A file of `len` zero bytes that takes no disk space.
fn sparse(sb: &Sandbox, name: &str, len: u64) -> std::path::PathBuf {
    let path = sb.path(name);
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(len))
        .expect("sparse file");
    path
}

#[cfg(unix)]
#[test]
fn recovery_unseal_over_a_world_readable_file_leaves_it_0600() {
    let sb = Sandbox::new();
    let sealed = sb.write("sealed.yaml", sealed_yaml(&sb));
    let out = sb.write("plain.yaml", "old\n");
    chmod(&out, 0o644);
    sb.run(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            &sb.key(),
            "-f",
            s(&sealed),
            "-w",
            s(&out),
        ],
        "",
    )
    .success();
    assert!(sb.read("plain.yaml").contains("password"));
    assert_eq!(mode(&out), 0o600, "plaintext must not stay world-readable");
}

#[cfg(unix)]
#[test]
fn sealed_output_over_a_setuid_file_keeps_its_permissions_but_not_setuid_or_setgid() {
    let sb = Sandbox::new();
    let out = sb.write("sealed.yaml", "old\n");
    chmod(&out, 0o6754);
    sb.run(
        &["--cert", &sb.cert(), "-w", s(&out)],
        &secret_yaml(Some("prod"), "db", DB),
    )
    .success();
    assert!(sb.read("sealed.yaml").contains("SealedSecret"));
    assert_eq!(mode(&out), 0o754);
}

#[cfg(unix)]
#[test]
fn merge_into_a_symlink_is_refused_and_leaves_link_and_target_alone() {
    let sb = Sandbox::new();
    let target = sb.write("real.yaml", sealed_yaml(&sb));
    let before = sb.read("real.yaml");
    let link = sb.path("link.yaml");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    sb.run(
        &["--cert", &sb.cert(), "--merge-into", s(&link)],
        &secret_yaml(Some("prod"), "db", &[("added", "x")]),
    )
    .failure("link.yaml: a symbolic link to");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("lstat")
            .is_symlink()
    );
    assert_eq!(sb.read("real.yaml"), before);
}

#[cfg(unix)]
#[test]
fn merge_into_a_fifo_is_refused_at_once() {
    let sb = Sandbox::new();
    let fifo = sb.path("sealed.yaml");
    mkfifo(&fifo);
    let mut cmd = sb.command();
    cmd.args(["--cert", &sb.cert(), "--merge-into", s(&fifo), "-f"])
        .arg(sb.write("in.yaml", secret_yaml(Some("prod"), "db", DB)));
    run_within(cmd, Duration::from_secs(30)).failure("a FIFO, not a regular file");
}

#[cfg(unix)]
#[test]
fn output_file_that_is_a_symlink_or_a_fifo_is_refused() {
    let sb = Sandbox::new();
    let target = sb.write("real.yaml", "kept\n");
    let link = sb.path("link.yaml");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    sb.run(
        &["--cert", &sb.cert(), "-w", s(&link)],
        &secret_yaml(Some("prod"), "db", DB),
    )
    .failure("link.yaml: a symbolic link to");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("lstat")
            .is_symlink()
    );
    assert_eq!(sb.read("real.yaml"), "kept\n");

    let fifo = sb.path("out.yaml");
    mkfifo(&fifo);
    sb.run(
        &["--cert", &sb.cert(), "-w", s(&fifo)],
        &secret_yaml(Some("prod"), "db", DB),
    )
    .failure("out.yaml: a FIFO, not a regular file");
    let kind = std::fs::symlink_metadata(&fifo).expect("lstat").file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
}

#[cfg(unix)]
#[test]
fn cert_from_dev_zero_fails_fast_naming_the_limit() {
    let sb = Sandbox::new();
    let mut cmd = sb.command();
    cmd.args([
        "--cert",
        "/dev/zero",
        "--raw",
        "--name",
        "db",
        "--from-file",
    ])
    .arg(sb.write("value", "v"));
    run_within(cmd, Duration::from_secs(30))
        .failure("cannot read certificate file /dev/zero: larger than 1 MiB");
}

#[test]
fn a_value_larger_than_a_secret_can_hold_is_refused() {
    let sb = Sandbox::new();
    let big = sparse(&sb, "big.bin", (1 << 20) + 1);
    sb.run(
        &[
            "--cert",
            &sb.cert(),
            "--raw",
            "--name",
            "db",
            "-n",
            "prod",
            "--from-file",
            s(&big),
        ],
        "",
    )
    .failure("larger than 1 MiB, the most a Kubernetes Secret can hold");
    let run = sb.run(
        &[
            "create",
            "db",
            "-n",
            "prod",
            "--cert",
            &sb.cert(),
            "--from-file",
            &format!("blob={}", s(&big)),
        ],
        "",
    );
    run.failure("larger than 1 MiB");

    // Exactly the limit is still accepted.
    let edge = sparse(&sb, "edge.bin", 1 << 20);
    sb.run(
        &[
            "--cert",
            &sb.cert(),
            "--raw",
            "--name",
            "db",
            "-n",
            "prod",
            "--from-file",
            s(&edge),
        ],
        "",
    )
    .success();
}

#[test]
fn input_recovery_key_and_merge_files_over_the_limit_are_refused() {
    let sb = Sandbox::new();
    let huge = sparse(&sb, "huge.yaml", (32 << 20) + 1);
    sb.run(&["--cert", &sb.cert(), "-f", s(&huge)], "")
        .failure("cannot read input file");
    sb.run(&["--cert", &sb.cert(), "-f", s(&huge)], "")
        .failure("larger than 32 MiB");
    sb.run(
        &["--recovery-unseal", "--recovery-private-key", s(&huge)],
        &sealed_yaml(&sb),
    )
    .failure("huge.yaml: cannot read the file: larger than 32 MiB");
    sb.run(
        &["--cert", &sb.cert(), "--merge-into", s(&huge)],
        &secret_yaml(Some("prod"), "db", DB),
    )
    .failure("larger than 32 MiB");
}

#[test]
fn repeated_key_in_yaml_input_is_an_error_naming_the_key_but_no_value() {
    let sb = Sandbox::new();
    let input = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n\
                 stringData:\n  password: hunter2\n  user: admin\n  password: hunter3\n";
    let stderr = sb
        .run(&["--cert", &sb.cert()], input)
        .failure("document 1 (prod/db): stringData: the key \"password\" appears more than once");
    assert!(!stderr.contains("hunter"), "{stderr}");
}

#[test]
fn repeated_key_in_json_input_is_an_error_naming_the_key() {
    let sb = Sandbox::new();
    let input = r#"{"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "prod", "name": "other"},
        "stringData": {"password": "hunter2"}}"#;
    let stderr = sb
        .run(&["--cert", &sb.cert()], input)
        .failure("metadata: the key \"name\" appears more than once");
    assert!(!stderr.contains("hunter"), "{stderr}");
}

#[test]
fn repeated_key_in_a_sealed_secret_or_a_key_file_is_an_error() {
    let sb = Sandbox::new();
    let sealed = sealed_yaml(&sb).replace("spec:\n", "spec:\n  template: {}\n  template: {}\n");
    sb.run(
        &["--recovery-unseal", "--recovery-private-key", &sb.key()],
        &sealed,
    )
    .failure("the key \"template\" appears more than once");

    let keys = sb.write(
        "keys.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: k\n  name: k\ndata: {}\n",
    );
    sb.run(
        &["--recovery-unseal", "--recovery-private-key", s(&keys)],
        &sealed_yaml(&sb),
    )
    .failure("metadata: the key \"name\" appears more than once");
}

#[test]
fn reencrypt_refuses_a_file_with_a_repeated_key_and_leaves_it_alone() {
    let sb = Sandbox::new();
    let sealed = sealed_yaml(&sb).replace("spec:\n", "spec:\n  template: {}\n  template: {}\n");
    let path = sb.write("sealed.yaml", &sealed);
    sb.run(
        &[
            "reencrypt",
            s(&path),
            "--recovery-private-key",
            &sb.key(),
            "--cert",
            &sb.cert(),
        ],
        "",
    )
    .failure("document 1: spec: the key \"template\" appears more than once");
    assert_eq!(sb.read("sealed.yaml"), sealed);
}

#[cfg(unix)]
#[test]
fn recipients_identity_passphrase_and_backup_files_are_capped() {
    let sb = Sandbox::new();
    let mut cmd = sb.command();
    cmd.args(["--recipients-file", "/dev/zero", "-f"])
        .arg(sb.write("in.yaml", secret_yaml(Some("prod"), "db", DB)));
    run_within(cmd, Duration::from_secs(30))
        .failure("/dev/zero: cannot read the file: larger than 1 MiB");

    let mut cmd = sb.command();
    cmd.args([
        "keys",
        "backup",
        "--passphrase-file",
        "/dev/zero",
        "-o",
        "backup.age",
    ]);
    run_within(cmd, Duration::from_secs(30))
        .failure("--passphrase-file /dev/zero: cannot read it: larger than 1 MiB");

    let mut cmd = sb.command();
    cmd.args(["keys", "restore", "/dev/zero"]);
    run_within(cmd, Duration::from_secs(30))
        .failure("keys restore /dev/zero: cannot read the file: larger than 32 MiB");
}
