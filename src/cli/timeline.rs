//! `tracejoin timeline ID`: one request, found by any of its ids in files or
//! in a store, as a merged timeline with its verdict.

use super::common::{exit_code, Sources};
use super::{EXIT_FATAL, EXIT_OK};
use crate::analysis;
use crate::event::ids;
use crate::labelled::Labelled;
use crate::report::summary;
use crate::report::{escape::terminal, jsonl, timeline};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
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
}

impl Args {
    pub fn run(self) -> Result<i32> {
        match &self.store {
            Some(dir) => self.find_in_store(dir),
            None => self.find_in_files(),
        }
    }

    fn print(&self, l: &Labelled, skew: &[crate::correlate::Skew]) {
        if self.json {
            println!("{}", jsonl::request_json(l));
        } else {
            print!("{}", timeline::render(l, skew));
        }
    }

    fn find_in_store(&self, dir: &std::path::Path) -> Result<i32> {
        let store = super::common::open_store(dir)?;
        match store.lookup(&self.id)? {
            Some(l) => {
                self.print(&l, &[]);
                Ok(EXIT_OK)
            }
            None => {
                eprintln!(
                    "tracejoin: no request in {} has the id {:?}",
                    dir.display(),
                    terminal(&self.id)
                );
                Ok(EXIT_FATAL)
            }
        }
    }

    fn find_in_files(&self) -> Result<i32> {
        let (registry, engine) = self.sources.load()?;
        let opts = self.sources.options(self.paths.clone(), &registry)?;
        let wanted: Vec<String> = [ids::normalize(&self.id), ids::normalize_trace(&self.id)]
            .into_iter()
            .flatten()
            .collect();
        let mut found: Option<Labelled> = None;
        let mut searched = 0usize;
        let info = analysis::run_with(&opts, &registry, &engine, &mut |l| {
            searched += 1;
            if found.is_none() && l.request.ids.iter().any(|i| wanted.contains(i)) {
                found = Some(l.clone());
            }
        })?;
        eprint!("{}", summary::render_errors(&info.files));
        match found {
            Some(l) => {
                self.print(&l, &info.skew);
                Ok(exit_code(&info))
            }
            None => {
                eprintln!(
                    "tracejoin: no request has the id {:?} ({searched} requests searched)",
                    terminal(&self.id),
                );
                Ok(EXIT_FATAL)
            }
        }
    }
}
