//! `tracejoin diff`: two sides (time windows of one store, or two stores)
//! compared by label mix and by failing route — "what changed after the
//! 14:05 deploy" in one command.

use super::escape::markdown_cell as md;
use super::postmortem::LABELS;
use crate::correlate::templated;
use crate::query::TimeRange;
use crate::store::Store;
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write;

pub struct Side {
    pub name: String,
    pub requests: u64,
    pub labels: [u64; 6],
    /// route → (requests, failures)
    pub routes: BTreeMap<String, (u64, u64)>,
}

impl Side {
    pub fn of(store: &Store, range: TimeRange, name: String) -> Result<Side> {
        let df = crate::query::run(
            store,
            "SELECT failed, label, route, path FROM requests",
            range,
        )?;
        let failed = df.column("failed")?.bool()?;
        let (label, route, path) = (
            df.column("label")?.str()?,
            df.column("route")?.str()?,
            df.column("path")?.str()?,
        );
        let mut side = Side {
            name,
            requests: df.height() as u64,
            labels: [0; 6],
            routes: BTreeMap::new(),
        };
        for i in 0..df.height() {
            let r = route
                .get(i)
                .map(str::to_string)
                .or_else(|| path.get(i).map(templated))
                .unwrap_or_else(|| "-".into());
            let e = side.routes.entry(r).or_insert((0, 0));
            e.0 += 1;
            if failed.get(i).unwrap_or(false) {
                e.1 += 1;
                let l = label.get(i).unwrap_or("unknown");
                side.labels[LABELS.iter().position(|(n, _)| *n == l).unwrap_or(5)] += 1;
            }
        }
        Ok(side)
    }

    fn failed(&self) -> u64 {
        self.labels.iter().sum()
    }
}

/// (route, before (requests, failed), after (requests, failed), change in points)
pub type RouteChange = (String, (u64, u64), (u64, u64), f64);

pub struct Diff {
    pub before: Side,
    pub after: Side,
}

fn rate(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 * 100.0 / d as f64
    }
}

impl Diff {
    pub fn new(before: Side, after: Side) -> Diff {
        Diff { before, after }
    }

    /// (label, before n, before % of requests, after n, after %, change in points)
    pub fn label_rows(&self) -> Vec<(&'static str, u64, f64, u64, f64, f64)> {
        let (b, a) = (&self.before, &self.after);
        LABELS
            .iter()
            .enumerate()
            .filter(|(i, _)| b.labels[*i] + a.labels[*i] > 0)
            .map(|(i, (l, _))| {
                let (rb, ra) = (rate(b.labels[i], b.requests), rate(a.labels[i], a.requests));
                (*l, b.labels[i], rb, a.labels[i], ra, ra - rb)
            })
            .collect()
    }

    /// Routes seen on both sides whose failure rate moved most: (route,
    /// before failed/requests, after failed/requests, change in points).
    pub fn route_rows(&self) -> Vec<RouteChange> {
        let mut rows: Vec<_> = self
            .before
            .routes
            .iter()
            .filter_map(|(r, &b)| {
                let a = *self.after.routes.get(r)?;
                (b.1 + a.1 > 0).then(|| (r.clone(), b, a, rate(a.1, a.0) - rate(b.1, b.0)))
            })
            .collect();
        rows.sort_by(|x, y| y.3.abs().total_cmp(&x.3.abs()).then(x.0.cmp(&y.0)));
        rows.truncate(15);
        rows
    }

    /// Failing routes only one side saw: (route, failed, requests), most failures first.
    pub fn only(&self, after: bool) -> Vec<(String, u64, u64)> {
        let (this, other) = if after {
            (&self.after, &self.before)
        } else {
            (&self.before, &self.after)
        };
        let mut rows: Vec<_> = this
            .routes
            .iter()
            .filter(|(r, v)| v.1 > 0 && !other.routes.contains_key(*r))
            .map(|(r, v)| (r.clone(), v.1, v.0))
            .collect();
        rows.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        rows.truncate(15);
        rows
    }

    pub fn text(&self) -> String {
        let (b, a) = (&self.before, &self.after);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} requests, {} failed ({:.1}%)\n{}: {} requests, {} failed ({:.1}%)\n",
            b.name,
            b.requests,
            b.failed(),
            rate(b.failed(), b.requests),
            a.name,
            a.requests,
            a.failed(),
            rate(a.failed(), a.requests)
        );
        let _ = writeln!(
            s,
            "{:<10} {:>16} {:>16} {:>9}",
            "label", "before", "after", "change"
        );
        for (l, nb, rb, na, ra, d) in self.label_rows() {
            let _ = writeln!(
                s,
                "{l:<10} {nb:>7} ({rb:>5.1}%) {na:>7} ({ra:>5.1}%) {d:>+8.1}pt"
            );
        }
        let _ = writeln!(
            s,
            "\nroutes on both sides, by change in failure rate (failed/requests):"
        );
        for (r, bb, aa, d) in self.route_rows() {
            let _ = writeln!(
                s,
                "  {:<40} {:>5}/{:<6} → {:>5}/{:<6} {d:>+7.1}pt",
                super::escape::terminal(&r),
                bb.1,
                bb.0,
                aa.1,
                aa.0
            );
        }
        for (after, title) in [(true, "failing only after"), (false, "failing only before")] {
            let rows = self.only(after);
            if !rows.is_empty() {
                let _ = writeln!(s, "\n{title}:");
                for (r, f, n) in rows {
                    let _ = writeln!(s, "  {:<40} {f:>5}/{n:<6}", super::escape::terminal(&r));
                }
            }
        }
        s
    }

    pub fn markdown(&self) -> String {
        let (b, a) = (&self.before, &self.after);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| label | {} | {} | change |\n|---|---:|---:|---:|",
            md(&b.name),
            md(&a.name)
        );
        for (l, nb, rb, na, ra, d) in self.label_rows() {
            let _ = writeln!(
                s,
                "| {l} | {nb} ({rb:.1}%) | {na} ({ra:.1}%) | {d:+.1} pt |"
            );
        }
        let _ = writeln!(s, "\n| route | before failed/requests | after failed/requests | change |\n|---|---:|---:|---:|");
        for (r, bb, aa, d) in self.route_rows() {
            let _ = writeln!(
                s,
                "| `{}` | {}/{} | {}/{} | {d:+.1} pt |",
                md(&r),
                bb.1,
                bb.0,
                aa.1,
                aa.0
            );
        }
        for (after, title) in [(true, "failing only after"), (false, "failing only before")] {
            let rows = self.only(after);
            if !rows.is_empty() {
                let _ = writeln!(
                    s,
                    "\n{title}: {}",
                    rows.iter()
                        .map(|(r, f, n)| format!("`{}` {f}/{n}", md(r)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        s
    }
}
