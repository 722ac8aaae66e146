//! `tracejoin serve`: the live receiver. Its defaults are written here, once,
//! as the command line's.

use super::common::{parse_duration_ms, parse_size, Sources};
use super::EXIT_OK;
use crate::correlate::LiveLimits;
use crate::serve::{follow::FollowOptions, live::LiveOptions, ServeOptions};
use anyhow::{anyhow, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// OTLP/gRPC address, or `off`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4317")]
    grpc: String,
    /// OTLP/HTTP address (`/v1/traces`, `/v1/logs`), or `off`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4318")]
    http: String,
    /// Bind both endpoints on this host instead of loopback (e.g. 0.0.0.0);
    /// the ports stay those of --grpc and --http.
    #[arg(long, value_name = "HOST")]
    listen: Option<String>,
    /// Follow a gateway or backend log file as it grows (repeatable;
    /// globs and folders allowed; rotation and truncation handled).
    #[arg(long = "follow", value_name = "PATH")]
    follow: Vec<String>,
    /// Read followed files that already exist from their start, not their end.
    #[arg(long)]
    from_beginning: bool,
    /// Write one labelled request per line to FILE (`-` or no value: stdout).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// With --json: only requests that failed.
    #[arg(long)]
    failures_only: bool,
    /// Append every emitted request to the Parquet store in DIR (written every minute and at shutdown).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on both OTLP endpoints.
    #[arg(long, env = "TRACEJOIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve both OTLP endpoints over TLS with this certificate chain (PEM);
    /// with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Largest OTLP message accepted (after gzip decompression): `4MiB`, `512KiB`.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size)]
    max_message_size: usize,
    /// Events queued for correlation before receivers answer "busy, retry
    /// later" (gRPC RESOURCE_EXHAUSTED, HTTP 429).
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    max_queued_events: usize,
    /// Resident memory limit: above four fifths of it receivers answer "busy,
    /// retry later" and followed files wait; above it the longest-idle open
    /// requests are emitted early (flag `evicted`). `auto`: half of the
    /// machine's (or container's) memory; `off`: none.
    #[arg(long, value_name = "SIZE", default_value = "auto", value_parser = parse_memory_limit)]
    memory_limit: MemoryLimit,
    /// A request open this long is emitted even if events still arrive.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration_ms)]
    max_age: u64,
    /// Open requests held at most; beyond it the longest-idle is emitted early (flag `evicted`).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_open: usize,
    /// Events held in open requests at most; beyond it, as --max-open.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    max_events: usize,
    /// Emitted requests remembered so that a late event re-emits them amended.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    retain: usize,
    /// One summary line on stderr this often (`0s`: never).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_ms)]
    stats_interval: u64,
    #[command(flatten)]
    sources: Sources,
}

/// How often emitted requests are written to the store (`--out`).
const STORE_EVERY: Duration = Duration::from_secs(60);

impl Args {
    pub fn run(self) -> Result<i32> {
        let (registry, engine) = self.sources.load()?;
        let base = self.sources.options(Vec::new(), &registry)?;
        let grpc = address(&self.grpc, self.listen.as_deref(), "--grpc")?;
        let http = address(&self.http, self.listen.as_deref(), "--http")?;
        if grpc.is_none() && http.is_none() && self.follow.is_empty() {
            return Err(anyhow!(
                "nothing to serve: both OTLP endpoints are off and no --follow"
            ));
        }
        let opts = ServeOptions {
            grpc,
            http,
            follow: FollowOptions {
                patterns: self.follow,
                from_beginning: self.from_beginning,
                max_line: base.max_line.unwrap_or(crate::ingest::DEFAULT_MAX_LINE),
                formats: base.formats,
            },
            token: self.token.filter(|t| !t.is_empty()),
            tls: match (self.tls_cert, self.tls_key) {
                (Some(cert), Some(key)) => Some(crate::serve::tls::TlsFiles {
                    cert,
                    key,
                    client_ca: self.tls_client_ca,
                }),
                _ => None,
            },
            max_message: self.max_message_size,
            max_queued: self.max_queued_events.max(1),
            memory_limit: match self.memory_limit {
                MemoryLimit::Auto => crate::serve::memory::default_limit(),
                MemoryLimit::Off => None,
                MemoryLimit::Bytes(b) => Some(b),
            },
            live: LiveOptions {
                window_ms: self.sources.window,
                limits: LiveLimits {
                    max_age_ns: self.max_age as i64 * 1_000_000,
                    max_open: self.max_open.max(1),
                    max_events: self.max_events.max(1),
                    retain: self.retain,
                },
                infer_joins: self.sources.infer_joins,
                stats_every: (self.stats_interval > 0)
                    .then(|| Duration::from_millis(self.stats_interval)),
                store_every: STORE_EVERY,
            },
            failures_only: self.failures_only,
            json: self.json,
            store: self.out,
        };
        crate::serve::run(opts, registry, engine)?;
        Ok(EXIT_OK)
    }
}

#[derive(Debug, Clone, Copy)]
enum MemoryLimit {
    Auto,
    Off,
    Bytes(u64),
}

fn parse_memory_limit(s: &str) -> Result<MemoryLimit, String> {
    match s {
        "auto" => Ok(MemoryLimit::Auto),
        "off" => Ok(MemoryLimit::Off),
        _ => match parse_size(s)? {
            0 => Err("a memory limit of 0: use `off` for none".into()),
            b => Ok(MemoryLimit::Bytes(b as u64)),
        },
    }
}

/// `HOST:PORT` or `off`; `--listen HOST` replaces the host.
fn address(spec: &str, host: Option<&str>, flag: &str) -> Result<Option<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs;
    if spec == "off" {
        return Ok(None);
    }
    let spec = match host {
        Some(h) => {
            let port = spec.rsplit_once(':').map_or(spec, |(_, p)| p);
            if h.contains(':') && !h.starts_with('[') {
                format!("[{h}]:{port}")
            } else {
                format!("{h}:{port}")
            }
        }
        None => spec.to_string(),
    };
    spec.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(Some)
        .ok_or_else(|| anyhow!("{flag} {spec:?}: expected HOST:PORT (e.g. 127.0.0.1:4317) or off"))
}
