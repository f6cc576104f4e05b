//! Hostile `spec.template.data` (issue 11, finding 1): every case from the issue, run
//! the way the controller runs it, through [`unseal`] on a thread with the 2 MiB stack
//! of tokio's blocking pool, over a SealedSecret with `encryptedData: {}` (templates
//! need no valid ciphertext).
//!
//! A case that overflows the stack or runs out of memory aborts the whole process, so
//! each case runs in a child process: this test binary again, running the ignored
//! `child_unseals_one_case` test, under `prlimit --data` (256 MiB) where `prlimit` is
//! installed. The parent asserts that the child exited normally and that the unseal
//! failed with a clean error naming `spec.template.data.KEY`. Before the template
//! budget existed, the stack cases aborted, the memory cases aborted or allocated
//! hundreds of MiB, and the CPU case rendered (slowly) instead of failing.

use std::collections::BTreeMap;
use std::process::Command;

use sealant_crds::{SealedSecret, unseal};
use sealant_keys::KeyRing;

/// The environment variable that tells the child which case to run.
const CASE_ENV: &str = "SEALANT_TEMPLATE_BUDGET_CASE";

/// The data-segment limit of the child: far above what a budgeted unseal needs, far
/// below what the unbudgeted cases allocate.
const CHILD_DATA_LIMIT: &str = "268435456";

/// One hostile object: its template keys and a word the error must contain.
struct Case {
    name: &'static str,
    templates: Vec<(String, String)>,
    expect: &'static str,
}

fn one(name: &'static str, template: &str, expect: &'static str) -> Case {
    Case {
        name,
        templates: vec![("out".to_owned(), template.to_owned())],
        expect,
    }
}

fn cases() -> Vec<Case> {
    // 1,000 references to one 1 MiB string.
    let refs = " $s".repeat(1000);
    let big = r#"{{ $s := repeat 1048576 "x" }}"#;
    let items = r#" "a""#.repeat(1000);
    vec![
        one(
            "deep list dropped",
            "{{ $a := list }}{{ range 40000 }}{{ $a = list $a }}{{ end }}ok",
            "nested",
        ),
        one(
            "deep list printed",
            "{{ $a := list }}{{ range 40000 }}{{ $a = list $a }}{{ end }}{{ $a }}",
            "nested",
        ),
        one(
            "cat over many references to a 1 MiB string",
            &format!("{big}{{{{ cat{refs} }}}}"),
            "budget",
        ),
        one(
            "print over many references to a 1 MiB string",
            &format!("{big}{{{{ print{refs} }}}}"),
            "budget",
        ),
        one(
            "quote over many references to a 1 MiB string",
            &format!("{big}{{{{ quote{refs} }}}}"),
            "budget",
        ),
        one(
            "printf width over a list",
            &format!(r#"{{{{ printf "%1048576s" (list{items}) }}}}"#),
            "budget",
        ),
        one(
            "toString of a list doubled 40 times",
            "{{ $a := list 1 }}{{ range 40 }}{{ $a = list $a $a }}{{ end }}{{ toString $a }}",
            "budget",
        ),
        Case {
            name: "300 keys, each under the per-value cap",
            templates: (0..300)
                .map(|i| (format!("k{i:03}"), r#"{{ repeat 1000000 "x" }}"#.to_owned()))
                .collect(),
            expect: "budget",
        },
        one(
            "contains over a 1 MiB string, many times",
            &format!(
                r#"{big}{{{{ range 2000 }}}}{{{{ if contains "y" $s }}}}{{{{ end }}}}{{{{ end }}}}"#
            ),
            "budget",
        ),
        one(
            "splitList over a 1 MiB string, many times",
            &format!(r#"{big}{{{{ range 2000 }}}}{{{{ $l := splitList "y" $s }}}}{{{{ end }}}}"#),
            "budget",
        ),
        one(
            "replace over a 1 MiB string, many times",
            &format!(r#"{big}{{{{ range 2000 }}}}{{{{ $r := replace "y" "z" $s }}}}{{{{ end }}}}"#),
            "budget",
        ),
    ]
}

fn sealed_with(templates: &[(String, String)]) -> SealedSecret {
    let data: BTreeMap<&str, &str> = templates
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "poison", "namespace": "tenant"},
        "spec": {"encryptedData": {}, "template": {"data": data}},
    }))
    .expect("a SealedSecret")
}

/// Runs in the child: unseals one case on a 2 MiB thread and prints the outcome.
#[test]
#[ignore = "run as a child process by hostile_templates_fail_cleanly_and_alone"]
fn child_unseals_one_case() {
    let index: usize = std::env::var(CASE_ENV)
        .expect("run by the parent test")
        .parse()
        .expect("a case index");
    let case = cases().swap_remove(index);
    let sealed = sealed_with(&case.templates);
    let outcome = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || match unseal(&sealed, &KeyRing::new(), None) {
            Ok(u) => format!("ok {} keys", u.data().len()),
            Err(e) => format!("error {e}"),
        })
        .expect("a thread")
        .join()
        .expect("the unseal thread does not panic");
    println!("OUTCOME {outcome}");
}

#[test]
fn hostile_templates_fail_cleanly_and_alone() {
    let exe = std::env::current_exe().expect("the test binary");
    let limited = Command::new("prlimit").arg("--version").output().is_ok();
    let mut failures = Vec::new();
    for (index, case) in cases().iter().enumerate() {
        let mut cmd = if limited {
            let mut c = Command::new("prlimit");
            c.arg(format!("--data={CHILD_DATA_LIMIT}")).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args([
                "--exact",
                "child_unseals_one_case",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CASE_ENV, index.to_string())
            .output()
            .expect("the child runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The harness prints the test's name on the line the outcome is printed on.
        let outcome = stdout
            .lines()
            .find_map(|l| l.split_once("OUTCOME ").map(|(_, o)| o))
            .unwrap_or("");
        // The 300-key case fails at whichever key crosses the budget first.
        let field = if case.templates.len() == 1 {
            "spec.template.data.out"
        } else {
            "spec.template.data.k"
        };
        let clean = out.status.success()
            && outcome.starts_with("error ")
            && outcome.contains(field)
            && outcome.contains(case.expect);
        if !clean {
            failures.push(format!(
                "{}: exit {:?}, outcome {outcome:?}, stderr tail {:?}",
                case.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
