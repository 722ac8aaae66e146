//! One labelled request per line: the stable `--json` contract (docs/CONTRACT.md "--json").
//! A struct rather than a JSON map, so the keys come out in the contract's
//! order and nothing is copied into an intermediate document.

use crate::correlate::Flag;
use crate::event::time::format_ts;
use crate::event::Source;
use crate::labelled::Labelled;
use crate::rules::{Cause, Evidence, Label};
use serde::Serialize;

#[derive(Serialize)]
pub struct RequestLine<'a> {
    request_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    ids: &'a [String],
    start: Option<String>,
    duration_ms: Option<f64>,
    method: Option<&'a str>,
    host: Option<&'a str>,
    path: Option<&'a str>,
    route: Option<&'a str>,
    status: Option<u16>,
    failed: bool,
    label: Option<Label>,
    rule: Option<&'a str>,
    explanation: Option<&'a str>,
    evidence: &'a [Evidence],
    /// Where the failure started: `{kind, service, operation, span_id, origin,
    /// path}` (`path`: the services crossed to reach it, gateway first).
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a Cause>,
    sources: Vec<Source>,
    events: usize,
    join: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    join_confidence: Option<f32>,
    service: Option<&'a str>,
    consumer: Option<&'a str>,
    flags: &'a [Flag],
    /// Live mode only: a later emission of the same request, superseding the earlier ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<u32>,
    /// Only on a retry: its attempt number (2..) inside the trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    /// Only on a retry: the request id of the attempt it retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_of: Option<&'a str>,
}

pub fn request_line(l: &Labelled) -> RequestLine<'_> {
    let r = &l.request;
    let v = l.verdict.as_ref();
    RequestLine {
        request_id: r.request_id.as_deref(),
        trace_id: r.trace_id.as_deref(),
        ids: &r.ids,
        start: r.start.map(format_ts),
        duration_ms: r.duration_ms.map(|d| (d * 1000.0).round() / 1000.0),
        method: r.method.as_deref(),
        host: r.host.as_deref(),
        path: r.path.as_deref(),
        route: r.route.as_deref(),
        status: r.status,
        failed: r.failed,
        label: v.map(|v| v.label),
        rule: v.map(|v| v.rule.as_str()),
        explanation: v.map(|v| v.explanation.as_str()),
        evidence: v.map(|v| v.evidence.as_slice()).unwrap_or_default(),
        cause: v.and_then(|v| v.cause.as_ref()),
        sources: r.sources(),
        events: r.events.len(),
        join: r.join(),
        join_confidence: r.inferred,
        service: r.service.as_deref(),
        consumer: r.consumer.as_deref(),
        flags: &r.flags,
        revision: (r.revision > 1).then_some(r.revision),
        attempt: r.attempt,
        retry_of: r.retry_of.as_deref(),
    }
}

/// The line as JSON text (without the newline).
pub fn request_json(l: &Labelled) -> String {
    serde_json::to_string(&request_line(l)).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
