//! The `--json` line, re-declared here key by key with `deny_unknown_fields`:
//! adding, renaming or retyping a key of the contract (docs/CONTRACT.md
//! "--json") fails this test until the test, the contract and the README's
//! changelog are changed with it.

use crate::common::{stderr, stdout, tracejoin};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RequestLine {
    request_id: Option<String>,
    trace_id: Option<String>,
    ids: Vec<String>,
    /// RFC 3339, UTC.
    start: Option<String>,
    duration_ms: Option<f64>,
    method: Option<String>,
    host: Option<String>,
    path: Option<String>,
    route: Option<String>,
    status: Option<u16>,
    failed: bool,
    label: Option<Label>,
    rule: Option<String>,
    explanation: Option<String>,
    evidence: Vec<Evidence>,
    /// Present on failed requests with a known origin (never on `unknown`).
    #[serde(default)]
    cause: Option<Cause>,
    sources: Vec<Source>,
    events: usize,
    join: Join,
    /// Present only for inferred joins.
    #[serde(default)]
    join_confidence: Option<f32>,
    service: Option<String>,
    consumer: Option<String>,
    flags: Vec<Flag>,
    /// Present only in live mode, from the second emission on.
    #[serde(default)]
    revision: Option<u32>,
    /// Present only on a retry inside one trace: 2, 3, ...
    #[serde(default)]
    attempt: Option<u32>,
    /// Present only on a retry: the request id of the attempt it retries.
    #[serde(default)]
    retry_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Evidence {
    origin: String,
    source: Source,
    detail: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Cause {
    kind: OriginKind,
    service: String,
    operation: Option<String>,
    span_id: Option<String>,
    origin: Option<String>,
    /// The services crossed to reach the origin, the gateway first.
    path: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum OriginKind {
    Gateway,
    Service,
    Dependency,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Label {
    Auth,
    Routing,
    Quota,
    Transform,
    Upstream,
    Unknown,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Source {
    Gateway,
    Backend,
    Span,
    GatewayLog,
    OtelLog,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Join {
    Exact,
    Single,
    Inferred,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Flag {
    GatewayOnly,
    NoGateway,
    OrphanSpan,
    SeveralGatewayLines,
    Amended,
    Evicted,
    MaxAge,
    ReusedId,
}

fn lines(args: &[&str]) -> Vec<RequestLine> {
    let out = tracejoin(args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_json_line_has_exactly_the_contract_keys() {
    let all = lines(&["analyze", "--json", "sample-logs"]);
    assert_eq!(all.len(), 300);
    for l in &all {
        assert_eq!(l.failed, l.label.is_some(), "{l:?}");
        assert_eq!(l.failed, !l.evidence.is_empty(), "{l:?}");
        assert!(
            l.start.as_deref().is_some_and(|s| s.ends_with('Z')),
            "{l:?}"
        );
        assert!(l.events >= 1 && !l.sources.is_empty());
        // A known cause on every failure with a label other than unknown; its
        // path ends at the origin.
        match (&l.label, &l.cause) {
            (Some(Label::Unknown) | None, c) => assert!(c.is_none(), "{l:?}"),
            (Some(_), None) => panic!("a labelled failure without a cause: {l:?}"),
            (Some(_), Some(c)) => {
                assert_eq!(c.path.last(), Some(&c.service), "{l:?}");
                assert!(c.origin.is_some(), "{l:?}");
            }
        }
    }
    // Every label occurs in the bundled incident, as do both kinds of join.
    for label in [
        Label::Auth,
        Label::Routing,
        Label::Quota,
        Label::Transform,
        Label::Upstream,
    ] {
        assert!(
            all.iter().any(|l| l.label.as_ref() == Some(&label)),
            "{label:?}"
        );
    }
    assert!(all.iter().any(|l| l.join == Join::Exact));
    // An inferred join carries its confidence.
    let inferred = lines(&["analyze", "--json", "--infer-joins", "sample-logs"]);
    for l in inferred.iter().filter(|l| l.join == Join::Inferred) {
        assert!(l.join_confidence.is_some_and(|c| c > 0.0 && c <= 1.0));
    }
}
