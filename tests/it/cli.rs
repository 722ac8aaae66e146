//! The command-line contract (docs/CONTRACT.md "Commands", "--json", "Exit codes"): `--json` lines, `timeline`,
//! `rules list|check`, user rule packs, exit codes.

use crate::common::*;
use serde_json::Value;

fn json_lines(args: &[&str]) -> Vec<Value> {
    let out = tracejoin(args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn json_lines_follow_the_contract() {
    let lines = json_lines(&["analyze", "--json", "sample-logs"]);
    assert_eq!(lines.len(), 300);
    for key in [
        "request_id",
        "trace_id",
        "ids",
        "start",
        "duration_ms",
        "method",
        "host",
        "path",
        "route",
        "status",
        "failed",
        "label",
        "rule",
        "explanation",
        "evidence",
        "sources",
        "events",
        "join",
        "service",
    ] {
        assert!(lines[0].get(key).is_some(), "missing {key}");
    }
    let failed: Vec<&Value> = lines.iter().filter(|l| l["failed"] == true).collect();
    assert!(!failed.is_empty());
    for l in &failed {
        assert!(l["label"].is_string() && l["rule"].is_string() && l["explanation"].is_string());
        let ev = l["evidence"].as_array().unwrap();
        assert!(!ev.is_empty(), "{l}");
        // Evidence points back at a file and line that exist.
        let origin = ev[0]["origin"].as_str().unwrap();
        let (file, line) = origin.split('#').next().unwrap().rsplit_once(':').unwrap();
        let n: usize = line.parse().unwrap();
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(text.lines().count() >= n, "{origin}");
    }
    for l in lines.iter().filter(|l| l["failed"] == false) {
        assert!(l["label"].is_null() && l["rule"].is_null());
    }
    let only = json_lines(&["analyze", "--json", "--failures-only", "sample-logs"]);
    assert_eq!(only.len(), failed.len());
}

#[test]
fn a_backend_500_is_joined_and_explained_by_its_dependency() {
    let lines = json_lines(&["analyze", "--json", "--failures-only", "sample-logs"]);
    let l = lines
        .iter()
        .find(|l| l["status"] == 500 && l["path"] == "/v1/payments")
        .expect("the incident has a payments 500");
    assert_eq!(l["label"], "upstream");
    assert_eq!(l["rule"], "backend-dependency-failure");
    assert_eq!(l["join"], "exact");
    let sources: Vec<&str> = l["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(sources, ["gateway", "backend", "span", "otel_log"]);
    assert!(
        l["explanation"]
            .as_str()
            .unwrap()
            .contains("bank-api timed out"),
        "{l}"
    );
}

#[test]
fn timeline_finds_a_request_by_any_of_its_ids() {
    let lines = json_lines(&["analyze", "--json", "--failures-only", "sample-logs"]);
    let l = lines
        .iter()
        .find(|l| l["rule"] == "backend-auth-denied" && !l["trace_id"].is_null())
        .unwrap();
    let rid = l["request_id"].as_str().unwrap();
    let trace = l["trace_id"].as_str().unwrap().to_uppercase();
    for id in [rid, trace.as_str()] {
        let out = tracejoin(&["timeline", id, "sample-logs"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.starts_with(&format!("request {rid}")), "{text}");
        assert!(
            text.contains("verdict: auth (rule backend-auth-denied)"),
            "{text}"
        );
        assert!(text.contains("+0.000 ms  gateway"), "{text}");
        assert!(text.contains("spans:"), "{text}");
    }
    let out = tracejoin(&["timeline", "no-such-id", "sample-logs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no request has the id"));
}

#[test]
fn the_builtin_rules_check_and_list() {
    let out = tracejoin(&["rules", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(" 0 failed"), "{}", stdout(&out));
    let out = tracejoin(&["rules", "list"]);
    let text = stdout(&out);
    for label in ["auth", "routing", "quota", "transform", "upstream"] {
        assert!(text.contains(label));
    }
}

#[test]
fn a_user_rule_pack_adds_rules_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        r#"
[patterns]
typo = '^/v1/ordrs'

[[rule]]
name = "known-client-typo"
label = "routing"
priority = 99
when = "like(request.path, 'typo')"
explain = "the mobile app 3.2 typo: {{request.path}}"

[[rule.example]]
label = "routing"
event = [{ source = "gateway", status = 404, path = "/v1/ordrs" }]
"#,
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    let out = tracejoin(&["rules", "check", "--rules", rules]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&[
        "analyze",
        "--json",
        "--failures-only",
        "--rules",
        rules,
        "sample-logs",
    ]);
    let typo: Vec<_> = lines.iter().filter(|l| l["path"] == "/v1/ordrs").collect();
    assert!(!typo.is_empty());
    assert!(typo.iter().all(|l| l["rule"] == "known-client-typo"));

    std::fs::write(
        dir.path().join("site.toml"),
        "[[rule]]\nname = \"broken\"\nlabel = \"auth\"\npriority = 1\nwhen = \"request.status ==\"\nexplain = \"x\"\n",
    )
    .unwrap();
    let out = tracejoin(&["analyze", "--rules", rules, "sample-logs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("rule \"broken\": when does not compile"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_summary_counts_what_the_json_says() {
    let lines = json_lines(&["analyze", "--json", "sample-logs"]);
    let out = tracejoin(&["analyze", "sample-logs"]);
    assert!(out.status.success());
    let summary = stdout(&out);
    let failed = lines.iter().filter(|l| l["failed"] == true).count();
    assert!(
        summary.contains(&format!("failed: {failed} of 300")),
        "{summary}"
    );
    for label in ["auth", "routing", "quota", "transform", "upstream"] {
        let n = lines.iter().filter(|l| l["label"] == label).count();
        let row = summary
            .lines()
            .find(|r| r.split_whitespace().next() == Some(label))
            .unwrap_or_else(|| panic!("no {label} row in {summary}"));
        let count: usize = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(count, n, "{label}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(tracejoin(&["analyze"]).status.code(), Some(2));
    assert_eq!(tracejoin(&["bogus"]).status.code(), Some(2));
    assert_eq!(
        tracejoin(&["analyze", "--since", "yesterday", "sample-logs"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn since_and_until_select_requests_by_start_time() {
    let all = json_lines(&["analyze", "--json", "sample-logs"]);
    let mut starts: Vec<&str> = all.iter().map(|l| l["start"].as_str().unwrap()).collect();
    starts.sort();
    let mid = starts[starts.len() / 2];
    let after = json_lines(&["analyze", "--json", "--since", mid, "sample-logs"]);
    let before = json_lines(&["analyze", "--json", "--until", mid, "sample-logs"]);
    assert_eq!(after.len() + before.len(), all.len());
    assert!(after.iter().all(|l| l["start"].as_str().unwrap() >= mid));
    assert!(before.iter().all(|l| l["start"].as_str().unwrap() < mid));
}

/// Shifts every span of one service by `ns` in a copy of sample-logs.
fn skewed_copy(service: &str, ns: u64) -> tempfile::TempDir {
    let dir = sample_logs_copy(&["otel/traces.jsonl"]);
    let traces = std::fs::read_to_string(repo().join("sample-logs/otel/traces.jsonl")).unwrap();
    let mut out = String::new();
    for line in traces.lines() {
        let mut doc: Value = serde_json::from_str(line).unwrap();
        for rs in doc["resourceSpans"].as_array_mut().unwrap() {
            let name = rs["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "service.name")
                .map(|a| a["value"]["stringValue"].clone())
                .unwrap();
            if name != service {
                continue;
            }
            for ss in rs["scopeSpans"].as_array_mut().unwrap() {
                for span in ss["spans"].as_array_mut().unwrap() {
                    for k in ["startTimeUnixNano", "endTimeUnixNano"] {
                        let t: u64 = span[k].as_str().unwrap().parse().unwrap();
                        span[k] = Value::String((t + ns).to_string());
                    }
                }
            }
        }
        out.push_str(&doc.to_string());
        out.push('\n');
    }
    std::fs::write(dir.path().join("otel/traces.jsonl"), out).unwrap();
    dir
}

#[test]
fn clock_skew_is_estimated_and_the_timeline_shows_corrected_times() {
    let dir = skewed_copy("orders", 2_000_000_000);
    let path = dir.path().to_str().unwrap();
    let out = tracejoin(&["analyze", path]);
    let summary = stdout(&out);
    let row = summary
        .lines()
        .find(|l| l.trim_start().starts_with("orders "))
        .unwrap();
    let ms: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((ms - 2000.0).abs() < 5.0, "{row}");
    // The skewed spans still join their requests: the idle window covers 2 s.
    let lines = json_lines(&["analyze", "--json", path]);
    let l = lines
        .iter()
        .find(|l| l["service"] == "orders" && l["sources"].as_array().unwrap().len() >= 3)
        .unwrap();
    let out = tracejoin(&["timeline", l["request_id"].as_str().unwrap(), path]);
    let text = stdout(&out);
    let span_line = text.lines().find(|l| l.contains("  span ")).unwrap();
    assert!(span_line.contains("(clock-corrected +"), "{text}");
    let gateway_line = text.lines().find(|l| l.contains("  gateway ")).unwrap();
    assert!(!gateway_line.contains("clock-corrected"), "{text}");
}

/// `--log-format`: the format line pasted from the gateway's configuration
/// reads every field of it (here Apache's `%D` duration and `%{UNIQUE_ID}e`
/// request id after the combined fields, the way a real httpd 2.4 wrote the
/// file), for every input or for one `PATH=`; a wrong dialect is a usage error
/// that names the choices.
#[test]
fn a_pasted_gateway_format_reads_every_field() {
    let log = repo().join("tests/data/gateway-logs/apache-access.log");
    let log = log.to_str().unwrap();
    let apache = r#"apache:%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %{UNIQUE_ID}e "%{traceparent}i""#;
    for spec in [apache.to_string(), format!("{log}={apache}")] {
        let out = tracejoin(&["analyze", "--log-format", &spec, log]);
        assert!(out.status.success(), "{}", stderr(&out));
        let row = stdout(&out);
        assert!(
            row.contains("log_format_1") && !row.contains("`tail`"),
            "{row}"
        );
        let lines = json_lines(&["analyze", "--json", "--log-format", &spec, log]);
        assert_eq!(lines.len(), 13);
        let slow = lines
            .iter()
            .find(|l| l["path"] == "/api/slow/report")
            .unwrap();
        assert_eq!(slow["duration_ms"], 1004.165, "%D is microseconds: {slow}");
        assert_eq!(slow["request_id"], "aw18gTAxyLClITOzK2D4wQAAAEA", "{slow}");
        assert_eq!(
            slow["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{slow}"
        );
    }
    let bad = tracejoin(&["analyze", "--log-format", "lighttpd:%h %t", log]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("nginx, apache, haproxy, envoy"),
        "{}",
        stderr(&bad)
    );
}

/// An access log whose only time is `$time_local` (to the second, written at
/// the end: ingress-nginx's default format is one): the rounding is not
/// taken for clock skew, and the gateway line is drawn before its backend
/// work, with the time it logged kept.
#[test]
fn a_gateway_time_to_the_second_is_not_skew_and_is_placed_by_its_spans() {
    let dir = sample_logs_copy(&[]);
    let access = dir.path().join("gateway/access.log");
    let text = std::fs::read_to_string(&access).unwrap();
    let coarse: String = text
        .lines()
        .map(|l| l.split(" msec=").next().unwrap().to_string() + "\n")
        .collect();
    std::fs::write(&access, coarse).unwrap();
    let path = dir.path().to_str().unwrap();
    let summary = stdout(&tracejoin(&["analyze", path]));
    for service in ["orders ", "payments "] {
        let row = summary
            .lines()
            .find(|l| l.trim_start().starts_with(service))
            .unwrap_or_else(|| panic!("{summary}"));
        let ms: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(ms.abs() < 20.0, "rounding taken for skew: {row}");
    }
    let lines = json_lines(&["analyze", "--json", path]);
    let l = lines
        .iter()
        .find(|l| l["service"] == "orders" && l["sources"].as_array().unwrap().len() >= 3)
        .unwrap();
    let out = stdout(&tracejoin(&[
        "timeline",
        l["request_id"].as_str().unwrap(),
        path,
    ]));
    let offsets: Vec<(f64, &str)> = out
        .lines()
        .filter_map(|l| {
            let t = l.trim_start().strip_prefix('+')?;
            let (ms, rest) = t.split_once(" ms")?;
            Some((ms.parse().ok()?, rest.trim_start()))
        })
        .collect();
    assert!(
        offsets[0].1.starts_with("gateway"),
        "the gateway line comes first: {out}"
    );
    // Drawn just before its entry span, not up to a second earlier.
    let span = offsets
        .iter()
        .find(|(_, what)| what.starts_with("span"))
        .unwrap();
    assert!(
        span.0 < 5.0,
        "the entry span starts {} ms after the gateway line: {out}",
        span.0
    );
}
