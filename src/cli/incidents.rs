//! `tracejoin incidents [--store DIR | PATH...]`: failed requests grouped
//! into episodes, as a table or one JSON episode per line.

use super::common::{exit_code, parse_duration_ms, parse_time, time_range, Sources};
use super::EXIT_OK;
use crate::analysis;
use crate::episodes::{self, Detector, Observation, Options};
use crate::report::{incidents, summary};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or folders to analyze (or --store).
    #[arg(required_unless_present = "store")]
    paths: Vec<PathBuf>,
    /// Read the requests of a store written by `analyze --out` instead.
    #[arg(long, value_name = "DIR", conflicts_with = "paths")]
    store: Option<PathBuf>,
    /// One episode per line (JSON) instead of the table.
    #[arg(long)]
    json: bool,
    /// Failures of one origin further apart than this are separate episodes.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_ms)]
    gap: u64,
    /// The fewest failed requests an episode has.
    #[arg(long, value_name = "N", default_value_t = 3)]
    min_requests: usize,
    /// Only requests that started at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only requests that started before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    #[command(flatten)]
    sources: Sources,
}

impl Args {
    pub fn run(self) -> Result<i32> {
        let opts = Options {
            gap_ns: self.gap as i64 * 1_000_000,
            min_requests: self.min_requests.max(1),
            ..Options::default()
        };
        let (detector, code) = match &self.store {
            Some(dir) => {
                let store = super::common::open_store(dir)?;
                let range = time_range(self.since.as_deref(), self.until.as_deref())?;
                (incidents::from_store(&store, range)?, EXIT_OK)
            }
            None => self.observe_files()?,
        };
        let eps = detector.episodes(&opts);
        let mut out = std::io::stdout().lock();
        let text = if self.json {
            let mut s = String::new();
            for e in &eps {
                s.push_str(&serde_json::to_string(e)?);
                s.push('\n');
            }
            s
        } else {
            incidents::table(&eps, &detector)
        };
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
            r => r.map(|()| code).context("cannot write to stdout"),
        }
    }

    fn observe_files(&self) -> Result<(Detector, i32)> {
        let (registry, engine) = self.sources.load()?;
        let mut opts = self.sources.options(self.paths.clone(), &registry)?;
        opts.since = self.since.as_deref().map(parse_time).transpose()?;
        opts.until = self.until.as_deref().map(parse_time).transpose()?;
        let mut d = Detector::default();
        let info = analysis::run_with(&opts, &registry, &engine, &mut |l| {
            d.add(&Observation::of(l));
        })?;
        eprint!("{}", summary::render_errors(&info.files));
        for g in episodes::run_gaps(&info) {
            eprintln!("tracejoin: not known: {g}");
        }
        Ok((d, exit_code(&info)))
    }
}
