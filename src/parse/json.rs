//! JSON lines: one object per line, visited as dotted keys so that nested
//! (`{"trace":{"id":..}}`) and dotted (`{"trace.id":..}`) ECS styles map alike.

use serde_json::Value;
use std::borrow::Cow;

/// Calls `f(dotted.key, text)` for every scalar, borrowing string values from
/// the document (no copy unless the value is kept as an attribute). Arrays of
/// scalars give their first element under the array's key (HTTP semconv header
/// arrays, Caddy's header lists) and, when longer, the whole array as JSON text
/// under `key[]`; arrays of objects give their elements from the last (Kong's
/// `tries`: the final attempt wins) to the first.
pub fn visit<'v>(v: &'v Value, f: &mut dyn FnMut(&str, Cow<'v, str>)) {
    let mut prefix = String::new();
    walk(v, &mut prefix, f);
}

fn walk<'v>(v: &'v Value, prefix: &mut String, f: &mut dyn FnMut(&str, Cow<'v, str>)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(k);
                walk(child, prefix, f);
                prefix.truncate(len);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                if !first.is_object() && !first.is_array() {
                    f(prefix, scalar(first));
                }
            }
            // Objects from the last to the first: the last one's values come
            // first and win; keys only an earlier one has are found too (.NET's
            // `Scopes`: the trace context is in the first scope).
            for item in items.iter().rev().filter(|i| i.is_object()) {
                walk(item, prefix, f);
            }
            // Only arrays of scalars: an array of objects was walked above, and
            // its text (an OTLP document's `resourceSpans`: the whole line) would
            // be written out again at every level.
            if items.len() > 1 && !items.iter().any(|i| i.is_object() || i.is_array()) {
                let len = prefix.len();
                prefix.push_str("[]");
                f(prefix, Cow::Owned(v.to_string()));
                prefix.truncate(len);
            }
        }
        Value::Null => {}
        other => f(prefix, scalar(other)),
    }
}

fn scalar(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        other => Cow::Owned(other.to_string()),
    }
}
