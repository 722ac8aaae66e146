//! Clock skew between the gateway and each service, estimated from requests
//! seen by both: the gateway's request start vs the entry server span's start.
//! A span should start a little after the gateway saw the request; the median
//! difference is the skew plus the network hop. A gateway time written to the
//! second bounds the start only to that second: skew is counted beyond it.

use super::Request;
use std::collections::BTreeMap;

/// Samples kept per service; enough for a stable median.
const MAX_SAMPLES: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Skew {
    pub service: String,
    /// Median of (span start - gateway start), milliseconds.
    pub median_ms: f64,
    pub samples: usize,
}

#[derive(Debug, Default)]
pub struct SkewEstimator {
    by_service: BTreeMap<String, Vec<f64>>,
}

impl SkewEstimator {
    pub fn add(&mut self, r: &Request) {
        let (Some(g), Some(s)) = (r.gateway_event(), r.server_span_event()) else {
            return;
        };
        let (Some(gt), Some(st)) = (g.ts, s.ts) else {
            return;
        };
        let service = s.service.as_deref().unwrap_or("(unknown)");
        let v = match self.by_service.get_mut(service) {
            Some(v) => v,
            None => self.by_service.entry(service.to_string()).or_default(),
        };
        // A coarse gateway time (to the second) only bounds the start: the
        // difference counts beyond that bound, never within it.
        let p = g.ts_precision_ns;
        let d = if st < gt {
            st - gt
        } else if st >= gt + p {
            st - gt - p
        } else {
            0
        };
        if v.len() < MAX_SAMPLES {
            v.push(d as f64 / 1e6);
        }
    }

    pub fn finish(self) -> Vec<Skew> {
        self.by_service
            .into_iter()
            .map(|(service, mut v)| {
                v.sort_by(|a, b| a.total_cmp(b));
                Skew {
                    service,
                    median_ms: v[v.len() / 2],
                    samples: v.len(),
                }
            })
            .collect()
    }
}
