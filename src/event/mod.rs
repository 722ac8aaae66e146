//! The one event schema every parser and codec produces (docs/CONTRACT.md "Event"),
//! with the identifiers and times it carries.
//!
//! Fields a user filters or joins on are typed and declared once, in
//! [`schema!`]: parsers, rule bindings and store columns are derived from
//! [`FIELDS`]. Everything else a source said is kept in `attributes`.

pub mod ids;
pub mod time;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Short text stored inline (methods, statuses, addresses, most paths): no
/// heap allocation for the common case on the per-line hot path.
pub type Text = compact_str::CompactString;

/// An enum written as fixed words: `as_str`, `FromStr` (exact words, error
/// naming the choices), `Display` and serde as those words.
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident { $( $(#[$vm:meta])* $var:ident = $text:literal, )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vm])* $var, )* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $text,)* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$var),)*
                    _ => Err(format!(
                        "{s:?} is not one of {}",
                        [$($text),*].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use text_enum;

text_enum! {
    /// Which kind of system wrote the event.
    pub enum Source {
        Gateway = "gateway",
        /// A gateway's own error or diagnostic log (nginx `error.log`, Apache's
        /// error log): no request id; joined by client, request line and time.
        GatewayLog = "gateway_log",
        Backend = "backend",
        Span = "span",
        OtelLog = "otel_log",
    }
}

text_enum! {
    /// OpenTelemetry span kind.
    pub enum SpanKind {
        Unspecified = "unspecified",
        Internal = "internal",
        Server = "server",
        Client = "client",
        Producer = "producer",
        Consumer = "consumer",
    }
}

impl SpanKind {
    /// From the integers of the OTLP enum.
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
}

text_enum! {
    /// OpenTelemetry span status code.
    pub enum SpanStatus {
        Unset = "unset",
        Ok = "ok",
        Error = "error",
    }
}

text_enum! {
    /// One severity scale for every logger, ordered.
    pub enum Level {
        Trace = "trace",
        Debug = "debug",
        Info = "info",
        Warn = "warn",
        Error = "error",
        Fatal = "fatal",
    }
}

impl Level {
    /// From the words and letters loggers write, any case: syslog's names
    /// (RFC 5424), Java's (`SEVERE`, `FINE`), .NET's (`Information`,
    /// `Critical`), Go's (`dpanic`, `panic`), glog's single letters. `None` for
    /// anything else, so the caller keeps the value as an attribute.
    pub fn from_spelling(s: &str) -> Option<Level> {
        let s = s.trim();
        let lower;
        let s = if s.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = s.to_ascii_lowercase();
            lower.as_str()
        } else {
            s
        };
        // Go slog's levels between the named ones: `ERROR+2`, `INFO-4`.
        let s = match s.rfind(['+', '-']) {
            Some(i)
                if i > 0 && s[i + 1..].bytes().all(|b| b.is_ascii_digit()) && i + 1 < s.len() =>
            {
                &s[..i]
            }
            _ => s,
        };
        Some(match s {
            "trace" | "trc" | "trce" | "finest" | "finer" | "verbose" | "vrb" | "t" | "v" => {
                Level::Trace
            }
            // Apache httpd's trace1..trace8.
            t if t.len() == 6 && t.starts_with("trace") && t.as_bytes()[5].is_ascii_digit() => {
                Level::Trace
            }
            "debug" | "dbg" | "dbug" | "fine" | "config" | "d" => Level::Debug,
            "info" | "inf" | "information" | "informational" | "notice" | "i" | "n" => Level::Info,
            "warn" | "warning" | "wrn" | "w" => Level::Warn,
            // .NET's simple console writes `fail` for Error.
            "error" | "err" | "eror" | "fail" | "severe" | "e" => Level::Error,
            "fatal" | "ftl" | "critical" | "crit" | "alert" | "emerg" | "emergency" | "panic"
            | "dpanic" | "f" | "c" => Level::Fatal,
            _ => return None,
        })
    }

    /// A level number on a named scale (see `scale` in parser definitions).
    pub fn from_number(scale: &str, n: &str) -> Option<Level> {
        let n: i32 = n.trim().parse().ok()?;
        match scale {
            // pino and bunyan: src/levels.js / lib/bunyan.js (10 … 60).
            "pino" => Some(match n {
                ..=10 => Level::Trace,
                11..=20 => Level::Debug,
                21..=30 => Level::Info,
                31..=40 => Level::Warn,
                41..=50 => Level::Error,
                _ => Level::Fatal,
            }),
            // RFC 5424 §6.2.1: 0 emergency, 1 alert, 2 critical, 3 error,
            // 4 warning, 5 notice, 6 informational, 7 debug.
            "syslog" => Some(match n {
                0..=2 => Level::Fatal,
                3 => Level::Error,
                4 => Level::Warn,
                5 | 6 => Level::Info,
                7 => Level::Debug,
                _ => return None,
            }),
            "otel" => Level::from_otel_number(n),
            _ => None,
        }
    }

    /// OpenTelemetry's `SeverityNumber` ranges (1-4 trace, 5-8 debug, ...).
    pub fn from_otel_number(n: i32) -> Option<Level> {
        Some(match n {
            1..=4 => Level::Trace,
            5..=8 => Level::Debug,
            9..=12 => Level::Info,
            13..=16 => Level::Warn,
            17..=20 => Level::Error,
            21..=24 => Level::Fatal,
            _ => return None,
        })
    }
}

/// Where an event came from: `file:line` for log lines, `file:line#item` for a
/// span or log record inside an OTLP batch line, so evidence can always be
/// looked up again. Written and read back (`FromStr`) as that text.
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

impl std::str::FromStr for Origin {
    type Err = String;
    /// The inverse of `Display`. A file name may hold `:` and `#`; the line
    /// number is the digits after the last `:` before the item.
    fn from_str(s: &str) -> Result<Origin, String> {
        let split = |t: &str| -> Option<(Arc<str>, u64)> {
            let (file, line) = t.rsplit_once(':')?;
            Some((Arc::from(file), line.parse().ok()?))
        };
        if let Some((file, line)) = split(s) {
            return Ok(Origin {
                file,
                line,
                item: None,
            });
        }
        if let Some((head, item)) = s.rsplit_once('#') {
            if let Some((file, line)) = split(head) {
                return Ok(Origin {
                    file,
                    line,
                    item: Some(item.to_string()),
                });
            }
        }
        Err(format!(
            "{s:?} is not an origin (file:line or file:line#item)"
        ))
    }
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An exception recorded on a span (OTel `exception` event).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpanException {
    pub r#type: Option<String>,
    pub message: Option<String>,
}

/// Fields only spans have.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanFields {
    pub name: String,
    pub kind: SpanKind,
    pub status: SpanStatus,
    pub status_message: Option<String>,
    pub end_ts: Option<i64>,
    pub exceptions: Vec<SpanException>,
}

/// How a schema field is typed, which decides how parsers read it, how rules
/// see it (absent text is `""`, absent numbers `0`) and its store column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    /// A duration in milliseconds; parsers convert the definition's unit.
    Millis,
}

/// A field's value, borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Text(&'a str),
    Int(i64),
    Millis(f64),
}

/// The Rust types a schema field may have.
pub trait FieldType: Sized {
    const KIND: Kind;
    fn value(&self) -> FieldValue<'_>;
    /// `None` when the value does not fit the field (a status that is not a
    /// number): the caller keeps it as an attribute instead.
    fn from_value(v: FieldValue<'_>) -> Option<Self>;
}

impl FieldType for Text {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self)
    }
    fn from_value(v: FieldValue<'_>) -> Option<Self> {
        Some(match v {
            FieldValue::Text(s) => Text::from(s),
            FieldValue::Int(i) => Text::from(i.to_string()),
            FieldValue::Millis(f) => Text::from(f.to_string()),
        })
    }
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl FieldType for $t {
            const KIND: Kind = Kind::Int;
            fn value(&self) -> FieldValue<'_> {
                FieldValue::Int(*self as i64)
            }
            fn from_value(v: FieldValue<'_>) -> Option<Self> {
                match v {
                    FieldValue::Int(i) => <$t>::try_from(i).ok(),
                    FieldValue::Text(s) => s.trim().parse().ok(),
                    FieldValue::Millis(_) => None,
                }
            }
        }
    )*};
}
int_field!(u16, u64);

impl FieldType for f64 {
    const KIND: Kind = Kind::Millis;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Millis(*self)
    }
    fn from_value(v: FieldValue<'_>) -> Option<Self> {
        match v {
            FieldValue::Millis(f) => Some(f),
            FieldValue::Int(i) => Some(i as f64),
            FieldValue::Text(s) => s.trim().parse().ok(),
        }
    }
}

impl FieldType for Level {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self.as_str())
    }
    fn from_value(v: FieldValue<'_>) -> Option<Self> {
        match v {
            FieldValue::Text(s) => Level::from_spelling(s),
            _ => None,
        }
    }
}

/// One field of the schema: its name (in parser definitions, rule
/// conditions, explanation templates and store columns), its kind, and how to
/// read and write it.
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub get: for<'a> fn(&'a Event) -> Option<FieldValue<'a>>,
    /// Sets the field; `false` (and the field left unset) when the value does not fit.
    pub set: fn(&mut Event, FieldValue<'_>) -> bool,
    pub clear: fn(&mut Event),
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.name, self.kind)
    }
}

/// Declares the schema's typed fields once: the `Event` struct and the
/// [`FIELDS`] table that parsers, rules and the store derive from.
macro_rules! schema {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty, )*) => {
        /// One thing one system said about one request.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Event {
            /// Unix time in nanoseconds, UTC.
            pub ts: Option<i64>,
            /// How precise `ts` is, in ns, when coarser than a millisecond
            /// (nginx `$time_local`: 1 s, floored); 0 when fine.
            pub ts_precision_ns: i64,
            pub source: Option<Source>,
            /// The definition's name (inline: names are short).
            pub format: Text,
            pub origin: Option<Origin>,
            $( $(#[doc = $doc])* pub $name: Option<$ty>, )*
            pub span: Option<Box<SpanFields>>,
            /// Everything else the source said, kept. Names are `'static` for keys
            /// a definition knows, owned for keys met in the data.
            pub attributes: Vec<(Text, String)>,
        }

        /// Every typed field of [`Event`], in declaration order.
        pub const FIELDS: &[Field] = &[$(
            Field {
                name: stringify!($name),
                kind: <$ty as FieldType>::KIND,
                get: |e| e.$name.as_ref().map(FieldType::value),
                set: |e, v| {
                    e.$name = <$ty as FieldType>::from_value(v);
                    e.$name.is_some()
                },
                clear: |e| e.$name = None,
            },
        )*];
    };
}

schema! {
    /// The service that wrote the event (a span's `service.name`).
    service: Text,
    request_id: Text,
    correlation_id: Text,
    trace_id: Text,
    span_id: Text,
    parent_span_id: Text,
    method: Text,
    host: Text,
    path: Text,
    route: Text,
    status: u16,
    /// Kept as written: nginx writes `502, 200` for a retried request.
    upstream_status: Text,
    upstream_addr: Text,
    duration_ms: f64,
    upstream_duration_ms: f64,
    bytes_in: u64,
    bytes_out: u64,
    client_ip: Text,
    consumer: Text,
    /// One scale from every spelling loggers use.
    level: Level,
    message: Text,
    /// The error a logger attached to the line (pino `err`, zap `error`, ECS
    /// `error.*`, ...): its type, its message and its stack trace.
    error_type: Text,
    error_message: Text,
    error_stack: Text,
    /// The gateway's own failure indicator (Envoy flags, `limit_req` status, ...).
    gateway_error: Text,
}

/// Names rules and templates may read besides [`FIELDS`]: derived from the
/// event's source, format and span.
pub const DERIVED_FIELDS: &[&str] = &[
    "source",
    "format",
    "span_name",
    "span_kind",
    "span_status",
    "exception",
    "attributes",
];

/// The schema field with this name.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// A value as text, durations rounded to the microsecond.
pub fn value_text(v: FieldValue<'_>) -> Cow<'_, str> {
    match v {
        FieldValue::Text(s) => Cow::Borrowed(s),
        FieldValue::Int(i) => Cow::Owned(i.to_string()),
        FieldValue::Millis(f) => Cow::Owned(format!("{}", (f * 1000.0).round() / 1000.0)),
    }
}

impl Event {
    /// The first exception recorded on a span is the span's error, as a
    /// logger's error object would be (fields already set are kept).
    pub fn adopt_exception(&mut self, x: Option<&SpanException>) {
        if let Some(x) = x {
            self.error_type = self
                .error_type
                .take()
                .or(x.r#type.as_deref().map(Text::from));
            self.error_message = self
                .error_message
                .take()
                .or(x.message.as_deref().map(Text::from));
        }
    }

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
            return span.status == SpanStatus::Error;
        }
        self.level.is_some_and(|l| l >= Level::Error)
    }

    /// The exceptions of a span as one text (`Type: message; ...`), empty for none.
    /// What the event says, with the error it carries when its message does
    /// not already say it (`jwt.decode failed: jwt.exceptions.InvalidSignatureError:
    /// Signature verification failed`): our code names the call, the
    /// library's exception says why.
    pub fn said(&self) -> Cow<'_, str> {
        let msg = self.message.as_deref().unwrap_or("");
        let err = match (self.error_type.as_deref(), self.error_message.as_deref()) {
            (Some(t), Some(m)) if !m.is_empty() => format!("{t}: {m}"),
            (Some(t), _) => t.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => return Cow::Borrowed(msg),
        };
        let already = |x: Option<&str>| x.is_some_and(|x| !x.is_empty() && msg.contains(x));
        if already(self.error_message.as_deref()) || already(Some(&err)) {
            Cow::Borrowed(msg)
        } else if msg.is_empty() {
            Cow::Owned(err)
        } else {
            Cow::Owned(format!("{msg}: {err}"))
        }
    }

    pub fn exception_text(&self) -> String {
        let Some(span) = &self.span else {
            return String::new();
        };
        let all: Vec<String> = span
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
        all.join("; ")
    }

    /// A field as text, by the names parser samples, rule conditions (`e.span_name`)
    /// and explanation templates use; `None` when the event has no such value.
    pub fn field_text(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(f) = field(name) {
            return (f.get)(self).map(value_text);
        }
        let span = self.span.as_deref();
        match name {
            "ts" => Some(Cow::Owned(time::format_ts(self.ts?))),
            "source" => self.source.map(|s| Cow::Borrowed(s.as_str())),
            "format" => Some(Cow::Borrowed(self.format.as_str())),
            "span.name" | "span_name" => span.map(|s| Cow::Borrowed(s.name.as_str())),
            "span.kind" | "span_kind" => span.map(|s| Cow::Borrowed(s.kind.as_str())),
            "span.status" | "span_status" => span.map(|s| Cow::Borrowed(s.status.as_str())),
            "exception" => span
                .filter(|s| !s.exceptions.is_empty())
                .map(|_| Cow::Owned(self.exception_text())),
            "attributes" => Some(Cow::Owned(format!("{:?}", self.attributes))),
            // Templates only: the message with the error it carries.
            "said" => Some(self.said()),
            other => self.attr(other.strip_prefix("attr.")?).map(Cow::Borrowed),
        }
    }
}

/// An optional text field, borrowed.
pub fn text_of(v: &Option<Text>) -> Option<Cow<'_, str>> {
    v.as_deref().map(Cow::Borrowed)
}
