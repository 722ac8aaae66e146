//! `tracejoin report`: the postmortem page. [`gather`] reads what the page
//! needs from the store (`requests` folded file by file, then the example
//! requests by key); [`html`] draws it as one self-contained file (inline CSS and SVG, no
//! script, no network), [`markdown`] as text to paste into a document. Every
//! string that came from a log goes through `escape::html` / `markdown_cell`.

use super::escape::{html as h, markdown_cell as md};
use crate::correlate::templated;
use crate::event::time::format_ts;
use crate::event::Source;
use crate::labelled::Labelled;
use crate::query::TimeRange;
use crate::store::{RunEntry, Store};
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Labels in the order they are shown, with their colours.
pub const LABELS: [(&str, &str); 6] = [
    ("auth", "#d62728"),
    ("routing", "#9467bd"),
    ("quota", "#ff7f0e"),
    ("transform", "#17becf"),
    ("upstream", "#1f77b4"),
    ("unknown", "#7f7f7f"),
];
const EXAMPLES_PER_LABEL: usize = 3;
const TOP: usize = 12;

fn label_index(l: &str) -> usize {
    LABELS
        .iter()
        .position(|(n, _)| *n == l)
        .unwrap_or(LABELS.len() - 1)
}

type Counts = [u64; 6];

pub struct FirstFailure {
    pub at: i64,
    pub id: String,
    pub route: String,
    pub explanation: String,
}

pub struct Data {
    pub store: String,
    pub runs: Vec<RunEntry>,
    pub requests: u64,
    pub failed: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub bucket_ns: i64,
    /// (bucket start, failures by label)
    pub buckets: Vec<(i64, Counts)>,
    pub labels: Counts,
    /// (name, failures by label, requests)
    pub routes: Vec<(String, Counts, u64)>,
    pub upstreams: Vec<(String, Counts, u64)>,
    pub consumers: Vec<(String, Counts, u64)>,
    pub first_failures: Vec<(usize, FirstFailure)>,
    pub examples: Vec<(usize, Vec<Labelled>)>,
    /// The incidents, first in the draft.
    pub episodes: Vec<crate::episodes::Episode>,
    /// What the runs' data cannot tell (their manifests' gaps).
    pub gaps: Vec<String>,
}

impl Data {
    fn first_failure(&self, label: usize) -> Option<&FirstFailure> {
        self.first_failures
            .iter()
            .find(|(i, _)| *i == label)
            .map(|(_, f)| f)
    }
}

fn str_col(df: &DataFrame, c: &str) -> Result<Vec<Option<String>>> {
    let ca = df.column(c)?.str()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).map(str::to_string))
        .collect())
}

/// A bucket width that gives at most ~60 bars: 1 s ... 1 day.
fn bucket_for(span_ns: i64) -> i64 {
    const S: i64 = 1_000_000_000;
    [
        S,
        5 * S,
        10 * S,
        30 * S,
        60 * S,
        300 * S,
        600 * S,
        1800 * S,
        3600 * S,
        6 * 3600 * S,
        86400 * S,
    ]
    .into_iter()
    .find(|b| span_ns / b < 60)
    .unwrap_or(86400 * S)
}

fn top(map: BTreeMap<String, (Counts, u64)>) -> Vec<(String, Counts, u64)> {
    let mut v: Vec<(String, Counts, u64)> = map
        .into_iter()
        .map(|(k, (c, n))| (k, c, n))
        .filter(|(_, c, _)| c.iter().sum::<u64>() > 0)
        .collect();
    v.sort_by(|a, b| {
        b.1.iter()
            .sum::<u64>()
            .cmp(&a.1.iter().sum::<u64>())
            .then(a.0.cmp(&b.0))
    });
    v.truncate(TOP);
    v
}

/// The columns the page reads from `requests`.
const COLUMNS: [&str; 10] = [
    "request_key",
    "request_id",
    "start_ns",
    "failed",
    "label",
    "route",
    "path",
    "upstream_addr",
    "consumer",
    "explanation",
];

/// Reads the store twice, file by file (each a lazy polars scan with the
/// range pushed down and only the needed columns): once for the time span,
/// which sets the bars' width, then to count. Memory holds one file's rows
/// and the counts, which grow with the routes, upstreams and consumers, not
/// with the requests.
pub fn gather(store: &Store, range: TimeRange) -> Result<Data> {
    let parts = store.table_parts("requests")?;
    let (mut first, mut last, mut requests) = (None::<i64>, None::<i64>, 0u64);
    for part in &parts {
        let df = range
            .apply(part.clone(), "start")
            .select([
                col("start_ns").min().alias("first"),
                col("start_ns").max().alias("last"),
                len().alias("n"),
            ])
            .collect()?;
        let get = |c: &str| -> Result<Option<i64>> {
            Ok(df.column(c)?.cast(&DataType::Int64)?.i64()?.get(0))
        };
        if let Some(f) = get("first")? {
            first = Some(first.map_or(f, |x| x.min(f)));
        }
        if let Some(l) = get("last")? {
            last = Some(last.map_or(l, |x| x.max(l)));
        }
        requests += get("n")?.unwrap_or(0) as u64;
    }
    let mut tally = Tally::new(first, bucket_for(last.unwrap_or(0) - first.unwrap_or(0)));
    let columns: Vec<Expr> = COLUMNS.iter().map(|c| col(*c)).collect();
    for part in parts {
        let df = range
            .apply(part, "start")
            .select(columns.clone())
            .collect()?;
        tally.add(&df)?;
    }
    let mut examples = Vec::new();
    for (li, mut ks) in tally.example_keys {
        ks.sort();
        ks.truncate(EXAMPLES_PER_LABEL);
        let mut found = Vec::new();
        for (_, k) in ks {
            if let Some(l) = store.lookup(&k)? {
                found.push(l);
            }
        }
        examples.push((li, found));
    }
    let episodes =
        super::incidents::from_store(store, range)?.episodes(&crate::episodes::Options::default());
    let mut gaps: Vec<String> = Vec::new();
    for r in &store.manifest.runs {
        for g in &r.gaps {
            if !gaps.contains(g) {
                gaps.push(g.clone());
            }
        }
    }
    Ok(Data {
        episodes,
        gaps,
        store: store.dir.display().to_string(),
        runs: store.manifest.runs.clone(),
        requests,
        failed: tally.labels.iter().sum(),
        first,
        last,
        bucket_ns: tally.bucket_ns,
        buckets: tally.buckets.into_iter().collect(),
        labels: tally.labels,
        routes: top(tally.by_route),
        upstreams: top(tally.by_up),
        consumers: top(tally.by_consumer),
        first_failures: tally.first_failures.into_iter().collect(),
        examples,
    })
}

/// The page's counts, folded one frame of `requests` at a time.
struct Tally {
    first: Option<i64>,
    bucket_ns: i64,
    buckets: BTreeMap<i64, Counts>,
    labels: Counts,
    by_route: BTreeMap<String, (Counts, u64)>,
    by_up: BTreeMap<String, (Counts, u64)>,
    by_consumer: BTreeMap<String, (Counts, u64)>,
    first_failures: BTreeMap<usize, FirstFailure>,
    /// The earliest failures by label: (start, request key).
    example_keys: BTreeMap<usize, Vec<(i64, String)>>,
}

impl Tally {
    fn new(first: Option<i64>, bucket_ns: i64) -> Tally {
        Tally {
            first,
            bucket_ns,
            buckets: BTreeMap::new(),
            labels: [0; 6],
            by_route: BTreeMap::new(),
            by_up: BTreeMap::new(),
            by_consumer: BTreeMap::new(),
            first_failures: BTreeMap::new(),
            example_keys: BTreeMap::new(),
        }
    }

    fn add(&mut self, df: &DataFrame) -> Result<()> {
        let starts: Vec<Option<i64>> = {
            let c = df.column("start_ns")?.cast(&DataType::Int64)?;
            let ca = c.i64()?;
            (0..ca.len()).map(|i| ca.get(i)).collect()
        };
        let failed: Vec<bool> = {
            let ca = df.column("failed")?.bool()?;
            (0..ca.len()).map(|i| ca.get(i).unwrap_or(false)).collect()
        };
        let (keys, ids, labels) = (
            str_col(df, "request_key")?,
            str_col(df, "request_id")?,
            str_col(df, "label")?,
        );
        let (routes, paths) = (str_col(df, "route")?, str_col(df, "path")?);
        let (upstreams, consumers) = (str_col(df, "upstream_addr")?, str_col(df, "consumer")?);
        let explanations = str_col(df, "explanation")?;
        let bucket_ns = self.bucket_ns;
        let bucket = |t: i64, f: i64| t - (t - f) % bucket_ns;
        for i in 0..df.height() {
            let route = routes[i]
                .clone()
                .or_else(|| paths[i].as_deref().map(templated))
                .unwrap_or_else(|| "-".into());
            let up = upstreams[i].clone().unwrap_or_else(|| "-".into());
            let consumer = consumers[i].clone().unwrap_or_else(|| "-".into());
            let mut counts: [&mut (Counts, u64); 3] = [
                self.by_route.entry(route.clone()).or_insert(([0; 6], 0)),
                self.by_up.entry(up).or_insert(([0; 6], 0)),
                self.by_consumer.entry(consumer).or_insert(([0; 6], 0)),
            ];
            for c in counts.iter_mut() {
                c.1 += 1;
            }
            if let (Some(t), Some(f)) = (starts[i], self.first) {
                self.buckets.entry(bucket(t, f)).or_insert([0; 6]);
            }
            if !failed[i] {
                continue;
            }
            let li = label_index(labels[i].as_deref().unwrap_or("unknown"));
            self.labels[li] += 1;
            for c in counts.iter_mut() {
                c.0[li] += 1;
            }
            let t = starts[i].unwrap_or(i64::MAX);
            if let Some(f) = self.first {
                if let Some(b) = self.buckets.get_mut(&bucket(t, f)) {
                    b[li] += 1;
                }
            }
            let entry = self.first_failures.entry(li).or_insert(FirstFailure {
                at: i64::MAX,
                id: String::new(),
                route: String::new(),
                explanation: String::new(),
            });
            if t < entry.at {
                *entry = FirstFailure {
                    at: t,
                    id: ids[i]
                        .clone()
                        .or_else(|| keys[i].clone())
                        .unwrap_or_default(),
                    route,
                    explanation: explanations[i].clone().unwrap_or_default(),
                };
            }
            let ex = self.example_keys.entry(li).or_default();
            // The earliest few: the start of the incident is what a reader wants first.
            ex.push((t, keys[i].clone().unwrap_or_default()));
            if ex.len() > 64 {
                ex.sort();
                ex.truncate(EXAMPLES_PER_LABEL);
            }
        }
        Ok(())
    }
}

fn dur(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / d as f64)
    }
}

// ---- HTML ----

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.sw{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:middle}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}.ev{font-size:12px}
.muted{color:#777}svg text{font:11px system-ui,sans-serif}";

fn chart(d: &Data) -> String {
    let (w, hgt, left, bottom) = (1000.0, 240.0, 40.0, 30.0);
    let n = d.buckets.len().max(1) as f64;
    let max = d
        .buckets
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bw = (w - left) / n;
    let mut s = format!(
        "<svg id=\"failures-over-time\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" role=\"img\" aria-label=\"failures over time by label\">"
    );
    let plot = hgt - bottom;
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{plot}\" x2=\"{w}\" y2=\"{plot}\" stroke=\"#999\"/>"
    );
    let _ = write!(
        s,
        "<text x=\"0\" y=\"12\">{}</text><text x=\"0\" y=\"{plot}\">0</text>",
        max as u64
    );
    for (i, (t, c)) in d.buckets.iter().enumerate() {
        let x = left + i as f64 * bw;
        let mut y = plot;
        for (li, (label, colour)) in LABELS.iter().enumerate() {
            if c[li] == 0 {
                continue;
            }
            let bh = c[li] as f64 / max * (plot - 10.0);
            y -= bh;
            let _ = write!(
                s,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>{} {label}: {}</title></rect>",
                (bw - 1.0).max(1.0),
                format_ts(*t),
                c[li]
            );
        }
        if i == 0 || i + 1 == d.buckets.len() || i % 10 == 0 {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\">{}</text>",
                hgt - 8.0,
                &format_ts(*t)[11..19]
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn legend() -> String {
    LABELS
        .iter()
        .map(|(l, c)| format!("<span class=\"sw\" style=\"background:{c}\"></span>{l}"))
        .collect::<Vec<_>>()
        .join(" &nbsp; ")
}

fn counts_table(title: &str, rows: &[(String, Counts, u64)]) -> String {
    let mut s = format!(
        "<table class=\"{}\"><tr><th>{title}</th><th>requests</th><th>failed</th>",
        title.replace(' ', "-")
    );
    for (l, _) in LABELS {
        let _ = write!(s, "<th>{l}</th>");
    }
    s.push_str("</tr>");
    for (name, c, n) in rows {
        let f: u64 = c.iter().sum();
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{n}</td><td class=\"n\">{f} ({})</td>",
            h(name),
            pct(f, *n)
        );
        for v in c {
            let _ = write!(
                s,
                "<td class=\"n\">{}</td>",
                if *v == 0 {
                    String::new()
                } else {
                    v.to_string()
                }
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// One request as an SVG waterfall (every event on one time axis) and its events.
fn example(l: &Labelled) -> String {
    let r = &l.request;
    let start = r.events.iter().filter_map(|e| e.ts).min().unwrap_or(0);
    let end_of = |e: &crate::event::Event| {
        e.span
            .as_ref()
            .and_then(|s| s.end_ts)
            .or_else(|| Some(e.ts? + (e.duration_ms? * 1e6) as i64))
            .or(e.ts)
            .unwrap_or(start)
    };
    let end = r
        .events
        .iter()
        .map(end_of)
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let (w, left, row) = (1000.0, 330.0, 18.0);
    let hgt = row * r.events.len() as f64 + 20.0;
    let x = |t: i64| left + (t - start) as f64 / (end - start) as f64 * (w - left - 10.0);
    let mut s = String::new();
    let v = l.verdict.as_ref();
    let _ = write!(
        s,
        "<div class=\"example\"><p><b>{}</b> <span class=\"mono\">{} {}</span> → {} · rule <code>{}</code><br>{}</p>",
        h(r.request_id.as_deref().or(r.trace_id.as_deref()).unwrap_or("-")),
        h(r.method.as_deref().unwrap_or("-")),
        h(r.path.as_deref().unwrap_or("-")),
        r.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        h(v.map(|v| v.rule.as_str()).unwrap_or("-")),
        h(v.map(|v| v.explanation.as_str()).unwrap_or("")),
    );
    let cause = v.and_then(|v| v.cause.as_ref());
    if let Some(c) = cause {
        // The way to the origin, above the waterfall.
        let _ = write!(
            s,
            "<p class=\"blame\">blame path: <b>{}</b> ({})</p>",
            h(&c.path.join(" → ")),
            h(&c.describe())
        );
    }
    let origin_span = cause.and_then(|c| c.span_id.as_deref());
    let _ = write!(
        s,
        "<svg class=\"waterfall\" width=\"{w}\" height=\"{hgt}\">"
    );
    for (i, e) in r.events.iter().enumerate() {
        let y = 10.0 + i as f64 * row;
        let t = e.ts.unwrap_or(start);
        let (a, b) = (x(t), x(end_of(e)).max(x(t) + 2.0));
        let colour = match e.source() {
            Source::Gateway => "#555",
            Source::Span if e.is_error() => "#d62728",
            Source::Span => "#1f77b4",
            _ if e.is_error() => "#ff7f0e",
            _ => "#2ca02c",
        };
        let name = match &e.span {
            Some(sp) => format!("{} {}", e.service.as_deref().unwrap_or(""), sp.name),
            None => format!(
                "{} {}",
                e.source().as_str(),
                e.service.as_deref().unwrap_or(&e.format)
            ),
        };
        let name: String = name.chars().take(48).collect();
        // The origin's span: outlined and named.
        let is_origin = origin_span.is_some()
            && e.source() == Source::Span
            && e.span_id.as_deref() == origin_span;
        let (name, outline) = if is_origin {
            (
                format!("◀ origin {name}"),
                " stroke=\"#000\" stroke-width=\"2\" class=\"origin\"",
            )
        } else {
            (name, "")
        };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\">{:+.1} ms {}</text><rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"{outline}><title>{}</title></rect>",
            y + 11.0,
            (t - start) as f64 / 1e6,
            h(&name),
            y + 2.0,
            b - a,
            row - 5.0,
            h(&super::timeline::describe(e))
        );
    }
    s.push_str("</svg><table class=\"ev\"><tr><th>offset</th><th>source</th><th>what</th><th>origin</th></tr>");
    for e in &r.events {
        let _ = write!(
            s,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono muted\">{}</td></tr>",
            e.ts.map(|t| format!("{:+.3} ms", (t - start) as f64 / 1e6)).unwrap_or_default(),
            e.source().as_str(),
            h(&super::timeline::describe(e)),
            h(&e.origin.as_ref().map(|o| o.to_string()).unwrap_or_default())
        );
    }
    s.push_str("</table></div>");
    s
}

pub fn html(d: &Data) -> String {
    let mut s = String::new();
    let span = match (d.first, d.last) {
        (Some(a), Some(b)) => format!("{} → {}", format_ts(a), format_ts(b)),
        _ => "-".into(),
    };
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tracejoin postmortem</title><style>{CSS}</style></head><body>"
    );
    let _ = write!(
        s,
        "<h1>Postmortem: failed requests</h1><p>{} requests, <b>{} failed ({})</b>, {}. Store <code>{}</code>.</p>",
        d.requests,
        d.failed,
        pct(d.failed, d.requests),
        h(&span),
        h(&d.store)
    );
    s.push_str(&super::incidents::html(
        &d.episodes,
        d.first,
        d.last,
        &d.gaps,
    ));
    s.push_str("<h2>Failures by label</h2><table id=\"labels\"><tr><th>label</th><th>failed</th><th>share</th><th>first failure</th><th>first failing request</th><th>why</th></tr>");
    for (li, (l, c)) in LABELS.iter().enumerate() {
        if d.labels[li] == 0 {
            continue;
        }
        let ff = d.first_failure(li);
        let _ = write!(
            s,
            "<tr><td><span class=\"sw\" style=\"background:{c}\"></span>{l}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}<br>{}</td><td>{}</td></tr>",
            d.labels[li],
            pct(d.labels[li], d.failed),
            ff.map(|f| format_ts(f.at)).unwrap_or_default(),
            h(ff.map(|f| f.id.as_str()).unwrap_or("")),
            h(ff.map(|f| f.route.as_str()).unwrap_or("")),
            h(ff.map(|f| f.explanation.as_str()).unwrap_or("")),
        );
    }
    s.push_str("</table>");
    let _ = write!(
        s,
        "<h2>Failures over time</h2><p class=\"muted\">one bar per {}; {}</p>{}",
        dur(d.bucket_ns),
        legend(),
        chart(d)
    );
    let _ = write!(
        s,
        "<h2>Label × route</h2>{}",
        counts_table("route", &d.routes)
    );
    let _ = write!(
        s,
        "<h2>Label × upstream</h2>{}",
        counts_table("upstream", &d.upstreams)
    );
    let _ = write!(
        s,
        "<h2>Top consumers</h2>{}",
        counts_table("consumer", &d.consumers)
    );
    s.push_str("<h2>Example timelines</h2>");
    for (li, ls) in &d.examples {
        let _ = write!(s, "<h3>{}</h3>", LABELS[*li].0);
        for l in ls {
            s.push_str(&example(l));
        }
    }
    s.push_str("<h2>Rule pack and runs</h2>");
    for r in &d.runs {
        let _ = write!(
            s,
            "<p>run <code>{}</code> by {} at {}: {} requests, {} failed, window {} ms{}; rule pack sha256 <code>{}</code></p><p class=\"muted\">inputs: {}</p>",
            h(&r.run),
            h(&r.tool),
            h(&r.written_at),
            r.requests,
            r.failed,
            r.window_ms,
            replaces(r),
            h(&r.rule_pack_hash),
            r.inputs.iter().map(|i| format!("{} ({} bytes)", h(&i.path), i.bytes)).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(r) = d.runs.last() {
        s.push_str("<table id=\"rules\"><tr><th>rule</th><th>label</th><th>priority</th><th>pack</th></tr>");
        for rule in &r.rules {
            let _ = write!(
                s,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                h(&rule.name),
                h(&rule.label),
                rule.priority,
                h(&rule.pack)
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</body></html>\n");
    s
}

// ---- Markdown ----

pub fn markdown(d: &Data) -> String {
    let mut s = String::from("# Postmortem draft\n\n");
    s.push_str(&super::incidents::markdown(
        &d.episodes,
        d.failed,
        d.requests,
        &d.gaps,
    ));
    let _ = writeln!(s, "## Failed requests\n");
    let _ = writeln!(
        s,
        "{} requests, **{} failed ({})**, {} → {}.\n",
        d.requests,
        d.failed,
        pct(d.failed, d.requests),
        d.first.map(format_ts).unwrap_or_default(),
        d.last.map(format_ts).unwrap_or_default()
    );
    let _ = writeln!(s, "| label | failed | share | first failure | first request | why |\n|---|---:|---:|---|---|---|");
    for (li, (l, _)) in LABELS.iter().enumerate() {
        if d.labels[li] == 0 {
            continue;
        }
        let ff = d.first_failure(li);
        let _ = writeln!(
            s,
            "| {l} | {} | {} | {} | `{}` {} | {} |",
            d.labels[li],
            pct(d.labels[li], d.failed),
            ff.map(|f| format_ts(f.at)).unwrap_or_default(),
            md(ff.map(|f| f.id.as_str()).unwrap_or("")),
            md(ff.map(|f| f.route.as_str()).unwrap_or("")),
            md(ff.map(|f| f.explanation.as_str()).unwrap_or(""))
        );
    }
    let _ = writeln!(
        s,
        "\n### Failures over time (one row per {})\n\n```",
        dur(d.bucket_ns)
    );
    let max = d
        .buckets
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    for (t, c) in &d.buckets {
        let total: u64 = c.iter().sum();
        let mut bar = String::new();
        for (li, (l, _)) in LABELS.iter().enumerate() {
            let n = (c[li] * 50).div_ceil(max) as usize;
            bar.push_str(&l[..1].repeat(n));
        }
        let _ = writeln!(s, "{} {total:>6} {bar}", &format_ts(*t)[..19]);
    }
    let _ = writeln!(
        s,
        "```\n(a = auth, r = routing, q = quota, t = transform, u = upstream)\n"
    );
    for (title, rows) in [
        ("route", &d.routes),
        ("upstream", &d.upstreams),
        ("consumer", &d.consumers),
    ] {
        let _ = writeln!(s, "### Label × {title}\n");
        let _ = writeln!(s, "| {title} | requests | failed | auth | routing | quota | transform | upstream | unknown |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (name, c, n) in rows.iter() {
            let cells: Vec<String> = c.iter().map(|v| v.to_string()).collect();
            let _ = writeln!(
                s,
                "| `{}` | {n} | {} | {} |",
                md(name),
                c.iter().sum::<u64>(),
                cells.join(" | ")
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "### Example timelines\n");
    for (li, ls) in &d.examples {
        for l in ls.iter().take(1) {
            // Text in a fenced block is shown literally; only a fence inside could end it.
            let text = super::timeline::render(l, &[]).replace("```", "'''");
            let _ = writeln!(s, "**{}**\n\n```\n{text}```\n", LABELS[*li].0);
        }
    }
    if let Some(r) = d.runs.last() {
        let _ = writeln!(
            s,
            "Rule pack sha256 `{}` ({} rules), {}.",
            r.rule_pack_hash,
            r.rules.len(),
            r.tool
        );
    }
    s
}

/// What a run replaced, for the list of runs: rows it superseded, and the
/// runs `reconcile` joined.
fn replaces(r: &crate::store::RunEntry) -> String {
    let mut s = String::new();
    if r.superseded > 0 {
        let _ = write!(
            s,
            ", replacing {} rows of earlier emissions or runs",
            r.superseded
        );
    }
    if !r.reconciles.is_empty() {
        let _ = write!(s, " (reconcile of runs {})", h(&r.reconciles.join(", ")));
    }
    s
}
