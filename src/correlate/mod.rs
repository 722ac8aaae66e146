//! The correlator: a key graph over every identifier events carry; events that
//! share any key fall into one request (connected components), closed after an
//! idle window so memory stays bounded.
//!
//! Knows no formats, rules or I/O: events in, request timelines out.

mod attempts;
mod errorlog;
mod infer;
mod skew;
mod window;

pub use attempts::Attempts;
pub use skew::{Skew, SkewEstimator};
pub use window::{Closed, Correlator, LiveLimits, WindowStats};

use crate::event::ids;
pub use crate::event::ids::keys;
use crate::event::{text_enum, text_of, Event, Level, Source, SpanKind, SpanStatus, Text};
use std::borrow::Cow;

text_enum! {
    /// Why a request's timeline may be incomplete or was emitted early:
    /// flagged, never dropped.
    pub enum Flag {
        /// The gateway logged it; no service did.
        GatewayOnly = "gateway_only",
        /// Services logged it; no gateway line joined.
        NoGateway = "no_gateway",
        /// An entry span whose parent is neither in the trace nor the gateway's.
        OrphanSpan = "orphan_span",
        SeveralGatewayLines = "several_gateway_lines",
        /// Live mode: emitted again because events arrived after it closed.
        Amended = "amended",
        /// Live mode: closed early because open requests or buffered events hit their cap.
        Evicted = "evicted",
        /// Live mode: closed early because it stayed open longer than the maximum age.
        MaxAge = "max_age",
        /// Another gateway line of the same log carried this request's id (a
        /// client reusing its request id): kept apart, not merged.
        ReusedId = "reused_id",
        /// It did not fail, yet met an error on the way (a dependency call
        /// retried with success, an error a service logged and got past):
        /// noted, never a failure.
        Recovered = "recovered",
    }
}

/// A closed request, summarised and flagged; [`Closed::early`] and
/// [`Closed::revision`] become flags.
pub fn build_closed(closed: Closed) -> Request {
    let mut request = build_request(closed.events, closed.keys);
    request.inferred = closed.inferred;
    request.revision = closed.revision;
    if closed.revision > 1 {
        request.flags.push(Flag::Amended);
    }
    if let Some(why) = closed.early {
        request.flags.push(why);
    }
    if closed.reused_id {
        request.flags.push(Flag::ReusedId);
    }
    request
}

/// One request: every event any system wrote about it, in time order.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub events: Vec<Event>,
    /// Index in `events` of the gateway's access-log line, if any.
    pub gateway: Option<usize>,
    /// Index of the entry server span (the one whose parent is outside the trace).
    pub server_span: Option<usize>,
    pub request_id: Option<Text>,
    pub trace_id: Option<Text>,
    /// Every normalised id that joined this request.
    pub ids: Vec<String>,
    pub start: Option<i64>,
    pub duration_ms: Option<f64>,
    pub method: Option<Text>,
    pub host: Option<Text>,
    pub path: Option<Text>,
    pub route: Option<Text>,
    pub status: Option<u16>,
    pub service: Option<Text>,
    pub consumer: Option<Text>,
    pub failed: bool,
    pub flags: Vec<Flag>,
    /// Set when part of the request was joined by inference (`--infer-joins`):
    /// the confidence of the weakest such join.
    pub inferred: Option<f32>,
    /// Live mode: 2 and up when late events reopened the request after it was
    /// first emitted (each emission supersedes the one before).
    pub revision: u32,
    /// 2 and up when this request retries an earlier failed request of its
    /// trace (same method and path); see [`Attempts`].
    pub attempt: Option<u32>,
    /// The request id of the attempt this one retries.
    pub retry_of: Option<Text>,
}

impl Request {
    pub fn gateway_event(&self) -> Option<&Event> {
        self.gateway.map(|i| &self.events[i])
    }
    pub fn server_span_event(&self) -> Option<&Event> {
        self.server_span.map(|i| &self.events[i])
    }
    pub fn sources(&self) -> Vec<Source> {
        let mut s: Vec<Source> = self.events.iter().map(|e| e.source()).collect();
        s.sort();
        s.dedup();
        s
    }
    /// A request field as text, by the names rule conditions (`request.path`)
    /// and explanation templates (`{{request.path}}`) use.
    pub fn field_text(&self, f: &str) -> Option<Cow<'_, str>> {
        match f {
            "status" => self.status.map(|s| Cow::Owned(s.to_string())),
            "failed" => Some(Cow::Borrowed(if self.failed { "true" } else { "false" })),
            "method" => text_of(&self.method),
            "host" => text_of(&self.host),
            "path" => text_of(&self.path),
            "route" => text_of(&self.route),
            "service" => text_of(&self.service),
            "consumer" => text_of(&self.consumer),
            "request_id" => text_of(&self.request_id),
            "trace_id" => text_of(&self.trace_id),
            "duration_ms" => self
                .duration_ms
                .map(|d| Cow::Owned(format!("{}", (d * 1000.0).round() / 1000.0))),
            "flags" => Some(Cow::Owned(self.flags_text())),
            "sources" => Some(Cow::Owned(
                self.sources()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            _ => None,
        }
    }

    /// The flags as comma-separated text.
    pub fn flags_text(&self) -> String {
        let all: Vec<&str> = self.flags.iter().map(|f| f.as_str()).collect();
        all.join(",")
    }

    /// `inferred` when a part was joined without a shared id, `exact` when ids
    /// joined several events, `single` for a lone event.
    pub fn join(&self) -> &'static str {
        if self.inferred.is_some() {
            "inferred"
        } else if self.events.len() > 1 {
            "exact"
        } else {
            "single"
        }
    }
}

/// The span ids of a request's spans: a span whose parent is not among them
/// is an entry span (the first in this request of its trace).
struct EntrySpans<'a>(Vec<&'a str>);

impl EntrySpans<'_> {
    fn is_entry(&self, e: &Event) -> bool {
        e.source() == Source::Span
            && e.parent_span_id
                .as_deref()
                .is_none_or(|p| !self.0.contains(&p))
    }
}

fn entry_spans(events: &[Event]) -> EntrySpans<'_> {
    EntrySpans(
        events
            .iter()
            .filter(|e| e.source() == Source::Span)
            .filter_map(|e| e.span_id.as_deref())
            .collect(),
    )
}

/// Puts a request's events in time order and finds the gateway's access-log
/// line and the entry server span among them.
pub fn locate(events: &mut [Event]) -> (Option<usize>, Option<usize>) {
    events.sort_by(|a, b| {
        (a.ts.is_none(), a.ts, a.source()).cmp(&(b.ts.is_none(), b.ts, b.source()))
    });
    let gateway = events.iter().position(|e| e.source() == Source::Gateway);
    let entries = entry_spans(events);
    let is_entry = |e: &Event| entries.is_entry(e);
    // The entry server span; with several (an auth subrequest, then the real
    // call), the one serving the path the gateway logged.
    let gateway_path = gateway.and_then(|i| events[i].path.as_deref());
    let is_server = |e: &Event| e.span.as_ref().is_some_and(|s| s.kind == SpanKind::Server);
    let server_span = events
        .iter()
        .position(|e| {
            is_entry(e)
                && is_server(e)
                && gateway_path.is_some()
                && e.path.as_deref() == gateway_path
        })
        .or_else(|| events.iter().position(|e| is_entry(e) && is_server(e)))
        .or_else(|| events.iter().position(&is_entry));
    (gateway, server_span)
}

/// A gateway time written to the second (nginx `$time_local`) says only that
/// the request started within that second. When the entry span started inside
/// that second, the gateway saw the request just before it: the line is placed
/// there (its logged time kept as the attribute `ts_logged`), so that a
/// timeline draws it before its own backend work and skew is not inferred
/// from rounding. Returns whether it moved.
fn place_coarse_gateway_line(
    events: &mut [Event],
    gateway: Option<usize>,
    server_span: Option<usize>,
) -> bool {
    let (Some(g), Some(s)) = (gateway, server_span) else {
        return false;
    };
    let precision = events[g].ts_precision_ns;
    let (Some(gt), Some(st)) = (events[g].ts, events[s].ts) else {
        return false;
    };
    if precision == 0 || st < gt || st >= gt + precision {
        return false;
    }
    // Already placed: a live request reopened by a late event is built again
    // from the events it was emitted with.
    if events[g].attributes.iter().any(|(k, _)| k == "ts_logged") {
        return false;
    }
    let e = &mut events[g];
    e.attributes
        .push((Text::from("ts_logged"), crate::event::time::format_ts(gt)));
    e.ts = Some(st - 1_000);
    true
}

/// Derives a request's summary fields from its events and the keys that
/// joined them.
pub fn build_request(mut events: Vec<Event>, keys: Vec<String>) -> Request {
    let (mut gateway, mut server_span) = locate(&mut events);
    if place_coarse_gateway_line(&mut events, gateway, server_span) {
        (gateway, server_span) = locate(&mut events);
    }
    let gateway_count = events
        .iter()
        .filter(|e| e.source() == Source::Gateway)
        .count();
    let entries = entry_spans(&events);
    let is_entry = |e: &Event| entries.is_entry(e);
    let mut flags = Vec::new();
    let has_other = events.iter().any(|e| e.source() != Source::Gateway);
    if gateway.is_some() && !has_other {
        flags.push(Flag::GatewayOnly);
    }
    if gateway.is_none() {
        flags.push(Flag::NoGateway);
    }
    if gateway_count > 1 {
        flags.push(Flag::SeveralGatewayLines);
    }
    // A span whose parent is neither in the trace nor the caller the gateway saw.
    let known_parents: Vec<&str> = events
        .iter()
        .filter(|e| e.source() != Source::Span)
        .filter_map(|e| e.parent_span_id.as_deref())
        .collect();
    let entry_spans = events.iter().filter(|e| is_entry(e)).count();
    let orphan = events.iter().any(|e| {
        is_entry(e)
            && e.parent_span_id
                .as_deref()
                .is_some_and(|p| !known_parents.contains(&p))
            && (gateway.is_none() || entry_spans > 1)
    });
    if orphan {
        flags.push(Flag::OrphanSpan);
    }

    let mut ids: Vec<String> = keys
        .into_iter()
        .filter(|k| !k.starts_with("span:"))
        .collect();
    ids.sort();
    ids.dedup();

    let g: Option<&Event> = gateway.map(|i| &events[i]);
    let s: Option<&Event> = server_span.map(|i| &events[i]);
    let pick = |f: fn(&Event) -> Option<&Text>| -> Option<Text> {
        g.and_then(f)
            .or_else(|| s.and_then(f))
            .or_else(|| events.iter().find_map(|e| f(e)))
            .cloned()
    };
    let request_id = g
        .and_then(|e| e.request_id.clone().or_else(|| e.correlation_id.clone()))
        .or_else(|| events.iter().find_map(|e| e.request_id.clone()));
    let trace_id = events
        .iter()
        .find_map(|e| e.trace_id.as_deref().and_then(ids::normalize_trace))
        .map(Text::from);
    let status = g
        .and_then(|e| e.status)
        .or_else(|| s.and_then(|e| e.status))
        .or_else(|| events.iter().filter_map(|e| e.status).max());
    // A gateway's error-log line is written while it handles the request,
    // and nginx writes it to the second (floored): it sets the start only
    // when nothing else has a time.
    let start = events
        .iter()
        .filter(|e| e.source() != Source::GatewayLog)
        .filter_map(|e| e.ts)
        .min()
        .or_else(|| events.iter().filter_map(|e| e.ts).min());
    let duration_ms = g
        .and_then(|e| e.duration_ms)
        .or_else(|| s.and_then(|e| e.duration_ms))
        .or_else(|| {
            let end = events
                .iter()
                .filter_map(|e| e.span.as_ref().and_then(|s| s.end_ts).or(e.ts))
                .max()?;
            Some((end - start?) as f64 / 1e6)
        });
    let failed = status.is_some_and(|s| s >= 400)
        || g.is_some_and(|e| e.gateway_error.is_some())
        || s.and_then(|e| e.span.as_ref())
            .is_some_and(|sp| sp.status == SpanStatus::Error);
    if !failed && events.iter().any(met_an_error) {
        flags.push(Flag::Recovered);
    }
    let service = s
        .and_then(|e| e.service.clone())
        .or_else(|| {
            events
                .iter()
                .filter(|e| e.source() != Source::Gateway)
                .find_map(|e| e.service.clone())
        })
        .or_else(|| g.and_then(|e| e.service.clone()));
    Request {
        method: pick(|e| e.method.as_ref()),
        host: pick(|e| e.host.as_ref()),
        path: pick(|e| e.path.as_ref()),
        // A span's route names the request only if it served the path the gateway saw.
        route: g.and_then(|e| e.route.clone()).or_else(|| {
            s.filter(|s| g.is_none_or(|g| g.path == s.path))
                .and_then(|e| e.route.clone())
        }),
        consumer: pick(|e| e.consumer.as_ref()),
        status,
        start,
        duration_ms,
        failed,
        service,
        request_id,
        trace_id,
        ids,
        flags,
        inferred: None,
        revision: 1,
        attempt: None,
        retry_of: None,
        gateway,
        server_span,
        events,
    }
}

/// An error span or exception, or an error a service logged.
fn met_an_error(e: &Event) -> bool {
    match e.source() {
        Source::Span => e
            .span
            .as_deref()
            .is_some_and(|s| s.status == SpanStatus::Error || !s.exceptions.is_empty()),
        Source::Backend | Source::OtelLog => {
            matches!(e.level, Some(Level::Error | Level::Fatal)) || e.error_type.is_some()
        }
        Source::Gateway | Source::GatewayLog => false,
    }
}

/// A path with its id segments replaced (`/v1/orders/8813` → `/v1/orders/{id}`),
/// so that a route without a name still groups its requests.
pub fn templated(path: &str) -> String {
    let id_like = |seg: &str| {
        let b = seg.as_bytes();
        (!b.is_empty() && b.iter().all(u8::is_ascii_digit))
            || (b.len() >= 16 && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-'))
    };
    path.split('/')
        .map(|seg| if id_like(seg) { "{id}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}
