//! The command line: one module per command, each with its arguments (the
//! command's configuration) and its `run`; results → stdout, diagnostics →
//! stderr, and the exit code (0 ok, 1 input errors reported, 2 usage or fatal error).

mod analyze;
mod common;
mod diff;
mod formats;
mod incidents;
mod query;
mod reconcile;
mod report;
mod rules;
mod serve;
mod timeline;

use clap::{Parser, Subcommand};

pub const EXIT_OK: i32 = 0;
pub const EXIT_INPUT_ERRORS: i32 = 1;
pub const EXIT_FATAL: i32 = 2;

/// Join gateway logs, backend logs and OpenTelemetry traces per request, and
/// say why each failed request failed.
#[derive(Debug, Parser)]
#[command(name = "tracejoin", version, about, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, join and label everything under PATH... and print a summary.
    Analyze(analyze::Args),
    /// Show one request, found by any of its ids, as a merged timeline.
    Timeline(timeline::Args),
    /// Live: receive OTLP traces and logs (gRPC and HTTP) and follow log
    /// files; emit each request, joined and labelled, once it is complete.
    Serve(Box<serve::Args>),
    /// SQL over a store's tables `requests` and `events` (polars SQL).
    Query(query::Args),
    /// Failed requests grouped into episodes (incidents): same label and
    /// blamed origin, contiguous in time, standing out against the background.
    Incidents(incidents::Args),
    /// Join the partial requests that several `serve` instances wrote into
    /// one store (the gateway's half in one run, the services' in another)
    /// and label them; the rows they replace are left out of every reader.
    Reconcile(reconcile::Args),
    /// A self-contained HTML postmortem page (or Markdown) from a store.
    Report(report::Args),
    /// Compare the label mix and the failing routes of two time windows of a
    /// store (`--at T`: the window before T against the one after), or of two stores.
    Diff(diff::Args),
    /// List the format definitions that are loaded.
    Formats(formats::Args),
    /// List or check rule packs.
    Rules {
        #[command(subcommand)]
        action: rules::Action,
    },
}

impl Command {
    fn run(self) -> anyhow::Result<i32> {
        match self {
            Command::Analyze(a) => a.run(),
            Command::Timeline(a) => a.run(),
            Command::Serve(a) => a.run(),
            Command::Query(a) => a.run(),
            Command::Incidents(a) => a.run(),
            Command::Reconcile(a) => a.run(),
            Command::Report(a) => a.run(),
            Command::Diff(a) => a.run(),
            Command::Formats(a) => a.run(),
            Command::Rules { action } => action.run(),
        }
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_FATAL } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match cli.command.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tracejoin: error: {e:#}");
            EXIT_FATAL
        }
    }
}
