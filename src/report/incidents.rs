//! Episodes from a store (its `requests` folded file by file, like the
//! report), and episodes as a terminal table and as the opening of the
//! postmortem draft.

use super::escape::{html as h, markdown_cell as md, terminal};
use crate::episodes::{route_of, Cited, Detector, Episode, Observation, OriginOf};
use crate::query::TimeRange;
use crate::store::Store;
use anyhow::Result;
use polars::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write;

/// The columns episodes read of a failed request.
const FAILED_COLUMNS: [&str; 18] = [
    "start_ns",
    "duration_ms",
    "route",
    "path",
    "consumer",
    "upstream_addr",
    "request_id",
    "request_key",
    "label",
    "rule",
    "explanation",
    "cause_kind",
    "cause_service",
    "cause_operation",
    "cause_path",
    "cause_origin",
    "sources",
    "flags",
];

fn strs<'a>(df: &'a DataFrame, c: &str) -> Result<&'a StringChunked> {
    Ok(df.column(c)?.str()?)
}

/// Every request of the store in `range`, observed for episodes, file by
/// file: each request counted from four columns (a path is templated once
/// per distinct path of the file), then the failed ones read whole. Stores
/// written before causes were kept have none: their failures form episodes
/// without an origin.
pub fn from_store(store: &Store, range: TimeRange) -> Result<Detector> {
    let mut d = Detector::default();
    // List columns as comma-separated text, as the observation takes them.
    let as_text = |c: &str| match c {
        "cause_path" | "sources" | "flags" => col(c).list().join(lit(","), true).alias(c),
        _ => col(c),
    };
    let failed_columns: Vec<Expr> = FAILED_COLUMNS.iter().map(|c| as_text(c)).collect();
    for part in store.table_parts("requests")? {
        let part = range.apply(part, "start");
        let df = part
            .clone()
            .select([col("start_ns"), col("failed"), col("route"), col("path")])
            .collect()?;
        let (start, failed) = (df.column("start_ns")?.i64()?, df.column("failed")?.bool()?);
        let (route, path) = (strs(&df, "route")?, strs(&df, "path")?);
        let mut templated: HashMap<&str, String> = HashMap::new();
        for i in 0..df.height() {
            let r = match (route.get(i), path.get(i)) {
                (_, Some(p)) => templated
                    .entry(p)
                    .or_insert_with(|| route_of(None, Some(p)).into_owned())
                    .as_str(),
                (Some(r), None) => r,
                (None, None) => "-",
            };
            d.count(start.get(i), r, failed.get(i).unwrap_or(false));
        }
        drop(templated);
        let df = part
            .filter(col("failed"))
            .select(failed_columns.clone())
            .collect()?;
        let start = df.column("start_ns")?.i64()?;
        let duration = df.column("duration_ms")?.cast(&DataType::Float64)?;
        let duration = duration.f64()?;
        let c: Vec<&StringChunked> = FAILED_COLUMNS[2..]
            .iter()
            .map(|n| strs(&df, n))
            .collect::<Result<_>>()?;
        let [route, path, consumer, upstream, request_id, key, label, rule, explanation, kind, service, operation, cause_path, origin, sources, flags] =
            c[..]
        else {
            unreachable!("one column per name")
        };
        for i in 0..df.height() {
            let cause = match (kind.get(i).and_then(|k| k.parse().ok()), service.get(i)) {
                (Some(kind), Some(service)) => Some(OriginOf {
                    kind,
                    service,
                    operation: operation.get(i),
                    path: Cow::Borrowed(cause_path.get(i).unwrap_or("")),
                    said: origin.get(i),
                }),
                _ => None,
            };
            d.add_failure(&Observation {
                start: start.get(i),
                duration_ms: duration.get(i),
                failed: true,
                route: route_of(route.get(i), path.get(i)),
                consumer: consumer.get(i),
                upstream: upstream.get(i),
                request_id: request_id.get(i).or(key.get(i)),
                label: label.get(i).and_then(|l| l.parse().ok()),
                rule: rule.get(i),
                explanation: explanation.get(i),
                cause,
                has_span: sources.get(i).is_some_and(|s| s.contains("span")),
                flags: flags
                    .get(i)
                    .unwrap_or("")
                    .split(',')
                    .filter_map(|f| f.parse().ok())
                    .collect(),
            });
        }
    }
    Ok(d)
}

fn origin_text(e: &Episode) -> String {
    match &e.origin {
        Some(o) => format!(
            "{} {}{}",
            o.kind,
            o.service,
            o.operation
                .as_deref()
                .map(|op| format!(" ({op})"))
                .unwrap_or_default()
        ),
        None => "no known origin".into(),
    }
}

/// The evidence to show, named by `names` (one, first, typical): one line
/// when the first failure is also the typical one.
fn cited<'a>(e: &'a Episode, names: [&'static str; 3]) -> Vec<(&'static str, &'a Cited)> {
    let (first, typical) = (&e.evidence.first, &e.evidence.typical);
    if first.request_id.is_some() && first.request_id == typical.request_id {
        vec![(names[0], typical)]
    } else {
        vec![(names[1], first), (names[2], typical)]
    }
}

/// The routes that stayed healthy, with their requests.
fn healthy(e: &Episode) -> String {
    e.healthy
        .iter()
        .map(|h| format!("{} ({})", h.route, h.requests))
        .collect::<Vec<_>>()
        .join(", ")
}

fn top(items: &[crate::episodes::Count], n: usize) -> String {
    items
        .iter()
        .take(n)
        .map(|c| format!("{} ({})", c.name, c.failed))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Episodes as the terminal shows them: one block per episode.
pub fn table(eps: &[Episode], d: &Detector) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} episodes in {} requests ({} failed)",
        eps.len(),
        d.requests,
        d.failed
    );
    for e in eps {
        let _ = writeln!(
            o,
            "\n#{}  {}  {} → {}  ({:.1} s, peak {}/s at {})",
            e.episode,
            e.label,
            e.start,
            e.end,
            e.duration_s,
            e.peak_per_s,
            &e.peak[11..19.min(e.peak.len())]
        );
        let _ = writeln!(o, "  origin:   {}", terminal(&origin_text(e)));
        if !e.path.is_empty() {
            let _ = writeln!(o, "  path:     {}", terminal(&e.path.join(" → ")));
        }
        let _ = writeln!(
            o,
            "  impact:   {} failed of {} requests in the window; background {}/s",
            e.requests, e.total_requests, e.background_per_s
        );
        let _ = writeln!(o, "  routes:   {}", terminal(&top(&e.routes, 4)));
        if !e.consumers.is_empty() {
            let _ = writeln!(o, "  consumers: {}", terminal(&top(&e.consumers, 4)));
        }
        for (what, c) in cited(e, ["evidence", "first", "typical"]) {
            let _ = writeln!(
                o,
                "  {what}:{} {}  {}  [{}]",
                " ".repeat(8 - what.len()),
                terminal(c.request_id.as_deref().unwrap_or("-")),
                terminal(c.explanation.as_deref().unwrap_or("-")),
                terminal(c.origin.as_deref().unwrap_or("-"))
            );
        }
        if !e.healthy.is_empty() {
            let _ = writeln!(o, "  healthy:  {}", terminal(&healthy(e)));
        }
        for u in &e.unknowns {
            let _ = writeln!(o, "  unknown:  {}", terminal(u));
        }
    }
    o
}

/// The opening of the postmortem draft: the episodes as a timeline, impact
/// in numbers, the suspected cause of each with its evidence, and what the
/// data does not tell (`run_gaps`: what is known of the whole run).
pub fn markdown(eps: &[Episode], failed: u64, requests: u64, run_gaps: &[String]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## What happened\n");
    if eps.is_empty() {
        let _ = writeln!(
            o,
            "No episode: no origin's failures stand out against its background rate ({failed} failed of {requests} requests).\n"
        );
    } else {
        let _ = writeln!(
            o,
            "| # | start (UTC) | end | peak | label | suspected origin | failed | of requests |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---:|---:|");
        for e in eps {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                e.episode,
                e.start,
                &e.end[11..],
                &e.peak[11..],
                e.label,
                md(&origin_text(e)),
                e.requests,
                e.total_requests
            );
        }
        let in_episodes: u64 = eps.iter().map(|e| e.requests).sum();
        let _ = writeln!(
            o,
            "\n**Impact:** {in_episodes} of the {failed} failed requests fall in these episodes; the rest is background.\n"
        );
    }
    for e in eps {
        let _ = writeln!(
            o,
            "### Episode {}: {} at {}\n",
            e.episode,
            e.label,
            md(&origin_text(e))
        );
        let _ = writeln!(
            o,
            "- **When:** {} → {} ({:.1} s), peak {} failures/s at {}; background {} /s outside it.",
            e.start, e.end, e.duration_s, e.peak_per_s, e.peak, e.background_per_s
        );
        if !e.path.is_empty() {
            let _ = writeln!(o, "- **Path:** {}", md(&e.path.join(" → ")));
        }
        let _ = writeln!(
            o,
            "- **Impact:** {} failed requests of {} in the window; routes {}{}.",
            e.requests,
            e.total_requests,
            md(&top(&e.routes, 5)),
            if e.consumers.is_empty() {
                String::new()
            } else {
                format!("; consumers {}", md(&top(&e.consumers, 5)))
            }
        );
        for (what, c) in cited(e, ["Evidence", "First evidence", "Typical evidence"]) {
            let _ = writeln!(
                o,
                "- **{what}:** {}{} — {} at {} (request {}{})",
                md(c.explanation.as_deref().unwrap_or("-")),
                c.share
                    .map(|s| format!(" ({:.0} % of the episode)", s * 100.0))
                    .unwrap_or_default(),
                md(c.origin.as_deref().unwrap_or("-")),
                c.at,
                md(c.request_id.as_deref().unwrap_or("-")),
                c.rule
                    .as_deref()
                    .map(|r| format!(", rule {}", md(r)))
                    .unwrap_or_default()
            );
        }
        if !e.request_ids.is_empty() {
            let ids: Vec<String> = e.request_ids.iter().take(3).map(|i| md(i)).collect();
            let _ = writeln!(
                o,
                "- **Timelines:** `tracejoin timeline ID --store DIR` for {}, …",
                ids.join(", ")
            );
        }
        if !e.healthy.is_empty() {
            let _ = writeln!(o, "- **Healthy meanwhile:** {}", md(&healthy(e)));
        }
        for u in &e.unknowns {
            let _ = writeln!(o, "- **Not known:** {}", md(u));
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "## What we do not know\n");
    if run_gaps.is_empty() && eps.is_empty() {
        let _ = writeln!(o, "- Nothing the data itself points at.");
    }
    for g in run_gaps {
        let _ = writeln!(o, "- {}", md(g));
    }
    if !eps.is_empty() {
        let _ = writeln!(
            o,
            "- Why each origin failed — the change or event behind it (a deploy, a key rotation, an outage) — is not in these logs: the draft says where and when, a human says why."
        );
    }
    let _ = writeln!(o);
    o
}

/// The opening of the HTML page: the episodes on the run's time axis (one
/// row per episode, SVG), then each with its cause, impact and evidence.
pub fn html(eps: &[Episode], first: Option<i64>, last: Option<i64>, run_gaps: &[String]) -> String {
    let mut s = String::from("<h2>What happened</h2>");
    if eps.is_empty() {
        s.push_str("<p id=\"episodes\">No episode: no origin's failures stand out against its background rate.</p>");
    }
    if let (Some(a), Some(b), false) = (first, last, eps.is_empty()) {
        let span = (b - a).max(1) as f64;
        let (w, row) = (900.0, 22.0);
        let x = |t: i64| 160.0 + (t - a) as f64 / span * (w - 170.0);
        let _ = write!(
            s,
            "<svg id=\"episodes\" width=\"{w}\" height=\"{}\" role=\"img\"><title>episodes over time</title>",
            row * eps.len() as f64 + 24.0
        );
        for (i, e) in eps.iter().enumerate() {
            let y = i as f64 * row + 4.0;
            let colour = super::postmortem::LABELS
                .iter()
                .find(|(l, _)| *l == e.label.as_str())
                .map(|(_, c)| *c)
                .unwrap_or("#7f7f7f");
            let _ = write!(
                s,
                "<text x=\"0\" y=\"{}\" font-size=\"12\">#{} {}</text><rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{colour}\"><title>{}</title></rect>",
                y + 13.0,
                e.episode,
                h(&format!("{} {}", e.label, e.origin.as_ref().map(|o| o.service.as_str()).unwrap_or("?"))),
                x(e.start_ns),
                (x(e.end_ns) - x(e.start_ns)).max(2.0),
                row - 6.0,
                h(&format!("{} → {}", e.start, e.end))
            );
        }
        let _ = write!(
            s,
            "<text x=\"160\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>",
            row * eps.len() as f64 + 20.0,
            h(&crate::event::time::format_ts(a)),
            w,
            row * eps.len() as f64 + 20.0,
            h(&crate::event::time::format_ts(b))
        );
    }
    for e in eps {
        let _ = write!(
            s,
            "<div class=\"episode\"><h3>Episode {}: {} at {}</h3><ul><li><b>When:</b> {} → {} ({:.1} s), peak {} failures/s at {}; background {}/s</li>",
            e.episode,
            e.label,
            h(&origin_text(e)),
            h(&e.start),
            h(&e.end),
            e.duration_s,
            e.peak_per_s,
            h(&e.peak),
            e.background_per_s
        );
        if !e.path.is_empty() {
            let _ = write!(s, "<li><b>Path:</b> {}</li>", h(&e.path.join(" → ")));
        }
        let _ = write!(
            s,
            "<li><b>Impact:</b> {} failed of {} requests; routes {}</li>",
            e.requests,
            e.total_requests,
            h(&top(&e.routes, 5))
        );
        for (what, c) in cited(e, ["Evidence", "First evidence", "Typical evidence"]) {
            let _ = write!(
                s,
                "<li><b>{what}:</b> {} — <code>{}</code> (request <code>{}</code>)</li>",
                h(c.explanation.as_deref().unwrap_or("-")),
                h(c.origin.as_deref().unwrap_or("-")),
                h(c.request_id.as_deref().unwrap_or("-"))
            );
        }
        if !e.healthy.is_empty() {
            let _ = write!(s, "<li><b>Healthy meanwhile:</b> {}</li>", h(&healthy(e)));
        }
        for u in &e.unknowns {
            let _ = write!(s, "<li><b>Not known:</b> {}</li>", h(u));
        }
        s.push_str("</ul></div>");
    }
    if !run_gaps.is_empty() {
        s.push_str("<h2>What we do not know</h2><ul>");
        for g in run_gaps {
            let _ = write!(s, "<li>{}</li>", h(g));
        }
        s.push_str("</ul>");
    }
    s
}
