//! Writing the store: labelled requests stream in, rows collect per hour
//! partition, and full partitions are written as Parquet files named after the
//! run, so that writing the same run again replaces its files (idempotent)
//! and a run over new inputs adds files (append).
//!
//! Encoding and compressing a partition's files runs on a writer thread of its
//! own while the run goes on: the analysis does not wait for it. At most one
//! batch of files waits for the writer, which bounds the rows held in memory.

use super::schema::{self, event_row, request_row, SCHEMA_VERSION};
use super::table::{Table, Val};
use super::{Manifest, RunEntry};
use crate::labelled::{Emissions, Labelled};
use anyhow::{Context, Result};
use polars::prelude::*;
use std::borrow::Cow;
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
    writer: Writer,
    /// The last request's hour and its partition: formatting a date for every
    /// request costs as much as writing its row.
    hour: Option<(i64, String)>,
    /// The latest hour a request started in.
    latest_hour: Option<i64>,
    /// Request keys this run replaces, not yet written (`superseded/`).
    superseded: Vec<String>,
    superseded_files: u32,
    /// Live runs: the keys of the last requests written, so that a request
    /// re-emitted amended supersedes its earlier row.
    recent: Emissions<String>,
}

const HOUR_NS: i64 = 3_600_000_000_000;

/// One partition's files, as rows, for the writer thread.
struct Batch {
    requests: (PathBuf, Table),
    events: (PathBuf, Table),
    index: PathBuf,
    /// Relative names of the requests and events files, as the index stores them.
    names: (String, String),
    ids: Vec<(String, u32, u32, u32)>,
}

enum Job {
    Write(Box<Batch>),
    /// Answered once every batch sent before it is on disk.
    Sync(std::sync::mpsc::Sender<()>),
}

/// The writer thread, and the first error it met (later batches are skipped).
struct Writer {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    error: std::sync::Arc<std::sync::Mutex<Option<anyhow::Error>>>,
}

impl Writer {
    fn start() -> Writer {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(1);
        let error = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = error.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Write(batch) => {
                            let failed = seen.lock().map_or(true, |e| e.is_some());
                            if !failed {
                                if let Err(e) = write_batch(*batch) {
                                    if let Ok(mut slot) = seen.lock() {
                                        *slot = Some(e);
                                    }
                                }
                            }
                        }
                        Job::Sync(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .ok();
        Writer {
            jobs: thread.is_some().then_some(tx),
            thread,
            error,
        }
    }

    /// The writer's first error, taken.
    fn failed(&self) -> Result<()> {
        match self.error.lock().ok().and_then(|mut e| e.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn send(&self, batch: Batch) -> Result<()> {
        self.failed()?;
        let Some(jobs) = &self.jobs else {
            // No thread (it could not start): written here.
            return write_batch(batch);
        };
        match jobs.send(Job::Write(Box::new(batch))) {
            // The thread ended: written here.
            Err(std::sync::mpsc::SendError(Job::Write(batch))) => write_batch(*batch),
            _ => Ok(()),
        }
    }

    /// Waits until everything sent is written.
    fn sync(&self) -> Result<()> {
        if let Some(jobs) = &self.jobs {
            let (tx, rx) = std::sync::mpsc::channel();
            if jobs.send(Job::Sync(tx)).is_ok() {
                let _ = rx.recv();
            }
        }
        self.failed()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The first 16 bytes of an id, big-endian: orders as the bytes do.
fn id_prefix(id: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = id.len().min(16);
    b[..n].copy_from_slice(&id.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

fn write_batch(b: Batch) -> Result<()> {
    let (requests_path, mut requests) = b.requests;
    let (events_path, mut events) = b.events;
    write_parquet(&requests_path, &mut requests.take()?, None)?;
    write_parquet(&events_path, &mut events.take()?, None)?;
    // Sorted by id (lookups skip row groups by their min and max): the first
    // 16 bytes as one number decide almost every comparison.
    let mut order: Vec<(u128, u32)> = (b.ids.iter().enumerate())
        .map(|(i, (id, ..))| (id_prefix(id), i as u32))
        .collect();
    order.sort_unstable_by(|x, y| {
        x.0.cmp(&y.0)
            .then_with(|| b.ids[x.1 as usize].cmp(&b.ids[y.1 as usize]))
    });
    let ids = order.iter().map(|&(_, i)| &b.ids[i as usize]);
    let (requests_file, events_file) = b.names;
    let mut index = Table::new(schema::INDEX);
    for (id, row, first, n) in ids {
        let (row, first, n) = (*row, *first, *n);
        index.push(vec![
            Val::S(Some(Cow::Borrowed(id))),
            Val::S(Some(Cow::Borrowed(&requests_file))),
            Val::I(Some(i64::from(row))),
            Val::S(Some(Cow::Borrowed(&events_file))),
            Val::I(Some(i64::from(first))),
            Val::I(Some(i64::from(n))),
        ]);
    }
    write_parquet(&b.index, &mut index.take()?, Some(INDEX_ROW_GROUP))
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
    // Zstandard's level 1: on this data as small as the default level 3
    // (10.2 against 10.6 MB for 100 k requests) for a third less work;
    // Snappy and LZ4 were twice the size.
    let level = polars_parquet::write::ZstdLevel::try_new(1).ok();
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(level))
        // Min, max and nulls: what readers skip row groups by. Distinct
        // counts cost a hash of every value and no reader here uses them.
        .with_statistics(StatisticsOptions::default())
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
    for table in ["requests", "events", "index", "superseded"] {
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
            writer: Writer::start(),
            hour: None,
            latest_hour: None,
            superseded: Vec::new(),
            superseded_files: 0,
            recent: Emissions::new(0),
        })
    }

    /// Live runs: remember the keys of the last `n` requests written, so that
    /// one emitted again amended (revision 2..) supersedes its earlier row.
    pub fn remember_last(&mut self, n: usize) {
        self.recent = Emissions::new(n);
    }

    /// Rows superseded so far.
    pub fn superseded_count(&self) -> usize {
        self.entry.superseded as usize + self.superseded.len()
    }

    /// Records that this run replaces the request row `key` (of any run).
    pub fn supersede(&mut self, key: String) {
        self.superseded.push(key);
    }

    pub fn add(&mut self, l: &Labelled) -> Result<()> {
        self.next_key += 1;
        let key = format!("{}-{}", super::key_prefix(&self.run), self.next_key);
        if l.request.revision > 1 {
            if let Some(earlier) = self.recent.take(&l.request.events) {
                self.superseded.push(earlier);
            }
        }
        self.recent.keep(&l.request.events, key.clone());
        let partition = self.partition(l.request.start);
        if let Some(hour) = l.request.start.map(|t| t.div_euclid(HOUR_NS)) {
            if self.latest_hour.is_none_or(|h| hour > h) {
                self.latest_hour = Some(hour);
                self.flush_before(hour - 1)?;
            }
        }
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

    /// [`partition_of`], formatted once per hour of requests.
    fn partition(&mut self, start: Option<i64>) -> String {
        let Some(t) = start else {
            return partition_of(None);
        };
        let hour = t.div_euclid(HOUR_NS);
        match &self.hour {
            Some((h, p)) if *h == hour => p.clone(),
            _ => {
                let p = partition_of(start);
                self.hour = Some((hour, p.clone()));
                p
            }
        }
    }

    /// Requests close in about time order: an hour partition two behind the
    /// latest request gets no more, so its rows are written now instead of
    /// held to the end (a request that still comes starts another file of it).
    fn flush_before(&mut self, hour: i64) -> Result<()> {
        let before = partition_of(Some(hour * HOUR_NS));
        let old: Vec<String> = (self.parts.iter())
            .filter(|(p, part)| p.as_str() < before.as_str() && !part.requests.is_empty())
            .map(|(p, _)| p.clone())
            .collect();
        for p in old {
            self.flush(&p)?;
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
        let index_file = format!(
            "index/ids-{}-{}-{:04}.parquet",
            self.run,
            partition.replace(['/', '='], "_"),
            part.files
        );
        let requests = std::mem::replace(&mut part.requests, Table::new(schema::REQUESTS));
        let events = std::mem::replace(&mut part.events, Table::new(&schema::EVENTS));
        self.writer.send(Batch {
            requests: (self.dir.join(&requests_file), requests),
            events: (self.dir.join(&events_file), events),
            index: self.dir.join(index_file),
            names: (requests_file, events_file),
            ids: std::mem::take(&mut part.ids),
        })?;
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
        // The manifest lists the run's files once they are all on disk.
        self.writer.sync()?;
        self.write_superseded()?;
        self.entry.partitions.sort();
        let entry = self.entry.clone();
        Manifest::update(&self.dir, |manifest| {
            manifest.schema_version = SCHEMA_VERSION;
            manifest.tool = format!("tracejoin {}", env!("CARGO_PKG_VERSION"));
            manifest.runs.retain(|r| r.run != entry.run);
            manifest.runs.push(entry);
        })
    }

    /// The keys superseded since the last flush, as one more file of the run.
    fn write_superseded(&mut self) -> Result<()> {
        if self.superseded.is_empty() {
            return Ok(());
        }
        self.superseded_files += 1;
        let path = self.dir.join(format!(
            "superseded/part-{}-{:04}.parquet",
            self.run, self.superseded_files
        ));
        let mut table = Table::new(schema::SUPERSEDED);
        for key in &self.superseded {
            table.push(vec![
                Val::S(Some(Cow::Borrowed(key))),
                Val::S(Some(Cow::Borrowed(&self.run))),
            ]);
        }
        write_parquet(&path, &mut table.take()?, None)?;
        self.entry.superseded += self.superseded.len() as u64;
        self.superseded.clear();
        Ok(())
    }

    /// What the run's data cannot tell, recorded in its manifest entry.
    pub fn set_gaps(&mut self, gaps: Vec<String>) {
        self.entry.gaps = gaps;
    }

    pub fn finish(mut self) -> Result<RunEntry> {
        self.flush_all()?;
        Ok(self.entry)
    }
}
