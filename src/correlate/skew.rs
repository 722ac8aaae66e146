//! Clock skew between the gateway and each service, estimated from requests
//! seen by both: the gateway's request start vs the entry server span's start.
//! A span should start a little after the gateway saw the request; the median
//! difference is the skew plus the network hop.

use super::Request;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Skew {
    pub service: String,
    /// Median of (span start - gateway start), milliseconds.
    pub median_ms: f64,
    pub samples: usize,
}

pub fn estimate_skew(requests: &[Request]) -> Vec<Skew> {
    let mut by_service: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in requests {
        let (Some(g), Some(s)) = (r.gateway_event(), r.server_span_event()) else {
            continue;
        };
        let (Some(gt), Some(st)) = (g.ts, s.ts) else {
            continue;
        };
        let service = s.service.clone().unwrap_or_else(|| "(unknown)".into());
        by_service
            .entry(service)
            .or_default()
            .push((st - gt) as f64 / 1e6);
    }
    by_service
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
