//! The rules engine: rule packs (`rules/*.toml`) with CEL conditions evaluated
//! over a request timeline; the highest-priority rule that fires gives the
//! label, its matching events are the evidence.
//!
//! Knows no parsing or output. Rules run only for failed requests.

mod check;
mod eval;
pub mod pack;

pub use check::check_examples;
pub use eval::{Engine, Evaluator};

use serde::Serialize;

/// What a rule may conclude: one of the five labels of DESIGN.md (auth,
/// routing, quota, transform, upstream), or `unknown` for a rule that
/// recognises a failure not to blame on the system (a client that went away).
pub const RULE_LABELS: &[&str] = &[
    "auth",
    "routing",
    "quota",
    "transform",
    "upstream",
    "unknown",
];

/// One event that supports a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub origin: String,
    pub source: String,
    pub detail: String,
}

/// The label of a failed request and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// One of [`RULE_LABELS`].
    pub label: String,
    pub rule: String,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
}
