//! The rules engine: rule packs (`rules/*.toml`) with CEL conditions evaluated
//! over a request timeline; the highest-priority rule that fires gives the
//! label, its matching events are the evidence. Among rules whose evidence is
//! the services' own word (`causal`), the cause first in the request's causal
//! chain wins.
//!
//! Knows no parsing or output. Rules run only for failed requests.

mod blame;
mod causal;
mod check;
mod eval;
pub mod pack;

pub use blame::gateway_name;
pub use check::check_examples;

/// Rule packs compiled into the binary: `(file name, TOML text)`.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));
}
pub use eval::{event_value, Engine, Evaluator};

use crate::event::text_enum;
use serde::{Deserialize, Serialize};

text_enum! {
    /// Why a failed request failed (docs/CONTRACT.md "Labels"): one of the five
    /// causes, or `unknown` when no rule's evidence is sufficient (or for a
    /// failure not to blame on the system, such as a client that went away).
    pub enum Label {
        Auth = "auth",
        Routing = "routing",
        Quota = "quota",
        Transform = "transform",
        Upstream = "upstream",
        Unknown = "unknown",
    }
}

/// One event that supports a verdict: where it is (`file:line`, or
/// `file:line#span` inside an OTLP batch), what wrote it, and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub origin: String,
    pub source: String,
    pub detail: String,
}

/// The label of a failed request and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub label: Label,
    pub rule: String,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
    /// Where the failure started and the way there; `None` for `unknown`.
    pub cause: Option<Cause>,
}

text_enum! {
    /// What a failure's origin is.
    pub enum OriginKind {
        /// The gateway refused by itself (its own limit, policy or route table).
        Gateway = "gateway",
        /// An instrumented service, or one whose log said why.
        Service = "service",
        /// Something a service or the gateway called that reports nothing of
        /// its own: named by the caller's span (`peer.service`, `db.system`,
        /// its address) or the gateway's upstream address.
        Dependency = "dependency",
    }
}

/// Where a failure started: the origin's kind and name, the operation (span
/// name, or the gateway's indicator), its span, the event that says so, and
/// the services the request crossed to reach it, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub kind: OriginKind,
    pub service: String,
    pub operation: Option<String>,
    pub span_id: Option<String>,
    pub origin: Option<String>,
    pub path: Vec<String>,
}

impl Cause {
    /// The origin in words: `dependency redis HGETALL`.
    pub fn describe(&self) -> String {
        match &self.operation {
            Some(op) => format!("{} {} {op}", self.kind, self.service),
            None => format!("{} {}", self.kind, self.service),
        }
    }
}
