//! tracejoin: joins API-gateway access logs, backend logs and OpenTelemetry
//! traces into one timeline per request and labels every failure
//! (auth, routing, quota, transform, upstream) with the evidence for it.
//!
//! The modules follow the pipeline: [`ingest`] → [`parse`] → [`correlate`] →
//! [`rules`] → [`report`]; [`analysis`] wires them for a batch run and [`cli`]
//! is the command line on top.

pub mod analysis;
pub mod cli;
pub mod correlate;
pub mod event;
pub mod ingest;
pub mod parse;
pub mod query;
pub mod report;
pub mod rules;
pub mod serve;
pub mod store;
