//! `tracejoin diff`: the label mix and failing routes of two windows of a
//! store (before and after a change), or of two stores.

use super::common::{parse_duration_ms, parse_time};
use super::EXIT_OK;
use crate::query::TimeRange;
use crate::report::diff::{Diff, Side};
use anyhow::{anyhow, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
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
}

impl Args {
    pub fn run(self) -> Result<i32> {
        let base = super::common::open_store(&self.store)?;
        let (before, after) = match (&self.against, &self.at) {
            (Some(other), None) => {
                let other = super::common::open_store(other)?;
                let all = TimeRange::default();
                (
                    Side::of(&base, all, self.store.display().to_string())?,
                    Side::of(&other, all, other.dir.display().to_string())?,
                )
            }
            (None, Some(at)) => {
                let t = parse_time(at)?;
                let w = self.window as i64 * 1_000_000;
                let b = TimeRange {
                    since: Some(t - w),
                    until: Some(t),
                };
                let a = TimeRange {
                    since: Some(t),
                    until: Some(t + w),
                };
                (
                    Side::of(&base, b, format!("before {at}"))?,
                    Side::of(&base, a, format!("from {at}"))?,
                )
            }
            _ => {
                return Err(anyhow!(
                    "give either --at TIME (two windows of one store) or --against DIR (two stores)"
                ))
            }
        };
        let d = Diff::new(before, after);
        print!(
            "{}",
            if self.markdown {
                d.markdown()
            } else {
                d.text()
            }
        );
        Ok(EXIT_OK)
    }
}
