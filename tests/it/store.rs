//! The Parquet store as a postmortem author uses it: `analyze --out` on the
//! real-stack incident, then `query`, `timeline --store`, `report`, `diff`;
//! DuckDB reads the files as they are; the report opens in real Chromium.

use crate::common::{query, repo, sample_logs_copy, stderr, stdout, tracejoin, write_store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn analyze_json(dir: &Path) -> Vec<Value> {
    let out = tracejoin(&["analyze", "--json", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs a Python script of the real-stack venv (DuckDB); its stdout.
fn run_python(python: &str, script: &str) -> std::process::Output {
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = glob::glob(&format!("{}/**/*.parquet", dir.display()))
        .unwrap()
        .flatten()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn sql_over_the_store_agrees_with_analyze_and_joins_requests_to_their_evidence() {
    let inputs = sample_logs_copy(&[]);
    let store = tempfile::tempdir().unwrap();
    write_store(inputs.path(), store.path());
    let lines = analyze_json(inputs.path());

    // Counts by label equal what analyze says.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines.iter().filter(|l| l["failed"] == true) {
        *expected
            .entry(l["label"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let rows = query(
        store.path(),
        "SELECT label, count(*) AS n FROM requests WHERE failed GROUP BY label ORDER BY label",
    );
    let got: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        got.values().sum::<u64>(),
        132,
        "the bundled incident's failures"
    );
    let total = query(
        store.path(),
        "SELECT count(*) AS n, sum(events) AS e FROM requests",
    );
    assert_eq!(total[0]["n"], lines.len());
    let events = query(store.path(), "SELECT count(*) AS n FROM events");
    assert_eq!(
        events[0]["n"], total[0]["e"],
        "every event of every request is stored"
    );

    // requests ⋈ events gives the evidence lines of each verdict.
    let joined = query(
        store.path(),
        "SELECT r.request_id, e.origin, e.source, e.message FROM requests r \
         JOIN events e ON r.request_key = e.request_key \
         WHERE r.rule = 'backend-dependency-failure' ORDER BY r.request_id",
    );
    let mut checked = 0;
    for l in lines
        .iter()
        .filter(|l| l["rule"] == "backend-dependency-failure")
    {
        let rid = l["request_id"].as_str().unwrap();
        let origins: Vec<&str> = joined
            .iter()
            .filter(|j| j["request_id"] == rid)
            .filter_map(|j| j["origin"].as_str())
            .collect();
        for ev in l["evidence"].as_array().unwrap() {
            let origin = ev["origin"].as_str().unwrap();
            assert!(
                origins
                    .iter()
                    .any(|o| o == &origin || o.starts_with(&format!("{origin}#"))),
                "{rid}: evidence {origin} not among its events {origins:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} evidence lines checked");

    // Time filters, and the Hive columns.
    let late = query(
        store.path(),
        "SELECT count(*) AS n FROM requests WHERE date = '2026-11-25' AND hour = 21",
    );
    assert_eq!(late[0]["n"], lines.len());
    let out = tracejoin(&[
        "query",
        "--store",
        store.path().to_str().unwrap(),
        "--format",
        "csv",
        "--since",
        "2026-11-25T21:09:41Z",
        "SELECT count(*) AS n FROM requests",
    ]);
    let n: usize = stdout(&out).lines().nth(1).unwrap().parse().unwrap();
    let after = lines
        .iter()
        .filter(|l| l["start"].as_str().unwrap() >= "2026-11-25T21:09:41")
        .count();
    assert_eq!(n, after);
}

#[test]
fn bad_sql_is_a_clear_error_not_a_panic() {
    let store = tempfile::tempdir().unwrap();
    write_store(&repo().join("sample-logs/gateway"), store.path());
    for (sql, says) in [
        ("SELEC label FROM requests", "Line: 1, Column: 1"),
        ("SELECT nope FROM requests", "nope"),
        ("SELECT * FROM nothing", "nothing"),
    ] {
        let out = tracejoin(&["query", "--store", store.path().to_str().unwrap(), sql]);
        assert_eq!(out.status.code(), Some(2), "{sql}");
        let err = stderr(&out);
        assert!(
            err.contains("tracejoin: error:") && err.contains(says),
            "{sql}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = tracejoin(&["query", "--store", "/nonexistent", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a tracejoin store"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_store_file_that_cannot_be_written_fails_the_run_naming_it_and_the_run_is_not_listed() {
    // Files are written on the store's writer thread; its error must still
    // end the run, and the manifest must not list a run with missing files.
    let store = tempfile::tempdir().unwrap();
    std::fs::write(store.path().join("requests"), "in the way").unwrap();
    let out = tracejoin(&[
        "analyze",
        repo().join("sample-logs").to_str().unwrap(),
        "--out",
        store.path().to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("cannot write the store") && err.contains("requests/date="),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let manifest = std::fs::read_to_string(store.path().join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        manifest["runs"].as_array().map(Vec::len),
        Some(0),
        "{manifest}"
    );
}

#[test]
fn rewriting_a_run_is_idempotent_and_a_new_time_range_adds_partitions() {
    let inputs = sample_logs_copy(&[]);
    let store = tempfile::tempdir().unwrap();
    write_store(inputs.path(), store.path());
    let files = parquet_files(store.path());
    write_store(inputs.path(), store.path());
    assert_eq!(
        parquet_files(store.path()),
        files,
        "same inputs, same files"
    );
    let n = query(store.path(), "SELECT count(*) AS n FROM requests")[0]["n"]
        .as_u64()
        .unwrap();
    assert_eq!(n, 300);

    // Two hours later: the same gateway log shifted in time (and given new ids).
    let later = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(inputs.path().join("gateway/access.log")).unwrap();
    let shifted: String = text
        .lines()
        .map(|l| {
            let (head, msec) = l.rsplit_once("msec=").unwrap();
            let t: f64 = msec.parse().unwrap();
            format!(
                "{}msec={:.3}\n",
                head.replace("rid=", "rid=later").replace(":21:0", ":23:0"),
                t + 7200.0
            )
        })
        .collect();
    std::fs::write(later.path().join("access.log"), shifted).unwrap();
    write_store(later.path(), store.path());
    assert!(store
        .path()
        .join("requests/date=2026-11-25/hour=23")
        .is_dir());
    let by_hour = query(
        store.path(),
        "SELECT hour, count(*) AS n FROM requests GROUP BY hour ORDER BY hour",
    );
    assert_eq!(by_hour.len(), 2, "{by_hour:?}");
    assert_eq!(by_hour[0]["n"], 300);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(store.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["schema_version"], 2);
    let runs = manifest["runs"].as_array().unwrap();
    assert!(runs.iter().all(|r| r["schema_version"] == 2), "{runs:?}");
    assert_eq!(
        runs.len(),
        2,
        "one entry per run, the rewritten one replaced"
    );
    let loaded = stdout(&tracejoin(&["rules", "list"])).lines().count() - 1;
    assert_eq!(runs[0]["rules"].as_array().unwrap().len(), loaded);
    assert_eq!(runs[0]["rule_pack_hash"].as_str().unwrap().len(), 64);
    assert_eq!(runs[0]["inputs"].as_array().unwrap().len(), 5);
}

#[test]
fn timeline_from_the_store_matches_timeline_from_the_files() {
    let inputs = sample_logs_copy(&[]);
    let store = tempfile::tempdir().unwrap();
    write_store(inputs.path(), store.path());
    let lines = analyze_json(inputs.path());
    // A request with spans, a backend line and a verdict, found by its trace id.
    let l = lines
        .iter()
        .find(|l| {
            l["rule"] == "backend-dependency-failure" && l["sources"].as_array().unwrap().len() >= 3
        })
        .unwrap();
    let trace = l["trace_id"].as_str().unwrap();
    let from_store = tracejoin(&[
        "timeline",
        trace,
        "--store",
        store.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(from_store.status.success(), "{}", stderr(&from_store));
    let s: Value = serde_json::from_str(stdout(&from_store).trim()).unwrap();
    for k in [
        "request_id",
        "trace_id",
        "ids",
        "label",
        "rule",
        "explanation",
        "evidence",
        "events",
        "sources",
        "status",
        "start",
        "flags",
    ] {
        assert_eq!(s[k], l[k], "{k}");
    }
    let text = tracejoin(&[
        "timeline",
        l["request_id"].as_str().unwrap(),
        "--store",
        store.path().to_str().unwrap(),
    ]);
    let text = stdout(&text);
    assert!(
        text.contains("verdict: upstream (rule backend-dependency-failure)"),
        "{text}"
    );
    assert!(text.contains("spans:"), "the waterfall: {text}");
    let missing = tracejoin(&[
        "timeline",
        "no-such-id",
        "--store",
        store.path().to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn duckdb_reads_the_store_as_it_is() {
    let Some(python) = crate::common::realstack_python() else {
        return;
    };
    let inputs = sample_logs_copy(&[]);
    let store = tempfile::tempdir().unwrap();
    write_store(inputs.path(), store.path());
    let script = format!(
        "import duckdb, json\n\
         d = '{}'\n\
         r = duckdb.sql(f\"SELECT label, count(*) FROM read_parquet('{{d}}/requests/**/*.parquet', hive_partitioning=true) WHERE failed GROUP BY label ORDER BY label\").fetchall()\n\
         e = duckdb.sql(f\"SELECT count(*) FROM read_parquet('{{d}}/events/**/*.parquet', hive_partitioning=true) e JOIN read_parquet('{{d}}/requests/**/*.parquet', hive_partitioning=true) r USING (request_key) WHERE r.label = 'upstream' AND e.source = 'span'\").fetchall()[0]\n\
         h = duckdb.sql(f\"SELECT DISTINCT date, hour, typeof(start) FROM read_parquet('{{d}}/requests/**/*.parquet', hive_partitioning=true)\").fetchall()\n\
         print(json.dumps({{'labels': dict(r), 'upstream_spans': e[0], 'hive': [str(x) for x in h[0]]}}))\n",
        store.path().display()
    );
    let out = run_python(&python, &script);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = query(
        store.path(),
        "SELECT label, count(*) AS n FROM requests WHERE failed GROUP BY label",
    );
    for r in rows {
        assert_eq!(v["labels"][r["label"].as_str().unwrap()], r["n"], "{v}");
    }
    assert!(v["upstream_spans"].as_u64().unwrap() > 10, "{v}");
    assert_eq!(v["hive"][0], "2026-11-25");
    assert_eq!(v["hive"][1], "21");
    assert!(
        v["hive"][2].as_str().unwrap().starts_with("TIMESTAMP"),
        "{v}"
    );
}

/// The incident plus one failed request whose path carries markup.
fn incident_with_markup() -> tempfile::TempDir {
    let inputs = sample_logs_copy(&[]);
    let access = inputs.path().join("gateway/access.log");
    let mut text = std::fs::read_to_string(&access).unwrap();
    text.insert_str(0, "127.0.0.1 - - [25/Nov/2026:21:09:39 +0000] \"GET /v1/<script>alert('x')</script> HTTP/1.1\" 404 0 \"-\" \"evil\" rid=markup0000000000000000000000000001 rt=0.000 uct=\"-\" urt=\"-\" us=\"-\" ua=\"-\" xrid=- tp=- lrs=- consumer=mallory host=127.0.0.1 msec=1795640979.001\n");
    std::fs::write(&access, text).unwrap();
    inputs
}

#[test]
fn the_markdown_report_and_diff_answer_the_postmortem_questions() {
    let inputs = incident_with_markup();
    let store = tempfile::tempdir().unwrap();
    write_store(inputs.path(), store.path());
    let out = tracejoin(&[
        "report",
        "--store",
        store.path().to_str().unwrap(),
        "--markdown",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("301 requests, **133 failed"), "{md}");
    assert!(md.contains("| auth | 48 |"), "{md}");
    // Markup is escaped in the text (Markdown renders HTML); inside fenced blocks it is literal.
    let prose: String = md.split("```").step_by(2).collect();
    assert!(
        prose.contains("&lt;script&gt;") && !prose.contains("<script>"),
        "markup escaped: {md}"
    );
    let out = tracejoin(&[
        "diff",
        "--store",
        store.path().to_str().unwrap(),
        "--at",
        "2026-11-25T21:09:40Z",
        "--window",
        "10m",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = stdout(&out);
    // "NAME: N requests, F failed (P%)" on the first two lines: F of each window.
    let failed_on = |line: usize| -> u64 {
        let l = d.lines().nth(line).unwrap();
        l.split(", ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (before, after) = (failed_on(0), failed_on(1));
    let until = tracejoin(&[
        "query",
        "--store",
        store.path().to_str().unwrap(),
        "--format",
        "csv",
        "--until",
        "2026-11-25T21:09:40Z",
        "SELECT count(*) AS n FROM requests WHERE failed",
    ]);
    let expected_before: u64 = stdout(&until).lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(before, expected_before, "{d}");
    let total = query(
        store.path(),
        "SELECT count(*) AS n FROM requests WHERE failed",
    )[0]["n"]
        .as_u64()
        .unwrap();
    assert_eq!(before + after, total, "{d}");
    assert!(d.contains("upstream"), "{d}");
}

#[test]
fn the_html_report_renders_in_chromium_with_its_charts_and_escaped_log_text() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium.or_else(|| crate::common::skip_or_fail("chromium")) else {
        return;
    };
    let inputs = incident_with_markup();
    let store = tempfile::tempdir().unwrap();
    write_store(inputs.path(), store.path());
    let html = store.path().join("report.html");
    let out = tracejoin(&[
        "report",
        "--store",
        store.path().to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "self-contained"
    );
    assert!(
        !page.contains("<script"),
        "no script at all, and log text escaped"
    );

    let profile = tempfile::tempdir().unwrap();
    let shot = repo().join("target/report-screenshot.png");
    let run = |extra: &[&str]| {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap()
    };
    let dom = run(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(
        !log.contains("CONSOLE") && !log.contains("Uncaught"),
        "console errors: {log}"
    );
    // Chromium parsed it: the chart is an SVG with one bar per label and bucket.
    assert!(
        dom_text.contains("<svg id=\"failures-over-time\""),
        "{dom_text}"
    );
    assert!(dom_text.matches("class=\"bar\"").count() >= 10);
    assert!(
        dom_text.matches("class=\"waterfall\"").count() >= 10,
        "example timelines"
    );
    assert!(dom_text.contains("<table id=\"rules\""));
    // The path with markup is text in the DOM, not an element.
    assert!(
        dom_text.contains("/v1/&lt;script&gt;alert('x')&lt;/script&gt;"),
        "escaped text"
    );
    assert!(!dom_text.contains("<script>alert"), "never an element");
    let png = run(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1200,2400",
    ]);
    assert!(png.status.success());
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot was taken"
    );
}

/// A store written before a column existed (here: the events' `error_*`
/// columns, removed with DuckDB from every events file) is still read: the
/// columns are null, queries and `timeline --store` work.
#[test]
fn a_store_written_before_a_column_existed_reads_it_as_null() {
    let Some(python) = crate::common::realstack_python() else {
        return;
    };
    let inputs = sample_logs_copy(&[]);
    let store = tempfile::tempdir().unwrap();
    write_store(inputs.path(), store.path());
    let script = format!(
        "import duckdb, glob\n\
         for f in glob.glob('{}/events/**/*.parquet', recursive=True):\n\
         \x20   duckdb.sql(f\"COPY (SELECT * EXCLUDE (error_type, error_message, error_stack) FROM read_parquet('{{f}}', hive_partitioning=false)) TO '{{f}}.old' (FORMAT parquet)\")\n\
         \x20   import os; os.replace(f + '.old', f)\n\
         \x20   assert 'error_type' not in [c[0] for c in duckdb.sql(f\"DESCRIBE SELECT * FROM read_parquet('{{f}}')\").fetchall()]\n",
        store.path().display()
    );
    run_python(&python, &script);
    let rows = query(
        store.path(),
        "SELECT count(*) AS n, count(error_type) AS typed FROM events",
    );
    assert!(rows[0]["n"].as_u64().unwrap() > 900, "{rows:?}");
    assert_eq!(rows[0]["typed"], 0);
    let id = "474713c22c411e2d06d2743f520357bc";
    let t = tracejoin(&["timeline", id, "--store", store.path().to_str().unwrap()]);
    assert!(t.status.success(), "{}", stderr(&t));
    assert!(stdout(&t).contains("spans:"), "{}", stdout(&t));
}

/// nginx combined + `rid=` lines, all inside one hour: `n` requests.
fn nginx_lines(n: usize, tag: &str) -> String {
    let mut s = String::with_capacity(n * 160);
    for i in 0..n {
        let status = if i % 10 == 0 { 502 } else { 200 };
        s.push_str(&format!(
            "10.0.0.{} - - [25/Nov/2026:21:{:02}:{:02} +0000] \"GET /v1/{tag}/{i} HTTP/1.1\" {status} 12 \"-\" \"load\" rid={tag}{i:012x} rt=0.004 urt=\"0.004\" us=\"{status}\"\n",
            i % 250,
            10 + (i / 60) % 40,
            i % 60
        ));
    }
    s
}

fn count_requests(store: &Path) -> i64 {
    query(store, "select count(*) as n from requests")[0]["n"]
        .as_i64()
        .unwrap()
}

/// `kill -9` during `analyze --out`: the files the run had finished are not
/// read (the run is not in the manifest), its half-written file is never
/// seen, the store still answers, and the next run completes.
#[test]
fn a_run_killed_mid_write_leaves_nothing_a_reader_sees_and_the_next_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = dir.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::write(first.join("access.log"), nginx_lines(100, "f")).unwrap();
    write_store(&first, &store);
    let before = count_requests(&store);
    // Enough requests in one hour for the writer to flush partitions mid-run.
    let big = dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(big.join("access.log"), nginx_lines(260_000, "k")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tracejoin"))
        .args([
            "analyze",
            big.to_str().unwrap(),
            "--out",
            store.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as it has finished a file of its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let initial = parquet_files(&store);
    let ours = |p: &String| !initial.contains(p);
    let mut wrote = false;
    while std::time::Instant::now() < deadline {
        // A finished file of this run (a partition flushed mid-run).
        if parquet_files(&store).iter().any(ours) {
            wrote = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wrote,
        "the writer finished before it could be killed: make the input larger"
    );
    // The reader sees the store as it was.
    assert_eq!(count_requests(&store), before);
    let manifest = read_manifest(&store);
    assert_eq!(manifest["runs"].as_array().unwrap().len(), 1, "{manifest}");
    // The next run of the same inputs completes, leftovers gone.
    write_store(&big, &store);
    assert_eq!(count_requests(&store), before + 260_000);
    let tmp: Vec<_> = glob::glob(&format!("{}/**/*.tmp", store.display()))
        .unwrap()
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

/// Two writers into one store at once: both runs land in the manifest (the
/// second waits for the first's manifest update).
#[test]
fn concurrent_writers_into_one_store_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut inputs = Vec::new();
    for w in 0..6 {
        let d = dir.path().join(format!("in{w}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("access.log"), nginx_lines(300, &format!("w{w}"))).unwrap();
        inputs.push(d);
    }
    let children: Vec<_> = inputs
        .iter()
        .map(|d| {
            std::process::Command::new(env!("CARGO_BIN_EXE_tracejoin"))
                .args([
                    "analyze",
                    d.to_str().unwrap(),
                    "--out",
                    store.to_str().unwrap(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let manifest = read_manifest(&store);
    assert_eq!(manifest["runs"].as_array().unwrap().len(), 6, "{manifest}");
    assert_eq!(count_requests(&store), 6 * 300);
}

/// A truncated or overwritten Parquet file: named in a warning, left out,
/// and `query` and `timeline` answer from the rest.
#[test]
fn a_damaged_parquet_file_is_named_and_the_rest_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for (w, tag) in ["a", "b"].iter().enumerate() {
        let d = dir.path().join(format!("in{w}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("access.log"), nginx_lines(100, tag)).unwrap();
        write_store(&d, &store);
    }
    assert_eq!(count_requests(&store), 200);
    let files = parquet_files(&store);
    let requests: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("requests/"))
        .collect();
    assert_eq!(requests.len(), 2, "{files:?}");
    // Truncate one requests file; overwrite the footer of that run's events file.
    let damaged = store.join(requests[0]);
    let bytes = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let overwritten = store.join(requests[0].replacen("requests/", "events/", 1));
    let mut bytes = std::fs::read(&overwritten).unwrap();
    let n = bytes.len();
    let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    bytes[n - 8 - footer..n - 8].fill(0xff);
    std::fs::write(&overwritten, &bytes).unwrap();
    let out = tracejoin(&[
        "query",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "json",
        "select count(*) as n from requests",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&damaged.display().to_string())
            && stderr(&out).contains("not a complete Parquet file"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&overwritten.display().to_string())
            && stderr(&out).contains("metadata does not decode"),
        "{}",
        stderr(&out)
    );
    let n: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(n["n"], 100, "the other run's requests");
    let events = query(&store, "select count(*) as n from events");
    assert_eq!(events[0]["n"], 100, "the other run's events");
    // A request of the undamaged file is still found by id.
    let other = if requests[0].contains(&manifest_run(&store, 0)) {
        "b"
    } else {
        "a"
    };
    let id = format!("{other}{:012x}", 7);
    let out = tracejoin(&["timeline", &id, "--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("/v1/{other}/7")),
        "{}",
        stdout(&out)
    );
}

fn manifest_run(store: &Path, i: usize) -> String {
    let manifest = read_manifest(store);
    manifest["runs"][i]["run"].as_str().unwrap().to_string()
}

fn read_manifest(store: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(store.join("manifest.json")).unwrap()).unwrap()
}

/// Runs tracejoin to its end; its output and its peak resident set (bytes):
/// the kernel's high-water mark (`VmHWM`), read until the process exits.
fn run_measured(args: &[&str]) -> (std::process::Output, u64) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tracejoin"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let reader = std::thread::spawn(move || child.wait_with_output().unwrap());
    let mut peak = 0u64;
    while !reader.is_finished() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (reader.join().unwrap(), peak)
}

/// `report` folds the store file by file: fifty times the requests (the same
/// run's files linked under fifty run ids) cost it no more memory, and every
/// one of them is counted.
#[test]
fn the_report_counts_every_request_in_memory_that_does_not_grow_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, nginx_lines(20_000, "rep")).unwrap();
    let one = dir.path().join("one");
    write_store(&log, &one);
    let many = dir.path().join("many");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("manifest.json")).unwrap()).unwrap();
    let run = manifest["runs"][0]["run"].as_str().unwrap().to_string();
    let mut runs = Vec::new();
    // The first copy keeps the run's own name: index rows name its files.
    for copy in 0..50 {
        let id = if copy == 0 {
            run.clone()
        } else {
            format!("{run}c{copy:02}")
        };
        for f in parquet_files(&one) {
            let to = many.join(&f).with_file_name(
                Path::new(&f)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace(&format!("-{run}-"), &format!("-{id}-")),
            );
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::hard_link(one.join(&f), &to).unwrap();
        }
        let mut entry = manifest["runs"][0].clone();
        entry["run"] = Value::from(id);
        runs.push(entry);
    }
    let mut m = manifest.clone();
    m["runs"] = Value::Array(runs);
    std::fs::write(many.join("manifest.json"), m.to_string()).unwrap();

    let report = |store: &Path| {
        let (out, peak) =
            run_measured(&["report", "--store", store.to_str().unwrap(), "--markdown"]);
        assert!(out.status.success(), "{}", stderr(&out));
        (stdout(&out), peak)
    };
    let (small, small_peak) = report(&one);
    let (large, large_peak) = report(&many);
    assert!(
        small.contains("20000 requests, **2000 failed (10.0%)**"),
        "{small}"
    );
    assert!(
        large.contains("1000000 requests, **100000 failed (10.0%)**"),
        "{large}"
    );
    assert!(
        large_peak < small_peak + (64 << 20),
        "50× the requests: peak RSS {} MiB against {} MiB",
        large_peak >> 20,
        small_peak >> 20
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `tests/data/store-v1`: the bundled incident as tracejoin wrote it before
/// schema version 2 (times `Datetime[ns]` without a zone, lists as
/// comma-separated text; see its README). It answers every command as a store
/// written today does.
#[test]
fn a_store_of_schema_version_1_answers_as_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("v1");
    copy_dir(&repo().join("tests/data/store-v1"), &old);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(old.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["schema_version"], 1,
        "the fixture is a version-1 store"
    );
    // Written from the repository as the fixture was, so that the events'
    // origins (`sample-logs/...:N`) are the same.
    let new = dir.path().join("v2");
    write_store(Path::new("sample-logs"), &new);
    for sql in [
        "SELECT label, count(*) AS n FROM requests WHERE failed GROUP BY label ORDER BY label",
        "SELECT request_id, start, start_ns, ids, flags, sources, label, cause_service, cause_path FROM requests WHERE failed ORDER BY start_ns, request_id",
        "SELECT request_id, ids, flags, sources FROM requests ORDER BY start_ns, request_id",
        "SELECT r.request_id, e.ts, e.ts_ns, e.source, e.origin FROM requests r JOIN events e ON r.request_key = e.request_key WHERE r.failed ORDER BY e.ts_ns, e.origin",
        "SELECT min(ts) AS first, max(ts_ns) AS last, count(*) AS n FROM events",
    ] {
        let (a, b) = (query(&old, sql), query(&new, sql));
        assert!(!a.is_empty(), "{sql}");
        assert_eq!(a, b, "{sql}");
    }
    let o = old.to_str().unwrap();
    let n = new.to_str().unwrap();
    let same = |args: &[&str]| {
        let run = |store: &str| {
            let mut full: Vec<&str> = args.to_vec();
            full.extend(["--store", store]);
            let out = tracejoin(&full);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            stdout(&out)
        };
        assert_eq!(run(o), run(n), "{args:?}");
    };
    same(&[
        "query",
        "--since",
        "2026-11-25T21:09:40.5Z",
        "--until",
        "2026-11-25T21:09:41Z",
        "SELECT count(*) AS n FROM requests",
    ]);
    same(&["timeline", "72c48654c3c5975016a3a205b0d18a86"]);
    same(&["incidents", "--json"]);
    let report = |store: &str| {
        let out = tracejoin(&["report", "--store", store, "--markdown"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        // Everything but the closing line naming the run's tool and rule pack.
        text[..text.find("Rule pack sha256").unwrap()].to_string()
    };
    assert_eq!(report(o), report(n));

    // A version-2 run appended to the version-1 store: both read as one table.
    let more = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("sample-logs/gateway/access.log"),
        more.path().join("access.log"),
    )
    .unwrap();
    write_store(more.path(), &old);
    let mixed = query(
        &old,
        "SELECT count(*) AS n, count(start_ns) AS t, min(start) AS first FROM requests",
    );
    assert_eq!(mixed[0]["n"], 600, "{mixed:?}");
    assert_eq!(mixed[0]["t"], 600, "{mixed:?}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(old.join("manifest.json")).unwrap()).unwrap();
    let versions: Vec<&Value> = manifest["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["schema_version"])
        .collect();
    // The old run is recorded as version 1 once a new writer rewrites the manifest.
    assert_eq!(versions, [&Value::from(1), &Value::from(2)]);
    let inc = tracejoin(&["incidents", "--store", o]);
    assert!(inc.status.success(), "{}", stderr(&inc));
    assert!(stdout(&inc).contains("in 600 requests"), "{}", stdout(&inc));
}

#[test]
fn halves_written_by_separate_runs_reconcile_to_the_single_run() {
    let inputs = sample_logs_copy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    write_store(inputs.path(), &whole);
    // The gateway's log, the OTLP export and each service's log, each
    // analyzed alone into one store: four runs of parts.
    for part in ["gateway", "otel", "orders"] {
        write_store(&inputs.path().join(part), &split);
    }
    write_store(&inputs.path().join("payments"), &split);
    let one = crate::common::request_rows(&whole);
    let halves = crate::common::request_rows(&split);
    assert_eq!(one.len(), 300);
    assert!(halves.len() > 600, "{}", halves.len());

    let said_reconcile = crate::common::reconcile(&split);
    assert!(said_reconcile.contains("from 4 runs"), "{said_reconcile}");
    assert_eq!(
        crate::common::request_rows(&split),
        one,
        "reconciled halves equal one run"
    );
    // The file-by-file readers (incidents, the report) count each request once.
    let incidents = tracejoin(&["incidents", "--store", split.to_str().unwrap()]);
    let said = format!("{}{}", stdout(&incidents), stderr(&incidents));
    assert!(said.contains("in 300 requests (132 failed)"), "{said}");
    let html = dir.path().join("report.html");
    let report = tracejoin(&[
        "report",
        "--store",
        split.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(report.status.success(), "{}", stderr(&report));
    let page = std::fs::read_to_string(&html).unwrap();
    let replaced = said_reconcile
        .split("replacing ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap();
    assert!(
        page.contains(&format!("replacing {replaced} rows")),
        "the runs list says what reconcile replaced: {said_reconcile}"
    );
    // A request found by its id is the joined one, whole.
    let failed = query(
        &whole,
        "SELECT request_id, events FROM requests WHERE label = 'upstream' LIMIT 1",
    );
    let rid = failed[0]["request_id"].as_str().unwrap();
    let tl = tracejoin(&[
        "timeline",
        "--store",
        split.to_str().unwrap(),
        "--json",
        rid,
    ]);
    assert!(tl.status.success(), "{}", stderr(&tl));
    let tl: Value = serde_json::from_str(stdout(&tl).lines().next().unwrap()).unwrap();
    assert_eq!(tl["events"], failed[0]["events"], "{tl}");
    // Twice changes nothing.
    let again = crate::common::reconcile(&split);
    assert!(again.contains("nothing to join"), "{again}");
    assert_eq!(crate::common::request_rows(&split), one);

    // Other engines read every file: the rows a later run replaced are left
    // out with an anti-join on `superseded`, as the README says.
    let Some(python) = crate::common::realstack_python() else {
        return;
    };
    let script = format!(
        "import duckdb, json\n\
         d = '{}'\n\
         r = f\"read_parquet('{{d}}/requests/**/*.parquet', hive_partitioning=true)\"\n\
         s = f\"read_parquet('{{d}}/superseded/*.parquet')\"\n\
         every = duckdb.sql(f'SELECT count(*) FROM {{r}}').fetchall()[0][0]\n\
         current = duckdb.sql(f'SELECT count(*), count(*) FILTER (WHERE failed) FROM {{r}} WHERE request_key NOT IN (SELECT request_key FROM {{s}})').fetchall()[0]\n\
         print(json.dumps({{'every': every, 'current': current}}))\n",
        split.display()
    );
    let v: Value = serde_json::from_slice(&run_python(&python, &script).stdout).unwrap();
    let failed = query(&whole, "SELECT count(*) AS n FROM requests WHERE failed");
    assert!(v["every"].as_u64().unwrap() > 600, "{v}");
    assert_eq!(v["current"][0], 300, "{v}");
    assert_eq!(v["current"][1], failed[0]["n"], "{v}");
}

#[test]
fn a_half_that_reaches_the_store_after_a_reconcile_is_joined_by_the_next() {
    let inputs = sample_logs_copy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    write_store(inputs.path(), &whole);
    let reconcile = || crate::common::reconcile(&split);
    // The gateway's and the spans' halves first, joined; the services' log
    // lines (which carry the same ids) arrive later, as from a slower instance.
    write_store(&inputs.path().join("gateway"), &split);
    write_store(&inputs.path().join("otel"), &split);
    assert!(reconcile().contains("requests joined"));
    let between = crate::common::request_rows(&split);
    assert_eq!(
        between.len(),
        300,
        "each request once, without its log lines yet"
    );
    assert_ne!(between, crate::common::request_rows(&whole));
    write_store(&inputs.path().join("orders"), &split);
    write_store(&inputs.path().join("payments"), &split);
    let said = reconcile();
    assert!(said.contains("requests joined"), "{said}");
    assert_eq!(
        crate::common::request_rows(&split),
        crate::common::request_rows(&whole)
    );
}

#[test]
fn halves_either_side_of_an_hour_partition_boundary_still_join() {
    // 10:59:59.9 a gateway line (partition hour 10) whose span starts at
    // 11:00:00.1 (partition hour 11); meanwhile a long request of hour 10
    // has events until 11:00:03, past the 1 s window. Reading hour 10 to its
    // last event must not close the gateway line before hour 11 is read.
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("inputs");
    std::fs::create_dir_all(inputs.join("gateway")).unwrap();
    std::fs::create_dir_all(inputs.join("otel")).unwrap();
    let (t1, t2) = (
        "5b8efff798038103d269b633813fc60c",
        "6c9f00a8a9149214e37ac744924ad71d",
    );
    let base = 1_795_690_800_i64; // 2026-11-26T11:00:00Z
                                  // nginx writes the line when the request ends: `$msec` is its end.
    let line = |rid: &str, trace: &str, parent: &str, start_ms: i64, rt_ms: i64, status: u16| {
        let t = chrono::DateTime::from_timestamp_millis(base * 1000 + start_ms + rt_ms).unwrap();
        let rt = format!("{}.{:03}", rt_ms / 1000, rt_ms % 1000);
        format!(
            "127.0.0.1 - - [{}] \"GET /v1/orders/1 HTTP/1.1\" {status} 14 \"-\" \"curl/8.0\" rid={rid} rt={rt} uct=\"0.001\" urt=\"{rt}\" us=\"{status}\" ua=\"127.0.0.1:8081\" xrid=- tp=00-{trace}-{parent}-01 lrs=- consumer=acme host=api.example.com msec={}.{:03}\n",
            t.format("%d/%b/%Y:%H:%M:%S +0000"),
            t.timestamp(),
            t.timestamp_subsec_millis()
        )
    };
    // Each client span (the traceparent's parent id) is its trace's own.
    let (p1, p2) = ("1111111111111111", "2222222222222222");
    let gateway = line(
        "0f2b6a1c9d8e4f7a0b1c2d3e4f5a6b7c",
        t2,
        p2,
        -2_000,
        5_100,
        200,
    ) + &line("1a2b3c4d5e6f708192a3b4c5d6e7f809", t1, p1, -100, 400, 502);
    std::fs::write(inputs.join("gateway/access.log"), gateway).unwrap();
    let ns = |ms: i64| ((base * 1000 + ms) * 1_000_000).to_string();
    let span = |trace: &str, id: &str, parent: Option<&str>, from: i64, to: i64, status: u16| {
        let mut s = serde_json::json!({"traceId": trace, "spanId": id, "name": "GET /v1/orders/{id}", "kind": 2,
            "startTimeUnixNano": ns(from), "endTimeUnixNano": ns(to),
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": status.to_string()}}],
            "status": {"code": if status >= 500 { 2 } else { 0 }}});
        if let Some(p) = parent {
            s["parentSpanId"] = p.into();
            s["kind"] = 3.into();
        }
        s
    };
    let doc = |spans: Vec<Value>| {
        serde_json::json!({"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeSpans": [{"spans": spans}]}]})
        .to_string()
    };
    let traces = [
        doc(vec![
            span(t2, "aaaaaaaaaaaaaaa1", Some(p2), -1_990, 3_050, 200),
            span(
                t2,
                "aaaaaaaaaaaaaaa2",
                Some("aaaaaaaaaaaaaaa1"),
                3_000,
                3_040,
                200,
            ),
        ]),
        doc(vec![span(t1, "bbbbbbbbbbbbbbb1", Some(p1), 100, 250, 502)]),
    ]
    .join("\n");
    std::fs::write(inputs.join("otel/traces.jsonl"), traces + "\n").unwrap();

    let write = |input: &Path, store: &Path| {
        let out = tracejoin(&[
            "analyze",
            input.to_str().unwrap(),
            "--window",
            "1s",
            "--out",
            store.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    let _ = std::process::Command::new("cp")
        .args(["-r", inputs.to_str().unwrap(), "/tmp/hb-inputs"])
        .status();
    write(&inputs, &whole);
    write(&inputs.join("gateway"), &split);
    write(&inputs.join("otel"), &split);
    let one = crate::common::request_rows(&whole);
    assert_eq!(one.len(), 2, "{one:#?}");
    crate::common::reconcile(&split);
    assert_eq!(crate::common::request_rows(&split), one);
}

#[test]
fn a_half_stored_again_with_more_events_after_a_reconcile_is_joined_once() {
    // A live instance re-emits a request amended by late events after a
    // reconcile joined its first emission: the store then holds that
    // emission's events twice, in the joined row and in the amended half.
    let inputs = sample_logs_copy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    write_store(inputs.path(), &whole);
    write_store(&inputs.path().join("gateway"), &split);
    write_store(&inputs.path().join("otel"), &split);
    assert!(crate::common::reconcile(&split).contains("requests joined"));
    let part = |p: &str| inputs.path().join(p).display().to_string();
    let (otel, orders, payments) = (part("otel"), part("orders"), part("payments"));
    let split_dir = split.display().to_string();
    let again = tracejoin(&["analyze", &otel, &orders, &payments, "--out", &split_dir]);
    assert!(again.status.success(), "{}", stderr(&again));
    let said = crate::common::reconcile(&split);
    assert!(said.contains("stored twice and joined once"), "{said}");
    assert_eq!(
        crate::common::request_rows(&split),
        crate::common::request_rows(&whole)
    );
    assert!(crate::common::reconcile(&split).contains("nothing to join"));
}
