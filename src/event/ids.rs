//! Identifier normalisation (docs/FORMATS.md §0, §9): ids are compared
//! case-insensitively, UUID dashes do not matter, 64-bit trace ids are
//! left-padded to 128 bits, all-zero ids are invalid.

use super::{Event, Source};

/// Normalises an opaque request/correlation id, or a trace id.
pub fn normalize(raw: &str) -> Option<String> {
    let s = raw.trim().trim_matches('"');
    if s.is_empty() || s == "-" || s == "null" || s == "0" {
        return None;
    }
    let b = s.as_bytes();
    let mut digits = 0;
    let mut dashes = false;
    for &c in b {
        if c.is_ascii_hexdigit() {
            digits += 1;
        } else if c == b'-' {
            dashes = true;
        } else {
            return Some(s.to_string());
        }
    }
    if digits == 0 {
        return Some(s.to_string());
    }
    if b.iter().all(|&c| c == b'0' || c == b'-') {
        return None;
    }
    Some(if dashes {
        s.replace('-', "").to_ascii_lowercase()
    } else {
        s.to_ascii_lowercase()
    })
}

/// Normalises a trace id: hex, lowercase, 128-bit.
pub fn normalize_trace(raw: &str) -> Option<String> {
    let s = raw.trim();
    // X-Ray root `1-5759e988-bd862e3fe1be46a994272793` is a W3C id.
    let s = s.strip_prefix("Root=").unwrap_or(s);
    let s = s.strip_prefix("1-").filter(|r| r.len() == 33).unwrap_or(s);
    let id = normalize(s)?;
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(format!("{:0>32}", id));
    }
    Some(id)
}

/// Parses a W3C `traceparent` header into (trace id, parent span id).
pub fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let v = v.trim();
    if v.len() < 55 {
        return None;
    }
    let b = v.as_bytes();
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let version = &v[0..2];
    if version == "ff" || !version.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    // Higher versions: parse the first 55 characters and ignore the rest.
    if version == "00" && v.len() != 55 {
        return None;
    }
    let trace = &v[3..35];
    let parent = &v[36..52];
    let hex = |s: &str| s.bytes().all(|c| c.is_ascii_hexdigit());
    if !hex(trace) || !hex(parent) {
        return None;
    }
    let trace = trace.to_ascii_lowercase();
    let parent = parent.to_ascii_lowercase();
    if trace.bytes().all(|c| c == b'0') || parent.bytes().all(|c| c == b'0') {
        return None;
    }
    Some((trace, parent))
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// B3 single header `{TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}` (the
/// last two optional; `0`, `1` or `d` alone carry no ids) → (trace, span).
pub fn parse_b3(v: &str) -> Option<(String, Option<String>)> {
    let mut parts = v.trim().split('-');
    let trace = parts.next()?;
    if !(trace.len() == 16 || trace.len() == 32) || !is_hex(trace) {
        return None;
    }
    let span = parts.next().filter(|s| s.len() == 16 && is_hex(s));
    Some((
        normalize_trace(trace)?,
        span.map(|s| s.to_ascii_lowercase()),
    ))
}

/// AWS `X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`
/// → (W3C trace id, parent).
pub fn parse_xray(v: &str) -> Option<(String, Option<String>)> {
    let mut root = None;
    let mut parent = None;
    for part in v.trim().split(';') {
        match part.trim().split_once('=') {
            Some(("Root", r)) => root = normalize_trace(r),
            Some(("Parent", p)) if p.len() == 16 && is_hex(p) => {
                parent = Some(p.to_ascii_lowercase())
            }
            _ => {}
        }
    }
    Some((root.filter(|r| r.len() == 32 && is_hex(r))?, parent))
}

/// Google `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` (span id in decimal) → (trace, span hex).
pub fn parse_cloud_trace(v: &str) -> Option<(String, Option<String>)> {
    let v = v.trim();
    let (trace, rest) = v.split_once('/').unwrap_or((v, ""));
    if trace.len() != 32 || !is_hex(trace) {
        return None;
    }
    let span = rest
        .split(';')
        .next()
        .and_then(|d| d.parse::<u64>().ok())
        .map(|n| format!("{n:016x}"));
    Some((normalize_trace(trace)?, span))
}

/// Trace context from a header or field whatever its spelling
/// (`traceparent`, `request.headers.Traceparent`, `request_X-Amzn-Trace-Id`):
/// (trace id, the caller's span id).
pub fn trace_context(key: &str, value: &str) -> Option<(String, Option<String>)> {
    if ends_with_header(key, "traceparent") {
        parse_traceparent(value).map(|(t, p)| (t, Some(p)))
    } else if ends_with_header(key, "x-amzn-trace-id") {
        parse_xray(value)
    } else if ends_with_header(key, "x-cloud-trace-context") {
        parse_cloud_trace(value)
    } else if ends_with_header(key, "x-b3-traceid") {
        normalize_trace(value)
            .filter(|t| is_hex(t))
            .map(|t| (t, None))
    } else if key.eq_ignore_ascii_case("b3")
        || ends_with_header(key, ".b3")
        || ends_with_header(key, "-b3")
    {
        parse_b3(value)
    } else {
        None
    }
}

/// `key` ends with `suffix`, ignoring ASCII case and treating `_` as `-`
/// (without allocating: this runs on unmapped fields of every line).
fn ends_with_header(key: &str, suffix: &str) -> bool {
    let (k, s) = (key.as_bytes(), suffix.as_bytes());
    if k.len() < s.len() {
        return false;
    }
    let norm = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    k[k.len() - s.len()..]
        .iter()
        .zip(s)
        .all(|(&a, &b)| norm(a) == norm(b))
}

/// Whether a token looks like a request id a gateway generated: a UUID, 16
/// or more hex digits (nginx `$request_id` is 32), or an opaque base64-ish
/// token of 20 to 40 characters with letters and digits (Apache
/// mod_unique_id: 24 characters in 2.4 up to 2.4.x, 27 from `[A-Za-z0-9_-]`
/// as a real 2.4.71 writes them). Words, numbers, dates, addresses and
/// versions are not.
pub fn id_shaped(t: &str) -> bool {
    let n = t.len();
    if !(16..=64).contains(&n) {
        return false;
    }
    let b = t.as_bytes();
    let uuid = n == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if uuid || b.iter().all(u8::is_ascii_hexdigit) {
        // All digits is a number (a timestamp in ns), not an id.
        return uuid || b.iter().any(u8::is_ascii_alphabetic);
    }
    let token = (20..=40).contains(&n)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'@'));
    // Base64 of random bytes: digits, or both cases of letters (a long word
    // or a snake_case name has neither).
    let digit = b.iter().any(u8::is_ascii_digit);
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    token && (lower || upper) && (digit || (upper && lower))
}

/// The first id-shaped token in a text of several values (`{id|agent}`,
/// space- or comma-separated).
pub fn find_id(text: &str) -> Option<&str> {
    text.split(['|', ' ', ',', '{', '}', '"'])
        .find(|t| id_shaped(t))
}

/// The keys an event contributes to the graph.
pub fn keys(ev: &Event) -> Vec<String> {
    let mut k = Vec::with_capacity(4);
    if let Some(id) = ev.request_id.as_deref().and_then(normalize) {
        k.push(id);
    }
    if let Some(id) = ev.correlation_id.as_deref().and_then(normalize) {
        k.push(id);
    }
    if let Some(id) = ev.trace_id.as_deref().and_then(normalize_trace) {
        k.push(id);
    }
    // Span ids are unique only within a trace: namespaced, so a log line that
    // carries only a span id still joins its span.
    if let Some(id) = ev.span_id.as_deref().and_then(normalize) {
        k.push(format!("span:{id}"));
    }
    if ev.source() == Source::Span {
        if let Some(id) = ev.parent_span_id.as_deref().and_then(normalize) {
            k.push(format!("span:{id}"));
        }
    }
    k.sort();
    k.dedup();
    k
}

#[cfg(test)]
mod tests {
    #[test]
    fn id_shaped_tokens_are_what_gateways_generate() {
        use super::id_shaped;
        for id in [
            "0af7651916cd43dd8448eb211c80319c",     // nginx $request_id
            "40799cfc-2808-42c5-ad20-72004541f82a", // Caddy {http.request.uuid}
            "aw19GQECehuuS95KQ0IzSwAAAIs",          // Apache 2.4.71 UNIQUE_ID (real run)
            "Z0Mw1cCoAAEAAAkyZqYAAAAA",             // mod_unique_id, 24 characters
            "795b929e9a9a80fdea7b5bf55eb561a4",     // a client's X-Request-ID
        ] {
            assert!(id_shaped(id), "{id}");
        }
        for not in [
            "realstack-client/1.0",
            "Mozilla/5.0",
            "2179",
            "1795640979.327",
            "127.0.0.1:46223",
            "2026-11-30T13:41:44Z",
            "application_json_response",
            "internationalization_x",
            "1234567890123456789012",
        ] {
            assert!(!id_shaped(not), "{not}");
        }
    }

    use super::*;

    #[test]
    fn traceparent_per_w3c_spec() {
        // w3c/trace-context spec example.
        assert_eq!(
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            Some((
                "0af7651916cd43dd8448eb211c80319c".into(),
                "b7ad6b7169203331".into()
            ))
        );
        assert_eq!(
            parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
            None
        );
        assert_eq!(
            parse_traceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            None
        );
        assert!(parse_traceparent(
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future"
        )
        .is_some());
    }

    #[test]
    fn every_propagation_header_yields_the_w3c_trace_id() {
        // Examples from docs/FORMATS.md §9 (b3-propagation README, AWS X-Ray docs).
        assert_eq!(
            parse_b3("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"),
            Some((
                "80f198ee56343ba864fe8b2a57d3eff7".into(),
                Some("e457b5a2e4d86bd1".into())
            ))
        );
        assert_eq!(parse_b3("0"), None);
        assert_eq!(
            parse_b3("e457b5a2e4d86bd1-e457b5a2e4d86bd1").unwrap().0,
            "0000000000000000e457b5a2e4d86bd1"
        );
        assert_eq!(
            parse_xray(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            ),
            Some((
                "5759e988bd862e3fe1be46a994272793".into(),
                Some("53995c3f42cd8ad8".into())
            ))
        );
        assert_eq!(
            parse_cloud_trace("105445aa7843bc8bf206b12000100000/1;o=1"),
            Some((
                "105445aa7843bc8bf206b12000100000".into(),
                Some("0000000000000001".into())
            ))
        );
        assert_eq!(
            trace_context(
                "request_X-Amzn-Trace-Id",
                "Root=1-5759e988-bd862e3fe1be46a994272793"
            )
            .unwrap()
            .0,
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(
            trace_context(
                "request.headers.Traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            )
            .unwrap()
            .0,
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(trace_context("user_agent", "x"), None);
    }

    #[test]
    fn ids_normalise_for_joining() {
        assert_eq!(
            normalize("CC21D9B0-CF5C-432B-8C7E-98AEB7988CD2").as_deref(),
            Some("cc21d9b0cf5c432b8c7e98aeb7988cd2")
        );
        assert_eq!(normalize("-"), None);
        assert_eq!(normalize("abc#12").as_deref(), Some("abc#12"));
        assert_eq!(
            normalize_trace("5B8EFFF798038103").as_deref(),
            Some("00000000000000005b8efff798038103")
        );
        assert_eq!(
            normalize_trace("1-5759e988-bd862e3fe1be46a994272793").as_deref(),
            Some("5759e988bd862e3fe1be46a994272793")
        );
    }
}
