//! Attempts of one operation inside one trace: a client that retries a failed
//! call keeps its trace id, and each attempt is a gateway request of its own.
//! A request that repeats (same method and path) an earlier failed request of
//! its trace, started after that one ended, is its next attempt.

use super::Request;
use crate::event::Text;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Traces remembered; the oldest are forgotten first (memory stays bounded).
const TRACES: usize = 1 << 16;
/// An attempt may start this much before the previous one's logged end (ns):
/// gateway clocks and durations are rounded.
const SLACK_NS: i64 = 5_000_000;

struct Seen {
    method: Option<Text>,
    path: Option<Text>,
    request_id: Option<Text>,
    end: i64,
    failed: bool,
    attempt: u32,
}

#[derive(Default)]
pub struct Attempts {
    by_trace: FxHashMap<Text, Vec<Seen>>,
    order: VecDeque<Text>,
}

impl Attempts {
    /// Sets `attempt` and `retry_of` on a request that retries an earlier one;
    /// requests come in the order they close.
    pub fn mark(&mut self, r: &mut Request) {
        let (Some(trace), Some(g)) = (r.trace_id.clone(), r.gateway_event()) else {
            return;
        };
        let (method, path) = (g.method.clone(), g.path.clone());
        let start = r.start.unwrap_or(0);
        let end = start + r.duration_ms.map_or(0, |d| (d * 1e6) as i64);
        if !self.by_trace.contains_key(&trace) {
            self.order.push_back(trace.clone());
            if self.order.len() > TRACES {
                if let Some(old) = self.order.pop_front() {
                    self.by_trace.remove(&old);
                }
            }
        }
        let seen = self.by_trace.entry(trace).or_default();
        let previous = seen
            .iter()
            .filter(|s| s.method == method && s.path == path && s.end <= start + SLACK_NS)
            .max_by_key(|s| s.end);
        if let Some(p) = previous.filter(|p| p.failed) {
            r.attempt = Some(p.attempt + 1);
            r.retry_of = p.request_id.clone();
        }
        seen.push(Seen {
            method,
            path,
            request_id: r.request_id.clone(),
            end,
            failed: r.failed,
            attempt: r.attempt.unwrap_or(1),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Source};

    fn request(rid: &str, start_ms: i64, status: u16) -> Request {
        let g = Event {
            ts: Some(start_ms * 1_000_000),
            source: Some(Source::Gateway),
            request_id: Some(rid.into()),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            method: Some("POST".into()),
            path: Some("/v1/pay".into()),
            status: Some(status),
            duration_ms: Some(100.0),
            ..Default::default()
        };
        crate::correlate::build_request(vec![g], vec![rid.to_string()])
    }

    #[test]
    fn a_repeat_of_a_failed_request_in_its_trace_is_its_next_attempt() {
        let mut a = Attempts::default();
        let mut first = request("r1", 0, 503);
        let mut second = request("r2", 300, 503);
        let mut third = request("r3", 600, 200);
        let mut fourth = request("r4", 900, 200);
        for r in [&mut first, &mut second, &mut third, &mut fourth] {
            a.mark(r);
        }
        assert_eq!((first.attempt, first.retry_of.as_deref()), (None, None));
        assert_eq!(
            (second.attempt, second.retry_of.as_deref()),
            (Some(2), Some("r1"))
        );
        assert_eq!(
            (third.attempt, third.retry_of.as_deref()),
            (Some(3), Some("r2"))
        );
        // After a success, the same call again is a new operation, not a retry.
        assert_eq!(fourth.attempt, None);
    }
}
