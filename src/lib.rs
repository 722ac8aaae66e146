//! tracejoin: joins API-gateway access logs, backend logs and OpenTelemetry
//! traces into one timeline per request and labels every failure
//! (auth, routing, quota, transform, upstream) with the evidence for it.
//!
//! The modules follow the pipeline, and imports only point down it (a test,
//! `tests/it/layers.rs`, keeps it so):
//!
//! [`event`] (the schema, ids, times) ← [`ingest`] (bytes, lines) ← [`parse`]
//! (formats → events) ← [`correlate`] (events → requests) ← [`rules`]
//! (requests → verdicts) ← [`labelled`] (what a run produces) ← [`episodes`]
//! (failures → incidents) ← [`analysis`] (a batch run) ← [`store`] ← [`query`] ← [`report`] ← [`sink`] (JSON lines
//! and the store) ← [`serve`] (live mode) ← [`cli`].

pub mod analysis;
pub mod cli;
pub mod correlate;
pub mod episodes;
pub mod event;
pub mod ingest;
pub mod labelled;
pub mod parse;
pub mod query;
pub mod report;
pub mod rules;
pub mod serve;
pub mod sink;
pub mod store;
