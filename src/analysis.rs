//! A batch run: inputs → parsed events → requests → verdicts. The same steps
//! `analyze` and `timeline` use; printing is left to [`crate::report`].

use crate::correlate::{correlate, estimate_skew, Request, Skew};
use crate::ingest::{expand_inputs, Input, DEFAULT_MAX_LINE};
use crate::parse::{parse_input, FileReport, Format, Registry};
use crate::rules::{Engine, Verdict};
use anyhow::{bail, Result};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub paths: Vec<PathBuf>,
    /// `PATH=NAME` overrides of auto-detection.
    pub formats: Vec<(PathBuf, String)>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub max_line: Option<usize>,
}

/// A request with its verdict (`None` when it did not fail).
#[derive(Debug, Clone)]
pub struct Labelled {
    pub request: Request,
    pub verdict: Option<Verdict>,
}

pub struct Analysis {
    pub requests: Vec<Labelled>,
    pub files: Vec<FileReport>,
    /// Events with no id at all that were not gateway lines.
    pub unjoined: usize,
    pub skew: Vec<Skew>,
    pub rule_errors: u64,
    pub first_rule_error: Option<String>,
}

impl Analysis {
    pub fn input_error_count(&self) -> u64 {
        self.files.iter().map(|f| f.error_count).sum()
    }
}

pub fn run(opts: &Options, registry: &Registry, engine: &Engine) -> Result<Analysis> {
    let (inputs, missing) = expand_inputs(&opts.paths);
    let mut forced: Vec<(Input, Option<Arc<Format>>)> = Vec::new();
    for input in inputs {
        let over = opts
            .formats
            .iter()
            .find(|(p, _)| Arc::from(p.display().to_string()) == input.name);
        let f = match over {
            Some((_, name)) => match registry.get(name) {
                Some(f) => Some(f.clone()),
                None => {
                    bail!("unknown format {name:?} in --format; `tracejoin formats` lists them")
                }
            },
            None => None,
        };
        forced.push((input, f));
    }
    let max_line = opts.max_line.unwrap_or(DEFAULT_MAX_LINE);
    let parsed: Vec<_> = forced
        .par_iter()
        .map(|(input, f)| parse_input(input, registry, f.as_ref(), max_line))
        .collect();
    let mut files = Vec::with_capacity(parsed.len() + missing.len());
    for (path, err) in missing {
        files.push(FileReport {
            name: Arc::from(path),
            error_count: 1,
            errors: vec![crate::parse::LineError {
                line: 0,
                reason: err,
            }],
            ..Default::default()
        });
    }
    let mut events = Vec::new();
    for (report, evs) in parsed {
        files.push(report);
        events.extend(evs);
    }
    let corr = correlate(events);
    let mut requests: Vec<Request> = corr.requests;
    if opts.since.is_some() || opts.until.is_some() {
        requests.retain(|r| {
            let t = r.start.unwrap_or(0);
            opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t < u)
        });
    }
    requests.sort_by_key(|r| r.start);
    let skew = estimate_skew(&requests);
    let labelled: Vec<Labelled> = requests
        .into_par_iter()
        .map_init(
            || engine.evaluator(),
            |ev, request| {
                let verdict = engine.evaluate(ev, &request);
                Labelled { request, verdict }
            },
        )
        .collect();
    Ok(Analysis {
        requests: labelled,
        files,
        unjoined: corr.unjoined.len(),
        skew,
        rule_errors: engine.errors.load(std::sync::atomic::Ordering::Relaxed),
        first_rule_error: engine.first_error.lock().ok().and_then(|g| g.clone()),
    })
}
