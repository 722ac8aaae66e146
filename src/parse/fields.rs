//! Mapping of a parsed record (flat key -> text) onto the event schema, with
//! the unit and missing-value conventions of docs/FORMATS.md §0 applied in one place.

use super::definition::{Definition, FieldOptions};
use crate::event::ids;
use crate::event::time::TimeFormat;
use crate::event::{value_text, Event, FieldValue, Kind, Text, FIELDS};
use anyhow::{bail, Result};
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// What a definition's field maps to: the timestamp, a schema field, or a
/// composite input that is split into several fields (`request`, `traceparent`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Ts,
    /// A field of [`FIELDS`], by index.
    Field(u8),
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

/// The composite inputs, by the names definitions use.
const COMPOSITES: &[(&str, Target)] = &[
    ("request", Target::Request),
    ("traceparent", Target::Traceparent),
    ("b3", Target::B3),
    ("xray", Target::Xray),
    ("cloud_trace", Target::CloudTrace),
    ("uri", Target::Uri),
];

impl Target {
    pub fn from_name(name: &str) -> Option<Target> {
        if name == "ts" {
            return Some(Target::Ts);
        }
        if let Some(i) = FIELDS.iter().position(|f| f.name == name) {
            return Some(Target::Field(i as u8));
        }
        COMPOSITES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Every name a definition may map to.
    pub fn names() -> Vec<&'static str> {
        std::iter::once("ts")
            .chain(FIELDS.iter().map(|f| f.name))
            .chain(COMPOSITES.iter().map(|(n, _)| *n))
            .collect()
    }

    /// A distinct bit per target, for "already filled".
    fn bit(self) -> u64 {
        let n = match self {
            Target::Ts => 0,
            Target::Field(i) => 1 + i as u32,
            other => {
                1 + FIELDS.len() as u32
                    + COMPOSITES
                        .iter()
                        .position(|(_, t)| *t == other)
                        .unwrap_or(0) as u32
            }
        };
        1u64 << n
    }

    fn kind(self) -> Option<Kind> {
        match self {
            Target::Field(i) => Some(FIELDS[i as usize].kind),
            _ => None,
        }
    }
}

const _: () = assert!(
    1 + FIELDS.len() + COMPOSITES.len() <= 64,
    "Target::bit needs a wider mask"
);

/// One compiled field rule.
#[derive(Debug, Clone)]
struct Rule {
    target: Target,
    /// `target.bit()`, once: the per-line loop only tests it.
    bit: u64,
    unit_factor: f64,
    time: TimeFormat,
    ignore: Vec<String>,
    ok: Option<regex::Regex>,
    prefix: Option<String>,
    ok_if_status: Option<regex::Regex>,
    /// The level scale of numbers in this field (`pino`, `syslog`, `otel`).
    scale: Option<String>,
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
    /// Attributes that may hold a request id among other text.
    ids_in: Vec<String>,
}

/// The attribute that keeps words a text format left after its last field.
pub const TAIL_ATTR: &str = "tail";

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
    if target.kind() != Some(Kind::Millis) {
        return Ok(1.0);
    }
    let default = "ms";
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
                    Target::names().join(", ")
                );
            };
            let idx = rules.len();
            rules.push(Rule {
                target,
                bit: target.bit(),
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
                ok_if_status: opts
                    .ok_if_status
                    .as_deref()
                    .map(regex::Regex::new)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("field {name:?}: ok_if_status: {e}"))?,
                scale: match opts.scale.as_deref() {
                    None => None,
                    Some(s @ ("pino" | "syslog" | "otel")) => Some(s.to_string()),
                    Some(other) => {
                        bail!("field {name:?}: scale {other:?} is not pino, syslog or otel")
                    }
                },
            });
            for (rank, key) in opts.from.iter().enumerate() {
                // The first definition of a key wins: user fields before defaults.
                by_key.entry(key.clone()).or_insert(Slot {
                    rule: idx as u16,
                    rank: rank as u16,
                });
            }
        }
        let mut ids_in = def.ids_in.clone();
        ids_in.push(TAIL_ATTR.to_string());
        Ok(FieldMap {
            rules,
            by_key,
            ts_is_end: def.ts_is_end,
            ids_in,
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
            None if !is_missing(&value) => {
                ev.attributes.push((Text::from(key), value.into_owned()))
            }
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
            let bit = rule.bit;
            if let Some((_, v)) = value {
                // A value that means "nothing to report" counts as absent.
                let v = trim(&v);
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
        // Values that are no failure at this status become attributes.
        for rule in self.rules.iter().filter(|r| r.ok_if_status.is_some()) {
            let (Target::Field(i), Some(re)) = (rule.target, &rule.ok_if_status) else {
                continue;
            };
            let field = &FIELDS[i as usize];
            if (field.get)(ev).is_none() {
                continue;
            }
            let status = ev.status.map(|s| s.to_string()).unwrap_or_default();
            if re.is_match(&status) {
                if let Some(v) = (field.get)(ev).map(|v| value_text(v).into_owned()) {
                    (field.clear)(ev);
                    ev.attributes.push((Text::from(field.name), v));
                }
            }
        }
        if let (None, Some(stack)) = (&ev.error_type, &ev.error_stack) {
            // A stack trace names its error on its last `Type: message` line, as
            // folded lines are read: Python's raised exception (a traceback
            // ends with it), Java's root `Caused by:`, or the only one
            // (`Exception.ToString()`, Node's `err.stack`) on the first line.
            if let Some((ty, msg)) = stack.lines().rev().find_map(exception_line) {
                let (ty, msg) = (Text::from(ty), Text::from(msg));
                ev.error_type = Some(ty);
                ev.error_message.get_or_insert(msg);
            }
        }
        if ev.request_id.is_none() {
            // A request id among other text: a captured-header block, words
            // left after the format's last field (Apache `%{UNIQUE_ID}e`).
            let found = self
                .ids_in
                .iter()
                .find_map(|k| ev.attr(k).and_then(ids::find_id));
            if let Some(id) = found {
                ev.request_id = Some(Text::from(id));
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

/// `ValueError: amount must be > 0` or `java.net.ConnectException: Connection
/// refused` at the start of a stack-trace line: the exception's type and
/// message.
pub fn exception_line(line: &str) -> Option<(&str, &str)> {
    let line = line
        .trim_start()
        .strip_prefix("Caused by: ")
        .unwrap_or(line.trim_start());
    let (ty, msg) = line.split_once(": ")?;
    // .NET 5–7's JSON console writes a stack trace on one line: frames follow
    // the message after four spaces.
    let msg = msg.split_once("    at ").map_or(msg, |(m, _)| m);
    let ident = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '$');
    let named = ty.ends_with("Error") || ty.ends_with("Exception") || ty.ends_with("Exit");
    (named && !ty.is_empty() && ty.chars().all(ident)).then_some((ty, msg))
}

/// `str::trim`, without its Unicode scan for the common value that has no
/// space at either end (every value of every line passes here several times).
#[inline]
pub fn trim(v: &str) -> &str {
    match (v.as_bytes().first(), v.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => v,
        _ => v.trim(),
    }
}

/// `-` is every gateway's "no value" (docs/FORMATS.md §0).
pub fn is_missing(v: &str) -> bool {
    let v = trim(v);
    v.is_empty() || v == "-" || v == "null"
}

/// Sum of the numbers in a multi-valued nginx field (`0.004, 0.010 : 0.5`):
/// the total time spent on upstream tries.
fn sum_numbers(v: &str) -> Option<f64> {
    // One number, the common case, skips the split.
    if let Ok(n) = v.parse::<f64>() {
        return Some(n);
    }
    let mut total = 0.0;
    let mut any = false;
    for part in v.split([',', ':', ' ']) {
        let part = trim(part);
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
    let v = trim(v);
    match rule.target {
        Target::Ts => {
            ev.ts = Some(
                rule.time
                    .parse(v)
                    .ok_or_else(|| format!("cannot read time {v:?}"))?,
            );
            ev.ts_precision_ns = crate::event::time::precision_of(v);
        }
        Target::Field(i) => {
            let field = &FIELDS[i as usize];
            // A level number on the logger's own scale becomes its word.
            let scaled = rule
                .scale
                .as_deref()
                .and_then(|s| crate::event::Level::from_number(s, v));
            let v = scaled.map_or(v, |l| l.as_str());
            let fits = match (field.kind, &rule.prefix) {
                (Kind::Millis, _) => sum_numbers(v)
                    .is_some_and(|n| (field.set)(ev, FieldValue::Millis(n * rule.unit_factor))),
                (_, Some(p)) => (field.set)(ev, FieldValue::Text(&format!("{p}{v}"))),
                (_, None) => (field.set)(ev, FieldValue::Text(v)),
            };
            // A value that does not fit its field (`status=Pending`, a level
            // word no logger uses) stays an attribute; the event survives.
            if !fits {
                ev.attributes.push((Text::from(field.name), v.to_string()));
            }
        }
        Target::Request => {
            let mut parts = v.splitn(3, ' ');
            let method = parts.next().unwrap_or_default();
            if let Some(uri) = parts.next() {
                ev.method = Some(method.into());
                set_uri(uri, ev);
            } else {
                // nginx logs garbage request lines as they came ("\x16\x03...").
                ev.attributes.push((Text::from("request"), v.to_string()));
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
                    .push((Text::from("unparsed_trace_context"), v.to_string())),
            }
        }
        Target::Traceparent => match ids::parse_traceparent(v) {
            Some((trace, parent)) => {
                ev.trace_id.get_or_insert(trace.into());
                ev.parent_span_id.get_or_insert(parent.into());
            }
            None => ev
                .attributes
                .push((Text::from("traceparent"), v.to_string())),
        },
    }
    Ok(())
}

fn set_uri(uri: &str, ev: &mut Event) {
    // Full URLs (`http://host/p?q`) keep only the path; a path (`/p?next=http://x`)
    // is never one.
    let scheme = if uri.starts_with('/') {
        None
    } else {
        uri.find("://")
    };
    let without_scheme = match scheme {
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
        ev.attributes.push((Text::from("query"), q.to_string()));
    }
}
