//! One labelled request per line: the stable `--json` contract of DESIGN.md.

use crate::analysis::Labelled;
use crate::parse::time::format_ts;
use serde_json::{json, Value};

pub fn request_json(l: &Labelled) -> Value {
    let r = &l.request;
    let v = l.verdict.as_ref();
    json!({
        "request_id": r.request_id,
        "trace_id": r.trace_id,
        "ids": r.ids,
        "start": r.start.map(format_ts),
        "duration_ms": r.duration_ms.map(|d| (d * 1000.0).round() / 1000.0),
        "method": r.method,
        "host": r.host,
        "path": r.path,
        "route": r.route,
        "status": r.status,
        "failed": r.failed,
        "label": v.map(|v| v.label.as_str()),
        "rule": v.map(|v| v.rule.as_str()),
        "explanation": v.map(|v| v.explanation.as_str()),
        "evidence": v.map(|v| v.evidence.clone()).unwrap_or_default(),
        "sources": r.sources(),
        "events": r.events.len(),
        "join": r.join(),
        "service": r.service,
        "consumer": r.consumer,
        "flags": r.flags,
    })
}
