//! OTLP/JSON codec: one `ExportTraceServiceRequest` / `ExportLogsServiceRequest`
//! per line (Collector file exporter) or one pretty-printed document.
//!
//! Decoding uses `opentelemetry-proto`'s serde model (hex ids, 64-bit integers as
//! strings or numbers, unknown fields ignored), the same model the live receiver
//! uses for OTLP/HTTP-JSON. Attribute names are mapped onto the event with the
//! definition's `[fields]`, like any other format.

use super::fields::FieldMap;
use crate::event::{
    Event, Level, Origin, Source, SpanException, SpanFields, SpanKind, SpanStatus, Text,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::borrow::Cow;
use std::sync::Arc;

/// Which OTLP signal a document carries, by its top-level key.
pub fn signal_of(text: &str) -> Option<Source> {
    // The first 64 bytes, cut at a character boundary (a mutated line may
    // hold a multi-byte character there).
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    if head.contains("\"resourceSpans\"") {
        Some(Source::Span)
    } else if head.contains("\"resourceLogs\"") {
        Some(Source::OtelLog)
    } else {
        None
    }
}

pub fn any_to_string(v: &AnyValue) -> Option<String> {
    any_text(v).map(Cow::into_owned)
}

/// An attribute value as text, borrowed when it is a string (most are).
fn any_text(v: &AnyValue) -> Option<Cow<'_, str>> {
    if let Some(any_value::Value::StringValue(s)) = &v.value {
        return Some(Cow::Borrowed(s));
    }
    Some(Cow::Owned(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BytesValue(b) => hex(b),
        any_value::Value::ArrayValue(a) => {
            let items: Vec<String> = a.values.iter().filter_map(any_to_string).collect();
            // A one-element array (HTTP semconv header values) reads as its element.
            if items.len() == 1 {
                items.into_iter().next().unwrap_or_default()
            } else {
                serde_json::to_string(&items).unwrap_or_default()
            }
        }
        // A reference into a dictionary this codec does not receive.
        any_value::Value::StringValueStrindex(i) => format!("(string #{i})"),
        any_value::Value::KvlistValue(kv) => {
            let map: serde_json::Map<String, serde_json::Value> = kv
                .values
                .iter()
                .filter_map(|kv| {
                    let v = kv.value.as_ref().and_then(any_to_string)?;
                    Some((kv.key.clone(), serde_json::Value::String(v)))
                })
                .collect();
            serde_json::Value::Object(map).to_string()
        }
    }))
}

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        s.push(DIGITS[(byte >> 4) as usize] as char);
        s.push(DIGITS[(byte & 15) as usize] as char);
    }
    s
}

fn id(b: &[u8]) -> Option<Text> {
    (!b.is_empty() && b.iter().any(|&x| x != 0)).then(|| hex(b).into())
}

/// A resource's attributes as `resource.*` keys, read once for all its spans
/// or records.
fn resource_pairs(resource: Option<&Resource>) -> Vec<(String, Cow<'_, str>)> {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .filter_map(|kv| {
            let v = kv.value.as_ref().and_then(any_text)?;
            Some((format!("resource.{}", kv.key), v))
        })
        .collect()
}

fn record<'a>(
    resource: &'a [(String, Cow<'a, str>)],
    attrs: &'a [KeyValue],
) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> {
    let resource = resource
        .iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_ref())));
    let own = attrs.iter().filter_map(|kv| {
        let v = kv.value.as_ref().and_then(any_text)?;
        Some((Cow::Borrowed(kv.key.as_str()), v))
    });
    resource.chain(own)
}

fn nonzero(ns: u64) -> Option<i64> {
    // Past 2262 (beyond i64 nanoseconds) is no time either.
    i64::try_from(ns).ok().filter(|&n| n != 0)
}

/// Reads an OTLP/JSON message. Protobuf's JSON mapping omits empty repeated
/// fields, so an empty array or key-value list attribute is `{"arrayValue":{}}`
/// (the OpenTelemetry JS SDK writes exactly that); `opentelemetry-proto`'s serde
/// model wants `values`. Only a message that fails for that reason pays for
/// the repair: the document is read as JSON, the empty lists filled in, then
/// decoded again.
pub fn from_json<M: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<M, serde_json::Error> {
    // Text already known to be UTF-8 (a line) is read as text: serde_json then
    // does not check every string again.
    let first = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    match first {
        Err(e) if e.to_string().contains("missing field `values`") => {
            let mut doc: serde_json::Value = serde_json::from_slice(bytes)?;
            fill_empty_lists(&mut doc);
            serde_json::from_value(doc)
        }
        other => other,
    }
}

fn fill_empty_lists(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if let ("arrayValue" | "kvlistValue", serde_json::Value::Object(inner)) =
                    (k.as_str(), &mut *child)
                {
                    inner
                        .entry("values")
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                }
                fill_empty_lists(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fill_empty_lists),
        _ => {}
    }
}

/// Decodes one JSON text and appends its spans or log records as events.
pub fn decode(
    text: &str,
    signal: Source,
    fields: &FieldMap,
    format: &str,
    file: &Arc<str>,
    line: u64,
    out: &mut Vec<Event>,
) -> Result<(), String> {
    let at = Site {
        fields,
        format,
        file,
        line,
    };
    match signal {
        Source::Span => {
            let req: ExportTraceServiceRequest =
                from_json(text.as_bytes()).map_err(|e| format!("invalid OTLP/JSON traces: {e}"))?;
            trace_events(&req, &at, out)
        }
        _ => {
            let req: ExportLogsServiceRequest =
                from_json(text.as_bytes()).map_err(|e| format!("invalid OTLP/JSON logs: {e}"))?;
            log_events(&req, &at, out)
        }
    }
}

/// Where decoded items come from and how their attributes map onto events.
pub struct Site<'a> {
    pub fields: &'a FieldMap,
    pub format: &'a str,
    /// The file, or the receiver (`otlp-grpc`, `otlp-http`).
    pub file: &'a Arc<str>,
    /// The line, or the receiver's message number.
    pub line: u64,
}

/// Appends one event per span (the same for OTLP/JSON files and the receiver's
/// protobuf or JSON messages).
pub fn trace_events(
    req: &ExportTraceServiceRequest,
    at: &Site<'_>,
    out: &mut Vec<Event>,
) -> Result<(), String> {
    let (fields, format, file, line) = (at.fields, at.format, at.file, at.line);
    for rs in &req.resource_spans {
        let resource = resource_pairs(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let mut ev = Event {
                    source: Some(Source::Span),
                    format: Text::from(format),
                    ..Default::default()
                };
                fields.apply(record(&resource, &span.attributes), &mut ev)?;
                ev.origin = Some(Origin {
                    file: file.clone(),
                    line,
                    item: Some(hex(&span.span_id)),
                });
                ev.trace_id = id(&span.trace_id);
                ev.span_id = id(&span.span_id);
                ev.parent_span_id = id(&span.parent_span_id);
                let start = nonzero(span.start_time_unix_nano);
                let end = nonzero(span.end_time_unix_nano);
                ev.ts = start;
                if let (Some(s), Some(e)) = (start, end) {
                    ev.duration_ms = Some((e - s) as f64 / 1e6);
                }
                let status = span.status.as_ref();
                let code = match status.map(|s| s.code).unwrap_or(0) {
                    1 => SpanStatus::Ok,
                    2 => SpanStatus::Error,
                    _ => SpanStatus::Unset,
                };
                let exceptions: Vec<SpanException> = span
                    .events
                    .iter()
                    .filter(|e| e.name == "exception")
                    .map(|e| {
                        let get = |k: &str| {
                            e.attributes
                                .iter()
                                .find(|kv| kv.key == k)
                                .and_then(|kv| kv.value.as_ref())
                                .and_then(any_to_string)
                        };
                        SpanException {
                            r#type: get("exception.type"),
                            message: get("exception.message"),
                        }
                    })
                    .collect();
                let status_message = status.map(|s| s.message.clone()).filter(|m| !m.is_empty());
                ev.adopt_exception(exceptions.first());
                if code == SpanStatus::Error {
                    ev.level = Some(Level::Error);
                }
                // The message of a span is what went wrong, if anything did.
                ev.message = Some(Text::from(match (exceptions.first(), &status_message) {
                    (Some(SpanException { r#type, message }), _) => format!(
                        "{}: {}",
                        r#type.as_deref().unwrap_or("exception"),
                        message.as_deref().unwrap_or("")
                    ),
                    (None, Some(m)) => format!("{}: {m}", span.name),
                    (None, None) => span.name.clone(),
                }));
                ev.span = Some(Box::new(SpanFields {
                    name: span.name.clone(),
                    kind: SpanKind::from_otlp(span.kind),
                    status: code,
                    status_message,
                    end_ts: end,
                    exceptions,
                }));
                out.push(ev);
            }
        }
    }
    Ok(())
}

/// Appends one event per log record.
pub fn log_events(
    req: &ExportLogsServiceRequest,
    at: &Site<'_>,
    out: &mut Vec<Event>,
) -> Result<(), String> {
    let (fields, format, file, line) = (at.fields, at.format, at.file, at.line);
    let mut n = 0usize;
    for rl in &req.resource_logs {
        let resource = resource_pairs(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                let mut ev = Event {
                    source: Some(Source::OtelLog),
                    format: Text::from(format),
                    ..Default::default()
                };
                fields.apply(record(&resource, &rec.attributes), &mut ev)?;
                ev.origin = Some(Origin {
                    file: file.clone(),
                    line,
                    item: Some(format!("log{n}")),
                });
                n += 1;
                ev.ts =
                    nonzero(rec.time_unix_nano).or_else(|| nonzero(rec.observed_time_unix_nano));
                ev.trace_id = id(&rec.trace_id).or(ev.trace_id);
                ev.span_id = id(&rec.span_id).or(ev.span_id);
                // The number is the normalised severity; the text is what the
                // logger called it (and the only one some exporters fill).
                ev.level = Level::from_otel_number(rec.severity_number)
                    .or_else(|| Level::from_spelling(&rec.severity_text));
                if ev.level.is_none() && !rec.severity_text.is_empty() {
                    ev.attributes
                        .push((Text::from("severity_text"), rec.severity_text.clone()));
                }
                ev.message = rec.body.as_ref().and_then(any_to_string).map(Text::from);
                out.push(ev);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty array attribute as protobuf's JSON mapping writes it (the
    /// empty repeated field omitted), as the OpenTelemetry JS SDK exports it.
    #[test]
    fn empty_array_and_kvlist_values_are_valid_otlp_json() {
        let doc = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}},{"key":"process.command_args","value":{"arrayValue":{}}}]},"scopeLogs":[{"scope":{"name":"x"},"logRecords":[{"timeUnixNano":"1796045879175000000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"jwt expired"},"attributes":[{"key":"empty","value":{"kvlistValue":{}}}],"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"}]}]}]}"#;
        assert!(
            serde_json::from_str::<ExportLogsServiceRequest>(doc).is_err(),
            "the serde model alone refuses it"
        );
        let req: ExportLogsServiceRequest = from_json(doc.as_bytes()).expect("valid OTLP/JSON");
        assert_eq!(req.resource_logs[0].scope_logs[0].log_records.len(), 1);
    }
}
