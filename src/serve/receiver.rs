//! The OTLP receiver: gRPC (tonic) on one port, HTTP (axum; protobuf and JSON)
//! on another, both feeding [`Intake`]. Status codes and bodies follow the
//! OTLP specification's "OTLP/gRPC" and "OTLP/HTTP" sections: refused-when-busy
//! is retryable (RESOURCE_EXHAUSTED with RetryInfo, HTTP 429 with Retry-After),
//! undecodable data is not (INVALID_ARGUMENT, HTTP 400), and spans refused one
//! by one are reported as a partial success.

use super::intake::{authorized, Busy, Counters, Intake};
use crate::event::Event;
use crate::parse::Format;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Seconds a refused sender is asked to wait before retrying.
const RETRY_AFTER_S: u64 = 1;

/// Everything a request handler needs; shared by both protocols.
pub struct Receiver {
    pub intake: Arc<Intake>,
    pub traces: Arc<Format>,
    pub logs: Arc<Format>,
    pub token: Option<String>,
    pub max_message: usize,
    /// Messages received so far: the "line" of an event's origin.
    seq: AtomicU64,
    grpc_origin: Arc<str>,
    http_origin: Arc<str>,
    /// Gateway lines shipped as log records (the Collector's filelog
    /// receiver), read as the lines they carry.
    shipped: Option<crate::parse::shipped::ShippedLines>,
}

/// Why a message was refused whole.
enum Refusal {
    Busy(Busy),
    Invalid(String),
}

impl Busy {
    fn message(self) -> &'static str {
        match self {
            Busy::Queue => "tracejoin is at its queue limit; retry later",
            Busy::Memory => "tracejoin is over its memory limit's soft mark; retry later",
        }
    }

    fn count(self, c: &Counters) {
        Counters::add(
            match self {
                Busy::Queue => &c.refused_busy,
                Busy::Memory => &c.refused_memory,
            },
            1,
        );
    }
}

impl Receiver {
    pub fn new(
        intake: Arc<Intake>,
        traces: Arc<Format>,
        logs: Arc<Format>,
        token: Option<String>,
        max_message: usize,
    ) -> Receiver {
        Receiver {
            intake,
            traces,
            logs,
            token,
            max_message,
            seq: AtomicU64::new(0),
            grpc_origin: Arc::from("otlp-grpc"),
            http_origin: Arc::from("otlp-http"),
            shipped: None,
        }
    }

    /// Log records that carry a gateway's line (a file attribute, a body that
    /// detection reads with a gateway format) become that line's event; they
    /// still count as logs received.
    pub fn reading_shipped_lines(mut self, registry: Arc<crate::parse::Registry>) -> Receiver {
        self.shipped = Some(crate::parse::shipped::ShippedLines::new(registry));
        self
    }

    fn counters(&self) -> &Counters {
        &self.intake.counters
    }

    fn count_message(&self, origin: &Arc<str>) {
        let c = self.counters();
        if Arc::ptr_eq(origin, &self.grpc_origin) {
            Counters::add(&c.grpc_messages, 1);
        } else {
            Counters::add(&c.http_messages, 1);
        }
    }

    /// Converts and queues spans; returns how many were refused one by one.
    fn accept_traces(
        &self,
        mut req: ExportTraceServiceRequest,
        origin: &Arc<str>,
    ) -> Result<u64, Refusal> {
        // A span without a valid trace and span id cannot be joined to anything.
        let mut rejected = 0u64;
        for rs in &mut req.resource_spans {
            for ss in &mut rs.scope_spans {
                ss.spans.retain(|s| {
                    let ok = valid_id(&s.trace_id, 16) && valid_id(&s.span_id, 8);
                    rejected += u64::from(!ok);
                    ok
                });
            }
        }
        let message = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut events: Vec<Event> = Vec::new();
        crate::parse::otlp::trace_events(
            &req,
            &self.traces.otlp_site(origin, message),
            &mut events,
        )
        .map_err(Refusal::Invalid)?;
        let n = events.len() as u64;
        self.intake.offer(events).map_err(Refusal::Busy)?;
        Counters::add(&self.counters().spans, n);
        self.count_message(origin);
        Counters::add(&self.counters().spans_rejected, rejected);
        Ok(rejected)
    }

    fn accept_logs(&self, req: ExportLogsServiceRequest, origin: &Arc<str>) -> Result<(), Refusal> {
        let message = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut events: Vec<Event> = Vec::new();
        crate::parse::otlp::log_events(&req, &self.logs.otlp_site(origin, message), &mut events)
            .map_err(Refusal::Invalid)?;
        if let Some(shipped) = &self.shipped {
            shipped.reread(&mut events);
        }
        let n = events.len() as u64;
        self.intake.offer(events).map_err(Refusal::Busy)?;
        Counters::add(&self.counters().logs, n);
        self.count_message(origin);
        Ok(())
    }
}

fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|&b| b != 0)
}

fn partial(rejected: u64) -> Option<ExportTracePartialSuccess> {
    (rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: rejected as i64,
        error_message: format!(
            "{rejected} spans without a valid trace id and span id were dropped"
        ),
    })
}

// ---- gRPC ----

/// The tonic services; a clone per service, sharing one [`Receiver`].
#[derive(Clone)]
pub struct Grpc(pub Arc<Receiver>);

fn grpc_refusal(r: &Receiver, refusal: Refusal) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    match refusal {
        Refusal::Busy(why) => {
            why.count(r.counters());
            let mut st = tonic::Status::with_error_details(
                tonic::Code::ResourceExhausted,
                why.message(),
                ErrorDetails::with_retry_info(Some(Duration::from_secs(RETRY_AFTER_S))),
            );
            // The OTel Python exporter reads the delay from this trailer, not
            // from the status details (its grpc exporter.py, `_export`):
            // without it, it backs off 1, 2, 4... s whatever the server says.
            st.metadata_mut().insert_bin(
                "google.rpc.retryinfo-bin",
                tonic::metadata::MetadataValue::from_bytes(&retry_info()),
            );
            st
        }
        Refusal::Invalid(m) => {
            Counters::add(&r.counters().refused_invalid, 1);
            tonic::Status::invalid_argument(m)
        }
    }
}

/// `google.rpc.RetryInfo { retry_delay: { seconds: RETRY_AFTER_S } }`, encoded.
fn retry_info() -> Vec<u8> {
    // Field 1 (retry_delay, a message) holding field 1 (seconds, a varint < 128).
    vec![0x0a, 0x02, 0x08, RETRY_AFTER_S as u8]
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let r = &self.0;
        let rejected = r
            .accept_traces(request.into_inner(), &r.grpc_origin)
            .map_err(|e| grpc_refusal(r, e))?;
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: partial(rejected),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let r = &self.0;
        r.accept_logs(request.into_inner(), &r.grpc_origin)
            .map_err(|e| grpc_refusal(r, e))?;
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// Serves OTLP/gRPC until `shutdown` resolves; requests in flight finish.
pub async fn serve_grpc(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    use tonic::codec::CompressionEncoding::Gzip;
    let max = receiver.max_message;
    let check = {
        let r = receiver.clone();
        move |req: tonic::Request<()>| {
            let header = req.metadata().get("authorization").map(|v| v.as_bytes());
            if authorized(r.token.as_deref(), header) {
                // Over the memory limiter's soft mark, before the message is
                // decoded (the interceptor sees only its headers).
                match r.intake.busy() {
                    None => Ok(req),
                    Some(why) => Err(grpc_refusal(&r, Refusal::Busy(why))),
                }
            } else {
                Counters::add(&r.counters().refused_auth, 1);
                Err(tonic::Status::unauthenticated(
                    "a bearer token is required (authorization: Bearer TOKEN)",
                ))
            }
        }
    };
    let traces = TraceServiceServer::new(Grpc(receiver.clone()))
        .accept_compressed(Gzip)
        .send_compressed(Gzip)
        .max_decoding_message_size(max);
    let logs = LogsServiceServer::new(Grpc(receiver.clone()))
        .accept_compressed(Gzip)
        .send_compressed(Gzip)
        .max_decoding_message_size(max);
    let statuses = {
        let r = receiver.clone();
        tower::util::MapResponseLayer::new(move |resp| otlp_status(&r, resp))
    };
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .layer(statuses)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            traces,
            check.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            logs, check,
        ))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await?;
    Ok(())
}

/// tonic answers a message over the size limit with OUT_OF_RANGE and one
/// that does not decode with INTERNAL; OTLP says RESOURCE_EXHAUSTED (the
/// client may retry) and INVALID_ARGUMENT (it must not). Both are rewritten
/// here, where the status leaves the server (a trailers-only response: the
/// status is in its headers), and counted.
fn otlp_status(
    r: &Receiver,
    mut resp: tonic::codegen::http::Response<tonic::body::Body>,
) -> tonic::codegen::http::Response<tonic::body::Body> {
    let headers = resp.headers();
    let code = headers.get("grpc-status").map(|v| v.as_bytes());
    // grpc-message is percent-encoded: its words are separated by `%20`.
    let message = headers
        .get("grpc-message")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).replace("%20", " "))
        .unwrap_or_default();
    let (new, counter) = match code {
        Some(b"11") if message.contains("message length too large") => (
            tonic::Code::ResourceExhausted,
            &r.counters().refused_oversize,
        ),
        Some(b"8") if message.contains("size limit") => (
            tonic::Code::ResourceExhausted,
            &r.counters().refused_oversize,
        ),
        Some(b"13")
            if message.contains("failed to decode Protobuf message")
                || message.contains("Error decompressing") =>
        {
            (tonic::Code::InvalidArgument, &r.counters().refused_invalid)
        }
        _ => return resp,
    };
    Counters::add(counter, 1);
    resp.headers_mut().insert(
        "grpc-status",
        tonic::codegen::http::HeaderValue::from((new as i32) as u16),
    );
    resp
}

// ---- HTTP ----

#[derive(Clone, Copy, PartialEq)]
enum Body {
    Protobuf,
    Json,
}

/// A success response in the request's encoding. In JSON, an absent partial
/// success is `{}` and int64 counts are strings (the proto3 JSON mapping).
fn encoded<M: Message>(enc: Body, m: &M, partial: Option<(&str, u64, String)>) -> Response {
    let (ctype, body) = match enc {
        Body::Protobuf => ("application/x-protobuf", m.encode_to_vec()),
        Body::Json => (
            "application/json",
            match partial {
                None => b"{}".to_vec(),
                Some((field, n, msg)) => serde_json::json!({
                    "partialSuccess": { field: n.to_string(), "errorMessage": msg }
                })
                .to_string()
                .into_bytes(),
            },
        ),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, ctype)], body).into_response()
}

fn http_error(enc: Body, status: StatusCode, message: String) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
        StatusCode::TOO_MANY_REQUESTS => tonic::Code::ResourceExhausted,
        _ => tonic::Code::InvalidArgument,
    } as i32;
    let mut resp = match enc {
        Body::Protobuf => {
            let st = tonic_types::Status {
                code,
                message,
                details: Vec::new(),
            };
            (
                status,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                st.encode_to_vec(),
            )
                .into_response()
        }
        Body::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "code": code, "message": message }).to_string(),
        )
            .into_response(),
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    }
    resp
}

/// Checks the token, media type, memory and encoding; returns the
/// decompressed body.
fn http_body(
    r: &Receiver,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Body, Vec<u8>), Box<Response>> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let enc = match ctype.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" | "application/protobuf" => Body::Protobuf,
        "application/json" => Body::Json,
        other => {
            Counters::add(&r.counters().refused_invalid, 1);
            return Err(Box::new(http_error(
                Body::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content-type {other:?}: use application/x-protobuf or application/json"),
            )));
        }
    };
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !authorized(r.token.as_deref(), auth) {
        Counters::add(&r.counters().refused_auth, 1);
        return Err(Box::new(http_error(
            enc,
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer TOKEN)".into(),
        )));
    }
    // Over the memory limiter's soft mark: refused before it is inflated.
    if let Some(why) = r.intake.busy() {
        return Err(Box::new(http_refusal(r, enc, Refusal::Busy(why))));
    }
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None | Some(b"identity") => false,
        Some(b"gzip") => true,
        Some(other) => {
            Counters::add(&r.counters().refused_invalid, 1);
            return Err(Box::new(http_error(
                enc,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content-encoding {:?}: only gzip is supported",
                    String::from_utf8_lossy(other)
                ),
            )));
        }
    };
    if !gzip {
        return Ok((enc, body.to_vec()));
    }
    // Bounded: a small gzip body must not inflate past the message limit.
    let mut out = Vec::new();
    let limit = r.max_message as u64 + 1;
    let read = std::io::Read::read_to_end(
        &mut std::io::Read::take(flate2::read::GzDecoder::new(&body[..]), limit),
        &mut out,
    );
    match read {
        Err(e) => {
            Counters::add(&r.counters().refused_invalid, 1);
            Err(Box::new(http_error(
                enc,
                StatusCode::BAD_REQUEST,
                format!("invalid gzip body: {e}"),
            )))
        }
        Ok(n) if n as u64 >= limit => {
            Counters::add(&r.counters().refused_oversize, 1);
            Err(Box::new(http_error(
                enc,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("decompressed body exceeds the {}-byte limit", r.max_message),
            )))
        }
        Ok(_) => Ok((enc, out)),
    }
}

fn decode<M: Message + Default + serde::de::DeserializeOwned>(
    enc: Body,
    bytes: &[u8],
) -> Result<M, String> {
    match enc {
        Body::Protobuf => M::decode(bytes).map_err(|e| format!("invalid OTLP protobuf: {e}")),
        Body::Json => {
            crate::parse::otlp::from_json(bytes).map_err(|e| format!("invalid OTLP/JSON: {e}"))
        }
    }
}

fn http_refusal(r: &Receiver, enc: Body, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Busy(why) => {
            why.count(r.counters());
            http_error(enc, StatusCode::TOO_MANY_REQUESTS, why.message().into())
        }
        Refusal::Invalid(m) => {
            Counters::add(&r.counters().refused_invalid, 1);
            http_error(enc, StatusCode::BAD_REQUEST, m)
        }
    }
}

/// Token, media type, encoding and decoding shared by both HTTP endpoints.
fn http_message<M: Message + Default + serde::de::DeserializeOwned>(
    r: &Receiver,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Body, M), Box<Response>> {
    let (enc, bytes) = http_body(r, headers, body)?;
    let m = decode(enc, &bytes).map_err(|e| Box::new(http_refusal(r, enc, Refusal::Invalid(e))))?;
    Ok((enc, m))
}

async fn http_traces(
    axum::extract::State(r): axum::extract::State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (enc, req) = match http_message::<ExportTraceServiceRequest>(&r, &headers, body) {
        Ok(m) => m,
        Err(resp) => return *resp,
    };
    match r.accept_traces(req, &r.http_origin) {
        Ok(rejected) => {
            let partial_success = partial(rejected);
            let json = partial_success
                .as_ref()
                .map(|p| ("rejectedSpans", rejected, p.error_message.clone()));
            encoded(enc, &ExportTraceServiceResponse { partial_success }, json)
        }
        Err(e) => http_refusal(&r, enc, e),
    }
}

async fn http_logs(
    axum::extract::State(r): axum::extract::State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (enc, req) = match http_message::<ExportLogsServiceRequest>(&r, &headers, body) {
        Ok(m) => m,
        Err(resp) => return *resp,
    };
    match r.accept_logs(req, &r.http_origin) {
        Ok(()) => encoded(
            enc,
            &ExportLogsServiceResponse {
                partial_success: None,
            },
            None,
        ),
        Err(e) => http_refusal(&r, enc, e),
    }
}

/// A body over the limit: 413 with a Status body, counted. (A refusal for
/// memory waits for the body too: answering before it is read breaks the
/// client's pipe mid-upload, which exporters do not all retry.)
async fn too_large(
    axum::extract::State(r): axum::extract::State<Arc<Receiver>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    // axum's own 413 (DefaultBodyLimit) is plain text; ours carry a Status body.
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
        Counters::add(&r.counters().refused_oversize, 1);
        return http_error(
            Body::Json,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body exceeds the {}-byte limit", r.max_message),
        );
    }
    resp
}

/// A client that has not sent a whole request header this long after it
/// started one is disconnected (slowloris); hyper's own default, which
/// axum-server turns off.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

fn slow_headers_time_out(
    b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    b.http1().header_read_timeout(Some(HEADER_TIMEOUT));
}

/// Serves OTLP/HTTP until `shutdown` resolves; requests in flight finish.
pub async fn serve_http(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::routing::post;
    let max = receiver.max_message;
    let app = axum::Router::new()
        .route("/v1/traces", post(http_traces))
        .route("/v1/logs", post(http_logs))
        .layer(axum::extract::DefaultBodyLimit::max(max))
        .layer(axum::middleware::from_fn_with_state(
            receiver.clone(),
            too_large,
        ))
        .with_state(receiver);
    // axum-server for both, so that both get the same header timeout and the
    // same graceful shutdown (requests in flight finish).
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    let listener = listener.into_std()?;
    match tls {
        None => {
            let mut server = axum_server::from_tcp(listener)?;
            slow_headers_time_out(server.http_builder());
            server.handle(handle).serve(app.into_make_service()).await?
        }
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            let mut server = axum_server::from_tcp_rustls(listener, config)?;
            slow_headers_time_out(server.http_builder());
            server.handle(handle).serve(app.into_make_service()).await?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_429_with_retry_after_and_a_status_body() {
        let resp = http_error(
            Body::Protobuf,
            StatusCode::TOO_MANY_REQUESTS,
            "tracejoin is at its queue limit; retry later".into(),
        );
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/x-protobuf"
        );
    }

    /// The OpenTelemetry JS SDK's OTLP/HTTP JSON exporter writes an empty
    /// array attribute as `{"arrayValue":{}}`: a valid message, accepted (a
    /// 400 would make the exporter drop the whole batch).
    #[test]
    fn otlp_json_with_empty_lists_is_accepted() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        let doc = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"process.command_args","value":{"arrayValue":{}}}]},"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"GET /","kind":2,"startTimeUnixNano":"1796045879175000000","endTimeUnixNano":"1796045879176000000"}]}]}]}"#;
        let req: ExportTraceServiceRequest = decode(Body::Json, doc).expect("accepted");
        assert_eq!(req.resource_spans[0].scope_spans[0].spans.len(), 1);
    }

    #[test]
    fn busy_over_grpc_is_resource_exhausted_with_retry_info() {
        use tonic_types::StatusExt;
        let (intake, _outlet) =
            crate::serve::intake::channel(1, Arc::new(crate::serve::memory::Limiter::new(None)));
        let registry = crate::parse::Registry::load(None).unwrap();
        let r = Receiver::new(
            intake,
            registry.get("otlp_traces").unwrap().clone(),
            registry.get("otlp_logs").unwrap().clone(),
            None,
            1 << 20,
        );
        for why in [Busy::Queue, Busy::Memory] {
            let st = grpc_refusal(&r, Refusal::Busy(why));
            assert_eq!(st.code(), tonic::Code::ResourceExhausted);
            let retry = st.get_details_retry_info().expect("RetryInfo detail");
            assert_eq!(retry.retry_delay, Some(Duration::from_secs(RETRY_AFTER_S)));
            let trailer = st
                .metadata()
                .get_bin("google.rpc.retryinfo-bin")
                .expect("the trailer the Python exporter reads")
                .to_bytes()
                .unwrap();
            let decoded = tonic_types::pb::RetryInfo::decode(&trailer[..]).unwrap();
            assert_eq!(
                decoded.retry_delay.map(|d| d.seconds),
                Some(RETRY_AFTER_S as i64)
            );
        }
        assert_eq!(Counters::get(&r.counters().refused_busy), 1);
        assert_eq!(Counters::get(&r.counters().refused_memory), 1);
    }
}
