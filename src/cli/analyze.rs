//! `tracejoin analyze PATH...`: parse, join and label everything, then print
//! the summary, or one JSON line per request, and optionally write the store.

use super::common::{exit_code, parse_duration_ms, parse_time, Progress, Sources};
use super::EXIT_OK;
use crate::analysis::{self, Shard};
use crate::report::summary::{self, Summary};
use crate::sink::LabelledSink;
use crate::store::{self, StoreWriter};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
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
    /// One time shard of a larger run: exactly the requests that started at or
    /// after this time (RFC 3339), with --shard-end; shards run anywhere add
    /// up to one run (each writes its own run into a shared --out store).
    #[arg(long, value_name = "T", requires = "shard_end")]
    shard_start: Option<String>,
    /// The shard's end (exclusive, RFC 3339).
    #[arg(long, value_name = "T", requires = "shard_start")]
    shard_end: Option<String>,
    /// Events this far outside the shard are still read, so that a request
    /// that straddles a boundary is whole in the shard where it starts; raise
    /// it above your longest request.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration_ms)]
    shard_guard: u64,
    #[command(flatten)]
    sources: Sources,
}

impl Args {
    pub fn run(self) -> Result<i32> {
        let started = Instant::now();
        let (registry, engine) = self.sources.load()?;
        let mut opts = self.sources.options(self.paths, &registry)?;
        opts.since = self.since.as_deref().map(parse_time).transpose()?;
        opts.until = self.until.as_deref().map(parse_time).transpose()?;
        if let (Some(start), Some(end)) = (&self.shard_start, &self.shard_end) {
            let (start, end) = (parse_time(start)?, parse_time(end)?);
            if end <= start {
                anyhow::bail!("--shard-end must be after --shard-start");
            }
            opts.shard = Some(Shard {
                start,
                end,
                guard: self.shard_guard as i64 * 1_000_000,
            });
        }
        let progress = Progress::start(&mut opts);
        let store = match &self.out {
            Some(dir) => {
                let mut entry = store::run_entry(&opts.paths, &engine, self.sources.window);
                if let Some(s) = opts.shard {
                    entry.into_shard(s.start, s.end);
                }
                Some(StoreWriter::create(dir, entry)?)
            }
            None => None,
        };
        let json: Option<Box<dyn Write + Send>> = self
            .json
            .then(|| Box::new(std::io::BufWriter::new(std::io::stdout())) as _);
        let mut sink = LabelledSink::new(json, self.failures_only, store);
        let mut summary = Summary::default();
        let info = analysis::run_with(&opts, &registry, &engine, &mut |l| {
            sink.add(l);
            if !self.json {
                summary.add(l);
            }
        })?;
        drop(progress);
        sink.set_gaps(crate::episodes::run_gaps(&info));
        let outcome = sink.finish();
        match outcome.store {
            Some(Err(e)) => return Err(e.context("cannot write the store")),
            Some(Ok(entry)) => eprintln!(
                "tracejoin: store {}: run {} wrote {} requests ({} failed) and {} events in {} hour partitions",
                self.out.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
                entry.run,
                entry.requests,
                entry.failed,
                entry.events,
                entry.partitions.len()
            ),
            None => {}
        }
        eprint!("{}", summary::render_errors(&info.files));
        if let Some(e) = outcome.json_error {
            return Err(e).context("cannot write to stdout");
        }
        if !self.json {
            let mut out = std::io::stdout().lock();
            let text = summary.render(&info, started.elapsed().as_secs_f64());
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(EXIT_OK),
                r => r.context("cannot write to stdout")?,
            }
        }
        Ok(exit_code(&info))
    }
}
