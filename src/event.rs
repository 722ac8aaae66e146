//! The one event schema every parser and codec produces (DESIGN.md "Event").
//!
//! Fields a user filters or joins on are typed; everything else a source said is
//! kept in `attributes` so nothing is dropped on the way to the timeline.

use serde::Serialize;
/// Short text stored inline (methods, statuses, addresses, most paths): no
/// heap allocation for the common case on the per-line hot path.
pub type Text = compact_str::CompactString;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Which kind of system wrote the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Gateway,
    Backend,
    Span,
    OtelLog,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Gateway => "gateway",
            Source::Backend => "backend",
            Source::Span => "span",
            Source::OtelLog => "otel_log",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Some(match s {
            "gateway" => Source::Gateway,
            "backend" => Source::Backend,
            "span" => Source::Span,
            "otel_log" => Source::OtelLog,
            _ => return None,
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an event came from: `file:line` for log lines, `file:line#span` for a
/// span inside an OTLP batch line, so evidence can always be looked up again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u64,
    /// Span id (hex) or log record index inside a batch line.
    pub item: Option<String>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(item) = &self.item {
            write!(f, "#{item}")?;
        }
        Ok(())
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// OpenTelemetry span kind, as the integers of the OTLP enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn from_otlp(k: i32) -> SpanKind {
        match k {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// An exception recorded on a span (OTel `exception` event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanException {
    pub r#type: Option<String>,
    pub message: Option<String>,
}

/// Fields only spans have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanFields {
    pub name: String,
    pub kind: SpanKind,
    /// `unset`, `ok` or `error`.
    pub status_code: &'static str,
    pub status_message: Option<String>,
    pub end_ts: Option<i64>,
    pub exceptions: Vec<SpanException>,
}

/// One thing one system said about one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Event {
    /// Unix time in nanoseconds, UTC.
    pub ts: Option<i64>,
    pub source: Option<Source>,
    /// The definition's name (interned: formats are loaded once per process).
    pub format: &'static str,
    pub origin: Option<Origin>,
    pub service: Option<Text>,
    pub request_id: Option<Text>,
    pub correlation_id: Option<Text>,
    pub trace_id: Option<Text>,
    pub span_id: Option<Text>,
    pub parent_span_id: Option<Text>,
    pub method: Option<Text>,
    pub host: Option<Text>,
    pub path: Option<Text>,
    pub route: Option<Text>,
    pub status: Option<u16>,
    /// Kept as written: nginx writes `502, 200` for a retried request.
    pub upstream_status: Option<Text>,
    pub upstream_addr: Option<Text>,
    pub duration_ms: Option<f64>,
    pub upstream_duration_ms: Option<f64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub client_ip: Option<Text>,
    pub consumer: Option<Text>,
    pub level: Option<Text>,
    pub message: Option<Text>,
    /// The gateway's own failure indicator (Envoy flags, `limit_req` status, ...).
    pub gateway_error: Option<Text>,
    pub span: Option<Box<SpanFields>>,
    /// Names are shared `'static` strings for fields a definition knows, owned
    /// for keys met in the data (JSON): no atomic reference counts on the hot path.
    pub attributes: Vec<(Cow<'static, str>, String)>,
}

impl Event {
    pub fn source(&self) -> Source {
        self.source.unwrap_or(Source::Backend)
    }

    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this event says the request failed at its own level.
    pub fn is_error(&self) -> bool {
        if let Some(span) = &self.span {
            return span.status_code == "error";
        }
        matches!(
            self.level.as_deref().map(|l| l.to_ascii_lowercase()),
            Some(ref l) if l == "error" || l == "fatal" || l == "critical" || l == "err"
        )
    }

    /// A field as text, by the names parser samples, rule conditions (`e.span_name`)
    /// and explanation templates use; `None` when the event has no such value.
    /// Durations are rounded to the microsecond.
    pub fn field_text(&self, field: &str) -> Option<Cow<'_, str>> {
        use crate::parse::time::format_ts;
        let num =
            |v: Option<f64>| v.map(|v| Cow::Owned(format!("{}", (v * 1000.0).round() / 1000.0)));
        let span = self.span.as_deref();
        match field {
            "ts" => Some(Cow::Owned(format_ts(self.ts?))),
            "source" => self.source.map(|s| Cow::Borrowed(s.as_str())),
            "format" => Some(Cow::Borrowed(self.format)),
            "service" => text_of(&self.service),
            "request_id" => text_of(&self.request_id),
            "correlation_id" => text_of(&self.correlation_id),
            "trace_id" => text_of(&self.trace_id),
            "span_id" => text_of(&self.span_id),
            "parent_span_id" => text_of(&self.parent_span_id),
            "method" => text_of(&self.method),
            "host" => text_of(&self.host),
            "path" => text_of(&self.path),
            "route" => text_of(&self.route),
            "status" => self.status.map(|s| Cow::Owned(s.to_string())),
            "upstream_status" => text_of(&self.upstream_status),
            "upstream_addr" => text_of(&self.upstream_addr),
            "duration_ms" => num(self.duration_ms),
            "upstream_duration_ms" => num(self.upstream_duration_ms),
            "bytes_in" => self.bytes_in.map(|b| Cow::Owned(b.to_string())),
            "bytes_out" => self.bytes_out.map(|b| Cow::Owned(b.to_string())),
            "client_ip" => text_of(&self.client_ip),
            "consumer" => text_of(&self.consumer),
            "level" => text_of(&self.level),
            "message" => text_of(&self.message),
            "gateway_error" => text_of(&self.gateway_error),
            "span.name" | "span_name" => span.map(|s| Cow::Borrowed(s.name.as_str())),
            "span.kind" | "span_kind" => span.map(|s| Cow::Borrowed(s.kind.as_str())),
            "span.status" | "span_status" => span.map(|s| Cow::Borrowed(s.status_code)),
            "exception" => span.filter(|s| !s.exceptions.is_empty()).map(|s| {
                let all: Vec<String> = s
                    .exceptions
                    .iter()
                    .map(|x| {
                        format!(
                            "{}: {}",
                            x.r#type.as_deref().unwrap_or(""),
                            x.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                Cow::Owned(all.join("; "))
            }),
            "attributes" => Some(Cow::Owned(format!("{:?}", self.attributes))),
            other => self.attr(other.strip_prefix("attr.")?).map(Cow::Borrowed),
        }
    }
}

/// An optional text field, borrowed.
pub fn text_of(v: &Option<Text>) -> Option<Cow<'_, str>> {
    v.as_deref().map(Cow::Borrowed)
}
