//! The Helm chart (`charts/sealant`, issue 13): it takes a Bitnami user's values, turns
//! each into what the controller needs, refuses what it cannot honour, renders the
//! committed `deploy/` manifests exactly, and its alerts and dashboard use only metrics
//! the controller exports.
//!
//! Rendering runs the pinned `helm` peer (`helm template`), offline. The alert rules
//! are checked with `promtool` (Debian's `prometheus` package, installed by
//! `scripts/system-deps.sh`). The metric names are checked against the `/metrics` of
//! a controller running on the harness's control plane.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use sealant_crds::SealedSecret;
use sealant_e2e::fixtures::{expected, kubectl, kubectl_apply, seal, secret_values};
use sealant_e2e::peers::peers;
use sealant_e2e::sealant_controller::{SealantController, eventually};
use sealant_e2e::{TestNamespace, cluster, tools};
use serde::Deserialize as _;
use serde_json::{Value, json};

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn chart() -> PathBuf {
    repo_path("charts/sealant")
}

/// `helm template` of the chart with `values` (YAML) in `namespace`, whatever its
/// exit status.
fn helm_template(values: &str, namespace: &str) -> Output {
    let helm = &peers().expect("peers").helm;
    tools::run_unchecked(
        Command::new(helm)
            .args(["template", "sealant"])
            .arg(chart())
            .args([
                "--namespace",
                namespace,
                "--kube-version",
                "v1.34.10",
                "-f",
                "-",
            ]),
        values.as_bytes(),
    )
    .expect("run helm")
}

/// The objects the chart renders with `values` in kube-system.
fn render(values: &str) -> Vec<Value> {
    render_in(values, "kube-system")
}

fn render_in(values: &str, namespace: &str) -> Vec<Value> {
    let out = helm_template(values, namespace);
    assert!(
        out.status.success(),
        "helm template failed with values\n{values}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML parses"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The error `helm template` gives for `values`, which must fail.
fn refusal(values: &str) -> String {
    let out = helm_template(values, "kube-system");
    assert!(
        !out.status.success(),
        "helm template accepted values it must refuse:\n{values}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn get<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(objects, kind, name).unwrap_or_else(|| {
        let names: Vec<String> = objects
            .iter()
            .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
            .collect();
        panic!("no {kind}/{name} among {names:?}")
    })
}

fn kinds(objects: &[Value], kind: &str) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .cloned()
        .collect()
}

/// The controller container of the Deployment.
fn container(objects: &[Value]) -> &Value {
    &get(objects, "Deployment", "sealed-secrets-controller")["spec"]["template"]["spec"]["containers"]
        [0]
}

fn args(objects: &[Value]) -> Vec<String> {
    args_of(container(objects))
}

/// A container's arguments.
fn args_of(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}

#[test]
fn deploy_manifests_are_the_chart_rendered_with_default_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    tools::run(
        Command::new("bash")
            .arg(repo_path("scripts/render-deploy.sh"))
            .arg(dir.path())
            .env("TEST_ASSET_HELM", &peers().expect("peers").helm),
        b"",
    )
    .expect("scripts/render-deploy.sh");
    for file in ["rbac.yaml", "controller.yaml"] {
        let rendered = std::fs::read_to_string(dir.path().join(file)).expect("rendered");
        let committed = std::fs::read_to_string(repo_path("deploy").join(file)).expect("deploy/");
        assert!(
            rendered == committed,
            "deploy/{file} differs from the chart; run scripts/render-deploy.sh"
        );
    }
}

#[test]
fn chart_crd_is_the_generated_crd() {
    let generated = std::fs::read_to_string(repo_path("crds/sealedsecret.yaml")).expect("crd");
    let charted =
        std::fs::read_to_string(repo_path("charts/sealant/crds/sealedsecret.yaml")).expect("crd");
    assert!(
        generated == charted,
        "charts/sealant/crds/sealedsecret.yaml differs from crds/sealedsecret.yaml; run \
         `cp crds/sealedsecret.yaml charts/sealant/crds/`"
    );
}

#[test]
fn default_install_is_two_leader_elected_replicas_found_by_the_cli_defaults() {
    let objects = render("");
    let deployment = get(&objects, "Deployment", "sealed-secrets-controller");
    assert_eq!(deployment["metadata"]["namespace"], "kube-system");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let args = args(&objects);
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");
    assert!(args.contains(&"--key-prefix=sealed-secrets-key".to_owned()));
    assert_eq!(
        container(&objects)["command"],
        json!(["sealant-controller"])
    );
    assert_eq!(container(&objects)["image"], "localhost/sealant:0.1.0");
    // `sealant` and `kubeseal` default to kube-system/sealed-secrets-controller, port
    // "http" through the service proxy.
    let service = get(&objects, "Service", "sealed-secrets-controller");
    assert_eq!(service["spec"]["ports"][0]["name"], "http");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    get(&objects, "Service", "sealed-secrets-controller-metrics");
    get(&objects, "Role", "sealant-leader-election");
    get(
        &objects,
        "Role",
        "sealed-secrets-controller-service-proxier",
    );
    let pdb = get(&objects, "PodDisruptionBudget", "sealed-secrets-controller");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let policy = get(&objects, "NetworkPolicy", "sealed-secrets-controller");
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{"ports": [{"port": "http", "protocol": "TCP"}, {"port": "metrics", "protocol": "TCP"}]}])
    );
    // Hardened by default: non-root, read-only root, no privilege escalation.
    let security = &container(&objects)["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
}

/// Bitnami's own chart values file, unchanged, installs a working controller.
#[test]
fn bitnami_charts_default_values_file_works_unchanged() {
    let values = std::fs::read_to_string(peers().expect("peers").bitnami_chart.join("values.yaml"))
        .expect("Bitnami's values.yaml");
    let objects = render(&values);
    let args = args(&objects);
    for flag in [
        "--update-status=true",
        "--key-prefix=sealed-secrets-key",
        "--listen-addr=:8080",
    ] {
        assert!(args.contains(&flag.to_owned()), "{flag} not in {args:?}");
    }
    assert_eq!(
        container(&objects)["image"],
        "docker.io/bitnami/sealed-secrets-controller:0.36.1",
        "image.* is the user's to set"
    );
    assert_eq!(
        container(&objects)["securityContext"]["runAsUser"],
        1001,
        "the user's security context is kept"
    );
    get(&objects, "ClusterRole", "secrets-unsealer");
    get(&objects, "Service", "sealed-secrets-controller");
    assert!(find(&objects, "PodDisruptionBudget", "sealed-secrets-controller").is_none());
    assert_controller_accepts(&args);
}

/// A Bitnami user's values file that sets most keys of Bitnami's chart v2.18.
const BITNAMI_VALUES: &str = r#"
fullnameOverride: sealed-secrets
namespace: security
image: {registry: registry.example, repository: platform/sealant, tag: "1.2.3", pullPolicy: Always, pullSecrets: [regcred]}
secretName: my-keys
keyrenewperiod: "24h"
keyttl: "8760h"
keycutofftime: "Mon, 02 Jan 2006 15:04:05 -0700"
rateLimit: 5
rateLimitBurst: 10
additionalNamespaces: [team-a, team-b]
privateKeyAnnotations: {owner: platform}
privateKeyLabels: {tier: keys}
updateStatus: false
skipRecreate: true
logLevel: DEBUG
logFormat: json
maxRetries: 3
watchForSecrets: true
kubeClientQPS: 20
kubeClientBurst: 40
revisionHistoryLimit: 3
resources: {limits: {memory: 128Mi}, requests: {cpu: 10m, memory: 32Mi}}
podSecurityContext: {enabled: true, fsGroup: 2000}
containerSecurityContext: {enabled: true, runAsUser: 4242, readOnlyRootFilesystem: true}
affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a]}]}]}}}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: security, effect: NoSchedule}]
priorityClassName: system-cluster-critical
podLabels: {team: platform}
podAnnotations: {note: hello}
commonLabels: {cost-center: "42"}
service: {type: NodePort, port: 9090, nodePort: 30090, annotations: {a: b}}
ingress: {enabled: true, hostname: seal.example, ingressClassName: nginx, tls: true, selfSigned: true}
networkPolicy: {enabled: true, egress: {enabled: true, kubeapiCidr: 10.0.0.1/32, kubeapiPort: 6443}}
serviceAccount: {create: true, name: unsealer, annotations: {iam: role}}
rbac:
  clusterRoleName: my-unsealer
  labels: {rbac: "yes"}
  serviceProxier:
    subjects: |
      - kind: Group
        apiGroup: rbac.authorization.k8s.io
        name: developers
metrics:
  serviceMonitor: {enabled: true, namespace: monitoring, interval: 30s, labels: {release: prom}}
  dashboards: {create: true, namespace: grafana, labels: {grafana_dashboard: "1"}}
pdb: {create: true, maxUnavailable: 1}
"#;

/// A Bitnami user's values, one key or group at a time, and what each must do.
#[test]
fn bitnami_values_reach_the_objects_and_flags_they_name() {
    let values = BITNAMI_VALUES;
    let objects = render(values);
    let deployment = get(&objects, "Deployment", "sealed-secrets");
    assert_eq!(deployment["metadata"]["namespace"], "security");
    assert_eq!(deployment["metadata"]["labels"]["cost-center"], "42");
    assert_eq!(deployment["spec"]["revisionHistoryLimit"], 3);
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["team"], "platform");
    assert_eq!(pod["metadata"]["annotations"]["note"], "hello");
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], "unsealer");
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(spec["tolerations"][0]["key"], "dedicated");
    assert_eq!(spec["priorityClassName"], "system-cluster-critical");
    assert!(spec["affinity"]["nodeAffinity"].is_object());
    assert_eq!(spec["securityContext"]["fsGroup"], 2000);
    let c = &spec["containers"][0];
    assert_eq!(c["image"], "registry.example/platform/sealant:1.2.3");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["securityContext"]["runAsUser"], 4242);
    assert_eq!(c["resources"]["limits"]["memory"], "128Mi");
    let args = args_of(c);
    for flag in [
        "--update-status=false",
        "--skip-recreate",
        "--key-renew-period=24h",
        "--key-ttl=8760h",
        "--key-cutoff-time=Mon, 02 Jan 2006 15:04:05 -0700",
        "--rate-limit=5",
        "--rate-limit-burst=10",
        "--key-prefix=my-keys",
        "--additional-namespaces=team-a,team-b",
        "--privatekey-annotations=owner=platform",
        "--privatekey-labels=tier=keys",
        "--log-level=DEBUG",
        "--log-format=json",
        "--max-unseal-retries=3",
        "--watch-for-secrets",
        "--kubeclient-qps=20",
        "--kubeclient-burst=40",
    ] {
        assert!(args.contains(&flag.to_owned()), "{flag} not in {args:?}");
    }
    assert_controller_accepts(&args);

    let service = get(&objects, "Service", "sealed-secrets");
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["port"], 9090);
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30090);
    assert_eq!(service["metadata"]["annotations"]["a"], "b");
    let ingress = get(&objects, "Ingress", "sealed-secrets");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "seal.example");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
        json!({"name": "sealed-secrets", "port": {"name": "http"}})
    );
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "seal.example-tls");
    let tls = get(&objects, "Secret", "seal.example-tls");
    assert_eq!(tls["type"], "kubernetes.io/tls");
    let policy = get(&objects, "NetworkPolicy", "sealed-secrets");
    assert_eq!(
        policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"],
        "10.0.0.1/32"
    );
    assert_eq!(policy["spec"]["egress"][0]["ports"][0]["port"], 6443);
    let account = get(&objects, "ServiceAccount", "unsealer");
    assert_eq!(account["metadata"]["annotations"]["iam"], "role");
    let role = get(&objects, "ClusterRole", "my-unsealer");
    assert_eq!(role["metadata"]["labels"]["rbac"], "yes");
    let binding = get(&objects, "ClusterRoleBinding", "sealed-secrets");
    assert_eq!(binding["roleRef"]["name"], "my-unsealer");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "unsealer", "namespace": "security"}])
    );
    let proxier = get(&objects, "RoleBinding", "sealed-secrets-service-proxier");
    assert_eq!(proxier["subjects"][0]["name"], "developers");
    let proxier_role = get(&objects, "Role", "sealed-secrets-service-proxier");
    assert_eq!(
        proxier_role["rules"][1]["resourceNames"],
        json!([
            "http:sealed-secrets:",
            "http:sealed-secrets:http",
            "sealed-secrets"
        ])
    );
    let monitor = get(&objects, "ServiceMonitor", "sealed-secrets");
    assert_eq!(monitor["metadata"]["namespace"], "monitoring");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "30s");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!(["security"])
    );
    let dashboard = get(&objects, "ConfigMap", "sealed-secrets-sealant-controller");
    assert_eq!(dashboard["metadata"]["namespace"], "grafana");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json_text = dashboard["data"]["sealant-controller.json"]
        .as_str()
        .expect("JSON");
    serde_json::from_str::<Value>(json_text).expect("the dashboard is valid JSON");
    let pdb = get(&objects, "PodDisruptionBudget", "sealed-secrets");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(pdb["spec"].get("minAvailable").is_none());
}

/// Bitnami's own chart, with only `image.*` changed to ours, runs `controller` with
/// arguments our parser accepts (the image has a `controller` entry: image.rs).
#[test]
fn bitnamis_own_chart_passes_only_arguments_our_controller_accepts() {
    let helm = &peers().expect("peers").helm;
    let bitnami_chart = &peers().expect("peers").bitnami_chart;
    for values in [
        "image: {registry: localhost, repository: sealant, tag: 0.1.0}",
        BITNAMI_VALUES,
    ] {
        let out = tools::run(
            Command::new(helm)
                .args(["template", "sealed-secrets"])
                .arg(bitnami_chart)
                .args([
                    "--namespace",
                    "kube-system",
                    "--kube-version",
                    "v1.34.10",
                    "-f",
                    "-",
                ]),
            values.as_bytes(),
        )
        .expect("helm template of Bitnami's chart");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        let objects: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
            .map(|doc| Value::deserialize(doc).expect("YAML"))
            .filter(|doc| !doc.is_null())
            .collect();
        let deployment = kinds(&objects, "Deployment").pop().expect("a Deployment");
        let c = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["controller"]));
        let args = args_of(c);
        assert!(args.len() > 3, "{args:?}");
        assert_controller_accepts(&args);
    }
}

#[test]
fn create_controller_false_renders_rbac_without_a_controller() {
    let objects = render("createController: false");
    assert!(kinds(&objects, "Deployment").is_empty());
    assert!(kinds(&objects, "Service").is_empty());
    get(&objects, "ClusterRole", "secrets-unsealer");
}

#[test]
fn sealant_values_set_escrow_templates_and_a_single_replica() {
    let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let objects = render(&format!(
        "escrowRecipients: [{recipient}]\ntemplateData: false\nreplicaCount: 1\n\
         leaderElection: {{enabled: false}}\npdb: {{create: false}}"
    ));
    let args = args(&objects);
    assert!(
        args.contains(&format!("--escrow-recipient={recipient}")),
        "{args:?}"
    );
    assert!(args.contains(&"--accept-template-data=false".to_owned()));
    assert!(!args.iter().any(|a| a.starts_with("--leader-elect")));
    assert!(find(&objects, "Role", "sealant-leader-election").is_none());
    assert_controller_accepts(&args);
}

#[test]
fn values_the_chart_cannot_honour_fail_the_install_with_the_reason() {
    for (values, expected) in [
        ("rbac: {pspEnabled: true}", "PodSecurityPolicy was removed"),
        (
            "replicaCount: 3\nleaderElection: {enabled: false}",
            "needs leaderElection.enabled=true",
        ),
        (
            "ingress: {enabled: true, apiVersion: extensions/v1beta1}",
            "only networking.k8s.io/v1",
        ),
        ("kubeVersion: 1.21.0", "needs Kubernetes 1.25"),
        (
            "pdb: {create: true, minAvailable: 2}",
            "would block every eviction",
        ),
        (
            "escrowRecipients: [not-a-recipient]",
            "escrowRecipients[0] is not an age X25519 recipient",
        ),
        (
            "networkPolicy: {egress: {enabled: true}}",
            "set networkPolicy.egress.kubeapiCidr",
        ),
        (
            "privateKeyLabels: {tier: 3}",
            "privateKeyLabels: the value of \"tier\" must be a string",
        ),
        // values.schema.json: a misspelt key and a wrong type are refused, named.
        ("replica: 2", "replica"),
        ("updateStatus: \"yes\"", "updateStatus"),
        ("service: {type: Ingress}", "type"),
    ] {
        let error = refusal(values);
        assert!(
            error.contains(expected),
            "{values}: expected {expected:?} in:\n{error}"
        );
    }
}

#[test]
fn a_private_key_given_as_escrow_recipient_is_refused_and_never_echoed() {
    let identity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    let error = refusal(&format!("escrowRecipients: [\"{identity}\"]"));
    assert!(
        error.contains("escrowRecipients[0] is an age identity"),
        "{error}"
    );
    assert!(
        !error.contains("GFPYYSJZ"),
        "the key is quoted back:\n{error}"
    );
}

/// A namespace-scoped install: Roles in the watched namespaces, no ClusterRole, and a
/// controller told to watch only those.
#[test]
fn namespaced_roles_grant_no_cluster_wide_access_and_scope_the_controller() {
    let objects = render_in(
        "rbac: {namespacedRoles: true, clusterRole: false}\nadditionalNamespaces: [team-a, team-b]",
        "sealant",
    );
    assert!(
        kinds(&objects, "ClusterRole").is_empty(),
        "a ClusterRole is rendered"
    );
    assert!(kinds(&objects, "ClusterRoleBinding").is_empty());
    let unsealers: BTreeSet<String> = kinds(&objects, "Role")
        .iter()
        .filter(|r| r["metadata"]["name"] == "secrets-unsealer")
        .map(|r| r["metadata"]["namespace"].as_str().expect("ns").to_owned())
        .collect();
    assert_eq!(
        unsealers,
        ["sealant", "team-a", "team-b"].map(str::to_owned).into(),
        "one Role per watched namespace, the controller's own included"
    );
    for role in kinds(&objects, "Role") {
        let grants_secrets = role["rules"].as_array().expect("rules").iter().any(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|res| res.contains(&json!("secrets")))
        });
        let ns = role["metadata"]["namespace"].as_str().expect("ns");
        assert!(
            !grants_secrets || ["sealant", "team-a", "team-b"].contains(&ns),
            "Secret access outside the watched namespaces: {role}"
        );
    }
    let args = args(&objects);
    assert!(
        args.contains(&"--all-namespaces=false".to_owned()),
        "{args:?}"
    );
    assert!(args.contains(&"--additional-namespaces=team-a,team-b".to_owned()));
    assert_controller_accepts(&args);
}

#[test]
fn prometheus_rule_embeds_the_tested_rule_file() {
    let objects = render("metrics: {prometheusRule: {enabled: true, labels: {release: prom}}}");
    let rule = get(&objects, "PrometheusRule", "sealed-secrets-controller");
    let file: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(chart().join("rules/sealant.rules.yaml")).expect("rules"),
    )
    .expect("rules parse");
    assert_eq!(
        rule["spec"], file,
        "the PrometheusRule is not the rule file"
    );
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
}

#[test]
fn alert_rules_fire_and_stay_silent_as_their_unit_tests_say() {
    for (command, file) in [
        ("check", "rules/sealant.rules.yaml"),
        ("test", "tests/rules-test.yaml"),
    ] {
        tools::run(
            Command::new(promtool())
                .args([command, "rules"])
                .arg(chart().join(file)),
            b"",
        )
        .unwrap_or_else(|e| panic!("promtool {command} rules {file}: {e:#}"));
    }
}

/// Every PromQL expression of the dashboard parses, and every metric named there or
/// in the rules is one a running controller exports.
#[tokio::test]
async fn dashboard_and_alerts_use_only_metrics_the_controller_exports() {
    let rules = std::fs::read_to_string(chart().join("rules/sealant.rules.yaml")).expect("rules");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(chart().join("dashboards/sealant-controller.json"))
            .expect("dashboard"),
    )
    .expect("the dashboard is valid JSON");
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() >= 10, "the dashboard lost its panels");

    // The dashboard's expressions as recording rules, so promtool parses each.
    let dir = tempfile::tempdir().expect("tempdir");
    let recording = json!({"groups": [{"name": "dashboard", "rules": exprs.iter().enumerate()
        .map(|(i, e)| json!({"record": format!("dashboard:expr{i}"), "expr": e}))
        .collect::<Vec<_>>()}]});
    let file = dir.path().join("dashboard.rules.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&recording).expect("YAML")).expect("write");
    tools::run(
        Command::new(promtool()).args(["check", "rules"]).arg(&file),
        b"",
    )
    .expect("every dashboard expression parses");

    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "chart-metrics")
        .await
        .expect("namespace");
    let controller = SealantController::start(cp, &ns.name, &[])
        .await
        .expect("controller");
    // A family shows in /metrics once it has a series: one SealedSecret that unseals
    // (condition, keys needed) and one that cannot (unseal errors).
    let cert = controller.cert_pem().expect("cert");
    kubectl_apply(
        cp,
        &seal(&cert, &ns.name, "good", &[("password", "m3trics")]),
    );
    let bad = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: bad\n  \
         namespace: {}\nspec:\n  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA==\n",
        ns.name
    );
    kubectl_apply(cp, bad.as_bytes());
    let mut used: BTreeSet<String> = BTreeSet::new();
    for text in exprs.iter().map(String::as_str).chain([rules.as_str()]) {
        used.extend(metric_names(text));
    }
    assert!(used.len() >= 10, "found too few metric names: {used:?}");
    // Both SealedSecrets are processed within seconds; every family they give rise to
    // then stays.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let exported = loop {
        let (code, body) =
            sealant_e2e::control_plane::http_get(controller.metrics_addr, "/metrics")
                .expect("GET /metrics");
        assert_eq!(code, 200, "{body}");
        let names = exported_series_names(&body);
        if used.iter().all(|m| names.contains(m)) || std::time::Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let missing: Vec<&String> = used.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard or the alerts use metrics the controller does not export: \
         {missing:?}\nexported: {exported:?}"
    );
}

/// The series names a `/metrics` text can have: each family's name from its `# TYPE`
/// line, with the suffixes of its type.
fn exported_series_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for suffix in suffixes {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names
}

/// The controller's metric names mentioned in `text` (both prefixes).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["sealed_secrets_controller_", "sealant_controller_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

/// `promtool`, from Debian's `prometheus` package (scripts/system-deps.sh installs it).
fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    found.expect("promtool is not on PATH: run scripts/system-deps.sh (Debian package prometheus)")
}

/// The controller's own parser accepts `args` (clap validates every argument before
/// `--help`, which then stops it before it starts).
fn assert_controller_accepts(args: &[String]) {
    let bin = tools::sealant_controller().expect("sealant-controller");
    let out = tools::run_unchecked(Command::new(bin).args(args).arg("--help"), b"")
        .expect("run sealant-controller");
    assert!(
        out.status.success(),
        "sealant-controller refuses the chart's arguments {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl auth can-i VERB RESOURCE` as `user`, in `namespace` or in all of them.
fn can(user: &str, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
    let cp = cluster().expect("control plane");
    let mut cmd = kubectl(cp);
    cmd.args(["auth", "can-i", verb, resource, "--as", user]);
    match namespace {
        Some(ns) => cmd.args(["-n", ns]),
        None => cmd.arg("--all-namespaces"),
    };
    let out = tools::run_unchecked(&mut cmd, b"").expect("kubectl auth can-i");
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl auth can-i: {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A namespace-scoped install, end to end: the chart's RBAC (Roles only) applied to the
/// control plane, and the controller run with the chart's arguments under a token of
/// the chart's ServiceAccount, with nothing else.
#[tokio::test]
async fn a_namespace_scoped_install_unseals_its_namespaces_under_only_the_charts_roles() {
    let cp = cluster().expect("control plane");
    let own = TestNamespace::new(cp, "scoped-ctl")
        .await
        .expect("namespace");
    let team_a = TestNamespace::new(cp, "scoped-a").await.expect("namespace");
    let team_b = TestNamespace::new(cp, "scoped-b").await.expect("namespace");
    let outside = TestNamespace::new(cp, "scoped-out")
        .await
        .expect("namespace");
    let objects = render_in(
        &format!(
            "rbac: {{namespacedRoles: true, clusterRole: false}}\n\
             additionalNamespaces: [{}, {}]",
            team_a.name, team_b.name
        ),
        &own.name,
    );
    let rbac: String = objects
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .map(|o| format!("---\n{}", serde_yaml_ng::to_string(o).expect("YAML")))
        .collect();
    kubectl_apply(cp, rbac.as_bytes());

    let user = format!(
        "system:serviceaccount:{}:sealed-secrets-controller",
        own.name
    );
    assert!(
        !can(&user, "list", "secrets", None),
        "Secret access across the cluster"
    );
    assert!(!can(&user, "get", "secrets", Some(&outside.name)));
    for ns in [&own.name, &team_a.name, &team_b.name] {
        assert!(
            can(&user, "watch", "secrets", Some(ns)),
            "no Secret access in {ns}"
        );
        assert!(can(&user, "list", "sealedsecrets.bitnami.com", Some(ns)));
    }

    // The chart's arguments, but the harness's addresses (each test controller
    // listens on its own ports) and no leader election (one replica here).
    let chart_args: Vec<String> = args(&objects)
        .into_iter()
        .filter(|a| !a.starts_with("--listen") && !a.starts_with("--leader-elect"))
        .collect();
    let chart_args: Vec<&str> = chart_args.iter().map(String::as_str).collect();
    let kubeconfig = cp
        .service_account_kubeconfig(&own.name, "sealed-secrets-controller")
        .await
        .expect("kubeconfig");
    let controller = SealantController::start_as(cp, &own.name, &kubeconfig, &chart_args)
        .await
        .expect("controller");
    let cert = controller.cert_pem().expect("cert");
    let values = [("password", "scoped-s3cret")];
    for ns in [&own.name, &team_a.name, &team_b.name, &outside.name] {
        kubectl_apply(cp, &seal(&cert, ns, "db", &values));
    }
    let client = cp.client().await.expect("client");
    for ns in [&own.name, &team_a.name, &team_b.name] {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let secret = eventually(&format!("the Secret {ns}/db"), &controller, || {
            let secrets = secrets.clone();
            async move { secrets.get_opt("db").await.ok().flatten() }
        })
        .await;
        assert_eq!(secret_values(&secret), expected(&values));
    }
    // The namespace outside the install is not watched: its SealedSecret, applied
    // before the others were unsealed, got neither a Secret nor a status.
    let outside_secrets: Api<Secret> = Api::namespaced(client.clone(), &outside.name);
    assert!(outside_secrets.get_opt("db").await.expect("get").is_none());
    let sealed: Api<SealedSecret> = Api::namespaced(client, &outside.name);
    let untouched = sealed.get("db").await.expect("get the SealedSecret");
    assert!(
        untouched.status.is_none(),
        "a status was written outside the install"
    );
    let log = controller.log().expect("log");
    assert!(
        !log.to_ascii_lowercase().contains("forbidden"),
        "the controller asked for more than the chart grants:\n{log}"
    );
}

/// `helm` against the harness's API server, as admin.
fn helm(cp: &sealant_e2e::ControlPlane) -> Command {
    let mut cmd = Command::new(&peers().expect("peers").helm);
    cmd.arg("--kubeconfig").arg(&cp.admin_kubeconfig);
    cmd
}

/// The installed Deployment's container arguments, read back from the API server.
fn installed_args(cp: &sealant_e2e::ControlPlane, namespace: &str, name: &str) -> Vec<String> {
    let out = tools::run(
        kubectl(cp).args(["-n", namespace, "get", "deployment", name, "-o", "json"]),
        b"",
    )
    .expect("kubectl get deployment");
    let deployment: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    args_of(&deployment["spec"]["template"]["spec"]["containers"][0])
}

/// The controller run as an installed release's Pod would run: under its
/// ServiceAccount `fullname`, with its Deployment's arguments (but the harness's
/// addresses). This harness has no kubelet: the process stands in for the Pod.
async fn start_installed(
    cp: &sealant_e2e::ControlPlane,
    namespace: &str,
    fullname: &str,
) -> SealantController {
    let args = without_listen(installed_args(cp, namespace, fullname));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let kubeconfig = cp
        .service_account_kubeconfig(namespace, fullname)
        .await
        .expect("kubeconfig");
    SealantController::start_as(cp, namespace, &kubeconfig, &args)
        .await
        .unwrap_or_else(|e| panic!("sealant-controller as {namespace}/{fullname}: {e:#}"))
}

/// Bitnami's controller run as its chart's Pod would run (as [`start_installed`]),
/// listening on `port` of the test host.
async fn start_installed_bitnami(
    cp: &sealant_e2e::ControlPlane,
    namespace: &str,
    fullname: &str,
    port: u16,
) -> sealant_e2e::bitnami::BitnamiController {
    let args = without_listen(installed_args(cp, namespace, fullname));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sealant_e2e::bitnami::start_as(cp, namespace, fullname, port, &args)
        .await
        .unwrap_or_else(|e| panic!("Bitnami's controller as {namespace}/{fullname}: {e:#}"))
}

/// `helm install`, `upgrade` and `uninstall` on the real API server (which validates
/// every object), with the controller run as the installed ServiceAccount with the
/// installed arguments (this harness has no kubelet: the process stands in for the
/// Pod). Uninstalling leaves the keys, the CRD and the Secrets, as the notes say.
#[tokio::test]
async fn helm_install_upgrade_and_uninstall_on_the_api_server_keep_keys_and_secrets() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "helm").await.expect("namespace");
    // Cluster-scoped names are unique to this test (other tests apply deploy/).
    let fullname = format!("sealant-{}", ns.name);
    let values = format!(
        "fullnameOverride: {fullname}\nrbac: {{clusterRoleName: {fullname}}}\n\
         leaderElection: {{leaseDuration: 4s, renewDeadline: 3s, retryPeriod: 500ms}}\n"
    );
    let out = tools::run(
        helm(cp).args(["install", "sealant"]).arg(chart()).args([
            "--namespace",
            &ns.name,
            "-f",
            "-",
        ]),
        values.as_bytes(),
    )
    .expect("helm install");
    let notes = String::from_utf8_lossy(&out.stdout);
    assert!(
        notes.contains("`helm uninstall` leaves them") && notes.contains(&fullname),
        "the install notes:\n{notes}"
    );

    assert!(
        installed_args(cp, &ns.name, &fullname).contains(&"--leader-elect".to_owned()),
        "the default install runs without leader election"
    );
    let controller = start_installed(cp, &ns.name, &fullname).await;
    let cert = controller.cert_pem().expect("cert");
    let values = [("token", "helm-installed")];
    kubectl_apply(cp, &seal(&cert, &ns.name, "db", &values));
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let secret = eventually("the Secret db", &controller, || {
        let secrets = secrets.clone();
        async move { secrets.get_opt("db").await.ok().flatten() }
    })
    .await;
    assert_eq!(secret_values(&secret), expected(&values));

    tools::run(
        helm(cp).args(["upgrade", "sealant"]).arg(chart()).args([
            "--namespace",
            &ns.name,
            "--reuse-values",
            "--set",
            "logLevel=DEBUG",
        ]),
        b"",
    )
    .expect("helm upgrade");
    assert!(
        installed_args(cp, &ns.name, &fullname).contains(&"--log-level=DEBUG".to_owned()),
        "the upgrade did not reach the Deployment"
    );

    controller.terminate().expect("stop the controller");
    tools::run(
        helm(cp).args(["uninstall", "sealant", "--namespace", &ns.name]),
        b"",
    )
    .expect("helm uninstall");
    let gone = tools::run_unchecked(
        kubectl(cp).args(["-n", &ns.name, "get", "deployment", &fullname]),
        b"",
    )
    .expect("kubectl");
    assert!(
        !gone.status.success(),
        "the Deployment outlived the release"
    );
    let keys = secrets
        .list(
            &kube::api::ListParams::default()
                .labels("sealedsecrets.bitnami.com/sealed-secrets-key"),
        )
        .await
        .expect("list key Secrets");
    assert!(
        !keys.items.is_empty(),
        "helm uninstall deleted the key Secrets"
    );
    assert!(
        secrets.get_opt("db").await.expect("get").is_some(),
        "helm uninstall deleted an unsealed Secret"
    );
    let crds = tools::run(
        kubectl(cp).args(["get", "crd", "sealedsecrets.bitnami.com", "-o", "name"]),
        b"",
    )
    .expect("the CRD is still there");
    assert!(!crds.stdout.is_empty());
}

/// A chart's arguments without its listen addresses, given as `--flag=value` or as
/// `--flag value`: the harness gives each controller its own.
fn without_listen(args: Vec<String>) -> Vec<String> {
    let mut kept = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if arg == "--listen-addr" || arg == "--listen-metrics-addr" {
            skip_value = true;
        } else if !arg.starts_with("--listen-") {
            kept.push(arg);
        }
    }
    kept
}

/// Seals `values` as `namespace/name` with Bitnami's `kubeseal --cert`.
fn kubeseal(cert_pem: &str, namespace: &str, name: &str, values: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, cert_pem).expect("write cert");
    let secret =
        sealant_e2e::fixtures::secret_yaml(namespace, name, values, sealant_keys::Scope::Strict);
    tools::run(
        Command::new(&peers().expect("peers").kubeseal)
            .env("HOME", dir.path())
            .env_remove("KUBECONFIG")
            .arg("--cert")
            .arg(&cert)
            .args(["-o", "yaml"]),
        secret.as_bytes(),
    )
    .expect("kubeseal")
    .stdout
}

/// Waits up to 30 s for the Secret `name` and returns its values.
async fn wait_for_secret(
    secrets: &Api<Secret>,
    name: &str,
) -> std::collections::BTreeMap<String, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(secret) = secrets.get_opt(name).await.expect("get Secret") {
            return secret_values(&secret);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Secret {name} after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The migration drill, in place, both ways, with one values file a Bitnami user
/// wrote: Bitnami's own chart and controller first, then Bitnami's chart running our
/// controller (only the image changed); then uninstalled, our chart
/// installed with the same file and our controller run with what it installed; then
/// back to Bitnami. Every Secret stays, no second key is made, and each controller
/// unseals what was sealed to the first key meanwhile. (As above, the controllers run
/// as processes under the installed ServiceAccounts with the installed arguments: the
/// harness has no kubelet.)
#[tokio::test]
async fn migrating_from_bitnamis_chart_to_ours_and_back_keeps_every_secret_and_the_key() {
    let cp = cluster().expect("control plane");
    let ns = TestNamespace::new(cp, "migrate").await.expect("namespace");
    let fullname = format!("sealed-secrets-{}", ns.name);
    // Cluster-scoped names unique to this test; nothing else of the file is ours.
    let values = format!("fullnameOverride: {fullname}\nrbac:\n  clusterRoleName: {fullname}\n");
    let bitnami_chart = peers().expect("peers").bitnami_chart.clone();
    // The CRD stays in the cluster throughout, as in a real in-place migration (the
    // harness installed it, so Helm's server-side apply of either chart's copy would
    // conflict with the harness's field manager).
    let install = |chart: &Path, release: &str| {
        tools::run(
            helm(cp).args(["install", release]).arg(chart).args([
                "--namespace",
                &ns.name,
                "--skip-crds",
                "-f",
                "-",
            ]),
            values.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("helm install {release}: {e:#}"));
    };
    let uninstall = |release: &str| {
        tools::run(
            helm(cp).args(["uninstall", release, "--namespace", &ns.name]),
            b"",
        )
        .unwrap_or_else(|e| panic!("helm uninstall {release}: {e:#}"));
    };
    let client = cp.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let key_secrets = || {
        let secrets = secrets.clone();
        async move {
            secrets
                .list(
                    &kube::api::ListParams::default()
                        .labels("sealedsecrets.bitnami.com/sealed-secrets-key"),
                )
                .await
                .expect("list key Secrets")
                .items
                .len()
        }
    };
    let a = [("user", "alice")];
    let b = [("user", "bob")];

    // 1. Bitnami's chart and controller; kubeseal seals two Secrets.
    install(&bitnami_chart, "sealed-secrets");
    let bitnami = start_installed_bitnami(cp, &ns.name, &fullname, 18700).await;
    let cert = bitnami.cert_pem().expect("cert");
    kubectl_apply(cp, &kubeseal(&cert, &ns.name, "a", &a));
    assert_eq!(wait_for_secret(&secrets, "a").await, expected(&a));
    bitnami.kill();

    // 1b. Bitnami's chart running our controller instead (a user who changes only
    //     `image.*`): its ServiceAccount, its RBAC and its arguments.
    let ours = start_installed(cp, &ns.name, &fullname).await;
    assert_eq!(ours.cert_pem().expect("cert"), cert);
    let a2 = [("user", "alice-2")];
    kubectl_apply(cp, &kubeseal(&cert, &ns.name, "a2", &a2));
    assert_eq!(wait_for_secret(&secrets, "a2").await, expected(&a2));
    ours.terminate().expect("stop sealant-controller");
    uninstall("sealed-secrets");
    assert_eq!(key_secrets().await, 1, "Bitnami's key Secret is gone");

    // 2. Ours, with the same values file: the same key, the old Secret kept, and what
    //    kubeseal seals to the old certificate unseals.
    install(&chart(), "sealant");
    let ours = start_installed(cp, &ns.name, &fullname).await;
    assert_eq!(
        ours.cert_pem().expect("cert"),
        cert,
        "sealant did not take over Bitnami's key"
    );
    kubectl_apply(cp, &kubeseal(&cert, &ns.name, "b", &b));
    assert_eq!(wait_for_secret(&secrets, "b").await, expected(&b));
    assert_eq!(wait_for_secret(&secrets, "a").await, expected(&a));
    ours.terminate().expect("stop sealant-controller");
    uninstall("sealant");

    // 3. Back to Bitnami's chart: it unseals what `sealant` sealed to the same key.
    install(&bitnami_chart, "sealed-secrets");
    let bitnami = start_installed_bitnami(cp, &ns.name, &fullname, 18702).await;
    assert_eq!(bitnami.cert_pem().expect("cert"), cert);
    let c = [("user", "carol")];
    kubectl_apply(cp, &seal(&cert, &ns.name, "c", &c));
    assert_eq!(wait_for_secret(&secrets, "c").await, expected(&c));
    for (name, values) in [("a", &a[..]), ("a2", &a2[..]), ("b", &b[..])] {
        assert_eq!(wait_for_secret(&secrets, name).await, expected(values));
    }
    bitnami.kill();
    assert_eq!(key_secrets().await, 1, "a second key was made");
}
