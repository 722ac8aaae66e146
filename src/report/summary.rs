//! The terminal summary of `analyze`: what an on-call engineer reads first.

use super::escape::terminal;
use crate::analysis::Analysis;
use crate::correlate::{FLAG_GATEWAY_ONLY, FLAG_NO_GATEWAY, FLAG_ORPHAN_SPAN};
use crate::parse::time::format_ts;
use std::collections::HashMap;
use std::fmt::Write;

/// Counts per label, in the order the summary prints them.
pub fn label_counts(a: &Analysis) -> Vec<(String, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in &a.requests {
        if let Some(v) = &l.verdict {
            *counts.entry(v.label.as_str()).or_default() += 1;
        }
    }
    let mut v: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn top(values: impl Iterator<Item = Option<String>>, n: usize) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for v in values {
        *counts.entry(v.unwrap_or_else(|| "-".into())).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown: Vec<String> = v
        .iter()
        .take(n)
        .map(|(k, c)| format!("{} ({c})", terminal(k)))
        .collect();
    let more = v.len().saturating_sub(n);
    if more > 0 {
        format!("{}, +{more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

pub fn render(a: &Analysis, elapsed_s: f64) -> String {
    let mut o = String::new();
    let events: u64 = a.files.iter().map(|f| f.events).sum();
    let lines: u64 = a.files.iter().map(|f| f.lines).sum();
    let total = a.requests.len();
    let flag = |f: &str| {
        a.requests
            .iter()
            .filter(|l| l.request.flags.contains(&f))
            .count()
    };
    let _ = writeln!(
        o,
        "tracejoin: {total} requests from {events} events ({lines} lines) in {} inputs, {elapsed_s:.2} s",
        a.files.len()
    );
    let joined = a
        .requests
        .iter()
        .filter(|l| l.request.events.len() > 1)
        .count();
    let _ = writeln!(
        o,
        "  joined: {joined} with several events · {} gateway only · {} without a gateway line · {} with orphan spans · {} events without any id",
        flag(FLAG_GATEWAY_ONLY),
        flag(FLAG_NO_GATEWAY),
        flag(FLAG_ORPHAN_SPAN),
        a.unjoined
    );
    let failed: Vec<_> = a.requests.iter().filter(|l| l.request.failed).collect();
    let pct = |n: usize, d: usize| {
        if d == 0 {
            0.0
        } else {
            100.0 * n as f64 / d as f64
        }
    };
    let _ = writeln!(
        o,
        "\nfailed: {} of {total} ({:.1}%)",
        failed.len(),
        pct(failed.len(), total)
    );
    for (label, count) in label_counts(a) {
        let of_label: Vec<_> = failed
            .iter()
            .filter(|l| l.verdict.as_ref().is_some_and(|v| v.label == label))
            .collect();
        let first = of_label.iter().filter_map(|l| l.request.start).min();
        let last = of_label.iter().filter_map(|l| l.request.start).max();
        let _ = writeln!(
            o,
            "  {label:<10} {count:>7}  {:>5.1}%   first {}   last {}",
            pct(count, failed.len()),
            first.map(format_ts).unwrap_or_else(|| "-".into()),
            last.map(format_ts).unwrap_or_else(|| "-".into()),
        );
        let _ = writeln!(
            o,
            "      rules:     {}",
            top(
                of_label
                    .iter()
                    .map(|l| l.verdict.as_ref().map(|v| v.rule.clone())),
                3
            )
        );
        let _ = writeln!(
            o,
            "      routes:    {}",
            top(
                of_label.iter().map(|l| {
                    let r = &l.request;
                    r.route
                        .clone()
                        .or_else(|| r.path.clone())
                        .map(|p| format!("{} {p}", r.method.as_deref().unwrap_or("-")))
                }),
                3
            )
        );
        let _ = writeln!(
            o,
            "      services:  {}",
            top(of_label.iter().map(|l| l.request.service.clone()), 3)
        );
        let _ = writeln!(
            o,
            "      consumers: {}",
            top(of_label.iter().map(|l| l.request.consumer.clone()), 3)
        );
    }
    if !a.skew.is_empty() {
        let _ = writeln!(
            o,
            "\nclock skew (entry span start − gateway request start, median):"
        );
        for s in &a.skew {
            let _ = writeln!(
                o,
                "  {:<20} {:+.1} ms  (n={})",
                terminal(&s.service),
                s.median_ms,
                s.samples
            );
        }
    }
    let bad: Vec<_> = a.files.iter().filter(|f| f.error_count > 0).collect();
    let _ = writeln!(o, "\ninputs:");
    for f in &a.files {
        let _ = writeln!(
            o,
            "  {:<48} {:<22} {:>8} events  {:>6} errors",
            terminal(&f.name),
            f.format.as_deref().unwrap_or("(none)"),
            f.events,
            f.error_count
        );
    }
    if !bad.is_empty() {
        let lines: u64 = bad.iter().map(|f| f.error_count).sum();
        let _ = writeln!(
            o,
            "\nparse errors: {lines} in {} inputs (details on stderr)",
            bad.len()
        );
    }
    if a.rule_errors > 0 {
        let _ = writeln!(
            o,
            "\nrule errors: {} evaluations failed; first: {}",
            a.rule_errors,
            a.first_rule_error.as_deref().unwrap_or("-")
        );
    }
    o
}

/// `file:line: reason` for the first errors of each input, for stderr.
pub fn render_errors(a: &Analysis) -> String {
    let mut o = String::new();
    for f in a.files.iter().filter(|f| f.error_count > 0) {
        for e in &f.errors {
            if e.line == 0 {
                let _ = writeln!(o, "error: {}: {}", terminal(&f.name), terminal(&e.reason));
            } else {
                let _ = writeln!(
                    o,
                    "error: {}:{}: {}",
                    terminal(&f.name),
                    e.line,
                    terminal(&e.reason)
                );
            }
        }
        let more = f.error_count - f.errors.len() as u64;
        if more > 0 {
            let _ = writeln!(
                o,
                "error: {}: … and {more} more lines with errors",
                terminal(&f.name)
            );
        }
    }
    o
}
