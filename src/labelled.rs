//! What a run produces, for every sink (summary, `--json`, store, report):
//! each request with its verdict, and what was learnt about the inputs.

use crate::correlate::{Request, Skew, WindowStats};
use crate::parse::FileReport;
use crate::rules::Verdict;

/// A request with its verdict (`None` when it did not fail).
#[derive(Debug, Clone)]
pub struct Labelled {
    pub request: Request,
    pub verdict: Option<Verdict>,
}

/// Everything about a run except the requests themselves.
#[derive(Debug, Default)]
pub struct RunInfo {
    pub files: Vec<FileReport>,
    pub window: WindowStats,
    pub window_ms: u64,
    pub skew: Vec<Skew>,
    pub rule_errors: u64,
    pub first_rule_error: Option<String>,
}

impl RunInfo {
    pub fn input_error_count(&self) -> u64 {
        self.files.iter().map(|f| f.error_count).sum()
    }
}

/// The last `cap` emitted requests, each with something a sink keeps for it
/// (its store row's key, its share of the summary), found again when the
/// request is re-emitted amended. A request is known by the origin of its
/// first event: an amended request holds every event of its earlier
/// emission, so one of its events finds that emission, and no other request
/// holds it. Ids would not do: requests of one trace share its trace id.
pub struct Emissions<V> {
    cap: usize,
    by_origin: rustc_hash::FxHashMap<String, V>,
    order: std::collections::VecDeque<String>,
}

impl<V> Emissions<V> {
    pub fn new(cap: usize) -> Emissions<V> {
        Emissions {
            cap,
            by_origin: Default::default(),
            order: Default::default(),
        }
    }

    /// Remembers what was kept for the request made of `events` (the oldest
    /// is forgotten beyond the cap).
    pub fn keep(&mut self, events: &[crate::event::Event], v: V) {
        let Some(origin) = events.first().and_then(|e| e.origin.as_ref()) else {
            return;
        };
        if self.cap == 0 {
            return;
        }
        let origin = origin.to_string();
        self.by_origin.insert(origin.clone(), v);
        self.order.push_back(origin);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.by_origin.remove(&old);
            }
        }
    }

    /// What was kept for the earlier emission of the request `events` now
    /// make, forgotten.
    pub fn take(&mut self, events: &[crate::event::Event]) -> Option<V> {
        events
            .iter()
            .filter_map(|e| e.origin.as_ref())
            .find_map(|o| self.by_origin.remove(&o.to_string()))
    }

    /// Forgets every request.
    pub fn clear(&mut self) {
        self.by_origin.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Emissions;
    use crate::event::{Event, Origin};
    use std::sync::Arc;

    fn event(file: &str, line: u64) -> Event {
        Event {
            origin: Some(Origin {
                file: Arc::from(file),
                line,
                item: None,
            }),
            // Both requests are of one trace, as a client keeping its trace makes them.
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            ..Default::default()
        }
    }

    #[test]
    fn an_amended_request_finds_its_own_earlier_emission_not_a_trace_neighbours() {
        let mut kept = Emissions::new(10);
        let first = [event("otlp-http", 1)];
        let second = [event("otlp-http", 2)];
        kept.keep(&first, "k-1");
        kept.keep(&second, "k-2");
        // The second request, amended by its late gateway line (earlier in time).
        let amended = [event("access.log", 9), event("otlp-http", 2)];
        assert_eq!(kept.take(&amended), Some("k-2"));
        assert_eq!(kept.take(&amended), None, "taken once");
        assert_eq!(kept.take(&first), Some("k-1"));
        // Forgotten beyond the cap.
        let mut small = Emissions::new(1);
        small.keep(&first, "k-1");
        small.keep(&second, "k-2");
        assert_eq!(small.take(&first), None);
    }
}
