//! Incidents against faults injected into a real stack (`tests/incidents`:
//! nginx → storefront → catalog → Redis, real libraries, the real
//! OpenTelemetry SDK): Redis down for 20 s, the token signing key rotated for
//! 10 s, nginx's rate limit lowered for 15 s, a deploy that breaks one
//! route's response mapping for 15 s, while normal traffic and background
//! failures run. Truth is each fault's interval and origin, and per request
//! the label, origin and services crossed.

use crate::common::*;
use crate::realstack::status_only;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use tracejoin::episodes::{route_of, Detector, Observation, Options};
use tracejoin::labelled::Labelled;

const S: i64 = 1_000_000_000;

struct Fault {
    name: String,
    label: String,
    origin: String,
    start: i64,
    end: i64,
}

struct Row {
    request_id: String,
    status: u16,
    label: String,
    origin: String,
    /// The services from the gateway to the origin.
    path: Vec<String>,
    cause: String,
    boundary: bool,
}

fn read_faults(path: &Path) -> Vec<Fault> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ns = |x: &Value| (x.as_f64().unwrap() * 1e9) as i64;
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| Fault {
            name: f["name"].as_str().unwrap().into(),
            label: f["label"].as_str().unwrap().into(),
            origin: f["origin"].as_str().unwrap().into(),
            start: ns(&f["start"]),
            end: ns(&f["end"]),
        })
        .collect()
}

fn read_rows(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let (id, status, label, origin, path, cause, boundary) = (
        col("request_id"),
        col("status"),
        col("label"),
        col("origin"),
        col("service_path"),
        col("cause"),
        col("boundary"),
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let origin = f[origin].to_string();
            // The blame path ends at the origin: a service called after it
            // (storefront's call to catalog before its own mapping broke) is
            // not on the way to the failure.
            let mut services: Vec<String> = f[path].split('>').map(str::to_string).collect();
            if let Some(i) = services.iter().position(|s| *s == origin) {
                services.truncate(i + 1);
            }
            Row {
                request_id: f[id].into(),
                status: f[status].parse().unwrap_or(0),
                label: f[label].into(),
                origin,
                path: services,
                cause: f[cause].into(),
                boundary: f[boundary] == "1",
            }
        })
        .collect()
}

fn ts(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

/// The words each fault's own software says, which the verdict must cite:
/// its library's exception, or nginx's error log line (or, when that line
/// could not be joined, its `$limit_req_status`).
fn cause_words(fault: &str) -> &'static [&'static str] {
    match fault {
        "redis-down" => &["redis.exceptions.ConnectionError"],
        "key-rotation" => &["jwt.exceptions.InvalidSignatureError: Signature verification failed"],
        "rate-limit" => &["limiting requests", "limit_req=REJECTED"],
        "bad-deploy" => &["fastapi.exceptions.ResponseValidationError"],
        other => panic!("no words for {other}"),
    }
}

fn says(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Episodes as a status-only table would find them: the same detector fed
/// the label a status code implies and no origin.
fn baseline_episodes(requests: &[Labelled]) -> Vec<tracejoin::episodes::Episode> {
    let mut d = Detector::default();
    for l in requests {
        let r = &l.request;
        d.add(&Observation {
            start: r.start,
            duration_ms: r.duration_ms,
            failed: r.failed,
            route: route_of(r.route.as_deref(), r.path.as_deref()),
            label: r
                .failed
                .then(|| status_only(r.status.unwrap_or(0)).parse().ok())
                .flatten(),
            ..Default::default()
        });
    }
    d.episodes(&Options::default())
}

#[test]
fn injected_faults_come_out_as_episodes_with_their_origins_and_blame_paths() {
    let Some(python) = realstack_python() else {
        return;
    };
    if !Path::new("/usr/bin/redis-server").exists() {
        skip_or_fail::<()>("redis-server (Debian package redis-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, truth) = (dir.path().join("out"), dir.path().join("truth"));
    let path = format!("{}:/usr/sbin", std::env::var("PATH").unwrap_or_default());
    let status = std::process::Command::new(python)
        .arg(repo().join("tests/incidents/run.py"))
        .args([&out, &truth])
        .env("PATH", path)
        .status()
        .expect("tests/incidents/run.py runs");
    assert!(status.success(), "tests/incidents/run.py failed");
    let faults = read_faults(&truth.join("faults.json"));
    let rows = read_rows(&truth.join("requests.csv"));
    assert_eq!(faults.len(), 4);
    assert!(rows.len() > 1500, "{} requests", rows.len());

    // 1. Every failed request: its label, its origin, the services on the
    // way there, and evidence that carries the cause.
    let a = analyze(&[&out]);
    assert_eq!(a.input_error_count(), 0, "{:?}", a.info.files);
    let by_id: HashMap<&str, &Labelled> = a
        .requests
        .iter()
        .flat_map(|l| l.request.ids.iter().map(move |i| (i.as_str(), l)))
        .collect();
    // (label right, origin right, path right, baseline label right, baseline origin right), per cause
    let mut score: HashMap<&str, [usize; 6]> = HashMap::new();
    let mut wrong = Vec::new();
    for r in rows.iter().filter(|r| !r.label.is_empty() && !r.boundary) {
        let l = by_id
            .get(r.request_id.as_str())
            .unwrap_or_else(|| panic!("request {} not found", r.request_id));
        let v = l.verdict.as_ref().expect("a failed request has a verdict");
        let c = v.cause.as_ref();
        let label_ok = v.label.as_str() == r.label;
        let origin_ok = c.is_some_and(|c| c.service == r.origin);
        let path_ok = c.is_some_and(|c| c.path == r.path);
        // A status-only table names no origin; the best it can say is "the
        // service the gateway called".
        let base_label = status_only(r.status) == r.label;
        let base_origin = r.origin == "storefront";
        let s = score.entry(r.cause.as_str()).or_default();
        for (i, ok) in [true, label_ok, origin_ok, path_ok, base_label, base_origin]
            .into_iter()
            .enumerate()
        {
            s[i] += ok as usize;
        }
        if !(label_ok && origin_ok && path_ok) {
            wrong.push(format!(
                "{} {}: want {} at {} via {:?}, got {} {:?}",
                r.cause, r.request_id, r.label, r.origin, r.path, v.label, c
            ));
        }
        if r.cause != "background" {
            let words = cause_words(&r.cause);
            assert!(
                says(&v.explanation, words) || v.evidence.iter().any(|e| says(&e.detail, words)),
                "{}: the evidence does not say {words:?}: {v:?}",
                r.cause
            );
            // The origin reference points at an event of this request.
            let origin = c.and_then(|c| c.origin.as_deref()).unwrap();
            assert!(
                l.request
                    .events
                    .iter()
                    .any(|e| e.origin.as_ref().is_some_and(|o| o.to_string() == origin)),
                "{origin} is not an event of {}",
                r.request_id
            );
        }
    }
    let mut causes: Vec<_> = score.iter().collect();
    causes.sort();
    eprintln!("cause: failed / label / origin / path right (status-only baseline: label / origin)");
    for (cause, s) in &causes {
        eprintln!(
            "  {cause:<13} {:>4} / {:>4} / {:>4} / {:>4}   ({:>4} / {:>4})",
            s[0], s[1], s[2], s[3], s[4], s[5]
        );
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let faulted: [usize; 6] =
        causes
            .iter()
            .filter(|(c, _)| **c != "background")
            .fold([0; 6], |mut acc, (_, s)| {
                for i in 0..6 {
                    acc[i] += s[i];
                }
                acc
            });
    // Status misleads on two of the four: a 503 from the rate limit and a
    // 500 from a broken mapping; the origin on three.
    assert!(faulted[1] >= faulted[4] + faulted[0] / 5, "{faulted:?}");
    assert!(faulted[2] >= faulted[5] + faulted[0] / 2, "{faulted:?}");

    // 2. The four faults are the four episodes: origin, label, start and end
    // within a second; the background makes none.
    let o = tracejoin(&["incidents", "--json", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let episodes: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for e in &episodes {
        eprintln!(
            "episode {} {} {} {} → {} ({} failed)",
            e["episode"], e["label"], e["origin"]["service"], e["start"], e["end"], e["requests"]
        );
    }
    for f in &faults {
        eprintln!(
            "fault {} {} {} {} → {}",
            f.name,
            f.label,
            f.origin,
            tracejoin::event::time::format_ts(f.start),
            tracejoin::event::time::format_ts(f.end)
        );
    }
    assert_eq!(episodes.len(), faults.len(), "{}", stdout(&o));
    for f in &faults {
        let e = episodes
            .iter()
            .find(|e| e["label"] == f.label.as_str() && e["origin"]["service"] == f.origin.as_str())
            .unwrap_or_else(|| panic!("no episode for {}", f.name));
        let (start, end) = (
            ts(e["start"].as_str().unwrap()),
            ts(e["end"].as_str().unwrap()),
        );
        assert!(
            (start - f.start).abs() <= S,
            "{}: start {} against {}",
            f.name,
            e["start"],
            f.start
        );
        assert!(
            (end - f.end).abs() <= S,
            "{}: end {} against {}",
            f.name,
            e["end"],
            f.end
        );
        let peak = ts(e["peak"].as_str().unwrap());
        assert!(
            peak >= start - S && peak <= end,
            "{}: peak {}",
            f.name,
            e["peak"]
        );
        let words = cause_words(&f.name);
        let typical = &e["evidence"]["typical"];
        assert!(
            says(typical["explanation"].as_str().unwrap(), words),
            "{}: typical evidence {typical}",
            f.name
        );
        // Its failed requests are the fault's, give or take its edges.
        let truth_n = rows.iter().filter(|r| r.cause == f.name).count() as u64;
        let n = e["requests"].as_u64().unwrap();
        assert!(
            n.abs_diff(truth_n) <= truth_n / 20 + 2,
            "{}: {n} failed against {truth_n}",
            f.name
        );
    }
    // The status-only table, on the same run: no origin at all, and the
    // 503s and 500s under the wrong label.
    let base = baseline_episodes(&a.requests);
    let base_right = faults
        .iter()
        .filter(|f| {
            base.iter().any(|e| {
                e.label.as_str() == f.label
                    && (e.start_ns - f.start).abs() <= S
                    && (e.end_ns - f.end).abs() <= S
            })
        })
        .count();
    eprintln!(
        "status-only episodes: {} ({} of the 4 faults with label and boundaries right, none with an origin)",
        base.len(),
        base_right
    );
    assert!(base_right < faults.len());

    // 3. The same from the store, and the postmortem draft's numbers.
    let store = dir.path().join("store");
    write_store(&out, &store);
    let s = tracejoin(&["incidents", "--json", "--store", store.to_str().unwrap()]);
    assert!(s.status.success(), "{}", stderr(&s));
    assert_eq!(
        stdout(&s),
        stdout(&o),
        "episodes from the store differ from the files'"
    );
    let md = tracejoin(&["report", "--store", store.to_str().unwrap(), "--markdown"]);
    assert!(md.status.success(), "{}", stderr(&md));
    let md = stdout(&md);
    std::fs::write(repo().join("target/incidents-draft.md"), &md).unwrap();
    assert!(
        md.starts_with("# Postmortem draft\n\n## What happened\n"),
        "{md}"
    );
    let rows_md: Vec<Vec<&str>> = md
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes().get(2).is_some_and(u8::is_ascii_digit))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert_eq!(rows_md.len(), episodes.len(), "{md}");
    for (row, e) in rows_md.iter().zip(&episodes) {
        assert_eq!(row[0], e["episode"].to_string());
        assert_eq!(row[1], e["start"].as_str().unwrap());
        assert_eq!(row[4], e["label"].as_str().unwrap());
        assert!(
            row[5].contains(e["origin"]["service"].as_str().unwrap()),
            "{row:?}"
        );
        assert_eq!(row[6], e["requests"].to_string());
        assert_eq!(row[7], e["total_requests"].to_string());
    }
    let in_episodes: u64 = episodes
        .iter()
        .map(|e| e["requests"].as_u64().unwrap())
        .sum();
    let failed = a.requests.iter().filter(|l| l.request.failed).count();
    assert!(
        md.contains(&format!(
            "**Impact:** {in_episodes} of the {failed} failed requests"
        )),
        "{md}"
    );
    for f in &faults {
        assert!(
            says(&md, cause_words(&f.name)),
            "the draft does not cite {}",
            f.name
        );
    }
    assert!(md.contains("## What we do not know"), "{md}");
    // The HTML page opens the same way: the episodes on a time axis, each
    // with its origin; example timelines draw the blame path and outline
    // the origin's span.
    let page = tracejoin(&["report", "--store", store.to_str().unwrap()]);
    assert!(page.status.success(), "{}", stderr(&page));
    let page = stdout(&page);
    let what = page
        .find("<h2>What happened</h2>")
        .expect("the draft opens the page");
    assert!(what < page.find("<h2>Failures by label</h2>").unwrap());
    assert!(page.contains("<svg id=\"episodes\""));
    assert_eq!(
        page.matches("<div class=\"episode\">").count(),
        episodes.len()
    );
    assert!(page.contains("blame path: <b>nginx → storefront → catalog → redis</b>"));
    assert!(page.contains("class=\"origin\""));
}
