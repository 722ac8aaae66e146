//! Gateway error-log lines (nginx `error.log`, Apache's error log) carry no
//! request id. They join the request whose access-log line has the same
//! client, the same request line (when the error line names one), the same
//! upstream (when both name one), at a time that fits: the error line is
//! written while the request runs, to the second. The join is always marked
//! inferred, with a confidence (1/n for n equally good lines) and the fields
//! that matched.

use crate::event::{Event, Level, Text};

/// The client address without its port (`127.0.0.1:55904` → `127.0.0.1`,
/// `[::1]:443` → `::1`): access logs write the address, error logs often the
/// address and port.
pub fn client_key(addr: &str) -> Text {
    let a = addr.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return Text::from(rest.split(']').next().unwrap_or(rest));
    }
    match a.rsplit_once(':') {
        // One colon: IPv4 with a port. More: an IPv6 address without one.
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            Text::from(host)
        }
        _ => Text::from(a),
    }
}

/// `host:port` of an upstream as an error line writes it (`http://10.0.0.7:8080/path`).
fn upstream_key(u: &str) -> &str {
    let u = u.split("://").nth(1).unwrap_or(u);
    u.split('/').next().unwrap_or(u)
}

/// What an access-log line offers for the join.
pub struct Line<'a> {
    pub client: Option<&'a str>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub start: i64,
    pub end: i64,
    pub failed: bool,
    /// One of its upstream attempts failed (a 5xx in `$upstream_status`).
    pub upstream_failed: bool,
    /// The connections ([`connection`]) of the error lines it already holds.
    pub conns: &'a [String],
}

/// Which connection or worker wrote an error line: nginx's `*N` connection
/// number, Apache's `pid:tid` (a worker thread serves one request at a time).
/// The lines of one request share it; another request's lines do not.
pub fn connection(ev: &Event) -> Option<String> {
    if let Some(c) = ev.attr("connection") {
        return Some(c.to_string());
    }
    Some(format!("{}:{}", ev.attr("pid")?, ev.attr("tid")?))
}

/// How well an error line fits an access line: `None` when it cannot be
/// that request's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The error line names the request line (and the upstream, when both do).
    strength: u8,
    /// From the access line's end, ns.
    distance: i64,
    fields: &'static str,
}

const SECOND_NS: i64 = 1_000_000_000;
/// Rounding between two clocks of one host.
const EPSILON_NS: i64 = 5_000_000;

/// When an error line about a request can have been written, given the access
/// line's start and end. A time to the second (nginx's error.log) is floored:
/// it may read up to a second before the request started, never after it
/// ended (an access time to the second is its end, floored too). A precise
/// time (Apache's, to the µs) falls inside the request, whose logged start
/// may be floored to the second (Apache `%t`).
fn fits(ts: i64, coarse: bool, start: i64, end: i64) -> bool {
    if coarse {
        ts >= start - SECOND_NS - EPSILON_NS && ts <= end + EPSILON_NS
    } else {
        ts >= start - EPSILON_NS && ts <= end + SECOND_NS + EPSILON_NS
    }
}

pub fn score(ev: &Event, line: &Line<'_>) -> Option<Score> {
    let client = client_key(ev.client_ip.as_deref()?);
    if line.client != Some(client.as_str()) {
        return None;
    }
    let ts = ev.ts?;
    if !fits(ts, ev.ts_precision_ns >= SECOND_NS, line.start, line.end) {
        return None;
    }
    let mut strength = 0;
    let mut fields = "client,time";
    if !line.conns.is_empty() {
        // It already holds error lines: of this connection, or of another
        // request (then this line is not its).
        match connection(ev) {
            Some(c) if line.conns.contains(&c) => strength += 3,
            Some(_) => return None,
            None => {}
        }
    }
    if let Some(path) = ev.path.as_deref() {
        if line.path != Some(path) || line.method != ev.method.as_deref() {
            return None;
        }
        strength += 2;
        fields = "client,request,time";
    }
    if let (Some(u), Some(l)) = (ev.upstream_addr.as_deref(), line.upstream) {
        let u = upstream_key(u);
        if !l.split([',', ':', ' ']).any(|x| x.trim() == u) && !l.contains(u) {
            return None;
        }
        strength += 2;
        // An error about the upstream belongs, more likely, to a request
        // whose upstream attempt failed.
        if line.upstream_failed {
            strength += 1;
        }
        fields = if ev.path.is_some() {
            "client,request,upstream,time"
        } else {
            "client,upstream,time"
        };
    }
    // An error that names no upstream (nginx's "limiting requests", "client
    // intended to send too large body") belongs, more likely, to a request
    // the gateway answered itself than to one of the same second that an
    // upstream answered. (Only beside the request line: it must not turn a
    // guess on client and time into a join.)
    if ev.path.is_some() && ev.upstream_addr.is_none() && line.upstream.is_none() {
        strength += 1;
    }
    // An error or warning belongs to a request that failed, more likely.
    if ev.level.is_some_and(|l| l >= Level::Warn) == line.failed {
        strength += 1;
    }
    Some(Score {
        strength,
        distance: (ts - line.end).abs(),
        fields,
    })
}

/// The request an error line joins, how sure that is, and on what.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogMatch {
    pub slot: u32,
    pub confidence: f32,
    pub fields: &'static str,
}

/// The best of the scored candidates: the strongest fit, then the nearest in
/// time; the confidence is shared by every candidate as strong as the winner.
/// A join on client and time alone needs a single candidate.
pub fn best(scored: Vec<(u32, Score)>) -> Option<LogMatch> {
    let top = scored.iter().map(|(_, s)| s.strength).max()?;
    let ties = scored.iter().filter(|(_, s)| s.strength == top).count();
    // Client and time alone (no request line, no upstream): only when one
    // request fits; a guess between several is no join.
    if top < 2 && ties > 1 {
        return None;
    }
    let (slot, s) = scored
        .into_iter()
        .filter(|(_, s)| s.strength == top)
        .min_by_key(|(_, s)| s.distance)?;
    Some(LogMatch {
        slot,
        confidence: 1.0 / ties as f32,
        fields: s.fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_lose_their_port() {
        assert_eq!(client_key("127.0.0.1:55904"), "127.0.0.1");
        assert_eq!(client_key("127.0.0.1"), "127.0.0.1");
        assert_eq!(client_key("[::1]:443"), "::1");
        assert_eq!(client_key("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn an_error_time_fits_the_request_it_can_have_been_written_during() {
        let s = SECOND_NS;
        // nginx: the error time is floored, the access line's end too.
        assert!(fits(
            10 * s,
            true,
            10 * s + 300_000_000,
            10 * s + 300_000_000
        ));
        assert!(fits(9 * s, true, 9 * s + 800_000_000, 10 * s));
        assert!(
            !fits(11 * s, true, 9 * s, 10 * s),
            "written after the request ended"
        );
        // Apache: a precise error time inside a request whose start is floored.
        assert!(fits(
            14 * s + 165_909_000,
            false,
            13 * s,
            13 * s + 1_004_165_000
        ));
        assert!(
            !fits(14 * s + 165_909_000, false, 15 * s, 15 * s + 1_810_000),
            "before it started"
        );
    }

    #[test]
    fn upstream_urls_compare_by_host_and_port() {
        assert_eq!(
            upstream_key("http://127.0.0.1:18099/dead/health"),
            "127.0.0.1:18099"
        );
        assert_eq!(upstream_key("http://deadpair/pair/b"), "deadpair");
    }
}
