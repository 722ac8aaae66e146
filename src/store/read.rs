//! Reading the store: the tables as polars lazy frames over every partition
//! (for `query` and `report`), and one request by any of its ids through the
//! index (for `timeline`), which reads one row group of one index file and
//! one row range of one partition file.

use super::schema::{EVENTS, INDEX, REQUESTS, SUPERSEDED};
use super::table::Kind;
use super::Manifest;
use crate::correlate::{locate, Request};
use crate::event::{
    Event, FieldValue, Kind as FieldKind, SpanFields, SpanKind, SpanStatus, Text, FIELDS,
};
use crate::labelled::Labelled;
use crate::rules::{Cause, Evidence, Verdict};
use anyhow::{bail, Result};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Store {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Files that cannot be read, each with the reason: left out of every
    /// table, reported by the command (`query` answers from the rest).
    pub skipped: Vec<String>,
    /// The readable files of `requests`, `events`, `index` and `superseded`,
    /// found and checked once when the store opens.
    files: [Vec<PathBuf>; 4],
    /// Request rows a later run replaced (`superseded/`), by the run whose
    /// rows they are (the first twelve characters of its id, which begin its
    /// request keys): left out of every table and lookup.
    superseded: BTreeMap<String, DataFrame>,
}

const TABLES: [&str; 4] = ["requests", "events", "index", "superseded"];

/// The readable files of one table: those of runs the manifest records (a
/// run killed before it finished is not there), each a complete Parquet file
/// (its footer is checked: a truncated or overwritten file is skipped with the
/// reason, naming it).
fn table_files(
    dir: &Path,
    table: &str,
    manifest: &Manifest,
    skipped: &mut Vec<String>,
) -> Vec<PathBuf> {
    let pattern = format!("{}/{table}/**/*.parquet", dir.display());
    let runs: Vec<String> = manifest
        .runs
        .iter()
        .map(|r| format!("-{}-", r.run))
        .collect();
    let mut files = Vec::new();
    for path in glob::glob(&pattern).into_iter().flatten().flatten() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !runs.iter().any(|r| name.contains(r.as_str())) {
            continue;
        }
        match check_parquet(&path) {
            Ok(()) => files.push(path),
            Err(why) => skipped.push(format!(
                "{}: {why}; it is left out (remove it, or run again the `tracejoin analyze --out` that wrote it)",
                path.display()
            )),
        }
    }
    files.sort();
    files
}

/// A Parquet file starts and ends with `PAR1`, and its footer (the metadata)
/// decodes.
fn check_parquet(path: &Path) -> std::result::Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; 4];
    let mut tail = [0u8; 8];
    if len < 12
        || f.read_exact(&mut head).is_err()
        || f.seek(SeekFrom::End(-8)).is_err()
        || f.read_exact(&mut tail).is_err()
        || &head != b"PAR1"
        || &tail[4..] != b"PAR1"
    {
        return Err(format!(
            "not a complete Parquet file ({len} bytes; truncated?)"
        ));
    }
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer + 12 > len {
        return Err("its footer length points outside the file".into());
    }
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    ParquetReader::new(f)
        .schema()
        .map(|_| ())
        .map_err(|e| format!("its metadata does not decode: {e}"))
}

/// Scans files of one table with this version's columns: a file written
/// before a column existed (an older tracejoin) reads it as null instead of
/// failing the whole scan.
fn scan_files(
    paths: Vec<PlRefPath>,
    hive: bool,
    columns: &[(&str, Kind)],
) -> PolarsResult<LazyFrame> {
    let args = ScanArgsParquet {
        hive_options: if hive {
            HiveOptions::new_enabled()
        } else {
            HiveOptions::new_disabled()
        },
        schema: Some(Arc::new(super::table::schema(columns))),
        allow_missing_columns: true,
        ..Default::default()
    };
    LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
}

/// The columns of a version-1 file: times `Datetime[ns]` without a zone,
/// lists as comma-separated text, no nanosecond columns.
fn v1_schema(columns: &[(&str, Kind)]) -> Schema {
    columns
        .iter()
        .filter(|(name, _)| !is_ns_column(name, columns))
        .map(|(name, k)| {
            let dtype = match k {
                Kind::Time => DataType::Datetime(TimeUnit::Nanoseconds, None),
                Kind::List => DataType::String,
                k => k.dtype(),
            };
            Field::new((*name).into(), dtype)
        })
        .collect()
}

/// `start_ns` beside `start`: the exact time of a [`Kind::Time`] column.
fn is_ns_column(name: &str, columns: &[(&str, Kind)]) -> bool {
    name.strip_suffix("_ns")
        .is_some_and(|t| columns.iter().any(|(n, k)| *n == t && *k == Kind::Time))
}

/// A version-1 frame in this version's columns: the nanosecond columns from
/// the old times, times as UTC microseconds, lists split on commas (an empty
/// text is the empty list).
fn upgrade_v1(lf: LazyFrame, columns: &[(&str, Kind)]) -> LazyFrame {
    let mut exprs = Vec::new();
    for (name, kind) in columns {
        let c = || col(*name);
        match kind {
            Kind::Time => exprs.push(
                c().cast(DataType::Datetime(TimeUnit::Microseconds, None))
                    .cast(DataType::Int64)
                    .cast(super::table::time_dtype()),
            ),
            Kind::List => {
                let split = || c().str().split(lit(","));
                // "" split is [""]: an empty text is the empty list.
                exprs.push(
                    when(c().eq(lit("")))
                        .then(split().list().head(lit(0)))
                        .otherwise(split())
                        .alias(*name),
                )
            }
            Kind::Int if is_ns_column(name, columns) => {
                let time = name.trim_end_matches("_ns");
                exprs.push(col(time).cast(DataType::Int64).alias(*name));
            }
            _ => {}
        }
    }
    lf.with_columns(exprs)
}

impl Store {
    /// The schema version a file was written with: its run's.
    fn version_of(&self, path: &Path) -> u32 {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        self.manifest
            .runs
            .iter()
            .find(|r| name.contains(&format!("-{}-", r.run)))
            .map_or(super::schema::SCHEMA_VERSION, |r| r.schema_version)
    }

    /// Files of one table as one frame in this version's columns: files of
    /// each schema version scanned together, older ones converted.
    fn scan_versioned(
        &self,
        files: &[PathBuf],
        hive: bool,
        columns: &[(&str, Kind)],
    ) -> PolarsResult<LazyFrame> {
        let refs = |v1: bool| -> Vec<PlRefPath> {
            files
                .iter()
                .filter(|p| (self.version_of(p) < 2) == v1)
                .map(|p| PlRefPath::new(p.display().to_string()))
                .collect()
        };
        let (old, new) = (refs(true), refs(false));
        let hive_args = || {
            if hive {
                HiveOptions::new_enabled()
            } else {
                HiveOptions::new_disabled()
            }
        };
        // One column order for every frame: the schema's, then the partition's.
        let mut order: Vec<Expr> = columns.iter().map(|(n, _)| col(*n)).collect();
        if hive {
            order.extend([col("date"), col("hour")]);
        }
        let mut frames = Vec::new();
        if !new.is_empty() {
            frames.push(scan_files(new, hive, columns)?.select(order.clone()));
        }
        if !old.is_empty() {
            let args = ScanArgsParquet {
                hive_options: hive_args(),
                schema: Some(Arc::new(v1_schema(columns))),
                allow_missing_columns: true,
                ..Default::default()
            };
            let lf = LazyFrame::scan_parquet_files(old.into_iter().collect(), args)?;
            frames.push(upgrade_v1(lf, columns).select(order));
        }
        match frames.len() {
            0 => Ok(DataFrame::empty_with_schema(&super::table::schema(columns)).lazy()),
            1 => Ok(frames.pop().expect("one frame")),
            _ => concat(frames, UnionArgs::default()),
        }
    }

    pub fn open(dir: &Path) -> Result<Store> {
        match Manifest::read(dir)? {
            Some(manifest) => Ok(Store {
                dir: dir.to_path_buf(),
                manifest,
                skipped: Vec::new(),
                files: Default::default(),
                superseded: BTreeMap::new(),
            }
            .checked()?),
            None => bail!(
                "{} is not a tracejoin store (no manifest.json); write one with `tracejoin analyze PATH... --out {}`",
                dir.display(),
                dir.display()
            ),
        }
    }

    /// Finds each table's readable files once, and those that cannot be read
    /// for the command to report.
    fn checked(mut self) -> Result<Store> {
        for (i, table) in TABLES.iter().enumerate() {
            self.files[i] = table_files(&self.dir, table, &self.manifest, &mut self.skipped);
        }
        let files = self.files("superseded");
        if !files.is_empty() {
            let paths = files
                .iter()
                .map(|p| PlRefPath::new(p.display().to_string()))
                .collect();
            let keys = scan_files(paths, false, SUPERSEDED)?
                .select([col("request_key")])
                .unique(None, UniqueKeepStrategy::Any)
                .collect();
            let keys = anyhow::Context::context(keys, "cannot read the superseded request keys")?;
            let mut by_run: BTreeMap<String, Vec<&str>> = BTreeMap::new();
            for key in keys.column("request_key")?.str()?.iter().flatten() {
                let run = super::key_prefix(key);
                by_run.entry(run.to_string()).or_default().push(key);
            }
            for (run, keys) in by_run {
                let column = Column::new("request_key".into(), keys.as_slice());
                self.superseded
                    .insert(run, DataFrame::new(keys.len(), vec![column])?);
            }
        }
        Ok(self)
    }

    /// `lf` (of the run `run`, or of every run) without the rows a later run
    /// replaced.
    fn current(&self, lf: LazyFrame, run: Option<&str>) -> Result<LazyFrame> {
        let keys = match run {
            Some(run) => match self.superseded.get(super::key_prefix(run)) {
                Some(keys) => keys.clone(),
                None => return Ok(lf),
            },
            None if self.superseded.is_empty() => return Ok(lf),
            None => {
                let mut all =
                    DataFrame::empty_with_schema(&super::table::schema(SUPERSEDED[..1].as_ref()));
                for keys in self.superseded.values() {
                    all.vstack_mut(keys)?;
                }
                all
            }
        };
        Ok(lf.join(
            keys.lazy(),
            [col("request_key")],
            [col("request_key")],
            JoinArgs::new(JoinType::Anti),
        ))
    }

    /// The run that wrote a file (its name holds the run id).
    fn run_of(&self, file: &Path) -> Option<&str> {
        let name = file.file_name()?.to_str()?;
        (self.manifest.runs.iter())
            .find(|r| name.contains(&format!("-{}-", r.run)))
            .map(|r| r.run.as_str())
    }

    fn files(&self, table: &str) -> &[PathBuf] {
        TABLES
            .iter()
            .position(|t| *t == table)
            .map_or(&[], |i| &self.files[i])
    }

    /// `requests` or `events`, every partition, with the Hive columns `date` and `hour`.
    pub fn table(&self, table: &str) -> Result<LazyFrame> {
        let schema = match table {
            "requests" => super::schema::REQUESTS,
            "events" => &super::schema::EVENTS,
            _ => bail!("no table {table:?} (the store has requests and events)"),
        };
        let files = self.files(table);
        if files.is_empty() {
            // An empty store still answers queries, with the right columns.
            let mut t = super::table::Table::new(schema);
            return Ok(t.take()?.lazy());
        }
        let lf = anyhow::Context::with_context(self.scan_versioned(files, true, schema), || {
            format!("cannot read the {table} table")
        })?;
        self.current(lf, None)
    }

    /// `requests` or `events` as one lazy frame per file, without the Hive
    /// columns: for aggregates that fold file by file, so that memory holds
    /// one file's rows at a time however many the range has.
    pub fn table_parts(&self, table: &str) -> Result<Vec<LazyFrame>> {
        let schema = match table {
            "requests" => super::schema::REQUESTS,
            "events" => &super::schema::EVENTS,
            _ => bail!("no table {table:?} (the store has requests and events)"),
        };
        self.files(table)
            .iter()
            .map(|p| {
                anyhow::Context::with_context(
                    self.scan_versioned(std::slice::from_ref(p), false, schema),
                    || format!("cannot read {}", p.display()),
                )
                .and_then(|lf| self.current(lf, Some(self.run_of(p).unwrap_or(""))))
            })
            .collect()
    }

    /// The request with this id (request id, trace id, correlation id, or the
    /// store's request key), rebuilt from its stored events, with its stored verdict.
    pub fn lookup(&self, id: &str) -> Result<Option<Labelled>> {
        let mut wanted: Vec<String> = [
            crate::event::ids::normalize(id),
            crate::event::ids::normalize_trace(id),
            Some(id.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        wanted.dedup();
        let index: Vec<PlRefPath> = self
            .files("index")
            .iter()
            .map(|p| PlRefPath::new(p.display().to_string()))
            .collect();
        if index.is_empty() {
            return Ok(None);
        }
        let mut filter = lit(false);
        for w in &wanted {
            filter = filter.or(col("id").eq(lit(w.clone())));
        }
        // Every hit: an id may name a row a later run replaced (a partial
        // request `reconcile` joined) beside the row that replaced it.
        let hits = scan_files(index, false, INDEX)?.filter(filter).collect()?;
        let text = |c: &str, i: usize| -> Result<String> {
            Ok(hits
                .column(c)?
                .str()?
                .get(i)
                .unwrap_or_default()
                .to_string())
        };
        let int =
            |c: &str, i: usize| -> Result<i64> { Ok(hits.column(c)?.i64()?.get(i).unwrap_or(0)) };
        let file = |f: &str| [self.dir.join(f)];
        for i in 0..hits.height() {
            let (requests_file, row) = (text("requests_file", i)?, int("row", i)?);
            let request = self
                .scan_versioned(&file(&requests_file), false, REQUESTS)?
                .slice(row, 1)
                .collect()?;
            let key = strs(&request, "request_key")?.get(0).unwrap_or_default();
            if self.is_superseded(key) {
                continue;
            }
            let (events_file, first, n) = (
                text("events_file", i)?,
                int("events_row", i)?,
                int("events_len", i)?,
            );
            let events = self
                .scan_versioned(&file(&events_file), false, &EVENTS)?
                .slice(first, n as IdxSize)
                .collect()?;
            return Ok(Some(rebuild(&request, &events)?));
        }
        Ok(None)
    }

    /// The events of the requests `keys` (a frame with `request_key`) stored in
    /// one partition (`date=…/hour=…`), as stored: what `reconcile` reads
    /// back, a partition at a time.
    pub(super) fn events_in(&self, partition: &str, keys: &DataFrame) -> Result<DataFrame> {
        let needle = format!("/{partition}/");
        let files: Vec<PathBuf> = self
            .files("events")
            .iter()
            .filter(|p| p.display().to_string().contains(&needle))
            .cloned()
            .collect();
        // File by file: reading one holds its rows, not the partition's.
        let mut df = DataFrame::empty_with_schema(&super::table::schema(&EVENTS));
        for file in files {
            let part = self
                .scan_versioned(std::slice::from_ref(&file), false, &EVENTS)?
                .join(
                    keys.clone().lazy(),
                    [col("request_key")],
                    [col("request_key")],
                    JoinArgs::new(JoinType::Semi),
                )
                .collect()?;
            df.vstack_mut_owned(part)?;
        }
        df.rechunk_mut();
        Ok(df)
    }

    fn is_superseded(&self, key: &str) -> bool {
        self.superseded
            .get(super::key_prefix(key))
            .and_then(|df| df.column("request_key").ok()?.str().ok().cloned())
            .is_some_and(|keys| keys.iter().any(|k| k == Some(key)))
    }
}

/// The first row of a list column, as text.
fn first_list(df: &DataFrame, c: &str) -> Result<Vec<String>> {
    let Some(list) = df.column(c)?.list()?.get_as_series(0) else {
        return Ok(Vec::new());
    };
    let text = list.str()?;
    Ok((0..text.len())
        .filter_map(|i| text.get(i).map(str::to_string))
        .collect())
}

fn strs<'a>(df: &'a DataFrame, c: &str) -> Result<&'a StringChunked> {
    Ok(df.column(c)?.str()?)
}

/// A time column as nanoseconds (stored as microseconds).
fn times(df: &DataFrame, c: &str) -> Result<Vec<Option<i64>>> {
    let col = df.column(c)?.cast(&DataType::Int64)?;
    let ca = col.i64()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).map(|us| us * 1000))
        .collect())
}

fn ints(df: &DataFrame, c: &str) -> Result<Vec<Option<i64>>> {
    let ca = df.column(c)?.i64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

fn floats(df: &DataFrame, c: &str) -> Result<Vec<Option<f64>>> {
    let ca = df.column(c)?.f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

/// A typed column of the events table, read once per batch of rows.
enum Col<'a> {
    S(&'a StringChunked),
    I(Vec<Option<i64>>),
    F(Vec<Option<f64>>),
}

/// Events back from their rows (the inverse of [`super::schema::event_row`]):
/// every schema field from its column, by [`FIELDS`].
pub(super) fn events_of(df: &DataFrame) -> Result<Vec<Event>> {
    let t = |c| strs(df, c);
    let (source, format, origin) = (t("source")?, t("format")?, t("origin")?);
    let (ts, span_end) = (ints(df, "ts_ns")?, times(df, "span_end")?);
    let precision = ints(df, "ts_precision_ns")?;
    let cols: Vec<Col> = FIELDS
        .iter()
        .map(|f| {
            Ok(match f.kind {
                FieldKind::Text => Col::S(strs(df, f.name)?),
                FieldKind::Int => Col::I(ints(df, f.name)?),
                FieldKind::Millis => Col::F(floats(df, f.name)?),
            })
        })
        .collect::<Result<_>>()?;
    let (span_name, span_kind, span_status, span_msg, exceptions, attributes) = (
        t("span_name")?,
        t("span_kind")?,
        t("span_status")?,
        t("span_status_message")?,
        t("exceptions")?,
        t("attributes")?,
    );
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let span = span_name.get(i).map(|name| {
            Box::new(SpanFields {
                name: name.to_string(),
                kind: span_kind
                    .get(i)
                    .and_then(|k| k.parse().ok())
                    .unwrap_or(SpanKind::Unspecified),
                status: span_status
                    .get(i)
                    .and_then(|k| k.parse().ok())
                    .unwrap_or(SpanStatus::Unset),
                status_message: span_msg.get(i).map(str::to_string),
                end_ts: span_end[i],
                exceptions: exceptions
                    .get(i)
                    .and_then(|x| serde_json::from_str(x).ok())
                    .unwrap_or_default(),
            })
        });
        let attributes = attributes
            .get(i)
            .and_then(|a| serde_json::from_str::<BTreeMap<Text, String>>(a).ok())
            .map(|m| m.into_iter().collect())
            .unwrap_or_default();
        let mut ev = Event {
            ts: ts[i],
            ts_precision_ns: precision[i].unwrap_or(0),
            source: source.get(i).and_then(|s| s.parse().ok()),
            format: Text::from(format.get(i).unwrap_or("store")),
            origin: origin.get(i).and_then(|o| o.parse().ok()),
            span,
            attributes,
            ..Default::default()
        };
        for (f, col) in FIELDS.iter().zip(&cols) {
            let v = match col {
                Col::S(c) => c.get(i).map(FieldValue::Text),
                Col::I(c) => c[i].map(FieldValue::Int),
                Col::F(c) => c[i].map(FieldValue::Millis),
            };
            if let Some(v) = v {
                (f.set)(&mut ev, v);
            }
        }
        out.push(ev);
    }
    Ok(out)
}

/// A request from its stored row and events, as stored: the summary fields
/// and verdict are the row's (the rules of the run that wrote it), not derived
/// again; only which event is the gateway's and which the entry span is found
/// from the events.
fn rebuild(request: &DataFrame, events: &DataFrame) -> Result<Labelled> {
    let mut events = events_of(events)?;
    let (gateway, server_span) = locate(&mut events);
    let t = |c| strs(request, c);
    let text = |c| -> Result<Option<Text>> { Ok(t(c)?.get(0).map(Text::from)) };
    let list = |c: &str| -> Result<Vec<String>> { first_list(request, c) };
    let request_row = Request {
        gateway,
        server_span,
        request_id: text("request_id")?,
        trace_id: text("trace_id")?,
        ids: list("ids")?,
        start: ints(request, "start_ns")?[0],
        duration_ms: floats(request, "duration_ms")?[0],
        method: text("method")?,
        host: text("host")?,
        path: text("path")?,
        route: text("route")?,
        status: ints(request, "status")?[0].and_then(|s| u16::try_from(s).ok()),
        service: text("service")?,
        consumer: text("consumer")?,
        failed: request.column("failed")?.bool()?.get(0).unwrap_or(false),
        // A flag this version does not know (a newer writer's) is left out.
        flags: list("flags")?
            .iter()
            .filter_map(|f| f.parse().ok())
            .collect(),
        inferred: floats(request, "join_confidence")?[0].map(|c| c as f32),
        revision: 1,
        attempt: ints(request, "attempt")?[0].and_then(|a| u32::try_from(a).ok()),
        retry_of: text("retry_of")?,
        events,
    };
    let verdict = match t("label")?.get(0) {
        None => None,
        Some(label) => Some(Verdict {
            label: label
                .parse()
                .map_err(|e| anyhow::anyhow!("stored label: {e}"))?,
            rule: t("rule")?.get(0).unwrap_or_default().to_string(),
            explanation: t("explanation")?.get(0).unwrap_or_default().to_string(),
            evidence: t("evidence")?
                .get(0)
                .map(serde_json::from_str::<Vec<Evidence>>)
                .transpose()
                .map_err(|e| anyhow::anyhow!("stored evidence: {e}"))?
                .unwrap_or_default(),
            // Stores written before causes were kept have none.
            cause: match (t("cause_kind")?.get(0), t("cause_service")?.get(0)) {
                (Some(kind), Some(service)) => Some(Cause {
                    kind: kind
                        .parse()
                        .map_err(|e| anyhow::anyhow!("stored cause: {e}"))?,
                    service: service.to_string(),
                    operation: t("cause_operation")?.get(0).map(str::to_string),
                    span_id: t("cause_span_id")?.get(0).map(str::to_string),
                    origin: t("cause_origin")?.get(0).map(str::to_string),
                    path: list("cause_path")?,
                }),
                _ => None,
            },
        }),
    };
    Ok(Labelled {
        request: request_row,
        verdict,
    })
}
