//! Live mode (`tracejoin serve`): sources → [`intake`] → [`live`] pipeline →
//! sinks. Sources are the OTLP [`receiver`] (gRPC and HTTP) and [`follow`]ed
//! files; the pipeline is the batch run's correlator and rules engine, timed
//! by arrival instead of event time.
//!
//! Shutdown order is what makes "nothing accepted is lost" true: stop
//! accepting (servers finish the requests in flight), read the followed files
//! to their end, then tell the pipeline, which closes and emits every request.

pub mod follow;
pub mod intake;
pub mod live;
pub mod memory;
pub mod receiver;
pub mod tls;

use crate::parse::Registry;
use crate::rules::Engine;
use crate::sink::LabelledSink;
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ServeOptions {
    /// `None`: that protocol is off.
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub follow: follow::FollowOptions,
    pub token: Option<String>,
    /// TLS on both receivers (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
    pub tls: Option<tls::TlsFiles>,
    pub max_message: usize,
    /// Events queued between the sources and the pipeline before receivers
    /// answer "busy, retry".
    pub max_queued: usize,
    /// Bytes of resident memory (`None`: no limit); see [`memory`].
    pub memory_limit: Option<u64>,
    pub live: live::LiveOptions,
    /// With `json`: only requests that failed.
    pub failures_only: bool,
    /// `-` for stdout.
    pub json: Option<PathBuf>,
    /// The Parquet store to append emitted requests to.
    pub store: Option<PathBuf>,
}

/// Runs until SIGINT or SIGTERM.
pub fn run(opts: ServeOptions, registry: Registry, engine: Engine) -> Result<()> {
    let started = Instant::now();
    let registry = Arc::new(registry);
    let engine = Arc::new(engine);
    let traces = registry
        .get("otlp_traces")
        .cloned()
        .ok_or_else(|| anyhow!("no otlp_traces definition is loaded"))?;
    let logs = registry
        .get("otlp_logs")
        .cloned()
        .ok_or_else(|| anyhow!("no otlp_logs definition is loaded"))?;
    if opts.memory_limit.is_some() {
        memory::no_huge_pages();
    }
    let memory = Arc::new(memory::Limiter::new(opts.memory_limit));
    let monitor_stop = Arc::new(AtomicBool::new(false));
    if opts.memory_limit.is_some() {
        memory.sample();
        memory
            .monitor(monitor_stop.clone())
            .context("cannot start the memory monitor")?;
    }
    let (intake, outlet) = intake::channel(opts.max_queued, memory.clone());
    let counters = intake.counters.clone();

    let out: Option<Box<dyn Write + Send>> = match &opts.json {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::stdout())),
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ))),
    };
    let store = match &opts.store {
        None => None,
        Some(dir) => {
            // A live run is its own run: it appends, and never replaces
            // another, even one started the same instant beside it (several
            // instances writing one store).
            let mut entry = crate::store::run_entry(&[], &engine, opts.live.window_ms);
            entry.run = crate::store::live_run_id(live::now_ns(), std::process::id());
            entry.inputs = Vec::new();
            let mut writer = crate::store::StoreWriter::create(dir, entry)?;
            writer.remember_last(opts.live.limits.retain);
            Some(writer)
        }
    };
    let json_on_stdout = opts.json.as_ref().is_some_and(|p| p.as_os_str() == "-");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_park(memory::collect_if_asked)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (grpc_l, http_l) = runtime.block_on(async {
        let bind = |a: Option<SocketAddr>, what: &'static str| async move {
            match a {
                None => Ok(None),
                Some(a) => tokio::net::TcpListener::bind(a)
                    .await
                    .map(Some)
                    .with_context(|| format!("cannot listen for OTLP/{what} on {a}")),
            }
        };
        Ok::<_, anyhow::Error>((
            bind(opts.grpc, "gRPC").await?,
            bind(opts.http, "HTTP").await?,
        ))
    })?;
    let addr = |l: &Option<tokio::net::TcpListener>| {
        l.as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or("off".to_string(), |a| a.to_string())
    };
    eprintln!(
        "tracejoin: listening: OTLP/gRPC {}, OTLP/HTTP {}{}{}",
        addr(&grpc_l),
        addr(&http_l),
        match &opts.tls {
            Some(t) if t.client_ca.is_some() => " (TLS, client certificates required)",
            Some(_) => " (TLS)",
            None => "",
        },
        if opts.token.is_some() {
            " (bearer token required)"
        } else {
            ""
        }
    );
    if let Some(limit) = opts.memory_limit {
        eprintln!(
            "tracejoin: memory limit {} MiB (refuse above {} MiB, shed above the limit; --memory-limit)",
            limit >> 20,
            memory.soft >> 20
        );
    }
    let beyond_loopback = [opts.grpc, opts.http]
        .iter()
        .flatten()
        .any(|a| !a.ip().is_loopback());
    if beyond_loopback && opts.tls.is_none() {
        eprintln!(
            "tracejoin: warning: listening beyond loopback without TLS: spans, logs{} cross the network in clear text; give --tls-cert and --tls-key",
            if opts.token.is_some() { " and the bearer token" } else { "" }
        );
    }
    if beyond_loopback
        && opts.token.is_none()
        && opts.tls.as_ref().is_none_or(|t| t.client_ca.is_none())
    {
        eprintln!(
            "tracejoin: warning: listening beyond loopback without --token (or --tls-client-ca): anyone who reaches these ports can send data"
        );
    }
    let tls = match &opts.tls {
        None => None,
        Some(t) => Some((t.tonic()?, t.rustls()?)),
    };
    let (grpc_tls, http_tls) = match tls {
        Some((g, h)) => (Some(g), Some(h)),
        None => (None, None),
    };

    // A parked receiver thread hands back its freed memory when it next
    // wakes (memory::collect_if_asked): after a shed, wake each one.
    let wake_receivers = {
        let handle = runtime.handle().clone();
        move || {
            for _ in 0..2 {
                handle.spawn(async {});
            }
        }
    };
    let window_ms = opts.live.window_ms;
    let failures_only = opts.failures_only;
    let pipeline = {
        let engine = engine.clone();
        let counters = counters.clone();
        let memory = memory.clone();
        let live = opts.live;
        std::thread::Builder::new()
            .name("tracejoin-pipeline".into())
            .spawn(move || {
                let sink = LabelledSink::new(out, failures_only, store);
                live::run(
                    outlet,
                    &engine,
                    &counters,
                    &memory,
                    &wake_receivers,
                    &live,
                    sink,
                )
            })?
    };
    let stop = Arc::new(AtomicBool::new(false));
    let follower = (!opts.follow.patterns.is_empty())
        .then(|| {
            let (registry, intake, stop) = (registry.clone(), intake.clone(), stop.clone());
            let fopts = opts.follow;
            std::thread::Builder::new()
                .name("tracejoin-follow".into())
                .spawn(move || follow::run(fopts, registry, intake, stop))
        })
        .transpose()?;

    let receiver = Arc::new(
        receiver::Receiver::new(intake.clone(), traces, logs, opts.token, opts.max_message)
            .reading_shipped_lines(registry.clone()),
    );
    let served = runtime.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        if let Some(l) = grpc_l {
            tasks.push(tokio::spawn(receiver::serve_grpc(
                receiver.clone(),
                l,
                grpc_tls,
                stopped(rx.clone()),
            )));
        }
        if let Some(l) = http_l {
            tasks.push(tokio::spawn(receiver::serve_http(
                receiver.clone(),
                l,
                http_tls,
                stopped(rx.clone()),
            )));
        }
        let signal = shutdown_signal().await;
        eprintln!(
            "tracejoin: {signal}: finishing requests in flight and closing every open request"
        );
        let _ = tx.send(true);
        let mut result = Ok(());
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(anyhow!("server task failed: {e}")),
            }
        }
        result
    });
    stop.store(true, std::sync::atomic::Ordering::Release);
    if let Some(f) = follower {
        let _ = f.join();
    }
    intake.shutdown();
    let finished = pipeline
        .join()
        .map_err(|_| anyhow!("the pipeline thread panicked"))?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    monitor_stop.store(true, std::sync::atomic::Ordering::Release);
    served?;
    if opts.memory_limit.is_some() {
        memory.sample();
        eprintln!(
            "tracejoin: {}; refused {} messages over the soft mark",
            memory.describe(),
            intake::Counters::get(&counters.refused_memory)
        );
    }

    let g = intake::Counters::get;
    let c = &counters;
    let sources = vec![
        crate::parse::FileReport {
            name: Arc::from("OTLP receiver"),
            format: Some(Arc::from("otlp")),
            events: g(&c.spans) + g(&c.logs),
            // Refused messages are in the counters line on stderr.
            ..Default::default()
        },
        crate::parse::FileReport {
            name: Arc::from("followed files"),
            lines: g(&c.lines),
            events: g(&c.lines).saturating_sub(g(&c.line_errors)),
            error_count: g(&c.line_errors),
            ..Default::default()
        },
    ];
    let info = crate::labelled::RunInfo {
        files: sources,
        window: finished.window,
        window_ms,
        skew: finished.skew,
        rule_errors: engine.errors.load(std::sync::atomic::Ordering::Relaxed),
        first_rule_error: engine.first_error.lock().ok().and_then(|g| g.clone()),
    };
    let text = finished
        .summary
        .render(&info, started.elapsed().as_secs_f64());
    if json_on_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(e) = finished.write_error {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("cannot write the --json output");
        }
    }
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
