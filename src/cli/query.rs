//! `tracejoin query --store DIR SQL`: polars SQL over the store's tables.

use super::common::Bounds;
use super::EXIT_OK;
use crate::query::OutputFormat;
use anyhow::Result;
use clap::builder::PossibleValuesParser;
use clap::builder::TypedValueParser as _;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store written by `analyze --out`.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// e.g. "SELECT label, count(*) AS n FROM requests WHERE failed GROUP BY label ORDER BY n DESC"
    sql: String,
    #[arg(
        long,
        default_value = "table",
        value_parser = PossibleValuesParser::new(OutputFormat::ALL.iter().map(|f| f.as_str()))
            .try_map(|s| s.parse::<OutputFormat>())
    )]
    format: OutputFormat,
    #[command(flatten)]
    bounds: Bounds,
}

impl Args {
    pub fn run(self) -> Result<i32> {
        for (k, v) in crate::query::TABLE_ENV {
            // SAFETY: nothing has started a thread yet: clap parsed the
            // arguments on the main thread, and polars' and rayon's pools start
            // lazily, on the first query below.
            unsafe { std::env::set_var(k, v) };
        }
        let store = super::common::open_store(&self.store)?;
        let range = self.bounds.range()?;
        let mut df = crate::query::run(&store, &self.sql, range)?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match crate::query::write(&mut df, self.format, &mut out).and_then(|()| Ok(out.flush()?)) {
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                Ok(EXIT_OK)
            }
            r => r.map(|()| EXIT_OK),
        }
    }
}
