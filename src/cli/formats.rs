//! `tracejoin formats`: the loaded format definitions, with a sample each.

use super::EXIT_OK;
use crate::parse::Registry;
use crate::report::escape::terminal;
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_name = "DIR")]
    parsers: Option<PathBuf>,
    /// Show each definition's sample lines.
    #[arg(long, short)]
    verbose: bool,
}

impl Args {
    pub fn run(self) -> Result<i32> {
        let registry = Registry::load(self.parsers.as_deref())?;
        for f in &registry.formats {
            println!(
                "{:<24} {:<9} {:<7} {}",
                f.name,
                f.source.as_str(),
                format!("{:?}", f.def.kind).to_lowercase(),
                f.def.title
            );
            println!("{:<24} source of truth: {}", "", f.def.reference);
            if f.loaded_from != "built-in" {
                println!("{:<24} loaded from {}", "", f.loaded_from);
            }
            let samples = if self.verbose { f.def.samples.len() } else { 1 };
            for s in f.def.samples.iter().take(samples) {
                let line: String = s
                    .line
                    .chars()
                    .take(if self.verbose { 10_000 } else { 160 })
                    .collect();
                println!("{:<24} e.g. {}", "", terminal(&line));
            }
        }
        Ok(EXIT_OK)
    }
}
