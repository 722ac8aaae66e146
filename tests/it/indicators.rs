//! Every documented gateway failure indicator (docs/FORMATS.md §12) gives the label
//! docs/CONTRACT.md "Labels" assigns it, read from a line in that gateway's own format.

use crate::common::*;

/// The single request of a one-line file `name`, read without input errors.
fn only_request(name: &str, line: &str) -> tracejoin::labelled::Labelled {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, format!("{line}\n")).unwrap();
    let a = analyze(&[&p]);
    assert_eq!(a.input_error_count(), 0, "{line}: {:?}", a.info.files);
    assert_eq!(a.requests.len(), 1, "{line}");
    a.requests.into_iter().next().unwrap()
}

/// Analyses one file of lines and returns (label, rule) of its single request.
fn verdict_of(name: &str, line: &str) -> (String, String) {
    let v = only_request(name, line)
        .verdict
        .unwrap_or_else(|| panic!("not failed: {line}"));
    (v.label.to_string(), v.rule.clone())
}

fn envoy(status: u16, flags: &str) -> String {
    format!(
        r#"[2026-11-24T10:00:00.000Z] "GET /v1/orders HTTP/1.1" {status} {flags} 0 91 30 - "10.1.2.3" "curl/8.5.0" "0f1e2d3c-4b5a-4678-9abc-def012345678" "api.example.com" "10.0.0.7:8080""#
    )
}

#[test]
fn envoy_response_flags() {
    let cases: &[(&str, u16, &str)] = &[
        ("UAEX", 403, "auth"),
        ("NR", 404, "routing"),
        ("NC", 503, "routing"),
        ("NFCF", 500, "routing"),
        ("RL", 429, "quota"),
        ("RLSE", 500, "quota"),
        ("OM", 503, "quota"),
        ("DO", 503, "quota"),
        ("IH", 400, "transform"),
        ("DPE", 400, "transform"),
        ("UH", 503, "upstream"),
        ("UF", 503, "upstream"),
        ("UO", 503, "upstream"),
        ("URX", 503, "upstream"),
        ("UF,URX", 503, "upstream"),
        ("UT", 504, "upstream"),
        ("UR", 503, "upstream"),
        ("UC", 503, "upstream"),
        ("UPE", 502, "upstream"),
        ("UMSDR", 504, "upstream"),
        ("LR", 503, "upstream"),
        ("DF", 503, "upstream"),
        ("DC", 0, "unknown"),
    ];
    for (flags, status, label) in cases {
        let (got, rule) = verdict_of("envoy.log", &envoy(*status, flags));
        assert_eq!(&got, label, "Envoy {flags} ({status}) -> {got} by {rule}");
    }
}

#[test]
fn aws_api_gateway_response_types() {
    let cases: &[(&str, u16, &str)] = &[
        ("ACCESS_DENIED", 403, "auth"),
        ("UNAUTHORIZED", 401, "auth"),
        ("AUTHORIZER_FAILURE", 500, "auth"),
        ("AUTHORIZER_CONFIGURATION_ERROR", 500, "auth"),
        ("EXPIRED_TOKEN", 403, "auth"),
        ("INVALID_API_KEY", 403, "auth"),
        ("INVALID_SIGNATURE", 403, "auth"),
        ("WAF_FILTERED", 403, "auth"),
        ("RESOURCE_NOT_FOUND", 404, "routing"),
        ("THROTTLED", 429, "quota"),
        ("QUOTA_EXCEEDED", 429, "quota"),
        ("BAD_REQUEST_BODY", 400, "transform"),
        ("BAD_REQUEST_PARAMETERS", 400, "transform"),
        ("UNSUPPORTED_MEDIA_TYPE", 415, "transform"),
        ("REQUEST_TOO_LARGE", 413, "transform"),
        ("API_CONFIGURATION_ERROR", 500, "transform"),
        ("INTEGRATION_FAILURE", 504, "upstream"),
        ("INTEGRATION_TIMEOUT", 504, "upstream"),
    ];
    for (kind, status, label) in cases {
        let line = format!(
            r#"{{"requestId":"r-{kind}","ip":"203.0.113.7","requestTime":"29/Jun/2023:17:25:19 +0000","httpMethod":"GET","resourcePath":"/pets","status":"{status}","protocol":"HTTP/1.1","responseLength":"41","integrationStatus":"-","errorType":"{kind}"}}"#
        );
        let (got, rule) = verdict_of("apigw.log", &line);
        assert_eq!(&got, label, "AWS {kind} -> {got} by {rule}");
    }
    // REST APIs answer an unknown route with 403 MISSING_AUTHENTICATION_TOKEN and no resource path.
    let unknown_route = r#"{"requestId":"r1","httpMethod":"GET","resourcePath":"-","path":"/v1/ordrs","status":"403","errorType":"MISSING_AUTHENTICATION_TOKEN"}"#;
    assert_eq!(verdict_of("apigw.log", unknown_route).0, "routing");
    let no_token = r#"{"requestId":"r2","httpMethod":"GET","resourcePath":"/pets","path":"/pets","status":"403","errorType":"MISSING_AUTHENTICATION_TOKEN"}"#;
    assert_eq!(verdict_of("apigw.log", no_token).0, "auth");
}

#[test]
fn haproxy_termination_states() {
    let cases: &[(&str, u16, &str)] = &[
        ("SC--", 503, "upstream"),
        ("sC--", 503, "upstream"),
        ("SH--", 502, "upstream"),
        ("sH--", 504, "upstream"),
        ("SD--", 200, "upstream"),
        ("sD--", 200, "upstream"),
        ("sQ--", 503, "quota"),
        ("PC--", 503, "quota"),
        ("PH--", 502, "transform"),
        ("PD--", 400, "transform"),
        ("PR--", 403, "auth"),
        ("PR--", 400, "transform"),
        ("CD--", 200, "unknown"),
        ("cD--", 200, "unknown"),
        ("CH--", 200, "unknown"),
        ("cR--", 408, "unknown"),
    ];
    for (tsc, status, label) in cases {
        let line = format!(
            r#"Nov 24 10:00:00 lb1 haproxy[812]: 10.1.2.3:50123 [24/Nov/2026:10:00:00.000] fe_api be_orders/srv2 0/0/1/-1/30001 {status} 194 - - {tsc} 10/10/2/1/0 0/0 {{}} {{}} "GET /v1/orders HTTP/1.1""#
        );
        let (got, rule) = verdict_of("haproxy.log", &line);
        assert_eq!(&got, label, "HAProxy {tsc} ({status}) -> {got} by {rule}");
    }
}

#[test]
fn kong_answering_itself() {
    let cases: &[(u16, &str)] = &[
        (401, "auth"),
        (403, "auth"),
        (404, "routing"),
        (429, "quota"),
        (413, "transform"),
        (502, "upstream"),
        (503, "upstream"),
        (504, "upstream"),
    ];
    for (status, label) in cases {
        let line = format!(
            r#"{{"response":{{"status":{status},"size":96}},"client_ip":"10.1.2.3","request":{{"id":"7c1a3f0e9b2d4c5a8e6f7a8b9c0d1e{status}","uri":"/v1/orders","method":"GET","url":"http://api.example.com/v1/orders"}},"started_at":1764000000000,"source":"kong","upstream_status":"","latencies":{{"kong":1,"proxy":-1,"request":1,"receive":0}}}}"#
        );
        let (got, rule) = verdict_of("kong.log", &line);
        assert_eq!(&got, label, "Kong {status} -> {got} by {rule}");
    }
}

#[test]
fn traefik_origin_versus_downstream_status() {
    let line = |down: u16, origin: u16, router: &str| {
        format!(
            r#"{{"ClientHost":"10.1.2.3","DownstreamStatus":{down},"Duration":1000000,"OriginStatus":{origin},"RequestMethod":"GET","RequestPath":"/v1/orders","RequestHost":"gw","RouterName":"{router}","ServiceURL":"http://10.0.0.7:8080","StartUTC":"2026-11-24T10:00:00Z","level":"info","msg":""}}"#
        )
    };
    let (label, rule) = verdict_of("traefik.log", &line(502, 0, "orders@file"));
    assert_eq!(
        (label.as_str(), rule.as_str()),
        ("upstream", "gateway-traefik-no-origin")
    );
    // The origin itself answered 503: still upstream, from the status.
    assert_eq!(
        verdict_of("traefik.log", &line(503, 503, "orders@file")).0,
        "upstream"
    );
}

#[test]
fn nginx_limit_req_and_client_aborts() {
    let kv = |status: u16, tail: &str| {
        format!(
            r#"10.1.2.3 - - [24/Nov/2026:10:00:00 +0000] "GET /v1/search HTTP/1.1" {status} 0 "-" "curl/8" rid=0a1b{status} rt=0.001 {tail}"#
        )
    };
    let (label, rule) = verdict_of("access.log", &kv(503, "us=- ua=- lrs=REJECTED"));
    assert_eq!(
        (label.as_str(), rule.as_str()),
        ("quota", "gateway-limit-rejected")
    );
    let (label, rule) = verdict_of("access.log", &kv(499, r#"us=- ua="10.0.0.7:8080""#));
    assert_eq!(
        (label.as_str(), rule.as_str()),
        ("unknown", "client-aborted")
    );
}

/// Whether the single request of a one-line file failed.
fn failed(name: &str, line: &str) -> bool {
    only_request(name, line).request.failed
}

/// Indicator values that mean all went well never make a request failed:
/// nginx `limit_req` in dry-run mode (ngx_http_limit_req_module:
/// `limit_req_dry_run` logs REJECTED_DRY_RUN and lets the request through),
/// HAProxy answering a redirect itself (`LR--`, configuration.txt §8.5: L =
/// "the session was locally processed by HAProxy"), Kong serving a 2xx from a
/// plugin (`source` = "kong" means Kong answered, not that it failed),
/// Envoy's `DI` (the request was only delayed by fault injection).
#[test]
fn indicator_values_that_mean_success_do_not_fail_a_request() {
    let nginx = |lrs: &str| {
        format!(
            r#"10.1.2.3 - - [24/Nov/2026:10:00:00 +0000] "GET /v1/search HTTP/1.1" 200 12 "-" "curl/8" rid=0a1b2c rt=0.001 us="200" ua="10.0.0.7:8080" lrs={lrs}"#
        )
    };
    assert!(!failed("access.log", &nginx("REJECTED_DRY_RUN")));
    assert!(!failed("access.log", &nginx("DELAYED")));
    let haproxy = |status: u16, tsc: &str| {
        format!(
            r#"Nov 24 10:00:00 lb1 haproxy[812]: 10.1.2.3:50123 [24/Nov/2026:10:00:00.000] fe_api fe_api/<NOSRV> 0/-1/-1/-1/0 {status} 141 - - {tsc} 1/1/0/0/0 0/0 {{}} {{}} "GET /old HTTP/1.1""#
        )
    };
    assert!(!failed("haproxy.log", &haproxy(302, "LR--")));
    assert!(
        failed("haproxy.log", &haproxy(503, "LR--")),
        "the status still counts"
    );
    let kong = |status: u16| {
        format!(
            r#"{{"response":{{"status":{status},"size":96}},"client_ip":"10.1.2.3","request":{{"id":"7c1a3f0e9b2d4c5a8e6f7a8b9c0d1e2f","uri":"/v1/orders","method":"OPTIONS","url":"http://api.example.com/v1/orders"}},"started_at":1764000000000,"source":"kong","upstream_status":"","latencies":{{"kong":1,"proxy":-1,"request":1,"receive":0}}}}"#
        )
    };
    assert!(!failed("kong.log", &kong(204)));
    assert!(failed("kong.log", &kong(401)));
    assert!(!failed("envoy.log", &envoy(200, "DI")));
}

/// A 405 is routing (the method has no route), at the gateway or from a
/// backend; a 404 that nothing else explains is routing too, as weak evidence.
#[test]
fn method_not_allowed_and_bare_not_found_are_routing() {
    let apache = |status: u16| {
        format!(
            r#"10.1.2.3 - - [24/Nov/2026:10:00:00 +0000] "DELETE /v1/orders HTTP/1.1" {status} 225 "-" "curl/8.5.0" 512 Z0Mw1cCoAAEAAAkyZqYAAAAA "-""#
        )
    };
    for status in [404, 405] {
        let (label, rule) = verdict_of("apache.log", &apache(status));
        assert_eq!(label, "routing", "{status} by {rule}");
    }
    // An upstream that answered 405 (the gateway forwarded it): still routing.
    let (label, rule) = verdict_of(
        "access.log",
        r#"10.1.2.3 - - [24/Nov/2026:10:00:00 +0000] "PATCH /v1/orders/7 HTTP/1.1" 405 31 "-" "curl/8" rid=0a1b2d rt=0.004 us="405" ua="10.0.0.7:8080""#,
    );
    assert_eq!(
        (label.as_str(), rule.as_str()),
        ("routing", "status-routing")
    );
}

/// HAProxy with no backend selected (no `use_backend` matched, no
/// `default_backend`) logs its frontend as the backend with `<NOSRV>`:
/// routing. A chosen backend with `<NOSRV>` (all its servers down): upstream.
#[test]
fn haproxy_nosrv_on_the_frontend_is_routing_on_a_backend_upstream() {
    let line = |backend: &str| {
        format!(
            r#"Nov 24 10:00:00 lb1 haproxy[812]: 10.1.2.3:50123 [24/Nov/2026:10:00:00.000] fe_api {backend}/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 {{}} {{}} "GET /v3/nothing HTTP/1.1""#
        )
    };
    let (label, rule) = verdict_of("haproxy.log", &line("fe_api"));
    assert_eq!(
        (label.as_str(), rule.as_str()),
        ("routing", "gateway-haproxy-no-backend")
    );
    let (label, _) = verdict_of("haproxy.log", &line("be_inventory"));
    assert_eq!(label, "upstream");
}

/// Cloudflare Logpush http_requests (records constructed from the documented
/// fields, tests/data/gateway-logs): RayID is the request id, a block by a
/// security rule is auth, an origin that answered 502 is upstream.
#[test]
fn cloudflare_logpush_records() {
    let a =
        analyze(&[&repo()
            .join("tests/data/gateway-logs/cloudflare-logpush-http_requests.constructed.jsonl")]);
    assert_eq!(a.input_error_count(), 0);
    let mut got: Vec<(String, Option<String>)> = a
        .requests
        .iter()
        .map(|l| {
            (
                l.request.request_id.as_deref().unwrap_or("").to_string(),
                l.verdict.as_ref().map(|v| v.label.to_string()),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("8e9a3c1f5b2d7a40".to_string(), None),
            ("8e9a3c20a1b4c5d6".to_string(), Some("auth".to_string())),
            ("8e9a3c24f0e1d2c3".to_string(), Some("upstream".to_string())),
        ]
    );
}

/// IIS W3C extended logs: the `#Software`/`#Fields` directives are context,
/// the requests are read with the default field set.
#[test]
fn iis_w3c_directives_are_context_and_requests_are_read() {
    let a = analyze(&[&repo().join("tests/data/gateway-logs/iis-w3c-default.log")]);
    assert_eq!(a.input_error_count(), 0, "{:?}", a.info.files);
    assert_eq!(a.info.files[0].format.as_deref(), Some("iis_w3c_default"));
    assert_eq!(a.info.files[0].context, 4);
    assert_eq!(a.requests.len(), 3);
}
