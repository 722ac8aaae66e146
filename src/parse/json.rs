//! JSON lines: one object per line, flattened to dotted keys so that nested
//! (`{"trace":{"id":..}}`) and dotted (`{"trace.id":..}`) ECS styles map alike.

use serde_json::Value;
use std::borrow::Cow;

/// Flattens an object into `(dotted.key, text)` pairs. Arrays of scalars yield
/// their first element under the array's key (HTTP semconv header arrays,
/// Caddy's header lists); arrays of objects their last element (Kong's
/// `tries`: the final attempt); both also as JSON text under `key[]`.
pub fn flatten(v: &Value, out: &mut Vec<(Cow<'static, str>, Cow<'static, str>)>) {
    let mut prefix = String::new();
    walk(v, &mut prefix, out);
}

fn walk(v: &Value, prefix: &mut String, out: &mut Vec<(Cow<'static, str>, Cow<'static, str>)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(k);
                walk(child, prefix, out);
                prefix.truncate(len);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                if !first.is_object() && !first.is_array() {
                    out.push((Cow::Owned(prefix.clone()), scalar(first)));
                }
            }
            if let Some(last @ Value::Object(_)) = items.last() {
                walk(last, prefix, out);
            }
            if !items.is_empty() {
                out.push((Cow::Owned(format!("{prefix}[]")), Cow::Owned(v.to_string())));
            }
        }
        Value::Null => {}
        other => out.push((Cow::Owned(prefix.clone()), scalar(other))),
    }
}

fn scalar(v: &Value) -> Cow<'static, str> {
    match v {
        Value::String(s) => Cow::Owned(s.clone()),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        other => Cow::Owned(other.to_string()),
    }
}
