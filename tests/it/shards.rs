//! Batch beyond one machine: `analyze --shard-start/--shard-end` run by Spark
//! (`examples/spark/shards.py`, PySpark local mode) over time shards of the
//! bundled incident cloned eight times, every shard writing its own run into
//! one store, gives exactly the single run's requests and verdicts — none
//! lost or counted twice at a boundary, even the requests cut in two by one.

use crate::common::*;
use serde_json::Value;

fn rfc(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[test]
fn spark_over_time_shards_gives_exactly_the_single_run() {
    let Some(python) = realstack_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("incident");
    let gen = std::process::Command::new(&python)
        .arg(repo().join("benches/gen_incident.py"))
        .args(["8", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );

    let single = dir.path().join("single");
    write_store(&input, &single);
    let spans = query(
        &single,
        "SELECT request_id, start_ns, duration_ms FROM requests ORDER BY start_ns",
    );
    assert_eq!(spans.len(), 8 * 300);
    let ns = |v: &Value| v["start_ns"].as_i64().unwrap();
    let (first, last) = (ns(&spans[0]), ns(&spans[spans.len() - 1]));
    // Cut at three instants inside requests still running: the longest
    // request of each of three stretches of the run, at its middle.
    let mut cuts = Vec::new();
    let mut straddling = Vec::new();
    for q in 1..=3 {
        let at = first + (last - first) * q / 4;
        let r = spans
            .iter()
            .filter(|r| (ns(r) - at).abs() < 2_000_000_000)
            .max_by(|a, b| {
                a["duration_ms"]
                    .as_f64()
                    .partial_cmp(&b["duration_ms"].as_f64())
                    .unwrap()
            })
            .unwrap();
        let d = (r["duration_ms"].as_f64().unwrap() * 1e6) as i64;
        assert!(d > 1_000_000, "a request that lasts: {r}");
        cuts.push(rfc(ns(r) + d / 2));
        straddling.push(r["request_id"].as_str().unwrap().to_string());
    }

    let sharded = dir.path().join("sharded");
    let out = std::process::Command::new(&python)
        .arg(repo().join("examples/spark/shards.py"))
        .args(["--input", input.to_str().unwrap()])
        .args(["--store", sharded.to_str().unwrap()])
        .args([
            "--from",
            &rfc(first - 1_000_000_000),
            "--to",
            &rfc(last + 1_000_000_000),
        ])
        .args(["--cuts", &cuts.join(",")])
        .args(["--guard", "10s", "--master", "local[2]"])
        .args(["--tracejoin", env!("CARGO_BIN_EXE_tracejoin")])
        .output()
        .expect("examples/spark/shards.py runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shards: Vec<Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(shards.len(), 4, "{report}");
    eprintln!("{report}");

    // One run per shard, each with its shard recorded.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(sharded.join("manifest.json")).unwrap())
            .unwrap();
    let runs = manifest["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["shard"].is_array()));

    // Every request once, with the same verdict, evidence and blame path.
    let sql = "SELECT request_id, trace_id, start_ns, status, failed, label, rule, explanation, evidence, \
               cause_service, cause_path, flags, attempt, retry_of, events FROM requests \
               ORDER BY start_ns, request_id";
    let (a, b) = (query(&single, sql), query(&sharded, sql));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    for id in &straddling {
        let n = b.iter().filter(|r| r["request_id"] == id.as_str()).count();
        assert_eq!(
            n, 1,
            "request {id}, cut by a boundary, is in exactly one shard"
        );
    }
    let per_shard: u64 = shards.iter().map(|s| s["requests"].as_u64().unwrap()).sum();
    assert_eq!(per_shard, a.len() as u64);
}
