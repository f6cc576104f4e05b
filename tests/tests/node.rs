//! The controller as Pods on a real node (issue 13): containerd, runc, the CNI bridge,
//! a kubelet, kube-proxy and kube-scheduler beside a control plane of this binary's own
//! (`sealant_e2e::node`), running the image `scripts/image.sh` builds, installed by
//! `helm` from `charts/sealant`, and Bitnami's chart and image beside them.
//!
//! Two stories share the node, each in its own namespace and release names:
//! - our chart with default names in kube-system: both replicas Ready through their
//!   probes, `sealant` with default flags through the real Service, the leader Pod
//!   deleted, a rolling `helm upgrade` to a new image tag, `helm uninstall`;
//! - the migration drill: Bitnami's chart and image, replaced in place by ours with the
//!   same values file, then Bitnami's chart running our image (only `image.*`
//!   changed), and back to Bitnami's image.
//!
//! Every wait is bounded; a failure prints the Pods' logs through `kubectl logs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams};
use sealant_e2e::fixtures::{expected, kubectl, kubectl_apply, secret_values, secret_yaml};
use sealant_e2e::node::{self, Node};
use sealant_e2e::peers::peers;
use sealant_e2e::{ControlPlane, TestNamespace, tools};

/// The chart's default `leaderElection.leaseDuration`: the longest unsealing gap a
/// rolling upgrade may cause.
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long a Secret may take to appear, or a release to become Ready.
const WAIT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository root")
        .to_path_buf()
}

/// The control plane, its node, and our image imported into it (reference, tag).
struct Cluster {
    cp: &'static ControlPlane,
    node: Node,
    image_tag: String,
}

/// Started on first use and shared by the tests of this binary.
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            sealant_e2e::control_plane::block_on_own_thread(|| async {
                let started = Instant::now();
                let cp = ControlPlane::start_another_with(&node::APISERVER_ARGS)?;
                let node = Node::start(cp).await?;
                let (archive, reference) = sealant_image()?;
                node.import_image(&archive)?;
                node.import_image(&peers()?.bitnami_image)?;
                let image_tag = reference
                    .rsplit_once(':')
                    .map(|(_, t)| t.to_owned())
                    .ok_or_else(|| anyhow::anyhow!("no tag in {reference}"))?;
                sealant_e2e::record_timing(&format!(
                    "node: control plane and node Ready in {:.1} s (node {:.1} s), images imported",
                    started.elapsed().as_secs_f64(),
                    node.ready_after.as_secs_f64()
                ));
                Ok(Cluster {
                    cp,
                    node,
                    image_tag,
                })
            })
            .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("the control plane with a node did not start: {e}"))
}

/// `scripts/image.sh` for the committed HEAD: the docker archive and the reference.
fn sealant_image() -> anyhow::Result<(PathBuf, String)> {
    let out = Command::new(root().join("scripts/image.sh"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("IMAGE_TAG")
        .env_remove("IMAGE_OUT")
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "scripts/image.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("scripts/image.sh printed no {name}:\n{text}"))
    };
    Ok((PathBuf::from(field("IMAGE_DOCKER")?), field("IMAGE_REF")?))
}

/// A release of a chart in a namespace, driven by the pinned `helm`.
struct Release<'a> {
    cluster: &'a Cluster,
    name: &'a str,
    namespace: &'a str,
    /// `--skip-crds`: Bitnami's chart carries its own copy of the CRD, which differs
    /// from the one the cluster has, and helm would apply it over ours.
    skip_crds: bool,
}

impl Release<'_> {
    fn helm(&self) -> Command {
        let mut cmd = Command::new(&peers().expect("peers").helm);
        cmd.arg("--kubeconfig")
            .arg(&self.cluster.cp.admin_kubeconfig)
            .args(["--namespace", self.namespace]);
        cmd
    }

    /// `helm install` (or `upgrade` when `upgrade`) of `chart` with the values file
    /// `values` and `sets`, waiting until every Pod is Ready; returns helm's output
    /// (the notes). On failure, the Pods' state and logs.
    fn install(&self, verb: &str, chart: &Path, values: &str, sets: &[String]) -> String {
        let started = Instant::now();
        let mut cmd = self.helm();
        cmd.args([verb, self.name])
            .arg(chart)
            .args(["-f", "-", "--wait", "--timeout", "180s"]);
        if self.skip_crds {
            cmd.arg("--skip-crds");
        }
        for set in sets {
            cmd.args(["--set", set]);
        }
        let out = tools::run_unchecked(&mut cmd, values.as_bytes()).expect("run helm");
        assert!(
            out.status.success(),
            "helm {verb} {} in {} failed: {}\n{}",
            self.name,
            self.namespace,
            String::from_utf8_lossy(&out.stderr),
            self.diagnostics()
        );
        sealant_e2e::record_timing(&format!(
            "node: helm {verb} {} ({}) Ready in {:.1} s",
            self.name,
            chart.file_name().unwrap_or_default().to_string_lossy(),
            started.elapsed().as_secs_f64()
        ));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn uninstall(&self) {
        let out = tools::run_unchecked(
            self.helm()
                .args(["uninstall", self.name, "--wait", "--timeout", "120s"]),
            b"",
        )
        .expect("run helm");
        assert!(
            out.status.success(),
            "helm uninstall {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kubectl get pods` and the last lines of every Pod's log, for failure reports.
    fn diagnostics(&self) -> String {
        let run_kubectl = |args: &[&str]| {
            tools::run_unchecked(
                kubectl(self.cluster.cp)
                    .args(["-n", self.namespace])
                    .args(args),
                b"",
            )
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_else(|e| format!("{e:#}"))
        };
        let pods = run_kubectl(&["get", "pods", "-o", "name"]);
        let mut out = format!(
            "pods:\n{}\nevents:\n{}",
            run_kubectl(&["get", "pods", "-o", "wide"]),
            run_kubectl(&["get", "events", "--sort-by=.lastTimestamp"])
        );
        for pod in pods.lines().filter(|l| l.starts_with("pod/")) {
            out.push_str(&format!(
                "----- kubectl logs {pod} -----\n{}\n",
                run_kubectl(&["logs", pod, "--tail=30"])
            ));
        }
        out.push_str(&self.cluster.node.log_tails(15));
        out
    }
}

/// `program --fetch-cert` (`sealant` or `kubeseal`) with `flags`, as admin: the PEM.
fn fetch_cert(cluster: &Cluster, program: &Path, flags: &[String], what: &str) -> Vec<u8> {
    let out = tools::run(
        Command::new(program)
            .arg("--kubeconfig")
            .arg(&cluster.cp.admin_kubeconfig)
            .args(flags)
            .arg("--fetch-cert"),
        b"",
    )
    .unwrap_or_else(|e| panic!("{} --fetch-cert from {what}: {e:#}", program.display()))
    .stdout;
    assert!(
        String::from_utf8_lossy(&out).contains("BEGIN CERTIFICATE"),
        "{} --fetch-cert from {what} printed no certificate",
        program.display()
    );
    out
}

/// The controller flags for `sealant` and `kubeseal` (empty for the defaults).
fn controller_flags(namespace: &str, name: &str) -> Vec<String> {
    if namespace == "kube-system" && name == "sealed-secrets-controller" {
        return Vec::new();
    }
    vec![
        format!("--controller-namespace={namespace}"),
        format!("--controller-name={name}"),
    ]
}

/// `sealant` or `kubeseal` (`program`) with the admin kubeconfig and `args`, fed the
/// Secret `namespace/name` with `values`: the SealedSecret (YAML).
fn seal_with(
    cluster: &Cluster,
    program: &Path,
    args: &[String],
    namespace: &str,
    name: &str,
    values: &[(&str, &str)],
) -> Vec<u8> {
    let out = tools::run(
        Command::new(program)
            .arg("--kubeconfig")
            .arg(&cluster.cp.admin_kubeconfig)
            .args(args)
            .args(["--format", "yaml"]),
        secret_yaml(namespace, name, values, sealant_keys::Scope::Strict).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{} seals {namespace}/{name}: {e:#}", program.display()));
    out.stdout
}

/// Waits until the Secret `name` has `values`; how long it took.
async fn secret_appears(
    release: &Release<'_>,
    secrets: &Api<Secret>,
    name: &str,
    values: &[(&str, &str)],
) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(Some(secret)) = secrets.get_opt(name).await {
            assert_eq!(
                secret_values(&secret),
                expected(values),
                "the Secret {name} has other values"
            );
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT,
            "no Secret {name} in {} after {WAIT:?}\n{}",
            release.namespace,
            release.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ClusterIP of the Service kube-system/sealed-secrets-controller.
async fn service_ip(client: &kube::Client) -> String {
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), "kube-system")
        .get("sealed-secrets-controller")
        .await
        .expect("the Service")
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP")
}

/// Runs `command` in a Pod of `image` (as a non-root user, read-only root filesystem)
/// in `namespace` until it succeeds; its log, read with `kubectl logs`.
async fn run_to_completion(
    release: &Release<'_>,
    client: &kube::Client,
    namespace: &str,
    image: &str,
    command: &[&str],
) -> String {
    let name = format!("job-{}", sealant_e2e::random_hex(3));
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "job",
                "image": image,
                "imagePullPolicy": "Never",
                "command": command,
                "securityContext": {
                    "runAsNonRoot": true,
                    "readOnlyRootFilesystem": true,
                    "allowPrivilegeEscalation": false,
                    "capabilities": { "drop": ["ALL"] },
                },
            }],
        },
    }))
    .expect("a Pod");
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    pods.create(&Default::default(), &pod)
        .await
        .expect("create the Pod");
    let logs = || {
        let out = tools::run_unchecked(
            kubectl(release.cluster.cp).args(["-n", namespace, "logs", &name]),
            b"",
        )
        .expect("kubectl logs");
        assert!(
            out.status.success(),
            "kubectl logs {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let started = Instant::now();
    loop {
        let phase = pods
            .get(&name)
            .await
            .expect("the Pod")
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        match phase.as_str() {
            "Succeeded" => break,
            "Failed" => panic!(
                "the Pod {name} ({command:?}) failed:\n{}\n{}",
                logs(),
                release.diagnostics()
            ),
            _ => {}
        }
        assert!(
            started.elapsed() < WAIT,
            "the Pod {name} did not finish\n{}",
            release.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    logs()
}

/// The names of the Ready Pods of the release's Deployment `name`.
async fn ready_pods(client: &kube::Client, namespace: &str, name: &str) -> Vec<Pod> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .expect("the Deployment");
    let selector = deployment
        .spec
        .and_then(|s| s.selector.match_labels)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list Pods")
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect()
}

/// `name` (`what`) is the name of one of `pods`.
fn assert_one_of(pods: &[Pod], name: &str, what: &str) {
    assert!(
        pods.iter()
            .any(|p| p.metadata.name.as_deref() == Some(name)),
        "{what} {name} is none of the Pods {:?}",
        pods.iter()
            .map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>()
    );
}

/// The Pod that holds the Lease (its identity is `<Pod name>_<random>`), waiting until
/// one does.
async fn leader(release: &Release<'_>, leases: &Api<Lease>) -> String {
    let started = Instant::now();
    loop {
        if let Some(holder) = sealant_e2e::sealant_controller::lease_holder(leases).await {
            return holder
                .rsplit_once('_')
                .map_or(holder.clone(), |(pod, _)| pod.to_owned());
        }
        assert!(
            started.elapsed() < WAIT,
            "no leader after {WAIT:?}\n{}",
            release.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealant_pods_serve_take_over_roll_and_uninstall_keeping_the_keys() {
    let cluster = cluster();
    let cp = cluster.cp;
    let client = cp.client().await.expect("client");
    let ns = TestNamespace::new(cp, "pods").await.expect("namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let release = Release {
        cluster,
        name: "sealant",
        namespace: "kube-system",
        skip_crds: false,
    };
    let chart = root().join("charts/sealant");
    let sealant = tools::sealant().expect("sealant");
    let image = |tag: &str| -> Vec<String> {
        vec![
            "image.registry=localhost".to_owned(),
            "image.repository=sealant".to_owned(),
            format!("image.tag={tag}"),
        ]
    };

    // helm install: both replicas Ready through their probes.
    let notes = release.install("install", &chart, "{}\n", &image(&cluster.image_tag));
    assert!(
        notes.contains("`helm uninstall` leaves them"),
        "the notes do not say the keys stay:\n{notes}"
    );
    let pods = ready_pods(&client, "kube-system", "sealed-secrets-controller").await;
    assert_eq!(pods.len(), 2, "Ready Pods: {pods:?}");
    for pod in &pods {
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        let path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .and_then(|h| h.path.clone())
        };
        assert_eq!(
            (
                path(&container.readiness_probe),
                path(&container.liveness_probe)
            ),
            (Some("/readyz".to_owned()), Some("/healthz".to_owned())),
            "the Pod's probes: {container:?}"
        );
    }
    // The leader reached the API server through the `kubernetes` ClusterIP (in-cluster
    // configuration) and holds the Lease; `kubectl logs` reaches the kubelet.
    let first_leader = leader(&release, &leases).await;
    assert_one_of(&pods, &first_leader, "the Lease holder");
    let logs = tools::run(
        kubectl(cluster.cp).args(["-n", "kube-system", "logs", &first_leader]),
        b"",
    )
    .expect("kubectl logs");
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("became the leader"),
        "kubectl logs of the leader:\n{}",
        String::from_utf8_lossy(&logs.stdout)
    );

    // `sealant` with its default flags fetches the certificate through the Service.
    let cert = fetch_cert(cluster, &sealant, &[], "the Pods, with default flags");
    // A Pod of the same image runs `sealant` as a job: it reaches the controller's
    // ClusterIP (kube-proxy's rules, from one Pod to another on the bridge), and its
    // output comes back through `kubectl logs`. First, kube-proxy must have caught up
    // with both Ready Pods.
    let routed = Instant::now();
    while cluster
        .node
        .routed_endpoints("kube-system/sealed-secrets-controller:http")
        .expect("iptables-save")
        < 2
    {
        assert!(
            routed.elapsed() < WAIT,
            "kube-proxy wrote no rules for both Pods\n{}",
            release.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let in_pod = run_to_completion(
        &release,
        &client,
        &ns.name,
        &format!("localhost/sealant:{}", cluster.image_tag),
        &[
            "sealant",
            "--fetch-cert",
            &format!(
                "--cert=http://{}:8080/v1/cert.pem",
                service_ip(&client).await
            ),
        ],
    )
    .await;
    assert_eq!(
        in_pod.as_bytes(),
        cert,
        "the certificate a Pod fetched through the ClusterIP"
    );
    let values = [("password", "through-the-service")];
    kubectl_apply(
        cluster.cp,
        &seal_with(cluster, &sealant, &[], &ns.name, "installed", &values),
    );
    secret_appears(&release, &secrets, "installed", &values).await;

    // Delete the leader Pod: the other replica takes over and unseals what comes.
    let cert_file = ns_file(&cp.dir, "cert.pem", &cert);
    let offline = vec![format!("--cert={}", cert_file.display())];
    let kube_system_pods = Api::<Pod>::namespaced(client.clone(), "kube-system");
    let deleted = Instant::now();
    kube_system_pods
        .delete(&first_leader, &DeleteParams::default())
        .await
        .expect("delete the leader Pod");
    while kube_system_pods
        .get_opt(&first_leader)
        .await
        .expect("get the Pod")
        .is_some()
    {
        assert!(
            deleted.elapsed() < WAIT,
            "the leader Pod was not gone after {WAIT:?}\n{}",
            release.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took_from = Instant::now();
    let values = [("password", "after-takeover")];
    kubectl_apply(
        cluster.cp,
        &seal_with(cluster, &sealant, &offline, &ns.name, "taken-over", &values),
    );
    let took = secret_appears(&release, &secrets, "taken-over", &values).await;
    let second_leader = leader(&release, &leases).await;
    assert_ne!(second_leader, first_leader, "the deleted Pod still leads");
    sealant_e2e::record_timing(&format!(
        "node: leader Pod deleted and gone in {:.1} s, a SealedSecret applied then unsealed \
         by the other replica in {:.1} s",
        (took_from - deleted).as_secs_f64(),
        took.as_secs_f64()
    ));

    // helm upgrade to a new image tag, while a SealedSecret arrives every second: none
    // waits longer than the Lease.
    let next_tag = format!("{}-next", cluster.image_tag);
    cluster
        .node
        .tag_image(
            &format!("localhost/sealant:{}", cluster.image_tag),
            &format!("localhost/sealant:{next_tag}"),
        )
        .expect("tag the image");
    let applied = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let applier = {
        let (applied, stop) = (applied.clone(), stop.clone());
        let (namespace, offline, sealant) = (ns.name.clone(), offline.clone(), sealant.clone());
        std::thread::spawn(move || {
            // Until the rollout is over, and three more after it.
            let mut after = 0;
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    after += 1;
                    if after > 3 {
                        break;
                    }
                }
                let (name, value) = (format!("rolling-{i}"), format!("value-{i}"));
                let yaml = seal_with(
                    cluster,
                    &sealant,
                    &offline,
                    &namespace,
                    &name,
                    &[("value", &value)],
                );
                kubectl_apply(cluster.cp, &yaml);
                applied
                    .lock()
                    .expect("lock")
                    .push((name, value, Instant::now()));
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let upgrade_sets = image(&next_tag);
    let upgrade = tokio::task::spawn_blocking(move || {
        Release {
            cluster,
            name: "sealant",
            namespace: "kube-system",
            skip_crds: false,
        }
        .install(
            "upgrade",
            &root().join("charts/sealant"),
            "{}\n",
            &upgrade_sets,
        )
    });
    let mut seen = std::collections::BTreeMap::new();
    let watching = Instant::now();
    loop {
        if upgrade.is_finished() {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        for secret in secrets
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
        {
            if let Some(name) = secret.metadata.name {
                seen.entry(name).or_insert_with(Instant::now);
            }
        }
        let all_seen = applied
            .lock()
            .expect("lock")
            .iter()
            .all(|(name, _, _)| seen.contains_key(name));
        if applier.is_finished() && all_seen {
            break;
        }
        assert!(
            watching.elapsed() < 2 * WAIT,
            "the rolling upgrade did not finish, or a Secret never came\n{}",
            release.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    upgrade.await.expect("helm upgrade");
    applier.join().expect("the applier thread");
    let applied = applied.lock().expect("lock").clone();
    let mut longest = Duration::ZERO;
    for (name, value, at) in &applied {
        secret_appears(&release, &secrets, name, &[("value", value)]).await;
        longest = longest.max(seen[name].saturating_duration_since(*at));
    }
    sealant_e2e::record_timing(&format!(
        "node: helm upgrade to a new tag: {} SealedSecrets applied during the rollout, the \
         longest wait for its Secret {:.1} s (the Lease: {} s)",
        applied.len(),
        longest.as_secs_f64(),
        LEASE_DURATION.as_secs()
    ));
    assert!(
        longest < LEASE_DURATION,
        "a SealedSecret waited {longest:?} for its Secret during the rollout, longer than the Lease"
    );
    let pods = ready_pods(&client, "kube-system", "sealed-secrets-controller").await;
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert_eq!(
            pod.spec.as_ref().expect("spec").containers[0]
                .image
                .as_deref(),
            Some(format!("localhost/sealant:{next_tag}").as_str()),
            "a Pod still runs the old tag"
        );
    }

    // Both old Pods are gone, so the Lease moved during the rollout.
    let third_leader = leader(&release, &leases).await;
    assert_one_of(&pods, &third_leader, "after the rollout, the Lease holder");

    // helm uninstall leaves the key Secrets (and the Secrets, and the CRD).
    release.uninstall();
    let keys = Api::<Secret>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key"))
        .await
        .expect("list key Secrets");
    assert!(!keys.items.is_empty(), "helm uninstall deleted the keys");
    assert!(secrets.get_opt("installed").await.expect("get").is_some());
}

/// Writes `bytes` to `name` in a fresh directory under `dir`.
fn ns_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let sub = dir.join(format!("files-{}", sealant_e2e::random_hex(3)));
    std::fs::create_dir_all(&sub).expect("mkdir");
    let path = sub.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// The migration drill, in place: Bitnami's chart and image seal and unseal; ours
/// replaces it with the same values file and unseals old and new `kubeseal` objects
/// with Bitnami's key; Bitnami's chart then runs our image (only `image.*` changed),
/// and at last Bitnami's image again, which unseals what `sealant` sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitnami_installs_migrate_to_sealant_pods_in_place_and_back() {
    let cluster = cluster();
    let cp = cluster.cp;
    let client = cp.client().await.expect("client");
    let ns = TestNamespace::new(cp, "migration")
        .await
        .expect("namespace");
    let namespace = ns.name.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let fullname = "migration-controller";
    // A Bitnami user's values file: nothing in it names an image.
    let values =
        format!("fullnameOverride: {fullname}\nrbac:\n  clusterRoleName: {fullname}-unsealer\n");
    let bitnami_chart = peers().expect("peers").bitnami_chart.clone();
    let our_chart = root().join("charts/sealant");
    let kubeseal = peers().expect("peers").kubeseal.clone();
    let sealant = tools::sealant().expect("sealant");
    let flags = controller_flags(namespace, fullname);
    let bitnami_image = [
        "image.registry=localhost".to_owned(),
        "image.repository=sealant-e2e/sealed-secrets-controller".to_owned(),
        "image.tag=v0.36.6".to_owned(),
    ];
    let our_image = [
        "image.registry=localhost".to_owned(),
        "image.repository=sealant".to_owned(),
        format!("image.tag={}", cluster.image_tag),
    ];
    let bitnami = Release {
        cluster,
        name: "sealed-secrets",
        namespace,
        skip_crds: true,
    };
    let ours = Release {
        cluster,
        name: "sealant",
        namespace,
        skip_crds: false,
    };
    let key_secrets = || async {
        secrets
            .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key"))
            .await
            .expect("list key Secrets")
            .items
            .len()
    };

    // Bitnami's chart and image; kubeseal seals through its Service.
    bitnami.install("install", &bitnami_chart, &values, &bitnami_image);
    let cert = fetch_cert(cluster, &kubeseal, &flags, "Bitnami's controller");
    let cert_file = ns_file(&cp.dir, "bitnami-cert.pem", &cert);
    let offline = vec![format!("--cert={}", cert_file.display())];
    let s1 = [("password", "sealed-for-bitnami")];
    kubectl_apply(
        cluster.cp,
        &seal_with(cluster, &kubeseal, &flags, namespace, "s1", &s1),
    );
    secret_appears(&bitnami, &secrets, "s1", &s1).await;
    assert_eq!(key_secrets().await, 1);

    // Uninstalled, and replaced by ours with the same values file.
    bitnami.uninstall();
    ours.install("install", &our_chart, &values, &our_image);
    secret_appears(&ours, &secrets, "s1", &s1).await;
    let served = fetch_cert(cluster, &kubeseal, &flags, "sealant's Pods");
    assert_eq!(
        served, cert,
        "sealant serves another certificate than Bitnami's key"
    );
    let s2 = [("password", "kubeseal-offline-after-migration")];
    kubectl_apply(
        cluster.cp,
        &seal_with(cluster, &kubeseal, &offline, namespace, "s2", &s2),
    );
    secret_appears(&ours, &secrets, "s2", &s2).await;
    assert_eq!(key_secrets().await, 1, "sealant made a key of its own");

    // Bitnami's chart with our image: only image.* changed.
    ours.uninstall();
    bitnami.install("install", &bitnami_chart, &values, &our_image);
    let s3 = [("password", "bitnami-chart-sealant-image")];
    kubectl_apply(
        cluster.cp,
        &seal_with(cluster, &sealant, &flags, namespace, "s3", &s3),
    );
    secret_appears(&bitnami, &secrets, "s3", &s3).await;

    // And back to Bitnami's image: it unseals what sealant sealed, with the same key.
    bitnami.install("upgrade", &bitnami_chart, &values, &bitnami_image);
    let s4 = [("password", "back-to-bitnami")];
    kubectl_apply(
        cluster.cp,
        &seal_with(cluster, &sealant, &offline, namespace, "s4", &s4),
    );
    secret_appears(&bitnami, &secrets, "s4", &s4).await;
    for (name, values) in [("s1", &s1), ("s2", &s2), ("s3", &s3)] {
        secret_appears(&bitnami, &secrets, name, values).await;
    }
    assert_eq!(key_secrets().await, 1);
}
