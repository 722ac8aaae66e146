//! `tracejoin rules check`: every rule's embedded examples are labelled by the
//! whole loaded pack, the way VRL runs the examples in its docs.

use super::pack::ExampleEvent;
use super::Engine;
use crate::correlate::{build_request, keys};
use crate::event::{
    Event, FieldValue, Origin, Source, SpanException, SpanFields, SpanKind, SpanStatus, FIELDS,
};
use std::sync::Arc;

/// One failed example: which rule, which example, what went wrong.
#[derive(Debug, Clone)]
pub struct ExampleFailure {
    pub rule: String,
    pub example: usize,
    pub problem: String,
}

/// An example event as the parsers would have produced it.
pub(super) fn to_event(x: &ExampleEvent, i: usize) -> Result<Event, String> {
    let span = (x.source == Source::Span).then(|| {
        Box::new(SpanFields {
            name: x.span_name.as_deref().unwrap_or("span").to_string(),
            kind: x.span_kind.unwrap_or(SpanKind::Server),
            status: x.span_status.unwrap_or(SpanStatus::Unset),
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
    let mut ev = Event {
        ts: Some(1_700_000_000_000_000_000 + i as i64 * 1_000_000),
        source: Some(x.source),
        format: x.format.as_deref().unwrap_or("example").into(),
        origin: Some(Origin {
            file: Arc::from("example"),
            line: i as u64 + 1,
            item: None,
        }),
        request_id: Some("example-request".into()),
        span,
        ..Default::default()
    };
    for (name, value) in &x.fields {
        if let (Some(attr), toml::Value::String(v)) = (name.strip_prefix("attr."), value) {
            ev.attributes.push((attr.into(), v.clone()));
            continue;
        }
        let field = crate::event::field(name).ok_or_else(|| {
            format!(
                "an example event has no field {name:?}; fields: source, format, span_name, span_kind, span_status, exception, attr.NAME, {}",
                FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
            )
        })?;
        let fits = match value {
            toml::Value::String(s) => (field.set)(&mut ev, FieldValue::Text(s)),
            toml::Value::Integer(n) => (field.set)(&mut ev, FieldValue::Int(*n)),
            toml::Value::Float(f) => (field.set)(&mut ev, FieldValue::Millis(*f)),
            _ => false,
        };
        if !fits {
            return Err(format!(
                "example field {name} = {value} does not fit a {:?} field",
                field.kind
            ));
        }
    }
    let first = ev.span.as_ref().and_then(|s| s.exceptions.first().cloned());
    ev.adopt_exception(first.as_ref());
    Ok(ev)
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
            let events: Result<Vec<Event>, String> = ex
                .events
                .iter()
                .enumerate()
                .map(|(i, e)| to_event(e, i))
                .collect();
            let events = match events {
                Ok(e) => e,
                Err(problem) => {
                    failures.push(ExampleFailure {
                        rule: rule.def.name.clone(),
                        example: n + 1,
                        problem,
                    });
                    continue;
                }
            };
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
            let decides = ex.decides.unwrap_or(ex.label == rule.def.label.as_str());
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
