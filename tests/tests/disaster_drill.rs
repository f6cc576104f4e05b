//! The disaster drill (issue #5): cluster A is lost for good, and everything it unsealed
//! comes back, byte for byte, on a fresh cluster B from what was kept outside A: the
//! SealedSecret files in a Git repository, the controller's escrow bundle (or Bitnami's
//! plain key backup), and the offline escrow identity.
//!
//! ```text
//!  cluster A (own control plane)                       "repo" (temp dir)     vault
//!  sealant-controller --escrow-recipient R ──────────> bundle.age           escrow.key
//!   key 1 ─ SIGUSR1 ─> key 2 ─ SIGUSR1 ─> key 3        bitnami-backup.yaml   (keygen-escrow)
//!   N SealedSecrets, a third sealed with each key ───> sealed/*.yaml
//!   every Secret's data recorded; A destroyed
//!                                 │
//!  cluster B (fresh): namespaces; sealant keys restore; controller; kubectl apply -f sealed/
//!   every Secret's data == A's
//! ```
//!
//! A runs once per binary and its results are shared; each test restores onto its own
//! cluster B:
//! - the escrow bundle, restored before the controller starts;
//! - the escrow bundle, restored in GitOps order: the controller is running and the
//!   SealedSecrets were applied first and failed (B's own new key cannot open them);
//!   the restore alone brings every Secret back, with no re-apply and no restart;
//! - Bitnami's plain backup (`kubectl get secret -l ...-key -o yaml`), with no identity.
//!
//! Renewals are SIGUSR1, not `--key-renew-period`, so the key set is exactly three keys
//! when the bundle is saved. Values are sealed both to each key's certificate (RSA)
//! and to its age recipient. N is `SEALANT_DRILL_N` (default 30). Each phase's time is
//! printed and recorded with [`record_timing`], never asserted; run one test at a time
//! (`--test-threads=1`) for timings that are not shared with the other variants.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};
use sealant_crds::SealedSecret;
use sealant_crds::key_secret::parse_key_list;
use sealant_e2e::control_plane::{block_on_own_thread, http_get};
use sealant_e2e::fixtures::{expected, grant_in_namespace, kubectl, seal, seal_to_recipients};
use sealant_e2e::process::Reaper;
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{ControlPlane, TestNamespace, random_hex, record_timing, tools};
use sealant_keys::{AgeIdentity, PrivateKey, bundle};

/// The key Secret label selector, as Bitnami and sealant write it.
const KEY_SELECTOR: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";
/// The ConfigMap the controller keeps its escrow bundle in, and its data key.
const ESCROW_CONFIG_MAP: &str = "sealant-escrow-bundle";
const ESCROW_BUNDLE_KEY: &str = "bundle.age";
/// Key generations on A: the first, and two renewals.
const GENERATIONS: usize = 3;

/// A Secret's `data`, as the API server returns it.
type Data = BTreeMap<String, ByteString>;

/// What survives cluster A.
struct Repo {
    /// Removes the repository and the vault when the test process exits.
    _cleanup: Reaper,
    /// The "Git repository": `sealed/*.yaml`, `bundle.age`, `bitnami-backup.yaml`.
    dir: PathBuf,
    /// The offline escrow identity (outside the repository).
    escrow_key: PathBuf,
    /// Where A's controller kept its keys.
    controller_namespace: String,
    /// Where the SealedSecrets live.
    app_namespaces: [String; 2],
    /// Every Secret A unsealed, by `(namespace, name)`.
    secrets: BTreeMap<(String, String), Data>,
    /// The fingerprints of A's keys.
    fingerprints: BTreeSet<String>,
    /// The certificate A sealed with last.
    newest_cert: String,
}

/// How many SealedSecrets the drill seals: `SEALANT_DRILL_N`, default 30.
fn drill_n() -> usize {
    std::env::var("SEALANT_DRILL_N")
        .ok()
        .map(|v| v.parse().expect("SEALANT_DRILL_N is a number"))
        .unwrap_or(30)
}

/// Cluster A's life and death, once per binary.
fn repo() -> &'static Repo {
    static REPO: OnceLock<Result<Repo, String>> = OnceLock::new();
    REPO.get_or_init(|| block_on_own_thread(drill_on_a).map_err(|e| format!("{e:#}")))
        .as_ref()
        .expect("cluster A's part of the drill")
}

/// `sealant ARGS`, checked to exit 0; its stdout.
fn sealant(args: &[&std::ffi::OsStr]) -> String {
    let out = tools::run(
        Command::new(tools::sealant().expect("sealant")).args(args),
        b"",
    )
    .expect("sealant");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `GET /v1/age-recipient`, trimmed.
fn age_recipient(controller: &SealantController) -> String {
    let (code, body) = http_get(controller.addr, "/v1/age-recipient").expect("GET");
    assert_eq!(code, 200, "{body}");
    body.trim().to_owned()
}

/// The controller's `--additional-namespaces` flag for `repo`'s app namespaces.
fn watch_flag(app_namespaces: &[String; 2]) -> String {
    format!("--additional-namespaces={}", app_namespaces.join(","))
}

/// The fingerprints of the RSA keys in `secrets`.
fn fingerprints(secrets: &[Secret]) -> BTreeSet<String> {
    secrets
        .iter()
        .map(|s| {
            let pem = &s.data.as_ref().expect("data")["tls.key"].0;
            PrivateKey::from_pem(pem)
                .expect("tls.key")
                .fingerprint()
                .as_str()
                .to_owned()
        })
        .collect()
}

/// The key Secrets in `namespace`.
async fn key_secrets(cp: &ControlPlane, namespace: &str) -> Vec<Secret> {
    Api::<Secret>::namespaced(cp.client().await.expect("client"), namespace)
        .list(&ListParams::default().labels(KEY_SELECTOR))
        .await
        .expect("list key Secrets")
        .items
}

/// Waits until every Secret in `want` exists with data in `cp`, failing early if the
/// controller stops, and returns their data.
async fn all_secrets(
    cp: &ControlPlane,
    controller: &SealantController,
    want: &BTreeSet<(String, String)>,
    namespaces: &[String; 2],
) -> BTreeMap<(String, String), Data> {
    let client = cp.client().await.expect("client");
    let limit = Duration::from_secs(120) + Duration::from_millis(200) * want.len() as u32;
    let start = Instant::now();
    loop {
        let mut found = BTreeMap::new();
        for ns in namespaces {
            let listed = Api::<Secret>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await;
            for s in listed.map(|l| l.items).unwrap_or_default() {
                let key = (ns.clone(), s.metadata.name.clone().unwrap_or_default());
                if want.contains(&key) {
                    found.insert(key, s.data.unwrap_or_default());
                }
            }
        }
        if found.len() == want.len() {
            return found;
        }
        controller.check_running().expect("sealant-controller");
        assert!(
            start.elapsed() < limit,
            "after {limit:?}, {} of {} Secrets are there",
            found.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kubectl apply -f repo/sealed/`, as admin.
fn apply_repo(cp: &ControlPlane, repo: &Path) {
    tools::run(
        kubectl(cp).arg("apply").arg("-f").arg(repo.join("sealed")),
        b"",
    )
    .expect("kubectl apply -f sealed/");
}

/// Cluster A: keys, renewals, SealedSecrets, the escrow bundle, Bitnami's backup, and
/// the end of A.
async fn drill_on_a() -> anyhow::Result<Repo> {
    let n = drill_n();
    let started = Instant::now();
    // The repository and the vault outlive A, and go (with the escrow identity in the
    // vault) when the test process exits, as a control plane's directory does.
    let drill_dir = tempfile::Builder::new()
        .prefix("sealant-drill-")
        .tempdir()?
        .keep();
    let keep = std::env::var("SEALANT_TEST_KEEP").is_ok_and(|v| v == "1");
    let cleanup = Reaper::start(&drill_dir, "", "", keep)?;
    let repo_dir = drill_dir.join("repo");
    let vault = drill_dir.join("vault");
    std::fs::create_dir_all(&repo_dir)?;
    std::fs::create_dir_all(&vault)?;
    let escrow_key = vault.join("escrow.key");
    let escrow_recipient = sealant(&[
        "keygen-escrow".as_ref(),
        "-o".as_ref(),
        escrow_key.as_os_str(),
    ])
    .trim()
    .to_owned();
    assert!(escrow_recipient.starts_with("age1"), "{escrow_recipient:?}");

    let a = ControlPlane::start_another()?;
    let keys_ns = TestNamespace::new(a, "drill-keys").await?;
    let apps = [
        TestNamespace::new(a, "drill-app1").await?,
        TestNamespace::new(a, "drill-app2").await?,
    ];
    let app_namespaces = [apps[0].name.clone(), apps[1].name.clone()];
    grant_in_namespace(a, "sealant-escrow", &keys_ns.name).await?;
    let controller = SealantController::start(
        a,
        &keys_ns.name,
        &[
            &format!("--escrow-recipient={escrow_recipient}"),
            &watch_flag(&app_namespaces),
        ],
    )
    .await?;
    let a_ready = started.elapsed();

    // N SealedSecrets, a third with each key generation: even ones to the certificate
    // (RSA), odd ones to the age recipient.
    let sealed_dir = repo_dir.join("sealed");
    std::fs::create_dir_all(&sealed_dir)?;
    let mut plaintexts = BTreeMap::new();
    let mut cert = String::new();
    let mut renewed = Instant::now();
    for generation in 0..GENERATIONS {
        if generation > 0 {
            // NotBefore has whole seconds, and on a tie the older key stays newest.
            if let Some(wait) = Duration::from_millis(1100).checked_sub(renewed.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            controller.renew_key()?;
            renewed = Instant::now();
            let start = Instant::now();
            while controller.cert_pem()? == cert {
                controller.check_running()?;
                anyhow::ensure!(start.elapsed() < Duration::from_secs(30), "no renewal");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        cert = controller.cert_pem()?;
        let recipient = age_recipient(&controller);
        let first = n * generation / GENERATIONS;
        let last = n * (generation + 1) / GENERATIONS;
        for i in first..last {
            let ns = &app_namespaces[i % 2];
            let name = format!("app-{i:04}");
            let password = random_hex(16);
            let generation_text = generation.to_string();
            let values = [
                ("password", password.as_str()),
                ("generation", generation_text.as_str()),
            ];
            let yaml = if i % 2 == 0 {
                seal(&cert, ns, &name, &values)
            } else {
                seal_to_recipients(&[&recipient], ns, &name, &values)
            };
            std::fs::write(sealed_dir.join(format!("{ns}-{name}.yaml")), yaml)?;
            plaintexts.insert((ns.clone(), name), expected(&values));
        }
    }
    let sealed = started.elapsed();

    apply_repo(a, &repo_dir);
    let want: BTreeSet<_> = plaintexts.keys().cloned().collect();
    let secrets = all_secrets(a, &controller, &want, &app_namespaces).await;
    for (key, data) in &secrets {
        let text: BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).expect("UTF-8")))
            .collect();
        assert_eq!(&text, &plaintexts[key], "{key:?} unsealed on A");
    }
    let unsealed = started.elapsed();

    // The escrow bundle, once it holds all three keys.
    let keys = key_secrets(a, &keys_ns.name).await;
    assert_eq!(keys.len(), GENERATIONS, "three key generations on A");
    let fingerprints_a = fingerprints(&keys);
    let identities =
        AgeIdentity::parse_file(&std::fs::read_to_string(&escrow_key)?).expect("escrow.key");
    let config_maps: Api<ConfigMap> = Api::namespaced(a.client().await?, &keys_ns.name);
    let start = Instant::now();
    let bundle_text = loop {
        let text = config_maps
            .get_opt(ESCROW_CONFIG_MAP)
            .await?
            .and_then(|c| c.data)
            .and_then(|mut d| d.remove(ESCROW_BUNDLE_KEY));
        let held = match text {
            Some(text) => {
                assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
                let plain = bundle::open(&identities, text.as_bytes()).expect("the bundle opens");
                let held = fingerprints(&parse_key_list(std::str::from_utf8(
                    plain.expose_secret(),
                )?)?);
                if held == fingerprints_a {
                    break text;
                }
                format!("{held:?}")
            }
            None => "no ConfigMap".to_owned(),
        };
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the escrow bundle never held A's {GENERATIONS} keys {fingerprints_a:?} \
             (last: {held}); controller log:\n{}",
            sealant_e2e::process::tail(&controller.log_path(), 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let escrowed = started.elapsed();
    std::fs::write(repo_dir.join("bundle.age"), &bundle_text)?;
    let backup = tools::run(
        kubectl(a).args([
            "get",
            "secret",
            "-n",
            &keys_ns.name,
            "-l",
            "sealedsecrets.bitnami.com/sealed-secrets-key",
            "-o",
            "yaml",
        ]),
        b"",
    )?;
    std::fs::write(repo_dir.join("bitnami-backup.yaml"), &backup.stdout)?;
    assert!(!controller.log()?.contains("BEGIN RSA PRIVATE KEY"));

    let destroying = Instant::now();
    a.destroy()?;
    let destroyed = destroying.elapsed();
    record_timing(&format!(
        "disaster_drill: N={n} cluster A: ready {:.1} s, {n} sealed across {GENERATIONS} keys by {:.1} s, \
         all unsealed by {:.1} s, escrow bundle with all {GENERATIONS} keys by {:.1} s; \
         destroyed in {} ms",
        a_ready.as_secs_f64(),
        sealed.as_secs_f64(),
        unsealed.as_secs_f64(),
        escrowed.as_secs_f64(),
        destroyed.as_millis()
    ));
    Ok(Repo {
        _cleanup: cleanup,
        dir: repo_dir,
        escrow_key,
        controller_namespace: keys_ns.name.clone(),
        app_namespaces,
        secrets,
        fingerprints: fingerprints_a,
        newest_cert: cert,
    })
}

/// What a test restores on B, and when.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Restore {
    /// `bundle.age` with `--identity escrow.key`, before the controller starts.
    EscrowBeforeStart,
    /// `bundle.age` with `--identity escrow.key`, under a running controller.
    EscrowWhileRunning,
    /// `bitnami-backup.yaml` (plain), before the controller starts.
    BitnamiBackupBeforeStart,
}

/// Whether the controller has reported `sealed` `Synced=False`.
fn synced_is_false(sealed: &SealedSecret) -> bool {
    sealed
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == sealant_crds::CONDITION_SYNCED && c.status == "False")
        })
}

/// Runs `sealant keys restore` of `what` into `b`; returns how long it took.
fn restore(b: &ControlPlane, repo: &Repo, what: Restore) -> Duration {
    let mut args: Vec<&std::ffi::OsStr> = vec!["keys".as_ref(), "restore".as_ref()];
    let file = match what {
        Restore::BitnamiBackupBeforeStart => repo.dir.join("bitnami-backup.yaml"),
        _ => repo.dir.join("bundle.age"),
    };
    args.push(file.as_os_str());
    if what != Restore::BitnamiBackupBeforeStart {
        args.extend(["--identity".as_ref(), repo.escrow_key.as_os_str()]);
    }
    args.extend([
        "--controller-namespace".as_ref(),
        repo.controller_namespace.as_ref(),
        "--kubeconfig".as_ref(),
        b.admin_kubeconfig.as_os_str(),
    ]);
    let start = Instant::now();
    let out = sealant(&args);
    let took = start.elapsed();
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    took
}

/// Cluster B: namespaces, the restore in `what`'s order, the controller, the repo
/// applied; every Secret must equal A's.
async fn drill_on_b(what: Restore) {
    let repo = repo();
    let n = repo.secrets.len();
    let started = Instant::now();
    let b = ControlPlane::start_another().expect("cluster B");
    let b_ready = started.elapsed();
    let _keys_ns = TestNamespace::named(b, &repo.controller_namespace)
        .await
        .expect("the controller's namespace on B");
    let mut _apps = Vec::new();
    for ns in &repo.app_namespaces {
        _apps.push(TestNamespace::named(b, ns).await.expect("app namespace"));
    }
    let flags = [watch_flag(&repo.app_namespaces)];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    // (restore, controller start, keys loaded by the running controller)
    let (restore_took, controller_took, pickup, controller) = if what == Restore::EscrowWhileRunning
    {
        let start = Instant::now();
        let controller = SealantController::start(b, &repo.controller_namespace, &flags)
            .await
            .expect("sealant-controller on B");
        let controller_took = start.elapsed();
        assert_eq!(key_secrets(b, &repo.controller_namespace).await.len(), 1);
        // GitOps order: the SealedSecrets arrive first and fail with B's own new key,
        // every one of them (each reports Synced=False), and none made a Secret...
        apply_repo(b, &repo.dir);
        let client = b.client().await.expect("client on B");
        let limit = Duration::from_secs(120) + Duration::from_millis(200) * n as u32;
        let start = Instant::now();
        loop {
            let mut failed = 0;
            for ns in &repo.app_namespaces {
                let listed = Api::<SealedSecret>::namespaced(client.clone(), ns)
                    .list(&ListParams::default())
                    .await;
                failed += listed
                    .map(|l| l.items)
                    .unwrap_or_default()
                    .iter()
                    .filter(|s| synced_is_false(s))
                    .count();
            }
            if failed == n {
                break;
            }
            controller.check_running().expect("sealant-controller");
            assert!(
                start.elapsed() < limit,
                "after {limit:?}, {failed} of {n} SealedSecrets had failed before the restore"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for ns in &repo.app_namespaces {
            let made = Api::<Secret>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
                .expect("list Secrets")
                .items
                .into_iter()
                .filter(|s| s.type_.as_deref() != Some("kubernetes.io/service-account-token"))
                .filter_map(|s| s.metadata.name)
                .collect::<Vec<_>>();
            assert!(
                made.is_empty(),
                "Secrets before the restore in {ns}: {made:?}"
            );
        }
        // ... and the restore alone brings them back: no re-apply, no restart.
        let took = restore(b, repo, what);
        // Its key watch loads each restored key: the key metrics name them.
        let start = Instant::now();
        for fingerprint in &repo.fingerprints {
            let metric =
                format!(r#"sealant_controller_key_age_seconds{{fingerprint="{fingerprint}"}}"#);
            eventually(
                &format!("the controller to load {fingerprint}"),
                &controller,
                || {
                    let found = controller.metric(&metric).is_ok();
                    async move { found.then_some(()) }
                },
            )
            .await;
        }
        (took, controller_took, Some(start.elapsed()), controller)
    } else {
        let took = restore(b, repo, what);
        let restored = key_secrets(b, &repo.controller_namespace).await;
        assert_eq!(fingerprints(&restored), repo.fingerprints, "A's keys on B");
        let start = Instant::now();
        let controller = SealantController::start(b, &repo.controller_namespace, &flags)
            .await
            .expect("sealant-controller on B");
        let controller_took = start.elapsed();
        assert_eq!(
            controller.cert_pem().expect("cert"),
            repo.newest_cert,
            "B seals with A's newest key and made none of its own"
        );
        (took, controller_took, None, controller)
    };
    let pid = controller.pid();
    let fingerprints_b = fingerprints(&key_secrets(b, &repo.controller_namespace).await);
    assert!(
        fingerprints_b.is_superset(&repo.fingerprints),
        "every key of A is on B"
    );

    let applied = Instant::now();
    if what != Restore::EscrowWhileRunning {
        apply_repo(b, &repo.dir);
    }
    let want: BTreeSet<_> = repo.secrets.keys().cloned().collect();
    let secrets = all_secrets(b, &controller, &want, &repo.app_namespaces).await;
    let back = applied.elapsed();
    for (key, data) in &repo.secrets {
        assert_eq!(&secrets[key], data, "{key:?} is byte-identical to A's");
    }
    controller.check_running().expect("sealant-controller");
    assert_eq!(controller.pid(), pid, "no restart");
    let pickup = pickup
        .map(|p| {
            format!(
                " (running controller loaded the keys {} ms after it)",
                p.as_millis()
            )
        })
        .unwrap_or_default();
    record_timing(&format!(
        "disaster_drill: N={n} {what:?}: cluster B ready {:.1} s; restore {} ms{pickup}; \
         controller serving {} ms after start; all {n} Secrets back {} ms after kubectl apply (or, for the running \
         controller, after the keys were loaded); \
         {:.1} s from cluster B's start to the last Secret",
        b_ready.as_secs_f64(),
        restore_took.as_millis(),
        controller_took.as_millis(),
        back.as_millis(),
        started.elapsed().as_secs_f64()
    ));
}

#[tokio::test]
async fn escrow_bundle_restored_before_the_controller_starts_brings_back_every_secret_byte_for_byte()
 {
    drill_on_b(Restore::EscrowBeforeStart).await;
}

#[tokio::test]
async fn escrow_bundle_restored_after_the_sealed_secrets_failed_unseals_them_without_a_restart() {
    drill_on_b(Restore::EscrowWhileRunning).await;
}

#[tokio::test]
async fn bitnami_plain_key_backup_restored_without_an_identity_brings_back_every_secret() {
    drill_on_b(Restore::BitnamiBackupBeforeStart).await;
}
