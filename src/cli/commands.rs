use super::args::{Cli, Command, RulesAction, Sources};
use super::{EXIT_FATAL, EXIT_INPUT_ERRORS, EXIT_OK};
use crate::analysis::{self, Labelled, Options, RunInfo};
use crate::correlate::ids;
use crate::parse::time::TimeFormat;
use crate::parse::Registry;
use crate::query::TimeRange;
use crate::report::summary::{self, Summary};
use crate::report::{escape::terminal, jsonl, timeline};
use crate::rules::{check_examples, Engine};
use crate::serve::ServeOptions;
use crate::store::{self, Store, StoreWriter};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Analyze {
            paths,
            json,
            failures_only,
            out: store_dir,
            since,
            until,
            sources,
        } => {
            let started = Instant::now();
            let mut opts = options(paths, &sources)?;
            opts.since = since.as_deref().map(parse_time).transpose()?;
            opts.until = until.as_deref().map(parse_time).transpose()?;
            let (registry, engine) = load(&sources)?;
            let progress = Progress::start(&mut opts);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut summary = Summary::default();
            let mut write_error: Option<std::io::Error> = None;
            let mut store = match &store_dir {
                Some(dir) => Some(StoreWriter::create(
                    dir,
                    store::run_entry(&opts.paths, &engine, sources.window),
                )?),
                None => None,
            };
            let mut store_error: Option<anyhow::Error> = None;
            let info = analysis::run_with(&opts, &registry, &engine, &mut |l| {
                if let (Some(s), None) = (store.as_mut(), &store_error) {
                    if let Err(e) = s.add(l) {
                        store_error = Some(e);
                    }
                }
                if json {
                    if (!failures_only || l.request.failed) && write_error.is_none() {
                        if let Err(e) = writeln!(out, "{}", jsonl::request_json(l)) {
                            write_error = Some(e);
                        }
                    }
                } else {
                    summary.add(l);
                }
            })?;
            drop(progress);
            if let Some(e) = store_error {
                return Err(e.context("cannot write the store"));
            }
            if let Some(s) = store {
                let entry = s.finish()?;
                eprintln!(
                    "tracejoin: store {}: run {} wrote {} requests ({} failed) and {} events in {} hour partitions",
                    store_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
                    entry.run,
                    entry.requests,
                    entry.failed,
                    entry.events,
                    entry.partitions.len()
                );
            }
            eprint!("{}", summary::render_errors(&info.files));
            match write_error {
                // `tracejoin analyze --json | head` is not an error.
                Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(EXIT_OK),
                Some(e) => return Err(e).context("cannot write to stdout"),
                None => {}
            }
            if !json {
                write!(
                    out,
                    "{}",
                    summary.render(&info, started.elapsed().as_secs_f64())
                )?;
            }
            out.flush()?;
            Ok(exit_code(&info))
        }
        Command::Timeline {
            id,
            store: Some(dir),
            json,
            ..
        } => {
            let store = Store::open(&dir)?;
            match store.lookup(&id)? {
                Some(l) => {
                    if json {
                        println!("{}", jsonl::request_json(&l));
                    } else {
                        print!("{}", timeline::render(&l, &[]));
                    }
                    Ok(EXIT_OK)
                }
                None => {
                    eprintln!(
                        "tracejoin: no request in {} has the id {:?}",
                        dir.display(),
                        terminal(&id)
                    );
                    Ok(EXIT_FATAL)
                }
            }
        }
        Command::Query {
            store,
            sql,
            format,
            since,
            until,
        } => {
            let store = Store::open(&store)?;
            let range = time_range(since.as_deref(), until.as_deref())?;
            let mut df = crate::query::run(&store, &sql, range)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match crate::query::write(&mut df, format, &mut out).and_then(|()| Ok(out.flush()?)) {
                Err(e)
                    if e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
                {
                    Ok(EXIT_OK)
                }
                r => r.map(|()| EXIT_OK),
            }
        }
        Command::Report {
            store,
            output,
            markdown,
            since,
            until,
        } => {
            let store = Store::open(&store)?;
            let range = time_range(since.as_deref(), until.as_deref())?;
            let data = crate::report::postmortem::gather(&store, range)?;
            let text = if markdown {
                crate::report::postmortem::markdown(&data)
            } else {
                crate::report::postmortem::html(&data)
            };
            if output.as_os_str() == "-" {
                print!("{text}");
            } else {
                std::fs::write(&output, text)
                    .with_context(|| format!("cannot write {}", output.display()))?;
                eprintln!("tracejoin: wrote {}", output.display());
            }
            Ok(EXIT_OK)
        }
        Command::Diff {
            store,
            against,
            at,
            window,
            markdown,
        } => {
            let base = Store::open(&store)?;
            let (before, after) = match (&against, &at) {
                (Some(other), None) => {
                    let other = Store::open(other)?;
                    (
                        crate::report::diff::Side::of(&base, TimeRange::default(), store.display().to_string())?,
                        crate::report::diff::Side::of(&other, TimeRange::default(), other.dir.display().to_string())?,
                    )
                }
                (None, Some(at)) => {
                    let t = parse_time(at)?;
                    let w = window as i64 * 1_000_000;
                    let b = TimeRange { since: Some(t - w), until: Some(t) };
                    let a = TimeRange { since: Some(t), until: Some(t + w) };
                    (
                        crate::report::diff::Side::of(&base, b, format!("before {at}"))?,
                        crate::report::diff::Side::of(&base, a, format!("from {at}"))?,
                    )
                }
                _ => return Err(anyhow!("give either --at TIME (two windows of one store) or --against DIR (two stores)")),
            };
            let d = crate::report::diff::Diff::new(before, after);
            print!("{}", if markdown { d.markdown() } else { d.text() });
            Ok(EXIT_OK)
        }
        Command::Timeline {
            id,
            paths,
            json,
            sources,
            ..
        } => {
            let opts = options(paths, &sources)?;
            let (registry, engine) = load(&sources)?;
            let wanted: Vec<String> = [ids::normalize(&id), ids::normalize_trace(&id)]
                .into_iter()
                .flatten()
                .collect();
            let mut found: Option<Labelled> = None;
            let mut searched = 0usize;
            let info = analysis::run_with(&opts, &registry, &engine, &mut |l| {
                searched += 1;
                if found.is_none() && l.request.ids.iter().any(|i| wanted.contains(i)) {
                    found = Some(l.clone());
                }
            })?;
            eprint!("{}", summary::render_errors(&info.files));
            match found {
                Some(l) => {
                    if json {
                        println!("{}", jsonl::request_json(&l));
                    } else {
                        print!("{}", timeline::render(&l, &info.skew));
                    }
                    Ok(exit_code(&info))
                }
                None => {
                    eprintln!(
                        "tracejoin: no request has the id {:?} ({searched} requests searched)",
                        terminal(&id),
                    );
                    Ok(EXIT_FATAL)
                }
            }
        }
        Command::Serve {
            grpc,
            http,
            listen,
            follow,
            from_beginning,
            json,
            failures_only,
            out,
            token,
            max_message_size,
            max_queued_events,
            max_age,
            max_open,
            max_events,
            retain,
            stats_interval,
            sources,
        } => {
            let (registry, engine) = load(&sources)?;
            let base = options(Vec::new(), &sources)?;
            let mut opts = ServeOptions::defaults();
            opts.grpc = address(&grpc, listen.as_deref(), "--grpc")?;
            opts.http = address(&http, listen.as_deref(), "--http")?;
            if opts.grpc.is_none() && opts.http.is_none() && follow.is_empty() {
                return Err(anyhow!(
                    "nothing to serve: both OTLP endpoints are off and no --follow"
                ));
            }
            opts.follow.patterns = follow;
            opts.follow.from_beginning = from_beginning;
            opts.follow.max_line = base.max_line.unwrap_or(crate::ingest::DEFAULT_MAX_LINE);
            opts.follow.formats = base
                .formats
                .iter()
                .map(|(p, name)| {
                    registry
                        .get(name)
                        .cloned()
                        .map(|f| (p.clone(), f))
                        .ok_or_else(|| anyhow!("unknown format {name:?} in --format; `tracejoin formats` lists them"))
                })
                .collect::<Result<_>>()?;
            opts.token = token.filter(|t| !t.is_empty());
            opts.max_message = max_message_size;
            opts.max_queued = max_queued_events.max(1);
            opts.live.window_ms = sources.window;
            opts.live.infer_joins = sources.infer_joins;
            opts.live.limits.max_age_ns = max_age as i64 * 1_000_000;
            opts.live.limits.max_open = max_open.max(1);
            opts.live.limits.max_events = max_events.max(1);
            opts.live.limits.retain = retain;
            opts.live.failures_only = failures_only;
            opts.live.stats_every =
                (stats_interval > 0).then(|| std::time::Duration::from_millis(stats_interval));
            opts.json = json;
            opts.store = out;
            crate::serve::run(opts, registry, engine)
        }
        Command::Formats { parsers, verbose } => {
            let registry = Registry::load(parsers.as_deref())?;
            for f in &registry.formats {
                println!(
                    "{:<24} {:<9} {:<7} {}",
                    f.name,
                    f.source.as_str(),
                    format!("{:?}", f.def.kind).to_lowercase(),
                    f.def.title
                );
                println!("{:<24} source of truth: {}", "", f.def.reference);
                if f.loaded_from != "built-in" {
                    println!("{:<24} loaded from {}", "", f.loaded_from);
                }
                let samples = if verbose { f.def.samples.len() } else { 1 };
                for s in f.def.samples.iter().take(samples) {
                    let line: String = s
                        .line
                        .chars()
                        .take(if verbose { 10_000 } else { 160 })
                        .collect();
                    println!("{:<24} e.g. {}", "", terminal(&line));
                }
            }
            Ok(EXIT_OK)
        }
        Command::Rules { action } => match action {
            RulesAction::List { rules } => {
                let engine = Engine::load(rules.as_deref())?;
                println!("{:<40} {:<10} {:>8}  pack", "rule", "label", "priority");
                for r in &engine.rules {
                    println!(
                        "{:<40} {:<10} {:>8}  {}",
                        r.def.name, r.def.label, r.def.priority, r.pack
                    );
                }
                Ok(EXIT_OK)
            }
            RulesAction::Check { rules } => {
                let engine = Engine::load(rules.as_deref())?;
                let (n, failures) = check_examples(&engine);
                for f in &failures {
                    eprintln!("rule {} example {}: {}", f.rule, f.example, f.problem);
                }
                println!(
                    "{} rules, {} examples: {} passed, {} failed",
                    engine.rules.len(),
                    n,
                    n - failures.iter().filter(|f| f.example > 0).count(),
                    failures.len()
                );
                Ok(if failures.is_empty() {
                    EXIT_OK
                } else {
                    EXIT_INPUT_ERRORS
                })
            }
        },
    }
}

fn load(sources: &Sources) -> Result<(Registry, Engine)> {
    let registry = Registry::load(sources.parsers.as_deref())?;
    let engine = Engine::load(sources.rules.as_deref())?;
    Ok((registry, engine))
}

fn options(paths: Vec<PathBuf>, sources: &Sources) -> Result<Options> {
    let formats = sources
        .formats
        .iter()
        .map(|s| {
            let (p, n) = s
                .rsplit_once('=')
                .ok_or_else(|| anyhow!("--format {s:?}: expected PATH=NAME"))?;
            Ok((PathBuf::from(p), n.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Options {
        paths,
        formats,
        max_line: sources.max_line,
        window_ms: Some(sources.window),
        infer_joins: sources.infer_joins,
        ..Default::default()
    })
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

fn time_range(since: Option<&str>, until: Option<&str>) -> Result<TimeRange> {
    Ok(TimeRange {
        since: since.map(parse_time).transpose()?,
        until: until.map(parse_time).transpose()?,
    })
}

fn parse_time(s: &str) -> Result<i64> {
    TimeFormat::Auto
        .parse(s)
        .with_context(|| format!("{s:?} is not a time (use RFC 3339, e.g. 2026-11-24T10:00:00Z)"))
}

fn exit_code(info: &RunInfo) -> i32 {
    if info.input_error_count() > 0 {
        EXIT_INPUT_ERRORS
    } else {
        EXIT_OK
    }
}

/// A progress bar on stderr while a run reads its inputs, only when stderr is
/// a terminal (never in pipes, files or CI logs).
struct Progress {
    bar: indicatif::ProgressBar,
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(opts: &mut Options) -> Option<Progress> {
        use std::io::IsTerminal;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let total: u64 = opts
            .paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        let counter = Arc::new(AtomicU64::new(0));
        opts.progress = Some(counter.clone());
        let bar = indicatif::ProgressBar::new(total.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} read ({bytes_per_sec}), {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let done = Arc::new(AtomicBool::new(false));
        let (b, d) = (bar.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                b.set_position(counter.load(Ordering::Relaxed));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        Some(Progress {
            bar,
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}
