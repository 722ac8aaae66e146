//! Load generator for `scripts/bench`: sends server spans over OTLP/gRPC or
//! OTLP/HTTP protobuf (the SDK exporters' protocols) as fast as the receiver
//! accepts them, from several concurrent clients, for a fixed time; reports
//! accepted spans/s. A refused batch (gRPC RESOURCE_EXHAUSTED, HTTP 429/503)
//! is retried after a pause, as an exporter would, and counted.
//!
//!   cargo run --release --example otlp_load -- http://127.0.0.1:4317 SECONDS CLIENTS BATCH [grpc|http]
//!   (http: the URL is the receiver's base, `/v1/traces` is appended)

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn batch(client: u64, seq: u64, n: usize) -> ExportTraceServiceRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans = (0..n as u64)
        .map(|i| {
            let id = (client << 48) | (seq << 16) | i;
            let status_code = if i % 20 == 0 { 502 } else { 200 };
            Span {
                trace_id: [id.to_be_bytes(), (id ^ 0x5555).to_be_bytes()].concat(),
                span_id: (id | 1 << 63).to_be_bytes().to_vec(),
                name: "GET /v1/orders/{id}".into(),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: now - 4_000_000,
                end_time_unix_nano: now,
                attributes: vec![
                    kv(
                        "http.request.method",
                        any_value::Value::StringValue("GET".into()),
                    ),
                    kv(
                        "url.path",
                        any_value::Value::StringValue(format!("/v1/orders/{i}")),
                    ),
                    kv(
                        "http.route",
                        any_value::Value::StringValue("/v1/orders/{id}".into()),
                    ),
                    kv(
                        "http.response.status_code",
                        any_value::Value::IntValue(status_code),
                    ),
                ],
                status: Some(Status {
                    code: if status_code >= 500 {
                        status::StatusCode::Error as i32
                    } else {
                        status::StatusCode::Unset as i32
                    },
                    message: String::new(),
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue("orders".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args
        .get(1)
        .cloned()
        .unwrap_or("http://127.0.0.1:4317".into());
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let clients: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let size: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(512);
    let http = args.get(5).is_some_and(|p| p == "http");
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    if http {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                let (url, accepted, refused) = (url.clone(), accepted.clone(), refused.clone());
                std::thread::spawn(move || {
                    let agent = ureq::Agent::new_with_defaults();
                    let mut seq = 0u64;
                    while Instant::now() < until {
                        seq += 1;
                        let body = prost::Message::encode_to_vec(&batch(c + 1, seq, size));
                        loop {
                            let sent = agent
                                .post(&url)
                                .header("content-type", "application/x-protobuf")
                                .send(&body[..]);
                            match sent {
                                Ok(_) => {
                                    accepted.fetch_add(size as u64, Ordering::Relaxed);
                                    break;
                                }
                                Err(ureq::Error::StatusCode(429 | 503)) => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    std::thread::sleep(Duration::from_millis(50));
                                }
                                Err(e) => panic!("export failed: {e}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        report(start, &accepted, &refused, clients, size, "http");
        return;
    }
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (endpoint, accepted, refused) = (endpoint.clone(), accepted.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = TraceServiceClient::connect(endpoint)
                .await
                .expect("connects to tracejoin serve");
            let mut seq = 0u64;
            while Instant::now() < until {
                seq += 1;
                let req = batch(c + 1, seq, size);
                loop {
                    match client.export(req.clone()).await {
                        Ok(_) => {
                            accepted.fetch_add(size as u64, Ordering::Relaxed);
                            break;
                        }
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(s) => panic!("export failed: {s}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    report(start, &accepted, &refused, clients, size, "grpc");
}

fn report(
    start: Instant,
    accepted: &AtomicU64,
    refused: &AtomicU64,
    clients: u64,
    size: usize,
    protocol: &str,
) {
    let elapsed = start.elapsed().as_secs_f64();
    let n = accepted.load(Ordering::Relaxed);
    println!(
        "{n} spans accepted in {elapsed:.1} s = {:.0} spans/s ({protocol}, {clients} clients, {size} spans per message, {} refusals retried)",
        n as f64 / elapsed,
        refused.load(Ordering::Relaxed)
    );
}
