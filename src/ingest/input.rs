use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    File(PathBuf),
    Stdin,
}

/// One thing to read, with the name used in every `file:line` we print.
#[derive(Debug, Clone)]
pub struct Input {
    pub kind: InputKind,
    pub name: Arc<str>,
}

/// Expands files, folders (recursively, in name order) and `-` into inputs.
/// A path that does not exist is an error for the caller to report; it does not
/// stop the other inputs.
pub fn expand_inputs(paths: &[PathBuf]) -> (Vec<Input>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Input {
                kind: InputKind::Stdin,
                name: Arc::from("<stdin>"),
            });
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut out, &mut errors),
            Ok(_) => out.push(file_input(p)),
            Err(e) => errors.push((p.display().to_string(), e.to_string())),
        }
    }
    (out, errors)
}

fn file_input(p: &Path) -> Input {
    Input {
        kind: InputKind::File(p.to_path_buf()),
        name: Arc::from(p.display().to_string()),
    }
}

fn walk(dir: &Path, out: &mut Vec<Input>, errors: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            errors.push((dir.display().to_string(), e.to_string()));
            return;
        }
    };
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, out, errors),
            Ok(m) if m.is_file() => out.push(file_input(&p)),
            Ok(_) => {}
            Err(e) => errors.push((p.display().to_string(), e.to_string())),
        }
    }
}

/// Opens an input as a buffered byte stream, decompressing gzip when the first
/// bytes say so, and refusing binary data (a NUL byte in the first block).
pub fn open_input(input: &Input) -> Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match &input.kind {
        InputKind::File(p) => Box::new(File::open(p).with_context(|| "cannot open")?),
        InputKind::Stdin => Box::new(io::stdin()),
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf().context("cannot read")?;
    let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    let mut reader: Box<dyn BufRead + Send> = if gz {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    let head = match reader.fill_buf() {
        Ok(h) => h,
        Err(e) => bail!("cannot read: {e}"),
    };
    let probe = &head[..head.len().min(8192)];
    if looks_binary(probe) {
        bail!("binary file (control bytes in the first 8 KiB); not a log");
    }
    Ok(reader)
}

/// More than 10% control bytes (other than tab, newlines and ESC): not text.
/// A stray NUL inside a text log is not enough; that line is reported alone.
fn looks_binary(probe: &[u8]) -> bool {
    let control = probe
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b))
        .count();
    control * 10 > probe.len()
}
