//! Timestamp parsing into unix nanoseconds (UTC), via chrono.

use chrono::{DateTime, NaiveDateTime};

/// How a definition says its timestamps are written.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeFormat {
    /// RFC 3339 / ISO 8601, with the usual liberties (space for `T`, no zone = UTC,
    /// comma before fractions as Python logging writes).
    Iso,
    /// Common Log Format: `10/Oct/2000:13:55:36 -0700`.
    Clf,
    /// A number; the unit is chosen by magnitude (s, ms, µs, ns).
    Epoch,
    /// A chrono `strftime` pattern.
    Pattern(String),
    /// Try ISO, then epoch, then CLF.
    Auto,
}

impl TimeFormat {
    pub fn from_spec(s: &str) -> TimeFormat {
        match s {
            "iso" | "rfc3339" | "iso8601" => TimeFormat::Iso,
            "clf" => TimeFormat::Clf,
            "epoch" => TimeFormat::Epoch,
            "auto" => TimeFormat::Auto,
            other => TimeFormat::Pattern(other.to_string()),
        }
    }

    pub fn parse(&self, s: &str) -> Option<i64> {
        let s = s.trim();
        match self {
            TimeFormat::Iso => parse_iso(s),
            TimeFormat::Clf => parse_clf_fast(s).or_else(|| {
                DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S%.f %z")
                    .ok()
                    .and_then(|d| d.timestamp_nanos_opt())
            }),
            TimeFormat::Epoch => parse_epoch(s),
            TimeFormat::Pattern(p) => DateTime::parse_from_str(s, p)
                .ok()
                .and_then(|d| d.timestamp_nanos_opt())
                .or_else(|| {
                    NaiveDateTime::parse_from_str(s, p)
                        .ok()
                        .and_then(|d| d.and_utc().timestamp_nanos_opt())
                }),
            TimeFormat::Auto => parse_iso(s)
                .or_else(|| parse_epoch(s))
                .or_else(|| TimeFormat::Clf.parse(s)),
        }
    }
}

fn parse_iso(s: &str) -> Option<i64> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return d.timestamp_nanos_opt();
    }
    if s.len() < 19 || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    // Normalise the common variants once, then retry.
    let mut t = s.replacen(' ', "T", 1).replacen(',', ".", 1);
    if t.ends_with(" UTC") {
        t.truncate(t.len() - 4);
        t.push('Z');
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(&t) {
        return d.timestamp_nanos_opt();
    }
    for pat in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(d) = DateTime::parse_from_str(&t, pat) {
            return d.timestamp_nanos_opt();
        }
    }
    NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .and_then(|d| d.and_utc().timestamp_nanos_opt())
}

/// `20/Jul/2009:22:59:29 +0000`, the layout every access log writes, read
/// without a format interpreter (it is on the hot path of every gateway line);
/// anything else falls back to chrono.
fn parse_clf_fast(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = MONTHS.iter().position(|m| &b[3..6] == *m)? as u32 + 1;
    let date = chrono::NaiveDate::from_ymd_opt(num(7..11)? as i32, month, num(0..2)? as u32)?;
    let secs = date.and_hms_opt(
        num(12..14)? as u32,
        num(15..17)? as u32,
        num(18..20)? as u32,
    )?;
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = sign * (num(22..24)? * 3600 + num(24..26)? * 60);
    (secs.and_utc().timestamp() - offset).checked_mul(1_000_000_000)
}

fn parse_epoch(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if let Some((int, frac)) = s.split_once('.') {
        let secs: i64 = int.parse().ok()?;
        // Fractions are only written on seconds (`1646861401.5241024`).
        let mut nanos = 0i64;
        for i in 0..9 {
            // A second `.` (`1.2.3`) is no time: `c - b'0'` would wrap.
            let d = match frac.as_bytes().get(i) {
                None => 0,
                Some(c) if c.is_ascii_digit() => (c - b'0') as i64,
                Some(_) => return None,
            };
            nanos = nanos * 10 + d;
        }
        return secs.checked_mul(1_000_000_000)?.checked_add(nanos);
    }
    // Parse the integer directly: never through f64, which loses ns precision.
    let v: i64 = s.parse().ok()?;
    // Checked: nanoseconds in an i64 end in 2262, before seconds end here.
    match v {
        v if v < 100_000_000_000 => v.checked_mul(1_000_000_000), // seconds
        v if v < 100_000_000_000_000 => v.checked_mul(1_000_000), // milliseconds
        v if v < 100_000_000_000_000_000 => v.checked_mul(1_000), // microseconds
        v => Some(v),                                             // nanoseconds
    }
}

/// Formats unix nanoseconds as RFC 3339 with milliseconds, UTC.
/// How precise a written time is, in ns: the unit of its last digit (a time
/// to the second: 1 s; `.123`: 1 ms); 0 for a millisecond or finer.
pub fn precision_of(text: &str) -> i64 {
    let t = text.trim();
    let unit = |frac: usize| -> i64 {
        match frac {
            0 => 1_000_000_000,
            1 => 100_000_000,
            2 => 10_000_000,
            _ => 0,
        }
    };
    // An epoch number: its magnitude says the unit (s, ms, µs, ns).
    if let Some((int, frac)) = t.split_once('.').or(Some((t, ""))) {
        if !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
        {
            return if int.len() <= 10 { unit(frac.len()) } else { 0 };
        }
    }
    // A date: the digits after the seconds' colon.
    let b = t.as_bytes();
    let Some(colon) = t.rfind(':') else {
        return 0;
    };
    let secs = colon + 3;
    if secs > b.len() || !b[colon + 1..secs].iter().all(u8::is_ascii_digit) {
        // The last colon is a zone offset's (`+00:00`): look before it.
        // Three bytes back may fall inside a multi-byte character.
        let mut cut = colon.saturating_sub(3);
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        return precision_of(&t[..cut]);
    }
    match b.get(secs) {
        Some(b'.') | Some(b',') => unit(
            b[secs + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count(),
        ),
        _ => unit(0),
    }
}

pub fn format_ts(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod precision_tests {
    use super::precision_of;

    #[test]
    fn a_time_is_as_precise_as_its_last_digit() {
        assert_eq!(precision_of("30/Nov/2026:13:41:56 +0000"), 1_000_000_000);
        assert_eq!(precision_of("2026/11/30 13:38:05"), 1_000_000_000);
        assert_eq!(precision_of("2026-11-30T13:41:56+00:00"), 1_000_000_000);
        assert_eq!(precision_of("2026-11-30T13:41:56.123Z"), 0);
        assert_eq!(precision_of("1795640979.327"), 0);
        assert_eq!(precision_of("1795640979"), 1_000_000_000);
        assert_eq!(precision_of("1796045877161"), 0);
        assert_eq!(precision_of("[30/Nov/2026:13:39:14.655]"), 0);
    }

    #[test]
    fn a_colon_after_multi_byte_characters_does_not_cut_one() {
        // Three bytes before the colon fall inside the second `é`: before,
        // "byte index 1 is not a char boundary".
        for t in ["éé:", "13:41:5é", "ééé:x"] {
            assert!(precision_of(t) >= 0, "{t}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_formats_logs_use() {
        let want = 1_700_000_000_123_000_000i64;
        assert_eq!(
            TimeFormat::Iso.parse("2023-11-14T22:13:20.123Z"),
            Some(want)
        );
        assert_eq!(TimeFormat::Iso.parse("2023-11-14 22:13:20,123"), Some(want));
        assert_eq!(
            TimeFormat::Iso.parse("2023-11-14T23:13:20.123+01:00"),
            Some(want)
        );
        assert_eq!(
            TimeFormat::Clf.parse("14/Nov/2023:22:13:20 +0000"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(TimeFormat::Epoch.parse("1700000000.123"), Some(want));
        assert_eq!(TimeFormat::Epoch.parse("1700000000123"), Some(want));
        assert_eq!(
            TimeFormat::Epoch.parse("1544712660300000000"),
            Some(1_544_712_660_300_000_000)
        );
        assert_eq!(TimeFormat::Auto.parse("not a time"), None);
        // The fast CLF path agrees with chrono, offsets included.
        for s in [
            "10/Oct/2000:13:55:36 -0700",
            "29/Feb/2024:00:00:01 +0530",
            "31/Dec/1999:23:59:59 +0000",
        ] {
            let slow = DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
                .unwrap()
                .timestamp_nanos_opt();
            assert_eq!(parse_clf_fast(s), slow, "{s}");
        }
        assert_eq!(parse_clf_fast("31/Foo/1999:23:59:59 +0000"), None);
    }
}
