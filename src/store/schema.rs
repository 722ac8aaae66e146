//! The two tables of the store, column by column. Times are UTC nanoseconds
//! (`Datetime[ns]`); lists are comma-separated text and structured values
//! (evidence, attributes) JSON text, so that every engine reads them as is.

use super::table::{Kind, Kind::*, Val};
use crate::analysis::Labelled;
use crate::event::Event;

/// Bumped when a column changes meaning or type; written to the manifest.
pub const SCHEMA_VERSION: u32 = 1;

pub const REQUESTS: &[(&str, Kind)] = &[
    ("request_key", Str),
    ("request_id", Str),
    ("trace_id", Str),
    ("ids", Str),
    ("start", Time),
    ("duration_ms", Float),
    ("method", Str),
    ("host", Str),
    ("path", Str),
    ("route", Str),
    ("status", Int),
    ("upstream_status", Str),
    ("upstream_addr", Str),
    ("service", Str),
    ("consumer", Str),
    ("failed", Bool),
    ("label", Str),
    ("rule", Str),
    ("explanation", Str),
    ("evidence", Str),
    ("sources", Str),
    ("flags", Str),
    ("events", Int),
    ("join", Str),
    ("join_confidence", Float),
];

pub const EVENTS: &[(&str, Kind)] = &[
    ("request_key", Str),
    ("ts", Time),
    ("source", Str),
    ("format", Str),
    ("origin", Str),
    ("service", Str),
    ("request_id", Str),
    ("correlation_id", Str),
    ("trace_id", Str),
    ("span_id", Str),
    ("parent_span_id", Str),
    ("method", Str),
    ("host", Str),
    ("path", Str),
    ("route", Str),
    ("status", Int),
    ("upstream_status", Str),
    ("upstream_addr", Str),
    ("duration_ms", Float),
    ("upstream_duration_ms", Float),
    ("bytes_in", Int),
    ("bytes_out", Int),
    ("client_ip", Str),
    ("consumer", Str),
    ("level", Str),
    ("message", Str),
    ("gateway_error", Str),
    ("span_name", Str),
    ("span_kind", Str),
    ("span_status", Str),
    ("span_status_message", Str),
    ("span_end", Time),
    ("exceptions", Str),
    ("attributes", Str),
];

/// The id index: one row per id of every request, sorted by id, so that a
/// lookup reads one row group (Parquet min/max statistics) per index file.
pub const INDEX: &[(&str, Kind)] = &[
    ("id", Str),
    ("requests_file", Str),
    ("row", Int),
    ("events_file", Str),
    ("events_row", Int),
    ("events_len", Int),
];

fn s(v: Option<&str>) -> Val {
    Val::S(v.map(str::to_string))
}

pub fn origin_text(e: &Event) -> Option<String> {
    e.origin.as_ref().map(|o| match &o.item {
        Some(item) => format!("{}:{}#{item}", o.file, o.line),
        None => format!("{}:{}", o.file, o.line),
    })
}

pub fn request_row(key: &str, l: &Labelled) -> Vec<Val> {
    let r = &l.request;
    let v = l.verdict.as_ref();
    let g = r.gateway_event();
    let sources: Vec<&str> = r.sources().iter().map(|s| s.as_str()).collect();
    vec![
        Val::S(Some(key.to_string())),
        s(r.request_id.as_deref()),
        s(r.trace_id.as_deref()),
        Val::S(Some(r.ids.join(","))),
        Val::T(r.start),
        Val::F(r.duration_ms),
        s(r.method.as_deref()),
        s(r.host.as_deref()),
        s(r.path.as_deref()),
        s(r.route.as_deref()),
        Val::I(r.status.map(i64::from)),
        s(g.and_then(|e| e.upstream_status.as_deref())),
        s(g.and_then(|e| e.upstream_addr.as_deref())),
        s(r.service.as_deref()),
        s(r.consumer.as_deref()),
        Val::B(r.failed),
        s(v.map(|v| v.label.as_str())),
        s(v.map(|v| v.rule.as_str())),
        s(v.map(|v| v.explanation.as_str())),
        Val::S(v.map(|v| serde_json::to_string(&v.evidence).unwrap_or_default())),
        Val::S(Some(sources.join(","))),
        Val::S(Some(r.flags.join(","))),
        Val::I(Some(r.events.len() as i64)),
        Val::S(Some(r.join().to_string())),
        Val::F(r.inferred.map(f64::from)),
    ]
}

pub fn event_row(key: &str, e: &Event) -> Vec<Val> {
    let span = e.span.as_deref();
    let attributes: serde_json::Map<String, serde_json::Value> = e
        .attributes
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    vec![
        Val::S(Some(key.to_string())),
        Val::T(e.ts),
        Val::S(Some(e.source().as_str().to_string())),
        Val::S(Some(e.format.to_string())),
        Val::S(origin_text(e)),
        s(e.service.as_deref()),
        s(e.request_id.as_deref()),
        s(e.correlation_id.as_deref()),
        s(e.trace_id.as_deref()),
        s(e.span_id.as_deref()),
        s(e.parent_span_id.as_deref()),
        s(e.method.as_deref()),
        s(e.host.as_deref()),
        s(e.path.as_deref()),
        s(e.route.as_deref()),
        Val::I(e.status.map(i64::from)),
        s(e.upstream_status.as_deref()),
        s(e.upstream_addr.as_deref()),
        Val::F(e.duration_ms),
        Val::F(e.upstream_duration_ms),
        Val::I(e.bytes_in.map(|b| b as i64)),
        Val::I(e.bytes_out.map(|b| b as i64)),
        s(e.client_ip.as_deref()),
        s(e.consumer.as_deref()),
        s(e.level.as_deref()),
        s(e.message.as_deref()),
        s(e.gateway_error.as_deref()),
        s(span.map(|s| s.name.as_str())),
        s(span.map(|s| s.kind.as_str())),
        s(span.map(|s| s.status_code)),
        s(span.and_then(|s| s.status_message.as_deref())),
        Val::T(span.and_then(|s| s.end_ts)),
        Val::S(span.filter(|s| !s.exceptions.is_empty()).map(|s| {
            let list: Vec<serde_json::Value> = s
                .exceptions
                .iter()
                .map(|x| serde_json::json!({"type": x.r#type, "message": x.message}))
                .collect();
            serde_json::Value::Array(list).to_string()
        })),
        Val::S((!attributes.is_empty()).then(|| serde_json::Value::Object(attributes).to_string())),
    ]
}
