//! The rules engine as a user meets it: memoised decisions are exactly the
//! fresh ones, and conflicting evidence is shown.

use crate::common::*;
use tracejoin::analysis::{self, Options};
use tracejoin::parse::Registry;
use tracejoin::rules::Engine;

#[test]
fn memoised_verdicts_equal_fresh_evaluation() {
    let registry = Registry::load(None).unwrap();
    let opts = Options {
        paths: vec![repo().join("sample-logs")],
        ..Default::default()
    };
    let memo = Engine::load(None).unwrap();
    let mut fresh = Engine::load(None).unwrap();
    fresh.disable_memo();
    let a = analysis::run(&opts, &registry, &memo).unwrap();
    let b = analysis::run(&opts, &registry, &fresh).unwrap();
    assert_eq!(a.requests.len(), b.requests.len());
    let mut failed = 0;
    for (x, y) in a.requests.iter().zip(&b.requests) {
        assert_eq!(x.request.request_id, y.request.request_id);
        assert_eq!(x.verdict, y.verdict, "request {:?}", x.request.request_id);
        failed += x.verdict.is_some() as usize;
    }
    assert!(failed > 50);
}

#[test]
fn the_origin_wins_and_the_outranked_evidence_is_cited() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("access.log"),
        r#"10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] "POST /v1/orders HTTP/1.1" 502 0 "-" "curl/8" rid=aaaabbbbccccddddeeeeffff00001111 rt=0.020 urt=0.019 us=502 ua="10.0.0.7:8080"
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("orders.log"),
        r#"{"time":"2026-11-24T09:59:59.990Z","level":"error","msg":"schema validation failed: items[0].sku is required","request_id":"aaaabbbbccccddddeeeeffff00001111","service":"orders"}
"#,
    )
    .unwrap();
    let a = analyze(&[dir.path()]);
    assert_eq!(a.requests.len(), 1);
    let v = a.requests[0].verdict.as_ref().unwrap();
    assert_eq!(v.label.as_str(), "transform");
    assert_eq!(v.rule, "backend-payload-rejected");
    assert!(v.explanation.contains("items[0].sku is required"));
    assert!(v
        .evidence
        .iter()
        .any(|e| e.origin.ends_with("orders.log:1")));
    // The gateway's 502 is in the evidence too.
    assert!(v
        .evidence
        .iter()
        .any(|e| e.origin.ends_with("access.log:1") && e.detail.contains("status 502")));
}

#[test]
fn a_failure_no_rule_explains_is_unknown_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("access.log"),
        r#"10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] "GET /v1/x HTTP/1.1" 418 0 "-" "curl/8" rid=0123 rt=0.001 us=418 ua="10.0.0.7:8080"
"#,
    )
    .unwrap();
    let a = analyze(&[dir.path()]);
    let v = a.requests[0].verdict.as_ref().unwrap();
    assert_eq!(v.label.as_str(), "unknown");
    assert_eq!(
        v.explanation,
        "status 418; no rule matched (no span, no backend log)"
    );
}
