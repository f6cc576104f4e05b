//! Several `sealant-controller` replicas with `--leader-elect` on the harness's real
//! control plane: one leads and writes, every replica serves the HTTP API, and when the
//! leader dies a standby takes over and finishes the work. The takeover times are
//! measured and recorded (`sealant-e2e-timings.txt`), never asserted.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use sealant_e2e::fixtures::{expected, grant_in_namespace, kubectl_apply, seal, secret_values};
use sealant_e2e::sealant_controller::{SealantController, lease_holder};
use sealant_e2e::{TestNamespace, cluster, record_timing};

/// Short election timings, so the test takes seconds: a dead leader's Lease is free
/// after 4 s.
const ELECTION: [&str; 4] = [
    "--leader-elect",
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
];

/// The Pod-name part of a replica's identity (the harness sets `POD_NAME` from the
/// port; the controller appends a random suffix).
fn pod_name(controller: &SealantController) -> String {
    format!("sealant-controller-{}", controller.addr.port())
}

/// Waits until `name` exists with `values`, for at most `limit`; returns how long.
async fn wait_for_secret(
    api: &Api<Secret>,
    name: &str,
    values: &[(&str, &str)],
    alive: &SealantController,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(Some(secret)) = api.get_opt(name).await
            && secret_values(&secret) == expected(values)
        {
            return start.elapsed();
        }
        alive
            .check_running()
            .expect("the surviving replica is running");
        assert!(
            start.elapsed() < limit,
            "Secret {name} did not appear within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn standby_takes_over_when_the_leader_dies_and_finishes_the_work() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "ha").await.expect("namespace");
    let client = cp.client().await.expect("client");
    grant_in_namespace(cp, "sealant-leader-election", &ns.name)
        .await
        .expect("grant sealant-leader-election");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);

    // The first replica finds no Lease, leads, and makes the first key.
    let first = SealantController::start(cp, &ns.name, &ELECTION)
        .await
        .expect("first replica");
    let leader = lease_holder(&leases).await.expect("a leader");
    assert!(leader.starts_with(&pod_name(&first)), "leader is {leader}");
    // The second one loads that key and serves it, but stands by.
    let second = SealantController::start(cp, &ns.name, &ELECTION)
        .await
        .expect("second replica");
    let cert = first.cert_pem().expect("cert");
    assert_eq!(second.cert_pem().expect("standby serves cert.pem"), cert);
    assert_eq!(first.metric("sealant_controller_leader").unwrap(), 1.0);
    assert_eq!(second.metric("sealant_controller_leader").unwrap(), 0.0);

    let before = [("token", "written-by-the-leader")];
    kubectl_apply(cp, &seal(&cert, &ns.name, "before", &before));
    wait_for_secret(&secrets, "before", &before, &first, Duration::from_secs(30)).await;
    // And its status, with the in-sync proof the standby will use: a leader killed
    // between the Secret and the status leaves "before" for the next one to decrypt
    // again (right, but not what the count below is about).
    first
        .wait_for_metric(
            &format!(
                r#"sealed_secrets_controller_condition_info{{namespace="{}",name="before",condition="Synced"}}"#,
                ns.name
            ),
            1.0,
        )
        .await;
    // Only the leader works: the standby has not even tried to unseal.
    assert_eq!(
        second
            .metric("sealed_secrets_controller_unseal_requests_total")
            .unwrap(),
        0.0
    );

    // The leader dies without a word (SIGKILL, as an OOM kill or a lost node would end
    // it); a SealedSecret arrives while nobody leads.
    first.kill();
    let killed = Instant::now();
    let after = [("token", "written-after-the-takeover")];
    kubectl_apply(cp, &seal(&cert, &ns.name, "after", &after));
    wait_for_secret(&secrets, "after", &after, &second, Duration::from_secs(60)).await;
    let takeover = killed.elapsed();
    let new_leader = lease_holder(&leases).await.expect("a new leader");
    assert!(
        new_leader.starts_with(&pod_name(&second)),
        "leader is {new_leader}"
    );
    assert_eq!(second.metric("sealant_controller_leader").unwrap(), 1.0);
    // The anchor of the standby's zero above: now that it leads it did see "before",
    // proved it in sync, and decrypted "after" only. A standby that had unsealed
    // "before" while the first replica led (even after the early read) would count two
    // decryptions here.
    second.wait_for_in_sync_skips(1).await;
    assert_eq!(
        second
            .metric("sealant_controller_decryptions_total")
            .unwrap(),
        1.0,
        "the standby decrypted only what arrived after the takeover"
    );
    record_timing(&format!(
        "leader killed (SIGKILL) -> standby wrote the pending Secret: {:.2} s (lease duration 4 s, retry 0.5 s)",
        takeover.as_secs_f64()
    ));

    // A leader that is stopped (SIGTERM, as a rolling update does) releases the Lease,
    // so the next standby does not wait for it to expire.
    let third = SealantController::start(cp, &ns.name, &ELECTION)
        .await
        .expect("third replica");
    assert_eq!(third.metric("sealant_controller_leader").unwrap(), 0.0);
    second.terminate().expect("SIGTERM");
    let stopped = Instant::now();
    let handed = [("token", "written-after-the-hand-over")];
    kubectl_apply(cp, &seal(&cert, &ns.name, "handed-over", &handed));
    wait_for_secret(
        &secrets,
        "handed-over",
        &handed,
        &third,
        Duration::from_secs(60),
    )
    .await;
    let handover = stopped.elapsed();
    let last_leader = lease_holder(&leases).await.expect("a leader");
    assert!(
        last_leader.starts_with(&pod_name(&third)),
        "leader is {last_leader}"
    );
    // The same anchor for the third replica's standby: both earlier objects proven in
    // sync once it led, the one that arrived during the hand-over alone decrypted.
    third.wait_for_in_sync_skips(2).await;
    assert_eq!(
        third
            .metric("sealant_controller_decryptions_total")
            .unwrap(),
        1.0,
        "the third replica decrypted only what arrived after the hand-over"
    );
    third.check_running().expect("the leader is running");
    assert!(
        second
            .log()
            .expect("log")
            .contains("released the leader Lease"),
        "the stopped leader did not release its Lease"
    );
    record_timing(&format!(
        "leader stopped (SIGTERM, Lease released) -> standby wrote the pending Secret: {:.2} s",
        handover.as_secs_f64()
    ));
}
