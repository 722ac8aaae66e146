//! `tracejoin serve` as a user runs it: the real binary on ephemeral loopback
//! ports, driven over OTLP/HTTP and OTLP/gRPC and through followed files,
//! stopped with SIGTERM; assertions are on the JSON lines it emits.

use crate::common::{realstack_python, repo};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Serve {
    child: Child,
    reader: Option<std::thread::JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
    grpc: String,
    http: String,
    json: PathBuf,
}

impl Serve {
    /// Starts `tracejoin serve` on ports the OS picks, writing JSON lines into `dir`.
    fn start(dir: &Path, args: &[&str]) -> Serve {
        std::fs::create_dir_all(dir).unwrap();
        let json = dir.join("live.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tracejoin"))
            .args(["serve", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(["--stats-interval", "1s", "--json"])
            .arg(&json)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tracejoin serve starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut serve = Serve {
            child,
            reader: Some(reader),
            stderr,
            grpc: String::new(),
            http: String::new(),
            json,
        };
        assert!(
            serve.wait_for("listening:", 20),
            "serve did not start: {}",
            serve.log()
        );
        let log = serve.log();
        let line = log.lines().find(|l| l.contains("listening:")).unwrap();
        let addr = |tag: &str| {
            let rest = &line[line.find(tag).unwrap() + tag.len()..];
            rest.split([',', ' ']).next().unwrap().to_string()
        };
        serve.grpc = format!("http://{}", addr("OTLP/gRPC "));
        serve.http = format!("http://{}", addr("OTLP/HTTP "));
        serve
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_for(&self, needle: &str, secs: u64) -> bool {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Requests emitted so far.
    fn emitted(&self) -> Vec<Value> {
        read_lines(&self.json)
    }

    /// SIGTERM, then everything it emitted and printed.
    fn stop(mut self) -> (Vec<Value>, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < until, "serve did not stop: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap(); // stderr read to its end
        }
        assert!(status.success(), "serve exit {status}: {}", self.log());
        (read_lines(&self.json), self.log())
    }
}

fn read_lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each --json line is JSON"))
        .collect()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// One server span as OTLP/JSON.
fn span_json(trace: &str, span: &str, path: &str, status: u16) -> Value {
    let t = now_ns();
    json!({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},
        "scopeSpans":[{"spans":[{"traceId":trace,"spanId":span,"name":format!("GET {path}"),"kind":2,
        "startTimeUnixNano":(t - 3_000_000).to_string(),"endTimeUnixNano":t.to_string(),
        "attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},
                      {"key":"url.path","value":{"stringValue":path}},
                      {"key":"http.response.status_code","value":{"intValue":status.to_string()}}],
        "status":{"code": if status >= 500 { 2 } else { 0 }}}]}]}]})
}

/// An nginx access-log line in the bundled scenario's format (nginx_combined_kv).
fn gateway_line(rid: &str, trace: &str, path: &str, status: u16) -> String {
    let t = chrono::Utc::now();
    format!(
        "127.0.0.1 - - [{}] \"GET {path} HTTP/1.1\" {status} 14 \"-\" \"curl/8.0\" rid={rid} rt=0.004 uct=\"0.001\" urt=\"0.003\" us=\"{status}\" ua=\"127.0.0.1:8081\" xrid=- tp=00-{trace}-9531985d5d9dc9f9-01 lrs=- consumer=acme host=api.example.com msec={}.{:03}\n",
        t.format("%d/%b/%Y:%H:%M:%S +0000"),
        t.timestamp(),
        t.timestamp_subsec_millis()
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs to the HTTP receiver; returns the status, the headers' Retry-After and the body.
fn post(url: &str, ctype: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let mut req = agent().post(url).header("content-type", ctype);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).expect("the receiver answers");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap_or_default();
    (status, body)
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn by_request_id(lines: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for l in lines {
        let id = l["request_id"].as_str().or(l["trace_id"].as_str()).unwrap();
        m.entry(id.to_string()).or_default().push(l.clone());
    }
    m
}

#[test]
fn live_labels_equal_what_analyze_says_of_the_same_data_written_to_files() {
    let Some(python) = realstack_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for sub in ["gateway", "orders", "payments", "otel"] {
        std::fs::create_dir_all(out.join(sub)).unwrap();
    }
    let follow: Vec<String> = ["gateway", "orders", "payments"]
        .iter()
        .map(|s| format!("{}/{s}/*.log", out.display()))
        .collect();
    let mut args = vec!["--window", "3s", "--token", "s3cr3t"];
    for f in &follow {
        args.extend(["--follow", f.as_str()]);
    }
    let serve = Serve::start(dir.path(), &args);
    // The real stack: nginx writes the gateway log that serve follows; the
    // services' OTel SDK exports spans and logs over OTLP/gRPC (orders) and
    // OTLP/HTTP (payments) to serve, and to files for `analyze`.
    let grpc = serve.grpc.trim_start_matches("http://").to_string();
    let status = Command::new(&python)
        .arg(repo().join("tests/realstack/generate.py"))
        .arg(&out)
        .arg(dir.path().join("truth.csv"))
        .args(["--seed", "31", "--requests", "150"])
        .args([
            "--otlp-grpc",
            &grpc,
            "--otlp-http",
            &serve.http,
            "--otlp-token",
            "s3cr3t",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    // Everything is written; give the window time to close the last requests.
    std::thread::sleep(Duration::from_secs(4));
    let (live, log) = serve.stop();
    assert!(log.contains("following"), "{log}");
    assert_eq!(
        last_count(&log, " auth;"),
        0,
        "no message refused for its token: {log}"
    );

    let batch = crate::common::tracejoin(&["analyze", "--json", out.to_str().unwrap()]);
    assert!(batch.status.success(), "{}", crate::common::stderr(&batch));
    let batch: Vec<Value> = crate::common::stdout(&batch)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(batch.len(), 150, "one request per request sent");
    let live = by_request_id(&live);
    let batch = by_request_id(&batch);
    let keys = |v: &Value| {
        let mut ids: Vec<String> = v["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect();
        ids.sort();
        (
            v["label"].clone(),
            v["rule"].clone(),
            v["status"].clone(),
            v["events"].clone(),
            v["sources"].clone(),
            ids,
        )
    };
    let mut same = 0;
    for (id, b) in &batch {
        let l = live
            .get(id)
            .unwrap_or_else(|| panic!("{id} was not emitted live"));
        // The latest emission is the one that counts (amended ones supersede).
        if keys(l.last().unwrap()) == keys(&b[0]) {
            same += 1;
        } else {
            eprintln!(
                "{id}\n live  {:?}\n batch {:?}",
                keys(l.last().unwrap()),
                keys(&b[0])
            );
        }
    }
    assert_eq!(same, batch.len(), "live and batch agree on every request");
    assert_eq!(live.len(), batch.len());
    // Both protocols and both signals were used by the SDK's exporters.
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains(" received "))
        .unwrap();
    let count = |after: &str| -> u64 {
        let i = last
            .find(after)
            .unwrap_or_else(|| panic!("{after:?} in {last}"));
        last[..i]
            .rsplit([' ', '('])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(count(" spans") > 150 && count(" logs") > 0, "{last}");
    assert!(count(" gRPC") > 0 && count(" HTTP messages") > 0, "{last}");
    let failed = live
        .values()
        .filter(|v| v.last().unwrap()["failed"] == true)
        .count();
    assert!(failed > 30, "the incident is there: {failed} failed");
}

#[test]
fn followed_files_survive_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let pattern = format!("{}/*.log", logs.display());
    let serve = Serve::start(
        dir.path(),
        &["--window", "500ms", "--follow", &pattern, "--grpc", "off"],
    );
    let access = logs.join("access.log");
    let trace = |i: usize| format!("{:032x}", 0xabc000 + i);
    let lines = |from: usize, to: usize| -> String {
        (from..to)
            .map(|i| gateway_line(&format!("req{i:04}"), &trace(i), "/v1/orders/1", 502))
            .collect()
    };
    // The file appears after serve started, then grows.
    append(&access, &lines(0, 5));
    assert!(
        serve.wait_for("as nginx_combined_kv", 10),
        "{}",
        serve.log()
    );
    append(&access, &lines(5, 10));
    std::thread::sleep(Duration::from_millis(600));
    // Rotation by rename (logrotate's default), then a new file at the path.
    std::fs::rename(&access, logs.join("access.log.1")).unwrap();
    append(&access, &lines(10, 15));
    assert!(serve.wait_for("was rotated", 10), "{}", serve.log());
    std::thread::sleep(Duration::from_millis(600));
    // Truncation (copytruncate), then new lines from offset 0.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&access)
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    append(&access, &lines(15, 18));
    assert!(serve.wait_for("was truncated", 10), "{}", serve.log());
    std::thread::sleep(Duration::from_millis(800));
    let (live, log) = serve.stop();
    let ids: Vec<&str> = live
        .iter()
        .map(|v| v["request_id"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..18).map(|i| format!("req{i:04}")).collect();
    let mut got: Vec<&str> = ids.clone();
    got.sort();
    assert_eq!(
        got,
        want.iter().map(String::as_str).collect::<Vec<_>>(),
        "{log}"
    );
    // Origins are file:line; after truncation the lines are numbered from 1 again.
    let last = live.iter().find(|v| v["request_id"] == "req0015").unwrap();
    assert_eq!(
        last["evidence"][0]["origin"].as_str().unwrap(),
        format!("{}:1", access.display())
    );
}

#[test]
fn a_gateway_line_after_its_spans_joins_them_and_a_late_one_re_emits_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let gw = dir.path().join("gateway.log");
    append(&gw, "");
    let store = dir.path().join("store");
    let serve = Serve::start(
        dir.path(),
        &[
            "--window",
            "1s",
            "--follow",
            gw.to_str().unwrap(),
            "--out",
            store.to_str().unwrap(),
        ],
    );
    let url = format!("{}/v1/traces", serve.http);
    // Within the window: the spans first, the gateway line 300 ms later.
    let t1 = "5b8efff798038103d269b633813fc60c";
    let body = span_json(t1, "eee19b7ec3c1b174", "/v1/orders/1", 502).to_string();
    assert_eq!(post(&url, "application/json", &[], body.as_bytes()).0, 200);
    std::thread::sleep(Duration::from_millis(300));
    append(&gw, &gateway_line("gw-early", t1, "/v1/orders/1", 502));
    // After the window: the spans are emitted alone, then the gateway line
    // reopens the request, which is emitted again, amended.
    let t2 = "6c9f00a8a9149214e37ac744924ad71d";
    let body = span_json(t2, "fff20c8fd4d2c285", "/v1/orders/2", 502).to_string();
    assert_eq!(post(&url, "application/json", &[], body.as_bytes()).0, 200);
    let until = Instant::now() + Duration::from_secs(10);
    while !serve.emitted().iter().any(|v| v["trace_id"] == t2) {
        assert!(Instant::now() < until, "{}", serve.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    append(&gw, &gateway_line("gw-late", t2, "/v1/orders/2", 502));
    assert!(serve.wait_for("amended 1", 10), "{}", serve.log());
    let (live, log) = serve.stop();
    // The summary counts the request once, at its latest revision.
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains(" received "))
        .unwrap();
    assert!(last.contains("emitted 3, failed 2 [upstream 2]"), "{last}");

    let early: Vec<&Value> = live.iter().filter(|v| v["trace_id"] == t1).collect();
    assert_eq!(early.len(), 1, "one request, emitted once");
    assert_eq!(early[0]["request_id"], "gw-early");
    assert_eq!(early[0]["sources"], json!(["gateway", "span"]));
    assert_eq!(early[0]["events"], 2);
    assert_eq!(early[0]["label"], "upstream");

    let late: Vec<&Value> = live.iter().filter(|v| v["trace_id"] == t2).collect();
    assert_eq!(late.len(), 2, "emitted, then emitted again amended");
    assert_eq!(late[0]["sources"], json!(["span"]));
    assert!(late[0].get("revision").is_none());
    assert_eq!(late[1]["revision"], 2);
    assert_eq!(late[1]["request_id"], "gw-late");
    assert_eq!(late[1]["sources"], json!(["gateway", "span"]));
    assert!(late[1]["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("amended")));
    // The store holds the request once, as amended: the first emission's
    // row is superseded, and left out of every query.
    let rows = crate::common::query(
        &store,
        &format!("SELECT request_id, events FROM requests WHERE trace_id = '{t2}'"),
    );
    assert_eq!(rows, vec![json!({"request_id": "gw-late", "events": 2})]);
    assert_eq!(
        crate::common::query(&store, "SELECT * FROM requests").len(),
        2
    );
}

/// [`crate::common::request_rows`] of a store written live. An OTLP origin
/// names the message on the instance that received it (`otlp-grpc:10#<span
/// id>`, `otlp-http:7#log2` for the third log record of a message): those
/// numbers are left out, the span id kept.
fn verdicts(store: &Path) -> Vec<String> {
    let record = regex::Regex::new(r"(otlp-(?:grpc|http)):\d+#log\d+").unwrap();
    let message = regex::Regex::new(r"(otlp-(?:grpc|http)):\d+#").unwrap();
    let mut rows: Vec<String> = crate::common::request_rows(store)
        .iter()
        .map(|v| {
            let v = record.replace_all(v, "$1:N#logN").into_owned();
            message.replace_all(&v, "$1:N#").into_owned()
        })
        .collect();
    rows.sort();
    rows
}

/// One run of the real stack seen twice: by one instance fed everything
/// (store `one`), and by two instances behind a trace-id split of the SDK's
/// exports (store `split`, the ByTraceId exporter standing in for the
/// Collector's loadbalancing exporter). The gateway's access log either goes
/// through the same split as log records (`ship`: the filelog receiver) or is
/// followed by a third instance writing the same store.
struct Layouts {
    _dir: tempfile::TempDir,
    out: PathBuf,
    one: PathBuf,
    split: PathBuf,
}

fn run_layouts(python: &str, seed: u64, ship: bool) -> Layouts {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for sub in ["gateway", "orders", "payments", "otel"] {
        std::fs::create_dir_all(out.join(sub)).unwrap();
    }
    let gateway = format!("{}/gateway/*.log", out.display());
    let (one_store, split) = (dir.path().join("one-store"), dir.path().join("split-store"));
    let (one_dir, split_dir) = (one_store.to_str().unwrap(), split.to_str().unwrap());
    let window = ["--window", "3s"];
    let one = Serve::start(
        &dir.path().join("one"),
        &[&window[..], &["--follow", &gateway, "--out", one_dir]].concat(),
    );
    let a = Serve::start(
        &dir.path().join("a"),
        &[&window[..], &["--out", split_dir]].concat(),
    );
    let b = Serve::start(
        &dir.path().join("b"),
        &[&window[..], &["--out", split_dir]].concat(),
    );
    let c = (!ship).then(|| {
        Serve::start(
            &dir.path().join("c"),
            &[&window[..], &["--follow", &gateway, "--out", split_dir]].concat(),
        )
    });
    let host = |s: &Serve| s.grpc.trim_start_matches("http://").to_string();
    let mut generate = Command::new(python);
    generate
        .arg(repo().join("tests/realstack/generate.py"))
        .arg(&out)
        .arg(dir.path().join("truth.csv"))
        .args(["--seed", &seed.to_string(), "--requests", "150"])
        .args(["--otlp-grpc", &host(&one)])
        .args(["--otlp-grpc", &format!("{},{}", host(&a), host(&b))])
        .args(["--otlp-http", &one.http])
        .args(["--otlp-http", &format!("{},{}", a.http, b.http)]);
    if ship {
        generate.args(["--ship-gateway", &format!("{},{}", a.http, b.http)]);
    }
    assert!(generate.status().unwrap().success());
    std::thread::sleep(Duration::from_secs(4));
    let mut received = Vec::new();
    for s in [Some(one), Some(a), Some(b), c].into_iter().flatten() {
        let (_, log) = s.stop();
        let last = log
            .lines()
            .rev()
            .find(|l| l.contains(" received "))
            .unwrap();
        received.push(last.to_string());
    }
    // The split was real: each of the two got part of the spans.
    for r in &received[1..3] {
        let spans: u64 = r[r.find(" received ").unwrap() + 10..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(spans > 50, "the exports were split: {received:#?}");
    }
    Layouts {
        _dir: dir,
        out,
        one: one_store,
        split,
    }
}

#[test]
fn instances_behind_a_trace_id_load_balancer_reconcile_to_what_one_instance_says() {
    let Some(python) = realstack_python() else {
        return;
    };
    let run = run_layouts(&python, 43, false);
    let (one_store, split) = (run.one.to_str().unwrap(), run.split.to_str().unwrap());
    let one = verdicts(Path::new(one_store));
    assert_eq!(one.len(), 150, "one request per request sent");
    // Before reconcile the store holds halves: gateway lines alone, spans alone.
    let halves = crate::common::query(
        Path::new(split),
        "SELECT request_key FROM requests \
         WHERE request_id IS NULL OR array_to_string(sources, ',') = 'gateway'",
    );
    let before = verdicts(Path::new(split));
    assert!(
        halves.len() > 100 && before.len() > 250,
        "{} halves of {}",
        halves.len(),
        before.len()
    );

    let said = crate::common::reconcile(&run.split);
    assert!(
        said.contains("requests joined and written as run rc"),
        "{said}"
    );
    let after = verdicts(Path::new(split));
    let differ: Vec<_> = one.iter().filter(|r| !after.contains(r)).collect();
    assert!(
        differ.is_empty(),
        "{} differ, e.g. {:?}\nafter: {:?}",
        differ.len(),
        differ.first(),
        after.iter().find(|r| !one.contains(r))
    );
    assert_eq!(after, one);

    // Again: nothing left to join, nothing written.
    let again = crate::common::reconcile(&run.split);
    assert!(again.contains("nothing to join"), "{again}");
    assert_eq!(verdicts(Path::new(split)), one);

    // A joined request is found by its request id, whole.
    let failed = crate::common::query(
        Path::new(split),
        "SELECT request_id FROM requests WHERE failed AND request_id IS NOT NULL \
         AND array_to_string(sources, ',') <> 'gateway' LIMIT 1",
    );
    let rid = failed[0]["request_id"].as_str().unwrap();
    let tl = crate::common::tracejoin(&["timeline", "--store", split, "--json", rid]);
    assert!(tl.status.success(), "{}", crate::common::stderr(&tl));
    let tl: Value =
        serde_json::from_str(crate::common::stdout(&tl).lines().next().unwrap()).unwrap();
    assert_eq!(tl["request_id"], rid);
    let sources = tl["sources"].as_array().unwrap();
    assert!(
        sources.contains(&json!("gateway")) && sources.contains(&json!("span")),
        "{tl}"
    );
}

#[test]
fn shutdown_mid_stream_emits_every_accepted_span() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let serve = Serve::start(
        dir.path(),
        &[
            "--window",
            "30s",
            "--grpc",
            "off",
            "--out",
            store.to_str().unwrap(),
        ],
    );
    let url = format!("{}/v1/traces", serve.http);
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let sender = {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            for batch in 0u64.. {
                let traces: Vec<String> = (0..20)
                    .map(|i| format!("{:016x}{:016x}", batch + 1, i + 1))
                    .collect();
                let mut doc = span_json(&traces[0], "00000000000000a1", "/v1/x", 200);
                let spans = &mut doc["resourceSpans"][0]["scopeSpans"][0]["spans"];
                let one = spans[0].clone();
                *spans = Value::Array(
                    traces
                        .iter()
                        .enumerate()
                        .map(|(i, t)| {
                            let mut s = one.clone();
                            s["traceId"] = json!(t);
                            s["spanId"] = json!(format!("{:08x}{:08x}", batch + 1, i + 1));
                            s
                        })
                        .collect(),
                );
                let resp = agent()
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(doc.to_string().as_bytes());
                match resp {
                    Ok(r) if r.status() == 200 => accepted.lock().unwrap().extend(traces),
                    Ok(_) => {}
                    Err(_) => return, // the server has stopped listening
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    // The 30 s window keeps every request open: all of them are emitted by the shutdown.
    let (live, log) = serve.stop();
    sender.join().unwrap();
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() > 100,
        "the stream was running: {}",
        accepted.len()
    );
    let emitted: BTreeSet<&str> = live.iter().filter_map(|v| v["trace_id"].as_str()).collect();
    let lost: Vec<&String> = accepted
        .iter()
        .filter(|t| !emitted.contains(t.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted spans lost ({} requests emitted), e.g. {:?}\n{log}",
        lost.len(),
        accepted.len(),
        live.len(),
        &lost[..lost.len().min(3)]
    );
    let events: u64 = live.iter().map(|v| v["events"].as_u64().unwrap()).sum();
    let received = log
        .lines()
        .rev()
        .find_map(|l| {
            l.split("received ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap();
    assert_eq!(
        events, received,
        "every span the server counted was emitted"
    );
}

#[test]
fn oversize_and_malformed_otlp_get_the_specified_errors_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        dir.path(),
        &["--window", "500ms", "--max-message-size", "64KiB"],
    );
    let url = format!("{}/v1/traces", serve.http);
    let status_of =
        |body: &[u8]| tonic_types::Status::decode(body).expect("a google.rpc.Status body");

    let (code, body) = post(
        &url,
        "application/x-protobuf",
        &[],
        b"\xff\xff\xff\xff garbage",
    );
    assert_eq!(code, 400);
    let st = status_of(&body);
    assert_eq!(st.code, tonic::Code::InvalidArgument as i32);
    assert!(
        st.message.contains("invalid OTLP protobuf"),
        "{}",
        st.message
    );

    let (code, body) = post(&url, "application/json", &[], b"{\"resourceSpans\": [{]");
    assert_eq!(code, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("invalid OTLP/JSON"),
        "{v}"
    );

    let (code, _) = post(&url, "text/plain", &[], b"hello");
    assert_eq!(code, 415);

    let big = vec![b' '; 200 << 10];
    let (code, _) = post(&url, "application/json", &[], &big);
    assert_eq!(code, 413, "over --max-message-size");

    // A gzip body that inflates past the limit is refused without inflating it all.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 10 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 << 10);
    let (code, _) = post(
        &url,
        "application/json",
        &[("content-encoding", "gzip")],
        &bomb,
    );
    assert_eq!(code, 413);

    // Spans without a valid trace id: a partial success, the rest accepted.
    let mut doc = span_json(
        "0123456789abcdef0123456789abcdef",
        "0123456789abcdef",
        "/v1/ok",
        200,
    );
    let spans = &mut doc["resourceSpans"][0]["scopeSpans"][0]["spans"];
    let mut bad = spans[0].clone();
    bad["traceId"] = json!("00000000000000000000000000000000");
    spans.as_array_mut().unwrap().push(bad);
    let (code, body) = post(&url, "application/json", &[], doc.to_string().as_bytes());
    assert_eq!(code, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");

    // gRPC: over the limit, and a message that is not protobuf at all.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let grpc = serve.grpc.clone();
    let (oversize, garbage) = rt.block_on(async move {
        let mut client = TraceServiceClient::connect(grpc.clone()).await.unwrap();
        let mut req: ExportTraceServiceRequest = serde_json::from_value(span_json(
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef",
            "/v1/big",
            200,
        ))
        .unwrap();
        req.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(200 << 10);
        let oversize = client.export(req).await.unwrap_err();
        let garbage = raw_grpc(&grpc, b"\xff\xff\xff\xff garbage".to_vec())
            .await
            .unwrap_err();
        (oversize, garbage)
    });
    // OTLP's codes, not tonic's (OUT_OF_RANGE, INTERNAL): the client may
    // retry the first and must drop the second.
    assert_eq!(
        oversize.code(),
        tonic::Code::ResourceExhausted,
        "{oversize:?}"
    );
    assert!(oversize.message().contains("too large"));
    assert_eq!(garbage.code(), tonic::Code::InvalidArgument, "{garbage:?}");

    // Still serving.
    let body = span_json(
        "1123456789abcdef0123456789abcdef",
        "1123456789abcdef",
        "/v1/after",
        200,
    )
    .to_string();
    assert_eq!(post(&url, "application/json", &[], body.as_bytes()).0, 200);
    let (live, log) = serve.stop();
    assert!(live.iter().any(|v| v["path"] == "/v1/after"), "{log}");
    assert!(live.iter().any(|v| v["path"] == "/v1/ok"));
    // Every refusal is counted, by kind: HTTP's over the limit (a body, a
    // gzip bomb) and gRPC's; HTTP's undecodable and wrong media types and
    // gRPC's undecodable frame.
    assert!(
        log.contains("3 too large, 4 invalid"),
        "refusals are counted: {log}"
    );
}

/// The real SDK exporter meets those codes: it retries a batch refused as
/// too large (RESOURCE_EXHAUSTED) until its timeout, then reports the
/// failure; a batch that fits is taken at once.
#[test]
fn the_sdk_exporter_retries_a_batch_refused_as_too_large() {
    let Some(python) = realstack_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        dir.path(),
        &["--window", "500ms", "--max-message-size", "64KiB"],
    );
    let script = r#"
import sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
exporter = OTLPSpanExporter(endpoint=sys.argv[1], insecure=True, timeout=4)
tracer = TracerProvider().get_tracer("oversize")
def span(name):
    s = tracer.start_span(name)
    s.end()
    return s
t = time.time()
big = exporter.export([span("x" * (200 << 10))])
print("big", big.name, round(time.time() - t, 1))
small = exporter.export([span("GET /v1/fits")])
print("small", small.name)
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, &serve.grpc])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("big FAILURE"), "{said}");
    assert!(said.contains("small SUCCESS"), "{said}");
    let (live, log) = serve.stop();
    assert_eq!(
        live.len(),
        1,
        "only the batch that fits was accepted: {log}"
    );
    // Refused more than once: the exporter retried the batch it was told it
    // may retry.
    let refused = last_count(&log, " too large");
    assert!(refused >= 2, "one batch refused {refused} times: {log}");
    assert!(log.contains(" 0 invalid"), "{log}");
}

/// Certificates for the TLS tests, made with the openssl command: a CA, a
/// server certificate for localhost / 127.0.0.1, a client certificate, and a
/// second CA that signed nothing of ours.
fn certificates(dir: &Path) -> Option<()> {
    let Ok(version) = Command::new("openssl").arg("version").output() else {
        return crate::common::skip_or_fail("the openssl command (to make test certificates)");
    };
    assert!(version.status.success());
    let run = |args: &str| {
        let out = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for ca in ["ca", "other-ca"] {
        run(&format!(
            "req -x509 {ec} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN=tracejoin-test-{ca}"
        ));
    }
    for (who, cn) in [("server", "localhost"), ("client", "otel-exporter")] {
        run(&format!(
            "req {ec} -keyout {who}.key -out {who}.csr -subj /CN={cn}"
        ));
        run(&format!(
            "x509 -req -in {who}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {who}.pem -days 2 -extfile {who}.ext"
        ));
    }
    Some(())
}

/// One span through each real SDK exporter given as `name=how` pairs; prints
/// `name RESULT` per export. `how` picks the exporter and its credentials.
const TLS_EXPORTS: &str = r#"
import sys, grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http
grpc_port, http_port, d = sys.argv[1], sys.argv[2], sys.argv[3]
read = lambda f: open(f"{d}/{f}", "rb").read()
tracer = TracerProvider().get_tracer("tls")
def span(name):
    s = tracer.start_span(name)
    s.end()
    return s
for case in sys.argv[4:]:
    name, how = case.split("=")
    if how == "grpc-ca":
        e = Grpc(endpoint=f"localhost:{grpc_port}", credentials=grpc.ssl_channel_credentials(read("ca.pem")), timeout=3)
    elif how == "grpc-other-ca":
        e = Grpc(endpoint=f"localhost:{grpc_port}", credentials=grpc.ssl_channel_credentials(read("other-ca.pem")), timeout=3)
    elif how == "grpc-plain":
        e = Grpc(endpoint=f"localhost:{grpc_port}", insecure=True, timeout=3)
    elif how == "grpc-client-cert":
        e = Grpc(endpoint=f"localhost:{grpc_port}", credentials=grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem")), timeout=3)
    elif how == "http-ca":
        e = Http(endpoint=f"https://localhost:{http_port}/v1/traces", certificate_file=f"{d}/ca.pem", timeout=3)
    elif how == "http-other-ca":
        e = Http(endpoint=f"https://localhost:{http_port}/v1/traces", certificate_file=f"{d}/other-ca.pem", timeout=3)
    elif how == "http-client-cert":
        e = Http(endpoint=f"https://localhost:{http_port}/v1/traces", certificate_file=f"{d}/ca.pem", client_key_file=f"{d}/client.key", client_certificate_file=f"{d}/client.pem", timeout=3)
    print(name, e.export([span(name)]).name, flush=True)
"#;

fn tls_exports(python: &str, serve: &Serve, dir: &Path, cases: &[&str]) -> String {
    let port = |u: &str| u.rsplit(':').next().unwrap().to_string();
    let out = Command::new(python)
        .args([
            "-c",
            TLS_EXPORTS,
            &port(&serve.grpc),
            &port(&serve.http),
            dir.to_str().unwrap(),
        ])
        .args(cases)
        // requests lets these override the exporter's certificate_file (its
        // Session.verify); a machine that sets them would test its bundle.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// TLS on both receivers, tested with the real SDK exporters: a client that
/// trusts the server's CA is served; one that trusts another CA, or speaks
/// plain text, is refused. With --tls-client-ca a client must also present a
/// certificate that CA signed.
#[test]
fn both_receivers_serve_tls_and_mutual_tls_to_the_sdk_exporters() {
    let Some(python) = realstack_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    if certificates(&certs).is_none() {
        return;
    }
    let c = |f: &str| certs.join(f).display().to_string();
    let tls = [
        "--tls-cert",
        &c("server.pem"),
        "--tls-key",
        &c("server.key"),
    ];
    let serve = Serve::start(dir.path(), &[&["--window", "500ms"][..], &tls[..]].concat());
    assert!(serve.log().contains("(TLS)"), "{}", serve.log());
    let said = tls_exports(
        &python,
        &serve,
        &certs,
        &[
            "a=grpc-ca",
            "b=http-ca",
            "c=grpc-other-ca",
            "d=http-other-ca",
            "e=grpc-plain",
        ],
    );
    for (case, want) in [
        ("a", "SUCCESS"),
        ("b", "SUCCESS"),
        ("c", "FAILURE"),
        ("d", "FAILURE"),
        ("e", "FAILURE"),
    ] {
        assert!(said.contains(&format!("{case} {want}")), "{case}: {said}");
    }
    let (live, log) = serve.stop();
    assert_eq!(live.len(), 2, "the two exports over TLS: {log}");

    let ca = c("ca.pem");
    let mtls = [&tls[..], &["--tls-client-ca", &ca, "--window", "500ms"][..]].concat();
    let dir2 = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir2.path(), &mtls);
    assert!(
        serve.log().contains("client certificates required"),
        "{}",
        serve.log()
    );
    let said = tls_exports(
        &python,
        &serve,
        &certs,
        &[
            "f=grpc-client-cert",
            "g=http-client-cert",
            "h=grpc-ca",
            "i=http-ca",
        ],
    );
    for (case, want) in [
        ("f", "SUCCESS"),
        ("g", "SUCCESS"),
        ("h", "FAILURE"),
        ("i", "FAILURE"),
    ] {
        assert!(said.contains(&format!("{case} {want}")), "{case}: {said}");
    }
    let (live, log) = serve.stop();
    assert_eq!(
        live.len(),
        2,
        "the two exports with a client certificate: {log}"
    );
}

/// Listening beyond loopback without TLS or a token: a warning naming the flags.
#[test]
fn listening_beyond_loopback_in_clear_text_warns_naming_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &["--listen", "0.0.0.0"]);
    let log = serve.log();
    let _ = serve.stop();
    assert!(
        log.contains("without TLS") && log.contains("--tls-cert and --tls-key"),
        "{log}"
    );
    assert!(log.contains("without --token"), "{log}");
}

/// Sends raw bytes as the body of a TraceService/Export call.
async fn raw_grpc(endpoint: &str, body: Vec<u8>) -> Result<(), tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary::<Vec<u8>, Vec<u8>, RawCodec>(tonic::Request::new(body), path, RawCodec)
        .await
        .map(|_| ())
}

#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[test]
fn the_bearer_token_is_enforced_on_both_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &["--token", "s3cr3t"]);
    let url = format!("{}/v1/traces", serve.http);
    let body = span_json(
        "2123456789abcdef0123456789abcdef",
        "2123456789abcdef",
        "/v1/t",
        200,
    )
    .to_string();
    let (code, resp) = post(&url, "application/json", &[], body.as_bytes());
    assert_eq!(code, 401);
    assert!(String::from_utf8_lossy(&resp).contains("bearer token"));
    assert_eq!(
        post(
            &url,
            "application/json",
            &[("authorization", "Bearer wrong")],
            body.as_bytes()
        )
        .0,
        401
    );
    assert_eq!(
        post(
            &url,
            "application/json",
            &[("authorization", "Bearer s3cr3t")],
            body.as_bytes()
        )
        .0,
        200
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let grpc = serve.grpc.clone();
    let (without, with) = rt.block_on(async move {
        let mut client = TraceServiceClient::connect(grpc).await.unwrap();
        let req = || -> ExportTraceServiceRequest {
            serde_json::from_value(span_json(
                "3123456789abcdef0123456789abcdef",
                "3123456789abcdef",
                "/v1/g",
                200,
            ))
            .unwrap()
        };
        let without = client.export(req()).await.unwrap_err();
        let mut r = tonic::Request::new(req());
        r.metadata_mut()
            .insert("authorization", "Bearer s3cr3t".parse().unwrap());
        let with = client.export(r).await;
        (without, with)
    });
    assert_eq!(without.code(), tonic::Code::Unauthenticated);
    assert!(with.is_ok(), "{with:?}");
    let (live, log) = serve.stop();
    let paths: BTreeSet<&str> = live.iter().filter_map(|v| v["path"].as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/v1/t", "/v1/g"]),
        "only authorised spans: {log}"
    );
    assert!(log.contains("0 invalid, 3 auth"), "{log}");
}

/// `n` server spans, each its own trace, with a 200-byte attribute: a message
/// that costs the receiver memory fast.
fn heavy_batch(batch: u64, n: u64) -> Vec<u8> {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let kv = |k: &str, v: V| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let t = now_ns() as u64;
    let spans = (0..n)
        .map(|i| Span {
            trace_id: [(batch + 1).to_be_bytes(), (i + 1).to_be_bytes()].concat(),
            span_id: ((batch + 1) << 20 | (i + 1)).to_be_bytes().to_vec(),
            name: "GET /v1/orders/{id}".into(),
            kind: 2,
            start_time_unix_nano: t - 3_000_000,
            end_time_unix_nano: t,
            attributes: vec![
                kv("http.request.method", V::StringValue("GET".into())),
                kv("url.path", V::StringValue(format!("/v1/orders/{i}"))),
                kv("http.response.status_code", V::IntValue(200)),
                kv("user_agent.original", V::StringValue("x".repeat(200))),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", V::StringValue("orders".into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// serve's peak resident set so far (`VmHWM`), in bytes.
fn peak_rss(serve: &Serve) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", serve.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// The last number after `label` in serve's stderr (`refused 3 busy, 5 memory`).
fn last_count(log: &str, before: &str) -> u64 {
    log.lines()
        .rev()
        .find_map(|l| {
            let at = l.find(before)?;
            l[..at].split_whitespace().last()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no count before {before:?} in: {log}"))
}

#[test]
fn over_the_memory_limit_senders_are_refused_and_every_accepted_span_is_emitted() {
    let dir = tempfile::tempdir().unwrap();
    const LIMIT: u64 = 256 << 20;
    // Caps far above what the limit allows, and a window that keeps every
    // request open: only the memory limiter can hold this flood.
    let serve = Serve::start(
        dir.path(),
        &[
            "--memory-limit",
            "256MiB",
            "--window",
            "60s",
            "--max-open",
            "100000000",
            "--max-events",
            "100000000",
            "--max-queued-events",
            "100000000",
            "--grpc",
            "off",
        ],
    );
    let url = format!("{}/v1/traces", serve.http);
    let until = Instant::now() + Duration::from_secs(8);
    let senders: Vec<_> = (0..2u64)
        .map(|s| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (mut accepted, mut refused, mut said) = (0u64, 0u64, String::new());
                let mut batch = s << 32;
                while Instant::now() < until {
                    batch += 1;
                    let body = heavy_batch(batch, 2_000);
                    // Retried as an exporter would, until accepted or time is up.
                    while Instant::now() < until + Duration::from_secs(20) {
                        let (status, text) = post(&url, "application/x-protobuf", &[], &body);
                        match status {
                            200 => {
                                accepted += 2_000;
                                break;
                            }
                            429 => {
                                refused += 1;
                                said = String::from_utf8_lossy(&text).into_owned();
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            other => panic!("status {other}: {}", String::from_utf8_lossy(&text)),
                        }
                    }
                }
                (accepted, refused, said)
            })
        })
        .collect();
    let results: Vec<(u64, u64, String)> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let peak = peak_rss(&serve);
    let (live, log) = serve.stop();
    let accepted: u64 = results.iter().map(|r| r.0).sum();
    let refused: u64 = results.iter().map(|r| r.1).sum();
    assert!(refused > 0, "the flood was refused at times\n{log}");
    assert!(
        results.iter().any(|r| r.2.contains("memory limit")),
        "a refusal names the memory limit: {:?}",
        results.iter().map(|r| &r.2).collect::<Vec<_>>()
    );
    assert!(
        last_count(&log, " memory, ") > 0,
        "counted as memory refusals\n{log}"
    );
    assert!(
        peak < LIMIT,
        "peak RSS {} MiB stays under the {} MiB limit\n{log}",
        peak >> 20,
        LIMIT >> 20
    );
    let emitted: u64 = live.iter().map(|v| v["events"].as_u64().unwrap()).sum();
    assert!(
        accepted > 20_000,
        "the flood ran: {accepted} spans accepted\n{log}"
    );
    // Refused for longer than the soft mark's patience, with every request
    // held by the window: the longest idle were emitted early, flagged.
    let evicted = live
        .iter()
        .filter(|v| v["flags"].as_array().unwrap().contains(&json!("evicted")))
        .count();
    assert!(
        evicted > 0 && last_count(&log, "×") > 0,
        "shed: {evicted} evicted\n{log}"
    );
    assert_eq!(emitted, accepted, "every accepted span is emitted\n{log}");
    assert!(
        log.contains("refused") && log.contains("messages over the soft mark"),
        "{log}"
    );
}

#[test]
fn gateway_lines_shipped_with_their_trace_context_reach_the_instance_of_their_spans() {
    let Some(python) = realstack_python() else {
        return;
    };
    let run = run_layouts(&python, 47, true);
    let one = verdicts(&run.one);
    assert_eq!(one.len(), 150, "one request per request sent");
    // The access log's lines that carry the client's traceparent (`tp=`) and
    // reached a service: routed with their trace, each is whole on the
    // instance that got its spans, before any reconcile.
    let access = std::fs::read_to_string(run.out.join("gateway/access.log")).unwrap();
    let rid = regex::Regex::new(r"\brid=([0-9a-f]{32})").unwrap();
    let traced: BTreeSet<String> = access
        .lines()
        .filter(|l| l.contains(" tp=00-"))
        .filter_map(|l| rid.captures(l).map(|c| c[1].to_string()))
        .collect();
    let sources = |store: &Path| -> BTreeMap<String, Value> {
        crate::common::query(
            store,
            "SELECT request_id, sources FROM requests WHERE request_id IS NOT NULL",
        )
        .into_iter()
        .map(|v| {
            (
                v["request_id"].as_str().unwrap().to_string(),
                v["sources"].clone(),
            )
        })
        .collect()
    };
    let (whole, before) = (sources(&run.one), sources(&run.split));
    let joined: Vec<&String> = traced
        .iter()
        .filter(|r| whole[*r].as_array().unwrap().contains(&json!("span")))
        .collect();
    assert!(joined.len() > 60, "{} traced and joined", joined.len());
    for r in &joined {
        assert_eq!(
            before.get(*r),
            whole.get(*r),
            "{r} is whole before reconcile"
        );
    }
    // A line shipped cites its file and line, as a followed one does.
    let origins = crate::common::query(
        &run.split,
        "SELECT origin FROM events WHERE source = 'gateway' LIMIT 1",
    );
    let access_path = run.out.join("gateway/access.log");
    assert!(
        origins[0]["origin"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:", access_path.display())),
        "{origins:?}"
    );
    // The lines without trace context went to either instance: reconcile joins them.
    assert_ne!(verdicts(&run.split), one);
    crate::common::reconcile(&run.split);
    assert_eq!(verdicts(&run.split), one);
}
