//! The container image (issue 13): `scripts/image.sh` builds it from the committed
//! HEAD with no Docker engine and no registry, and
//! - the image holds the two binaries, `controller`, the libraries they link and a
//!   passwd entry, and nothing else: no shell, no package manager;
//! - its config runs `sealant-controller` as the numeric user 65532;
//! - its root filesystem is complete: both binaries run from it, chrooted, as that
//!   user, and `controller` is the controller;
//! - the same commit and SOURCE_DATE_EPOCH give the same digest, and another time
//!   gives another digest.
//!
//! The first run builds release binaries (minutes, once per commit); the others reuse
//! them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository root")
        .to_path_buf()
}

/// Runs scripts/image.sh into `out` with `epoch` as SOURCE_DATE_EPOCH (or the
/// commit's time); its `KEY=value` lines.
fn build_image(out: &Path, epoch: Option<&str>) -> BTreeMap<String, String> {
    let mut cmd = Command::new(root().join("scripts/image.sh"));
    cmd.env("IMAGE_OUT", out).env_remove("SOURCE_DATE_EPOCH");
    if let Some(epoch) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", epoch);
    }
    let output = cmd.output().expect("scripts/image.sh runs");
    assert!(
        output.status.success(),
        "scripts/image.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn run(cmd: &mut Command) -> String {
    let output = cmd.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("reads")).expect("is JSON")
}

/// The blob `digest` (`sha256:...`) of an OCI layout at `layout`.
fn blob(layout: &Path, digest: &Value) -> PathBuf {
    let digest = digest.as_str().expect("a digest string");
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
    layout.join("blobs").join(algorithm).join(hex)
}

#[test]
fn the_image_holds_only_the_binaries_and_their_libraries_runs_as_65532_and_is_reproducible() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let first = build_image(out.path(), None);
    let oci = PathBuf::from(&first["IMAGE_OCI"]);
    assert!(oci.is_file(), "{oci:?}");
    assert!(PathBuf::from(&first["IMAGE_DOCKER"]).is_file());

    // Unpack the OCI archive: index -> manifest -> config and layers.
    let layout = out.path().join("layout");
    fs::create_dir_all(&layout).expect("mkdir");
    run(Command::new("tar")
        .arg("-xf")
        .arg(&oci)
        .arg("-C")
        .arg(&layout));
    let index = read_json(&layout.join("index.json"));
    let manifest = read_json(&blob(&layout, &index["manifests"][0]["digest"]));
    let config = read_json(&blob(&layout, &manifest["config"]["digest"]));
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "{c}");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/sealant-controller"])
    );
    assert!(
        c["Env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v == "PATH=/usr/local/bin")),
        "{c}"
    );

    // The Docker archive is the same image: skopeo reads the same config from it.
    let docker_config: Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!("docker-archive:{}", first["IMAGE_DOCKER"]))))
    .expect("skopeo prints JSON");
    assert_eq!(docker_config["config"], config["config"]);

    // Every layer, unpacked into one root filesystem.
    let rootfs = out.path().join("rootfs");
    fs::create_dir_all(&rootfs).expect("mkdir");
    let mut entries = Vec::new();
    for layer in manifest["layers"].as_array().expect("layers") {
        let path = blob(&layout, &layer["digest"]);
        let listing = run(Command::new("tar").arg("-tf").arg(&path));
        entries.extend(
            listing
                .lines()
                .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_owned()),
        );
        run(Command::new("tar")
            .arg("-xf")
            .arg(&path)
            .arg("-C")
            .arg(&rootfs));
    }
    for needed in [
        "usr/local/bin/sealant-controller",
        "usr/local/bin/sealant",
        "usr/local/bin/controller",
        "lib64/ld-linux-x86-64.so.2",
        "etc/passwd",
    ] {
        assert!(
            entries.iter().any(|e| e == needed),
            "{needed} missing: {entries:?}"
        );
    }
    // Nothing else that runs: every file is one of ours, a library, or a line of
    // configuration.
    for entry in &entries {
        let allowed = entry.is_empty()
            || [
                "usr",
                "usr/local",
                "usr/local/bin",
                "usr/local/bin/sealant-controller",
                "usr/local/bin/sealant",
                "usr/local/bin/controller",
                "etc",
                "etc/passwd",
                "etc/group",
                "tmp",
                "lib",
                "lib64",
                "lib/x86_64-linux-gnu",
            ]
            .contains(&entry.as_str())
            || ((entry.starts_with("lib/") || entry.starts_with("lib64/"))
                && entry.contains(".so"));
        assert!(allowed, "the image holds {entry}, which it should not");
    }

    // The root filesystem is complete: the binaries run from it alone, as 65532.
    let chrooted = |bin: &str, arg: &str| {
        run(Command::new("chroot")
            .arg("--userspec=65532:65532")
            .arg(&rootfs)
            .arg(bin)
            .arg(arg))
    };
    assert!(chrooted("/usr/local/bin/sealant", "--version").contains("sealant"));
    let help = chrooted("/usr/local/bin/controller", "--help");
    assert!(help.contains("--key-renew-period"), "{help}");

    // Reproducible: the same commit and time give the same digest...
    let epoch = run(Command::new("git")
        .args(["log", "-1", "--format=%ct", "HEAD"])
        .current_dir(root()));
    let epoch = epoch.trim();
    let again = build_image(out.path(), Some(epoch));
    assert_eq!(again["IMAGE_DIGEST"], first["IMAGE_DIGEST"]);
    // ...and the digest does depend on what is stamped (this check can fail).
    let later = (epoch.parse::<u64>().expect("a number") + 1).to_string();
    let other = build_image(out.path(), Some(&later));
    assert_ne!(other["IMAGE_DIGEST"], first["IMAGE_DIGEST"]);
}
