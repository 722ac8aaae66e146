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
            TimeFormat::Clf => DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S%.f %z")
                .ok()
                .and_then(|d| d.timestamp_nanos_opt()),
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

fn parse_epoch(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if let Some((int, frac)) = s.split_once('.') {
        let secs: i64 = int.parse().ok()?;
        // Fractions are only written on seconds (`1646861401.5241024`).
        let mut digits = frac.chars().take(9).collect::<String>();
        while digits.len() < 9 {
            digits.push('0');
        }
        let nanos: i64 = digits.parse().ok()?;
        return secs.checked_mul(1_000_000_000)?.checked_add(nanos);
    }
    // Parse the integer directly: never through f64, which loses ns precision.
    let v: i64 = s.parse().ok()?;
    Some(match v {
        v if v < 100_000_000_000 => v * 1_000_000_000, // seconds (until year 5138)
        v if v < 100_000_000_000_000 => v * 1_000_000, // milliseconds
        v if v < 100_000_000_000_000_000 => v * 1_000, // microseconds
        v => v,                                        // nanoseconds
    })
}

/// Formats unix nanoseconds as RFC 3339 with milliseconds, UTC.
pub fn format_ts(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
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
    }
}
