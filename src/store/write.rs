//! Writing the store: labelled requests stream in, rows collect per hour
//! partition, and full partitions are written as Parquet files named after the
//! run, so that writing the same run again replaces its files (idempotent)
//! and a run over new inputs adds files (append).

use super::schema::{self, event_row, request_row, SCHEMA_VERSION};
use super::table::{Table, Val};
use super::{Manifest, RunEntry};
use crate::labelled::Labelled;
use anyhow::{Context, Result};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Requests per partition buffered before a file is written.
const FLUSH_REQUESTS: usize = 100_000;
/// Events per partition buffered before a file is written.
const FLUSH_EVENTS: usize = 400_000;
/// Index rows per row group: small, so a lookup decodes little.
const INDEX_ROW_GROUP: usize = 8_192;

struct Part {
    requests: Table,
    events: Table,
    /// (id, row of the request, first event row, events) of the rows buffered.
    ids: Vec<(String, u32, u32, u32)>,
    files: u32,
}

pub struct StoreWriter {
    dir: PathBuf,
    run: String,
    parts: BTreeMap<String, Part>,
    next_key: u64,
    pub entry: RunEntry,
}

/// `date=YYYY-MM-DD/hour=HH` of a request start (Hive's null partition when unknown).
pub fn partition_of(start: Option<i64>) -> String {
    match start {
        Some(t) => chrono::DateTime::from_timestamp_nanos(t)
            .format("date=%Y-%m-%d/hour=%H")
            .to_string(),
        None => "date=__HIVE_DEFAULT_PARTITION__/hour=__HIVE_DEFAULT_PARTITION__".to_string(),
    }
}

fn write_parquet(path: &Path, df: &mut DataFrame, row_group: Option<usize>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // Written next to its final name and renamed, so a reader never sees half
    // a file; the temporary name is the writer's own.
    let tmp = path.with_extension(format!("parquet.{}.tmp", std::process::id()));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    ParquetWriter::new(file)
        .with_statistics(StatisticsOptions::full())
        .with_row_group_size(row_group)
        .finish(df)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} into place", tmp.display()))?;
    Ok(())
}

/// Removes the files an earlier write of the same run left, finished or not
/// (the temporary files of a writer that was killed).
fn remove_run_files(dir: &Path, run: &str) -> Result<usize> {
    let mut removed = 0;
    for table in ["requests", "events", "index"] {
        let files = format!("{}/{table}/**/*-{run}-*.parquet", dir.display());
        let temporary = format!("{files}.*.tmp");
        let found = [files, temporary]
            .into_iter()
            .flat_map(|p| glob::glob(&p).into_iter().flatten().flatten());
        for path in found {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl StoreWriter {
    /// Opens (or creates) the store at `dir` for the run `entry.run`; files an
    /// earlier write of the same run left are removed first.
    pub fn create(dir: &Path, entry: RunEntry) -> Result<StoreWriter> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the store folder {}", dir.display()))?;
        // Out of the manifest until it is written again: a run killed half
        // way is not read (its finished files are not listed), and the next
        // write of it starts afresh.
        Manifest::update(dir, |m| {
            m.schema_version = SCHEMA_VERSION;
            m.tool = format!("tracejoin {}", env!("CARGO_PKG_VERSION"));
            m.runs.retain(|r| r.run != entry.run);
        })?;
        remove_run_files(dir, &entry.run)?;
        Ok(StoreWriter {
            dir: dir.to_path_buf(),
            run: entry.run.clone(),
            parts: BTreeMap::new(),
            next_key: 0,
            entry,
        })
    }

    pub fn add(&mut self, l: &Labelled) -> Result<()> {
        self.next_key += 1;
        let key = format!("{}-{}", &self.run[..self.run.len().min(12)], self.next_key);
        let partition = partition_of(l.request.start);
        let part = self.parts.entry(partition.clone()).or_insert_with(|| Part {
            requests: Table::new(schema::REQUESTS),
            events: Table::new(&schema::EVENTS),
            ids: Vec::new(),
            files: 0,
        });
        let row = part.requests.len() as u32;
        let first_event = part.events.len() as u32;
        part.requests.push(request_row(&key, l));
        for e in &l.request.events {
            part.events.push(event_row(&key, e));
        }
        let n = l.request.events.len() as u32;
        let mut ids: Vec<&str> = l.request.ids.iter().map(String::as_str).collect();
        ids.push(&key);
        for id in ids {
            part.ids.push((id.to_string(), row, first_event, n));
        }
        self.entry.requests += 1;
        self.entry.events += u64::from(n);
        if l.request.failed {
            self.entry.failed += 1;
        }
        if part.requests.len() >= FLUSH_REQUESTS || part.events.len() >= FLUSH_EVENTS {
            self.flush(&partition)?;
        }
        Ok(())
    }

    fn flush(&mut self, partition: &str) -> Result<()> {
        let Some(part) = self.parts.get_mut(partition) else {
            return Ok(());
        };
        if part.requests.is_empty() {
            return Ok(());
        }
        part.files += 1;
        let name = format!("part-{}-{:04}.parquet", self.run, part.files);
        let requests_file = format!("requests/{partition}/{name}");
        let events_file = format!("events/{partition}/{name}");
        write_parquet(
            &self.dir.join(&requests_file),
            &mut part.requests.take()?,
            None,
        )?;
        write_parquet(&self.dir.join(&events_file), &mut part.events.take()?, None)?;
        let mut ids = std::mem::take(&mut part.ids);
        ids.sort_unstable();
        let mut index = Table::new(schema::INDEX);
        for (id, row, first, n) in ids {
            index.push(vec![
                Val::S(Some(id)),
                Val::S(Some(requests_file.clone())),
                Val::I(Some(i64::from(row))),
                Val::S(Some(events_file.clone())),
                Val::I(Some(i64::from(first))),
                Val::I(Some(i64::from(n))),
            ]);
        }
        let index_file = format!(
            "index/ids-{}-{}-{:04}.parquet",
            self.run,
            partition.replace(['/', '='], "_"),
            part.files
        );
        write_parquet(
            &self.dir.join(index_file),
            &mut index.take()?,
            Some(INDEX_ROW_GROUP),
        )?;
        if !self.entry.partitions.iter().any(|p| p == partition) {
            self.entry.partitions.push(partition.to_string());
        }
        Ok(())
    }

    /// Writes what is buffered and records the run in the manifest; the
    /// store is then readable as it stands (live mode calls this periodically).
    pub fn flush_all(&mut self) -> Result<()> {
        let partitions: Vec<String> = self.parts.keys().cloned().collect();
        for p in partitions {
            self.flush(&p)?;
        }
        self.entry.partitions.sort();
        let entry = self.entry.clone();
        Manifest::update(&self.dir, |manifest| {
            manifest.schema_version = SCHEMA_VERSION;
            manifest.tool = format!("tracejoin {}", env!("CARGO_PKG_VERSION"));
            manifest.runs.retain(|r| r.run != entry.run);
            manifest.runs.push(entry);
        })
    }

    pub fn finish(mut self) -> Result<RunEntry> {
        self.flush_all()?;
        Ok(self.entry)
    }
}
