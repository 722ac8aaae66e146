//! The one event schema every parser and codec produces (DESIGN.md "Event").
//!
//! Fields a user filters or joins on are typed; everything else a source said is
//! kept in `attributes` so nothing is dropped on the way to the timeline.

use serde::Serialize;
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
    pub service: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub parent_span_id: Option<String>,
    pub method: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub route: Option<String>,
    pub status: Option<u16>,
    /// Kept as written: nginx writes `502, 200` for a retried request.
    pub upstream_status: Option<String>,
    pub upstream_addr: Option<String>,
    pub duration_ms: Option<f64>,
    pub upstream_duration_ms: Option<f64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub client_ip: Option<String>,
    pub consumer: Option<String>,
    pub level: Option<String>,
    pub message: Option<String>,
    /// The gateway's own failure indicator (Envoy flags, `limit_req` status, ...).
    pub gateway_error: Option<String>,
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

    /// An event field rendered as text, for sample expectations and templates.
    pub fn field_text(&self, field: &str) -> Option<String> {
        let ev = self;
        use crate::parse::time::format_ts;
        let num = |v: Option<f64>| v.map(|v| format!("{}", (v * 1000.0).round() / 1000.0));
        Some(match field {
            "ts" => format_ts(ev.ts?),
            "source" => ev.source().to_string(),
            "service" => ev.service.clone()?,
            "request_id" => ev.request_id.clone()?,
            "correlation_id" => ev.correlation_id.clone()?,
            "trace_id" => ev.trace_id.clone()?,
            "span_id" => ev.span_id.clone()?,
            "parent_span_id" => ev.parent_span_id.clone()?,
            "method" => ev.method.clone()?,
            "host" => ev.host.clone()?,
            "path" => ev.path.clone()?,
            "route" => ev.route.clone()?,
            "status" => ev.status?.to_string(),
            "upstream_status" => ev.upstream_status.clone()?,
            "upstream_addr" => ev.upstream_addr.clone()?,
            "duration_ms" => num(ev.duration_ms)?,
            "upstream_duration_ms" => num(ev.upstream_duration_ms)?,
            "bytes_in" => ev.bytes_in?.to_string(),
            "bytes_out" => ev.bytes_out?.to_string(),
            "client_ip" => ev.client_ip.clone()?,
            "consumer" => ev.consumer.clone()?,
            "level" => ev.level.clone()?,
            "message" => ev.message.clone()?,
            "gateway_error" => ev.gateway_error.clone()?,
            "span.name" => ev.span.as_ref()?.name.clone(),
            "span.kind" => ev.span.as_ref()?.kind.as_str().to_string(),
            "span.status" => ev.span.as_ref()?.status_code.to_string(),
            other => ev.attr(other.strip_prefix("attr.")?)?.to_string(),
        })
    }
}
