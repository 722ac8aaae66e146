//! One input as a stream of line chunks: the format is detected on the first
//! lines, then complete lines are cut into chunks of the size the caller asks
//! (analyze: 512 KiB) that are parsed in parallel while their line numbers
//! stay exact.

use super::registry::{Format, Registry};
use crate::event::time::TimeFormat;
use crate::event::{Event, Text};
use crate::ingest::{open_input, unwrap, Input, LineReader, ReadLine, Wrapper};
use std::io::BufRead;
use std::sync::Arc;

/// Lines kept per file to show the user; the rest are only counted.
const KEEP_ERRORS: usize = 10;
/// Lines tried against every definition to detect a file's format.
const DETECT_LINES: usize = 32;
/// Largest single OTLP/JSON document read whole (pretty-printed exports).
const MAX_DOCUMENT: u64 = 512 << 20;

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
    /// Lines whose format left words after its last field (kept as the
    /// attribute `tail`; an id-shaped one is the request id).
    pub leftover: u64,
    /// Of those, lines whose request id was found among the words.
    pub leftover_ids: u64,
    /// Lines that are no request: the gateway's own messages in its access
    /// log, and error-log lines that joined no request (start-up, reloads).
    pub context: u64,
    /// The wrapper peeled off its lines (syslog, a container runtime's), if any.
    pub wrapper: Option<&'static str>,
    /// Other formats read for some wrapped lines (`nginx_error for nginx_error lines`).
    pub also: Vec<String>,
}

impl FileReport {
    pub fn error(&mut self, line: u64, reason: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < KEEP_ERRORS {
            self.errors.push(LineError {
                line,
                reason: reason.into(),
            });
        }
    }
}

/// Complete lines of one input, ready to parse on any thread.
pub struct Chunk {
    format: Arc<Format>,
    /// Peeled off every line before the format reads it.
    wrapper: Option<Wrapper>,
    /// Formats of wrapped lines whose tag's lines are in another format.
    by_tag: Arc<Vec<(String, Arc<Format>)>>,
    file: Arc<str>,
    data: Vec<u8>,
    /// (line number, start, end) in `data`.
    lines: Vec<(u64, u32, u32)>,
}

/// Events (with their correlation keys, computed here on the worker thread)
/// and errors from one chunk, in line order.
pub struct Parsed {
    pub events: Vec<Event>,
    /// `keys[i]` are the correlation keys of `events[i]`.
    pub keys: Vec<Vec<String>>,
    pub errors: Vec<LineError>,
    /// Lines the gateway writes beside its requests (not events, not errors).
    pub context: u64,
}

impl Chunk {
    /// A chunk of lines already read (followed files).
    pub fn from_lines(
        format: Arc<Format>,
        wrapping: &Wrapping,
        file: Arc<str>,
        lines: &[(u64, String)],
    ) -> Chunk {
        let mut data = Vec::with_capacity(lines.iter().map(|(_, l)| l.len()).sum());
        let mut spans = Vec::with_capacity(lines.len());
        for (n, text) in lines {
            let a = data.len() as u32;
            data.extend_from_slice(text.as_bytes());
            spans.push((*n, a, data.len() as u32));
        }
        Chunk {
            format,
            wrapper: wrapping.wrapper,
            by_tag: wrapping.by_tag.clone(),
            file,
            data,
            lines: spans,
        }
    }
}

pub fn parse_chunk(chunk: &Chunk) -> Parsed {
    let mut events = Vec::with_capacity(chunk.lines.len());
    let mut errors = Vec::new();
    let mut context = 0;
    // A CRI partial line (`P`) continues in the next: joined before parsing.
    let mut partial = String::new();
    for &(n, a, b) in &chunk.lines {
        let bytes = &chunk.data[a as usize..b as usize];
        // Valid UTF-8 is the rule; only broken lines pay for the lossy copy.
        let raw = match std::str::from_utf8(bytes) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        let peeled = chunk.wrapper.and_then(|w| unwrap::peel(w, &raw));
        let mut text = match &peeled {
            Some(p) => std::borrow::Cow::Borrowed(p.line.as_ref()),
            None => std::borrow::Cow::Borrowed(raw.as_ref()),
        };
        if peeled.as_ref().is_some_and(|p| p.partial) {
            partial.push_str(&text);
            continue;
        }
        if !partial.is_empty() {
            partial.push_str(&text);
            text = std::borrow::Cow::Owned(std::mem::take(&mut partial));
        }
        let before = events.len();
        // An OTLP file may hold both signals (one Collector file exporter
        // shared by a traces and a logs pipeline): each line by its own.
        let otlp_tag = || {
            chunk
                .format
                .is_otlp()
                .then(|| super::otlp::signal_of(text.trim_start()).map(|s| s.as_str()))
                .flatten()
        };
        let format = peeled
            .as_ref()
            .and_then(|p| p.tag)
            .or_else(otlp_tag)
            .and_then(|t| chunk.by_tag.iter().find(|(tag, _)| tag == t))
            .map_or(&chunk.format, |(_, f)| f);
        let result = format.parse(&text, &chunk.file, n, &mut events);
        if let Some(p) = &peeled {
            for ev in &mut events[before..] {
                wrapped(ev, p);
            }
        }
        if let Err(e) = result {
            // A continuation line (stack trace, traceback) belongs to the event before it.
            let folded = chunk
                .format
                .continuation()
                .is_some_and(|c| c.is_match(&text))
                && events.last_mut().is_some_and(|prev| {
                    let m = prev.message.get_or_insert_with(Default::default);
                    m.push('\n');
                    m.push_str(&text);
                    // The folded lines are the event's stack trace, and its
                    // last `Type: message` line names the error (Python's
                    // traceback, Java's `Caused by:` aside).
                    let stack = prev.error_stack.get_or_insert_with(Default::default);
                    if !stack.is_empty() {
                        stack.push('\n');
                    }
                    stack.push_str(&text);
                    if let Some((ty, msg)) = super::fields::exception_line(&text) {
                        prev.error_type = Some(ty.into());
                        prev.error_message = Some(msg.into());
                    }
                    true
                });
            if !folded {
                if chunk.format.is_context(&text) {
                    context += 1;
                } else {
                    errors.push(LineError { line: n, reason: e });
                }
            }
        }
    }
    let keys = events.iter().map(crate::event::ids::keys).collect();
    Parsed {
        events,
        keys,
        errors,
        context,
    }
}

/// What the wrapper said, kept on the event: its time when the inner line has
/// none, its host or service, its stream.
fn wrapped(ev: &mut Event, p: &unwrap::Peeled<'_>) {
    if ev.ts.is_none() {
        ev.ts = p.time.and_then(|t| TimeFormat::Iso.parse(t));
    }
    if let Some(h) = p.host {
        ev.attributes
            .push((Text::from("wrapper.host"), h.to_string()));
    }
    if let Some(s) = p.stream {
        ev.attributes
            .push((Text::from("wrapper.stream"), s.to_string()));
    }
}

/// The wrapper of an input's lines, and the formats of tags whose lines are
/// not in the input's main format.
#[derive(Debug, Clone, Default)]
pub struct Wrapping {
    pub wrapper: Option<Wrapper>,
    pub by_tag: Arc<Vec<(String, Arc<Format>)>>,
}

/// The format and wrapper of an input, from its first lines: the wrapper
/// first, then the format of the lines inside it, then, for each tag (syslog
/// program, compose service) whose lines that format does not read, theirs.
pub fn detect_wrapped<'a>(
    registry: &'a Registry,
    lines: &[(u64, String)],
    file: &Arc<str>,
) -> (Option<&'a Arc<Format>>, Wrapping) {
    let wrapper = unwrap::detect(lines.iter().map(|(_, l)| l.as_str()));
    let Some(w) = wrapper else {
        let main = detect(registry, lines, file);
        // OTLP lines of either signal, whichever the file starts with.
        let by_tag: Vec<(String, Arc<Format>)> = match main {
            Some(m) if m.is_otlp() => registry
                .formats
                .iter()
                .filter(|f| f.is_otlp() && !Arc::ptr_eq(f, m))
                .map(|f| (f.source.as_str().to_string(), f.clone()))
                .collect(),
            _ => Vec::new(),
        };
        let wrapping = Wrapping {
            wrapper: None,
            by_tag: Arc::new(by_tag),
        };
        return (main, wrapping);
    };
    let mut inner: Vec<(u64, String, Option<String>)> = Vec::new();
    for (n, l) in lines {
        match unwrap::peel(w, l) {
            Some(p) => inner.push((*n, p.line.into_owned(), p.tag.map(str::to_string))),
            None => inner.push((*n, l.clone(), None)),
        }
    }
    let all: Vec<(u64, String)> = inner.iter().map(|(n, l, _)| (*n, l.clone())).collect();
    let main = detect(registry, &all, file);
    let mut tags: Vec<&str> = inner.iter().filter_map(|(_, _, t)| t.as_deref()).collect();
    tags.sort();
    tags.dedup();
    let mut by_tag = Vec::new();
    if tags.len() > 1 {
        for tag in tags {
            let of_tag: Vec<(u64, String)> = inner
                .iter()
                .filter(|(_, _, t)| t.as_deref() == Some(tag))
                .map(|(n, l, _)| (*n, l.clone()))
                .collect();
            if let Some(f) = detect(registry, &of_tag, file) {
                if main.is_none_or(|m| !Arc::ptr_eq(m, f)) {
                    by_tag.push((tag.to_string(), f.clone()));
                }
            }
        }
    }
    let wrapping = Wrapping {
        wrapper,
        by_tag: Arc::new(by_tag),
    };
    (main, wrapping)
}

type Reader = LineReader<Box<dyn BufRead + Send>>;

pub struct InputStream {
    pub report: FileReport,
    format: Option<Arc<Format>>,
    wrapping: Wrapping,
    reader: Option<Reader>,
    /// Lines read for detection, parsed first.
    head: Vec<(u64, String)>,
    max_line: usize,
    buf: Vec<u8>,
    /// Bytes of lines handed out so far (decompressed), for progress display.
    pub bytes_read: u64,
}

fn too_long(report: &mut FileReport, line: u64, n: usize, max: usize) {
    report.error(
        line,
        format!("line of {n} bytes is longer than the {max}-byte limit; skipped"),
    );
}

impl InputStream {
    /// Opens the input and settles its format; problems land in the report.
    pub fn open(
        input: &Input,
        registry: &Registry,
        forced: Option<&Arc<Format>>,
        max_line: usize,
    ) -> InputStream {
        let mut s = InputStream {
            report: FileReport {
                name: input.name.clone(),
                ..Default::default()
            },
            format: None,
            wrapping: Wrapping::default(),
            reader: None,
            head: Vec::new(),
            max_line,
            buf: Vec::new(),
            bytes_read: 0,
        };
        s.reader = match open_input(input) {
            Ok(r) => Some(LineReader::new(r, max_line)),
            Err(e) => {
                s.report.error(0, format!("{e:#}"));
                return s;
            }
        };
        while s.head.len() < DETECT_LINES {
            let Some(n) = s.next_line() else { break };
            let text = String::from_utf8_lossy(&s.buf).into_owned();
            s.head.push((n, text));
        }
        if s.head.is_empty() {
            return s;
        }
        let first = s.head[0].1.trim();
        let multi_line_json = first == "{"
            || (first.starts_with('{')
                && serde_json::from_str::<serde_json::Value>(first).is_err()
                && forced.is_none_or(|f| f.is_otlp()));
        if multi_line_json {
            s.read_document(registry, forced);
            return s;
        }
        let (detected, wrapping) = detect_wrapped(registry, &s.head, &input.name);
        s.report.wrapper = wrapping.wrapper.map(Wrapper::name);
        for (tag, f) in wrapping.by_tag.iter() {
            s.report.also.push(format!("{} for `{tag}` lines", f.name));
        }
        s.wrapping = wrapping;
        let format = match forced.or(detected) {
            Some(f) => f.clone(),
            None => {
                s.report.error(
                    0,
                    format!(
                        "no format recognised in the first {} lines (tried {} definitions); use --format {}=NAME",
                        s.head.len(),
                        registry.formats.len(),
                        input.name
                    ),
                );
                s.head.clear();
                s.reader = None;
                return s;
            }
        };
        s.report.format = Some(format.name.clone());
        s.format = Some(format);
        s
    }

    /// A pretty-printed JSON document (OTLP export) spans many lines: read it
    /// whole and keep it as the only "line".
    fn read_document(&mut self, registry: &Registry, forced: Option<&Arc<Format>>) {
        let first_line = self.head[0].0;
        let mut doc: String = self.head.drain(..).map(|(_, l)| l + "\n").collect();
        if let Some(reader) = self.reader.take() {
            let mut rest = Vec::new();
            let mut limited = std::io::Read::take(reader.into_inner(), MAX_DOCUMENT);
            if let Err(e) = std::io::Read::read_to_end(&mut limited, &mut rest) {
                self.report.error(0, format!("read error: {e}"));
            }
            self.report.lines += bytecount(&rest);
            doc.push_str(&String::from_utf8_lossy(&rest));
        }
        let candidates: Vec<&Arc<Format>> = match forced {
            Some(f) => vec![f],
            None => registry.formats.iter().filter(|f| f.is_otlp()).collect(),
        };
        let mut last_err = "a multi-line JSON document, but not OTLP".to_string();
        let mut scratch = Vec::new();
        for f in candidates {
            match f.parse(&doc, &self.report.name, first_line, &mut scratch) {
                Ok(()) => {
                    self.report.format = Some(f.name.clone());
                    self.format = Some(f.clone());
                    self.head = vec![(first_line, doc)];
                    return;
                }
                Err(e) => last_err = e,
            }
        }
        self.report.error(first_line, last_err);
    }

    pub fn is_done(&self) -> bool {
        self.head.is_empty() && self.reader.is_none()
    }

    /// Reads the next non-blank line into `self.buf` and returns its number;
    /// over-long lines and read errors are reported on the way. `None` at the end.
    fn next_line(&mut self) -> Option<u64> {
        loop {
            let reader = self.reader.as_mut()?;
            match reader.next_line(&mut self.buf) {
                Ok(ReadLine::Line) => {
                    self.report.lines += 1;
                    if !self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                        return Some(reader.line_no());
                    }
                }
                Ok(ReadLine::TooLong(n)) => {
                    self.report.lines += 1;
                    let line = reader.line_no();
                    too_long(&mut self.report, line, n, self.max_line);
                }
                Ok(ReadLine::Eof) => self.reader = None,
                Err(e) => {
                    let line = reader.line_no() + 1;
                    self.report
                        .error(line, format!("read error, rest of the input lost: {e}"));
                    self.reader = None;
                }
            }
        }
    }

    /// The next chunk of about `bytes` bytes of complete lines.
    pub fn read_chunk(&mut self, bytes: usize) -> Option<Chunk> {
        let format = self.format.clone()?;
        let mut data = Vec::with_capacity(bytes + bytes / 8);
        let mut lines = Vec::new();
        for (n, text) in self.head.drain(..) {
            let a = data.len() as u32;
            data.extend_from_slice(text.as_bytes());
            lines.push((n, a, data.len() as u32));
        }
        while data.len() < bytes {
            let Some(n) = self.next_line() else { break };
            let a = data.len() as u32;
            data.extend_from_slice(&self.buf);
            lines.push((n, a, data.len() as u32));
        }
        // Never cut a chunk between an event and its continuation lines (a stack
        // trace): read on until a line that starts a new event, kept for next time.
        if let Some(cont) = format.continuation() {
            while let Some(n) = self.next_line() {
                let text = String::from_utf8_lossy(&self.buf);
                if cont.is_match(&text) {
                    let a = data.len() as u32;
                    data.extend_from_slice(&self.buf);
                    lines.push((n, a, data.len() as u32));
                } else {
                    self.head.push((n, text.into_owned()));
                    break;
                }
            }
        }
        if lines.is_empty() {
            return None;
        }
        self.bytes_read += data.len() as u64 + lines.len() as u64;
        Some(Chunk {
            format,
            wrapper: self.wrapping.wrapper,
            by_tag: self.wrapping.by_tag.clone(),
            file: self.report.name.clone(),
            data,
            lines,
        })
    }

    /// Takes a parsed chunk's errors and counts into the report.
    pub fn absorb(&mut self, parsed: &mut Parsed) {
        self.report.events += parsed.events.len() as u64;
        self.report.context += parsed.context;
        for e in &parsed.events {
            if let Some(tail) = e.attr(super::fields::TAIL_ATTR) {
                self.report.leftover += 1;
                if e.request_id.as_deref().is_some_and(|id| tail.contains(id)) {
                    self.report.leftover_ids += 1;
                }
            }
        }
        for e in parsed.errors.drain(..) {
            self.report.error(e.line, e.reason);
        }
    }
}

fn bytecount(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
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

pub(super) fn mapped_fields(e: &Event) -> usize {
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
