//! `tracejoin rules check`: every rule's embedded examples are labelled by the
//! whole loaded pack, the way VRL runs the examples in its docs.

use super::pack::ExampleEvent;
use super::Engine;
use crate::correlate::{build_request, keys};
use crate::event::{Event, Origin, Source, SpanException, SpanFields, SpanKind};
use std::sync::Arc;

/// One failed example: which rule, which example, what went wrong.
#[derive(Debug, Clone)]
pub struct ExampleFailure {
    pub rule: String,
    pub example: usize,
    pub problem: String,
}

fn to_event(x: &ExampleEvent, i: usize) -> Event {
    let source = Source::parse(&x.source).unwrap_or(Source::Backend);
    let span = (source == Source::Span).then(|| {
        Box::new(SpanFields {
            name: x.span_name.as_deref().unwrap_or("span").to_string(),
            kind: match x.span_kind.as_deref() {
                Some("client") => SpanKind::Client,
                Some("internal") => SpanKind::Internal,
                _ => SpanKind::Server,
            },
            status_code: match x.span_status.as_deref() {
                Some("error") => "error",
                Some("ok") => "ok",
                _ => "unset",
            },
            status_message: None,
            end_ts: None,
            exceptions: x
                .exception
                .iter()
                .map(|m| {
                    let (t, msg) = m.split_once(": ").unwrap_or(("Exception", m));
                    SpanException {
                        r#type: Some(t.into()),
                        message: Some(msg.into()),
                    }
                })
                .collect(),
        })
    });
    Event {
        ts: Some(1_700_000_000_000_000_000 + i as i64 * 1_000_000),
        source: Some(source),
        format: "example",
        origin: Some(Origin {
            file: Arc::from("example"),
            line: i as u64 + 1,
            item: None,
        }),
        service: x.service.clone(),
        request_id: Some(
            x.request_id
                .clone()
                .unwrap_or_else(|| "example-request".into()),
        ),
        trace_id: x.trace_id.clone(),
        span_id: x.span_id.clone(),
        parent_span_id: x.parent_span_id.clone(),
        method: x.method.clone(),
        path: x.path.clone(),
        status: x.status,
        upstream_status: x.upstream_status.clone(),
        upstream_addr: x.upstream_addr.clone(),
        gateway_error: x.gateway_error.clone(),
        route: x.route.clone(),
        level: x.level.clone(),
        message: x.message.clone(),
        span,
        ..Default::default()
    }
}

/// Runs every example; returns (examples run, failures).
pub fn check_examples(engine: &Engine) -> (usize, Vec<ExampleFailure>) {
    let ev = engine.evaluator();
    let mut run = 0;
    let mut failures = Vec::new();
    for rule in &engine.rules {
        if rule.def.examples.is_empty() {
            failures.push(ExampleFailure {
                rule: rule.def.name.clone(),
                example: 0,
                problem: "has no [[rule.example]]; every rule needs one".into(),
            });
        }
        for (n, ex) in rule.def.examples.iter().enumerate() {
            run += 1;
            let events: Vec<Event> = ex
                .events
                .iter()
                .enumerate()
                .map(|(i, e)| to_event(e, i))
                .collect();
            let keys = events.iter().flat_map(keys).collect();
            let req = build_request(events, keys);
            let verdict = engine.evaluate(&ev, &req);
            let got = verdict.as_ref().map(|v| v.label.as_str()).unwrap_or("none");
            let fail = |problem: String| ExampleFailure {
                rule: rule.def.name.clone(),
                example: n + 1,
                problem,
            };
            if got != ex.label {
                failures.push(fail(format!(
                    "expected label {}, got {} (rule {})",
                    ex.label,
                    got,
                    verdict.as_ref().map(|v| v.rule.as_str()).unwrap_or("-")
                )));
                continue;
            }
            let decides = ex.decides.unwrap_or(ex.label == rule.def.label);
            if let Some(v) = &verdict {
                if decides && v.rule != rule.def.name {
                    failures.push(fail(format!(
                        "label {} is right but rule {} decided, not this one",
                        got, v.rule
                    )));
                }
                if !decides && v.rule == rule.def.name {
                    failures.push(fail(
                        "this rule decided, but the example says it must not".into(),
                    ));
                }
            }
        }
    }
    (run, failures)
}
