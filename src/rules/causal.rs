//! Causal order inside one request: which of two events happened first in the
//! chain of calls that made the request fail, and which errors the request
//! recovered from.
//!
//! When a service and its dependency both say why (the dependency "jwt
//! expired", the service "bad gateway"), the cause is the one nearer the
//! origin: the deeper span, then the earlier event. Rule-file order says
//! nothing about that.

use crate::correlate::Request;
use crate::event::{Event, Source, SpanFields, SpanKind, SpanStatus};
use std::collections::HashMap;

/// Per event of a request: its depth in the span tree (0 = entry span), when
/// it happened, and whether the request recovered from it.
pub(super) struct Causal {
    depth: Vec<Option<u32>>,
    time: Vec<Option<i64>>,
    recovered: Vec<bool>,
}

/// Deepest call chain followed; a parent loop in bad data stops here.
const MAX_DEPTH: u32 = 64;

impl Causal {
    pub(super) fn of(req: &Request) -> Causal {
        let events = &req.events;
        let spans: HashMap<&str, usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.source() == Source::Span)
            .filter_map(|(i, e)| e.span_id.as_deref().map(|s| (s, i)))
            .collect();
        let span_depth = |mut i: usize| -> u32 {
            let mut d = 0;
            while let Some(&p) = events[i]
                .parent_span_id
                .as_deref()
                .and_then(|p| spans.get(p))
            {
                if d == MAX_DEPTH || p == i {
                    break;
                }
                d += 1;
                i = p;
            }
            d
        };
        // A service's shallowest span: where a log line of that service that
        // names no span was written.
        let mut service_depth: HashMap<&str, u32> = HashMap::new();
        for &i in spans.values() {
            if let Some(s) = events[i].service.as_deref() {
                let d = span_depth(i);
                service_depth
                    .entry(s)
                    .and_modify(|m| *m = (*m).min(d))
                    .or_insert(d);
            }
        }
        let depth = events
            .iter()
            .enumerate()
            .map(|(i, e)| match e.source() {
                Source::Span => Some(span_depth(i)),
                Source::Gateway | Source::GatewayLog => None,
                Source::Backend | Source::OtelLog => e
                    .span_id
                    .as_deref()
                    .and_then(|s| spans.get(s))
                    .map(|&s| span_depth(s))
                    .or_else(|| {
                        e.service
                            .as_deref()
                            .and_then(|s| service_depth.get(s).copied())
                    }),
            })
            .collect();
        // A span fails when it ends (its exception is recorded then).
        let time = events
            .iter()
            .map(|e| e.span.as_ref().and_then(|s| s.end_ts).or(e.ts))
            .collect();
        let recovered_spans = recovered_spans(events);
        let recovered = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                recovered_spans.contains(&i)
                    || (e.source() != Source::Span
                        && e.span_id
                            .as_deref()
                            .and_then(|s| spans.get(s))
                            .is_some_and(|s| recovered_spans.contains(s)))
            })
            .collect();
        Causal {
            depth,
            time,
            recovered,
        }
    }

    /// The event's depth in the span tree (0 = entry span), when known.
    pub(super) fn depth(&self, i: usize) -> Option<u32> {
        self.depth[i]
    }

    /// When the event happened (a span: when it ended).
    pub(super) fn time(&self, i: usize) -> Option<i64> {
        self.time[i]
    }

    /// Whether the request went on and succeeded at what this event failed.
    pub(super) fn recovered(&self, i: usize) -> bool {
        self.recovered[i]
    }

    /// Whether event `a` comes before event `b` in the causal chain: the
    /// deeper span first when both depths are known and differ, else the
    /// earlier event (else the one read first).
    pub(super) fn precedes(&self, a: usize, b: usize) -> bool {
        if let (Some(da), Some(db)) = (self.depth[a], self.depth[b]) {
            if da != db {
                return da > db;
            }
        }
        match (self.time[a], self.time[b]) {
            (Some(ta), Some(tb)) if ta != tb => ta < tb,
            _ => a < b,
        }
    }

    /// The first of `events` in causal order.
    pub(super) fn first(&self, events: &[usize]) -> Option<usize> {
        events
            .iter()
            .copied()
            .reduce(|a, b| if self.precedes(b, a) { b } else { a })
    }
}

/// Client and internal spans in error that a later sibling (same parent, same
/// name) repeated with success: a retried call that recovered.
fn recovered_spans(events: &[Event]) -> Vec<usize> {
    fn span(e: &Event) -> Option<&SpanFields> {
        e.span.as_deref().filter(|_| e.source() == Source::Span)
    }
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Some(s) = span(e) else { continue };
        if s.status != SpanStatus::Error || s.kind == SpanKind::Server {
            continue;
        }
        let retried_ok = events.iter().enumerate().any(|(j, o)| {
            j != i
                && span(o).is_some_and(|os| {
                    os.status != SpanStatus::Error && os.name == s.name && os.kind == s.kind
                })
                && o.parent_span_id == e.parent_span_id
                && o.service == e.service
                && o.ts >= e.ts
        });
        if retried_ok {
            out.push(i);
        }
    }
    out
}
