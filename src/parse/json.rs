//! JSON lines: one object per line, visited as dotted keys so that nested
//! (`{"trace":{"id":..}}`) and dotted (`{"trace.id":..}`) ECS styles map alike.

use serde_json::Value;
use std::borrow::Cow;

/// [`walk`] over a value already built: what [`visit_text`] must match (tests).
#[cfg(test)]
pub fn visit<'v>(v: &'v Value, f: &mut dyn FnMut(&str, Cow<'v, str>)) {
    let mut prefix = String::new();
    walk(v, &mut prefix, f);
}

/// Calls `f(dotted.key, text)` for every scalar, borrowing string values from
/// the value. Arrays of scalars give their first element under the array's key
/// (HTTP semconv header arrays, Caddy's header lists) and, when longer, the
/// whole array as JSON text under `key[]`; arrays of objects give their
/// elements from the last (Kong's `tries`: the final attempt wins) to the first.
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

/// Reads one JSON text and calls `f` as [`walk`] would on its value, without
/// building the value: strings without escapes are borrowed from `text`.
/// Arrays, rarer, are read as values and visited as such. A key written
/// twice is visited twice (a value keeps the last); the first wins where
/// values compete for a field.
pub fn visit_text<'t>(
    text: &'t str,
    f: &mut dyn FnMut(&str, Cow<'t, str>),
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut prefix = String::new();
    serde::de::DeserializeSeed::deserialize(
        Walker {
            prefix: &mut prefix,
            f,
        },
        &mut de,
    )?;
    de.end()
}

struct Walker<'p, 'f, 't> {
    prefix: &'p mut String,
    f: &'f mut dyn FnMut(&str, Cow<'t, str>),
}

impl<'de> serde::de::DeserializeSeed<'de> for Walker<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key, borrowed from the text when it has no escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::de::Visitor<'de> for Walker<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let len = self.prefix.len();
            if !self.prefix.is_empty() {
                self.prefix.push('.');
            }
            self.prefix.push_str(&k);
            map.next_value_seed(Walker {
                prefix: &mut *self.prefix,
                f: &mut *self.f,
            })?;
            self.prefix.truncate(len);
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        let array = Value::Array(items);
        walk(&array, self.prefix, &mut |k, v| {
            (self.f)(k, Cow::Owned(v.into_owned()))
        });
        Ok(())
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        (self.f)(self.prefix, Cow::Borrowed(s));
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        (self.f)(self.prefix, Cow::Owned(s.to_string()));
        Ok(())
    }

    fn visit_string<E>(self, s: String) -> Result<(), E> {
        (self.f)(self.prefix, Cow::Owned(s));
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        (self.f)(self.prefix, Cow::Borrowed(if b { "true" } else { "false" }));
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        (self.f)(
            self.prefix,
            Cow::Owned(serde_json::Number::from(n).to_string()),
        );
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        (self.f)(
            self.prefix,
            Cow::Owned(serde_json::Number::from(n).to_string()),
        );
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        if let Some(n) = serde_json::Number::from_f64(n) {
            (self.f)(self.prefix, Cow::Owned(n.to_string()));
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_value(text: &str) -> Vec<(String, String)> {
        let v: Value = serde_json::from_str(text).unwrap();
        let mut out = Vec::new();
        visit(&v, &mut |k, v| out.push((k.to_string(), v.into_owned())));
        out
    }

    fn by_text(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        visit_text(text, &mut |k, v| out.push((k.to_string(), v.into_owned()))).unwrap();
        out
    }

    #[test]
    fn reading_the_text_visits_what_reading_the_value_visits() {
        for text in [
            r#"{"a":"x","b":{"c":1,"d":[1,2],"e":[{"f":"g"},{"f":"h","i":true}]},"n":null,"z":-1.5e-7,"u":18446744073709551615,"s":"tab\tquote\"","k\"q":"v"}"#,
            r#"{"tries":[{"ip":"10.0.0.1","code":502},{"ip":"10.0.0.2","code":200}],"h":{"X-Request-Id":["abc"]},"big":1e300,"f":0.1,"i":-9223372036854775808}"#,
            r#"{}"#,
        ] {
            assert_eq!(by_text(text), by_value(text), "{text}");
        }
    }

    #[test]
    fn reading_the_text_refuses_what_reading_the_value_refuses() {
        for text in [r#"{"a":1} x"#, r#"{"a":"#, r#"{"a":tru}"#] {
            assert!(serde_json::from_str::<Value>(text).is_err());
            assert!(visit_text(text, &mut |_, _| {}).is_err(), "{text}");
        }
    }
}
