//! The integration tests: one binary (one link of polars, tonic and axum),
//! one module per theme, as ripgrep does.

mod backend_formats;
mod cli;
mod common;
mod contract;
mod engines;
mod fuzz_replay;
mod gateway_logs;
mod incidents;
mod indicators;
mod infer;
mod layers;
mod malformed;
mod parsers;
mod realstack;
mod rules;
mod schema;
mod serve;
mod shards;
mod store;
