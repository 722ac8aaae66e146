use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Join gateway logs, backend logs and OpenTelemetry traces per request, and
/// say why each failed request failed.
#[derive(Debug, Parser)]
#[command(name = "tracejoin", version, about, args_override_self = true)]
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

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, factor) = [
        ("GiB", 1usize << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find_map(|(u, f)| t.strip_suffix(u).map(|n| (n, *f)))
    .unwrap_or((t, 1));
    num.trim()
        .parse::<usize>()
        .map(|n| n * factor)
        .map_err(|_| format!("{s:?} is not a size (e.g. 4MiB, 512KiB, 1000000)"))
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
        /// Also write the Parquet store (requests, events, id index, manifest) to DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
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
        /// Files or folders to search (or --store).
        #[arg(required_unless_present = "store")]
        paths: Vec<PathBuf>,
        /// Look the request up in a store written by `analyze --out`.
        #[arg(long, value_name = "DIR", conflicts_with = "paths")]
        store: Option<PathBuf>,
        /// Print the request as JSON (the --json line) instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Live: receive OTLP traces and logs (gRPC and HTTP) and follow log
    /// files; emit each request, joined and labelled, once it is complete.
    Serve {
        /// OTLP/gRPC address, or `off`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4317")]
        grpc: String,
        /// OTLP/HTTP address (`/v1/traces`, `/v1/logs`), or `off`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4318")]
        http: String,
        /// Bind both endpoints on this host instead of loopback (e.g. 0.0.0.0);
        /// the ports stay those of --grpc and --http.
        #[arg(long, value_name = "HOST")]
        listen: Option<String>,
        /// Follow a gateway or backend log file as it grows (repeatable;
        /// globs and folders allowed; rotation and truncation handled).
        #[arg(long = "follow", value_name = "PATH")]
        follow: Vec<String>,
        /// Read followed files that already exist from their start, not their end.
        #[arg(long)]
        from_beginning: bool,
        /// Write one labelled request per line to FILE (`-` or no value: stdout).
        #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
        json: Option<PathBuf>,
        /// With --json: only requests that failed.
        #[arg(long)]
        failures_only: bool,
        /// Append every emitted request to the Parquet store in DIR (written every minute and at shutdown).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Require `Authorization: Bearer TOKEN` on both OTLP endpoints.
        #[arg(long, env = "TRACEJOIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Largest OTLP message accepted (after gzip decompression): `4MiB`, `512KiB`.
        #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size)]
        max_message_size: usize,
        /// Events queued for correlation before receivers answer "busy, retry
        /// later" (gRPC RESOURCE_EXHAUSTED, HTTP 429).
        #[arg(long, value_name = "N", default_value_t = 200_000)]
        max_queued_events: usize,
        /// A request open this long is emitted even if events still arrive.
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration_ms)]
        max_age: u64,
        /// Open requests held at most; beyond it the longest-idle is emitted early (flag `evicted`).
        #[arg(long, value_name = "N", default_value_t = 100_000)]
        max_open: usize,
        /// Events held in open requests at most; beyond it, as --max-open.
        #[arg(long, value_name = "N", default_value_t = 1_000_000)]
        max_events: usize,
        /// Emitted requests remembered so that a late event re-emits them amended.
        #[arg(long, value_name = "N", default_value_t = 20_000)]
        retain: usize,
        /// One summary line on stderr this often (`0s`: never).
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_ms)]
        stats_interval: u64,
        #[command(flatten)]
        sources: Sources,
    },
    /// SQL over a store's tables `requests` and `events` (polars SQL).
    Query {
        /// The store written by `analyze --out`.
        #[arg(long, value_name = "DIR")]
        store: PathBuf,
        /// e.g. "SELECT label, count(*) AS n FROM requests WHERE failed GROUP BY label ORDER BY n DESC"
        sql: String,
        #[arg(long, value_enum, default_value = "table")]
        format: crate::query::OutputFormat,
        /// Only requests (by start) and events (by ts) at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only requests and events before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// A self-contained HTML postmortem page (or Markdown) from a store.
    Report {
        /// The store written by `analyze --out` or `serve --out`.
        #[arg(long, value_name = "DIR")]
        store: PathBuf,
        /// Where to write the report (`-` for stdout).
        #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-")]
        output: PathBuf,
        /// Markdown, for pasting into a postmortem document, instead of HTML.
        #[arg(long)]
        markdown: bool,
        /// Only requests that started at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only requests that started before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// Compare the label mix and the failing routes of two time windows of a
    /// store (`--at T`: the window before T against the one after), or of two stores.
    Diff {
        /// The store (with --against: the baseline).
        #[arg(long, value_name = "DIR")]
        store: PathBuf,
        /// A second store to compare against (the baseline is --store).
        #[arg(long, value_name = "DIR")]
        against: Option<PathBuf>,
        /// The change (a deploy, say): compare [T - window, T) with [T, T + window).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Length of each window with --at.
        #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration_ms)]
        window: u64,
        /// Markdown instead of a terminal table.
        #[arg(long)]
        markdown: bool,
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
