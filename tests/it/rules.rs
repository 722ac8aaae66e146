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

/// One row of tests/data/vocabulary.tsv: a message a real library writes
/// (or a near miss that must not count), and the label it means.
struct Row {
    library: String,
    label: String,
    text: String,
}

fn vocabulary() -> Vec<Row> {
    let text = std::fs::read_to_string(repo().join("tests/data/vocabulary.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            Row {
                library: f[0].to_string(),
                label: f[2].to_string(),
                text: f[3].to_string(),
            }
        })
        .collect()
}

/// Every library message of the vocabulary, logged at error by the service
/// behind a gateway that answered 500 (a status that says "upstream"
/// whatever happened), gets its own label from the backend rule for it; a
/// near miss leaves the verdict to the status.
#[test]
fn every_library_message_of_the_vocabulary_gets_its_label() {
    use tracejoin::event::{Event, Level, Source};
    let engine = Engine::load(None).unwrap();
    let ev = engine.evaluator();
    let rows = vocabulary();
    assert!(rows.len() >= 80, "{} rows", rows.len());
    let mut wrong = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let rid = format!("req{i}");
        let gateway = Event {
            ts: Some(1_796_047_901_000_000_000),
            source: Some(Source::Gateway),
            request_id: Some(rid.as_str().into()),
            status: Some(500),
            upstream_status: Some("500".into()),
            upstream_addr: Some("10.0.0.7:8080".into()),
            ..Default::default()
        };
        let backend = Event {
            ts: Some(1_796_047_901_001_000_000),
            source: Some(Source::Backend),
            service: Some("svc".into()),
            request_id: Some(rid.as_str().into()),
            level: Some(Level::Error),
            message: Some(row.text.as_str().into()),
            ..Default::default()
        };
        let req = tracejoin::correlate::build_request(vec![gateway, backend], vec![rid]);
        let v = engine.evaluate(&ev, &req).expect("a 500 failed");
        let backend_decided = v.rule.starts_with("backend-");
        let ok = match row.label.as_str() {
            "none" => !backend_decided,
            label => backend_decided && v.label.as_str() == label,
        };
        if !ok {
            wrong.push(format!(
                "{} {:?}: expected {}, got {} by {}",
                row.library, row.text, row.label, v.label, v.rule
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

/// OTLP/JSON of one span: `(service, span id, parent, name, kind, status code,
/// attributes, exception)` for trace `t`.
fn span_line(t: &str, s: (&str, &str, &str, &str, u8, u8, &str, &str)) -> String {
    let (service, id, parent, name, kind, code, attrs, exception) = s;
    let events = if exception.is_empty() {
        String::new()
    } else {
        let (ty, msg) = exception.split_once(": ").unwrap();
        format!(
            r#","events":[{{"timeUnixNano":"1795600000015000000","name":"exception","attributes":[{{"key":"exception.type","value":{{"stringValue":"{ty}"}}}},{{"key":"exception.message","value":{{"stringValue":"{msg}"}}}}]}}]"#
        )
    };
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{t}","spanId":"{id}","parentSpanId":"{parent}","name":"{name}","kind":{kind},"startTimeUnixNano":"1795600000010000000","endTimeUnixNano":"1795600000020000000","attributes":[{attrs}],"status":{{"code":{code}}}{events}}}]}}]}}]}}"#
    )
}

#[test]
fn a_failure_passed_on_is_blamed_where_it_started_with_the_path_there() {
    // gateway → storefront → catalog → Redis: Redis refused, catalog answered
    // 500, storefront passed a 502 on and logged what catalog said.
    let t = "4bf92f3577b34da6a3ce929d0e0e4736";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("access.log"),
        format!("10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] \"GET /products/7 HTTP/1.1\" 502 0 \"-\" \"curl/8\" rid=aaaabbbbccccddddeeeeffff00001111 rt=0.020 urt=0.019 us=502 ua=\"10.0.0.7:8080\" tp=00-{t}-00f067aa0ba902b7-01\n"),
    )
    .unwrap();
    let http = r#"{"key":"http.response.status_code","value":{"intValue":"500"}}"#;
    let redis = r#"{"key":"db.system","value":{"stringValue":"redis"}},{"key":"server.address","value":{"stringValue":"127.0.0.1"}},{"key":"server.port","value":{"intValue":"6390"}}"#;
    let spans = [
        ("storefront", "1000000000000001", "00f067aa0ba902b7", "GET /products/{id}", 2, 2, "", ""),
        ("storefront", "1000000000000002", "1000000000000001", "GET", 3, 2, http, ""),
        ("catalog", "2000000000000001", "1000000000000002", "GET /products/{id}", 2, 2, http, ""),
        ("catalog", "2000000000000002", "2000000000000001", "HGETALL", 3, 2, redis,
         "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6390. Connection refused."),
    ];
    let lines: Vec<String> = spans.iter().map(|s| span_line(t, *s)).collect();
    std::fs::write(dir.path().join("traces.jsonl"), lines.join("\n") + "\n").unwrap();
    // storefront's own log says only what catalog answered.
    std::fs::write(
        dir.path().join("storefront.log"),
        format!("{{\"time\":\"2026-11-24T10:00:00.019Z\",\"level\":\"error\",\"msg\":\"GET http://catalog/products/7 failed\",\"exc_info\":\"httpx.HTTPStatusError: Server error '500 Internal Server Error' for url 'http://catalog/products/7'\",\"trace_id\":\"{t}\",\"span_id\":\"1000000000000001\",\"service\":\"storefront\"}}\n"),
    )
    .unwrap();
    let a = analyze(&[dir.path()]);
    assert_eq!(a.requests.len(), 1, "{:?}", a.requests);
    let v = a.requests[0].verdict.as_ref().unwrap();
    assert_eq!(v.label.as_str(), "upstream", "{v:?}");
    let c = v.cause.as_ref().expect("a cause");
    assert_eq!(c.kind.as_str(), "dependency", "{c:?}");
    assert_eq!(c.service, "redis");
    assert_eq!(c.operation.as_deref(), Some("HGETALL"));
    assert_eq!(c.span_id.as_deref(), Some("2000000000000002"));
    assert_eq!(c.path, ["nginx", "storefront", "catalog", "redis"]);
    // The origin is the event that says why: Redis's refusal on catalog's span.
    let origin = c.origin.as_deref().unwrap();
    assert!(
        origin.ends_with("traces.jsonl:4#2000000000000002"),
        "{origin}"
    );
}

#[test]
fn a_gateway_that_refused_by_itself_is_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("access.log"),
        "10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] \"GET /v1/orders HTTP/1.1\" 503 0 \"-\" \"curl/8\" rid=aaaabbbbccccddddeeeeffff00002222 rt=0.000 urt=- us=- ua=\"-\" lrs=REJECTED\n",
    )
    .unwrap();
    let a = analyze(&[dir.path()]);
    let v = a.requests[0].verdict.as_ref().unwrap();
    assert_eq!(v.label.as_str(), "quota", "{v:?}");
    let c = v.cause.as_ref().unwrap();
    assert_eq!(
        (c.kind.as_str(), c.service.as_str(), c.operation.as_deref()),
        ("gateway", "nginx", Some("limit_req"))
    );
    assert_eq!(c.path, ["nginx"]);
    assert!(c.origin.as_deref().unwrap().ends_with("access.log:1"));
}
