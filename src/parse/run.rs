use super::registry::{Format, Registry};
use crate::event::Event;
use crate::ingest::{open_input, Input, LineReader, ReadLine};
use std::sync::Arc;

/// Lines kept per file to show the user; the rest are only counted.
const KEEP_ERRORS: usize = 10;
/// Lines tried against every definition to detect a file's format.
const DETECT_LINES: usize = 32;
/// Largest single OTLP/JSON document read whole (pretty-printed exports).
const MAX_DOCUMENT: usize = 512 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// 0 when the error concerns the whole file.
    pub line: u64,
    pub reason: String,
}

/// What happened to one input: its format, counts, and the lines that failed.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub name: Arc<str>,
    pub format: Option<Arc<str>>,
    pub lines: u64,
    pub events: u64,
    pub error_count: u64,
    pub errors: Vec<LineError>,
}

impl FileReport {
    fn error(&mut self, line: u64, reason: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < KEEP_ERRORS {
            self.errors.push(LineError {
                line,
                reason: reason.into(),
            });
        }
    }
}

fn score(format: &Format, lines: &[(u64, String)], file: &Arc<str>) -> (usize, usize) {
    let mut ok = 0;
    let mut fields = 0;
    let mut scratch = Vec::new();
    for (n, l) in lines {
        scratch.clear();
        if format.parse(l, file, *n, &mut scratch).is_ok() {
            ok += 1;
            fields += scratch.iter().map(mapped_fields).sum::<usize>();
        }
    }
    (ok, fields)
}

fn mapped_fields(e: &Event) -> usize {
    [
        e.ts.is_some(),
        e.request_id.is_some(),
        e.trace_id.is_some(),
        e.status.is_some(),
        e.method.is_some(),
        e.path.is_some(),
        e.message.is_some(),
        e.duration_ms.is_some(),
        e.upstream_status.is_some(),
        e.level.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

/// Picks the definition that parses most of the first lines (then the one that
/// fills most fields, then the higher priority).
pub fn detect<'a>(
    registry: &'a Registry,
    lines: &[(u64, String)],
    file: &Arc<str>,
) -> Option<&'a Arc<Format>> {
    type Score = (usize, usize, i32);
    let mut best: Option<(&Arc<Format>, Score)> = None;
    for f in &registry.formats {
        let (ok, fields) = score(f, lines, file);
        if ok == 0 {
            continue;
        }
        let key = (ok, fields, f.def.priority);
        if best.as_ref().is_none_or(|(_, k)| key > *k) {
            best = Some((f, key));
        }
    }
    best.map(|(f, _)| f)
}

/// Reads one input to the end and parses every line. Never panics on bad data:
/// every problem lands in the report with its line number.
pub fn parse_input(
    input: &Input,
    registry: &Registry,
    forced: Option<&Arc<Format>>,
    max_line: usize,
) -> (FileReport, Vec<Event>) {
    let mut report = FileReport {
        name: input.name.clone(),
        ..Default::default()
    };
    let mut events = Vec::new();
    let reader = match open_input(input) {
        Ok(r) => r,
        Err(e) => {
            report.error(0, format!("{e:#}"));
            return (report, events);
        }
    };
    let file = input.name.clone();
    let mut lines = LineReader::new(reader, max_line);
    let mut buf = Vec::new();
    let mut head: Vec<(u64, String)> = Vec::new();
    let mut eof = false;
    let read_error = |report: &mut FileReport, lines: &LineReader<_>, e: std::io::Error| {
        report.error(
            lines.line_no() + 1,
            format!("read error, rest of the input lost: {e}"),
        );
    };

    // Buffer the first lines for detection.
    while head.len() < DETECT_LINES {
        match lines.next_line(&mut buf) {
            Ok(ReadLine::Line) => {
                report.lines += 1;
                let text = String::from_utf8_lossy(&buf);
                if !text.trim().is_empty() {
                    head.push((lines.line_no(), text.into_owned()));
                }
            }
            Ok(ReadLine::TooLong(n)) => {
                report.lines += 1;
                report.error(
                    lines.line_no(),
                    format!("line of {n} bytes is longer than the {max_line}-byte limit; skipped"),
                );
            }
            Ok(ReadLine::Eof) => {
                eof = true;
                break;
            }
            Err(e) => {
                read_error(&mut report, &lines, e);
                eof = true;
                break;
            }
        }
    }
    if head.is_empty() {
        return (report, events);
    }

    // A pretty-printed JSON document (OTLP export) spans many lines.
    let first = head[0].1.trim();
    if first == "{"
        || (first.starts_with('{')
            && serde_json::from_str::<serde_json::Value>(first).is_err()
            && forced.is_none_or(|f| f.is_otlp()))
    {
        let mut doc: String = head.iter().map(|(_, l)| format!("{l}\n")).collect();
        if !eof {
            let mut rest = Vec::new();
            let mut limited = std::io::Read::take(lines_into_inner(lines), MAX_DOCUMENT as u64);
            if let Err(e) = std::io::Read::read_to_end(&mut limited, &mut rest) {
                report.error(0, format!("read error: {e}"));
            }
            doc.push_str(&String::from_utf8_lossy(&rest));
            report.lines += rest.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        let compact: String = doc.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
        let key_probe = compact.split_whitespace().take(3).collect::<String>();
        let formats: Vec<&Arc<Format>> = match forced {
            Some(f) => vec![f],
            None => registry.formats.iter().filter(|f| f.is_otlp()).collect(),
        };
        let mut last_err = format!("a multi-line JSON document, but not OTLP ({key_probe:.40}…)");
        for f in formats {
            match f.parse(&doc, &file, head[0].0, &mut events) {
                Ok(()) => {
                    report.format = Some(f.name.clone());
                    report.events = events.len() as u64;
                    return (report, events);
                }
                Err(e) => last_err = e,
            }
        }
        report.error(head[0].0, last_err);
        return (report, events);
    }

    let format = match forced.or_else(|| detect(registry, &head, &file)) {
        Some(f) => f.clone(),
        None => {
            report.error(
                0,
                format!(
                    "no format recognised in the first {} lines (tried {} definitions); use --format {}=NAME",
                    head.len(),
                    registry.formats.len(),
                    file
                ),
            );
            return (report, events);
        }
    };
    report.format = Some(format.name.clone());
    for (n, text) in &head {
        if let Err(e) = format.parse(text, &file, *n, &mut events) {
            report.error(*n, e);
        }
    }
    if !eof {
        loop {
            match lines.next_line(&mut buf) {
                Ok(ReadLine::Line) => {
                    report.lines += 1;
                    let text = String::from_utf8_lossy(&buf);
                    if text.trim().is_empty() {
                        continue;
                    }
                    if let Err(e) = format.parse(&text, &file, lines.line_no(), &mut events) {
                        report.error(lines.line_no(), e);
                    }
                }
                Ok(ReadLine::TooLong(n)) => {
                    report.lines += 1;
                    report.error(
                        lines.line_no(),
                        format!(
                            "line of {n} bytes is longer than the {max_line}-byte limit; skipped"
                        ),
                    );
                }
                Ok(ReadLine::Eof) => break,
                Err(e) => {
                    read_error(&mut report, &lines, e);
                    break;
                }
            }
        }
    }
    report.events = events.len() as u64;
    (report, events)
}

fn lines_into_inner<R>(lines: LineReader<R>) -> R {
    lines.into_inner()
}
