//! The two tables of the store, column by column. Times are UTC-adjusted
//! microsecond timestamps, with the exact nanoseconds beside the ones that
//! order things (`start_ns`, `ts_ns`); lists are Parquet lists of text;
//! structured values (evidence, attributes) JSON text: types every engine
//! (DuckDB, Spark, Trino, ClickHouse) reads as they are, with no option.

use super::table::{Kind, Kind::*, Val};
use crate::event::{self, value_text, Event, FieldValue, FIELDS};
use crate::labelled::Labelled;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Bumped when a column changes meaning or type; written to the manifest,
/// per run. 1: times `Datetime[ns]` without a time zone, lists as
/// comma-separated text (read and converted, [`super::read`]). 2: UTC
/// microsecond timestamps, `start_ns` / `ts_ns`, list columns.
pub const SCHEMA_VERSION: u32 = 2;

pub const REQUESTS: &[(&str, Kind)] = &[
    ("request_key", Str),
    ("request_id", Str),
    ("trace_id", Str),
    ("ids", List),
    ("start", Time),
    ("start_ns", Int),
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
    ("cause_kind", Str),
    ("cause_service", Str),
    ("cause_operation", Str),
    ("cause_span_id", Str),
    ("cause_origin", Str),
    ("cause_path", List),
    ("sources", List),
    ("flags", List),
    ("events", Int),
    ("join", Str),
    ("join_confidence", Float),
    ("attempt", Int),
    ("retry_of", Str),
];

/// The events table: where each event came from, then every schema field
/// ([`FIELDS`], in declaration order), then the span's own fields.
pub static EVENTS: LazyLock<Vec<(&'static str, Kind)>> = LazyLock::new(|| {
    let mut cols = vec![
        ("request_key", Str),
        ("ts", Time),
        ("ts_ns", Int),
        // How coarse `ts` is when the source wrote it to the second (nginx
        // `$time_local`): what a request rebuilt from the store needs to be
        // joined again as it was (`reconcile`).
        ("ts_precision_ns", Int),
        ("source", Str),
        ("format", Str),
        ("origin", Str),
    ];
    cols.extend(FIELDS.iter().map(|f| (f.name, column_kind(f.kind))));
    cols.extend([
        ("span_name", Str),
        ("span_kind", Str),
        ("span_status", Str),
        ("span_status_message", Str),
        ("span_end", Time),
        ("exceptions", Str),
        ("attributes", Str),
    ]);
    cols
});

/// The column type of a schema field.
pub fn column_kind(k: event::Kind) -> Kind {
    match k {
        event::Kind::Text => Str,
        event::Kind::Int => Int,
        event::Kind::Millis => Float,
    }
}

/// Request rows that a later run replaced: `reconcile` joining partial
/// requests of several `serve` instances, or a live run re-emitting a request
/// amended by late events. Every reader leaves these rows out (an anti-join
/// on `request_key`); the files stay, so nothing is rewritten in place.
pub const SUPERSEDED: &[(&str, Kind)] = &[("request_key", Str), ("by_run", Str)];

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

fn s(v: Option<&str>) -> Val<'_> {
    Val::S(v.map(Cow::Borrowed))
}

pub fn request_row<'a>(key: &'a str, l: &'a Labelled) -> Vec<Val<'a>> {
    let r = &l.request;
    let v = l.verdict.as_ref();
    let c = v.and_then(|v| v.cause.as_ref());
    let g = r.gateway_event();
    let sources: Vec<&str> = r.sources().iter().map(|s| s.as_str()).collect();
    vec![
        Val::S(Some(Cow::Borrowed(key))),
        s(r.request_id.as_deref()),
        s(r.trace_id.as_deref()),
        Val::L(r.ids.iter().map(|i| Cow::Borrowed(i.as_str())).collect()),
        Val::T(r.start),
        Val::I(r.start),
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
        Val::S(v.map(|v| Cow::Owned(json(&v.evidence)))),
        s(c.map(|c| c.kind.as_str())),
        s(c.map(|c| c.service.as_str())),
        s(c.and_then(|c| c.operation.as_deref())),
        s(c.and_then(|c| c.span_id.as_deref())),
        s(c.and_then(|c| c.origin.as_deref())),
        Val::L(
            c.map(|c| c.path.iter().map(|s| Cow::Borrowed(s.as_str())).collect())
                .unwrap_or_default(),
        ),
        Val::L(sources.into_iter().map(Cow::Borrowed).collect()),
        Val::L(r.flags.iter().map(|f| Cow::Borrowed(f.as_str())).collect()),
        Val::I(Some(r.events.len() as i64)),
        Val::S(Some(Cow::Owned(r.join().to_string()))),
        Val::F(r.inferred.map(f64::from)),
        Val::I(r.attempt.map(i64::from)),
        s(r.retry_of.as_deref()),
    ]
}

pub fn event_row<'a>(key: &'a str, e: &'a Event) -> Vec<Val<'a>> {
    let span = e.span.as_deref();
    let mut row = Vec::with_capacity(EVENTS.len());
    row.extend([
        Val::S(Some(Cow::Borrowed(key))),
        Val::T(e.ts),
        Val::I(e.ts),
        Val::I((e.ts_precision_ns != 0).then_some(e.ts_precision_ns)),
        Val::S(Some(Cow::Borrowed(e.source().as_str()))),
        Val::S(Some(Cow::Borrowed(e.format.as_str()))),
        Val::S(e.origin.as_ref().map(|o| Cow::Owned(o.to_string()))),
    ]);
    for f in FIELDS {
        let v = (f.get)(e);
        row.push(match f.kind {
            event::Kind::Text => Val::S(v.map(value_text)),
            event::Kind::Int => Val::I(match v {
                Some(FieldValue::Int(i)) => Some(i),
                _ => None,
            }),
            event::Kind::Millis => Val::F(match v {
                Some(FieldValue::Millis(x)) => Some(x),
                _ => None,
            }),
        });
    }
    row.extend([
        s(span.map(|s| s.name.as_str())),
        s(span.map(|s| s.kind.as_str())),
        s(span.map(|s| s.status.as_str())),
        s(span.and_then(|s| s.status_message.as_deref())),
        Val::T(span.and_then(|s| s.end_ts)),
        Val::S(
            span.filter(|s| !s.exceptions.is_empty())
                .map(|s| Cow::Owned(json(&s.exceptions))),
        ),
        Val::S((!e.attributes.is_empty()).then(|| {
            let map: BTreeMap<&str, &str> = e
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Cow::Owned(json(&map))
        })),
    ]);
    row
}

/// JSON text of plain data (strings, maps of strings): cannot fail.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
