//! The local control plane itself: it starts, it is a real API server (schema
//! validation, RBAC, garbage collection), and our CRD and SealedSecrets are accepted
//! by it and by `kubectl apply`.

use std::io::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use sealant_crds::SealedSecret;
use sealant_e2e::control_plane::{client_from, get_text};
use sealant_e2e::fixtures::{key_and_cert, kubectl_apply, seal};
use sealant_e2e::{TestNamespace, cluster};
use sealant_keys::OffsetDateTime;

#[tokio::test]
async fn control_plane_starts_and_serves_the_pinned_kubernetes_version() {
    let cp = cluster().expect("control plane");
    let client = cp.client().await.expect("admin client");
    let version = get_text(&client, "/version").await.expect("GET /version");
    let version: serde_json::Value = serde_json::from_str(&version).expect("version JSON");
    assert_eq!(version["gitVersion"], "v1.34.10", "{version}");

    // Measured, never asserted (STYLE: timing belongs to benchmarks). Written straight
    // to stderr, past libtest's capture, and appended to a file under the target dir.
    let t = cp.timings;
    let line = format!(
        "sealant-e2e: control plane ready in {:.1} s (etcd {:.1} s, kube-apiserver {:.1} s, \
         CRD established {:.1} s, controller-manager working {:.1} s)\n",
        t.controller_manager.as_secs_f64(),
        t.etcd.as_secs_f64(),
        t.apiserver.as_secs_f64(),
        t.crd.as_secs_f64(),
        t.controller_manager.as_secs_f64(),
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(file) = sealant_e2e::timings_file() {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

#[tokio::test]
async fn generated_crd_is_established_and_its_schema_is_enforced() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "crd-schema")
        .await
        .expect("namespace");
    let client = cp.client().await.expect("admin client");
    let gvk = GroupVersionKind::gvk("bitnami.com", "v1alpha1", "SealedSecret");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &ns.name, &ApiResource::from_gvk(&gvk));

    let good: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "good"},
        "spec": {"encryptedData": {"a": "AgBy"}, "template": {"type": "Opaque"}}
    }))
    .expect("object");
    api.create(&PostParams::default(), &good)
        .await
        .expect("a well-formed SealedSecret is accepted");

    // encryptedData values must be strings: a real API server rejects a number.
    let bad: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "bad"},
        "spec": {"encryptedData": {"a": 42}}
    }))
    .expect("object");
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("a SealedSecret that violates the schema is rejected");
    assert!(format!("{err}").contains("encryptedData"), "{err}");

    // Template metadata that no reader could decode is refused at the door, so it can
    // never stop a controller's watch (Bitnami's CRD stores it).
    for (field, value) in [
        ("creationTimestamp", serde_json::json!("garbage")),
        ("generation", serde_json::json!("x")),
        (
            "ownerReferences",
            serde_json::json!([{"name": "only-a-name"}]),
        ),
    ] {
        let poisoned: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "poisoned"},
            "spec": {"encryptedData": {}, "template": {"metadata": {field: value}}}
        }))
        .expect("object");
        let err = api
            .create(&PostParams::default(), &poisoned)
            .await
            .expect_err("undecodable template metadata is rejected");
        assert!(format!("{err}").contains(field), "{field}: {err}");
    }
}

#[tokio::test]
async fn sealant_sealed_secret_is_accepted_by_kubectl_apply() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "kubectl-apply")
        .await
        .expect("namespace");
    let (_key, cert) = key_and_cert(OffsetDateTime::now_utc());
    let sealed = seal(&cert.to_pem(), &ns.name, "db", &[("password", "hunter2")]);
    kubectl_apply(cp, &sealed);

    let local: SealedSecret =
        serde_yaml_ng::from_slice(&sealed).expect("sealant printed a SealedSecret");
    let api: Api<SealedSecret> = Api::namespaced(cp.client().await.expect("client"), &ns.name);
    let stored = api.get("db").await.expect("the SealedSecret is stored");
    assert_eq!(stored.spec.encrypted_data, local.spec.encrypted_data);
    assert!(stored.spec.encrypted_data.contains_key("password"));
}

#[tokio::test]
async fn owned_objects_are_garbage_collected_after_their_owner_is_deleted() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "gc").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let owners: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let owner = owners
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("owner");
    let secrets: Api<Secret> = Api::namespaced(client, &ns.name);
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("owned".into()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "ConfigMap".into(),
                        name: "owner".into(),
                        uid: owner.metadata.uid.expect("uid"),
                        controller: Some(true),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("owned secret");
    owners
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    for _ in 0..300 {
        if secrets.get_opt("owned").await.expect("get").is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the controller-manager did not garbage-collect the owned Secret within 30 s");
}

#[tokio::test]
async fn service_account_kubeconfig_has_exactly_the_rights_rbac_grants() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "sa-rbac").await.expect("namespace");
    let admin = cp.client().await.expect("client");
    let kubeconfig = cp
        .new_service_account_kubeconfig(&ns.name, "reader")
        .await
        .expect("kubeconfig");
    let sa = client_from(&kubeconfig).await.expect("sa client");
    let as_sa: Api<Secret> = Api::namespaced(sa, &ns.name);

    let denied = as_sa
        .list(&Default::default())
        .await
        .expect_err("no grant yet");
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "{denied}"
    );

    Api::<Role>::namespaced(admin.clone(), &ns.name)
        .create(
            &PostParams::default(),
            &Role {
                metadata: ObjectMeta {
                    name: Some("read-secrets".into()),
                    ..Default::default()
                },
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["secrets".into()]),
                    verbs: vec!["list".into()],
                    ..Default::default()
                }]),
            },
        )
        .await
        .expect("role");
    Api::<RoleBinding>::namespaced(admin, &ns.name)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: ObjectMeta {
                    name: Some("read-secrets".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "read-secrets".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "reader".into(),
                    namespace: Some(ns.name.clone()),
                    ..Default::default()
                }]),
            },
        )
        .await
        .expect("binding");
    // RBAC decisions follow the binding within moments.
    for _ in 0..100 {
        if as_sa.list(&Default::default()).await.is_ok() {
            let other: Api<Secret> = Api::namespaced(
                client_from(&kubeconfig).await.expect("client"),
                "kube-system",
            );
            let err = other
                .list(&Default::default())
                .await
                .expect_err("the grant is for one namespace only");
            assert!(
                matches!(&err, kube::Error::Api(s) if s.code == 403),
                "{err}"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the ServiceAccount still cannot list Secrets after its RoleBinding");
}
