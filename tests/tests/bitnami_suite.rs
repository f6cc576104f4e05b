//! Bitnami's own integration suite, the judge of the drop-in promise.
//!
//! The Ginkgo specs in the `integration/` package of the Bitnami Sealed Secrets Go
//! module (41 in v0.36.6: kubeseal's flags, offline sealing, `--validate`,
//! `--recovery-unseal`, and the controller creating, updating, adopting, patching,
//! re-creating and refusing Secrets) are built by `tests/peers/build.sh` into one test
//! binary, and run here against a controller in `kube-system` that the API server's
//! service proxy reaches as `sealed-secrets-controller`, in four pairings:
//!
//! | kubeseal under test | controller in the cluster |
//! |---|---|
//! | Bitnami's `kubeseal` | Bitnami's controller (the baseline: proves the harness) |
//! | `sealant` | Bitnami's controller |
//! | Bitnami's `kubeseal` | `sealant-controller` |
//! | `sealant` | `sealant-controller` |
//!
//! Every spec must pass in every pairing, except the two named in [`SKIPPED`], which
//! are skipped by name (never silently) in every pairing, Bitnami's own included, for
//! the reason given there and proven by
//! [`both_controllers_create_the_secret_when_the_unowned_one_is_gone_before_their_first_look`].
//! The suite's `--version` specs expect Bitnami's version line, so sealant's binaries
//! run under the names a user installs them as in Bitnami's place (`kubeseal` and
//! `controller`, symlinks), where they print it.
//!
//! The pairings share one control plane (and so its keys in `kube-system`: each
//! controller loads the one the previous wrote, which is part of the promise) and the
//! Service, so they run one at a time.
//!
//! Run it alone: `cargo test -p sealant-e2e --test bitnami_suite`. Ginkgo's output of
//! each pairing is kept in the control plane's `logs/` directory (`SEALANT_E2E_KEEP=1`
//! keeps the directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use sealant_e2e::fixtures::{expected, kubectl_apply, seal, secret_values};
use sealant_e2e::sealant_controller::SealantController;
use sealant_e2e::{ControlPlane, TestNamespace, bitnami, cluster, record_timing, tools};

/// Specs skipped in every pairing, with the reason.
///
/// Both specs create an unowned Secret, then the SealedSecret of the same name, then at
/// once delete the Secret, and check for 100 ms (Gomega's default `Consistently`) that
/// no Secret appears. Whether one does depends only on whether the controller's first
/// look at the SealedSecret comes before or after the deletion, a few milliseconds
/// apart: if after, there is no Secret in the way and any controller creates it.
/// Bitnami's usually passes because its first look comes about 0.5 s later on this
/// machine (an RSA-4096 decryption before its first GET); its own log then shows it
/// creating the Secret ("unable to create new content in namespace ... because it is
/// being terminated", as the spec has already deleted the namespace). Not always: in
/// a run on 2026-12-05, Bitnami's controller (paired with `sealant` as kubeseal, which
/// plays no part in these two specs) failed "... without managed annotation": the
/// Secret was there 56 ms after the deletion. sealant's controller looks within
/// milliseconds, so it usually comes after the deletion. The test
/// `both_controllers_create_the_secret_when_the_unowned_one_is_gone_before_their_first_look`
/// fixes that order (the controller is stopped meanwhile) and shows both controllers
/// create the Secret: the expectation of these specs holds for Bitnami's controller
/// only because it is slow.
const SKIPPED: [(&str, &str); 2] = [
    (
        "create Secret Recreation With unowned secret without managed annotation should not recreate the secret",
        "a race the controller's speed decides; Bitnami's creates the Secret too (see SKIPPED)",
    ),
    (
        "create Secret Recreation With unowned secret with patch annotation should not recreate the secret",
        "a race the controller's speed decides; Bitnami's creates the Secret too (see SKIPPED)",
    ),
];

/// One pairing runs at a time: they share the Service and port 8080.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Which binary plays each part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Bitnami,
    Sealant,
}

/// The controller that serves the suite, stopped when dropped.
enum Running {
    Bitnami(bitnami::BitnamiController),
    Sealant(SealantController),
}

impl Running {
    fn log_path(&self) -> PathBuf {
        match self {
            Running::Bitnami(c) => c.log_path(),
            Running::Sealant(c) => c.log_path(),
        }
    }

    fn cert_pem(&self) -> Result<String> {
        match self {
            Running::Bitnami(c) => c.cert_pem(),
            Running::Sealant(c) => c.cert_pem(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        match self {
            Running::Bitnami(c) => c.kill(),
            Running::Sealant(c) => c.kill(),
        }
    }
}

/// sealant's binaries under the names of Bitnami's (`kubeseal`, `controller`), as a
/// user who swaps them in place installs them.
fn bitnami_named(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let kubeseal = dir.join("kubeseal");
    let controller = dir.join("controller");
    std::os::unix::fs::symlink(tools::sealant()?, &kubeseal)?;
    std::os::unix::fs::symlink(tools::sealant_controller()?, &controller)?;
    Ok((kubeseal, controller))
}

async fn start_controller(cp: &'static ControlPlane, side: Side) -> Result<Running> {
    Ok(match side {
        Side::Bitnami => Running::Bitnami(bitnami::start_another(cp).await?),
        Side::Sealant => {
            // As a default install: every namespace (the suite makes its own), keys in
            // kube-system, the HTTP API where the Service routes.
            let c = SealantController::start_on_port(
                cp,
                bitnami::NAMESPACE,
                8080,
                &["--all-namespaces=true"],
            )
            .await?;
            let client = cp.client().await?;
            bitnami::route_service_proxy(&client, cp).await?;
            Running::Sealant(c)
        }
    })
}

/// One spec's outcome, from Ginkgo's JSON report.
#[derive(Debug)]
struct Spec {
    name: String,
    state: String,
    failure: String,
}

/// The `It` specs of a Ginkgo JSON report.
fn specs(report: &Path) -> Result<Vec<Spec>> {
    let text = std::fs::read_to_string(report)
        .with_context(|| format!("read the Ginkgo report {}", report.display()))?;
    let suites: serde_json::Value = serde_json::from_str(&text)?;
    let mut out = Vec::new();
    for suite in suites.as_array().into_iter().flatten() {
        for spec in suite["SpecReports"].as_array().into_iter().flatten() {
            if spec["LeafNodeType"] != "It" {
                continue;
            }
            let mut parts: Vec<&str> = spec["ContainerHierarchyTexts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .collect();
            parts.extend(spec["LeafNodeText"].as_str());
            out.push(Spec {
                name: parts.join(" "),
                state: spec["State"].as_str().unwrap_or("?").to_owned(),
                failure: spec["Failure"]["Message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
    }
    Ok(out)
}

/// Runs the whole suite with `kubeseal` under test against `controller` in the
/// cluster, and returns every spec's outcome.
async fn run_suite(kubeseal: Side, controller: Side) -> Result<Vec<Spec>> {
    let cp = cluster()?;
    let peers = &cp.peers;
    let named = tempfile::tempdir()?;
    let (sealant_kubeseal, sealant_controller) = bitnami_named(named.path())?;
    let kubeseal_bin = match kubeseal {
        Side::Bitnami => peers.kubeseal.clone(),
        Side::Sealant => sealant_kubeseal,
    };
    let controller_bin = match controller {
        Side::Bitnami => peers.sealed_secrets_controller.clone(),
        Side::Sealant => sealant_controller,
    };
    let running = start_controller(cp, controller).await?;

    let tag = format!("{kubeseal:?}-kubeseal-{controller:?}-controller").to_lowercase();
    let report = cp.dir.join(format!("logs/bitnami-suite-{tag}.json"));
    let log = cp.dir.join(format!("logs/bitnami-suite-{tag}.log"));
    let started = Instant::now();
    let mut suite = Command::new(&peers.bitnami_integration);
    let names: Vec<String> = SKIPPED.iter().map(|(name, _)| regex_escape(name)).collect();
    suite.arg(format!("-ginkgo.skip={}", names.join("|")));
    let output = suite
        .arg(format!("-kubeconfig={}", cp.admin_kubeconfig.display()))
        .arg(format!("-kubeseal-bin={}", kubeseal_bin.display()))
        .arg(format!("-controller-bin={}", controller_bin.display()))
        .arg(format!("-namespace={}", bitnami::NAMESPACE))
        .arg(format!("-ginkgo.json-report={}", report.display()))
        .args(["-ginkgo.no-color", "-ginkgo.v", "-test.timeout=10m"])
        .env_remove("KUBECONFIG")
        .current_dir(named.path())
        .output()
        .context("run the Bitnami integration suite")?;
    std::fs::write(&log, [&output.stdout[..], &output.stderr[..]].concat())?;
    // The controller's log, kept beside the suite's (the next start would overwrite it).
    drop(std::fs::copy(
        running.log_path(),
        cp.dir
            .join(format!("logs/bitnami-suite-{tag}-controller.log")),
    ));
    record_timing(&format!(
        "bitnami integration suite, {tag}: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let specs = specs(&report).with_context(|| {
        format!(
            "the suite wrote no report (exit {}); its output is in {}",
            output.status,
            log.display()
        )
    })?;
    if specs.is_empty() {
        bail!("the suite ran no spec; see {}", log.display());
    }
    Ok(specs)
}

/// `text` as a regular expression that matches exactly it (Go's RE2 syntax).
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = r"\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// Runs the pairing and fails with every spec that did not pass, other than the
/// [`SKIPPED`] ones (which must be found skipped, not missing).
async fn every_spec_passes(kubeseal: Side, controller: Side) {
    let _one = ONE_AT_A_TIME.lock().await;
    let specs = run_suite(kubeseal, controller)
        .await
        .expect("the Bitnami integration suite runs");
    let skipped_by_name =
        |s: &Spec| s.state == "skipped" && SKIPPED.iter().any(|(name, _)| *name == s.name);
    for (name, reason) in SKIPPED {
        assert!(
            specs.iter().any(|s| s.name == name && s.state == "skipped"),
            "{name:?} was to be skipped ({reason}), and was not found skipped"
        );
    }
    let failed: Vec<&Spec> = specs
        .iter()
        .filter(|s| s.state != "passed" && !skipped_by_name(s))
        .collect();
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &specs {
        *states.entry(s.state.as_str()).or_default() += 1;
    }
    assert!(
        failed.is_empty(),
        "{} of {} specs did not pass ({states:?}):\n{}",
        failed.len(),
        specs.len(),
        failed
            .iter()
            .map(|s| format!("- [{}] {}\n    {}", s.state, s.name, s.failure))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The v0.36.6 suite has 41 specs: a build that silently lost some would pass
    // the check above with fewer.
    assert!(specs.len() >= 41, "only {} specs ran", specs.len());
}

#[tokio::test]
async fn bitnami_suite_passes_with_bitnami_kubeseal_and_bitnami_controller() {
    every_spec_passes(Side::Bitnami, Side::Bitnami).await;
}

#[tokio::test]
async fn bitnami_suite_passes_with_sealant_as_kubeseal_and_bitnami_controller() {
    every_spec_passes(Side::Sealant, Side::Bitnami).await;
}

#[tokio::test]
async fn bitnami_suite_passes_with_bitnami_kubeseal_and_sealant_controller() {
    every_spec_passes(Side::Bitnami, Side::Sealant).await;
}

#[tokio::test]
async fn bitnami_suite_passes_with_sealant_as_kubeseal_and_sealant_controller() {
    every_spec_passes(Side::Sealant, Side::Sealant).await;
}

/// The state the two [`SKIPPED`] specs race into, with the order fixed: an unowned
/// Secret exists, its SealedSecret is created, and the Secret is deleted, all before
/// the controller first looks (it is stopped meanwhile). Bitnami's controller creates
/// the Secret, exactly as sealant's does: so "should not recreate the secret" holds
/// for Bitnami's only when its first look comes before the deletion, which on a real
/// machine is a matter of milliseconds.
#[tokio::test]
async fn both_controllers_create_the_secret_when_the_unowned_one_is_gone_before_their_first_look() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cp = cluster().expect("control plane");
    let client = cp.client().await.expect("client");
    for side in [Side::Bitnami, Side::Sealant] {
        let ns = TestNamespace::new(cp, "race").await.expect("namespace");
        let cert = {
            let running = start_controller(cp, side).await.expect("controller");
            running.cert_pem().expect("cert")
        }; // stopped here
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
        let unowned = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("testsecret".to_owned()),
                ..Default::default()
            },
            string_data: Some([("foo".to_owned(), "mine".to_owned())].into()),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &unowned)
            .await
            .expect("an unowned Secret");
        kubectl_apply(cp, &seal(&cert, &ns.name, "testsecret", &[("foo", "bar")]));
        secrets
            .delete("testsecret", &DeleteParams::default())
            .await
            .expect("delete the unowned Secret");

        let running = start_controller(cp, side).await.expect("controller again");
        let start = Instant::now();
        let made = loop {
            if let Ok(Some(s)) = secrets.get_opt("testsecret").await {
                break s;
            }
            assert!(
                start.elapsed().as_secs() < 30,
                "{side:?}'s controller made no Secret in 30 s; log: {}",
                running.log_path().display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(
            secret_values(&made),
            expected(&[("foo", "bar")]),
            "{side:?}"
        );
        let owner = made.metadata.owner_references.unwrap_or_default();
        assert_eq!(
            owner.first().map(|o| o.name.as_str()),
            Some("testsecret"),
            "{side:?}'s controller owns the Secret it made"
        );
    }
}
