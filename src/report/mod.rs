//! Sinks for a finished analysis: the terminal summary, the JSONL contract,
//! and the rendered timeline of one request. Log text is escaped here, in one
//! place, before it reaches a terminal.

pub mod diff;
pub mod escape;
pub mod incidents;
pub mod jsonl;
pub mod postmortem;
pub mod summary;
pub mod timeline;
