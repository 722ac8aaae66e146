//! Gateway error logs next to access logs, as real servers wrote them
//! (tests/data/gateway-logs: nginx 1.22, Apache httpd 2.4.71, HAProxy 2.6; how
//! each was produced is in its README): every error line about a request joins
//! that request (marked inferred), the rules read it, the verdict cites it;
//! lines about no request are context, never input errors.

use crate::common::{repo, stderr, stdout, tracejoin};
use serde_json::Value;

fn verdicts(files: &[&str]) -> Vec<Value> {
    let dir = repo().join("tests/data/gateway-logs");
    let mut args = vec!["analyze".to_string(), "--json".to_string()];
    args.extend(files.iter().map(|f| dir.join(f).display().to_string()));
    let out = tracejoin(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (label, rule, the text the cited error-log line must hold) of the request
/// with this method and path (the n-th such request, from 0).
fn check(vs: &[Value], path: &str, n: usize, label: &str, rule: &str, cause: &str, log: &str) {
    let v = vs
        .iter()
        .filter(|v| v["path"] == path)
        .nth(n)
        .unwrap_or_else(|| panic!("no request {n} for {path}"));
    assert_eq!(
        (v["label"].as_str(), v["rule"].as_str()),
        (Some(label), Some(rule)),
        "{v}"
    );
    assert_eq!(v["join"], "inferred", "{v}");
    assert!(
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "gateway_log"),
        "{v}"
    );
    let lines = std::fs::read_to_string(repo().join("tests/data/gateway-logs").join(log)).unwrap();
    let cited: Vec<&str> = v["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["origin"].as_str())
        .filter(|o| o.contains(log))
        .map(|o| {
            let n: usize = o.rsplit(':').next().unwrap().parse().unwrap();
            lines.lines().nth(n - 1).unwrap()
        })
        .collect();
    assert!(
        cited.iter().any(|l| l.contains(cause)),
        "{path}: the evidence must cite the {log} line saying {cause:?}; cited {cited:?}"
    );
}

#[test]
fn nginx_error_log_lines_join_their_requests_and_decide_the_label() {
    let vs = verdicts(&["nginx-access.log", "nginx-error.log"]);
    let (a, e) = ("nginx-error.log", "upstream");
    check(
        &vs,
        "/api/slow/report",
        0,
        e,
        "gateway-log-upstream",
        "upstream timed out",
        a,
    );
    check(
        &vs,
        "/api/close/session",
        0,
        e,
        "gateway-log-upstream",
        "upstream prematurely closed",
        a,
    );
    check(
        &vs,
        "/dead/health",
        0,
        e,
        "gateway-log-upstream",
        "connect() failed",
        a,
    );
    check(
        &vs,
        "/pair/b",
        0,
        e,
        "gateway-log-upstream",
        "no live upstreams",
        a,
    );
    // With nginx's default limit_req_status (503), only the error line says quota.
    check(
        &vs,
        "/limited/x",
        1,
        "quota",
        "gateway-log-quota",
        "limiting requests",
        a,
    );
    check(
        &vs,
        "/limited-warn/x",
        0,
        "quota",
        "gateway-log-quota",
        "limiting requests",
        a,
    );
    check(
        &vs,
        "/conn/second",
        0,
        "quota",
        "gateway-log-quota",
        "limiting connections",
        a,
    );
    check(
        &vs,
        "/upload",
        0,
        "transform",
        "gateway-log-transform",
        "too large body",
        a,
    );
    check(
        &vs,
        "/admin/users",
        0,
        "auth",
        "gateway-log-auth",
        "access forbidden by rule",
        a,
    );
    check(
        &vs,
        "/private/x",
        0,
        "auth",
        "gateway-log-auth",
        "was not found",
        a,
    );
    check(
        &vs,
        "/private/x",
        1,
        "auth",
        "gateway-log-auth",
        "password mismatch",
        a,
    );
    check(
        &vs,
        "/files/missing.txt",
        0,
        "routing",
        "gateway-log-routing",
        "No such file",
        a,
    );
    check(
        &vs,
        "/files/emptydir/",
        0,
        "routing",
        "gateway-log-routing",
        "is forbidden",
        a,
    );
    // A rejection logged at notice or info (limit_req_log_level) never decides.
    let notice = vs
        .iter()
        .find(|v| v["path"] == "/limited-notice/x")
        .unwrap();
    assert_eq!(notice["rule"], "gateway-no-upstream-available", "{notice}");
    // The first /limited/x passed: the limiter's line is about the second.
    let passed = vs.iter().find(|v| v["path"] == "/limited/x").unwrap();
    assert_eq!(
        (passed["failed"].as_bool(), passed["join"].as_str()),
        (Some(false), Some("single"))
    );
}

#[test]
fn apache_error_log_lines_join_by_client_and_time() {
    let vs = verdicts(&["apache-access.log", "apache-error.log"]);
    let a = "apache-error.log";
    check(
        &vs,
        "/api/slow/report",
        0,
        "upstream",
        "gateway-log-upstream",
        "AH01102",
        a,
    );
    check(
        &vs,
        "/dead/health",
        0,
        "upstream",
        "gateway-log-upstream",
        "AH01114",
        a,
    );
    check(
        &vs,
        "/admin/users",
        0,
        "auth",
        "gateway-log-auth",
        "AH01630",
        a,
    );
    check(
        &vs,
        "/private/x",
        1,
        "auth",
        "gateway-log-auth",
        "AH01617",
        a,
    );
    check(
        &vs,
        "/files/emptydir/",
        0,
        "routing",
        "gateway-log-routing",
        "AH01276",
        a,
    );
}

/// `/var/log/nginx`-like folders: access and error logs of every gateway
/// together. Every line is an event or context; nothing is an input error.
#[test]
fn a_folder_of_access_and_error_logs_analyzes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "nginx-access.log",
        "nginx-error.log",
        "apache-access.log",
        "apache-error.log",
        "haproxy-stdout.log",
    ] {
        std::fs::copy(
            repo().join("tests/data/gateway-logs").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let out = tracejoin(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    for (file, context) in [
        ("nginx-error.log", "context"),
        ("apache-error.log", "context"),
        ("haproxy-stdout.log", "context"),
    ] {
        let row = text.lines().find(|l| l.contains(file)).unwrap();
        assert!(row.contains(" 0 errors") && row.contains(context), "{row}");
    }
}

/// Access logs that reach a file through a wrapper — syslog (nginx's
/// `access_log syslog:` datagrams as a real nginx sent them), a container
/// runtime's CRI lines, Docker's json-file driver (a long line split in two),
/// `docker compose logs` with two services — are read as the inner format,
/// whatever wraps them; one syslog stream with nginx's access and error logs
/// gives each tag its own format, and the error lines still join.
#[test]
fn wrapped_lines_are_peeled_and_read_as_their_inner_format() {
    let cases: &[(&str, &str, &str, usize)] = &[
        (
            "nginx-syslog-rfc3164.log",
            "nginx_combined_kv",
            "syslog (RFC 3164), nginx_error for `nginx_error` lines",
            22,
        ),
        // The same request twice: whole, then split by the runtime (CRI `P`
        // then `F`; json-file pieces without the newline): one request.
        (
            "cri-wrapped-nginx.log",
            "nginx_combined_kv",
            "container runtime (CRI)",
            1,
        ),
        (
            "docker-json-file-wrapped-nginx.log",
            "nginx_combined_kv",
            "docker json-file",
            1,
        ),
        (
            "compose-logs-prefixed.log",
            "caddy_json",
            "docker compose logs, nginx_combined_kv for `gateway-nginx` lines",
            3,
        ),
    ];
    for (file, format, wrapper, requests) in cases {
        let path = repo().join("tests/data/gateway-logs").join(file);
        let out = tracejoin(&["analyze", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let text = stdout(&out);
        let row = text.lines().find(|l| l.contains(file)).unwrap();
        assert!(
            row.contains(format) && row.contains(&format!("(in {wrapper})")),
            "{row}"
        );
        assert!(row.contains(" 0 errors"), "{row}");
        let vs = verdicts(&[file]);
        assert_eq!(vs.len(), *requests, "{file}");
        assert!(
            vs.iter().all(|v| v["request_id"].is_string()),
            "{file}: every request has its id"
        );
    }
    // The error lines that came through the same syslog join their requests.
    let vs = verdicts(&["nginx-syslog-rfc3164.log"]);
    let slow = vs.iter().find(|v| v["path"] == "/api/slow/report").unwrap();
    assert_eq!(slow["rule"], "gateway-log-upstream", "{slow}");
}

/// Every request of `analyze --json` on `dir`, sorted, as text.
fn analyzed(dir: &std::path::Path) -> Vec<String> {
    let out = tracejoin(&["analyze", "--json", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn gateway_lines_shipped_as_filelog_records_read_as_the_lines_they_carry() {
    let inputs = crate::common::sample_logs_copy(&[]);
    let access = inputs.path().join("gateway/access.log");
    let before = analyzed(inputs.path());
    // The access log as the Collector's filelog receiver ships it
    // (`include_file_path`, `include_file_record_number`: the body is the line
    // as written) and its file exporter writes it: one export per line.
    let text = std::fs::read_to_string(&access).unwrap();
    let attribute = |k: &str, v: Value| serde_json::json!({"key": k, "value": v});
    let records: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::json!({
                "observedTimeUnixNano": "1795640990000000000",
                "body": {"stringValue": line},
                "attributes": [
                    attribute("log.file.name", serde_json::json!({"stringValue": "access.log"})),
                    attribute("log.file.path", serde_json::json!({"stringValue": access.display().to_string()})),
                    attribute("log.file.record_number", serde_json::json!({"intValue": (i + 1).to_string()})),
                ],
            })
        })
        .collect();
    let shipped: String = records
        .chunks(100)
        .map(|batch| {
            let doc = serde_json::json!({"resourceLogs": [{
                "resource": {"attributes": [attribute("service.name", serde_json::json!({"stringValue": "otelcol"}))]},
                "scopeLogs": [{"scope": {}, "logRecords": batch}],
            }]});
            format!("{doc}\n")
        })
        .collect();
    std::fs::remove_file(&access).unwrap();
    std::fs::write(inputs.path().join("gateway/shipped.jsonl"), shipped).unwrap();
    // Read as the lines they carry, cited by the file and line they came
    // from: every request, verdict and evidence as when the file is read.
    assert_eq!(analyzed(inputs.path()), before);
}
