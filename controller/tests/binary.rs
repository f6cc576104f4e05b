//! Runs the `sealant-controller` binary for what needs no cluster: flag parsing from
//! the real `SEALED_SECRETS_*` environment variables, and refusals that happen before
//! the first API call.

use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealant-controller"));
    cmd.args(args).env_remove("KUBECONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

#[test]
fn bad_duration_in_env_var_is_refused_naming_flag_and_value() {
    let out = run(&[], &[("SEALED_SECRETS_KEY_RENEW_PERIOD", "30 days")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--key-renew-period"), "{stderr}");
    assert!(stderr.contains("30 days"), "{stderr}");
}

#[test]
fn flag_wins_over_env_var() {
    // The env value is invalid, the flag's is not: if the flag won, parsing gets past
    // it and stops at the next refusal (impossible leader-election timing), before any
    // API call.
    let out = run(
        &[
            "--key-renew-period=24h",
            "--leader-elect",
            "--leader-elect-retry-period=0s",
        ],
        &[("SEALED_SECRETS_KEY_RENEW_PERIOD", "bogus")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid --leader-elect-*"), "{stderr}");
}

#[test]
fn env_var_sets_a_boolean_flag() {
    // With leader election on, the impossible timing is refused before any API call;
    // with it off (the variable ignored), the run would get to connecting instead.
    let out = run(
        &["--leader-elect-retry-period=0s"],
        &[("SEALED_SECRETS_LEADER_ELECT", "true")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid --leader-elect-*"), "{stderr}");
}

#[test]
fn help_lists_bitnami_flags_with_their_env_vars() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--key-renew-period",
        "SEALED_SECRETS_KEY_RENEW_PERIOD",
        "--key-cutoff-time",
        "--listen-metrics-addr",
        "--workers",
    ] {
        assert!(stdout.contains(needle), "missing {needle}");
    }
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    let out = run(
        &[
            "--log-format=json",
            "--leader-elect",
            "--leader-elect-retry-period=0s",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().next().expect("a log line on stdout");
    let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
    assert_eq!(value["level"], "ERROR", "{line}");
    assert!(
        value["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("--leader-elect")),
        "{line}"
    );
}
