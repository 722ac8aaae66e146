//! Failed requests grouped into episodes: the incidents a postmortem is
//! about. An episode is failures with the same label and the same blamed
//! origin, contiguous in time, that stand out against the rate at which that
//! origin fails around them; each gets its start, peak and end, its impact,
//! the first and the most typical evidence, what was healthy meanwhile and
//! what the data cannot tell.
//!
//! How they are found, per (label, origin, operation):
//! 1. failures split where the next one is more than `gap` away;
//! 2. each piece's edges trimmed: a failure followed (or preceded) by a gap
//!    longer than ten times the piece's median gap (at least `edge`) is a
//!    stray of the background, not the episode's start (or end);
//! 3. a piece is kept when it has at least `min_requests` failures and is
//!    unlikely under the origin's background rate: a Poisson tail below
//!    `alpha`, with the background rate taken as the larger of the rate
//!    outside the piece and the rate over the whole run (so that failures
//!    spread evenly over the run are never an episode);
//! 4. kept pieces of one origin that overlap (within `gap`) are one episode
//!    across its operations (a key rotation breaks every route at once), and
//!    its edges are trimmed again on the merged failures.
//!
//! Memory: one record per failed request (interned names, its explanation and
//! the ids that cite it: ~100 bytes plus the explanation), and request counts
//! per route per time bin (bins widen past a million).

use crate::correlate::{templated, Flag};
use crate::event::time::format_ts;
use crate::event::Source;
use crate::labelled::{Labelled, RunInfo};
use crate::rules::{Label, OriginKind};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;

const S: i64 = 1_000_000_000;

/// How episodes are told apart from the background.
#[derive(Debug, Clone)]
pub struct Options {
    /// Failures further apart than this are not one episode.
    pub gap_ns: i64,
    /// The fewest failed requests an episode has.
    pub min_requests: usize,
    /// The least gap that can cut a stray failure off an episode's edge.
    pub edge_ns: i64,
    /// How unlikely under the background rate an episode must be.
    pub alpha: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            gap_ns: 10 * S,
            min_requests: 3,
            edge_ns: S / 2,
            alpha: 1e-6,
        }
    }
}

/// What detection needs to know of one request, from a run or a store row.
#[derive(Debug, Default)]
pub struct Observation<'a> {
    pub start: Option<i64>,
    pub duration_ms: Option<f64>,
    pub failed: bool,
    /// The route, or the path with its ids templated.
    pub route: Cow<'a, str>,
    pub consumer: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub label: Option<Label>,
    pub rule: Option<&'a str>,
    pub explanation: Option<&'a str>,
    pub cause: Option<OriginOf<'a>>,
    pub has_span: bool,
    pub flags: Vec<Flag>,
}

/// A request's blamed origin, as [`crate::rules::Cause`] or its store columns hold it.
#[derive(Debug)]
pub struct OriginOf<'a> {
    pub kind: OriginKind,
    pub service: &'a str,
    pub operation: Option<&'a str>,
    /// The services crossed, comma-separated.
    pub path: Cow<'a, str>,
    /// The event that says why (`file:line`).
    pub said: Option<&'a str>,
}

impl<'a> Observation<'a> {
    pub fn of(l: &'a Labelled) -> Observation<'a> {
        let r = &l.request;
        let v = l.verdict.as_ref();
        Observation {
            start: r.start,
            duration_ms: r.duration_ms,
            failed: r.failed,
            route: route_of(r.route.as_deref(), r.path.as_deref()),
            consumer: r.consumer.as_deref(),
            upstream: r.gateway_event().and_then(|g| g.upstream_addr.as_deref()),
            request_id: r
                .request_id
                .as_deref()
                .or(r.ids.first().map(String::as_str)),
            label: v.map(|v| v.label),
            rule: v.map(|v| v.rule.as_str()),
            explanation: v.map(|v| v.explanation.as_str()),
            cause: v.and_then(|v| v.cause.as_ref()).map(|c| OriginOf {
                kind: c.kind,
                service: &c.service,
                operation: c.operation.as_deref(),
                path: Cow::Owned(c.path.join(",")),
                said: c.origin.as_deref(),
            }),
            has_span: r.events.iter().any(|e| e.source() == Source::Span),
            flags: r.flags.clone(),
        }
    }
}

/// A request's route for grouping: its path with ids templated, else its
/// route. The path first: every request has the gateway's, while a route
/// template comes only with a span (`/orders/{order_id}`), so a request the
/// gateway refused and one a service answered would count apart.
pub fn route_of<'a>(route: Option<&'a str>, path: Option<&str>) -> Cow<'a, str> {
    match (path, route) {
        (Some(p), _) => Cow::Owned(templated(p)),
        (None, Some(r)) => Cow::Borrowed(r),
        (None, None) => Cow::Borrowed("-"),
    }
}

/// An explanation with its digits left out: the same cause whatever the
/// port, the amount or the id it names (`excess: 2.436`, `'89.66 EUR'`).
fn gist(explanation: &str) -> String {
    explanation
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect()
}

/// Strings seen often (routes, services, rules, explanations with their
/// digits left out), kept once.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

const NONE: u32 = u32::MAX;

impl Interner {
    fn id(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return NONE };
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), i);
        i
    }
    fn get(&self, i: u32) -> Option<&str> {
        (i != NONE).then(|| self.names[i as usize].as_str())
    }
}

/// The gaps a failed request leaves in what the data can tell.
#[derive(Clone, Copy, Default)]
struct Gaps {
    no_span: bool,
    gateway_only: bool,
    early: bool,
    amended: bool,
}

struct Failure {
    /// Arrival.
    at: i64,
    /// When it was answered (arrival when the duration is unknown).
    done: i64,
    label: Label,
    kind: Option<OriginKind>,
    service: u32,
    operation: u32,
    path: u32,
    route: u32,
    consumer: u32,
    upstream: u32,
    rule: u32,
    /// The explanation's [`gist`], interned: what "typical" counts.
    why: u32,
    explanation: Option<Box<str>>,
    said: Option<Box<str>>,
    request_id: Option<Box<str>>,
    gaps: Gaps,
}

impl Failure {
    /// The origin an episode is about: label, kind, service.
    fn group(&self) -> (Label, Option<OriginKind>, u32) {
        (self.label, self.kind, self.service)
    }
}

/// Request counts per (time bin, route): `[requests, failed]`. Bins start at
/// one second and double in width when there are more than [`MAX_BINS`].
struct Traffic {
    width: i64,
    bins: HashMap<(i64, u32), [u32; 2]>,
}

const MAX_BINS: usize = 1 << 20;

impl Traffic {
    fn add(&mut self, t: i64, route: u32, failed: bool) {
        let c = self
            .bins
            .entry((t.div_euclid(self.width), route))
            .or_default();
        c[0] += 1;
        c[1] += failed as u32;
        if self.bins.len() > MAX_BINS {
            self.width *= 2;
            let old = std::mem::take(&mut self.bins);
            for ((b, r), [n, f]) in old {
                let c = self.bins.entry((b.div_euclid(2), r)).or_default();
                c[0] += n;
                c[1] += f;
            }
        }
    }

    /// Per route, `[requests, failed]` in the bins that `[from, to]` touches.
    fn within(&self, from: i64, to: i64) -> HashMap<u32, [u64; 2]> {
        let (a, b) = (from.div_euclid(self.width), to.div_euclid(self.width));
        let mut out: HashMap<u32, [u64; 2]> = HashMap::new();
        for ((bin, route), [n, f]) in &self.bins {
            if (a..=b).contains(bin) {
                let c = out.entry(*route).or_default();
                c[0] += *n as u64;
                c[1] += *f as u64;
            }
        }
        out
    }
}

/// Collects observations; [`Detector::episodes`] finds the episodes.
pub struct Detector {
    strings: Interner,
    failures: Vec<Failure>,
    traffic: Traffic,
    pub requests: u64,
    pub failed: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

impl Default for Detector {
    fn default() -> Detector {
        Detector {
            strings: Interner::default(),
            failures: Vec::new(),
            traffic: Traffic {
                width: S,
                bins: HashMap::new(),
            },
            requests: 0,
            failed: 0,
            first: None,
            last: None,
        }
    }
}

impl Detector {
    /// One request: counted, and kept when it failed.
    pub fn add(&mut self, o: &Observation<'_>) {
        self.count(o.start, &o.route, o.failed);
        if o.failed {
            self.add_failure(o);
        }
    }

    /// A request counted into the traffic (every request, failed or not).
    pub fn count(&mut self, start: Option<i64>, route: &str, failed: bool) {
        self.requests += 1;
        self.failed += failed as u64;
        let Some(at) = start else { return };
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
        let route = self.strings.id(Some(route));
        self.traffic.add(at, route, failed);
    }

    /// A failed request's record, once it has been [`count`](Self::count)ed.
    pub fn add_failure(&mut self, o: &Observation<'_>) {
        let Some(at) = o.start else { return };
        let route = self.strings.id(Some(&o.route));
        let c = o.cause.as_ref();
        let gaps = Gaps {
            no_span: !o.has_span,
            gateway_only: o.flags.contains(&Flag::GatewayOnly),
            early: o.flags.contains(&Flag::Evicted) || o.flags.contains(&Flag::MaxAge),
            amended: o.flags.contains(&Flag::Amended),
        };
        let f = Failure {
            at,
            done: at + o.duration_ms.map_or(0, |d| (d.max(0.0) * 1e6) as i64),
            label: o.label.unwrap_or(Label::Unknown),
            kind: c.map(|c| c.kind),
            service: self.strings.id(c.map(|c| c.service)),
            operation: self.strings.id(c.and_then(|c| c.operation)),
            path: self.strings.id(c.map(|c| c.path.as_ref())),
            route,
            consumer: self.strings.id(o.consumer),
            upstream: self.strings.id(o.upstream),
            rule: self.strings.id(o.rule),
            why: self.strings.id(o.explanation.map(gist).as_deref()),
            explanation: o.explanation.map(Into::into),
            said: c.and_then(|c| c.said).map(Into::into),
            request_id: o.request_id.map(Into::into),
            gaps,
        };
        self.failures.push(f);
    }

    /// The episodes, in time order.
    pub fn episodes(&self, opts: &Options) -> Vec<Episode> {
        let run = match (self.first, self.last) {
            (Some(f), Some(l)) => (l - f).max(S),
            _ => return Vec::new(),
        };
        // Failures per (origin, operation), in time order.
        let mut keys: HashMap<(Label, Option<OriginKind>, u32, u32), Vec<usize>> = HashMap::new();
        for (i, f) in self.failures.iter().enumerate() {
            keys.entry((f.label, f.kind, f.service, f.operation))
                .or_default()
                .push(i);
        }
        let at = |i: &usize| self.failures[*i].at;
        let mut pieces: Vec<Vec<usize>> = Vec::new();
        for (_, mut idx) in keys {
            idx.sort_by_key(at);
            let total = idx.len();
            for piece in split(&idx, |i| self.failures[*i].at, opts.gap_ns) {
                let piece = trim(piece, |i| self.failures[*i].at, opts.edge_ns);
                if piece.len() < opts.min_requests {
                    continue;
                }
                let d = (at(piece.last().unwrap()) - at(&piece[0])).max(S);
                // The background rate: outside the piece, and never below
                // the rate over the whole run.
                let outside = (total - piece.len()) as f64 / ((run - d).max(d) as f64);
                let overall = total as f64 / run as f64;
                let mu = outside.max(overall) * d as f64;
                if poisson_tail_ln(piece.len() as f64, mu) < opts.alpha.ln() {
                    pieces.push(piece.to_vec());
                }
            }
        }
        // One origin's pieces that overlap are one episode.
        pieces.sort_by_key(|p| (self.failures[p[0]].group(), at(&p[0])));
        let mut merged: Vec<Vec<usize>> = Vec::new();
        for p in pieces {
            if let Some(m) = merged.last_mut() {
                let (g, pg) = (self.failures[m[0]].group(), self.failures[p[0]].group());
                let m_end = m.iter().map(at).max().unwrap_or(0);
                if g == pg && at(&p[0]) <= m_end + opts.gap_ns {
                    m.extend(p);
                    continue;
                }
            }
            merged.push(p);
        }
        let mut out: Vec<Episode> = merged
            .into_iter()
            .filter_map(|mut m| {
                m.sort_by_key(at);
                let m = trim(&m, |i| self.failures[*i].at, opts.edge_ns);
                (m.len() >= opts.min_requests).then(|| self.episode(m, run))
            })
            .collect();
        out.sort_by_key(|e| e.start_ns);
        for (n, e) in out.iter_mut().enumerate() {
            e.episode = n + 1;
        }
        out
    }

    fn episode(&self, idx: &[usize], run: i64) -> Episode {
        let fs: Vec<&Failure> = idx.iter().map(|&i| &self.failures[i]).collect();
        let first = fs[0];
        // From the first failed request's arrival to when the last one was
        // answered: a dependency that is retried fails requests seconds
        // after they arrived.
        let (start, end) = (
            first.at,
            fs.iter().map(|f| f.done).max().unwrap_or(first.at),
        );
        let name = |i: u32| self.strings.get(i).map(str::to_string);
        // The busiest second.
        let mut per_s: HashMap<i64, u32> = HashMap::new();
        for f in &fs {
            *per_s.entry(f.at.div_euclid(S)).or_default() += 1;
        }
        let (peak_s, peak_n) = per_s
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(s, n)| (*s, *n))
            .unwrap_or((start.div_euclid(S), 0));
        let counts = |get: fn(&Failure) -> u32| -> Vec<Count> {
            let mut m: HashMap<u32, u64> = HashMap::new();
            for f in &fs {
                *m.entry(get(f)).or_default() += 1;
            }
            let mut v: Vec<Count> = m
                .into_iter()
                .filter_map(|(k, n)| {
                    Some(Count {
                        name: self.strings.get(k)?.to_string(),
                        failed: n,
                    })
                })
                .collect();
            v.sort_by(|a, b| b.failed.cmp(&a.failed).then(a.name.cmp(&b.name)));
            v.truncate(10);
            v
        };
        let operations = counts(|f| f.operation);
        let paths = counts(|f| f.path);
        // The most typical evidence: the most common rule and explanation
        // (digits aside).
        let mut by_why: HashMap<(u32, u32), (u64, usize)> = HashMap::new();
        for (pos, f) in fs.iter().enumerate() {
            let e = by_why.entry((f.rule, f.why)).or_insert((0, pos));
            e.0 += 1;
        }
        let (typical_n, typical) = by_why
            .values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .copied()
            .unwrap_or((1, 0));
        let cite = |f: &Failure, share: Option<f64>| Cited {
            request_id: f.request_id.as_deref().map(str::to_string),
            at: format_ts(f.at),
            rule: name(f.rule),
            explanation: f.explanation.as_deref().map(str::to_string),
            origin: f.said.as_deref().map(str::to_string),
            share,
        };
        // Traffic in the window: what failed, what stayed healthy.
        let window = self.traffic.within(start, end);
        let total: u64 = window.values().map(|c| c[0]).sum();
        let failed_routes: Vec<u32> = fs.iter().map(|f| f.route).collect();
        let mut healthy: Vec<Healthy> = window
            .iter()
            .filter(|(r, c)| c[1] == 0 && !failed_routes.contains(r))
            .filter_map(|(r, c)| {
                Some(Healthy {
                    route: self.strings.get(*r)?.to_string(),
                    requests: c[0],
                })
            })
            .collect();
        healthy.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.route.cmp(&b.route)));
        healthy.truncate(5);
        let background = self
            .failures
            .iter()
            .filter(|f| f.group() == first.group() && (f.at < start || f.at > end))
            .count();
        let outside = (run - (end - start)).max(S);
        let n = fs.len() as u64;
        let count = |g: fn(&Gaps) -> bool| fs.iter().filter(|f| g(&f.gaps)).count() as u64;
        let mut unknowns = Vec::new();
        let no_span = count(|g| g.no_span);
        if no_span > 0 && no_span < n {
            unknowns.push(format!(
                "{no_span} of the {n} failed requests have no span although others of the episode do: sampled out, or their spans were not exported"
            ));
        }
        let gateway_only = count(|g| g.gateway_only);
        if gateway_only > 0 && first.kind != Some(OriginKind::Gateway) {
            unknowns.push(format!(
                "{gateway_only} failed requests are known only from the gateway's log: no service logged them, so their origin is the gateway's word"
            ));
        }
        let early = count(|g| g.early);
        if early > 0 {
            unknowns.push(format!(
                "{early} failed requests were emitted early (live caps or maximum age): their timelines may be incomplete"
            ));
        }
        let amended = count(|g| g.amended);
        if amended > 0 {
            unknowns.push(format!(
                "{amended} failed requests were amended by late events after they were first emitted"
            ));
        }
        let unexplained = self
            .failures
            .iter()
            .filter(|f| f.at >= start && f.at <= end && f.kind.is_none())
            .count();
        if unexplained > 0 && first.kind.is_some() {
            unknowns.push(format!(
                "{unexplained} other failed requests in the same window have no known origin (label unknown)"
            ));
        }
        let mut ids: Vec<String> = fs
            .iter()
            .filter_map(|f| f.request_id.as_deref().map(str::to_string))
            .collect();
        ids.truncate(20);
        Episode {
            episode: 0,
            start: format_ts(start),
            end: format_ts(end),
            peak: format_ts(peak_s * S),
            duration_s: ((end - start) as f64 / 1e6).round() / 1e3,
            label: first.label,
            origin: first.kind.map(|kind| EpisodeOrigin {
                kind,
                service: name(first.service).unwrap_or_default(),
                operation: (operations.len() == 1).then(|| operations[0].name.clone()),
                operations: operations.clone(),
            }),
            path: paths
                .first()
                .map(|p| p.name.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            requests: n,
            total_requests: total.max(n),
            peak_per_s: peak_n,
            rate_per_s: round3(n as f64 / ((end - start).max(S) as f64 / S as f64)),
            background_per_s: round3(background as f64 / (outside as f64 / S as f64)),
            routes: counts(|f| f.route),
            consumers: counts(|f| f.consumer),
            upstreams: counts(|f| f.upstream),
            evidence: EpisodeEvidence {
                first: cite(first, None),
                typical: cite(fs[typical], Some(round3(typical_n as f64 / n as f64))),
            },
            healthy,
            unknowns,
            request_ids: ids,
            start_ns: start,
            end_ns: end,
            peak_ns: peak_s * S,
        }
    }
}

/// Clock skew below this is not worth a sentence: timestamps of that order
/// are rounding (nginx's `$time_local` has whole seconds).
const SKEW_WORTH_NOTING_MS: f64 = 100.0;

/// What a run's data cannot tell, whole-run: lines that did not parse, clock
/// skew, events that came after their request closed, requests emitted early,
/// events with nothing to join on. Sentences for the postmortem's "what we do
/// not know"; the store keeps them in its manifest.
pub fn run_gaps(info: &RunInfo) -> Vec<String> {
    let mut out = Vec::new();
    let bad: Vec<_> = info.files.iter().filter(|f| f.error_count > 0).collect();
    if !bad.is_empty() {
        let lines: u64 = bad.iter().map(|f| f.error_count).sum();
        let first = bad
            .iter()
            .find_map(|f| {
                f.errors
                    .first()
                    .map(|e| format!("{}:{}: {}", f.name, e.line, e.reason))
            })
            .unwrap_or_default();
        out.push(format!(
            "{lines} lines in {} files did not parse and are in no request (first: {first})",
            bad.len()
        ));
    }
    for s in &info.skew {
        if s.median_ms.abs() >= SKEW_WORTH_NOTING_MS {
            out.push(format!(
                "{}'s clock is {:+.0} ms off the gateway's (median of {} requests): its events' times are shown as logged",
                s.service, s.median_ms, s.samples
            ));
        }
    }
    let w = &info.window;
    if w.late > 0 {
        out.push(format!(
            "{} events came after their request had closed and form requests of their own: the window ({} ms) may be too short",
            w.late, info.window_ms
        ));
    }
    if w.evicted + w.aged > 0 {
        out.push(format!(
            "{} requests were emitted early (live caps or maximum age) and may be incomplete",
            w.evicted + w.aged
        ));
    }
    if w.unjoined > 0 {
        out.push(format!(
            "{} events carried no id to join on and are in no request",
            w.unjoined
        ));
    }
    out
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Pieces of `idx` (in time order) cut where the next is more than `gap` later.
fn split<T>(idx: &[T], at: impl Fn(&T) -> i64, gap: i64) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..=idx.len() {
        if i == idx.len() || at(&idx[i]) - at(&idx[i - 1]) > gap {
            out.push(&idx[from..i]);
            from = i;
        }
    }
    out
}

/// A piece without the strays at its edges: a first (last) failure whose gap
/// to the next (previous) is over ten times the piece's median gap, and at
/// least `edge`.
fn trim<T>(piece: &[T], at: impl Fn(&T) -> i64, edge: i64) -> &[T] {
    if piece.len() < 3 {
        return piece;
    }
    let mut gaps: Vec<i64> = piece.windows(2).map(|w| at(&w[1]) - at(&w[0])).collect();
    gaps.sort_unstable();
    let limit = (gaps[gaps.len() / 2] * 10).max(edge);
    let (mut lo, mut hi) = (0, piece.len());
    while hi - lo >= 2 && at(&piece[lo + 1]) - at(&piece[lo]) > limit {
        lo += 1;
    }
    while hi - lo >= 2 && at(&piece[hi - 1]) - at(&piece[hi - 2]) > limit {
        hi -= 1;
    }
    &piece[lo..hi]
}

/// ln P(X ≥ n) for X ~ Poisson(mu), by the Chernoff bound (an upper bound:
/// the test errs towards "not an episode"); `-inf` when mu is 0.
fn poisson_tail_ln(n: f64, mu: f64) -> f64 {
    if n <= mu {
        0.0
    } else if mu <= 0.0 {
        f64::NEG_INFINITY
    } else {
        n - mu + n * (mu / n).ln()
    }
}

/// One incident (`tracejoin incidents --json`, one per line).
#[derive(Debug, Clone, Serialize)]
pub struct Episode {
    pub episode: usize,
    /// The first failed request's arrival and when the last one was
    /// answered, RFC 3339.
    pub start: String,
    pub end: String,
    /// The start of the second with the most failures.
    pub peak: String,
    pub duration_s: f64,
    pub label: Label,
    /// `null` for failures no rule could place (label unknown).
    pub origin: Option<EpisodeOrigin>,
    /// The services the failed requests crossed to reach the origin (the
    /// most common path).
    pub path: Vec<String>,
    /// Failed requests in the episode.
    pub requests: u64,
    /// Every request in the seconds the episode spans.
    pub total_requests: u64,
    pub peak_per_s: u32,
    pub rate_per_s: f64,
    /// This origin's failure rate outside the episode.
    pub background_per_s: f64,
    pub routes: Vec<Count>,
    pub consumers: Vec<Count>,
    pub upstreams: Vec<Count>,
    pub evidence: EpisodeEvidence,
    /// Routes with traffic in the window and no failure at all.
    pub healthy: Vec<Healthy>,
    /// What the data cannot tell about this episode.
    pub unknowns: Vec<String>,
    /// Up to 20 failed requests, for `tracejoin timeline ID`.
    pub request_ids: Vec<String>,
    #[serde(skip)]
    pub start_ns: i64,
    #[serde(skip)]
    pub end_ns: i64,
    #[serde(skip)]
    pub peak_ns: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpisodeOrigin {
    pub kind: OriginKind,
    pub service: String,
    /// The operation, when the episode has one.
    pub operation: Option<String>,
    /// Every operation that failed, with its failed requests.
    pub operations: Vec<Count>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub name: String,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Healthy {
    pub route: String,
    pub requests: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpisodeEvidence {
    /// The episode's first failed request.
    pub first: Cited,
    /// A request with the most common rule and explanation (digits aside),
    /// and their share.
    pub typical: Cited,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cited {
    pub request_id: Option<String>,
    pub at: String,
    pub rule: Option<String>,
    pub explanation: Option<String>,
    /// The event that says why (`file:line`).
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(
        at_s: f64,
        failed: bool,
        service: &'static str,
        route: &'static str,
    ) -> Observation<'static> {
        Observation {
            start: Some((at_s * 1e9) as i64),
            failed,
            route: Cow::Borrowed(route),
            label: failed.then_some(Label::Upstream),
            cause: failed.then_some(OriginOf {
                kind: OriginKind::Dependency,
                service,
                operation: Some("GET"),
                path: Cow::Borrowed("nginx,a,redis"),
                said: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_burst_is_an_episode_with_its_edges_and_the_background_is_not() {
        let mut d = Detector::default();
        // 120 s of traffic at 10/s on two routes; one failure of the same
        // origin on /a every 7 s in the background; a burst on /a from 40 s
        // to 60 s. /b never fails.
        for i in 0..1200 {
            let t = i as f64 / 10.0;
            let route = if i % 2 == 0 { "/a" } else { "/b" };
            let burst = (40.0..60.0).contains(&t) && route == "/a";
            let stray = i % 70 == 4;
            d.add(&obs(t, burst || stray, "redis", route));
        }
        let eps = d.episodes(&Options::default());
        assert_eq!(eps.len(), 1, "{eps:#?}");
        let e = &eps[0];
        assert!((e.start_ns - 40 * S).abs() <= S, "{}", e.start);
        assert!((e.end_ns - 60 * S).abs() <= S, "{}", e.end);
        assert_eq!(e.origin.as_ref().unwrap().service, "redis");
        assert_eq!(e.path, ["nginx", "a", "redis"]);
        assert_eq!(e.routes.len(), 1);
        assert_eq!(e.routes[0].name, "/a");
        assert_eq!(e.healthy.len(), 1, "{:?}", e.healthy);
        assert_eq!(e.healthy[0].route, "/b");
        // Half the 10/s traffic is /b: ~100 requests in the ~20 s episode.
        assert!(
            (95..=105).contains(&e.healthy[0].requests),
            "{:?}",
            e.healthy
        );
        // The background is the strays outside the burst: 1 in 7 s.
        assert!(
            (e.background_per_s - 1.0 / 7.0).abs() < 0.05,
            "{}",
            e.background_per_s
        );
    }

    #[test]
    fn failures_spread_evenly_over_the_run_are_no_episode() {
        let mut d = Detector::default();
        for i in 0..1200 {
            d.add(&obs(i as f64 / 10.0, i % 25 == 0, "redis", "/a"));
        }
        assert!(d.episodes(&Options::default()).is_empty());
    }

    #[test]
    fn the_poisson_tail_bound_orders_as_it_should() {
        assert_eq!(poisson_tail_ln(3.0, 5.0), 0.0);
        assert!(poisson_tail_ln(20.0, 2.0) < poisson_tail_ln(10.0, 2.0));
        assert_eq!(poisson_tail_ln(3.0, 0.0), f64::NEG_INFINITY);
    }
}
