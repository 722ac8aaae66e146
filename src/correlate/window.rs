//! Windowed correlation: events are pushed as they are read; a request stays
//! open while events keep arriving and is closed once the watermark (the event
//! time every input has reached) is more than the idle window past its last
//! event. Memory is bounded by the requests inside the window, not the input.
//!
//! Keys are the same as in the batch graph ([`super::keys`]); a new event that
//! shares keys with several open requests merges them.

use super::errorlog::{self, LogMatch};
use super::infer::{self, Inference};
use super::Flag;
use crate::event::ids;
use crate::event::{Event, Source};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

struct Open {
    events: Vec<Event>,
    keys: Vec<String>,
    /// Latest event time (live: arrival time), for the idle window.
    last: i64,
    /// When the request opened, for the maximum age (live mode).
    first: i64,
    /// 1 for a request's first emission, +1 each time a late event reopens it.
    revision: u32,
    /// Tells a reused slot from the request that held it before.
    generation: u64,
    /// Set when part of the request was joined by inference, with its confidence.
    inferred: Option<f32>,
    /// The gateway lines this request holds: what makes it one gateway request.
    gateway: Vec<GatewayLine>,
    /// A gateway line of another request in the same file carries one of its ids.
    reused_id: bool,
}

/// What tells one gateway request from another that shares its trace id.
#[derive(Debug, Clone)]
struct GatewayLine {
    /// Its request and correlation ids, as logged (normalised when compared,
    /// which is rare: only when gateway requests meet).
    request_id: Option<crate::event::Text>,
    correlation_id: Option<crate::event::Text>,
    file: Option<std::sync::Arc<str>>,
    method: Option<crate::event::Text>,
    path: Option<crate::event::Text>,
    /// When it started and ended (ns), for placing events that carry only a trace id.
    start: i64,
    end: i64,
    /// The caller's span (from `traceparent`), as logged: the entry span of
    /// this attempt is its child.
    parent_span: Option<crate::event::Text>,
    /// The client address without its port, for joining error-log lines.
    client: Option<crate::event::Text>,
    /// The upstream addresses tried (`host:port`, as logged).
    upstream: Option<crate::event::Text>,
    /// The gateway answered with a failure.
    failed: bool,
    /// An upstream attempt failed (`$upstream_status` holds a 5xx: nginx
    /// writes 502 or 504 for an attempt that got no answer), even if a retry
    /// then succeeded.
    upstream_failed: bool,
    /// How precise its times are (1 s for `$time_local`): overlaps are judged within it.
    precision: i64,
}

impl GatewayLine {
    fn of(ev: &Event, start: i64) -> GatewayLine {
        let end = start + ev.duration_ms.map_or(0, |d| (d * 1e6) as i64);
        GatewayLine {
            request_id: ev.request_id.clone(),
            correlation_id: ev.correlation_id.clone(),
            file: ev.origin.as_ref().map(|o| o.file.clone()),
            method: ev.method.clone(),
            path: ev.path.clone(),
            start,
            end,
            parent_span: ev.parent_span_id.clone(),
            client: ev.client_ip.as_deref().map(errorlog::client_key),
            upstream: ev.upstream_addr.clone(),
            failed: ev.status.is_some_and(|s| s >= 400) || ev.gateway_error.is_some(),
            upstream_failed: ev
                .upstream_status
                .as_deref()
                .is_some_and(|u| u.split([',', ':', ' ']).any(|x| x.trim().starts_with('5'))),
            precision: ev.ts_precision_ns,
        }
    }

    /// The same gateway request seen twice: at two hops (two gateways, two
    /// files) with a shared request id, or with the same method and path at
    /// overlapping times; in one file, a subrequest logged beside its request
    /// (nginx `log_subrequest on`: an `auth_request` line with the same id,
    /// inside the request's time). Two lines of one file that share an id but
    /// not their time are two requests (a client reusing its id).
    /// Its request and correlation ids, normalised.
    fn ids(&self) -> Vec<String> {
        normalized_ids(self.request_id.as_deref(), self.correlation_id.as_deref())
    }

    /// The caller's span, normalised.
    fn parent(&self) -> Option<String> {
        self.parent_span.as_deref().and_then(ids::normalize)
    }

    fn same_request(&self, other: &GatewayLine) -> bool {
        let theirs = other.ids();
        let shared_id = self.ids().iter().any(|i| theirs.contains(i));
        // Times written to the second may each be up to a second early.
        let p = self.precision.max(other.precision);
        let overlap = self.start <= other.end + p && other.start <= self.end + p;
        if self.file.is_some() && self.file == other.file {
            return shared_id && overlap;
        }
        shared_id || (overlap && self.method == other.method && self.path == other.path)
    }
}

/// The ids that name one request (request and correlation ids), normalised;
/// trace and span ids are shared by every request of a trace.
fn strong_ids(ev: &Event) -> Vec<String> {
    normalized_ids(ev.request_id.as_deref(), ev.correlation_id.as_deref())
}

fn normalized_ids(request_id: Option<&str>, correlation_id: Option<&str>) -> Vec<String> {
    [request_id, correlation_id]
        .into_iter()
        .flatten()
        .filter_map(ids::normalize)
        .collect()
}

/// Open requests with a gateway line, by that line's client address (without
/// its port): where a gateway's error-log lines look for their request.
#[derive(Default)]
struct ClientIndex(FxHashMap<crate::event::Text, Vec<(u32, u64)>>);

impl ClientIndex {
    fn add(&mut self, client: &crate::event::Text, slot: u32, generation: u64) {
        let list = self
            .0
            .entry(client.clone())
            .or_insert_with(|| Vec::with_capacity(1));
        if !list.contains(&(slot, generation)) {
            list.push((slot, generation));
        }
    }

    fn remove(&mut self, client: &crate::event::Text, slot: u32, generation: u64) {
        if let Some(list) = self.0.get_mut(client) {
            list.retain(|&e| e != (slot, generation));
            if list.is_empty() {
                self.0.remove(client);
            }
        }
    }

    fn get(&self, client: &str) -> Option<&[(u32, u64)]> {
        self.0.get(client).map(Vec::as_slice)
    }
}

/// How an event reached an open request, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Via {
    /// Only the trace id (or a parent span id): every request of the trace,
    /// every attempt of one caller has it.
    Trace,
    /// The event's own span id (a log line of that span, its child).
    Span,
    /// A request or correlation id.
    Id,
}

/// The open requests holding one key: almost always one, several when
/// gateway requests share a trace id.
#[derive(Debug, Clone)]
enum Holders {
    One(u32),
    Many(Vec<u32>),
}

impl Holders {
    fn as_slice(&self) -> &[u32] {
        match self {
            Holders::One(s) => std::slice::from_ref(s),
            Holders::Many(v) => v,
        }
    }

    fn add(&mut self, s: u32) {
        match self {
            Holders::One(o) if *o == s => {}
            Holders::One(o) => *self = Holders::Many(vec![*o, s]),
            Holders::Many(v) => {
                if !v.contains(&s) {
                    v.push(s);
                }
            }
        }
    }

    /// `to` holds the key instead of `from` (a merge).
    fn replace(&mut self, from: u32, to: u32) {
        match self {
            Holders::One(o) => *o = to,
            Holders::Many(v) => {
                v.retain(|x| *x != from && *x != to);
                v.push(to);
                if v.len() == 1 {
                    *self = Holders::One(to);
                }
            }
        }
    }

    /// Removes `s`; `true` when nobody holds the key any more.
    fn remove(&mut self, s: u32) -> bool {
        match self {
            Holders::One(o) => *o == s,
            Holders::Many(v) => {
                v.retain(|x| *x != s);
                match v.as_slice() {
                    [] => true,
                    [one] => {
                        *self = Holders::One(*one);
                        false
                    }
                    _ => false,
                }
            }
        }
    }
}

/// A request the correlator has closed: its events, the keys that joined
/// them, and whether any part was joined by inference.
pub struct Closed {
    pub events: Vec<Event>,
    pub keys: Vec<String>,
    pub inferred: Option<f32>,
    /// 1, or more when late events reopened an emitted request (live mode).
    pub revision: u32,
    /// Why it closed before its idle window ran out, if it did.
    pub early: Option<Flag>,
    /// Another gateway line of the same file carried one of its request ids.
    pub reused_id: bool,
}

/// Bounds for live mode, where input never ends: requests are timed by
/// arrival, and open requests, buffered events and the emitted requests kept
/// for amendment are all capped.
#[derive(Debug, Clone, Copy)]
pub struct LiveLimits {
    /// A request open this long (ns) is closed even if events still arrive.
    pub max_age_ns: i64,
    pub max_open: usize,
    /// Events held in open requests.
    pub max_events: usize,
    /// Emitted requests kept so that a late event re-emits them amended.
    pub retain: usize,
}

/// Counters the summary reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowStats {
    pub events: u64,
    /// Events with no id that were not gateway lines: nothing to join them on.
    pub unjoined: u64,
    pub merges: u64,
    /// Joins made by inference (`--infer-joins`).
    pub inferred: u64,
    /// Events whose ids belonged to a request already closed: they start a
    /// request of their own. A sign the window is too short for these inputs.
    pub late: u64,
    /// Live: emitted requests reopened by a late event and emitted again.
    pub amended: u64,
    /// Live: requests closed early because a cap was reached.
    pub evicted: u64,
    /// Live: requests closed early at the maximum age.
    pub aged: u64,
    /// Gateway requests kept apart although they share a trace id.
    pub shared_traces: u64,
    /// Gateway lines whose request id another line of the same file already had.
    pub reused_ids: u64,
    /// Gateway error-log lines joined to their request (always inferred).
    pub log_joins: u64,
    /// Gateway error-log lines that joined no request: context.
    pub context: u64,
}

/// Emitted requests kept (live mode) so that a late event can reopen them.
#[derive(Default)]
struct Retained {
    by_key: FxHashMap<String, u64>,
    items: FxHashMap<u64, Closed>,
    order: std::collections::VecDeque<u64>,
    events: usize,
    next: u64,
}

impl Retained {
    fn keep(&mut self, c: Closed, limits: &LiveLimits) {
        self.next += 1;
        let id = self.next;
        for k in &c.keys {
            self.by_key.insert(k.clone(), id);
        }
        self.events += c.events.len();
        self.items.insert(id, c);
        self.order.push_back(id);
        while self.items.len() > limits.retain || self.events > limits.max_events {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.remove(old);
        }
    }

    fn remove(&mut self, id: u64) -> Option<Closed> {
        let c = self.items.remove(&id)?;
        self.events -= c.events.len();
        for k in &c.keys {
            if self.by_key.get(k) == Some(&id) {
                self.by_key.remove(k);
            }
        }
        Some(c)
    }

    fn take(&mut self, keys: &[String]) -> Option<Closed> {
        let id = keys.iter().find_map(|k| self.by_key.get(k).copied())?;
        self.remove(id)
    }
}

/// Keys of recently closed requests (as hashes), to recognise late events.
const RECENTLY_CLOSED: usize = 1 << 16;

pub struct Correlator {
    idle_ns: i64,
    slots: Vec<Option<Open>>,
    free: Vec<u32>,
    by_key: FxHashMap<String, Holders>,
    /// (last activity when queued, slot): checked lazily when popped.
    queue: BinaryHeap<Reverse<(i64, u32)>>,
    open: usize,
    generation: u64,
    infer: Option<Inference>,
    closed_keys: std::collections::VecDeque<u64>,
    closed_set: rustc_hash::FxHashSet<u64>,
    live: Option<LiveLimits>,
    /// Live: (opened at, slot, generation), for the maximum age.
    age_queue: BinaryHeap<Reverse<(i64, u32, u64)>>,
    retained: Retained,
    /// Events held in open requests.
    buffered: usize,
    pub stats: WindowStats,
    /// Open gateway requests by client, for error-log lines.
    by_client: ClientIndex,
    /// The client index is built when the first error-log line comes, and
    /// kept from then on: runs without error logs never pay for it.
    clients_indexed: bool,
    /// Error-log lines that came before their access line, oldest first.
    pending_logs: std::collections::VecDeque<(i64, Event)>,
    /// Gateway error-log lines that joined no request (start-up, reloads,
    /// worker exits, or a request line never logged), by file.
    pub context: FxHashMap<std::sync::Arc<str>, u64>,
}

fn key_hash(k: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(k)
}

impl Correlator {
    pub fn new(idle_ms: u64) -> Correlator {
        Correlator {
            idle_ns: idle_ms as i64 * 1_000_000,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: FxHashMap::default(),
            queue: BinaryHeap::new(),
            open: 0,
            generation: 0,
            infer: None,
            closed_keys: std::collections::VecDeque::new(),
            closed_set: rustc_hash::FxHashSet::default(),
            live: None,
            age_queue: BinaryHeap::new(),
            retained: Retained::default(),
            buffered: 0,
            stats: WindowStats::default(),
            by_client: ClientIndex::default(),
            clients_indexed: false,
            pending_logs: std::collections::VecDeque::new(),
            context: FxHashMap::default(),
        }
    }

    /// Live mode: activity is timed by arrival (`now` in [`Correlator::push`]),
    /// not by event time, so a source that stops sending cannot hold requests
    /// open; requests are capped and re-emitted when a late event arrives.
    pub fn live(mut self, limits: LiveLimits) -> Correlator {
        self.live = Some(limits);
        self
    }

    /// Events held in open requests.
    pub fn buffered_events(&self) -> usize {
        self.buffered
    }

    /// Also joins id-less gateway lines to entry spans by method, path, time
    /// and client (see [`infer`]).
    pub fn with_inferred_joins(mut self) -> Correlator {
        self.infer = Some(Inference::default());
        self
    }

    fn is_open(slots: &[Option<Open>], slot: u32, generation: u64) -> bool {
        slots
            .get(slot as usize)
            .and_then(|o| o.as_ref())
            .is_some_and(|o| o.generation == generation)
    }

    pub fn open_requests(&self) -> usize {
        self.open
    }

    /// Adds one event with its [`keys`]; `now` is the time to use when the
    /// event has none (live mode: the arrival time, used for every event).
    pub fn push(&mut self, ev: Event, ks: Vec<String>, now: i64) {
        self.stats.events += 1;
        // Activity lasts until the event's end (a span's end, the gateway's
        // request start + duration): a long request stays open while it runs.
        let start = ev.ts.unwrap_or(now);
        let end = ev
            .span
            .as_ref()
            .and_then(|s| s.end_ts)
            .into_iter()
            .chain(ev.duration_ms.map(|d| start + (d * 1e6) as i64));
        let t = if self.live.is_some() {
            now
        } else {
            end.fold(start, i64::max)
        };
        if ks.is_empty() && ev.source() == Source::GatewayLog {
            self.push_gateway_log(ev, t);
            return;
        }
        if ks.is_empty() && ev.source() != Source::Gateway {
            self.stats.unjoined += 1;
            return;
        }
        // Every open request that holds one of the event's keys, with the
        // strongest key that reached it.
        let mut reached: Vec<(u32, Via)> = Vec::new();
        for k in &ks {
            let Some(h) = self.by_key.get(k) else {
                continue;
            };
            for &s in h.as_slice() {
                if !reached.iter().any(|(x, _)| *x == s) {
                    reached.push((s, Via::Trace));
                }
            }
        }
        // How each request was reached matters only when the event could
        // belong to one of several (or is a gateway line meeting others): only
        // then are its ids classified (the common event reaches one or none).
        if reached.len() > 1 || (ev.source() == Source::Gateway && !reached.is_empty()) {
            let strong = strong_ids(&ev);
            let own_span = ev
                .span_id
                .as_deref()
                .and_then(ids::normalize)
                .map(|s| format!("span:{s}"));
            for k in &ks {
                let Some(h) = self.by_key.get(k) else {
                    continue;
                };
                // A parent span id is shared by every attempt its caller made:
                // as weak as the trace id.
                let via = if strong.contains(k) {
                    Via::Id
                } else if own_span.as_ref() == Some(k) {
                    Via::Span
                } else {
                    Via::Trace
                };
                for &s in h.as_slice() {
                    if let Some((_, v)) = reached.iter_mut().find(|(x, _)| *x == s) {
                        *v = (*v).max(via);
                    }
                }
            }
        }
        let mut found: Vec<u32> = reached.iter().map(|(s, _)| *s).collect();
        // A gateway line without ids, or the entry span of a request that has no
        // gateway line yet, may still be matched by inference.
        let role = match (self.infer.as_ref(), found.as_slice()) {
            (None, _) => None,
            (Some(_), []) => infer::role(&ev, !ks.is_empty()),
            (Some(_), [s]) => infer::role(&ev, true).filter(|_| {
                self.slots[*s as usize].as_ref().is_some_and(|o| {
                    o.inferred.is_none() && !o.events.iter().any(|e| e.source() == Source::Gateway)
                })
            }),
            _ => None,
        };
        let mut matched = false;
        if let (Some(role), Some(inference)) = (&role, self.infer.as_mut()) {
            let slots = &self.slots;
            let open = |s: u32, g: u64| Self::is_open(slots, s, g);
            if let Some((s, confidence)) = inference.take_match(role, &ev, start, &open) {
                if !found.contains(&s) {
                    found.push(s);
                    reached.push((s, Via::Id));
                }
                matched = true;
                self.stats.inferred += 1;
                if let Some(o) = self.slots[s as usize].as_mut() {
                    o.inferred = Some(o.inferred.map_or(confidence, |c| c.min(confidence)));
                }
            } else if let Some(&s) = found.first() {
                // Joined a request by id: that request waits for its gateway line.
                let generation = self.slots[s as usize].as_ref().map_or(0, |o| o.generation);
                inference.offer(role, &ev, start, s, generation);
            }
        }
        if found.is_empty()
            && !self.closed_set.is_empty()
            && ks.iter().any(|k| self.closed_set.contains(&key_hash(k)))
        {
            self.stats.late += 1;
            // Live: reopen the emitted request so it is emitted again, amended.
            if let Some(prev) = self.live.and_then(|_| self.retained.take(&ks)) {
                self.stats.amended += 1;
                let s = self.open_slot(t, prev.events, prev.revision + 1, prev.inferred);
                for k in prev.keys {
                    self.hold(k, s);
                }
                found.push(s);
                reached.push((s, Via::Id));
            }
        }
        let own_line = (ev.source() == Source::Gateway).then(|| GatewayLine::of(&ev, start));
        let (target, merge) = self.choose(&ev, own_line.as_ref(), start, &mut reached);
        let slot = match target {
            None => {
                let s = self.open_slot(t, Vec::with_capacity(1), 1, None);
                if let (Some(role), Some(inference), false) = (&role, self.infer.as_mut(), matched)
                {
                    inference.offer(role, &ev, start, s, self.generation);
                }
                s
            }
            Some(s) => s,
        };
        // Merge every other request this event connects into the target.
        for other in merge {
            let o = self.slots[other as usize].take().expect("open slot");
            self.free.push(other);
            self.open -= 1;
            self.stats.merges += 1;
            for k in &o.keys {
                if let Some(h) = self.by_key.get_mut(k) {
                    h.replace(other, slot);
                }
            }
            let target = self.slots[slot as usize].as_mut().expect("open slot");
            // Its gateway lines' clients now point at the request they joined.
            if self.clients_indexed {
                for c in o.gateway.iter().filter_map(|l| l.client.as_ref()) {
                    self.by_client.remove(c, other, o.generation);
                    self.by_client.add(c, slot, target.generation);
                }
            }
            for k in o.keys {
                if !target.keys.contains(&k) {
                    target.keys.push(k);
                }
            }
            target.events.extend(o.events);
            target.gateway.extend(o.gateway);
            target.reused_id |= o.reused_id;
            target.last = target.last.max(o.last);
            target.first = target.first.min(o.first);
            target.revision = target.revision.max(o.revision);
            target.inferred = match (target.inferred, o.inferred) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Some(line) = own_line {
            // Another line of this file already had one of this line's ids: a
            // client reusing its request id. Two requests, both flagged.
            let reuse: Vec<u32> = reached
                .iter()
                .filter(|(s, via)| *via == Via::Id && *s != slot)
                .filter(|(s, _)| {
                    self.slots[*s as usize].as_ref().is_some_and(|o| {
                        o.gateway.iter().any(|g| {
                            g.file == line.file
                                && {
                                    let mine = line.ids();
                                    g.ids().iter().any(|i| mine.contains(i))
                                }
                                && !g.same_request(&line)
                        })
                    })
                })
                .map(|(s, _)| *s)
                .collect();
            if !reuse.is_empty() {
                self.stats.reused_ids += 1;
                for s in reuse.into_iter().chain([slot]) {
                    if let Some(o) = self.slots[s as usize].as_mut() {
                        o.reused_id = true;
                    }
                }
            }
            if let (true, Some(c)) = (self.clients_indexed, &line.client) {
                let generation = self.slots[slot as usize]
                    .as_ref()
                    .map_or(0, |o| o.generation);
                self.by_client.add(c, slot, generation);
            }
            let waiting = line.client.is_some() && !self.pending_logs.is_empty();
            let target = self.slots[slot as usize].as_mut().expect("open slot");
            // Almost every request has one gateway line: no spare capacity.
            target.gateway.reserve_exact(1);
            target.gateway.push(line);
            if waiting {
                self.retry_pending_logs();
            }
        }
        for k in ks {
            self.hold(k, slot);
        }
        let target = self.slots[slot as usize].as_mut().expect("open slot");
        target.last = target.last.max(t);
        target.events.push(ev);
        self.buffered += 1;
    }

    /// An error-log line with no id: joined to the open request whose gateway
    /// line it fits (client, request line, upstream, time), or held until that
    /// line comes, or counted as context.
    fn push_gateway_log(&mut self, ev: Event, t: i64) {
        if ev.client_ip.is_none() {
            self.count_context(&ev);
            return;
        }
        if !self.clients_indexed {
            self.clients_indexed = true;
            for (s, open) in self.slots.iter().enumerate() {
                let Some(open) = open else { continue };
                for c in open.gateway.iter().filter_map(|l| l.client.as_ref()) {
                    self.by_client.add(c, s as u32, open.generation);
                }
            }
        }
        match self.best_line_for(&ev) {
            Some(m) => self.attach_log(ev, m, t),
            None => self.pending_logs.push_back((t, ev)),
        }
    }

    fn count_context(&mut self, ev: &Event) {
        self.stats.context += 1;
        if let Some(o) = &ev.origin {
            *self.context.entry(o.file.clone()).or_default() += 1;
        }
    }

    /// The open request whose gateway line this error-log line belongs to.
    fn best_line_for(&self, ev: &Event) -> Option<LogMatch> {
        let client = errorlog::client_key(ev.client_ip.as_deref()?);
        let candidates = self.by_client.get(&client)?;
        let mut scored = Vec::new();
        for &(s, g) in candidates {
            if !Self::is_open(&self.slots, s, g) {
                continue;
            }
            let open = self.slots[s as usize].as_ref().expect("open slot");
            let conns: Vec<String> = open
                .events
                .iter()
                .filter(|e| e.source() == Source::GatewayLog)
                .filter_map(errorlog::connection)
                .collect();
            for line in &open.gateway {
                let view = errorlog::Line {
                    client: line.client.as_deref(),
                    method: line.method.as_deref(),
                    path: line.path.as_deref(),
                    upstream: line.upstream.as_deref(),
                    start: line.start,
                    end: line.end,
                    failed: line.failed,
                    upstream_failed: line.upstream_failed,
                    conns: &conns,
                };
                if let Some(score) = errorlog::score(ev, &view) {
                    scored.push((s, score));
                }
            }
        }
        errorlog::best(scored)
    }

    fn attach_log(&mut self, mut ev: Event, m: LogMatch, t: i64) {
        self.stats.log_joins += 1;
        ev.attributes
            .push((crate::event::Text::from("joined_by"), m.fields.to_string()));
        let o = self.slots[m.slot as usize].as_mut().expect("open slot");
        o.inferred = Some(o.inferred.map_or(m.confidence, |c| c.min(m.confidence)));
        o.last = o.last.max(t);
        o.events.push(ev);
        self.buffered += 1;
    }

    /// Joins the waiting error-log lines that now have their request.
    fn retry_pending_logs(&mut self) {
        let waiting = std::mem::take(&mut self.pending_logs);
        for (t, ev) in waiting {
            match self.best_line_for(&ev) {
                Some(m) => self.attach_log(ev, m, t),
                None => self.pending_logs.push_back((t, ev)),
            }
        }
    }

    /// Error-log lines whose time to find a request is over become context.
    fn expire_pending_logs(&mut self, limit: i64) {
        while self.pending_logs.front().is_some_and(|(t, _)| *t < limit) {
            if let Some((_, ev)) = self.pending_logs.pop_front() {
                self.count_context(&ev);
            }
        }
    }

    /// Registers `slot` as a holder of `key`, and the key with the slot.
    fn hold(&mut self, key: String, slot: u32) {
        let Some(target) = self.slots[slot as usize].as_mut() else {
            return;
        };
        match self.by_key.get_mut(&key) {
            Some(h) => {
                if h.as_slice().contains(&slot) {
                    return;
                }
                h.add(slot);
            }
            None => {
                self.by_key.insert(key.clone(), Holders::One(slot));
            }
        }
        target.keys.push(key);
    }

    /// Where an event goes among the open requests it reached, and which of
    /// them merge into that one.
    ///
    /// While at most one gateway request is among them (the usual case),
    /// they all merge: ids are one graph. When several gateway requests share
    /// the event's trace (a client retrying inside one trace, a batch job's
    /// trace fanning out into many API calls), they stay apart: the event goes
    /// to the one whose request id it carries, else whose span it continues,
    /// else whose gateway line it fits in time; only requests it reached by a
    /// request or span id follow it. A gateway line never joins another
    /// gateway request (unless it is the same request seen at another hop).
    fn choose(
        &mut self,
        ev: &Event,
        own_line: Option<&GatewayLine>,
        start: i64,
        reached: &mut [(u32, Via)],
    ) -> (Option<u32>, Vec<u32>) {
        match (reached, own_line) {
            ([], _) => (None, Vec::new()),
            ([(only, _)], None) => (Some(*only), Vec::new()),
            (reached, _) => self.choose_among(ev, own_line, start, reached),
        }
    }

    fn choose_among(
        &mut self,
        ev: &Event,
        own_line: Option<&GatewayLine>,
        start: i64,
        reached: &mut [(u32, Via)],
    ) -> (Option<u32>, Vec<u32>) {
        let lines = |s: u32| -> &[GatewayLine] {
            self.slots[s as usize]
                .as_ref()
                .map_or(&[][..], |o| o.gateway.as_slice())
        };
        let compatible = |a: &[GatewayLine], b: &[GatewayLine]| {
            a.iter().all(|x| b.iter().all(|y| x.same_request(y)))
        };
        let own: Vec<GatewayLine> = own_line.into_iter().cloned().collect();
        // Is there more than one gateway request among them (and the event)?
        let mut groups: Vec<Vec<GatewayLine>> = Vec::new();
        if !own.is_empty() {
            groups.push(own.clone());
        }
        for (s, _) in reached.iter() {
            let l = lines(*s);
            if l.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|g| compatible(g, l)) {
                Some(g) => g.extend(l.iter().cloned()),
                None => groups.push(l.to_vec()),
            }
        }
        if groups.len() <= 1 {
            let all: Vec<u32> = reached.iter().map(|(s, _)| *s).collect();
            return (Some(all[0]), all[1..].to_vec());
        }
        self.stats.shared_traces += 1;
        // Rank the requests the event could belong to.
        let parent = ev.parent_span_id.as_deref().and_then(ids::normalize);
        let ts = ev.ts.unwrap_or(start);
        let fit = |l: &[GatewayLine]| -> (bool, bool, i64) {
            let continues = parent.is_some()
                && l.iter()
                    .any(|g| g.parent_span.is_some() && g.parent().as_deref() == parent.as_deref());
            let inside = l.iter().any(|g| g.start <= ts && ts <= g.end);
            let distance = l
                .iter()
                .map(|g| (ts - g.start).abs())
                .min()
                .unwrap_or(i64::MAX);
            (continues, inside, distance)
        };
        reached.sort_by(|(a, va), (b, vb)| {
            let (fa, fb) = (fit(lines(*a)), fit(lines(*b)));
            vb.cmp(va)
                .then(fb.0.cmp(&fa.0))
                .then(fb.1.cmp(&fa.1))
                .then(fa.2.cmp(&fb.2))
        });
        let target = reached
            .iter()
            .find(|(s, _)| own.is_empty() || compatible(&own, lines(*s)))
            .map(|(s, _)| *s);
        let Some(target) = target else {
            return (None, Vec::new());
        };
        let mut held: Vec<GatewayLine> = own;
        held.extend(lines(target).iter().cloned());
        let mut merge = Vec::new();
        for &(s, via) in reached.iter() {
            if s == target {
                continue;
            }
            let l = lines(s);
            let joins = if l.is_empty() {
                via >= Via::Span
            } else {
                compatible(&held, l)
            };
            if joins {
                held.extend(l.iter().cloned());
                merge.push(s);
            }
        }
        (Some(target), merge)
    }

    fn open_slot(
        &mut self,
        t: i64,
        events: Vec<Event>,
        revision: u32,
        inferred: Option<f32>,
    ) -> u32 {
        self.generation += 1;
        self.buffered += events.len();
        let open = Open {
            events,
            keys: Vec::new(),
            last: t,
            first: t,
            revision,
            generation: self.generation,
            inferred,
            gateway: Vec::new(),
            reused_id: false,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(open);
                s
            }
            None => {
                self.slots.push(Some(open));
                (self.slots.len() - 1) as u32
            }
        };
        self.open += 1;
        self.queue.push(Reverse((t, s)));
        if self.live.is_some() {
            self.age_queue.push(Reverse((t, s, self.generation)));
        }
        s
    }

    /// Closes every request idle since before `watermark - idle window`. Each
    /// closed request comes out as its events; [`super::build_request`] (which
    /// sorts and summarises them) runs on the caller's worker threads.
    pub fn close_idle(&mut self, watermark: i64, out: &mut Vec<Closed>) {
        let limit = watermark.saturating_sub(self.idle_ns);
        self.expire_pending_logs(limit);
        let before = out.len();
        while let Some(&Reverse((t, s))) = self.queue.peek() {
            if t >= limit {
                break;
            }
            self.queue.pop();
            let Some(open) = self.slots[s as usize].as_ref() else {
                continue; // merged away
            };
            if open.last > t {
                // Active since it was queued: look again later.
                self.queue.push(Reverse((open.last, s)));
                continue;
            }
            out.push(self.close(s, None));
        }
        if let Some(limits) = self.live {
            let limit = watermark.saturating_sub(limits.max_age_ns);
            while let Some(&Reverse((t, s, g))) = self.age_queue.peek() {
                if t >= limit {
                    break;
                }
                self.age_queue.pop();
                if Self::is_open(&self.slots, s, g) {
                    self.stats.aged += 1;
                    out.push(self.close(s, Some(Flag::MaxAge)));
                }
            }
            self.evict_over(limits.max_open, limits.max_events, out);
        }
        if out.len() > before {
            if let Some(inference) = self.infer.as_mut() {
                let slots = &self.slots;
                inference.prune(&|s, g| Self::is_open(slots, s, g));
            }
        }
    }

    /// Over a cap: the requests idle longest are emitted early (flag `evicted`).
    fn evict_over(&mut self, max_open: usize, max_events: usize, out: &mut Vec<Closed>) {
        while self.open > max_open || self.buffered > max_events {
            let Some(Reverse((t, s))) = self.queue.pop() else {
                break;
            };
            let Some(open) = self.slots[s as usize].as_ref() else {
                continue;
            };
            if open.last > t {
                self.queue.push(Reverse((open.last, s)));
                continue;
            }
            self.stats.evicted += 1;
            out.push(self.close(s, Some(Flag::Evicted)));
        }
    }

    /// Live, over the memory limit: emits the longest-idle half of the open
    /// requests and of their events early (flag `evicted`), and forgets the
    /// emitted requests kept for amendment (a late event then starts a
    /// request of its own, counted `late`). Returns how many it emitted.
    pub fn shed(&mut self, out: &mut Vec<Closed>) -> usize {
        let before = out.len();
        self.evict_over(self.open / 2, self.buffered / 2, out);
        self.retained = Retained::default();
        out.len() - before
    }

    /// Live: keeps an emitted request's events (taken back from its labelled
    /// request, not copied) so that a late event reopens it; `keys` are the
    /// keys it closed with.
    pub fn retain(&mut self, keys: Vec<String>, events: Vec<Event>, request: &super::Request) {
        if let Some(limits) = self.live.filter(|l| l.retain > 0) {
            self.retained.keep(
                Closed {
                    events,
                    keys,
                    inferred: request.inferred,
                    revision: request.revision,
                    early: None,
                    reused_id: request.flags.contains(&Flag::ReusedId),
                },
                &limits,
            );
        }
    }

    /// Whether emitted requests are kept for amendment (see [`Correlator::retain`]).
    pub fn retains(&self) -> bool {
        self.live.is_some_and(|l| l.retain > 0)
    }

    /// Closes everything (end of input).
    pub fn close_all(&mut self, out: &mut Vec<Closed>) {
        self.close_idle(i64::MAX, out);
        self.expire_pending_logs(i64::MAX);
        for s in 0..self.slots.len() as u32 {
            if self.slots[s as usize].is_some() {
                out.push(self.close(s, None));
            }
        }
    }

    fn close(&mut self, s: u32, early: Option<Flag>) -> Closed {
        let open = self.slots[s as usize].take().expect("open slot");
        self.free.push(s);
        self.open -= 1;
        self.buffered -= open.events.len();
        // The client index holds open requests only: memory stays bounded by
        // the window, whatever the number of distinct clients.
        if self.clients_indexed {
            for c in open.gateway.iter().filter_map(|l| l.client.as_ref()) {
                self.by_client.remove(c, s, open.generation);
            }
        }
        for k in &open.keys {
            if let Some(h) = self.by_key.get_mut(k) {
                if h.remove(s) {
                    self.by_key.remove(k);
                }
            }
            let h = key_hash(k);
            if self.closed_set.insert(h) {
                self.closed_keys.push_back(h);
                if self.closed_keys.len() > RECENTLY_CLOSED {
                    if let Some(old) = self.closed_keys.pop_front() {
                        self.closed_set.remove(&old);
                    }
                }
            }
        }
        Closed {
            events: open.events,
            keys: open.keys,
            inferred: open.inferred,
            revision: open.revision,
            early,
            reused_id: open.reused_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::{build_request, keys};
    use crate::event::Text;

    fn ev(ts_ms: i64, source: Source, rid: Option<&str>, trace: Option<&str>) -> Event {
        Event {
            ts: Some(ts_ms * 1_000_000),
            source: Some(source),
            format: "t".into(),
            request_id: rid.map(Text::from),
            trace_id: trace.map(Text::from),
            ..Default::default()
        }
    }

    #[test]
    fn requests_close_after_the_idle_window_and_bridging_events_merge() {
        let mut c = Correlator::new(1_000);
        let trace = Some("0af7651916cd43dd8448eb211c80319c");
        for e in [
            ev(0, Source::Gateway, Some("a"), None),
            ev(1, Source::Span, None, trace),
            // This backend line carries both ids: the two open requests become one.
            ev(2, Source::Backend, Some("a"), trace),
            ev(500, Source::Gateway, Some("b"), None),
        ] {
            let k = keys(&e);
            c.push(e, k, 0);
        }
        assert_eq!(c.open_requests(), 2);
        let mut out = Vec::new();
        c.close_idle(1_200 * 1_000_000, &mut out);
        assert_eq!(out.len(), 1, "only the first request is idle for 1 s");
        let first = build_request(out[0].events.clone(), out[0].keys.clone());
        assert_eq!(first.events.len(), 3);
        assert_eq!(first.request_id.as_deref(), Some("a"));
        c.close_all(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(c.stats.merges, 1);
        assert_eq!(c.open_requests(), 0);
        // A straggler for request "a", after it closed: its own request, counted.
        let e = ev(5_000, Source::Backend, Some("a"), None);
        let k = keys(&e);
        c.push(e, k, 0);
        assert_eq!(c.stats.late, 1);
    }

    #[test]
    fn a_long_request_stays_open_while_it_runs() {
        let mut c = Correlator::new(5_000);
        // The gateway saw a 40 s request starting at 0; the backend logged at 38 s.
        let mut g = ev(0, Source::Gateway, Some("slow"), None);
        g.duration_ms = Some(40_000.0);
        let b = ev(38_000, Source::Backend, Some("slow"), None);
        for e in [g, b] {
            let k = keys(&e);
            c.push(e, k, 0);
        }
        let mut out = Vec::new();
        c.close_idle(30_000 * 1_000_000, &mut out);
        assert!(out.is_empty(), "still running at 30 s");
        c.close_idle(46_000 * 1_000_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].events.len(), 2, "one request with both events");
    }

    /// A gateway line of `file` at `ms` for 100 ms, with a request id and a
    /// trace id (and the caller's span, as `traceparent` gives it).
    fn line(file: &str, ms: i64, rid: &str, trace: &str, parent: &str) -> Event {
        let mut e = ev(ms, Source::Gateway, Some(rid), Some(trace));
        e.duration_ms = Some(100.0);
        e.parent_span_id = Some(parent.into());
        e.method = Some("POST".into());
        e.path = Some("/v1/pay".into());
        e.origin = Some(crate::event::Origin {
            file: file.into(),
            line: ms as u64,
            item: None,
        });
        e
    }

    fn span(ms: i64, trace: &str, id: &str, parent: &str) -> Event {
        let mut e = ev(ms, Source::Span, None, Some(trace));
        e.span_id = Some(id.into());
        e.parent_span_id = Some(parent.into());
        e.span = Some(Box::new(crate::event::SpanFields {
            name: "POST /v1/pay".into(),
            kind: crate::event::SpanKind::Server,
            status: crate::event::SpanStatus::Unset,
            status_message: None,
            end_ts: Some((ms + 50) * 1_000_000),
            exceptions: Vec::new(),
        }));
        e
    }

    fn run(events: Vec<Event>) -> (Correlator, Vec<crate::correlate::Request>) {
        let mut c = Correlator::new(1_000);
        for e in events {
            let k = keys(&e);
            c.push(e, k, 0);
        }
        let mut out = Vec::new();
        c.close_all(&mut out);
        let mut reqs: Vec<_> = out
            .into_iter()
            .map(crate::correlate::build_closed)
            .collect();
        reqs.sort_by_key(|r| r.start);
        (c, reqs)
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn two_gateway_requests_in_one_trace_stay_two_with_their_own_events() {
        // A client retries inside one trace: two gateway lines, two request
        // ids; each attempt's span continues its own caller span, each log
        // line names its request id.
        let mut log1 = ev(20, Source::Backend, Some("r1"), Some(TRACE));
        log1.span_id = Some("00000000000000a1".into());
        let mut log2 = ev(420, Source::Backend, Some("r2"), Some(TRACE));
        log2.span_id = Some("00000000000000a2".into());
        let (c, reqs) = run(vec![
            line("gw.log", 0, "r1", TRACE, "00000000000000c1"),
            span(10, TRACE, "00000000000000a1", "00000000000000c1"),
            log1,
            line("gw.log", 400, "r2", TRACE, "00000000000000c2"),
            span(410, TRACE, "00000000000000a2", "00000000000000c2"),
            log2,
        ]);
        assert_eq!(reqs.len(), 2, "{reqs:#?}");
        for (r, rid) in reqs.iter().zip(["r1", "r2"]) {
            assert_eq!(r.request_id.as_deref(), Some(rid));
            assert_eq!(r.events.len(), 3, "{rid}: {:?}", r.events);
            assert_eq!(
                r.trace_id.as_deref(),
                Some(TRACE),
                "the trace stays on both"
            );
            assert!(r.flags.is_empty(), "{rid}: {:?}", r.flags);
        }
        assert!(c.stats.shared_traces > 0);
    }

    #[test]
    fn a_span_with_only_the_trace_goes_to_the_attempt_it_fits_in_time() {
        // The caller kept one span for both attempts: only time tells them apart.
        let (_, reqs) = run(vec![
            line("gw.log", 0, "r1", TRACE, "00000000000000c1"),
            line("gw.log", 400, "r2", TRACE, "00000000000000c1"),
            span(410, TRACE, "00000000000000a2", "00000000000000c1"),
            span(10, TRACE, "00000000000000a1", "00000000000000c1"),
        ]);
        assert_eq!(reqs.len(), 2, "{reqs:#?}");
        let spans = |r: &crate::correlate::Request| -> Vec<String> {
            r.events
                .iter()
                .filter_map(|e| e.span_id.as_deref().map(str::to_string))
                .collect()
        };
        assert_eq!(spans(&reqs[0]), ["00000000000000a1"]);
        assert_eq!(spans(&reqs[1]), ["00000000000000a2"]);
    }

    #[test]
    fn a_reused_request_id_is_reported_not_merged_and_two_hops_are_one_request() {
        let (c, reqs) = run(vec![
            line("gw.log", 0, "dup", TRACE, "00000000000000c1"),
            line(
                "gw.log",
                5_000,
                "dup",
                "5b8efff798038103d269b633813fc60c",
                "00000000000000c2",
            ),
        ]);
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(|r| r.flags.contains(&Flag::ReusedId)));
        assert_eq!(c.stats.reused_ids, 1);
        // The same request at the edge and at the ingress: two files, one id.
        let (_, reqs) = run(vec![
            line("edge.log", 0, "r1", TRACE, "00000000000000c1"),
            line("ingress.log", 2, "r1", TRACE, "00000000000000c1"),
            span(10, TRACE, "00000000000000a1", "00000000000000c1"),
        ]);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].events.len(), 3);
        assert!(reqs[0].flags.contains(&Flag::SeveralGatewayLines));
    }

    fn live(max_open: usize, max_events: usize) -> Correlator {
        Correlator::new(1_000).live(LiveLimits {
            max_age_ns: 10_000 * 1_000_000,
            max_open,
            max_events,
            retain: 100,
        })
    }

    fn push(c: &mut Correlator, e: Event, now_ms: i64) {
        let k = keys(&e);
        c.push(e, k, now_ms * 1_000_000);
    }

    #[test]
    fn live_requests_are_timed_by_arrival_and_a_late_event_re_emits_them_amended() {
        let mut c = live(100, 1_000);
        // Event times from long ago (a replayed export): arrival time rules.
        push(
            &mut c,
            ev(
                0,
                Source::Span,
                None,
                Some("0af7651916cd43dd8448eb211c80319c"),
            ),
            50_000,
        );
        let mut out = Vec::new();
        c.close_idle(50_500 * 1_000_000, &mut out);
        assert!(out.is_empty(), "arrived 0.5 s ago, window 1 s");
        c.close_idle(51_100 * 1_000_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].revision, 1);
        // Live mode hands the emitted request's events back, not a copy.
        let keys = out[0].keys.clone();
        let mut r = crate::correlate::build_closed(out.remove(0));
        let events = std::mem::take(&mut r.events);
        c.retain(keys, events, &r);
        // The gateway line for the same trace arrives after the request was emitted.
        let mut g = ev(
            0,
            Source::Gateway,
            Some("r1"),
            Some("0af7651916cd43dd8448eb211c80319c"),
        );
        g.status = Some(502);
        push(&mut c, g, 52_000);
        assert_eq!(c.stats.amended, 1);
        let mut again = Vec::new();
        c.close_idle(53_100 * 1_000_000, &mut again);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].revision, 2, "second emission of the same request");
        assert_eq!(
            again[0].events.len(),
            2,
            "with the span and the gateway line"
        );
        let r = crate::correlate::build_closed(again.remove(0));
        assert!(r.flags.contains(&crate::correlate::Flag::Amended));
        assert_eq!(r.request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn shedding_emits_the_longest_idle_half_and_forgets_retained_requests() {
        let mut c = live(100, 1_000);
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            push(
                &mut c,
                ev(0, Source::Gateway, Some(id), None),
                i as i64 * 10,
            );
        }
        // One request emitted and kept for amendment.
        push(&mut c, ev(0, Source::Gateway, Some("old"), None), 0);
        let mut out = Vec::new();
        c.close_idle(5_000 * 1_000_000, &mut out);
        assert_eq!(out.len(), 5, "all idle past the window");
        for closed in out.drain(..) {
            let keys = closed.keys.clone();
            let mut r = crate::correlate::build_closed(closed);
            let events = std::mem::take(&mut r.events);
            c.retain(keys, events, &r);
        }
        for (i, id) in ["e", "f", "g", "h"].iter().enumerate() {
            push(
                &mut c,
                ev(0, Source::Gateway, Some(id), None),
                6_000 + i as i64 * 10,
            );
        }
        assert_eq!(c.shed(&mut out), 2, "half of four open requests");
        let shed: Vec<&str> = out.iter().map(|c| c.keys[0].as_str()).collect();
        assert_eq!(shed, ["e", "f"], "the longest idle first");
        assert!(out.iter().all(|c| c.early == Some(Flag::Evicted)));
        assert_eq!(c.open_requests(), 2);
        // A late event for a forgotten request starts a request of its own.
        push(&mut c, ev(0, Source::Backend, Some("a"), None), 6_100);
        assert_eq!(c.stats.late, 1);
        assert_eq!(c.stats.amended, 0);
    }

    #[test]
    fn live_caps_evict_the_longest_idle_request_and_max_age_closes_busy_ones() {
        let mut c = live(2, 1_000);
        push(&mut c, ev(0, Source::Gateway, Some("a"), None), 0);
        push(&mut c, ev(0, Source::Gateway, Some("b"), None), 10);
        push(&mut c, ev(0, Source::Gateway, Some("c"), None), 20);
        let mut out = Vec::new();
        c.close_idle(30 * 1_000_000, &mut out);
        assert_eq!(out.len(), 1, "three open, cap two");
        assert_eq!(out[0].early, Some(Flag::Evicted));
        assert_eq!(out[0].keys, vec!["a".to_string()], "the longest idle goes");
        assert_eq!(c.stats.evicted, 1);
        assert_eq!(c.open_requests(), 2);

        // Events cap: one request of many events.
        let mut c = live(100, 3);
        for t in 0..5 {
            push(&mut c, ev(t, Source::Backend, Some("x"), None), t);
        }
        let mut out = Vec::new();
        c.close_idle(5 * 1_000_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(c.buffered_events(), 0);

        // A request that never goes idle is closed at the maximum age (10 s).
        let mut c = live(100, 1_000);
        for t in (0..12_000).step_by(500) {
            push(&mut c, ev(t, Source::Backend, Some("busy"), None), t);
        }
        let mut out = Vec::new();
        c.close_idle(11_600 * 1_000_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].early, Some(Flag::MaxAge));
        assert_eq!(c.stats.aged, 1);
    }
}
