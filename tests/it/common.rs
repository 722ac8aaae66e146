#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tracejoin::analysis::{self, Analysis, Options};
use tracejoin::parse::Registry;
use tracejoin::rules::Engine;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn analyze(paths: &[&Path]) -> Analysis {
    let registry = Registry::load(None).expect("built-in formats load");
    let engine = Engine::load(None).expect("built-in rules load");
    let opts = Options {
        paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        ..Default::default()
    };
    analysis::run(&opts, &registry, &engine).expect("analysis runs")
}

pub fn tracejoin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracejoin"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A copy of sample-logs in a temporary folder, without the files listed in
/// `except` (paths relative to sample-logs), for tests that rewrite one input.
pub fn sample_logs_copy(except: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "gateway/access.log",
        "orders/orders.log",
        "payments/payments.log",
        "otel/logs.jsonl",
        "otel/traces.jsonl",
    ] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if !except.contains(&f) {
            std::fs::copy(repo().join("sample-logs").join(f), to).unwrap();
        }
    }
    dir
}

/// The Python that runs the real-stack scripts (the venv `scripts/test` makes).
/// A test that needs it fails when it is missing, saying what to install;
/// `TRACEJOIN_SKIP_REALSTACK=1` is the explicit opt-out (`scripts/test` never sets it).
pub fn realstack_python() -> Option<String> {
    if let Ok(p) = std::env::var("TRACEJOIN_REALSTACK_PYTHON") {
        return Some(p);
    }
    let venv = repo().join("target/realstack-venv/bin/python");
    if venv.exists() {
        return Some(venv.display().to_string());
    }
    skip_or_fail("the real stack's Python venv (with the OpenTelemetry SDK)")
}

/// `None` (the test skips, saying so) only under `TRACEJOIN_SKIP_REALSTACK=1`;
/// otherwise a failure that names what is missing and how to get it.
pub fn skip_or_fail<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var_os("TRACEJOIN_SKIP_REALSTACK").is_some(),
        "{what} is missing: run scripts/test, which installs the gateways, Chromium and the \
         OpenTelemetry SDK venv (or set TRACEJOIN_SKIP_REALSTACK=1 to skip the real-stack tests)"
    );
    eprintln!("skipped (TRACEJOIN_SKIP_REALSTACK): {what} is missing");
    None
}

/// `tracejoin query --format json` over a store: one JSON object per row.
pub fn query(store: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = tracejoin(&[
        "query",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "json",
        sql,
    ]);
    assert!(out.status.success(), "{sql}: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `tracejoin analyze INPUTS --out STORE`, which must succeed and say it wrote the store.
pub fn write_store(inputs: &Path, store: &Path) {
    let out = tracejoin(&[
        "analyze",
        inputs.to_str().unwrap(),
        "--out",
        store.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tracejoin: store"),
        "{}",
        stderr(&out)
    );
}

/// `tracejoin reconcile --store STORE`, which must succeed; what it said.
pub fn reconcile(store: &Path) -> String {
    let out = tracejoin(&["reconcile", "--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    stderr(&out)
}

/// Every request of a store as a user compares two stores of the same data:
/// its ids, start, verdict, evidence, blame, joins and flags, one JSON text
/// each, sorted.
pub fn request_rows(store: &Path) -> Vec<String> {
    let mut rows: Vec<String> = query(
        store,
        "SELECT request_id, trace_id, start_ns, status, failed, label, rule, explanation, \
         evidence, cause_kind, cause_service, cause_origin, cause_path, sources, flags, events, \
         \"join\", attempt, retry_of FROM requests",
    )
    .iter()
    .map(serde_json::Value::to_string)
    .collect();
    rows.sort();
    rows
}
