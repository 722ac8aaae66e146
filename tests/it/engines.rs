//! The store is read as it is by other engines: DuckDB, Spark (PySpark, local
//! mode, the JRE from Debian) and ClickHouse's engine (chdb), with no schema
//! and no reader option. Each answers the same questions — failures by label,
//! the requests ⋈ events join, a time window, the exploded id list, a flag —
//! and must agree with tracejoin's own answers, with `start` a timestamp type.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;

#[test]
fn duckdb_spark_and_clickhouse_read_the_store_as_it_is() {
    let Some(python) = realstack_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_store(std::path::Path::new("sample-logs"), &store);

    // tracejoin's own answers: the --json lines, and its query over the store.
    let lines: Vec<Value> = stdout(&tracejoin(&["analyze", "--json", "sample-logs"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut labels: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines.iter().filter(|l| l["failed"] == true) {
        *labels
            .entry(l["label"].as_str().unwrap().into())
            .or_default() += 1;
    }
    let evidence: u64 = lines
        .iter()
        .filter(|l| l["failed"] == true)
        .map(|l| l["events"].as_u64().unwrap())
        .sum();
    let ids: usize = lines
        .iter()
        .map(|l| l["ids"].as_array().unwrap().len())
        .sum();
    let gateway_only = lines
        .iter()
        .filter(|l| {
            l["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "gateway_only")
        })
        .count();
    // A one-second window a second into the incident, in microseconds.
    let first = lines
        .iter()
        .map(|l| {
            chrono::DateTime::parse_from_rfc3339(l["start"].as_str().unwrap())
                .unwrap()
                .timestamp_micros()
        })
        .min()
        .unwrap();
    let (since, until) = (first + 1_000_000, first + 2_000_000);
    let rfc = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    };
    let q = tracejoin(&[
        "query",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "json",
        "--since",
        &rfc(since),
        "--until",
        &rfc(until),
        "SELECT count(*) AS n FROM requests",
    ]);
    assert!(q.status.success(), "{}", stderr(&q));
    let window: Value = serde_json::from_str(stdout(&q).lines().next().unwrap()).unwrap();
    let window = window["n"].as_u64().unwrap();
    assert!(
        window > 10 && window < 300,
        "a window with some requests: {window}"
    );

    for (engine, start_type) in [
        ("duckdb", "TIMESTAMP WITH TIME ZONE"),
        ("spark", "timestamp"),
        // ClickHouse makes every Parquet column nullable.
        ("chdb", "Nullable(DateTime64(6, 'UTC'))"),
    ] {
        let out = std::process::Command::new(&python)
            .arg(repo().join("tests/engines/answers.py"))
            .args([engine, store.to_str().unwrap()])
            .args([since.to_string(), until.to_string()])
            .output()
            .expect("tests/engines/answers.py runs");
        assert!(
            out.status.success(),
            "{engine}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let a: Value = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!("{engine}: {a}");
        assert_eq!(a["start_type"], start_type, "{engine}");
        let got: BTreeMap<String, u64> = a["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(got, labels, "{engine}: failures by label");
        assert_eq!(a["evidence"], evidence, "{engine}: requests ⋈ events");
        assert_eq!(a["window"], window, "{engine}: the time window");
        assert_eq!(a["ids"], ids as u64, "{engine}: ids exploded");
        assert_eq!(a["gateway_only"], gateway_only as u64, "{engine}: a flag");
        assert!(
            a["first_start"].as_str().unwrap().starts_with("2026-11-25"),
            "{engine}: {}",
            a["first_start"]
        );
    }
}
