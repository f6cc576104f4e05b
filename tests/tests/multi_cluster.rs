//! Two clusters at once (issue #5, "age recipients and multi-cluster sealing"): one
//! SealedSecret file, sealed by the `sealant` CLI to the age recipients of two
//! clusters' controllers, applied unchanged to both, becomes the same Secret in each;
//! a value sealed to one cluster only is refused by the other.
//!
//! Cluster A is the binary's shared control plane; cluster B is a second, independent
//! one ([`ControlPlane::start_another`]), with its own API server, etcd and test host.
//! Each runs its own `sealant-controller`, so each has its own keys. Strict scope seals
//! to `namespace/name`, so B gets a namespace of the same name as A's.
//!
//! The harness's own guarantee for a control plane a test destroys (the disaster drill
//! in `disaster_drill.rs` relies on it) is proven here too.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams};
use sealant_e2e::control_plane::http_get;
use sealant_e2e::fixtures::{expected, kubectl_apply, seal_to_recipients, secret_values};
use sealant_e2e::netns::ip_binary;
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{ControlPlane, TestNamespace, cluster, random_hex, record_timing};

/// Cluster B: started once for the binary, beside the shared cluster A.
fn cluster_b() -> &'static ControlPlane {
    static B: OnceLock<Result<&'static ControlPlane, String>> = OnceLock::new();
    let started = Instant::now();
    B.get_or_init(|| {
        let cp = ControlPlane::start_another().map_err(|e| format!("{e:#}"))?;
        record_timing(&format!(
            "multi_cluster: second control plane ready in {:.1} s (beside the shared one)",
            started.elapsed().as_secs_f64()
        ));
        Ok(cp)
    })
    .as_ref()
    .expect("cluster B")
}

/// `GET /v1/age-recipient` of `controller`: one `age1...` line.
fn age_recipient(controller: &SealantController) -> String {
    let (code, body) = http_get(controller.addr, "/v1/age-recipient").expect("GET");
    assert_eq!(code, 200, "{body}");
    let recipient = body.trim().to_owned();
    assert!(recipient.starts_with("age1"), "{body:?}");
    recipient
}

/// One namespace of the same name in each cluster, each watched by its own controller.
struct Pair {
    a: &'static ControlPlane,
    b: &'static ControlPlane,
    ns_a: TestNamespace,
    ns_b: TestNamespace,
    controller_a: SealantController,
    controller_b: SealantController,
}

impl Pair {
    async fn start(prefix: &str) -> Self {
        let a = cluster().expect("cluster A");
        let b = cluster_b();
        assert_ne!(a.server, b.server, "two API servers");
        let ns_a = TestNamespace::new(a, prefix).await.expect("namespace on A");
        let ns_b = TestNamespace::named(b, &ns_a.name)
            .await
            .expect("the same namespace on B");
        let controller_a = SealantController::start(a, &ns_a.name, &[])
            .await
            .expect("sealant-controller on A");
        let controller_b = SealantController::start(b, &ns_b.name, &[])
            .await
            .expect("sealant-controller on B");
        Self {
            a,
            b,
            ns_a,
            ns_b,
            controller_a,
            controller_b,
        }
    }
}

/// Waits until `name` in `namespace` exists on `cp`, and returns its values.
async fn secret_values_on(
    cp: &ControlPlane,
    controller: &SealantController,
    namespace: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let secrets: Api<Secret> = Api::namespaced(cp.client().await.expect("client"), namespace);
    let secret = eventually(
        &format!("Secret {namespace}/{name}"),
        controller,
        || async { secrets.get_opt(name).await.ok().flatten() },
    )
    .await;
    secret_values(&secret)
}

#[tokio::test]
async fn one_file_sealed_to_both_clusters_recipients_becomes_the_same_secret_in_each() {
    let pair = Pair::start("multi").await;
    let recipient_a = age_recipient(&pair.controller_a);
    let recipient_b = age_recipient(&pair.controller_b);
    assert_ne!(recipient_a, recipient_b, "each cluster has its own keys");

    let password = format!("both-{}", random_hex(8));
    let values = [("password", password.as_str()), ("user", "admin")];
    let file = seal_to_recipients(
        &[&recipient_a, &recipient_b],
        &pair.ns_a.name,
        "db",
        &values,
    );
    let started = Instant::now();
    kubectl_apply(pair.a, &file);
    kubectl_apply(pair.b, &file);
    let on_a = secret_values_on(pair.a, &pair.controller_a, &pair.ns_a.name, "db").await;
    let on_b = secret_values_on(pair.b, &pair.controller_b, &pair.ns_b.name, "db").await;
    record_timing(&format!(
        "multi_cluster: one file applied to two clusters, both Secrets in {} ms",
        started.elapsed().as_millis()
    ));
    assert_eq!(on_a, expected(&values));
    assert_eq!(on_a, on_b, "the same Secret data in both clusters");
    for controller in [&pair.controller_a, &pair.controller_b] {
        assert!(!controller.log().expect("log").contains(&password));
    }
}

#[tokio::test]
async fn value_sealed_to_one_clusters_recipient_is_refused_by_the_other() {
    let pair = Pair::start("multi-only-a").await;
    let recipient_a = age_recipient(&pair.controller_a);
    let values = [("token", "for-a-only")];
    let file = seal_to_recipients(&[&recipient_a], &pair.ns_a.name, "only-a", &values);
    kubectl_apply(pair.b, &file);
    kubectl_apply(pair.a, &file);

    assert_eq!(
        secret_values_on(pair.a, &pair.controller_a, &pair.ns_a.name, "only-a").await,
        expected(&values),
        "A unseals what was sealed to it"
    );
    let client_b = pair.b.client().await.expect("client on B");
    let events: Api<Event> = Api::namespaced(client_b.clone(), &pair.ns_b.name);
    eventually(
        "an ErrUnsealFailed event on B",
        &pair.controller_b,
        || async {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .into_iter()
                .any(|e| {
                    e.reason.as_deref() == Some("ErrUnsealFailed")
                        && e.involved_object.name.as_deref() == Some("only-a")
                })
                .then_some(())
        },
    )
    .await;
    let secrets_b: Api<Secret> = Api::namespaced(client_b, &pair.ns_b.name);
    assert!(
        secrets_b.get_opt("only-a").await.expect("get").is_none(),
        "B made no Secret"
    );
    pair.controller_b
        .check_running()
        .expect("B's controller is still running");
}

/// Whether `pid` is gone or a zombie (killed, not yet reaped by its parent).
fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn ip_lists(args: &[&str], name: &str) -> bool {
    let out = std::process::Command::new(ip_binary())
        .args(args)
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).contains(name)
}

#[tokio::test]
async fn destroyed_control_plane_leaves_no_process_network_namespace_or_directory() {
    let cp = ControlPlane::start_another().expect("a control plane to destroy");
    let ns = TestNamespace::new(cp, "doomed").await.expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("sealant-controller");
    let pids: Vec<String> = std::fs::read_to_string(cp.dir.join("pids"))
        .expect("the reaper's pid list")
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(
        pids.len() >= 4,
        "etcd, apiserver, kcm, controller: {pids:?}"
    );
    assert!(pids.contains(&controller.pid().to_string()));
    assert!(ip_lists(&["netns", "list"], &cp.host.netns));
    let apiserver = std::net::SocketAddr::from((cp.host.host_ip, cp.apiserver_port));

    let started = Instant::now();
    cp.destroy().expect("destroy");
    record_timing(&format!(
        "multi_cluster: control plane destroyed in {} ms",
        started.elapsed().as_millis()
    ));
    assert!(cp.is_destroyed());
    for pid in &pids {
        assert!(is_dead(pid), "process {pid} outlived its control plane");
    }
    assert!(!ip_lists(&["netns", "list"], &cp.host.netns));
    assert!(!ip_lists(&["-o", "link", "show"], &cp.host.veth_host));
    if !cp.keep {
        assert!(!cp.dir.exists(), "{} was not removed", cp.dir.display());
    }
    assert!(
        std::net::TcpStream::connect_timeout(&apiserver, Duration::from_secs(2)).is_err(),
        "the API server still answers"
    );
    cp.destroy().expect("destroying twice does nothing");
    assert!(
        cluster().expect("shared").destroy().is_err(),
        "the shared control plane cannot be destroyed"
    );
}
