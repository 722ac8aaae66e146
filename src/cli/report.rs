//! `tracejoin report --store DIR`: the postmortem page (HTML or Markdown).

use super::common::Bounds;
use super::EXIT_OK;
use crate::report::postmortem;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store written by `analyze --out` or `serve --out`.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Where to write the report (`-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-")]
    output: PathBuf,
    /// Markdown, for pasting into a postmortem document, instead of HTML.
    #[arg(long)]
    markdown: bool,
    #[command(flatten)]
    bounds: Bounds,
}

impl Args {
    pub fn run(self) -> Result<i32> {
        let store = super::common::open_store(&self.store)?;
        let range = self.bounds.range()?;
        let data = postmortem::gather(&store, range)?;
        let text = if self.markdown {
            postmortem::markdown(&data)
        } else {
            postmortem::html(&data)
        };
        if self.output.as_os_str() == "-" {
            print!("{text}");
        } else {
            std::fs::write(&self.output, text)
                .with_context(|| format!("cannot write {}", self.output.display()))?;
            eprintln!("tracejoin: wrote {}", self.output.display());
        }
        Ok(EXIT_OK)
    }
}
