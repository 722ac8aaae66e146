//! Identifier normalisation (FORMATS.md §0, §9): ids are compared
//! case-insensitively, UUID dashes do not matter, 64-bit trace ids are
//! left-padded to 128 bits, all-zero ids are invalid.

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

#[cfg(test)]
mod tests {
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
