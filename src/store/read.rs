//! Reading the store: the tables as polars lazy frames over every partition
//! (for `query` and `report`), and one request by any of its ids through the
//! index (for `timeline`), which reads one row group of one index file and
//! one row range of one partition file.

use super::Manifest;
use crate::analysis::Labelled;
use crate::correlate::{build_request, keys};
use crate::event::{Event, Origin, Source, SpanException, SpanFields, SpanKind, Text};
use crate::rules::{Evidence, Verdict};
use anyhow::{bail, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Store {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

fn scan(pattern: &str, hive: bool) -> PolarsResult<LazyFrame> {
    let args = ScanArgsParquet {
        hive_options: if hive {
            HiveOptions::new_enabled()
        } else {
            HiveOptions::new_disabled()
        },
        ..Default::default()
    };
    LazyFrame::scan_parquet(PlRefPath::new(pattern), args)
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        match Manifest::read(dir)? {
            Some(manifest) => Ok(Store {
                dir: dir.to_path_buf(),
                manifest,
            }),
            None => bail!(
                "{} is not a tracejoin store (no manifest.json); write one with `tracejoin analyze PATH... --out {}`",
                dir.display(),
                dir.display()
            ),
        }
    }

    fn has_files(&self, table: &str) -> bool {
        let pattern = format!("{}/{table}/**/*.parquet", self.dir.display());
        glob::glob(&pattern)
            .into_iter()
            .flatten()
            .flatten()
            .next()
            .is_some()
    }

    /// `requests` or `events`, every partition, with the Hive columns `date` and `hour`.
    pub fn table(&self, table: &str) -> Result<LazyFrame> {
        let schema = match table {
            "requests" => super::schema::REQUESTS,
            "events" => super::schema::EVENTS,
            _ => bail!("no table {table:?} (the store has requests and events)"),
        };
        if !self.has_files(table) {
            // An empty store still answers queries, with the right columns.
            let mut t = super::table::Table::new(schema);
            return Ok(t.take()?.lazy());
        }
        let pattern = format!("{}/{table}/**/*.parquet", self.dir.display());
        anyhow::Context::with_context(scan(&pattern, true), || {
            format!("cannot read the {table} table")
        })
    }

    /// The request with this id (request id, trace id, correlation id, or the
    /// store's request key), rebuilt from its stored events, with its stored verdict.
    pub fn lookup(&self, id: &str) -> Result<Option<Labelled>> {
        let mut wanted: Vec<String> = [
            crate::correlate::ids::normalize(id),
            crate::correlate::ids::normalize_trace(id),
            Some(id.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        wanted.dedup();
        if !self.has_files("index") {
            return Ok(None);
        }
        let pattern = format!("{}/index/*.parquet", self.dir.display());
        let mut filter = lit(false);
        for w in &wanted {
            filter = filter.or(col("id").eq(lit(w.clone())));
        }
        let hits = scan(&pattern, false)?.filter(filter).limit(1).collect()?;
        if hits.height() == 0 {
            return Ok(None);
        }
        let text = |c: &str| -> Result<String> {
            Ok(hits
                .column(c)?
                .str()?
                .get(0)
                .unwrap_or_default()
                .to_string())
        };
        let int = |c: &str| -> Result<i64> { Ok(hits.column(c)?.i64()?.get(0).unwrap_or(0)) };
        let (requests_file, row) = (text("requests_file")?, int("row")?);
        let (events_file, first, n) =
            (text("events_file")?, int("events_row")?, int("events_len")?);
        let request = scan(&self.dir.join(&requests_file).display().to_string(), false)?
            .slice(row, 1)
            .collect()?;
        let events = scan(&self.dir.join(&events_file).display().to_string(), false)?
            .slice(first, n as IdxSize)
            .collect()?;
        Ok(Some(rebuild(&request, &events)?))
    }
}

fn strs<'a>(df: &'a DataFrame, c: &str) -> Result<&'a StringChunked> {
    Ok(df.column(c)?.str()?)
}

fn times(df: &DataFrame, c: &str) -> Result<Vec<Option<i64>>> {
    let col = df.column(c)?.cast(&DataType::Int64)?;
    let ca = col.i64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

fn ints(df: &DataFrame, c: &str) -> Result<Vec<Option<i64>>> {
    let ca = df.column(c)?.i64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

fn floats(df: &DataFrame, c: &str) -> Result<Vec<Option<f64>>> {
    let ca = df.column(c)?.f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

/// Events back from their rows (the inverse of [`super::schema::event_row`]).
fn events_of(df: &DataFrame) -> Result<Vec<Event>> {
    let t = |c| strs(df, c);
    let (source, format, origin) = (t("source")?, t("format")?, t("origin")?);
    let (ts, span_end) = (times(df, "ts")?, times(df, "span_end")?);
    let (status, bin, bout) = (
        ints(df, "status")?,
        ints(df, "bytes_in")?,
        ints(df, "bytes_out")?,
    );
    let (dur, udur) = (
        floats(df, "duration_ms")?,
        floats(df, "upstream_duration_ms")?,
    );
    let text = |c: &StringChunked, i: usize| c.get(i).map(Text::from);
    let cols: Vec<&StringChunked> = [
        "service",
        "request_id",
        "correlation_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "method",
        "host",
        "path",
        "route",
        "upstream_status",
        "upstream_addr",
        "client_ip",
        "consumer",
        "level",
        "message",
        "gateway_error",
    ]
    .iter()
    .map(|c| strs(df, c))
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
        let origin = origin.get(i).map(|o| {
            let (file_line, item) = match o.rsplit_once('#') {
                Some((a, b)) => (a, Some(b.to_string())),
                None => (o, None),
            };
            let (file, line) = file_line
                .rsplit_once(':')
                .map_or((file_line, 0), |(f, l)| (f, l.parse().unwrap_or(0)));
            Origin {
                file: Arc::from(file),
                line,
                item,
            }
        });
        let span = span_name.get(i).map(|name| {
            let exceptions: Vec<SpanException> = exceptions
                .get(i)
                .and_then(|x| serde_json::from_str::<Vec<serde_json::Value>>(x).ok())
                .unwrap_or_default()
                .iter()
                .map(|x| SpanException {
                    r#type: x["type"].as_str().map(str::to_string),
                    message: x["message"].as_str().map(str::to_string),
                })
                .collect();
            Box::new(SpanFields {
                name: name.to_string(),
                kind: match span_kind.get(i).unwrap_or("") {
                    "internal" => SpanKind::Internal,
                    "server" => SpanKind::Server,
                    "client" => SpanKind::Client,
                    "producer" => SpanKind::Producer,
                    "consumer" => SpanKind::Consumer,
                    _ => SpanKind::Unspecified,
                },
                status_code: match span_status.get(i).unwrap_or("") {
                    "error" => "error",
                    "ok" => "ok",
                    _ => "unset",
                },
                status_message: span_msg.get(i).map(str::to_string),
                end_ts: span_end[i],
                exceptions,
            })
        });
        let attributes = attributes
            .get(i)
            .and_then(|a| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(a).ok()
            })
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k.into(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Event {
            ts: ts[i],
            source: source.get(i).and_then(Source::parse),
            format: crate::parse::intern(format.get(i).unwrap_or("store")),
            origin,
            service: text(cols[0], i),
            request_id: text(cols[1], i),
            correlation_id: text(cols[2], i),
            trace_id: text(cols[3], i),
            span_id: text(cols[4], i),
            parent_span_id: text(cols[5], i),
            method: text(cols[6], i),
            host: text(cols[7], i),
            path: text(cols[8], i),
            route: text(cols[9], i),
            status: status[i].map(|s| s as u16),
            upstream_status: text(cols[10], i),
            upstream_addr: text(cols[11], i),
            duration_ms: dur[i],
            upstream_duration_ms: udur[i],
            bytes_in: bin[i].map(|b| b as u64),
            bytes_out: bout[i].map(|b| b as u64),
            client_ip: text(cols[12], i),
            consumer: text(cols[13], i),
            level: text(cols[14], i),
            message: text(cols[15], i),
            gateway_error: text(cols[16], i),
            span,
            attributes,
        });
    }
    Ok(out)
}

/// A request from its stored row and events; the verdict is the stored one
/// (the rules of the run that wrote it), not re-evaluated.
fn rebuild(request: &DataFrame, events: &DataFrame) -> Result<Labelled> {
    let events = events_of(events)?;
    let ks: Vec<String> = {
        let mut all: Vec<String> = events.iter().flat_map(keys).collect();
        all.sort();
        all.dedup();
        all
    };
    let mut r = build_request(events, ks);
    let t = |c| strs(request, c);
    if let Some(flags) = t("flags")?.get(0) {
        for f in flags.split(',').filter(|f| !f.is_empty()) {
            let f = crate::parse::intern(f);
            if !r.flags.contains(&f) {
                r.flags.push(f);
            }
        }
    }
    r.inferred = floats(request, "join_confidence")?[0].map(|c| c as f32);
    let verdict = match t("label")?.get(0) {
        None => None,
        Some(label) => Some(Verdict {
            label: label.to_string(),
            rule: t("rule")?.get(0).unwrap_or_default().to_string(),
            explanation: t("explanation")?.get(0).unwrap_or_default().to_string(),
            evidence: t("evidence")?
                .get(0)
                .and_then(|e| serde_json::from_str::<Vec<serde_json::Value>>(e).ok())
                .unwrap_or_default()
                .iter()
                .map(|e| Evidence {
                    origin: e["origin"].as_str().unwrap_or_default().to_string(),
                    source: e["source"].as_str().unwrap_or_default().to_string(),
                    detail: e["detail"].as_str().unwrap_or_default().to_string(),
                })
                .collect(),
        }),
    };
    Ok(Labelled {
        request: r,
        verdict,
    })
}
