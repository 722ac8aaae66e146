//! Where labelled requests go, for `analyze` and `serve` alike: one JSON line
//! each (all, or failures only) and the Parquet store.
//!
//! A write error does not stop the run: the first JSON write error ends the
//! JSON output (a closed pipe, `| head`, is not an error at all), the first
//! store error ends the store and is said once on stderr. `finish` reports both.

use crate::labelled::Labelled;
use crate::report::jsonl;
use crate::store::{RunEntry, StoreWriter};
use std::io::Write;

pub struct LabelledSink {
    json: Option<Box<dyn Write + Send>>,
    failures_only: bool,
    store: Option<StoreWriter>,
    json_error: Option<std::io::Error>,
    store_error: Option<anyhow::Error>,
}

/// What the sink wrote, and what went wrong on the way.
pub struct SinkOutcome {
    /// The first JSON write error, unless it was a closed pipe.
    pub json_error: Option<std::io::Error>,
    /// The store's run entry, or the first store error.
    pub store: Option<anyhow::Result<RunEntry>>,
}

impl LabelledSink {
    pub fn new(
        json: Option<Box<dyn Write + Send>>,
        failures_only: bool,
        store: Option<StoreWriter>,
    ) -> LabelledSink {
        LabelledSink {
            json,
            failures_only,
            store,
            json_error: None,
            store_error: None,
        }
    }

    pub fn add(&mut self, l: &Labelled) {
        if let Some(s) = self.store.as_mut() {
            if let Err(e) = s.add(l) {
                self.store_failed(e);
            }
        }
        if let (Some(w), None) = (self.json.as_mut(), &self.json_error) {
            if !self.failures_only || l.request.failed {
                if let Err(e) = writeln!(w, "{}", jsonl::request_json(l)) {
                    self.json_error = Some(e);
                }
            }
        }
    }

    /// Pushes buffered JSON lines out (live mode does it every tick).
    pub fn flush_json(&mut self) {
        if let (Some(w), None) = (self.json.as_mut(), &self.json_error) {
            if let Err(e) = w.flush() {
                self.json_error = Some(e);
            }
        }
    }

    /// Writes the store's buffered rows to files (live mode, every minute).
    pub fn flush_store(&mut self) {
        if let Some(s) = self.store.as_mut() {
            if let Err(e) = s.flush_all() {
                self.store_failed(e);
            }
        }
    }

    fn store_failed(&mut self, e: anyhow::Error) {
        eprintln!("tracejoin: cannot write the store: {e:#}; no more requests go to it");
        self.store = None;
        self.store_error = Some(e);
    }

    /// What the run's data cannot tell, for the store's manifest.
    pub fn set_gaps(&mut self, gaps: Vec<String>) {
        if let Some(s) = self.store.as_mut() {
            s.set_gaps(gaps);
        }
    }

    pub fn finish(mut self) -> SinkOutcome {
        self.flush_json();
        let store = match (self.store.take(), self.store_error.take()) {
            (_, Some(e)) => Some(Err(e)),
            (Some(s), None) => Some(s.finish()),
            (None, None) => None,
        };
        SinkOutcome {
            json_error: self
                .json_error
                .filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe),
            store,
        }
    }
}
