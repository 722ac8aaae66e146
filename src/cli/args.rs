use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Join gateway logs, backend logs and OpenTelemetry traces per request, and
/// say why each failed request failed.
#[derive(Debug, Parser)]
#[command(name = "tracejoin", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args, Clone, Default)]
pub struct Sources {
    /// Extra format definitions (`*.toml`), added to the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub parsers: Option<PathBuf>,
    /// Extra rule packs (`*.toml`); a rule with a built-in's name replaces it.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Use format NAME for the input PATH instead of detecting it (repeatable).
    #[arg(long = "format", value_name = "PATH=NAME")]
    pub formats: Vec<String>,
    /// Lines longer than this many bytes are reported and skipped.
    #[arg(long, value_name = "BYTES")]
    pub max_line: Option<usize>,
    /// A request is complete when none of its events has been active for this
    /// long (event time): `500ms`, `30s`, `5m`. Raise it when clocks are far
    /// apart (the summary reports the skew it sees).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration_ms)]
    pub window: u64,
    /// Join gateway lines that carry no id to the entry span with the same
    /// method and path that started while the gateway handled them; such joins
    /// are marked `inferred`, with a confidence.
    #[arg(long)]
    pub infer_joins: bool,
}

fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let (num, factor) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        return Err(format!("{s:?}: give a unit, e.g. 500ms, 60s, 5m, 1h"));
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n * factor)
        .map_err(|_| format!("{s:?} is not a duration"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, join and label everything under PATH... and print a summary.
    Analyze {
        /// Files, folders (recursive), .gz, or - for stdin.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write one labelled request per line (JSON) to stdout instead of the summary.
        #[arg(long)]
        json: bool,
        /// With --json: only requests that failed.
        #[arg(long)]
        failures_only: bool,
        /// Only requests that started at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only requests that started before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        sources: Sources,
    },
    /// Show one request, found by any of its ids, as a merged timeline.
    Timeline {
        /// A request id, correlation id or trace id.
        id: String,
        /// Files or folders to search.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the request as JSON (the --json line) instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// List the format definitions that are loaded.
    Formats {
        #[arg(long, value_name = "DIR")]
        parsers: Option<PathBuf>,
        /// Show each definition's sample lines.
        #[arg(long, short)]
        verbose: bool,
    },
    /// List or check rule packs.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// The loaded rules in the order they are tried.
    List {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Compile every rule and run its embedded examples.
    Check {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
}
