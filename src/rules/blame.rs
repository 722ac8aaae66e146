//! Where a failed request's failure started, and the way there: the blame
//! path (gateway → service → … → dependency) and its origin.
//!
//! The origin is the deepest span in error whose own children succeeded, or
//! the service whose own word decided the verdict, with the event that says
//! so. A service that only passed a failure on (a 502 because its dependency
//! answered 500) is not the origin: the failure is followed down the span
//! tree to where it started. A client span in error with nothing instrumented
//! below it blames the peer it called (a database, a third-party API): a
//! dependency, named as service graphs name it.

use super::causal::Causal;
use super::{Cause, OriginKind};
use crate::correlate::Request;
use crate::event::{Event, Source, SpanKind, SpanStatus};
use std::collections::HashMap;

/// The span attributes that name the peer of a client span, best first: the
/// order Grafana Tempo's service graphs name an uninstrumented server by
/// (default `peer_attributes`: `peer.service`, `db.name`, `db.system`, "the
/// first match"; grafana/tempo docs/sources/tempo/metrics-from-traces/
/// service_graphs/_index.md, "Virtual nodes"), with `db.name` left out (it
/// names a database, not what serves it) and `db.system.name`, the stable
/// database conventions' name for `db.system`, beside it. Then the address
/// the call went to: the span's `host` (`server.address`, mapped by the OTLP
/// definition) or the older `net.peer.name`.
const PEER_NAMES: &[&str] = &["peer.service", "db.system.name", "db.system"];

/// The span tree of one request: span events by id, parent of each.
struct Tree<'a> {
    events: &'a [Event],
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

impl<'a> Tree<'a> {
    fn of(events: &'a [Event]) -> Tree<'a> {
        let by_id: HashMap<&str, usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.source() == Source::Span)
            .filter_map(|(i, e)| e.span_id.as_deref().map(|s| (s, i)))
            .collect();
        let parent: Vec<Option<usize>> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (e.source() == Source::Span)
                    .then(|| e.parent_span_id.as_deref().and_then(|p| by_id.get(p)))
                    .flatten()
                    .copied()
                    .filter(|&p| p != i)
            })
            .collect();
        let mut children = vec![Vec::new(); events.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[p].push(i);
            }
        }
        Tree {
            events,
            parent,
            children,
        }
    }

    /// The span a log line was written in: its own span id, else the
    /// shallowest span of its service.
    fn span_of(&self, i: usize, causal: &Causal) -> Option<usize> {
        let e = &self.events[i];
        if e.source() == Source::Span {
            return Some(i);
        }
        let spans = || {
            self.events
                .iter()
                .enumerate()
                .filter(|(_, s)| s.source() == Source::Span)
        };
        if let Some(id) = e.span_id.as_deref() {
            if let Some((j, _)) = spans().find(|(_, s)| s.span_id.as_deref() == Some(id)) {
                return Some(j);
            }
        }
        let service = e.service.as_deref()?;
        spans()
            .filter(|(_, s)| s.service.as_deref() == Some(service))
            .min_by_key(|(j, _)| causal.depth(*j).unwrap_or(u32::MAX))
            .map(|(j, _)| j)
    }

    /// From the root span down to `i` (the chain of calls that reached it).
    fn chain(&self, mut i: usize) -> Vec<usize> {
        let mut out = vec![i];
        while let Some(p) = self.parent[i] {
            if out.contains(&p) || out.len() > 64 {
                break;
            }
            out.push(p);
            i = p;
        }
        out.reverse();
        out
    }

    fn is_within(&self, ancestor: usize, i: usize) -> bool {
        self.chain(i).contains(&ancestor)
    }
}

fn in_error(e: &Event) -> bool {
    e.span
        .as_ref()
        .is_some_and(|s| s.status == SpanStatus::Error)
}

/// The name of what a client span called, when nothing below it was
/// instrumented; `None` for other spans.
fn peer_name(e: &Event) -> Option<String> {
    let s = e.span.as_ref()?;
    let calls_out = matches!(s.kind, SpanKind::Client | SpanKind::Producer)
        || e.attr("db.system").is_some()
        || e.attr("db.system.name").is_some();
    if !calls_out {
        return None;
    }
    PEER_NAMES
        .iter()
        .find_map(|k| e.attr(k))
        .or(e.host.as_deref())
        .or_else(|| e.attr("net.peer.name"))
        .filter(|v| !v.is_empty())
        .map(|name| {
            let port = e.attr("server.port").or_else(|| e.attr("net.peer.port"));
            // An address alone says little: with its port it names the peer.
            match port {
                Some(p) if name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" => {
                    format!("{name}:{p}")
                }
                _ => name.to_string(),
            }
        })
}

/// The gateway as the origin and path names it: the product its format
/// belongs to (`nginx_combined_kv` → `nginx`).
pub fn gateway_name(g: &Event) -> String {
    let f = g.format.as_str();
    let name = f.split('_').next().unwrap_or(f);
    if name.is_empty() {
        "gateway".to_string()
    } else {
        name.to_string()
    }
}

/// The cause of a failed request whose verdict rests on event `said` (the
/// first event the winning rule cites); `None` when nothing points anywhere.
pub(super) fn blame(req: &Request, causal: &Causal, said: Option<usize>) -> Option<Cause> {
    let events = &req.events;
    let tree = Tree::of(events);
    let gateway = req.gateway_event();
    let mut path: Vec<String> = gateway.map(gateway_name).into_iter().collect();
    let push = |path: &mut Vec<String>, s: &str| {
        if path.last().map(String::as_str) != Some(s) {
            path.push(s.to_string());
        }
    };

    // The deepest span in error whose children succeeded (a retried call that
    // recovered is no failure).
    let failing = |i: usize| in_error(&events[i]) && !causal.recovered(i);
    let deepest = (0..events.len())
        .filter(|&i| failing(i) && !tree.children[i].iter().any(|&c| failing(c)))
        .max_by(|&a, &b| {
            let da = causal.depth(a).unwrap_or(0);
            let db = causal.depth(b).unwrap_or(0);
            da.cmp(&db).then_with(|| {
                // Equal depth: the one that failed first.
                causal.time(b).cmp(&causal.time(a))
            })
        });

    let said_ev = said.map(|i| &events[i]);
    let by_service = said_ev
        .is_some_and(|e| matches!(e.source(), Source::Span | Source::Backend | Source::OtelLog));
    // Did the request get past the gateway? Then the gateway only relayed.
    let contacted = req.server_span.is_some()
        || events
            .iter()
            .any(|e| matches!(e.source(), Source::Span | Source::Backend | Source::OtelLog))
        || gateway
            .and_then(|g| g.upstream_status.as_deref())
            .is_some_and(|u| !u.trim().is_empty() && u.trim() != "-");

    let start = if by_service {
        said.and_then(|i| tree.span_of(i, causal))
    } else {
        None
    };
    let span = match (start, deepest) {
        // Passed on: the failure started deeper below the service that said so.
        (Some(s), Some(d)) if failing(s) && tree.is_within(s, d) => Some(d),
        (Some(s), _) => Some(s),
        (None, Some(d)) if !by_service && contacted => Some(d),
        (None, _) if !by_service && contacted => req.server_span,
        (None, _) => None,
    };

    let Some(span) = span else {
        if by_service {
            // A service's log with no span to place it: the service itself.
            let e = said_ev?;
            let service = e.service.as_deref().or(req.service.as_deref())?;
            push(&mut path, service);
            return Some(Cause {
                kind: OriginKind::Service,
                service: service.to_string(),
                operation: req.route.as_deref().or(req.path.as_deref()).map(Into::into),
                span_id: e.span_id.as_deref().map(Into::into),
                origin: e.origin.as_ref().map(|o| o.to_string()),
                path,
            });
        }
        let g = gateway?;
        // The gateway's word: the event the verdict cites, else its line.
        let cited = said_ev
            .and_then(|e| e.origin.as_ref())
            .or(g.origin.as_ref())
            .map(|o| o.to_string());
        if contacted {
            // The upstream answered nothing a service logged: blame the
            // address the gateway called.
            if let Some(addr) = g
                .upstream_addr
                .as_deref()
                .filter(|a| !a.is_empty() && *a != "-")
            {
                let addr = addr
                    .rsplit([',', ' '])
                    .find(|a| !a.is_empty())
                    .unwrap_or(addr);
                push(&mut path, addr);
                return Some(Cause {
                    kind: OriginKind::Dependency,
                    service: addr.to_string(),
                    operation: req.route.as_deref().map(Into::into),
                    span_id: None,
                    origin: cited,
                    path,
                });
            }
        }
        // The gateway refused by itself: its indicator names what refused.
        let operation = g
            .gateway_error
            .as_deref()
            .map(|x| x.split(['=', ',']).next().unwrap_or(x))
            .or(req.route.as_deref())
            .or(req.path.as_deref())
            .map(Into::into);
        return Some(Cause {
            kind: OriginKind::Gateway,
            service: gateway_name(g),
            operation,
            span_id: None,
            origin: cited,
            path,
        });
    };

    for &i in &tree.chain(span) {
        if let Some(s) = events[i].service.as_deref() {
            push(&mut path, s);
        }
    }
    let s = &events[span];
    let dependency = tree.children[span]
        .is_empty()
        .then(|| peer_name(s))
        .flatten();
    // The event that says why: the verdict's own when it was written at the
    // origin (or by the service that called the dependency), else the
    // origin's log line in error, else the span itself.
    let said_here = said_ev.filter(|e| {
        by_service
            && (said.and_then(|i| tree.span_of(i, causal)) == Some(span)
                || e.service.is_some() && e.service == s.service)
    });
    let origin = said_here
        .or_else(|| {
            events.iter().find(|e| {
                e.source() != Source::Span
                    && e.span_id.is_some()
                    && e.span_id == s.span_id
                    && e.level >= Some(crate::event::Level::Error)
            })
        })
        .unwrap_or(s)
        .origin
        .as_ref()
        .map(|o| o.to_string());
    let operation = s.span.as_ref().map(|x| x.name.clone());
    let (kind, service) = match dependency {
        Some(peer) => {
            push(&mut path, &peer);
            (OriginKind::Dependency, peer)
        }
        None => (
            OriginKind::Service,
            s.service.as_deref().unwrap_or("-").to_string(),
        ),
    };
    Some(Cause {
        kind,
        service,
        operation,
        span_id: s.span_id.as_deref().map(Into::into),
        origin,
        path,
    })
}
