//! Followed files (`serve --follow`), with `tail -F` semantics: a file renamed
//! away (rotation) is read to its end and the new file at the path is read
//! from its start; a file that shrinks (truncation) is read again from the
//! start; paths and globs that match nothing yet are looked for again at every
//! poll. Formats are detected as for `analyze`, on the file's first lines.

use super::intake::{Counters, Intake};
use crate::parse::{detect_wrapped, parse_chunk, Chunk, Format, LineError, Registry, Wrapping};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often files are checked for growth, rotation and truncation.
pub const POLL: Duration = Duration::from_millis(200);
/// Lines needed before detection is tried on a file that keeps growing.
const DETECT_LINES: usize = 32;
/// Most bytes read from one file per poll, so one busy file cannot starve the rest.
const READ_PER_POLL: u64 = 16 << 20;
/// Parse errors printed per file; the rest are counted.
const SHOW_ERRORS: u64 = 10;
/// Lines per parse task.
const PARSE_PIECE: usize = 4096;

pub struct FollowOptions {
    pub patterns: Vec<String>,
    /// Read files that exist at start from their beginning (default: their end).
    pub from_beginning: bool,
    pub max_line: usize,
    /// `PATH=NAME` overrides of detection.
    pub formats: Vec<(PathBuf, Arc<Format>)>,
}

struct Followed {
    name: Arc<str>,
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
    line_no: u64,
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    format: Option<Arc<Format>>,
    /// The wrapper peeled off every line (syslog, a container runtime's), if any.
    wrapping: Wrapping,
    /// Lines waiting for detection, or (with a continuation pattern) the
    /// trailing lines of an event that may still grow a stack trace.
    held: Vec<(u64, String)>,
    /// Detection failed on enough lines: the file is reported and ignored.
    unknown: bool,
    errors: u64,
}

/// Follows the files until `stop` is set, then reads what they hold and returns.
pub fn run(
    opts: FollowOptions,
    registry: Arc<Registry>,
    intake: Arc<Intake>,
    stop: Arc<AtomicBool>,
) {
    let mut files: BTreeMap<PathBuf, Followed> = BTreeMap::new();
    let mut first = true;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        for path in expand(&opts.patterns) {
            if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(path) {
                let at_end = first && !opts.from_beginning;
                if let Some(f) = open(slot.key(), at_end) {
                    slot.insert(f);
                }
            }
        }
        first = false;
        for (path, f) in files.iter_mut() {
            poll(path, f, &opts, &registry, &intake, stopping);
        }
        if stopping {
            return;
        }
        std::thread::sleep(POLL);
    }
}

fn expand(patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in patterns {
        if p.contains(['*', '?', '[']) {
            if let Ok(paths) = glob::glob(p) {
                out.extend(paths.flatten().filter(|p| p.is_file()));
            }
        } else {
            let path = PathBuf::from(p);
            if path.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&path) {
                    out.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
                }
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

fn open(path: &Path, at_end: bool) -> Option<Followed> {
    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let offset = if at_end { meta.len() } else { 0 };
    file.seek(SeekFrom::Start(offset)).ok()?;
    Some(Followed {
        name: Arc::from(path.display().to_string()),
        file,
        dev: meta.dev(),
        ino: meta.ino(),
        offset,
        line_no: 0,
        partial: Vec::new(),
        skipping: false,
        format: None,
        wrapping: Wrapping::default(),
        held: Vec::new(),
        unknown: false,
        errors: 0,
    })
}

fn poll(
    path: &Path,
    f: &mut Followed,
    opts: &FollowOptions,
    registry: &Registry,
    intake: &Intake,
    stopping: bool,
) {
    let mut lines = Vec::new();
    read_lines(f, opts.max_line, &mut lines, intake);
    match std::fs::metadata(path) {
        Ok(m) if m.dev() == f.dev && m.ino() == f.ino => {
            if m.len() < f.offset {
                eprintln!(
                    "tracejoin: {} was truncated; reading it again from the start",
                    f.name
                );
                let _ = f.file.seek(SeekFrom::Start(0));
                f.offset = 0;
                f.line_no = 0;
                f.partial.clear();
                read_lines(f, opts.max_line, &mut lines, intake);
            }
        }
        Ok(_) => {
            // Rotated: the old file was read to its end above; the new one starts at 0.
            if let Some(new) = open(path, false) {
                finish_partial(f, &mut lines);
                eprintln!("tracejoin: {} was rotated; following the new file", f.name);
                let format = f.format.take();
                let held = std::mem::take(&mut f.held);
                *f = new;
                f.format = format;
                f.held = held;
            }
        }
        Err(_) => {} // moved away and not recreated yet: keep the old handle
    }
    if stopping {
        finish_partial(f, &mut lines);
    }
    let quiet = lines.is_empty();
    let mut batch = std::mem::take(&mut f.held);
    batch.extend(lines);
    flush(f, batch, opts, registry, intake, quiet || stopping);
}

/// A last line without its newline counts when the file is done with.
fn finish_partial(f: &mut Followed, lines: &mut Vec<(u64, String)>) {
    if !f.partial.is_empty() && !f.skipping {
        f.line_no += 1;
        lines.push((f.line_no, String::from_utf8_lossy(&f.partial).into_owned()));
    }
    f.partial.clear();
    f.skipping = false;
}

fn read_lines(f: &mut Followed, max_line: usize, lines: &mut Vec<(u64, String)>, intake: &Intake) {
    let mut buf = Vec::new();
    let n = match (&mut f.file).take(READ_PER_POLL).read_to_end(&mut buf) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("tracejoin: {}: read error: {e}", f.name);
            return;
        }
    };
    f.offset += n as u64;
    let mut rest = &buf[..];
    while let Some(i) = memchr::memchr(b'\n', rest) {
        let piece = &rest[..i];
        rest = &rest[i + 1..];
        f.line_no += 1;
        if f.skipping {
            f.skipping = false;
            f.partial.clear();
            continue;
        }
        f.partial.extend_from_slice(piece);
        let line = std::mem::take(&mut f.partial);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines.push((f.line_no, String::from_utf8_lossy(line).into_owned()));
    }
    if !f.skipping {
        f.partial.extend_from_slice(rest);
        if f.partial.len() > max_line {
            f.errors += 1;
            Counters::add(&intake.counters.line_errors, 1);
            eprintln!(
                "tracejoin: {}:{}: line longer than the {max_line}-byte limit; skipped",
                f.name,
                f.line_no + 1
            );
            f.partial.clear();
            f.skipping = true;
        }
    }
}

/// Detects the format if needed, then parses and queues `batch`; with a
/// continuation pattern the last event is held until more lines or quiet.
fn flush(
    f: &mut Followed,
    mut batch: Vec<(u64, String)>,
    opts: &FollowOptions,
    registry: &Registry,
    intake: &Intake,
    quiet: bool,
) {
    if batch.is_empty() || f.unknown {
        return;
    }
    if f.format.is_none() {
        let forced = opts
            .formats
            .iter()
            .find(|(p, _)| p.display().to_string() == *f.name)
            .map(|(_, fmt)| fmt.clone());
        let enough = batch.len() >= DETECT_LINES || quiet;
        f.format = forced.or_else(|| {
            if enough {
                let (format, wrapping) = detect_wrapped(registry, &batch, &f.name);
                f.wrapping = wrapping;
                format.cloned()
            } else {
                None
            }
        });
        match &f.format {
            Some(fmt) => eprintln!("tracejoin: following {} as {}", f.name, fmt.name),
            None if batch.len() >= DETECT_LINES => {
                eprintln!(
                    "tracejoin: {}: no format recognised in the first {} lines (tried {} definitions); not followed",
                    f.name,
                    batch.len(),
                    registry.formats.len()
                );
                Counters::add(&intake.counters.line_errors, batch.len() as u64);
                f.unknown = true;
                return;
            }
            None => {
                f.held = batch;
                return;
            }
        }
    }
    let Some(format) = f.format.clone() else {
        return;
    };
    if let (Some(cont), false) = (format.continuation(), quiet) {
        // Hold the last event (its first line and any continuation lines after it).
        if let Some(start) = batch.iter().rposition(|(_, l)| !cont.is_match(l)) {
            f.held = batch.split_off(start);
        }
    }
    if batch.is_empty() {
        return;
    }
    Counters::add(&intake.counters.lines, batch.len() as u64);
    // A poll's lines (up to 16 MiB) are parsed in pieces on the pool, as
    // `analyze` parses its chunks, and queued in order.
    let (wrapping, name) = (&f.wrapping, &f.name);
    let parsed: Vec<_> = batch
        .par_chunks(PARSE_PIECE)
        .map(|lines| {
            parse_chunk(&Chunk::from_lines(
                format.clone(),
                wrapping,
                name.clone(),
                lines,
            ))
        })
        .collect();
    for parsed in parsed {
        for LineError { line, reason } in &parsed.errors {
            f.errors += 1;
            if f.errors <= SHOW_ERRORS {
                eprintln!("tracejoin: {}:{line}: {reason}", f.name);
            }
        }
        Counters::add(&intake.counters.line_errors, parsed.errors.len() as u64);
        intake.send(parsed.events, parsed.keys);
    }
}
