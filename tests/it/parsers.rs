//! The parser engine on real lines: built-in definitions (whose samples are
//! checked at load), detection on files written by real software, user
//! definitions and their error messages.

use crate::common::*;
use std::io::Write;
use tracejoin::event::Source;
use tracejoin::parse::Registry;

#[test]
fn every_builtin_definition_loads_and_its_samples_parse() {
    // Loading runs each [[sample]] and compares its `expect` values.
    let r = Registry::load(None).unwrap();
    let names: Vec<&str> = r.formats.iter().map(|f| &*f.name).collect();
    for want in [
        "nginx_combined",
        "nginx_combined_kv",
        "nginx_upstreaminfo",
        "nginx_json",
        "backend_json",
        "backend_logfmt",
        "otlp_traces",
        "otlp_logs",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(r.formats.iter().all(|f| !f.def.samples.is_empty()));
}

#[test]
fn files_written_by_real_software_are_detected_as_their_format() {
    let root = repo();
    let a = analyze(&[
        &root.join("sample-logs"),
        &root.join("tests/data/real"),
        &root.join("tests/data/vendor"),
    ]);
    let format_of = |suffix: &str| {
        a.info
            .files
            .iter()
            .find(|f| f.name.ends_with(suffix))
            .and_then(|f| f.format.as_deref().map(str::to_string))
            .unwrap_or_else(|| panic!("{suffix} not read"))
    };
    assert_eq!(format_of("gateway/access.log"), "nginx_combined_kv");
    assert_eq!(format_of("orders/orders.log"), "backend_json");
    assert_eq!(format_of("payments/payments.log"), "backend_logfmt");
    assert_eq!(format_of("otel/traces.jsonl"), "otlp_traces");
    assert_eq!(format_of("otel/logs.jsonl"), "otlp_logs");
    assert_eq!(
        format_of("real/nginx-upstreaminfo.log"),
        "nginx_upstreaminfo"
    );
    assert_eq!(format_of("real/nginx-json.log"), "nginx_json");
    assert_eq!(
        format_of("real/haproxy-httplog-id.log"),
        "haproxy_httplog_id"
    );
    assert_eq!(format_of("vendor/otlp-trace.json"), "otlp_traces");
    assert_eq!(format_of("vendor/otlp-logs.json"), "otlp_logs");
    assert_eq!(a.input_error_count(), 0, "{:?}", a.info.files);
}

#[test]
fn pretty_printed_otlp_documents_decode_with_uppercase_ids_and_bare_64_bit_ints() {
    let root = repo();
    let a = analyze(&[&root.join("tests/data/vendor")]);
    let events: Vec<_> = a.requests.iter().flat_map(|l| &l.request.events).collect();
    let span = events.iter().find(|e| e.source() == Source::Span).unwrap();
    assert_eq!(
        span.trace_id.as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(span.span.as_ref().unwrap().name, "I'm a server span");
    assert_eq!(span.duration_ms, Some(1000.0));
    assert_eq!(span.service.as_deref(), Some("my.service"));
    let log = events
        .iter()
        .find(|e| e.source() == Source::OtelLog)
        .unwrap();
    // 1544712660300000000 is above 2^53: it must not go through f64.
    assert_eq!(log.ts, Some(1_544_712_660_300_000_000));
    assert_eq!(log.message.as_deref(), Some("Example log record"));
    assert_eq!(log.attr("array.attribute"), Some(r#"["many","values"]"#));
    // The log record and the span share trace and span id: one request.
    assert_eq!(a.requests.len(), 1);
}

#[test]
fn real_nginx_fields_are_normalised() {
    let root = repo();
    let a = analyze(&[&root.join("tests/data/real/nginx-upstreaminfo.log")]);
    let ev = &a.requests[0].request.events[0];
    // upstreaminfo: $request_time is seconds; the event holds milliseconds.
    let raw = std::fs::read_to_string(root.join("tests/data/real/nginx-upstreaminfo.log")).unwrap();
    let first = raw
        .lines()
        .find(|l| l.contains(ev.request_id.as_deref().unwrap()))
        .unwrap();
    let fields: Vec<&str> = first.split(' ').collect();
    let request_time: f64 = fields[fields.len() - 8].parse().unwrap();
    assert_eq!(ev.duration_ms.unwrap(), request_time * 1000.0);
    assert!(ev.route.as_deref().unwrap().starts_with("default-"));
}

#[test]
fn a_url_in_the_query_string_leaves_the_path_alone_and_a_full_url_gives_its_path() {
    // An open-redirect or OAuth callback (`/login?next=http://...`) is a path
    // with a query; a proxy's absolute-form request line is a URL.
    let registry = Registry::load(None).unwrap();
    let format = registry.get("nginx_combined").unwrap();
    let file: std::sync::Arc<str> = "access.log".into();
    let mut out = Vec::new();
    for (line, path, host, query) in [
        (
            r#"10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] "GET /login?next=http://app.example.com/cart HTTP/1.1" 302 0 "-" "curl/8.5.0""#,
            "/login",
            None,
            Some("next=http://app.example.com/cart"),
        ),
        (
            r#"10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] "GET http://api.example.com/v1/orders?x=1 HTTP/1.1" 200 5 "-" "curl/8.5.0""#,
            "/v1/orders",
            Some("api.example.com"),
            Some("x=1"),
        ),
    ] {
        out.clear();
        format.parse(line, &file, 1, &mut out).unwrap();
        let ev = &out[0];
        assert_eq!(ev.path.as_deref(), Some(path), "{line}");
        assert_eq!(ev.host.as_deref(), host, "{line}");
        assert_eq!(ev.attr("query"), query, "{line}");
    }
}

#[test]
fn a_required_json_key_is_found_nested_dotted_or_escaped_and_its_absence_refuses_the_line() {
    // JSON definitions skip reading a line whose text cannot hold a required
    // key; every way JSON may write the key must still be read.
    let def: tracejoin::parse::definition::Definition = toml::from_str(
        r#"
name = "ecs_gw"
title = "ECS-style gateway"
reference = "Elastic Common Schema, http.response.status_code"
source = "gateway"
kind = "json"
require = ["http.response.status_code"]
[fields]
status = ["http.response.status_code"]
[[sample]]
line = '{"@timestamp":"2026-11-24T10:00:00.000Z","http":{"request":{"method":"GET"},"response":{"status_code":503}}}'
expect = { status = "503" }
"#,
    )
    .unwrap();
    let format = tracejoin::parse::Format::compile(def, "test".into()).unwrap();
    let file: std::sync::Arc<str> = "ecs.log".into();
    for line in [
        r#"{"http":{"response":{"status_code":503}}}"#,
        r#"{"http.response.status_code":503}"#,
        r#"{"http.response.status_\u0063ode":503}"#,
    ] {
        let mut out = Vec::new();
        format
            .parse(line, &file, 1, &mut out)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(out[0].status, Some(503), "{line}");
    }
    let err = format
        .parse(
            r#"{"http":{"response":{"code":503}}}"#,
            &file,
            1,
            &mut Vec::new(),
        )
        .unwrap_err();
    assert!(err.contains("no field http.response.status_code"), "{err}");
}

#[test]
fn a_user_definition_adds_a_format_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("legacy.toml"),
        r#"
name = "legacy_gw"
title = "Our legacy gateway"
reference = "internal wiki"
source = "gateway"
kind = "regex"
pattern = '^(?P<when>\S+) (?P<rid>[0-9a-f]+) (?P<verb>[A-Z]+) (?P<url>\S+) -> (?P<code>\d{3}) in (?P<ms>\d+)ms$'
[fields]
ts = { from = ["when"], time = "iso" }
request_id = ["rid"]
method = ["verb"]
uri = ["url"]
status = ["code"]
duration_ms = { from = ["ms"], unit = "ms" }
[[sample]]
line = "2026-11-24T10:00:00Z 0af7 GET /v1/x?y=1 -> 503 in 12ms"
expect = { status = "503", path = "/v1/x", duration_ms = "12", request_id = "0af7" }
"#,
    )
    .unwrap();
    let log = dir.path().join("gw.log");
    std::fs::write(
        &log,
        "2026-11-24T10:00:00Z 0af7 GET /v1/x -> 503 in 12ms\n2026-11-24T10:00:01Z 0af8 GET /v1/y -> 200 in 3ms\n",
    )
    .unwrap();
    let out = tracejoin(&[
        "analyze",
        "--parsers",
        dir.path().to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"], 503);
    assert_eq!(lines[0]["label"], "upstream");
    assert_eq!(lines[1]["label"], serde_json::Value::Null);
}

#[test]
fn a_definition_whose_sample_does_not_match_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("bad.toml")).unwrap();
    writeln!(
        f,
        r#"name = "bad"
title = "bad"
reference = "-"
source = "gateway"
kind = "regex"
pattern = '^(?P<code>\d+)$'
[fields]
status = ["code"]
[[sample]]
line = "200"
expect = {{ status = "404" }}"#
    )
    .unwrap();
    let out = tracejoin(&["formats", "--parsers", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(
        err.contains(r#"field status is "200", expected "404""#),
        "{err}"
    );
}

#[test]
fn format_override_forces_a_definition() {
    let root = repo();
    let path = root.join("tests/data/real/nginx-json.log");
    let p = path.to_str().unwrap();
    // Forcing the wrong format: every line is an error, with its line number.
    let out = tracejoin(&["analyze", "--format", &format!("{p}=backend_logfmt"), p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{p}:1: no field")),
        "{}",
        stderr(&out)
    );
    let out = tracejoin(&["analyze", "--format", &format!("{p}=nope"), p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown format \"nope\""));
}

#[test]
fn every_gateway_format_is_detected_in_a_folder_that_mixes_them_all() {
    // tests/data/gateways/NAME.log holds the [[sample]] lines of parsers/NAME.toml:
    // vendor documentation and test-data lines, and lines from our real nginx run.
    let dir = repo().join("tests/data/gateways");
    let a = analyze(&[&dir]);
    assert_eq!(
        a.info.files.len(),
        17,
        "one file per built-in gateway format"
    );
    for f in &a.info.files {
        let want = std::path::Path::new(&*f.name)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert_eq!(f.format.as_deref(), Some(want.as_str()), "{}", f.name);
        assert_eq!(f.error_count, 0, "{:?}", f.errors);
    }
}

#[test]
fn trace_context_in_any_header_joins_gateway_and_backend() {
    let dir = tempfile::tempdir().unwrap();
    // Traefik with the X-Amzn-Trace-Id header kept; a Caddy line with a Traceparent header;
    // backend lines carrying the same trace ids in W3C form.
    std::fs::write(
        dir.path().join("traefik.json"),
        r#"{"ClientHost":"10.1.2.3","DownstreamStatus":502,"Duration":1000000,"OriginStatus":0,"RequestMethod":"GET","RequestPath":"/v1/a","RouterName":"a@file","ServiceURL":"http://10.0.0.7","StartUTC":"2026-11-24T10:00:00Z","request_X-Amzn-Trace-Id":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1","level":"info","msg":""}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("caddy.json"),
        r#"{"level":"info","ts":1764000000.5,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"10.1.2.4","method":"POST","host":"api","uri":"/v1/b","headers":{"Traceparent":["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]}},"duration":0.01,"size":10,"status":500}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.log"),
        r#"{"time":"2026-11-24T10:00:00.001Z","level":"error","msg":"connection refused by db","trace_id":"5759E988BD862E3FE1BE46A994272793","service":"a"}
{"time":"2026-11-24T16:00:00.501Z","level":"error","msg":"payload: cannot deserialize body","traceId":"0af7651916cd43dd8448eb211c80319c","service":"b"}
"#,
    )
    .unwrap();
    let a = analyze(&[dir.path()]);
    assert_eq!(a.input_error_count(), 0, "{:?}", a.info.files);
    assert_eq!(
        a.requests.len(),
        2,
        "each gateway line joined its backend line"
    );
    for l in &a.requests {
        assert_eq!(l.request.events.len(), 2);
        assert!(l.request.gateway.is_some());
    }
}

#[test]
fn stack_traces_fold_into_their_event_even_across_chunk_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut py = String::new();
    let mut java = String::new();
    for i in 0..6000 {
        py.push_str(&format!(
            "2026-11-24 10:00:{:02},{:03} ERROR [orders] [app.py:42] [trace_id=0af7651916cd43dd8448eb211c{i:06} span_id=b7ad6b7169{i:06} resource.service.name=orders trace_sampled=True] - order {i} failed\n\
             Traceback (most recent call last):\n  File \"app.py\", line 42, in handle\n    total = parse(body)\n\
             ValueError: amount must be > 0 (got -{i})\n",
            i % 60,
            i % 1000
        ));
        java.push_str(&format!(
            "2026-11-24T10:00:00.{:03}Z ERROR 4242 --- [orders] [nio-8080-exec-1] [803b448a0489f84084905d3093{i:06}-3425f23bb2{i:06}] c.e.orders.OrderController : request {i} failed\n\
             java.lang.IllegalStateException: pool exhausted\n\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)\n\
             \tat c.e.orders.OrderRepository.find(OrderRepository.java:40)\nCaused by: java.net.ConnectException: Connection refused\n\t... 12 more\n",
            i % 1000
        ));
    }
    assert!(
        py.len() > 1 << 20 && java.len() > 1 << 20,
        "several chunks each: {} {}",
        py.len(),
        java.len()
    );
    std::fs::write(dir.path().join("app.log"), py).unwrap();
    std::fs::write(dir.path().join("service.log"), java).unwrap();
    let a = analyze(&[dir.path()]);
    for f in &a.info.files {
        assert_eq!(f.error_count, 0, "{}: {:?}", f.name, f.errors);
        assert_eq!(f.events, 6000, "{}", f.name);
    }
    let formats: Vec<_> = a
        .info
        .files
        .iter()
        .map(|f| f.format.clone().unwrap().to_string())
        .collect();
    assert_eq!(formats, ["python_logging", "spring_boot"]);
    for l in &a.requests {
        let msg = l.request.events[0].message.as_deref().unwrap();
        if msg.contains("Traceback") {
            assert!(
                msg.lines()
                    .last()
                    .unwrap()
                    .starts_with("ValueError: amount must be > 0"),
                "{msg}"
            );
            assert_eq!(msg.lines().count(), 5, "{msg}");
            let e = &l.request.events[0];
            assert_eq!(e.error_type.as_deref(), Some("ValueError"), "{msg}");
            assert!(
                e.error_message
                    .as_deref()
                    .unwrap()
                    .starts_with("amount must be > 0"),
                "{msg}"
            );
            assert_eq!(
                e.error_stack.as_deref().unwrap().lines().count(),
                4,
                "{msg}"
            );
        } else {
            // The root cause: the last `Caused by:`.
            let e = &l.request.events[0];
            assert_eq!(
                (e.error_type.as_deref(), e.error_message.as_deref()),
                (
                    Some("java.net.ConnectException"),
                    Some("Connection refused")
                ),
                "{msg}"
            );
            assert!(
                msg.contains("Caused by: java.net.ConnectException"),
                "{msg}"
            );
            assert!(msg.ends_with("\t... 12 more"), "{msg}");
        }
    }
    assert_eq!(a.requests.len(), 12000, "every event its own trace");
}

#[test]
fn a_pasted_envoy_apache_or_haproxy_format_string_works_as_a_user_definition() {
    let defs = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    // (definition name, kind, format string as in the gateway's config, sample line, log line, label)
    let cases = [
        (
            "my_envoy",
            "envoy",
            r#"%START_TIME% %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% "%REQ(X-REQUEST-ID)%" %DURATION%ms"#,
            r#"2026-11-24T10:00:00.000Z GET /v1/a 200 - "r-1" 5ms"#,
            r#"2026-11-24T10:00:01.000Z POST /v1/b 504 UT "r-2" 15000ms"#,
            "upstream",
        ),
        (
            "my_apache",
            "apache",
            r#"%a %t "%r" %>s %{ms}T %{X-Request-Id}i"#,
            r#"10.0.0.1 [24/Nov/2026:10:00:00 +0000] "GET /v1/a HTTP/1.1" 200 5 r-3"#,
            r#"10.0.0.1 [24/Nov/2026:10:00:01 +0000] "GET /admin HTTP/1.1" 401 1 r-4"#,
            "auth",
        ),
        (
            "my_haproxy",
            "haproxy",
            r#"%ci [%tr] %b/%s %ST %Ta %tsc %ID %{+Q}r"#,
            r#"10.0.0.1 [24/Nov/2026:10:00:00.000] be/s1 200 5 ---- r-5 "GET /v1/a HTTP/1.1""#,
            r#"10.0.0.1 [24/Nov/2026:10:00:01.000] be/s1 503 3001 SC-- r-6 "GET /v1/b HTTP/1.1""#,
            "upstream",
        ),
    ];
    for (name, kind, format, sample, line, _) in &cases {
        std::fs::write(
            defs.path().join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\ntitle = \"t\"\nreference = \"our config\"\nsource = \"gateway\"\nkind = \"{kind}\"\n\
                 log_format = '{format}'\npriority = 9\n[[sample]]\nline = '{sample}'\nexpect = {{ status = \"200\", path = \"/v1/a\" }}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            logs.path().join(format!("{name}.log")),
            format!("{sample}\n{line}\n"),
        )
        .unwrap();
    }
    let out = tracejoin(&[
        "analyze",
        "--json",
        "--failures-only",
        "--parsers",
        defs.path().to_str().unwrap(),
        logs.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (name, _, _, _, _, label) in &cases {
        let l = lines
            .iter()
            .find(|l| {
                l["evidence"][0]["origin"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{name}.log:2"))
            })
            .unwrap_or_else(|| panic!("{name}: {lines:?}"));
        assert_eq!(l["label"], *label, "{name}: {l}");
        assert!(
            l["request_id"].as_str().unwrap().starts_with("r-"),
            "{name}: {l}"
        );
    }
}

/// pino's numeric levels are on the one scale: a 30 (info) never decides, a
/// 50 (error) does; the error object pino's serializer writes (`err.type`,
/// `err.message`) is the event's error, which the rules read too.
#[test]
fn pino_levels_and_error_objects_reach_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let gw = dir.path().join("access.log");
    let app = dir.path().join("app.log");
    std::fs::write(
        &gw,
        "10.1.2.3 - - [30/Nov/2026:14:11:41 +0000] \"GET /v1/export HTTP/1.1\" 500 12 \"-\" \"curl/8\" rid=0a1b2c3d4e5f60718293a4b5c6d7e8f9 rt=0.004 us=\"500\" ua=\"10.0.0.7:8080\" msec=1796047901.030\n\
         10.1.2.3 - - [30/Nov/2026:14:11:42 +0000] \"GET /v1/export HTTP/1.1\" 500 12 \"-\" \"curl/8\" rid=1a1b2c3d4e5f60718293a4b5c6d7e8f9 rt=0.004 us=\"500\" ua=\"10.0.0.7:8080\" msec=1796047902.030\n",
    )
    .unwrap();
    std::fs::write(
        &app,
        "{\"level\":30,\"time\":1796047901028,\"pid\":1973,\"hostname\":\"vm\",\"service\":\"export\",\"request_id\":\"0a1b2c3d4e5f60718293a4b5c6d7e8f9\",\"msg\":\"rate limit exceeded for consumer acme\"}\n\
         {\"level\":50,\"time\":1796047902028,\"pid\":1973,\"hostname\":\"vm\",\"service\":\"export\",\"request_id\":\"1a1b2c3d4e5f60718293a4b5c6d7e8f9\",\"err\":{\"type\":\"Error\",\"message\":\"rate limit exceeded for consumer acme\",\"stack\":\"Error: rate limit exceeded\\n    at x (/app.js:1:1)\"},\"msg\":\"export failed\"}\n",
    )
    .unwrap();
    let a = analyze(&[dir.path()]);
    assert_eq!(a.input_error_count(), 0, "{:?}", a.info.files);
    let rule_of = |rid: &str| {
        let l = a
            .requests
            .iter()
            .find(|l| l.request.request_id.as_deref() == Some(rid))
            .unwrap();
        l.verdict.as_ref().unwrap().rule.clone()
    };
    assert_eq!(
        rule_of("0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
        "upstream-returned-5xx",
        "info never decides"
    );
    assert_eq!(
        rule_of("1a1b2c3d4e5f60718293a4b5c6d7e8f9"),
        "backend-rate-limited",
        "the error object decides"
    );
}

/// One Collector file exporter shared by a traces and a logs pipeline writes
/// both signals into one file: every line is read by its own signal.
#[test]
fn an_otlp_file_with_both_signals_reads_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let traces = std::fs::read_to_string(repo().join("sample-logs/otel/traces.jsonl")).unwrap();
    let logs = std::fs::read_to_string(repo().join("sample-logs/otel/logs.jsonl")).unwrap();
    let mixed: String = traces
        .lines()
        .zip(logs.lines())
        .flat_map(|(t, l)| [t, l])
        .map(|l| format!("{l}\n"))
        .collect();
    let n = mixed.lines().count();
    let path = dir.path().join("otel.jsonl");
    std::fs::write(&path, mixed).unwrap();
    let a = analyze(&[&path]);
    assert_eq!(a.input_error_count(), 0, "{:?}", a.info.files);
    let sources: std::collections::BTreeSet<Source> = a
        .requests
        .iter()
        .flat_map(|l| l.request.events.iter().map(|e| e.source()))
        .collect();
    assert!(
        sources.contains(&Source::Span) && sources.contains(&Source::OtelLog),
        "{sources:?} from {n} lines"
    );
}
