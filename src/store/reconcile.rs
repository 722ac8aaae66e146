//! `tracejoin reconcile`: the partial requests of several live instances,
//! joined.
//!
//! Behind the Collector's `loadbalancing` exporter (routed by trace id) each
//! `serve` instance holds whole traces. A gateway line that carries no trace
//! context cannot be routed that way: it lands on any instance (shipped by
//! the Collector's `filelog` receiver), or the gateway's log is followed by an
//! instance of its own. Either way the store gets the gateway's half of a
//! request in one run (`gateway_only`) and the services' half in another
//! (`no_gateway`).
//! Reconcile reads those rows' events back, a partition at a time in time
//! order, through the same `Correlator` and rules as a run, and writes the
//! requests it joined as a run of its own that supersedes the rows it
//! replaced. A request it rebuilds exactly as it was stored is left alone, so
//! running it again changes nothing.

use super::read::{events_of, Store};
use super::write::partition_of;
use super::{RunEntry, StoreWriter};
use crate::correlate::{build_closed, Attempts, Closed, Correlator};
use crate::labelled::Labelled;
use crate::rules::Engine;
use anyhow::Result;
use polars::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The attribute an event carries, while it is being joined again, naming
/// the stored request it was read from.
const READ_FROM: &str = "tracejoin.reconcile.from";

const HOUR_NS: i64 = 3_600_000_000_000;

/// Stored event rows turned back into events and correlated at a time.
const SLICE: usize = 32_768;

/// The flags that say a request is a part: the gateway's without the
/// services', or the services' without the gateway's.
const PARTIAL: [&str; 2] = ["gateway_only", "no_gateway"];

#[derive(Debug, Default)]
pub struct Outcome {
    /// Stored requests read back: the partial ones and those sharing an id
    /// with one.
    pub read: usize,
    /// The runs they belong to.
    pub runs: Vec<String>,
    pub events: u64,
    /// Requests written: joined from several stored rows (or split from one).
    pub written: u64,
    /// Stored rows those replace.
    pub superseded: u64,
    /// Events read back twice (stored by two rows: a request a live run
    /// re-emitted amended after an earlier reconcile joined it, a span
    /// delivered twice), joined once.
    pub duplicates: u64,
    /// The run written, if any request changed.
    pub entry: Option<RunEntry>,
}

pub struct Options {
    /// The idle window; `None`: the largest of the runs read.
    pub window_ms: Option<u64>,
    pub infer_joins: bool,
}

pub fn reconcile(dir: &Path, engine: &Engine, opts: &Options) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let rows = anyhow::Context::context(
        candidates(&store, opts.infer_joins),
        "cannot find the partial requests",
    )?;
    let mut out = Outcome {
        read: rows.len(),
        ..Default::default()
    };
    if rows.is_empty() {
        return Ok(out);
    }
    let run_of = |key: &str| {
        store
            .manifest
            .runs
            .iter()
            .find(|r| super::key_prefix(key) == super::key_prefix(&r.run))
    };
    let runs: BTreeSet<&str> = rows
        .keys()
        .filter_map(|k| run_of(k).map(|r| r.run.as_str()))
        .collect();
    out.runs = runs.iter().map(|r| r.to_string()).collect();
    let window_ms = opts.window_ms.unwrap_or_else(|| {
        (store.manifest.runs.iter())
            .filter(|r| runs.contains(r.run.as_str()))
            .map(|r| r.window_ms)
            .max()
            .unwrap_or(crate::analysis::DEFAULT_WINDOW_MS)
    });

    // The rows of each partition, partitions in time order, each with the
    // instant it ends.
    let mut partitions: BTreeMap<String, (i64, Vec<&str>)> = BTreeMap::new();
    for (key, row) in &rows {
        let end = row.start.map_or(i64::MAX, |t| {
            (t.div_euclid(HOUR_NS) + 1).saturating_mul(HOUR_NS)
        });
        partitions
            .entry(partition_of(row.start))
            .or_insert((end, Vec::new()))
            .1
            .push(key);
    }

    let mut corr = Correlator::new(window_ms);
    if opts.infer_joins {
        corr = corr.with_inferred_joins();
    }
    let mut join = Join {
        engine,
        evaluator: engine.evaluator(),
        attempts: Attempts::default(),
        rows: &rows,
        writer: None,
        dir,
        entry: {
            let mut entry = super::run_entry(&[], engine, window_ms);
            entry.run = reconcile_run_id(rows.keys());
            entry.reconciles = out.runs.clone();
            entry
        },
        written: 0,
        aliases: HashMap::default(),
    };
    // Each event once, by what it is: a span by its trace and span id,
    // anything else by where it came from, its time and its text; the row
    // whose copy is kept, by its index in `row_keys`.
    let row_keys: Vec<&String> = rows.keys().collect();
    let index: HashMap<&str, u32> = (row_keys.iter().enumerate())
        .map(|(i, k)| (k.as_str(), i as u32))
        .collect();
    let mut seen: HashMap<u64, u32> = HashMap::default();
    let mut closed: Vec<Closed> = Vec::new();
    let mut high = i64::MIN;
    for (partition, (end, keys)) in &partitions {
        let keys = DataFrame::new(
            keys.len(),
            vec![Column::new("request_key".into(), keys.as_slice())],
        )?;
        let df = store.events_in(partition, &keys)?;
        // In time order, a slice at a time (gathered by the sorted order, so
        // the partition is not copied whole), closing what went idle after
        // each: memory holds the requests of one window, not of the hour.
        let order = df
            .column("ts_ns")?
            .as_materialized_series()
            .arg_sort(SortOptions::default().with_maintain_order(true));
        for offset in (0..order.len()).step_by(SLICE) {
            let slice = df.take(&order.slice(offset as i64, SLICE))?;
            let from = slice.column("request_key")?.str()?;
            for (i, mut ev) in events_of(&slice)?.into_iter().enumerate() {
                out.events += 1;
                let key = from.get(i).unwrap_or_default();
                let row = index.get(key).copied().unwrap_or(u32::MAX);
                match seen.entry(identity(&ev)) {
                    std::collections::hash_map::Entry::Occupied(kept) => {
                        out.duplicates += 1;
                        if *kept.get() != row {
                            if let Some(k) = row_keys.get(*kept.get() as usize) {
                                join.aliases
                                    .entry(k.to_string())
                                    .or_default()
                                    .insert(key.to_string());
                            }
                        }
                        continue;
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(row);
                    }
                }
                ev.attributes.push((READ_FROM.into(), key.to_string()));
                if let Some(t) = ev.ts {
                    high = high.max(t);
                }
                let ks = crate::correlate::keys(&ev);
                corr.push(ev, ks, high);
            }
            // Not beyond the partition's end: the rows of the next one (a
            // span that started just after the hour, its gateway line just
            // before) are still to come.
            corr.close_idle(high.min(*end), &mut closed);
            join.requests(&mut closed)?;
        }
    }
    corr.close_all(&mut closed);
    join.requests(&mut closed)?;
    // Copies met after the row they copy was already closed: that row stands
    // (written again or as stored), the copies go.
    let late: Vec<String> = join.aliases.drain().flat_map(|(_, c)| c).collect();
    if !late.is_empty() {
        let writer = join.writer()?;
        for key in late {
            writer.supersede(key);
        }
    }
    out.written = join.written;
    if let Some(mut writer) = join.writer {
        out.superseded = writer.superseded_count() as u64;
        writer.set_gaps(Vec::new());
        out.entry = Some(writer.finish()?);
    }
    Ok(out)
}

/// What reconcile knows of a stored row it reads back.
#[derive(Default)]
struct Row {
    start: Option<i64>,
    events: i64,
}

/// The stored rows to read back: every partial request that shares an id
/// with a request of another run (with `infer_joins`, every partial request:
/// an inferred join needs no shared id), and every request that shares an id
/// with one of those (its other half may be complete by itself: a service's
/// log line carrying the gateway's request id). A gateway's refusal that
/// reached no service is partial and alone: it is not read back.
///
/// Three passes over the `requests` files, one file at a time, holding a
/// 64-bit hash per id (a collision only reads back one more row, which is
/// rebuilt as stored and left alone).
fn candidates(store: &Store, infer_joins: bool) -> Result<BTreeMap<String, Row>> {
    let files = store.table_parts("requests")?;
    // 1. Every id → the run holding it, or SHARED when several runs do.
    const SHARED: u32 = u32::MAX;
    let mut runs: Vec<String> = Vec::new();
    let mut holder: HashMap<u64, u32> = HashMap::default();
    for file in &files {
        each_id(file.clone(), |key, id| {
            let run = super::key_prefix(key);
            let r = match runs.iter().position(|x| x == run) {
                Some(r) => r as u32,
                None => {
                    runs.push(run.to_string());
                    (runs.len() - 1) as u32
                }
            };
            holder
                .entry(hash(id))
                .and_modify(|h| {
                    if *h != r {
                        *h = SHARED
                    }
                })
                .or_insert(r);
        })?;
    }
    // 2. Partial requests with a shared id: their ids are wanted.
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut wanted: HashSet<u64> = HashSet::default();
    for file in &files {
        let partial = file
            .clone()
            .select([col("request_key"), col("flags")])
            .explode(by_name(["flags"], true, false), explode())
            .filter(is_partial())
            .select([col("request_key")])
            .unique(None, UniqueKeepStrategy::Any);
        let mut own: HashMap<String, Vec<u64>> = HashMap::default();
        let mut joinable: HashSet<String> = HashSet::default();
        let semi = JoinArgs::new(JoinType::Semi);
        let key = || [col("request_key")];
        each_id(
            file.clone().join(partial.clone(), key(), key(), semi),
            |key, id| {
                let h = hash(id);
                own.entry(key.to_string()).or_default().push(h);
                if infer_joins || holder.get(&h) == Some(&SHARED) {
                    joinable.insert(key.to_string());
                }
            },
        )?;
        if infer_joins {
            // A partial request with no id at all can still be joined by inference.
            let keys = partial.collect()?;
            for k in keys.column("request_key")?.str()?.iter().flatten() {
                joinable.insert(k.to_string());
            }
        }
        for key in joinable {
            wanted.extend(own.remove(&key).unwrap_or_default());
            rows.insert(key, Row::default());
        }
    }
    drop(holder);
    // 3. Every request holding a wanted id, with its start and event count.
    for file in &files {
        let mut more: Vec<String> = Vec::new();
        each_id(file.clone(), |key, id| {
            if !rows.contains_key(key) && wanted.contains(&hash(id)) {
                more.push(key.to_string());
            }
        })?;
        rows.extend(more.into_iter().map(|k| (k, Row::default())));
        let facts = file
            .clone()
            .select([col("request_key"), col("start_ns"), col("events")])
            .collect()?;
        let (keys, starts, events) = (
            facts.column("request_key")?.str()?,
            facts.column("start_ns")?.i64()?,
            facts.column("events")?.i64()?,
        );
        for i in 0..facts.height() {
            if let Some(row) = keys.get(i).and_then(|k| rows.get_mut(k)) {
                row.start = starts.get(i);
                row.events = events.get(i).unwrap_or(0);
            }
        }
    }
    Ok(rows)
}

/// Calls `f(request_key, id)` for every id of every request of a frame.
fn each_id(requests: LazyFrame, mut f: impl FnMut(&str, &str)) -> PolarsResult<()> {
    let pairs = requests
        .select([col("request_key"), col("ids")])
        .explode(by_name(["ids"], true, false), explode())
        .collect()?;
    let (keys, ids) = (
        pairs.column("request_key")?.str()?,
        pairs.column("ids")?.str()?,
    );
    for (key, id) in keys.iter().zip(ids.iter()) {
        if let (Some(key), Some(id)) = (key, id) {
            f(key, id);
        }
    }
    Ok(())
}

/// Whether an exploded `flags` value marks a part.
fn is_partial() -> Expr {
    let mut partial = lit(false);
    for flag in PARTIAL {
        partial = partial.or(col("flags").eq(lit(flag)));
    }
    partial
}

fn hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(id)
}

/// What an event is, whichever row stored it: a span by its trace and span
/// id (unique in its trace), anything else by its origin, time and text.
fn identity(ev: &crate::event::Event) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let h = BuildHasherDefault::<rustc_hash::FxHasher>::default();
    match (&ev.span, &ev.trace_id, &ev.span_id) {
        (Some(_), Some(t), Some(s)) => h.hash_one(("span", t.as_str(), s.as_str())),
        _ => {
            let origin = ev.origin.as_ref();
            h.hash_one((
                ev.source().as_str(),
                origin.map(|o| (&*o.file, o.line, o.item.as_deref())),
                ev.ts,
                ev.message.as_deref(),
            ))
        }
    }
}

/// One row per list item; an empty list gives none.
fn explode() -> ExplodeOptions {
    ExplodeOptions {
        empty_as_null: false,
        keep_nulls: false,
    }
}

/// A reconcile run's id: `rc` and a hash of the rows it read, so that its
/// request keys differ from every other run's.
fn reconcile_run_id<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    use sha2::{Digest, Sha256};
    let mut id = Sha256::new();
    for k in keys {
        id.update(k.as_bytes());
        id.update(b"\n");
    }
    let hex: String = id.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("rc{}", &hex[..14])
}

/// Requests closed by the correlator, labelled and written when they differ
/// from what was stored.
struct Join<'a> {
    engine: &'a Engine,
    evaluator: crate::rules::Evaluator,
    attempts: Attempts,
    rows: &'a BTreeMap<String, Row>,
    writer: Option<StoreWriter>,
    dir: &'a Path,
    /// The run to write, once a request differs.
    entry: RunEntry,
    written: u64,
    /// Stored rows whose events another row also holds, by the row whose
    /// copy was kept: replaced with it.
    aliases: HashMap<String, BTreeSet<String>>,
}

impl Join<'_> {
    /// The run's writer, created with its first row.
    fn writer(&mut self) -> Result<&mut StoreWriter> {
        match self.writer {
            Some(ref mut w) => Ok(w),
            None => Ok(self
                .writer
                .insert(StoreWriter::create(self.dir, self.entry.clone())?)),
        }
    }

    fn requests(&mut self, closed: &mut Vec<Closed>) -> Result<()> {
        for mut c in closed.drain(..) {
            let mut from: BTreeSet<String> = BTreeSet::new();
            for e in &mut c.events {
                if let Some(i) = e.attributes.iter().position(|(k, _)| k == READ_FROM) {
                    from.insert(e.attributes.remove(i).1);
                }
            }
            let mut request = build_closed(c);
            self.attempts.mark(&mut request);
            // Rows whose events were all copies of these.
            let copies: BTreeSet<String> = (from.iter())
                .filter_map(|k| self.aliases.remove(k))
                .flatten()
                .collect();
            // Rebuilt exactly as stored: nothing to write.
            let single = from.iter().next().filter(|_| from.len() == 1);
            if copies.is_empty()
                && single
                    .and_then(|k| self.rows.get(k))
                    .is_some_and(|r| r.events == request.events.len() as i64)
            {
                continue;
            }
            from.extend(copies);
            let verdict = self.engine.evaluate(&self.evaluator, &request);
            let writer = self.writer()?;
            writer.add(&Labelled { request, verdict })?;
            for key in from {
                writer.supersede(key);
            }
            self.written += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reconcile_run_ids_leave_twelve_distinct_characters_for_keys() {
        let a = super::reconcile_run_id(["k1".to_string()].iter());
        let b = super::reconcile_run_id(["k2".to_string()].iter());
        assert_eq!(a.len(), 16);
        assert_ne!(a[..12], b[..12]);
    }
}
