//! What several commands share: the input options (`Sources`), loading formats
//! and rules, value parsers for times, durations and sizes, the exit code of a
//! run, and the progress bar.

use super::{EXIT_INPUT_ERRORS, EXIT_OK};
use crate::analysis::Options;
use crate::event::time::TimeFormat;
use crate::labelled::RunInfo;
use crate::parse::{Format, Registry};
use crate::query::TimeRange;
use crate::rules::Engine;
use anyhow::{anyhow, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Where formats and rules come from and how inputs are read and joined.
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
    /// A gateway's own format string, pasted from its configuration
    /// (repeatable): `nginx:$remote_addr - ...`, `apache:%h %l %u %t "%r" ...`,
    /// `haproxy:...`, `envoy:...`; `PATH=DIALECT:FORMAT` for one input only,
    /// otherwise detection prefers it.
    #[arg(long = "log-format", value_name = "[PATH=]DIALECT:FORMAT")]
    pub log_formats: Vec<String>,
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

impl Sources {
    /// The built-in formats and rules plus the user's (`--parsers`, `--rules`,
    /// `--log-format`).
    pub fn load(&self) -> Result<(Registry, Engine)> {
        let mut registry = Registry::load(self.parsers.as_deref())?;
        for (i, spec) in self.log_formats.iter().enumerate() {
            let (_, dialect, format) = split_log_format(spec)?;
            registry.add(Format::pasted(
                &format!("log_format_{}", i + 1),
                dialect,
                format,
            )?);
        }
        let engine = Engine::load(self.rules.as_deref())?;
        Ok((registry, engine))
    }

    /// The run's options; every `--format PATH=NAME` resolved here, once.
    pub fn options(&self, paths: Vec<PathBuf>, registry: &Registry) -> Result<Options> {
        let formats = self
            .formats
            .iter()
            .map(|s| {
                let (p, n) = s
                    .rsplit_once('=')
                    .ok_or_else(|| anyhow!("--format {s:?}: expected PATH=NAME"))?;
                Ok((PathBuf::from(p), registry.resolve(n)?))
            })
            .collect::<Result<Vec<_>>>()?;
        // `--log-format PATH=DIALECT:FORMAT`: that input reads that format.
        let mut formats = formats;
        for (i, spec) in self.log_formats.iter().enumerate() {
            if let (Some(path), _, _) = split_log_format(spec)? {
                formats.push((
                    PathBuf::from(path),
                    registry.resolve(&format!("log_format_{}", i + 1))?,
                ));
            }
        }
        Ok(Options {
            paths,
            formats,
            max_line: self.max_line,
            window_ms: Some(self.window),
            infer_joins: self.infer_joins,
            ..Default::default()
        })
    }
}

/// `[PATH=]DIALECT:FORMAT` → (path, dialect, format). The format string
/// itself holds `=` and `:`, so a path is only what comes before an `=` that
/// precedes the dialect.
fn split_log_format(spec: &str) -> Result<(Option<&str>, &str, &str)> {
    const DIALECTS: [&str; 4] = ["nginx", "apache", "haproxy", "envoy"];
    let dialect_at = |s: &str| {
        DIALECTS
            .iter()
            .find(|d| s.starts_with(&format!("{d}:")))
            .copied()
    };
    if let Some(d) = dialect_at(spec) {
        return Ok((None, d, &spec[d.len() + 1..]));
    }
    if let Some((path, rest)) = spec.split_once('=') {
        if let Some(d) = dialect_at(rest) {
            return Ok((Some(path), d, &rest[d.len() + 1..]));
        }
    }
    Err(anyhow!(
        "--log-format {spec:?}: expected [PATH=]DIALECT:FORMAT with DIALECT one of {} (e.g. 'apache:%h %l %u %t \"%r\" %>s %b')",
        DIALECTS.join(", ")
    ))
}

/// `--since` / `--until` over a store (requests by start, events by time).
#[derive(Debug, clap::Args, Clone, Default)]
pub struct Bounds {
    /// Only requests (by start) and events (by time) at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only requests and events before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
}

impl Bounds {
    pub fn range(&self) -> Result<TimeRange> {
        time_range(self.since.as_deref(), self.until.as_deref())
    }
}

pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
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

pub fn parse_size(s: &str) -> Result<usize, String> {
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

pub fn parse_time(s: &str) -> Result<i64> {
    TimeFormat::Auto
        .parse(s)
        .with_context(|| format!("{s:?} is not a time (use RFC 3339, e.g. 2026-11-24T10:00:00Z)"))
}

pub fn time_range(since: Option<&str>, until: Option<&str>) -> Result<TimeRange> {
    Ok(TimeRange {
        since: since.map(parse_time).transpose()?,
        until: until.map(parse_time).transpose()?,
    })
}

/// 1 when some input lines could not be read (they were reported), else 0.
pub fn exit_code(info: &RunInfo) -> i32 {
    if info.input_error_count() > 0 {
        EXIT_INPUT_ERRORS
    } else {
        EXIT_OK
    }
}

/// A progress bar on stderr while a run reads its inputs, only when stderr is
/// a terminal (never in pipes, files or CI logs).
pub struct Progress {
    bar: indicatif::ProgressBar,
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub fn start(opts: &mut Options) -> Option<Progress> {
        use std::io::IsTerminal;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let total: u64 = opts
            .paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        let counter = Arc::new(AtomicU64::new(0));
        opts.progress = Some(counter.clone());
        let bar = indicatif::ProgressBar::new(total.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} read ({bytes_per_sec}), {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let done = Arc::new(AtomicBool::new(false));
        let (b, d) = (bar.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                b.set_position(counter.load(Ordering::Relaxed));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        Some(Progress {
            bar,
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Opens a store and reports the files it cannot read (left out of every
/// table; the command answers from the rest).
pub fn open_store(dir: &std::path::Path) -> anyhow::Result<crate::store::Store> {
    let store = crate::store::Store::open(dir)?;
    for why in &store.skipped {
        eprintln!("tracejoin: warning: {why}");
    }
    Ok(store)
}
