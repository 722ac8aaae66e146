//! The schema of a format definition file (`parsers/*.toml`).
//!
//! One file per format, the same schema for built-in and user definitions
//! (`--parsers DIR`), modelled on lnav's format files: what it is, where the
//! truth about it comes from, how to parse it, how its fields map onto the
//! event, and real sample lines that are checked whenever it is loaded.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A regular expression with named groups.
    Regex,
    /// An nginx `log_format` string, compiled to a parser.
    Nginx,
    /// An Envoy access-log format string (`%START_TIME% %REQ(:METHOD)% ...`).
    Envoy,
    /// An Apache `LogFormat` string (`%h %l %u %t "%r" %>s %b`).
    Apache,
    /// An HAProxy `log-format` string (`%ci:%cp [%tr] %ft %b/%s ...`).
    Haproxy,
    /// One JSON object per line; nested keys are addressed with dots.
    Json,
    /// `key=value` pairs, values with spaces in double quotes.
    Logfmt,
    /// OTLP/JSON traces or logs (Collector file exporter, or one document).
    Otlp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Short identifier used with `--format PATH=NAME`.
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Where the format is documented (the source of truth for the definition).
    pub reference: String,
    /// Event source this format writes: `gateway`, `backend`, `span` or `otel_log`.
    pub source: String,
    pub kind: Kind,
    /// Regex with named groups (kind = "regex").
    pub pattern: Option<String>,
    /// The gateway's format string (kind = "nginx", "envoy", "apache", "haproxy"),
    /// pasted from its configuration.
    pub log_format: Option<String>,
    /// A regex for lines that continue the previous event (stack traces,
    /// Python tracebacks) when they do not parse on their own: they are
    /// folded into its message instead of being errors.
    pub continuation: Option<String>,
    /// Regexes for lines the gateway writes into the same log that are not
    /// requests (HAProxy's `Server be/s1 is DOWN`): counted as context, never
    /// input errors.
    #[serde(default)]
    pub context: Vec<String>,
    /// A regex for what precedes the format on each line (a syslog header);
    /// its named groups are fields like any other.
    pub line_prefix: Option<String>,
    /// `logfmt`: the text after the pattern / log_format is `key=value` pairs.
    pub tail: Option<String>,
    /// JSON / logfmt: keys (alternatives separated by `|`) that must all be
    /// present for a line to belong to this format.
    #[serde(default)]
    pub require: Vec<String>,
    /// Event field -> where its value comes from.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    /// Keys whose values may hold a request id among other text (HAProxy's
    /// captured-header blocks `{id|agent}`): when no request id was mapped, the
    /// first id-shaped token found there becomes it.
    #[serde(default)]
    pub ids_in: Vec<String>,
    /// The timestamp marks the end of the request (nginx `$time_local` is the
    /// log write time): the event time is moved back by `duration_ms`.
    #[serde(default)]
    pub ts_is_end: bool,
    /// Breaks detection ties between definitions that parse the same lines.
    #[serde(default)]
    pub priority: i32,
    #[serde(default, rename = "sample")]
    pub samples: Vec<Sample>,
}

/// Where one event field comes from: one key, a list of alternative keys, or a
/// table with conversion options.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FieldSpec {
    One(String),
    Many(Vec<String>),
    Full(FieldOptions),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldOptions {
    pub from: Vec<String>,
    /// Duration unit of the source value: `s`, `ms`, `us` or `ns`.
    pub unit: Option<String>,
    /// Timestamp format: `iso`, `clf`, `epoch`, `auto` or a strftime pattern.
    pub time: Option<String>,
    /// Values that mean "nothing to report" (e.g. `PASSED` for `$limit_req_status`).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// A regex for the same: values it matches are treated as absent.
    pub ok_pattern: Option<String>,
    /// Written before the value, to say which indicator it was (`limit_req=`).
    pub prefix: Option<String>,
    /// A regex over the event's status: when it matches, the value is not
    /// this field's (Kong's `source = "kong"` on a 200 a plugin served is no
    /// failure) and is kept as an attribute instead.
    pub ok_if_status: Option<String>,
    /// Level numbers on a logger's own scale: `pino` (pino and bunyan: 10
    /// trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal), `syslog` (RFC
    /// 5424 severities 0 emergency … 7 debug), `otel` (SeverityNumber 1–24).
    pub scale: Option<String>,
}

impl FieldSpec {
    pub fn options(&self) -> FieldOptions {
        match self {
            FieldSpec::One(s) => FieldOptions {
                from: vec![s.clone()],
                ..Default::default()
            },
            FieldSpec::Many(v) => FieldOptions {
                from: v.clone(),
                ..Default::default()
            },
            FieldSpec::Full(o) => o.clone(),
        }
    }
}

/// A real line of this format, and what parsing it must produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub line: String,
    /// Where the line comes from (a vendor document, a real run).
    #[serde(default)]
    pub source: String,
    /// Event field -> expected value, as text.
    #[serde(default)]
    pub expect: BTreeMap<String, String>,
}
