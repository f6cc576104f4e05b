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
