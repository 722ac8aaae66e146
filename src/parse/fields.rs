//! Mapping of a parsed record (flat key -> text) onto the event schema, with
//! the unit and missing-value conventions of FORMATS.md §0 applied in one place.

use super::definition::{Definition, FieldOptions};
use super::time::TimeFormat;
use crate::correlate::ids;
use crate::event::{Event, Text};
use anyhow::{bail, Result};
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// Every event field a definition may fill, plus the composite inputs that
/// are split into several fields (`request`, `traceparent`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Ts,
    Service,
    RequestId,
    CorrelationId,
    TraceId,
    SpanId,
    ParentSpanId,
    Method,
    Host,
    Path,
    Route,
    Status,
    UpstreamStatus,
    UpstreamAddr,
    DurationMs,
    UpstreamDurationMs,
    BytesIn,
    BytesOut,
    ClientIp,
    Consumer,
    Level,
    Message,
    GatewayError,
    /// `GET /path?q HTTP/1.1` -> method, path.
    Request,
    /// W3C `traceparent` -> trace id, parent span id.
    Traceparent,
    /// B3 single header `{trace}-{span}-{sampled}-{parent}`.
    B3,
    /// `X-Amzn-Trace-Id` (Root=1-…).
    Xray,
    /// `X-Cloud-Trace-Context`.
    CloudTrace,
    /// A URL or request URI -> path (query dropped, kept in attributes).
    Uri,
}

impl Target {
    pub const ALL: &'static [(&'static str, Target)] = &[
        ("ts", Target::Ts),
        ("service", Target::Service),
        ("request_id", Target::RequestId),
        ("correlation_id", Target::CorrelationId),
        ("trace_id", Target::TraceId),
        ("span_id", Target::SpanId),
        ("parent_span_id", Target::ParentSpanId),
        ("method", Target::Method),
        ("host", Target::Host),
        ("path", Target::Path),
        ("route", Target::Route),
        ("status", Target::Status),
        ("upstream_status", Target::UpstreamStatus),
        ("upstream_addr", Target::UpstreamAddr),
        ("duration_ms", Target::DurationMs),
        ("upstream_duration_ms", Target::UpstreamDurationMs),
        ("bytes_in", Target::BytesIn),
        ("bytes_out", Target::BytesOut),
        ("client_ip", Target::ClientIp),
        ("consumer", Target::Consumer),
        ("level", Target::Level),
        ("message", Target::Message),
        ("gateway_error", Target::GatewayError),
        ("request", Target::Request),
        ("traceparent", Target::Traceparent),
        ("b3", Target::B3),
        ("xray", Target::Xray),
        ("cloud_trace", Target::CloudTrace),
        ("uri", Target::Uri),
    ];

    pub fn from_name(name: &str) -> Option<Target> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
}

/// One compiled field rule.
#[derive(Debug, Clone)]
struct Rule {
    target: Target,
    unit_factor: f64,
    time: TimeFormat,
    ignore: Vec<String>,
    ok: Option<regex::Regex>,
    prefix: Option<String>,
}

/// Where a source key goes: (rule index, rank among that rule's alternatives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    rule: u16,
    rank: u16,
}

/// Source key -> slot.
#[derive(Debug, Clone)]
pub struct FieldMap {
    rules: Vec<Rule>,
    by_key: FxHashMap<String, Slot>,
    ts_is_end: bool,
}

/// The values offered for one record, best alternative per rule.
pub struct Fill<'a> {
    chosen: Vec<Option<(u16, Cow<'a, str>)>>,
}

impl<'a> Fill<'a> {
    pub fn offer(&mut self, slot: Slot, value: Cow<'a, str>) {
        if is_missing(&value) {
            return;
        }
        let c = &mut self.chosen[slot.rule as usize];
        if c.as_ref().is_none_or(|(r, _)| slot.rank < *r) {
            *c = Some((slot.rank, value));
        }
    }
}

fn unit_factor(unit: Option<&str>, target: Target) -> Result<f64> {
    let default = match target {
        Target::DurationMs | Target::UpstreamDurationMs => "ms",
        _ => return Ok(1.0),
    };
    Ok(match unit.unwrap_or(default) {
        "s" => 1000.0,
        "ms" => 1.0,
        "us" | "µs" => 0.001,
        "ns" => 0.000_001,
        other => bail!("unknown unit {other:?} (use s, ms, us or ns)"),
    })
}

impl FieldMap {
    /// `defaults` are mappings implied by the format (nginx variables); the
    /// definition's own `[fields]` come first and win.
    pub fn compile(def: &Definition, defaults: &[(&str, FieldOptions)]) -> Result<FieldMap> {
        let mut rules = Vec::new();
        let mut by_key: FxHashMap<String, Slot> = FxHashMap::default();
        let own = def.fields.iter().map(|(k, v)| (k.as_str(), v.options()));
        let all: Vec<(&str, FieldOptions)> = own
            .chain(defaults.iter().map(|(k, o)| (*k, o.clone())))
            .collect();
        for (name, opts) in all {
            let Some(target) = Target::from_name(name) else {
                bail!(
                    "unknown event field {name:?} in [fields]; known: {}",
                    Target::ALL
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let idx = rules.len();
            rules.push(Rule {
                target,
                unit_factor: unit_factor(opts.unit.as_deref(), target)?,
                time: opts
                    .time
                    .as_deref()
                    .map(TimeFormat::from_spec)
                    .unwrap_or(TimeFormat::Auto),
                ignore: opts.ignore.clone(),
                ok: opts
                    .ok_pattern
                    .as_deref()
                    .map(regex::Regex::new)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("field {name:?}: ok_pattern: {e}"))?,
                prefix: opts.prefix.clone(),
            });
            for (rank, key) in opts.from.iter().enumerate() {
                // The first definition of a key wins: user fields before defaults.
                by_key.entry(key.clone()).or_insert(Slot {
                    rule: idx as u16,
                    rank: rank as u16,
                });
            }
        }
        Ok(FieldMap {
            rules,
            by_key,
            ts_is_end: def.ts_is_end,
        })
    }

    pub fn slot(&self, key: &str) -> Option<Slot> {
        self.by_key.get(key).copied()
    }

    pub fn start<'a>(&self) -> Fill<'a> {
        Fill {
            chosen: vec![None; self.rules.len()],
        }
    }

    /// Offers a value by key; a key with no use is kept as an attribute.
    pub fn offer_key<'a>(
        &self,
        fill: &mut Fill<'a>,
        key: &str,
        value: Cow<'a, str>,
        ev: &mut Event,
    ) {
        match self.slot(key) {
            Some(slot) => fill.offer(slot, value),
            None if !is_missing(&value) => ev
                .attributes
                .push((Cow::Owned(key.to_string()), value.into_owned())),
            None => {}
        }
    }

    /// Builds an event from the record's fields. Values for which the mapping
    /// has no use are kept as attributes.
    pub fn apply<'a, I>(&self, fields: I, ev: &mut Event) -> Result<(), String>
    where
        I: IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    {
        let mut fill = self.start();
        for (key, value) in fields {
            self.offer_key(&mut fill, &key, value, ev);
        }
        self.finish(fill, ev)
    }

    /// Converts the chosen values into event fields.
    pub fn finish(&self, fill: Fill<'_>, ev: &mut Event) -> Result<(), String> {
        // Several rules may fill one field (the user's first, then the format's
        // defaults): the first that has a value wins.
        let mut filled = 0u64;
        for (rule, value) in self.rules.iter().zip(fill.chosen) {
            let bit = 1u64 << (rule.target as u32);
            if let Some((_, v)) = value {
                // A value that means "nothing to report" counts as absent.
                let v = v.trim();
                if rule.ignore.iter().any(|i| i == v)
                    || rule.ok.as_ref().is_some_and(|re| re.is_match(v))
                {
                    continue;
                }
                if filled & bit == 0 {
                    set(rule, v, ev)?;
                    filled |= bit;
                }
            }
        }
        if ev.trace_id.is_none() {
            // Trace context in a field no definition mapped: any header spelling.
            let found = ev
                .attributes
                .iter()
                .find_map(|(k, v)| ids::trace_context(k, v));
            if let Some((trace, parent)) = found {
                ev.trace_id = Some(trace.into());
                if ev.parent_span_id.is_none() {
                    ev.parent_span_id = parent.map(Text::from);
                }
            }
        }
        if self.ts_is_end {
            if let (Some(ts), Some(d)) = (ev.ts, ev.duration_ms) {
                ev.ts = Some(ts - (d * 1_000_000.0) as i64);
            }
        }
        Ok(())
    }
}

/// `-` is every gateway's "no value" (FORMATS.md §0).
pub fn is_missing(v: &str) -> bool {
    let v = v.trim();
    v.is_empty() || v == "-" || v == "null"
}

/// Sum of the numbers in a multi-valued nginx field (`0.004, 0.010 : 0.5`):
/// the total time spent on upstream tries.
fn sum_numbers(v: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for part in v.split([',', ':', ' ']) {
        let part = part.trim();
        if part.is_empty() || part == "-" {
            continue;
        }
        let n: f64 = part.trim_end_matches("ms").parse().ok()?;
        total += n;
        any = true;
    }
    any.then_some(total)
}

fn set(rule: &Rule, v: &str, ev: &mut Event) -> Result<(), String> {
    let v = v.trim();
    let s = || Some(Text::from(v));
    match rule.target {
        Target::Ts => {
            ev.ts = Some(
                rule.time
                    .parse(v)
                    .ok_or_else(|| format!("cannot read time {v:?}"))?,
            )
        }
        Target::Service => ev.service = s(),
        Target::RequestId => ev.request_id = s(),
        Target::CorrelationId => ev.correlation_id = s(),
        Target::TraceId => ev.trace_id = s(),
        Target::SpanId => ev.span_id = s(),
        Target::ParentSpanId => ev.parent_span_id = s(),
        Target::Method => ev.method = s(),
        Target::Host => ev.host = s(),
        Target::Path => ev.path = s(),
        Target::Route => ev.route = s(),
        Target::Status => {
            ev.status = Some(
                v.parse::<u16>()
                    .map_err(|_| format!("status {v:?} is not a number"))?,
            )
        }
        Target::UpstreamStatus => ev.upstream_status = s(),
        Target::UpstreamAddr => ev.upstream_addr = s(),
        Target::DurationMs => ev.duration_ms = sum_numbers(v).map(|n| n * rule.unit_factor),
        Target::UpstreamDurationMs => {
            ev.upstream_duration_ms = sum_numbers(v).map(|n| n * rule.unit_factor)
        }
        Target::BytesIn => ev.bytes_in = v.parse().ok(),
        Target::BytesOut => ev.bytes_out = v.parse().ok(),
        Target::ClientIp => ev.client_ip = s(),
        Target::Consumer => ev.consumer = s(),
        Target::Level => ev.level = Some(v.to_ascii_lowercase().into()),
        Target::Message => ev.message = s(),
        Target::GatewayError => {
            ev.gateway_error = Some(match &rule.prefix {
                Some(p) => format!("{p}{v}").into(),
                None => v.into(),
            });
        }
        Target::Request => {
            let mut parts = v.splitn(3, ' ');
            let method = parts.next().unwrap_or_default();
            if let Some(uri) = parts.next() {
                ev.method = Some(method.into());
                set_uri(uri, ev);
            } else {
                // nginx logs garbage request lines as they came ("\x16\x03...").
                ev.attributes
                    .push((Cow::Borrowed("request"), v.to_string()));
            }
        }
        Target::Uri => set_uri(v, ev),
        Target::B3 | Target::Xray | Target::CloudTrace => {
            let parsed = match rule.target {
                Target::B3 => ids::parse_b3(v),
                Target::Xray => ids::parse_xray(v),
                _ => ids::parse_cloud_trace(v),
            };
            match parsed {
                Some((trace, span)) => {
                    ev.trace_id.get_or_insert(trace.into());
                    if let Some(s) = span {
                        ev.parent_span_id.get_or_insert(s.into());
                    }
                }
                None => ev
                    .attributes
                    .push((Cow::Borrowed("unparsed_trace_context"), v.to_string())),
            }
        }
        Target::Traceparent => match ids::parse_traceparent(v) {
            Some((trace, parent)) => {
                ev.trace_id.get_or_insert(trace.into());
                ev.parent_span_id.get_or_insert(parent.into());
            }
            None => ev
                .attributes
                .push((Cow::Borrowed("traceparent"), v.to_string())),
        },
    }
    Ok(())
}

fn set_uri(uri: &str, ev: &mut Event) {
    // Full URLs (`http://host/p?q`) keep only the path.
    let without_scheme = match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            let slash = rest.find('/').unwrap_or(rest.len());
            if ev.host.is_none() && slash > 0 {
                ev.host = Some(rest[..slash].into());
            }
            &rest[slash..]
        }
        None => uri,
    };
    let (path, query) = match without_scheme.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (without_scheme, None),
    };
    ev.path = Some(if path.is_empty() { "/" } else { path }.into());
    if let Some(q) = query {
        ev.attributes.push((Cow::Borrowed("query"), q.to_string()));
    }
}
