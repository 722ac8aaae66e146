//! `tracejoin query`: SQL (polars SQL) over the store's `requests` and
//! `events` tables, with optional time bounds applied before the query (and
//! pushed down to the partitions), printed as a table, CSV or JSON lines.

use crate::event::text_enum;
use crate::store::Store;
use anyhow::{anyhow, Result};
use polars::prelude::*;
use polars::sql::SQLContext;
use std::io::Write;

text_enum! {
    /// How `query` prints its answer.
    pub enum OutputFormat {
        Table = "table",
        Csv = "csv",
        Json = "json",
    }
}

/// Time bounds in UTC nanoseconds: requests by `start`, events by `ts`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    /// Keeps the rows of `lf` whose time `column` is in the range, compared
    /// on its exact nanoseconds (`start` → `start_ns`).
    pub fn apply(&self, lf: LazyFrame, column: &str) -> LazyFrame {
        let exact = || col(format!("{column}_ns"));
        let mut lf = lf;
        if let Some(s) = self.since {
            lf = lf.filter(exact().gt_eq(lit(s)));
        }
        if let Some(u) = self.until {
            lf = lf.filter(exact().lt(lit(u)));
        }
        lf
    }
}

/// The SQL context with both tables registered, bounded by `range`.
pub fn context(store: &Store, range: TimeRange) -> Result<SQLContext> {
    let ctx = SQLContext::new();
    ctx.register("requests", range.apply(store.table("requests")?, "start"));
    ctx.register("events", range.apply(store.table("events")?, "ts"));
    Ok(ctx)
}

/// Runs one query; a bad query is an error with polars' message (which
/// names the token and position for syntax errors).
pub fn run(store: &Store, sql: &str, range: TimeRange) -> Result<DataFrame> {
    let mut ctx = context(store, range)?;
    let lf = ctx
        .execute(sql)
        .map_err(|e| anyhow!("bad query: {}", clean(&e)))?;
    lf.collect()
        .map_err(|e| anyhow!("query failed: {}", clean(&e)))
}

fn clean(e: &PolarsError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The table layout for [`OutputFormat::Table`]: every row and column, full
/// cell text (this output is read, not skimmed). polars reads these variables
/// when it prints, so the process sets them while it is still single-threaded.
pub const TABLE_ENV: &[(&str, &str)] = &[
    ("POLARS_FMT_MAX_ROWS", "-1"),
    ("POLARS_FMT_MAX_COLS", "-1"),
    ("POLARS_FMT_STR_LEN", "200"),
    ("POLARS_FMT_TABLE_HIDE_DATAFRAME_SHAPE_INFORMATION", "1"),
    ("POLARS_FMT_TABLE_HIDE_COLUMN_DATA_TYPES", "1"),
];

pub fn write(df: &mut DataFrame, format: OutputFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        OutputFormat::Table => {
            // polars reads its table layout from the environment: see
            // [`TABLE_ENV`], which the command line sets at start-up.
            writeln!(out, "{df}")?;
            writeln!(out, "({} rows)", df.height())?;
        }
        OutputFormat::Csv => {
            CsvWriter::new(&mut *out).finish(df)?;
        }
        OutputFormat::Json => {
            JsonWriter::new(&mut *out)
                .with_json_format(JsonFormat::JsonLines)
                .finish(df)?;
        }
    }
    Ok(())
}
