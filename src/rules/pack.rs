//! The schema of a rule pack (`rules/*.toml`).

use super::Label;
use crate::event::{Source, SpanKind, SpanStatus};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// Named regexes, compiled once, used in conditions as `like(text, 'name')`.
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub name: String,
    /// One of auth, routing, quota, transform, upstream; or unknown, for a
    /// failure not to blame on the system.
    pub label: Label,
    /// Higher wins. Causes closer to the origin (backend, span) rank above the
    /// gateway's view of them, and flags above bare status codes.
    pub priority: i32,
    /// The rule's evidence is what a service or span said about this request
    /// itself. When such rules of different labels fire, the cause that
    /// happened first in the request's causal chain wins (the deepest span,
    /// then the earliest event), whatever their priorities.
    #[serde(default)]
    pub causal: bool,
    #[serde(default)]
    pub description: String,
    /// CEL over `request`, `gateway`, `server_span`, `events`. Default: true.
    pub when: Option<String>,
    /// CEL over one event `e` (plus the variables above). When set, the rule
    /// fires only if some event satisfies it, and those events are the evidence.
    pub evidence: Option<String>,
    /// One line; `{{e.field}}` and `{{request.field}}` are filled in.
    pub explain: String,
    #[serde(default, rename = "example")]
    pub examples: Vec<Example>,
}

/// A small request that `rules check` labels with the whole pack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// The label the pack must give; `none` for a request that did not fail.
    pub label: String,
    /// Whether this rule must be the one that decides (default true when the
    /// label is this rule's label).
    pub decides: Option<bool>,
    #[serde(rename = "event")]
    pub events: Vec<ExampleEvent>,
}

/// One event of an example: its source, span fields for a span, and any
/// schema field by name (`status = 502`, `message = "..."`).
#[derive(Debug, Clone, Deserialize)]
pub struct ExampleEvent {
    pub source: Source,
    /// The format that wrote it (rules may test `gateway.format`).
    pub format: Option<String>,
    pub span_name: Option<String>,
    pub span_kind: Option<SpanKind>,
    pub span_status: Option<SpanStatus>,
    /// `Type: message` of an exception recorded on the span.
    pub exception: Option<String>,
    /// Schema fields ([`crate::event::FIELDS`]); names are checked when the pack loads.
    #[serde(flatten)]
    pub fields: BTreeMap<String, toml::Value>,
}
