//! `tracejoin timeline ID`: one request, every event in time order with its
//! offset and source, the span waterfall, and the verdict with its evidence.

use super::escape::terminal;
use crate::correlate::Skew;
use crate::event::time::format_ts;
use crate::event::{Event, Source, SpanStatus};
use crate::labelled::Labelled;
use std::fmt::Write;

/// Skew below this is network latency, not a clock problem: not corrected.
pub const SKEW_SHOWN_MS: f64 = 50.0;

pub fn describe(e: &Event) -> String {
    match e.source() {
        Source::Gateway => {
            let mut s = format!(
                "{} {} → {}",
                e.method.as_deref().unwrap_or("-"),
                e.path.as_deref().unwrap_or("-"),
                e.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into())
            );
            if let Some(d) = e.duration_ms {
                let _ = write!(s, " in {d:.1} ms");
            }
            if let Some(a) = &e.upstream_addr {
                let _ = write!(
                    s,
                    ", upstream {a} said {}",
                    e.upstream_status.as_deref().unwrap_or("-")
                );
            } else {
                s.push_str(", no upstream contacted");
            }
            if let Some(g) = &e.gateway_error {
                let _ = write!(s, ", indicator {g}");
            }
            s
        }
        Source::Span => {
            let sp = e.span.as_deref();
            let mut s = format!(
                "span {:?} [{}] {}",
                sp.map(|s| s.name.as_str()).unwrap_or(""),
                sp.map(|s| s.kind.as_str()).unwrap_or(""),
                sp.map(|s| s.status.as_str()).unwrap_or("")
            );
            if let Some(st) = e.status {
                let _ = write!(s, " http {st}");
            }
            if let Some(d) = e.duration_ms {
                let _ = write!(s, " {d:.1} ms");
            }
            for x in sp.map(|s| s.exceptions.as_slice()).unwrap_or_default() {
                let _ = write!(
                    s,
                    "; exception {}: {}",
                    x.r#type.as_deref().unwrap_or("?"),
                    x.message.as_deref().unwrap_or("")
                );
            }
            s
        }
        _ => format!(
            "{}: {}",
            e.level.map(|l| l.as_str()).unwrap_or("-"),
            e.message.as_deref().unwrap_or("")
        ),
    }
}

/// `skew`: the run's clock-skew estimates; events of a service whose clock is
/// off by more than [`SKEW_SHOWN_MS`] get a corrected offset beside the raw one.
pub fn render(l: &Labelled, skew: &[Skew]) -> String {
    let r = &l.request;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "request {}  trace {}",
        terminal(r.request_id.as_deref().unwrap_or("-")),
        r.trace_id.as_deref().unwrap_or("-")
    );
    let _ = writeln!(o, "  ids: {}", terminal(&r.ids.join(", ")));
    let _ = writeln!(
        o,
        "  {} {}{} → {}   {}   service {}   join {}{}",
        r.method.as_deref().unwrap_or("-"),
        terminal(r.host.as_deref().unwrap_or("")),
        terminal(r.path.as_deref().unwrap_or("-")),
        r.status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        if r.failed { "FAILED" } else { "ok" },
        r.service.as_deref().unwrap_or("-"),
        r.join(),
        if r.flags.is_empty() {
            String::new()
        } else {
            format!("   flags: {}", r.flags_text().replace(',', ", "))
        }
    );
    if let Some(v) = &l.verdict {
        let _ = writeln!(o, "\nverdict: {} (rule {})", v.label, v.rule);
        let _ = writeln!(o, "  {}", terminal(&v.explanation));
        let _ = writeln!(o, "evidence:");
        for e in &v.evidence {
            let _ = writeln!(
                o,
                "  {:<8} {}  {}",
                e.source,
                terminal(&e.origin),
                terminal(&e.detail)
            );
        }
    }
    let t0 = r.start.unwrap_or(0);
    let _ = writeln!(
        o,
        "\ntimeline (offsets from {}):",
        r.start.map(format_ts).unwrap_or_else(|| "-".into())
    );
    for e in &r.events {
        let mut off =
            e.ts.map(|t| format!("{:+10.3} ms", (t - t0) as f64 / 1e6))
                .unwrap_or_else(|| format!("{:>13}", "?"));
        let correction = skew
            .iter()
            .find(|s| {
                e.source() != Source::Gateway && e.service.as_deref() == Some(s.service.as_str())
            })
            .filter(|s| s.median_ms.abs() >= SKEW_SHOWN_MS);
        if let (Some(s), Some(t)) = (correction, e.ts) {
            let _ = write!(
                off,
                " (clock-corrected {:+.3} ms)",
                (t - t0) as f64 / 1e6 - s.median_ms
            );
        }
        let who = e.service.as_deref().unwrap_or(&e.format);
        let _ = writeln!(
            o,
            "  {off}  {:<8} {:<16} {}   ({})",
            e.source().as_str(),
            terminal(who),
            terminal(&describe(e)),
            e.origin.as_ref().map(|o| o.to_string()).unwrap_or_default()
        );
    }
    let cause = l.verdict.as_ref().and_then(|v| v.cause.as_ref());
    if let Some(c) = cause {
        // The way to the origin, drawn above the waterfall.
        let _ = writeln!(
            o,
            "\nblame path: {}   ({})",
            terminal(&c.path.join(" → ")),
            terminal(&c.describe())
        );
        if let Some(origin) = &c.origin {
            let _ = writeln!(o, "  origin: {}", terminal(origin));
        }
    }
    waterfall(r, cause.and_then(|c| c.span_id.as_deref()), &mut o);
    o
}

/// Spans as bars on one time axis, indented by depth; the origin's span
/// (`origin_span`) marked.
fn waterfall(r: &crate::correlate::Request, origin_span: Option<&str>, o: &mut String) {
    let spans: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| e.source() == Source::Span && e.ts.is_some())
        .collect();
    if spans.is_empty() {
        return;
    }
    let start = r.events.iter().filter_map(|e| e.ts).min().unwrap_or(0);
    let end = r
        .events
        .iter()
        .filter_map(|e| e.span.as_ref().and_then(|s| s.end_ts).or(e.ts))
        .chain(
            r.gateway_event()
                .and_then(|g| Some(g.ts? + (g.duration_ms? * 1e6) as i64)),
        )
        .max()
        .unwrap_or(start)
        .max(start + 1);
    const WIDTH: f64 = 40.0;
    let col = |t: i64| (((t - start) as f64 / (end - start) as f64) * WIDTH).round() as usize;
    let depth = |e: &Event| {
        let mut d = 0;
        let mut cur = e.parent_span_id.clone();
        while let Some(p) = cur {
            match spans
                .iter()
                .find(|s| s.span_id.as_deref() == Some(p.as_str()))
            {
                Some(parent) if d < 16 => {
                    d += 1;
                    cur = parent.parent_span_id.clone();
                }
                _ => break,
            }
        }
        d
    };
    let _ = writeln!(o, "\nspans:");
    if let Some(g) = r.gateway_event() {
        if let (Some(t), Some(d)) = (g.ts, g.duration_ms) {
            let (a, b) = (col(t), col(t + (d * 1e6) as i64).max(col(t) + 1));
            let _ = writeln!(
                o,
                "  {:<36} |{}{}{}| {d:.1} ms",
                "gateway",
                " ".repeat(a),
                "▒".repeat(b - a),
                " ".repeat((WIDTH as usize + 1).saturating_sub(b))
            );
        }
    }
    for s in &spans {
        let sp = s.span.as_deref();
        let t = s.ts.unwrap_or(start);
        let e = sp.and_then(|x| x.end_ts).unwrap_or(t);
        let (a, b) = (col(t), col(e).max(col(t) + 1));
        let mark = if sp.is_some_and(|x| x.status == SpanStatus::Error) {
            "✗"
        } else {
            " "
        };
        let name = format!(
            "{}{} {}",
            "  ".repeat(depth(s)),
            sp.map(|x| x.name.as_str()).unwrap_or(""),
            s.service.as_deref().unwrap_or("")
        );
        let name: String = name.chars().take(34).collect();
        let origin = if origin_span.is_some() && s.span_id.as_deref() == origin_span {
            "  ◀ origin"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "{mark} {:<36} |{}{}{}| {:.1} ms{origin}",
            terminal(&name),
            " ".repeat(a),
            "█".repeat(b - a),
            " ".repeat((WIDTH as usize + 1).saturating_sub(b)),
            s.duration_ms.unwrap_or(0.0)
        );
    }
}
