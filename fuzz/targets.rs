//! What each fuzz target does with its input, shared by the libFuzzer
//! binaries (`fuzz/fuzz_targets/`, run by `scripts/fuzz` on nightly) and by the
//! stable test that replays the corpus (`tests/it/fuzz_replay.rs`). Every
//! function must return, whatever the bytes: a panic is a finding.

use std::sync::{Arc, OnceLock};
use tracejoin::correlate::{build_request, keys};
use tracejoin::event::time::TimeFormat;
use tracejoin::event::Event;
use tracejoin::parse::format_string::{self, Dialect};
use tracejoin::parse::{Format, Registry};
use tracejoin::rules::Engine;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry::load(None).expect("built-in formats"))
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::load(None).expect("built-in rules"))
}

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// One line through every built-in definition: regex, format-string
/// tokenizers, JSON, logfmt, OTLP/JSON.
pub fn parse_line(data: &[u8]) {
    let line = text(data);
    let file: Arc<str> = Arc::from("fuzz.log");
    for f in &registry().formats {
        let mut out = Vec::new();
        let _ = f.parse(&line, &file, 1, &mut out);
    }
}

/// Many lines: format detection, wrappers (syslog, CRI, docker), continuation
/// lines folded, then the events labelled as one request.
pub fn parse_lines(data: &[u8]) {
    let lines: Vec<(u64, String)> = text(data)
        .lines()
        .take(64)
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.to_string()))
        .collect();
    let file: Arc<str> = Arc::from("fuzz.log");
    let (format, wrapping) = tracejoin::parse::detect_wrapped(registry(), &lines, &file);
    let Some(format) = format else { return };
    let parsed = tracejoin::parse::parse_chunk(&tracejoin::parse::Chunk::from_lines(
        format.clone(),
        &wrapping,
        file,
        &lines,
    ));
    label(parsed.events);
}

/// Events joined into one request and labelled by the default rules (CEL
/// over whatever values the events hold).
fn label(events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let keys = events.iter().flat_map(keys).collect();
    let req = build_request(events, keys);
    let _ = engine().evaluate(&engine().evaluator(), &req);
}

/// OTLP protobuf, both signals, as the receivers decode them.
pub fn otlp_protobuf(data: &[u8]) {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let origin: Arc<str> = Arc::from("fuzz");
    let mut events = Vec::new();
    if let Ok(req) = ExportTraceServiceRequest::decode(data) {
        let f = registry().get("otlp_traces").expect("built-in");
        let _ = tracejoin::parse::otlp::trace_events(&req, &f.otlp_site(&origin, 1), &mut events);
    }
    if let Ok(req) = ExportLogsServiceRequest::decode(data) {
        let f = registry().get("otlp_logs").expect("built-in");
        let _ = tracejoin::parse::otlp::log_events(&req, &f.otlp_site(&origin, 1), &mut events);
    }
    label(events);
}

/// A gateway's format string (the first byte picks the dialect), compiled as
/// `--log-format` would, then a line parsed with it.
pub fn format_string(data: &[u8]) {
    let (Some(&pick), rest) = (data.first(), data.get(1..).unwrap_or_default()) else {
        return;
    };
    let s = text(rest);
    let (fmt, line) = s.split_once('\n').unwrap_or((&s, ""));
    let (dialect, name) = match pick % 4 {
        0 => (Dialect::Nginx, "nginx"),
        1 => (Dialect::Apache, "apache"),
        2 => (Dialect::Haproxy, "haproxy"),
        _ => (Dialect::Envoy, "envoy"),
    };
    let _ = format_string::compile(dialect, fmt);
    if let Ok(f) = Format::pasted("fuzz", name, fmt) {
        let mut out = Vec::new();
        let _ = f.parse(line, &Arc::from("fuzz.log"), 1, &mut out);
    }
}

/// Timestamps in every format tracejoin reads.
pub fn time(data: &[u8]) {
    let s = text(data);
    for spec in [
        "iso",
        "clf",
        "epoch",
        "auto",
        "%d/%b/%Y %H:%M:%S",
        "%a %b %e %H:%M:%S %Y",
    ] {
        let _ = TimeFormat::from_spec(spec).parse(&s);
    }
    let _ = tracejoin::event::time::precision_of(&s);
}

/// A parser definition (TOML) loaded as `--parsers DIR` loads one: its
/// regexes compiled, its samples checked, then a line parsed with it.
pub fn definition(data: &[u8]) {
    let s = text(data);
    let (toml_text, line) = s.split_once("\n---\n").unwrap_or((&s, "x"));
    let Ok(def) = toml::from_str(toml_text) else {
        return;
    };
    if let Ok(f) = Format::compile(def, "fuzz".into()) {
        let mut out = Vec::new();
        let _ = f.parse(line, &Arc::from("fuzz.log"), 1, &mut out);
    }
}

/// A rule pack (TOML) loaded beside the default one, and its examples checked.
pub fn rule_pack(data: &[u8]) {
    let Ok(pack) = toml::from_str(&text(data)) else {
        return;
    };
    let default = tracejoin::rules::embedded::RULES
        .iter()
        .map(|(f, t)| (f.to_string(), toml::from_str(t).expect("built-in pack")))
        .collect::<Vec<_>>();
    let mut packs = default;
    packs.push(("fuzz.toml".to_string(), pack));
    if let Ok(engine) = Engine::from_packs(packs) {
        let _ = tracejoin::rules::check_examples(&engine);
    }
}

/// Hostile values in every field of a gateway line, a log line and a span,
/// labelled by the default rules.
pub fn field_values(data: &[u8]) {
    use tracejoin::event::{FieldValue, Source, FIELDS};
    let s = text(data);
    let mut parts = s.split('\u{1f}');
    let mut events = Vec::new();
    for source in [Source::Gateway, Source::Backend, Source::Span] {
        let mut ev = Event {
            source: Some(source),
            ts: Some(1_700_000_000_000_000_000),
            request_id: Some("fuzz-request".into()),
            ..Default::default()
        };
        for f in FIELDS {
            if let Some(v) = parts.next() {
                let _ = (f.set)(&mut ev, FieldValue::Text(v));
            }
        }
        events.push(ev);
    }
    label(events);
}

/// Bytes through the line reader, plain and (when they are gzip) inflated.
pub fn lines(data: &[u8]) {
    use std::io::BufReader;
    use tracejoin::ingest::{LineReader, ReadLine};
    let mut buf = Vec::new();
    let mut plain = LineReader::new(data, 256);
    while let Ok(l) = plain.next_line(&mut buf) {
        if matches!(l, ReadLine::Eof) {
            break;
        }
    }
    let gz = BufReader::new(flate2::read::GzDecoder::new(data));
    let mut inflated = LineReader::new(std::io::Read::take(gz, 1 << 20), 4096);
    while let Ok(l) = inflated.next_line(&mut buf) {
        if matches!(l, ReadLine::Eof) {
            break;
        }
    }
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target by name (the corpus folders are named after them).
pub const TARGETS: &[(&str, Target)] = &[
    ("parse_line", parse_line),
    ("parse_lines", parse_lines),
    ("otlp_protobuf", otlp_protobuf),
    ("format_string", format_string),
    ("time", time),
    ("definition", definition),
    ("rule_pack", rule_pack),
    ("field_values", field_values),
    ("lines", lines),
];
