//! A batch run: inputs → parsed events → windowed correlation → verdicts,
//! streamed to a sink. `analyze` and `timeline` use it; printing is left to
//! [`crate::report`].
//!
//! Inputs are read in event-time order (always the input that is furthest
//! behind), each in chunks parsed in parallel; a request is labelled and handed
//! to the sink as soon as every input has moved past its idle window.

use crate::correlate::{build_closed, Attempts, Closed, Correlator, Request, SkewEstimator};
use crate::ingest::{expand_inputs, Input, DEFAULT_MAX_LINE};
use crate::labelled::{Labelled, RunInfo};
use crate::parse::shipped::ShippedLines;
use crate::parse::{parse_chunk, FileReport, Format, InputStream, LineError, Parsed, Registry};
use crate::rules::Engine;
use anyhow::Result;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of lines per parse task.
const CHUNK_BYTES: usize = 512 << 10;
/// Default idle window: a request with no event active for this long (event
/// time, across all inputs) is complete. Events count as active until they
/// end, so long requests stay open; the window covers clock skew and delivery
/// delay between sources. Memory and speed scale with it.
pub const DEFAULT_WINDOW_MS: u64 = 30_000;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub paths: Vec<PathBuf>,
    /// Formats forced on inputs (`--format PATH=NAME`) instead of detection.
    pub formats: Vec<(PathBuf, Arc<Format>)>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub max_line: Option<usize>,
    pub window_ms: Option<u64>,
    /// Bytes read so far across inputs, updated as the run goes (for a
    /// progress display).
    pub progress: Option<Arc<AtomicU64>>,
    /// Join id-less gateway lines to spans by method, path, time and client.
    pub infer_joins: bool,
    /// One time shard of a larger run: see [`Shard`].
    pub shard: Option<Shard>,
}

/// A time shard (`analyze --shard-start --shard-end`): the run emits exactly
/// the requests whose start falls in `[start, end)`, so that shards run
/// anywhere add up to one run. Events more than `guard` outside the shard
/// are dropped before correlation: a request that straddles a boundary is
/// complete in the shard where it starts as long as it lasts less than the
/// guard (and is built, not emitted, in the other).
#[derive(Debug, Clone, Copy)]
pub struct Shard {
    pub start: i64,
    pub end: i64,
    pub guard: i64,
}

impl Shard {
    fn holds(&self, t: i64) -> bool {
        t >= self.start && t < self.end
    }
    /// Whether an event at `t` can belong to a request of the shard.
    fn near(&self, t: i64) -> bool {
        t >= self.start.saturating_sub(self.guard) && t < self.end.saturating_add(self.guard)
    }
}

/// A whole run collected in memory (tests, small inputs).
pub struct Analysis {
    pub requests: Vec<Labelled>,
    pub info: RunInfo,
}

impl Analysis {
    pub fn input_error_count(&self) -> u64 {
        self.info.input_error_count()
    }
}

pub fn run(opts: &Options, registry: &Registry, engine: &Engine) -> Result<Analysis> {
    let mut requests = Vec::new();
    let info = run_with(opts, registry, engine, &mut |l| requests.push(l.clone()))?;
    requests.sort_by_key(|l: &Labelled| l.request.start);
    Ok(Analysis { requests, info })
}

/// Builds closed requests on the worker threads, in order, and labels those
/// `keep` accepts; each comes out with whether it was kept. The others are
/// built all the same: a retry's attempt number counts the attempts before
/// it, wherever they fall.
pub fn label_closed(
    engine: &Engine,
    closed: &mut Vec<Closed>,
    keep: &(dyn Fn(&Request) -> bool + Sync),
    out: &mut Vec<(bool, Labelled)>,
) {
    closed
        .par_drain(..)
        .map_init(
            || engine.evaluator(),
            |ev, closed| {
                let request = build_closed(closed);
                let kept = keep(&request);
                let verdict = if kept {
                    engine.evaluate(ev, &request)
                } else {
                    None
                };
                (kept, Labelled { request, verdict })
            },
        )
        .collect_into_vec(out);
}

pub fn run_with(
    opts: &Options,
    registry: &Registry,
    engine: &Engine,
    sink: &mut dyn FnMut(&Labelled),
) -> Result<RunInfo> {
    let (inputs, missing) = expand_inputs(&opts.paths);
    let mut jobs: Vec<(Input, Option<Arc<Format>>)> = Vec::new();
    for input in inputs {
        let forced = opts
            .formats
            .iter()
            .find(|(p, _)| *p.display().to_string() == *input.name)
            .map(|(_, f)| f.clone());
        jobs.push((input, forced));
    }
    let max_line = opts.max_line.unwrap_or(DEFAULT_MAX_LINE);
    let mut streams: Vec<InputStream> = jobs
        .par_iter()
        .map(|(input, f)| InputStream::open(input, registry, f.as_ref(), max_line))
        .collect();

    // Gateway lines a Collector shipped as log records are read as lines.
    let shipped = ShippedLines::new(Arc::new(registry.clone()));
    let window_ms = opts.window_ms.unwrap_or(DEFAULT_WINDOW_MS);
    let mut corr = Correlator::new(window_ms);
    if opts.infer_joins {
        corr = corr.with_inferred_joins();
    }
    let mut skew = SkewEstimator::default();
    let mut closed: Vec<Closed> = Vec::new();
    let tasks = rayon::current_num_threads() * 2;
    let in_range = |r: &Request| {
        let t = r.start.unwrap_or(0);
        opts.since.is_none_or(|s| t >= s)
            && opts.until.is_none_or(|u| t < u)
            && opts.shard.is_none_or(|s| s.holds(t))
    };
    // Building, labelling and dropping requests run on the worker threads; the
    // sink sees them in order on this one.
    // Reused between batches: large fresh vectors cost page faults.
    let mut labelled: Vec<(bool, Labelled)> = Vec::new();
    let mut attempts = Attempts::default();
    let mut flush = |closed: &mut Vec<Closed>, skew: &mut SkewEstimator| {
        if closed.is_empty() {
            return;
        }
        label_closed(engine, closed, &in_range, &mut labelled);
        for (keep, l) in labelled.iter_mut() {
            attempts.mark(&mut l.request);
            if *keep {
                skew.add(&l.request);
                sink(l);
            }
        }
        labelled.par_drain(..).for_each(drop);
    };

    // Event time each input has reached (its latest timestamp so far).
    let mut high: Vec<Option<i64>> = vec![None; streams.len()];
    // Parsed but not yet correlated: (input, events).
    let mut pending: Option<(usize, Vec<Parsed>)> = None;
    loop {
        // The input furthest behind in event time goes next.
        let next = streams
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_done())
            .min_by_key(|(i, _)| high[*i].unwrap_or(i64::MIN))
            .map(|(i, _)| i);
        if next.is_none() && pending.is_none() {
            break;
        }
        let done: Vec<bool> = streams.iter().map(InputStream::is_done).collect();
        // Read and parse the next batch on the pool while this thread joins
        // and labels the previous one.
        let mut parsed_next: Option<(usize, Vec<Parsed>)> = None;
        let streams_ref = &mut streams;
        let progress = opts.progress.as_ref();
        rayon::in_place_scope(|scope| {
            if let Some(i) = next {
                let slot = &mut parsed_next;
                scope.spawn(move |_| {
                    let s = &mut streams_ref[i];
                    let before = s.bytes_read;
                    let chunks: Vec<_> = (0..tasks)
                        .map_while(|_| s.read_chunk(CHUNK_BYTES))
                        .collect();
                    if let Some(p) = progress {
                        p.fetch_add(s.bytes_read - before, Ordering::Relaxed);
                    }
                    let mut parsed: Vec<Parsed> = chunks.par_iter().map(parse_chunk).collect();
                    for p in &mut parsed {
                        s.absorb(p);
                    }
                    *slot = Some((i, parsed));
                });
            }
            if let Some((i, parsed)) = pending.take() {
                for p in parsed {
                    for (mut ev, mut keys) in p.events.into_iter().zip(p.keys) {
                        if shipped.reread_one(&mut ev) {
                            keys = crate::event::ids::keys(&ev);
                        }
                        if let Some(t) = ev.ts {
                            high[i] = Some(high[i].map_or(t, |h| h.max(t)));
                            if opts.shard.is_some_and(|s| !s.near(t)) {
                                continue;
                            }
                        }
                        corr.push(ev, keys, high[i].unwrap_or(0));
                    }
                }
                let watermark = (0..done.len())
                    .filter(|&j| !done[j])
                    .map(|j| high[j].unwrap_or(i64::MIN))
                    .min()
                    .unwrap_or(i64::MAX);
                corr.close_idle(watermark, &mut closed);
                flush(&mut closed, &mut skew);
            }
        });
        pending = parsed_next;
    }
    corr.close_all(&mut closed);
    flush(&mut closed, &mut skew);

    let mut files: Vec<FileReport> = missing
        .into_iter()
        .map(|(path, err)| FileReport {
            name: Arc::from(path),
            error_count: 1,
            errors: vec![LineError {
                line: 0,
                reason: err,
            }],
            ..Default::default()
        })
        .collect();
    files.extend(streams.into_iter().map(|s| s.report));
    for f in &mut files {
        f.context += corr.context.get(&f.name).copied().unwrap_or(0);
    }
    Ok(RunInfo {
        files,
        window: corr.stats,
        window_ms,
        skew: skew.finish(),
        rule_errors: engine.errors.load(Ordering::Relaxed),
        first_rule_error: engine.first_error.lock().ok().and_then(|g| g.clone()),
    })
}
