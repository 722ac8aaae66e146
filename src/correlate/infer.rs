//! Opt-in inferred joins (`--infer-joins`): a gateway line that carries no id
//! at all is matched to the entry server span of the same method and path that
//! started while the gateway was handling it (and from the same client, when
//! both say). The join is marked `inferred`, with a confidence of 1/n when n
//! lines were equally plausible — never silently exact.

use crate::event::{Event, Source, SpanKind, Text};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Slack around the gateway's [start, end] when times are precise.
const STRICT_NS: i64 = 50_000_000;
/// Slack for clock skew and second-resolution logs; matches found only with it
/// get half the confidence.
const TOLERANCE_NS: i64 = 2_000_000_000;

#[derive(Debug, Clone)]
struct Candidate {
    slot: u32,
    generation: u64,
    start: i64,
    end: i64,
    client: Option<Text>,
}

/// What an event can be matched as.
pub enum Role {
    /// A gateway line without any id.
    Gateway,
    /// An entry server span that joined nothing by id.
    Span,
}

pub fn role(ev: &Event, has_keys: bool) -> Option<Role> {
    match ev.source() {
        Source::Gateway if !has_keys => Some(Role::Gateway),
        Source::Span if ev.span.as_ref().is_some_and(|s| s.kind == SpanKind::Server) => {
            Some(Role::Span)
        }
        _ => None,
    }
}

type Key = (Text, Text);

#[derive(Default)]
pub struct Inference {
    gateways: FxHashMap<Key, VecDeque<Candidate>>,
    spans: FxHashMap<Key, VecDeque<Candidate>>,
}

fn key(ev: &Event) -> Option<Key> {
    Some((ev.method.clone()?, ev.path.clone()?))
}

fn interval(ev: &Event, start: i64) -> (i64, i64) {
    let end = ev
        .span
        .as_ref()
        .and_then(|s| s.end_ts)
        .or_else(|| ev.duration_ms.map(|d| start + (d * 1e6) as i64))
        .unwrap_or(start);
    (start, end.max(start))
}

impl Inference {
    /// Finds the open request this event should join: returns (slot, confidence)
    /// and forgets the candidate. `open` says whether a slot/generation is still open.
    pub fn take_match(
        &mut self,
        role: &Role,
        ev: &Event,
        start: i64,
        open: &dyn Fn(u32, u64) -> bool,
    ) -> Option<(u32, f32)> {
        let k = key(ev)?;
        let (me_start, me_end) = interval(ev, start);
        let pool = match role {
            Role::Gateway => self.spans.get_mut(&k)?,
            Role::Span => self.gateways.get_mut(&k)?,
        };
        pool.retain(|c| open(c.slot, c.generation));
        let fits = |c: &Candidate, slack: i64| {
            let (g_start, g_end, s_start) = match role {
                Role::Gateway => (me_start, me_end, c.start),
                Role::Span => (c.start, c.end, me_start),
            };
            let client_ok = match (&c.client, &ev.client_ip) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            client_ok && s_start >= g_start - slack && s_start <= g_end + slack
        };
        let within = |slack: i64| -> Vec<usize> {
            (0..pool.len()).filter(|&i| fits(&pool[i], slack)).collect()
        };
        let (matches, weight) = match within(STRICT_NS) {
            m if !m.is_empty() => (m, 1.0),
            _ => (within(TOLERANCE_NS), 0.5),
        };
        // The span starts just after the gateway saw the request: closest start wins.
        let best = *matches
            .iter()
            .min_by_key(|&&i| (pool[i].start - me_start).abs())?;
        let confidence = weight / matches.len() as f32;
        let c = pool.remove(best)?;
        Some((c.slot, confidence))
    }

    /// Remembers an event that found no partner yet.
    pub fn offer(&mut self, role: &Role, ev: &Event, start: i64, slot: u32, generation: u64) {
        let Some(k) = key(ev) else { return };
        let (start, end) = interval(ev, start);
        let pool = match role {
            Role::Gateway => self.gateways.entry(k).or_default(),
            Role::Span => self.spans.entry(k).or_default(),
        };
        pool.push_back(Candidate {
            slot,
            generation,
            start,
            end,
            client: ev.client_ip.clone(),
        });
    }

    /// Drops candidates of requests that have closed.
    pub fn prune(&mut self, open: &dyn Fn(u32, u64) -> bool) {
        for pools in [&mut self.gateways, &mut self.spans] {
            pools.retain(|_, pool| {
                pool.retain(|c| open(c.slot, c.generation));
                !pool.is_empty()
            });
        }
    }
}
