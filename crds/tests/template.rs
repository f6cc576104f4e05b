//! Known answers for `spec.template.data`: every case in `testdata/template_cases.json`
//! was rendered by the real Go `text/template` with sprig, configured as Bitnami's
//! controller configures it (see `gotemplate/main.go`, which also says how to
//! regenerate the file). sealant must give the same bytes, and must fail wherever Go
//! fails. Cases marked `"sealant": "error"` are deliberate, documented differences
//! where sealant refuses what Go renders.

use std::collections::BTreeMap;

use sealant_crds::template::render;
use sealant_keys::Plaintext;
use serde_json::Value;

const CASES: &str = include_str!("testdata/template_cases.json");

#[test]
fn template_matches_go_text_template_outputs() {
    let cases: Vec<Value> = serde_json::from_str(CASES).expect("valid JSON");
    assert!(cases.len() > 100, "the vector file lost its cases");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let template = case["template"].as_str().expect("template");
        let values: BTreeMap<String, Plaintext> = case["values"]
            .as_object()
            .expect("values")
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().expect("string value");
                (k.clone(), Plaintext::new(v.as_bytes().to_vec()))
            })
            .collect();
        let must_fail = case["expect"].get("error").is_some()
            || case.get("sealant").and_then(Value::as_str) == Some("error");
        match (render(template, &values), must_fail) {
            (Ok(_), true) => failures.push(format!("{name}: rendered, but must fail")),
            (Err(e), false) => failures.push(format!("{name}: failed with {e}")),
            (Err(_), true) => {}
            (Ok(out), false) => {
                let want = case["expect"]["output"].as_str().expect("output");
                let got = String::from_utf8_lossy(out.expose_secret());
                if got != want {
                    failures.push(format!("{name}: got {got:?}, want {want:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Digit runs in `text`, as written.
fn numbers(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect()
}

fn plaintexts(pairs: &[(&str, &str)]) -> BTreeMap<String, Plaintext> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Plaintext::new(v.as_bytes().to_vec())))
        .collect()
}

/// What a value could give away in an error: the value itself, its length and its
/// bytes as numbers. Single digits are left out: they are too common in honest
/// texts ("want 1 got 2") to tell apart.
fn derived_from(values: &BTreeMap<String, Plaintext>) -> Vec<String> {
    let mut derived = Vec::new();
    for v in values.values() {
        let v = v.expose_secret();
        if v.len() >= 3 || v.iter().all(u8::is_ascii_digit) {
            derived.push(String::from_utf8_lossy(v).into_owned());
        }
        derived.push(v.len().to_string());
        derived.extend(v.iter().map(u8::to_string));
    }
    derived.retain(|d| d.len() >= 2);
    derived
}

#[test]
fn template_errors_quote_no_value_and_no_number_computed_from_one() {
    // Every must-fail case of the Go vectors over its own values, plus the leaks of
    // issue 11 (finding 3) over values whose lengths and bytes are easy to spot. An
    // error may repeat numbers from its template (literals and argument counts are
    // the template's own), never a value or a number taken from one.
    let cases: Vec<Value> = serde_json::from_str(CASES).expect("valid JSON");
    let mut runs: Vec<(String, BTreeMap<String, Plaintext>)> = cases
        .iter()
        .filter(|c| {
            c["expect"].get("error").is_some()
                || c.get("sealant").and_then(Value::as_str) == Some("error")
        })
        .map(|c| {
            let values: Vec<(&str, &str)> = c["values"]
                .as_object()
                .expect("values")
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().expect("string value")))
                .collect();
            (
                c["template"].as_str().expect("template").to_owned(),
                plaintexts(&values),
            )
        })
        .collect();
    assert!(runs.len() > 50, "the vector file lost its must-fail cases");
    let spotted = plaintexts(&[("password", "Qx9#Vz!Lw%"), ("username", "Mkrbtqwxyz")]);
    for template in [
        "{{ index (list) (index .password 0) }}",
        "{{ index (list) (len .password) }}",
        "{{ index .password (len .password) }}",
        "{{ index (list 1 2) (index .username 2) }}",
        "{{ range .password }}{{ end }}",
        "{{ .password.x }}",
        "{{ b64dec .password }}",
        "{{ eq .password 1 }}",
        "{{ lt .password 1 }}",
        "{{ repeat (index .password 0) .password | repeat 1000000 }}",
        "{{ indent (len .password) .password | repeat 1000000 }}",
    ] {
        runs.push((template.to_owned(), spotted.clone()));
    }
    let mut leaks = Vec::new();
    for (template, values) in &runs {
        let Err(e) = render(template, values) else {
            leaks.push(format!("{template:?} rendered"));
            continue;
        };
        let reason = e.reason();
        let derived = derived_from(values);
        for d in &derived {
            let number = d.chars().all(|c| c.is_ascii_digit());
            if !number && reason.contains(d.as_str()) {
                leaks.push(format!("{template:?}: {reason:?} quotes a value"));
            }
        }
        let allowed = numbers(template);
        for n in numbers(reason) {
            if derived.iter().any(|d| d == n) && !allowed.contains(&n) {
                leaks.push(format!("{template:?}: {reason:?} quotes {n}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}
