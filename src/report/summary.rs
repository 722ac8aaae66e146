//! The terminal summary of `analyze`: what an on-call engineer reads first.
//! Built incrementally, one labelled request at a time, so it costs no more
//! memory than its counters.

use super::escape::terminal;
use crate::correlate::{templated, Flag};
use crate::event::time::format_ts;
use crate::labelled::{Labelled, RunInfo};
use crate::parse::FileReport;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

#[derive(Debug, Default)]
struct LabelStats {
    count: usize,
    first: Option<i64>,
    last: Option<i64>,
    rules: HashMap<String, usize>,
    routes: HashMap<String, usize>,
    services: HashMap<String, usize>,
    upstreams: HashMap<String, usize>,
    consumers: HashMap<String, usize>,
}

fn bump(m: &mut HashMap<String, usize>, key: Option<&str>) {
    let key = key.unwrap_or("-");
    match m.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            m.insert(key.to_string(), 1);
        }
    }
}

fn unbump(m: &mut HashMap<String, usize>, key: Option<&str>) {
    let key = key.unwrap_or("-");
    if let Some(n) = m.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            m.remove(key);
        }
    }
}

/// What one request added to a [`Summary`], so that a later revision of the
/// same request (live mode) can take it back before it adds its own.
#[derive(Debug, Clone)]
pub struct Contribution {
    multi_event: bool,
    retry: bool,
    flags: Vec<Flag>,
    /// (label, rule, route, service, upstream, consumer) when it failed.
    failed: Option<[Option<String>; 6]>,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub total: usize,
    pub failed: usize,
    multi_event: usize,
    retries: usize,
    flags: HashMap<Flag, usize>,
    labels: BTreeMap<String, LabelStats>,
}

impl Summary {
    /// Takes back what [`Summary::add`] added for an earlier revision of a request.
    pub fn remove(&mut self, c: &Contribution) {
        self.total -= 1;
        if c.multi_event {
            self.multi_event -= 1;
        }
        if c.retry {
            self.retries -= 1;
        }
        for f in &c.flags {
            if let Some(n) = self.flags.get_mut(f) {
                *n -= 1;
            }
        }
        let Some([label, rule, route, service, upstream, consumer]) = &c.failed else {
            return;
        };
        self.failed -= 1;
        let label = label.clone().unwrap_or_default();
        if let Some(s) = self.labels.get_mut(&label) {
            s.count -= 1;
            unbump(&mut s.rules, rule.as_deref());
            unbump(&mut s.routes, route.as_deref());
            unbump(&mut s.services, service.as_deref());
            unbump(&mut s.upstreams, upstream.as_deref());
            unbump(&mut s.consumers, consumer.as_deref());
            if s.count == 0 {
                self.labels.remove(&label);
            }
        }
    }

    pub fn add(&mut self, l: &Labelled) -> Contribution {
        let r = &l.request;
        self.total += 1;
        if r.events.len() > 1 {
            self.multi_event += 1;
        }
        if r.attempt.is_some() {
            self.retries += 1;
        }
        for f in &r.flags {
            *self.flags.entry(*f).or_default() += 1;
        }
        let mut contribution = Contribution {
            multi_event: r.events.len() > 1,
            retry: r.attempt.is_some(),
            flags: r.flags.clone(),
            failed: None,
        };
        let Some(v) = &l.verdict else {
            return contribution;
        };
        self.failed += 1;
        let s = self.labels.entry(v.label.to_string()).or_default();
        s.count += 1;
        if let Some(t) = r.start {
            s.first = Some(s.first.map_or(t, |f| f.min(t)));
            s.last = Some(s.last.map_or(t, |x| x.max(t)));
        }
        bump(&mut s.rules, Some(&v.rule));
        let route = match (r.route.as_deref(), r.path.as_deref()) {
            (Some(route), _) => Some(route.to_string()),
            (None, Some(path)) => Some(templated(path)),
            (None, None) => None,
        }
        .map(|p| format!("{} {p}", r.method.as_deref().unwrap_or("-")));
        bump(&mut s.routes, route.as_deref());
        bump(&mut s.services, r.service.as_deref());
        bump(
            &mut s.upstreams,
            r.gateway_event().and_then(|g| g.upstream_addr.as_deref()),
        );
        bump(&mut s.consumers, r.consumer.as_deref());
        let upstream = r.gateway_event().and_then(|g| g.upstream_addr.clone());
        contribution.failed = Some([
            Some(v.label.to_string()),
            Some(v.rule.clone()),
            route,
            r.service.as_ref().map(|x| x.to_string()),
            upstream.map(|x| x.to_string()),
            r.consumer.as_ref().map(|x| x.to_string()),
        ]);
        contribution
    }

    /// (label, count), most frequent first.
    pub fn label_counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .labels
            .iter()
            .map(|(k, s)| (k.clone(), s.count))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    pub fn render(&self, info: &RunInfo, elapsed_s: f64) -> String {
        let mut o = String::new();
        let events: u64 = info.files.iter().map(|f| f.events).sum();
        let lines: u64 = info.files.iter().map(|f| f.lines).sum();
        let total = self.total;
        let flag = |f: Flag| self.flags.get(&f).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "tracejoin: {total} requests from {events} events ({lines} lines) in {} inputs, {elapsed_s:.2} s",
            info.files.len()
        );
        let _ = writeln!(
            o,
            "  joined: {} with several events · {} gateway only · {} without a gateway line · {} with orphan spans · {} events without any id",
            self.multi_event,
            flag(Flag::GatewayOnly),
            flag(Flag::NoGateway),
            flag(Flag::OrphanSpan),
            info.window.unjoined
        );
        if info.window.late > 0 {
            let _ = writeln!(
                o,
                "  late: {} events arrived after their request had closed and form requests of their own: raise --window (now {} s)",
                info.window.late,
                info.window_ms / 1000
            );
        }
        if info.window.shared_traces > 0 || info.window.reused_ids > 0 {
            let _ = writeln!(
                o,
                "  traces: gateway requests that share a trace id kept apart ({} events placed by request id, span or time); {} retries of a failed request inside its trace (`attempt`, `retry_of`)",
                info.window.shared_traces, self.retries
            );
        }
        if flag(Flag::Recovered) > 0 {
            let _ = writeln!(
                o,
                "  recovered: {} requests succeeded after an error on the way (an error span or exception, a service's error line); flagged `recovered`, not failures",
                flag(Flag::Recovered)
            );
        }
        if info.window.reused_ids > 0 {
            let _ = writeln!(
                o,
                "  reused ids: {} gateway lines carry a request id an earlier line of the same log had; kept apart and flagged `reused_id`",
                info.window.reused_ids
            );
        }
        if info.window.log_joins > 0 {
            let _ = writeln!(
                o,
                "  gateway error logs: {} lines joined to their request by client, request line, upstream and time (marked inferred)",
                info.window.log_joins
            );
        }
        if info.window.inferred > 0 {
            let _ = writeln!(
                o,
                "  inferred: {} joins made without a shared id (--infer-joins; `join` says `inferred`, with a confidence)",
                info.window.inferred
            );
        }
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
            self.failed,
            pct(self.failed, total)
        );
        for (label, count) in self.label_counts() {
            let s = &self.labels[&label];
            let _ = writeln!(
                o,
                "  {label:<10} {count:>7}  {:>5.1}%   first {}   last {}",
                pct(count, self.failed),
                s.first.map(format_ts).unwrap_or_else(|| "-".into()),
                s.last.map(format_ts).unwrap_or_else(|| "-".into()),
            );
            let _ = writeln!(o, "      rules:     {}", top(&s.rules, 3));
            let _ = writeln!(o, "      routes:    {}", top(&s.routes, 3));
            let _ = writeln!(o, "      services:  {}", top(&s.services, 3));
            let _ = writeln!(o, "      upstreams: {}", top(&s.upstreams, 3));
            let _ = writeln!(o, "      consumers: {}", top(&s.consumers, 3));
        }
        if !info.skew.is_empty() {
            let _ = writeln!(
                o,
                "\nclock skew (entry span start − gateway request start, median):"
            );
            for s in &info.skew {
                let _ = writeln!(
                    o,
                    "  {:<20} {:+.1} ms  (n={})",
                    terminal(&s.service),
                    s.median_ms,
                    s.samples
                );
            }
        }
        let _ = writeln!(o, "\ninputs:");
        for f in &info.files {
            let _ = writeln!(
                o,
                "  {:<48} {:<22} {:>8} events  {:>6} errors{}",
                terminal(&f.name),
                f.format.as_deref().unwrap_or("(none)"),
                f.events,
                f.error_count,
                if let Some(w) = f.wrapper {
                    let also: String = f.also.iter().map(|a| format!(", {a}")).collect();
                    format!("  (in {w}{also})")
                } else {
                    String::new()
                } + &if f.context > 0 {
                    format!(
                        "  {:>6} context (the gateway's own lines, no request)",
                        f.context
                    )
                } else {
                    String::new()
                }
            );
        }
        for f in info.files.iter().filter(|f| f.leftover > 0) {
            let _ = writeln!(
                o,
                "  {}: {} lines have words after the format's last field (kept as `tail`; {} gave the request id); paste the gateway's format with --log-format to read them as fields",
                terminal(&f.name),
                f.leftover,
                f.leftover_ids
            );
        }
        let bad: Vec<_> = info.files.iter().filter(|f| f.error_count > 0).collect();
        if !bad.is_empty() {
            let lines: u64 = bad.iter().map(|f| f.error_count).sum();
            let _ = writeln!(
                o,
                "\nparse errors: {lines} in {} inputs (details on stderr)",
                bad.len()
            );
        }
        if info.rule_errors > 0 {
            let _ = writeln!(
                o,
                "\nrule errors: {} evaluations failed; first: {}",
                info.rule_errors,
                info.first_rule_error.as_deref().unwrap_or("-")
            );
        }
        o
    }
}

fn top(counts: &HashMap<String, usize>, n: usize) -> String {
    let mut v: Vec<(&String, &usize)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
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

/// `file:line: reason` for the first errors of each input, for stderr.
pub fn render_errors(files: &[FileReport]) -> String {
    let mut o = String::new();
    for f in files.iter().filter(|f| f.error_count > 0) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn paths_group_by_their_shape() {
        assert_eq!(
            crate::correlate::templated("/v1/orders/8813"),
            "/v1/orders/{id}"
        );
        assert_eq!(
            crate::correlate::templated("/v1/users/cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2/cart"),
            "/v1/users/{id}/cart"
        );
        assert_eq!(crate::correlate::templated("/v2/orders"), "/v2/orders");
        assert_eq!(crate::correlate::templated("/"), "/");
    }
}
