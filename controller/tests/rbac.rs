//! `deploy/rbac.yaml` grants exactly what the controller's code calls (issue 11,
//! finding 8).
//!
//! [`NEEDED`] is the table: each verb the controller's ServiceAccount is granted, next
//! to the call in `controller/src/` that needs it. The tests fail when
//!
//! - a verb is granted that the table does not list (no code path uses it);
//! - the table lists a verb that is not granted (the code would be refused);
//! - a listed call no longer appears in its file (the code path is gone, so the
//!   grant may be too);
//! - a role is bound to anyone but the controller without a reason in [`NOT_THE_CONTROLLERS`].
//!
//! The end-to-end suite runs the controller with only these rights, which catches the
//! opposite mistake: a call the table forgot.

use std::collections::BTreeSet;

use serde::Deserialize as _;
use serde_json::Value;

/// The controller's ServiceAccount, as `deploy/` names it.
const SERVICE_ACCOUNT: (&str, &str) = ("kube-system", "sealed-secrets-controller");

/// One granted verb and why.
struct Need {
    /// `ClusterRole/name` or `Role/namespace/name`.
    role: &'static str,
    group: &'static str,
    resource: &'static str,
    /// Limited to this object, when the rule names one.
    name: Option<&'static str>,
    verb: &'static str,
    /// The file under `controller/src/` that makes the call...
    file: &'static str,
    /// ...and text of the call that must appear in it.
    call: &'static str,
}

const CLUSTER: &str = "ClusterRole/secrets-unsealer";
const LEADER: &str = "Role/kube-system/sealant-leader-election";
const ESCROW: &str = "Role/kube-system/sealant-escrow";

/// Every verb the controller needs, and the call that needs it.
#[rustfmt::skip]
const NEEDED: &[Need] = &[
    // The SealedSecret watch behind the reconcile queue (a list, then a watch);
    // reconcile reads objects from its cache, never with a GET.
    need(CLUSTER, "bitnami.com", "sealedsecrets", "list", "run.rs", "watcher(sealed, config)"),
    need(CLUSTER, "bitnami.com", "sealedsecrets", "watch", "run.rs", "watcher(sealed, config)"),
    // The Synced condition and observedGeneration, as a merge patch.
    need(CLUSTER, "bitnami.com", "sealedsecrets/status", "patch", "pass/mod.rs", ".patch_status("),
    // Reconcile reads the Secret it produces when it cannot assume there is none, and
    // the key manager reads the legacy key Secret by name.
    need(CLUSTER, "", "secrets", "get", "pass/mod.rs", ".get_opt("),
    // The key manager lists key Secrets by label; the owned-Secret metadata watch and
    // the key watches list before they watch.
    need(CLUSTER, "", "secrets", "list", "key_manager.rs", ".list(&ListParams::default().labels(KEY_SELECTOR))"),
    need(CLUSTER, "", "secrets", "watch", "run.rs", "watcher(secrets, watcher::Config::default())"),
    // Produced Secrets are created, and new key Secrets on renewal.
    need(CLUSTER, "", "secrets", "create", "pass/mod.rs", "secrets.create(&params,"),
    // A produced Secret that differs from the SealedSecret is replaced.
    need(CLUSTER, "", "secrets", "update", "pass/mod.rs", "secrets.replace(name,"),
    // Normal events are created directly; kube's Recorder creates a Warning event and
    // patches it when the same event repeats.
    need(CLUSTER, "events.k8s.io", "events", "create", "pass/mod.rs", "recorder.publish("),
    need(CLUSTER, "events.k8s.io", "events", "create", "pass/mod.rs", ".create(&PostParams::default(), &event)"),
    need(CLUSTER, "events.k8s.io", "events", "patch", "pass/mod.rs", "recorder.publish("),
    // The leader Lease: created when missing (create cannot be limited to a name),
    // read, and replaced to acquire, renew or release it.
    need(LEADER, "coordination.k8s.io", "leases", "create", "leader.rs", ".create(&post_params(), &lease)"),
    named(LEADER, "coordination.k8s.io", "leases", "sealant-controller", "get", "leader.rs", ".get_opt(LEASE_NAME)"),
    named(LEADER, "coordination.k8s.io", "leases", "sealant-controller", "update", "leader.rs", ".replace(LEASE_NAME,"),
    // The escrow ConfigMap of --escrow-recipient: created when missing, read, replaced.
    need(ESCROW, "", "configmaps", "create", "escrow.rs", "api.create(&params, &want)"),
    named(ESCROW, "", "configmaps", "sealant-escrow-bundle", "get", "escrow.rs", ".get_opt(CONFIG_MAP)"),
    named(ESCROW, "", "configmaps", "sealant-escrow-bundle", "update", "escrow.rs", "api.replace(CONFIG_MAP,"),
];

/// Roles in `deploy/rbac.yaml` that are bound to others than the controller, and why.
const NOT_THE_CONTROLLERS: &[(&str, &str)] = &[(
    "Role/kube-system/sealed-secrets-controller-service-proxier",
    "bound to system:authenticated so that `sealant`/`kubeseal` reach the controller's \
     HTTP API through the API server's service proxy; the controller never uses it",
)];

const fn need(
    role: &'static str,
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    file: &'static str,
    call: &'static str,
) -> Need {
    Need {
        role,
        group,
        resource,
        name: None,
        verb,
        file,
        call,
    }
}

const fn named(
    role: &'static str,
    group: &'static str,
    resource: &'static str,
    name: &'static str,
    verb: &'static str,
    file: &'static str,
    call: &'static str,
) -> Need {
    Need {
        role,
        group,
        resource,
        name: Some(name),
        verb,
        file,
        call,
    }
}

/// One granted (role, group, resource, object name, verb), as text for set compares.
type Grant = (String, String, String, String, String);

fn key(role: &str, group: &str, resource: &str, name: Option<&str>, verb: &str) -> Grant {
    (
        role.to_owned(),
        group.to_owned(),
        resource.to_owned(),
        name.unwrap_or("*").to_owned(),
        verb.to_owned(),
    )
}

fn documents() -> Vec<Value> {
    let text = include_str!("../../deploy/rbac.yaml");
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("deploy/rbac.yaml parses"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn role_id(kind: &str, meta: &Value) -> String {
    match meta["namespace"].as_str() {
        Some(ns) => format!("{kind}/{ns}/{}", meta["name"].as_str().unwrap_or_default()),
        None => format!("{kind}/{}", meta["name"].as_str().unwrap_or_default()),
    }
}

/// The roles bound to the controller's ServiceAccount, and the roles bound to anyone.
fn bound_roles(docs: &[Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut controller, mut all) = (BTreeSet::new(), BTreeSet::new());
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if kind != "RoleBinding" && kind != "ClusterRoleBinding" {
            continue;
        }
        let role_kind = doc["roleRef"]["kind"].as_str().unwrap_or_default();
        let mut role_meta = serde_json::json!({ "name": doc["roleRef"]["name"] });
        if role_kind == "Role" {
            role_meta["namespace"] = doc["metadata"]["namespace"].clone();
        }
        let role = role_id(role_kind, &role_meta);
        let subjects = doc["subjects"].as_array().cloned().unwrap_or_default();
        let is_controller = subjects.iter().any(|s| {
            s["kind"] == "ServiceAccount"
                && s["namespace"] == SERVICE_ACCOUNT.0
                && s["name"] == SERVICE_ACCOUNT.1
        });
        if is_controller {
            controller.insert(role.clone());
        }
        all.insert(role);
    }
    (controller, all)
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    value[field]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every verb the controller's roles grant, one entry per group, resource, object name
/// and verb.
fn granted(docs: &[Value], roles: &BTreeSet<String>) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if kind != "Role" && kind != "ClusterRole" {
            continue;
        }
        let role = role_id(kind, &doc["metadata"]);
        if !roles.contains(&role) {
            continue;
        }
        for rule in doc["rules"].as_array().expect("rules") {
            let names = strings(rule, "resourceNames");
            let names: Vec<Option<&str>> = if names.is_empty() {
                vec![None]
            } else {
                names.iter().map(|n| Some(n.as_str())).collect()
            };
            for group in strings(rule, "apiGroups") {
                for resource in strings(rule, "resources") {
                    for verb in strings(rule, "verbs") {
                        for name in &names {
                            out.insert(key(&role, &group, &resource, *name, &verb));
                        }
                    }
                }
            }
        }
    }
    out
}

fn needed() -> BTreeSet<Grant> {
    NEEDED
        .iter()
        .map(|n| key(n.role, n.group, n.resource, n.name, n.verb))
        .collect()
}

#[test]
fn every_verb_granted_to_the_controller_is_used_by_a_code_path() {
    let docs = documents();
    let (roles, _) = bound_roles(&docs);
    let unused: Vec<_> = granted(&docs, &roles)
        .difference(&needed())
        .cloned()
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/rbac.yaml grants verbs that no code path in controller/src uses (remove \
         them, or add the call to NEEDED in controller/tests/rbac.rs): {unused:#?}"
    );
}

#[test]
fn every_verb_the_code_needs_is_granted() {
    let docs = documents();
    let (roles, _) = bound_roles(&docs);
    let missing: Vec<_> = needed()
        .difference(&granted(&docs, &roles))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/rbac.yaml does not grant what controller/src calls: {missing:#?}"
    );
}

#[test]
fn every_call_in_the_table_is_still_in_the_controller_code() {
    for need in NEEDED {
        let path = format!("{}/src/{}", env!("CARGO_MANIFEST_DIR"), need.file);
        let code = std::fs::read_to_string(&path).expect("controller source");
        assert!(
            code.contains(need.call),
            "controller/src/{} no longer calls {:?}, which is why {} grants {} on {}; \
             drop the grant or point the table at the new call",
            need.file,
            need.call,
            need.role,
            need.verb,
            need.resource
        );
    }
}

#[test]
fn no_rule_uses_wildcards_and_object_names_match_the_code() {
    let docs = documents();
    for doc in &docs {
        for rule in doc["rules"].as_array().into_iter().flatten() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !strings(rule, field).iter().any(|v| v.contains('*')),
                    "a wildcard in {field} of {}",
                    doc["metadata"]["name"]
                );
            }
        }
    }
    let names: BTreeSet<&str> = NEEDED.iter().filter_map(|n| n.name).collect();
    let expected: BTreeSet<&str> = [
        sealant_controller::leader::LEASE_NAME,
        sealant_crds::key_secret::ESCROW_CONFIG_MAP,
    ]
    .into();
    assert_eq!(names, expected);
}

#[test]
fn roles_bound_to_others_than_the_controller_are_explained() {
    let docs = documents();
    let (controller, all) = bound_roles(&docs);
    let others: BTreeSet<&str> = all
        .iter()
        .filter(|r| !controller.contains(*r))
        .map(String::as_str)
        .collect();
    let explained: BTreeSet<&str> = NOT_THE_CONTROLLERS.iter().map(|(r, _)| *r).collect();
    assert_eq!(others, explained);
    // And every role in the file is bound to someone.
    let defined: BTreeSet<String> = docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        .map(|d| role_id(d["kind"].as_str().unwrap_or_default(), &d["metadata"]))
        .collect();
    assert_eq!(
        defined, all,
        "a role in deploy/rbac.yaml is bound to no one"
    );
}
