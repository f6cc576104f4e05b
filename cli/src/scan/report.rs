//! The three report formats and the baseline that silences known findings.
//!
//! Each format is built from [`Finding`]s alone, and a finding has no field for a
//! value, so no format can print a value, a part of one or a hash of one.
//!
//! - text: `path:line:col: rule-id Kind namespace/name key "k"` per finding;
//! - json: `{"version": 1, "findings": [...]}`, which is also a baseline file;
//! - sarif: SARIF 2.1.0 with one rule per id, for GitHub code scanning.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::finding::{Finding, Level, Rule};
use crate::args::scan::ReportFormat;

/// Renders the findings in `format`.
pub fn render(findings: &[Finding], format: ReportFormat) -> String {
    match format {
        ReportFormat::Text => text(findings),
        ReportFormat::Json => {
            let mut out = serde_json::to_string_pretty(&json_report(findings)).unwrap_or_default();
            out.push('\n');
            out
        }
        ReportFormat::Sarif => {
            let mut out = serde_json::to_string_pretty(&sarif(findings)).unwrap_or_default();
            out.push('\n');
            out
        }
    }
}

fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = write!(
            out,
            "{}:{}:{}: {} {} {}",
            f.path,
            f.line,
            f.col,
            f.rule,
            f.kind,
            f.object()
        );
        if let Some(key) = &f.key {
            let _ = write!(out, " key {key:?}");
        }
        if let Some(commit) = &f.commit {
            let _ = write!(out, " (commit {})", &commit[..commit.len().min(12)]);
        }
        let _ = write!(out, ": {}", f.rule.summary());
        if let Some(detail) = &f.detail {
            let _ = write!(out, " ({detail})");
        }
        out.push('\n');
    }
    out
}

fn json_report(findings: &[Finding]) -> Value {
    let items: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule.id(),
                "level": level_name(f.rule.level()),
                "path": f.path,
                "line": f.line,
                "column": f.col,
                "kind": f.kind,
                "namespace": f.namespace,
                "name": f.name,
                "key": f.key,
                "message": f.message(),
                "commit": f.commit,
                "fingerprint": f.fingerprint(),
            })
        })
        .collect();
    json!({ "version": 1, "findings": items })
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
    }
}

fn sarif(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "name": rule.id(),
                "shortDescription": { "text": rule.summary() },
                "fullDescription": { "text": format!("{}. {}", rule.summary(), rule.help()) },
                "help": { "text": rule.help() },
                "defaultConfiguration": { "level": level_name(rule.level()) },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let index = Rule::ALL
                .iter()
                .position(|r| *r == f.rule)
                .unwrap_or_default();
            let mut result = json!({
                "ruleId": f.rule.id(),
                "ruleIndex": index,
                "level": level_name(f.rule.level()),
                "message": { "text": f.message() },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.repo_path, "uriBaseId": "%SRCROOT%" },
                        "region": { "startLine": f.line, "startColumn": f.col },
                    }
                }],
                "partialFingerprints": { "sealantFingerprint/v1": f.fingerprint() },
            });
            if let Some(commit) = &f.commit {
                result["properties"] = json!({ "commit": commit });
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "sealant",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// The fingerprints of a baseline file: a `--format json` report of an earlier scan.
pub fn load_baseline(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the baseline {}", path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "the baseline {} is not JSON (write one with `sealant scan --format json > FILE`)",
            path.display()
        )
    })?;
    let Some(items) = value.get("findings").and_then(Value::as_array) else {
        bail!(
            "the baseline {} has no \"findings\" list (write one with `sealant scan --format json > FILE`)",
            path.display()
        );
    };
    items
        .iter()
        .map(|item| {
            item.get("fingerprint")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| {
                    format!(
                        "a finding in the baseline {} has no fingerprint",
                        path.display()
                    )
                })
        })
        .collect()
}
