//! The live pipeline: one thread takes queued events, correlates them in
//! arrival time, and every tick closes the idle (or too old, or over-cap)
//! requests, labels them and writes them out — the same correlator, rules
//! and JSON lines as `analyze`.

use super::intake::{Counters, Msg, Outlet};
use super::memory::{Level, Limiter};
use crate::analysis::label_closed;
use crate::correlate::{Attempts, Closed, Correlator, LiveLimits, SkewEstimator, WindowStats};
use crate::labelled::{Emissions, Labelled};
use crate::report::summary::{Contribution, Summary};
use crate::rules::Engine;
use crate::sink::LabelledSink;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often idle requests are looked for.
const TICK: Duration = Duration::from_millis(100);

/// Requests labelled and written at a time.
const EMIT_CHUNK: usize = 1024;

/// Over the soft mark this long, with receivers refused all along, the
/// pipeline sheds as at the hard mark: a long window would otherwise hold its
/// requests, and the senders' data, until the window ends.
const SOFT_PATIENCE: Duration = Duration::from_secs(5);

/// Shedding at the hard mark waits this long for the memory monitor to see
/// what the last shed freed.
const SHED_EVERY: Duration = Duration::from_millis(200);

pub struct LiveOptions {
    pub window_ms: u64,
    pub limits: LiveLimits,
    /// `--infer-joins`, as in `analyze`.
    pub infer_joins: bool,
    /// Every this often, one summary line on stderr (`None`: never).
    pub stats_every: Option<Duration>,
    /// How often emitted requests are written to the store (`--out`).
    pub store_every: Duration,
}

/// What the pipeline has seen when it stops.
pub struct Finished {
    pub summary: Summary,
    pub window: WindowStats,
    pub skew: Vec<crate::correlate::Skew>,
    pub write_error: Option<std::io::Error>,
}

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub fn run(
    outlet: Outlet,
    engine: &Engine,
    counters: &Counters,
    memory: &Limiter,
    wake_receivers: &dyn Fn(),
    opts: &LiveOptions,
    mut sink: LabelledSink,
) -> Finished {
    // What each emitted request added to the summary, for as many as the
    // correlator retains for amendment.
    let mut emitted: Emissions<Contribution> = Emissions::new(opts.limits.retain);
    let mut last_store = Instant::now();
    let mut corr = Correlator::new(opts.window_ms).live(opts.limits);
    if opts.infer_joins {
        corr = corr.with_inferred_joins();
    }
    let mut summary = Summary::default();
    let mut skew = SkewEstimator::default();
    let mut closed: Vec<Closed> = Vec::new();
    let mut labelled: Vec<(bool, Labelled)> = Vec::new();
    let mut last_tick = Instant::now();
    let mut stats = StatsLine::new();
    let mut attempts = Attempts::default();
    let keep = |_: &crate::correlate::Request| true;
    let mut keys: Vec<Vec<String>> = Vec::new();
    // `shed`: the correlator forgot its retained requests; so does `emitted`.
    let mut emit = |closed: &mut Vec<Closed>,
                    corr: &mut Correlator,
                    summary: &mut Summary,
                    sink: &mut LabelledSink,
                    shed: bool| {
        if shed {
            emitted.clear();
        }
        // In chunks: a labelled request weighs more than its closed events, and
        // a shutdown or a shed may close every open request at once.
        while !closed.is_empty() {
            let rest = closed.split_off(closed.len().min(EMIT_CHUNK));
            let mut chunk = std::mem::replace(closed, rest);
            // The keys each request closed with, to keep it for amendment.
            keys.clear();
            // Over the limit, nothing is kept: shedding forgets, it does not refill.
            if corr.retains() && memory.level() < Level::Hard {
                keys.extend(chunk.iter().map(|c| c.keys.clone()));
            }
            label_closed(engine, &mut chunk, &keep, &mut labelled);
            for (i, (kept, mut l)) in labelled.drain(..).enumerate() {
                attempts.mark(&mut l.request);
                if !kept {
                    continue;
                }
                skew.add(&l.request);
                // A later revision replaces the earlier one in the summary.
                if l.request.revision > 1 {
                    if let Some(prev) = emitted.take(&l.request.events) {
                        summary.remove(&prev);
                    }
                }
                let contribution = summary.add(&l);
                emitted.keep(&l.request.events, contribution);
                sink.add(&l);
                Counters::add(&counters.emitted, 1);
                // Failed requests, each once at its latest revision (emissions count twice).
                counters
                    .failed
                    .store(summary.failed as u64, Ordering::Relaxed);
                if let Some(k) = keys.get_mut(i) {
                    let events = std::mem::take(&mut l.request.events);
                    corr.retain(std::mem::take(k), events, &l.request);
                }
            }
            sink.flush_json();
        }
        let s = &corr.stats;
        counters
            .open
            .store(corr.open_requests() as u64, Ordering::Relaxed);
        counters
            .buffered
            .store(corr.buffered_events() as u64, Ordering::Relaxed);
        counters.evicted.store(s.evicted, Ordering::Relaxed);
        counters.aged.store(s.aged, Ordering::Relaxed);
        counters.amended.store(s.amended, Ordering::Relaxed);
        counters.late.store(s.late, Ordering::Relaxed);
    };
    let mut last_shed: Option<Instant> = None;
    let mut soft_since: Option<Instant> = None;
    loop {
        match outlet.rx.recv_timeout(TICK) {
            Ok(Msg::Events(events, keys)) => {
                outlet.queued.fetch_sub(events.len(), Ordering::AcqRel);
                let now = now_ns();
                for (ev, k) in events.into_iter().zip(keys) {
                    corr.push(ev, k, now);
                }
            }
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            corr.close_idle(now_ns(), &mut closed);
            emit(&mut closed, &mut corr, &mut summary, &mut sink, false);
            let level = memory.level();
            if level == Level::Normal {
                soft_since = None;
            } else if soft_since.is_none() {
                soft_since = Some(Instant::now());
            }
            let pressed =
                level == Level::Hard || soft_since.is_some_and(|t| t.elapsed() >= SOFT_PATIENCE);
            if pressed && last_shed.is_none_or(|t| t.elapsed() >= SHED_EVERY) {
                last_shed = Some(Instant::now());
                soft_since = Some(Instant::now());
                Counters::add(&memory.sheds, 1);
                corr.shed(&mut closed);
                emit(&mut closed, &mut corr, &mut summary, &mut sink, true);
                sink.flush_store();
                super::memory::release_freed(wake_receivers);
            }
            if let Some(every) = opts.stats_every {
                stats.maybe_print(every, counters, memory, &summary);
            }
            if last_store.elapsed() >= opts.store_every {
                last_store = Instant::now();
                sink.flush_store();
            }
        }
    }
    // Sources have stopped; whatever they queued before the shutdown is in
    // the channel ahead of it and was taken above.
    corr.close_all(&mut closed);
    emit(&mut closed, &mut corr, &mut summary, &mut sink, false);
    if opts.stats_every.is_some() {
        stats.print(counters, memory, &summary);
    }
    let outcome = sink.finish();
    match outcome.store {
        Some(Ok(e)) => eprintln!(
            "tracejoin: store: run {} holds {} requests ({} failed)",
            e.run, e.requests, e.failed
        ),
        Some(Err(e)) => eprintln!("tracejoin: cannot write the store: {e:#}"),
        None => {}
    }
    Finished {
        summary,
        window: corr.stats,
        skew: skew.finish(),
        write_error: outcome.json_error,
    }
}

/// One line per interval on stderr: rates, open requests, failures by label,
/// the server's own counters.
struct StatsLine {
    last: Instant,
    received: u64,
}

impl StatsLine {
    fn new() -> StatsLine {
        StatsLine {
            last: Instant::now(),
            received: 0,
        }
    }

    fn maybe_print(&mut self, every: Duration, c: &Counters, m: &Limiter, summary: &Summary) {
        if self.last.elapsed() >= every {
            self.print(c, m, summary);
        }
    }

    fn print(&mut self, c: &Counters, m: &Limiter, summary: &Summary) {
        let g = Counters::get;
        let received = g(&c.spans) + g(&c.logs) + g(&c.lines);
        let secs = self.last.elapsed().as_secs_f64().max(1e-3);
        let rate = (received - self.received) as f64 / secs;
        self.received = received;
        self.last = Instant::now();
        let labels: Vec<String> = summary
            .label_counts()
            .into_iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        eprintln!(
            "tracejoin: {} received {} spans, {} logs ({} gRPC + {} HTTP messages), {} lines ({:.0}/s) | open {} ({} events) | emitted {}, failed {}{} | refused {} busy, {} memory, {} too large, {} invalid, {} auth; {} spans rejected, {} bad lines | evicted {}, aged out {}, late {}, amended {} | {}",
            chrono::Utc::now().format("%H:%M:%S"),
            g(&c.spans),
            g(&c.logs),
            g(&c.grpc_messages),
            g(&c.http_messages),
            g(&c.lines),
            rate,
            g(&c.open),
            g(&c.buffered),
            g(&c.emitted),
            g(&c.failed),
            if labels.is_empty() {
                String::new()
            } else {
                format!(" [{}]", labels.join(", "))
            },
            g(&c.refused_busy),
            g(&c.refused_memory),
            g(&c.refused_oversize),
            g(&c.refused_invalid),
            g(&c.refused_auth),
            g(&c.spans_rejected),
            g(&c.line_errors),
            g(&c.evicted),
            g(&c.aged),
            g(&c.late),
            g(&c.amended),
            m.describe(),
        );
    }
}
