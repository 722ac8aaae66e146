//! The real incident: requests sent through a real nginx to services
//! instrumented with the real OpenTelemetry SDK, every failure injected for
//! real. Each request's verdict must match the cause we injected, and every
//! backend line and span that carries a request's id must land in it.

use crate::common::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tracejoin::analysis::Analysis;
use tracejoin::event::Source;

struct Truth {
    request_id: String,
    scenario: String,
    label: String,
}

fn read_truth(path: &Path) -> Vec<Truth> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Truth {
                request_id: f[0].to_string(),
                scenario: f[1].to_string(),
                label: f[2].to_string(),
            }
        })
        .collect()
}

/// Compares verdicts with the truth; prints the confusion matrix; returns the agreement.
fn agreement(a: &Analysis, truth: &[Truth]) -> f64 {
    let by_id: HashMap<&str, _> = a
        .requests
        .iter()
        .filter_map(|l| l.request.request_id.as_deref().map(|id| (id, l)))
        .collect();
    let mut matrix: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut agree = 0;
    let mut wrong = Vec::new();
    for t in truth {
        let got = match by_id.get(t.request_id.as_str()) {
            Some(l) => l
                .verdict
                .as_ref()
                .map(|v| v.label.to_string())
                .unwrap_or_else(|| "none".into()),
            None => "missing".into(),
        };
        if got == t.label {
            agree += 1;
        } else {
            wrong.push(format!(
                "{} {}: expected {}, got {got}",
                t.request_id, t.scenario, t.label
            ));
        }
        *matrix.entry((t.label.clone(), got)).or_default() += 1;
    }
    let labels = [
        "auth",
        "routing",
        "quota",
        "transform",
        "upstream",
        "unknown",
        "none",
        "missing",
    ];
    eprintln!("confusion matrix (rows: injected, columns: tracejoin)");
    eprint!("{:>10}", "");
    for l in labels {
        eprint!("{l:>10}");
    }
    eprintln!();
    for want in labels {
        if !matrix.keys().any(|(w, _)| w == want) {
            continue;
        }
        eprint!("{want:>10}");
        for got in labels {
            eprint!(
                "{:>10}",
                matrix
                    .get(&(want.to_string(), got.to_string()))
                    .unwrap_or(&0)
            );
        }
        eprintln!();
    }
    for w in wrong.iter().take(20) {
        eprintln!("  {w}");
    }
    agree as f64 / truth.len() as f64
}

/// Reads the raw files without tracejoin's parsers and checks that each
/// backend line and span carrying a gateway request id is in that request.
fn assert_joins_are_complete(a: &Analysis, dir: &Path, truth: &[Truth]) {
    let ids: std::collections::HashSet<&str> =
        truth.iter().map(|t| t.request_id.as_str()).collect();
    let request_of: HashMap<&str, &tracejoin::labelled::Labelled> = a
        .requests
        .iter()
        .filter_map(|l| l.request.request_id.as_deref().map(|id| (id, l)))
        .collect();
    let mut checked = 0;
    // orders: JSON lines with request_id; payments: logfmt with request_id=...
    for (file, extract) in [
        (
            "orders/orders.log",
            Box::new(|l: &str| {
                serde_json::from_str::<serde_json::Value>(l).ok()?["request_id"]
                    .as_str()
                    .map(str::to_string)
            }) as Box<dyn Fn(&str) -> Option<String>>,
        ),
        (
            "payments/payments.log",
            Box::new(|l: &str| {
                l.split(' ')
                    .find_map(|kv| kv.strip_prefix("request_id="))
                    .map(str::to_string)
            }),
        ),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(rid) = extract(line) else { continue };
            if !ids.contains(rid.as_str()) {
                continue;
            }
            let req = request_of[rid.as_str()];
            let origin = format!("{}:{}", dir.join(file).display(), n + 1);
            assert!(
                req.request
                    .events
                    .iter()
                    .any(|e| e.origin.as_ref().map(|o| o.to_string()) == Some(origin.clone())),
                "{origin} (request {rid}) is not in its request's timeline"
            );
            checked += 1;
        }
    }
    // Spans: the x-request-id attribute the service recorded.
    let text = std::fs::read_to_string(dir.join("otel/traces.jsonl")).unwrap();
    for line in text.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        for rs in doc["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for span in ss["spans"].as_array().unwrap() {
                    let rid = span["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["key"] == "http.request.header.x-request-id")
                        .and_then(|a| {
                            a["value"]["arrayValue"]["values"][0]["stringValue"].as_str()
                        });
                    let Some(rid) = rid.filter(|r| ids.contains(r)) else {
                        continue;
                    };
                    let span_id = span["spanId"].as_str().unwrap().to_lowercase();
                    let req = request_of[rid];
                    assert!(
                        req.request.events.iter().any(|e| e.source() == Source::Span
                            && e.span_id.as_deref() == Some(&span_id)),
                        "span {span_id} (request {rid}) is not in its request's timeline"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > truth.len() / 2, "only {checked} events checked");
}

fn check_incident(dir: &Path, truth_path: &Path) {
    let truth = read_truth(truth_path);
    assert!(truth.len() >= 100, "truth has {} requests", truth.len());
    let a = analyze(&[dir]);
    assert_eq!(a.input_error_count(), 0, "{:?}", a.info.files);
    let share = agreement(&a, &truth);
    eprintln!(
        "agreement: {:.2}% of {} requests",
        share * 100.0,
        truth.len()
    );
    assert!(share >= 0.99, "agreement {share}");
    assert_eq!(
        a.requests.len(),
        truth.len(),
        "one request per gateway line"
    );
    assert_joins_are_complete(&a, dir, &truth);
    // Every failure label the incident injected is present.
    for label in ["auth", "routing", "quota", "transform", "upstream"] {
        assert!(
            truth.iter().any(|t| t.label == label),
            "{label} not injected"
        );
    }
}

#[test]
fn the_bundled_incident_is_labelled_as_injected() {
    let root = repo();
    check_incident(
        &root.join("sample-logs"),
        &root.join("tests/data/sample-truth.csv"),
    );
}

/// Runs the generator afresh (a real gateway, the real OTel SDK) with another
/// seed. `scripts/test` installs them and sets TRACEJOIN_REALSTACK_PYTHON.
fn fresh_incident(gateway: &str, seed: &str) {
    let Some(python) = realstack_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("incident");
    let truth = dir.path().join("truth.csv");
    let status = std::process::Command::new(python)
        .arg(repo().join("tests/realstack/generate.py"))
        .args([out.to_str().unwrap(), truth.to_str().unwrap()])
        .args(["--seed", seed, "--requests", "250", "--gateway", gateway])
        .status()
        .expect("generator runs");
    assert!(status.success());
    check_incident(&out, &truth);
}

#[test]
fn a_fresh_real_incident_behind_nginx_is_labelled_as_injected() {
    fresh_incident("nginx", "11");
}

#[test]
fn a_fresh_real_incident_behind_haproxy_is_labelled_as_injected() {
    fresh_incident("haproxy", "12");
}

#[test]
fn a_fresh_real_incident_behind_apache_is_labelled_as_injected() {
    fresh_incident("apache", "13");
}

/// A real Caddy writes its JSON access log (proxied success, upstream down,
/// unmatched path, backend 500): every request is labelled as injected and
/// the Traceparent header array gives the trace id.
#[test]
fn a_real_caddy_log_is_parsed_and_labelled() {
    let Some(python) = realstack_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("caddy.log");
    let truth = dir.path().join("truth.csv");
    let status = std::process::Command::new(python)
        .arg(repo().join("tests/realstack/caddy_log.py"))
        .args([log.to_str().unwrap(), truth.to_str().unwrap()])
        .status()
        .expect("caddy script runs");
    assert!(status.success());
    let a = analyze(&[&log]);
    assert_eq!(a.info.files[0].format.as_deref(), Some("caddy_json"));
    assert_eq!(a.input_error_count(), 0);
    let truth = std::fs::read_to_string(&truth).unwrap();
    let mut n = 0;
    for row in truth.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let l = a
            .requests
            .iter()
            .find(|l| l.request.request_id.as_deref() == Some(f[0]))
            .unwrap_or_else(|| panic!("{} missing", f[0]));
        let label = l
            .verdict
            .as_ref()
            .map(|v| v.label.as_str())
            .unwrap_or("none");
        assert_eq!(label, f[1], "{row}");
        assert_eq!(l.request.status.unwrap().to_string(), f[2]);
        assert!(l
            .request
            .trace_id
            .as_deref()
            .unwrap()
            .starts_with("0000000000000000000000007ace"));
        n += 1;
    }
    assert_eq!(n, 12);
}
