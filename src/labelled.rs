//! What a run produces, for every sink (summary, `--json`, store, report):
//! each request with its verdict, and what was learnt about the inputs.

use crate::correlate::{Request, Skew, WindowStats};
use crate::parse::FileReport;
use crate::rules::Verdict;

/// A request with its verdict (`None` when it did not fail).
#[derive(Debug, Clone)]
pub struct Labelled {
    pub request: Request,
    pub verdict: Option<Verdict>,
}

/// Everything about a run except the requests themselves.
#[derive(Debug, Default)]
pub struct RunInfo {
    pub files: Vec<FileReport>,
    pub window: WindowStats,
    pub window_ms: u64,
    pub skew: Vec<Skew>,
    pub rule_errors: u64,
    pub first_rule_error: Option<String>,
}

impl RunInfo {
    pub fn input_error_count(&self) -> u64 {
        self.files.iter().map(|f| f.error_count).sum()
    }
}
