//! `tracejoin reconcile --store DIR`: the partial requests that several
//! `serve` instances wrote into one store, joined and labelled.

use super::common::parse_duration_ms;
use super::EXIT_OK;
use crate::rules::Engine;
use crate::store::reconcile::{reconcile, Options};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store the instances write (`serve --out DIR`, or `analyze --out`).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The idle window of the join; by default the largest of the runs read.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    window: Option<u64>,
    /// Extra rule packs (`*.toml`), as the instances were given.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// Join gateway lines that carry no id by method, path and time, as
    /// `analyze --infer-joins` does.
    #[arg(long)]
    infer_joins: bool,
}

impl Args {
    pub fn run(self) -> Result<i32> {
        let engine = Engine::load(self.rules.as_deref())?;
        let opts = Options {
            window_ms: self.window,
            infer_joins: self.infer_joins,
        };
        let out = reconcile(&self.store, &engine, &opts)?;
        let runs = out.runs.len();
        match &out.entry {
            None if out.read == 0 => eprintln!(
                "tracejoin: reconcile: nothing to join: no partial request shares an id with another run's"
            ),
            None => eprintln!(
                "tracejoin: reconcile: nothing to join: {} requests read back from {runs} runs, each already whole as stored",
                out.read
            ),
            Some(e) => eprintln!(
                "tracejoin: reconcile: {} requests read back from {runs} runs ({} events{}); {} requests joined and written as run {} ({} failed), replacing {} stored rows",
                out.read,
                out.events,
                match out.duplicates {
                    0 => String::new(),
                    n => format!(", {n} of them stored twice and joined once"),
                },
                out.written,
                e.run,
                e.failed,
                out.superseded
            ),
        }
        Ok(EXIT_OK)
    }
}
