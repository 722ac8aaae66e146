//! Windowed correlation: events are pushed as they are read; a request stays
//! open while events keep arriving and is closed once the watermark (the event
//! time every input has reached) is more than the idle window past its last
//! event. Memory is bounded by the requests inside the window, not the input.
//!
//! Keys are the same as in the batch graph ([`super::keys`]); a new event that
//! shares keys with several open requests merges them.

use super::infer::{self, Inference};
use super::Flag;
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
    by_key: FxHashMap<String, u32>,
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
        if ks.is_empty() && ev.source() != Source::Gateway {
            self.stats.unjoined += 1;
            return;
        }
        let mut found: Vec<u32> = Vec::new();
        for k in &ks {
            if let Some(&s) = self.by_key.get(k) {
                if !found.contains(&s) {
                    found.push(s);
                }
            }
        }
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
                let target = self.slots[s as usize].as_mut().expect("open slot");
                for k in prev.keys {
                    if !self.by_key.contains_key(&k) {
                        self.by_key.insert(k.clone(), s);
                        target.keys.push(k);
                    }
                }
                found.push(s);
            }
        }
        let slot = match found.first() {
            None => {
                let s = self.open_slot(t, Vec::with_capacity(1), 1, None);
                if let (Some(role), Some(inference), false) = (&role, self.infer.as_mut(), matched)
                {
                    inference.offer(role, &ev, start, s, self.generation);
                }
                s
            }
            Some(&s) => s,
        };
        // Merge every other request this event connects into the first.
        for &other in found.iter().skip(1) {
            let o = self.slots[other as usize].take().expect("open slot");
            self.free.push(other);
            self.open -= 1;
            self.stats.merges += 1;
            for k in &o.keys {
                self.by_key.insert(k.clone(), slot);
            }
            let target = self.slots[slot as usize].as_mut().expect("open slot");
            target.events.extend(o.events);
            target.keys.extend(o.keys);
            target.last = target.last.max(o.last);
            target.first = target.first.min(o.first);
            target.revision = target.revision.max(o.revision);
            target.inferred = match (target.inferred, o.inferred) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let target = self.slots[slot as usize].as_mut().expect("open slot");
        for k in ks {
            if !self.by_key.contains_key(&k) {
                self.by_key.insert(k.clone(), slot);
                target.keys.push(k);
            }
        }
        target.last = target.last.max(t);
        target.events.push(ev);
        self.buffered += 1;
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
            // Over a cap: the requests idle longest go first.
            while self.open > limits.max_open || self.buffered > limits.max_events {
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
        if out.len() > before {
            if let Some(inference) = self.infer.as_mut() {
                let slots = &self.slots;
                inference.prune(&|s, g| Self::is_open(slots, s, g));
            }
        }
    }

    /// Closes everything (end of input).
    pub fn close_all(&mut self, out: &mut Vec<Closed>) {
        self.close_idle(i64::MAX, out);
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
        for k in &open.keys {
            // Keys are registered by one request only (merges move them), so
            // this removes our own entry; one lookup per key.
            let removed = self.by_key.remove(k);
            debug_assert_eq!(removed, Some(s));
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
        let closed = Closed {
            events: open.events,
            keys: open.keys,
            inferred: open.inferred,
            revision: open.revision,
            early,
        };
        if let Some(limits) = self.live.filter(|l| l.retain > 0) {
            self.retained.keep(
                Closed {
                    events: closed.events.clone(),
                    keys: closed.keys.clone(),
                    ..closed
                },
                &limits,
            );
        }
        closed
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
