//! Bad input gets a clear error and loses nothing: garbage lines, truncated
//! gzip, binary files, empty files, a 10 MB line, malformed OTLP.

use crate::common::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::Path;

fn gateway_lines() -> Vec<String> {
    let raw = std::fs::read_to_string(repo().join("sample-logs/gateway/access.log")).unwrap();
    raw.lines().take(50).map(str::to_string).collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn garbage_lines_are_reported_with_file_and_line_and_the_rest_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = gateway_lines();
    lines.insert(10, "this is not an access log line".into());
    lines.insert(20, "\x1b[31mred\x1b[0m 😀 \u{0}".into());
    let p = dir.path().join("access.log");
    write(&p, &(lines.join("\n") + "\n"));
    let out = tracejoin(&["analyze", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "input errors give exit code 1");
    let err = stderr(&out);
    let name = p.to_str().unwrap();
    assert!(
        err.contains(&format!(
            "{name}:11: does not match format nginx_combined_kv"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{name}:21:")), "{err}");
    // Terminal escapes from the log never reach the terminal raw.
    assert!(!err.contains('\x1b'));
    let summary = stdout(&out);
    assert!(summary.contains("50 requests"), "{summary}");
    assert!(summary.contains("parse errors: 2 in 1 inputs"), "{summary}");
}

#[test]
fn truncated_gzip_keeps_what_was_read_and_says_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let text = gateway_lines().join("\n") + "\n";
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(text.repeat(40).as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let full = dir.path().join("full.log.gz");
    std::fs::write(&full, &gz).unwrap();
    let a = analyze(&[&full]);
    assert_eq!(a.input_error_count(), 0);
    assert_eq!(a.info.files[0].events, 2000);

    let cut = dir.path().join("cut.log.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let a = analyze(&[&cut]);
    let f = &a.info.files[0];
    assert_eq!(f.error_count, 1, "{:?}", f.errors);
    assert!(f.errors[0].reason.contains("read error"), "{:?}", f.errors);
    assert!(
        f.events > 100 && f.events < 2000,
        "kept {} events",
        f.events
    );
}

#[test]
fn binary_and_empty_files_are_reported_or_skipped_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("core.dump");
    std::fs::write(&bin, [0x7fu8, b'E', b'L', b'F', 0, 0, 1, 2, 3, 0xff, 0xfe]).unwrap();
    let empty = dir.path().join("empty.log");
    write(&empty, "");
    let good = dir.path().join("access.log");
    write(&good, &(gateway_lines().join("\n") + "\n"));
    let out = tracejoin(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("core.dump: binary file (control bytes"),
        "{err}"
    );
    assert!(
        !err.contains("empty.log"),
        "an empty file is not an error: {err}"
    );
    assert!(stdout(&out).contains("50 requests"));
}

#[test]
fn a_10_mb_line_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = gateway_lines();
    lines.insert(3, "x".repeat(10 << 20));
    let p = dir.path().join("access.log");
    write(&p, &(lines.join("\n") + "\n"));
    let a = analyze(&[&p]);
    let f = &a.info.files[0];
    assert_eq!(f.events, 50);
    assert_eq!(f.error_count, 1);
    assert_eq!(f.errors[0].line, 4);
    assert!(
        f.errors[0].reason.contains("10485761 bytes"),
        "{:?}",
        f.errors
    );
}

#[test]
fn malformed_otlp_lines_are_errors_and_the_good_batches_survive() {
    let root = repo();
    let good = std::fs::read_to_string(root.join("sample-logs/otel/traces.jsonl")).unwrap();
    let mut lines: Vec<String> = good.lines().take(3).map(str::to_string).collect();
    lines.insert(1, r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz-not-hex","spanId":"01"}]}]}]}"#.into());
    lines.insert(2, r#"{"resourceSpans": [ truncated"#.into());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("traces.jsonl");
    write(&p, &(lines.join("\n") + "\n"));
    let a = analyze(&[&p]);
    let f = &a.info.files[0];
    assert_eq!(f.format.as_deref(), Some("otlp_traces"));
    assert_eq!(f.error_count, 2, "{:?}", f.errors);
    assert_eq!(f.errors[0].line, 2);
    assert!(
        f.errors[0].reason.starts_with("invalid OTLP/JSON traces"),
        "{:?}",
        f.errors
    );
    let expected: usize = good
        .lines()
        .take(3)
        .map(|l| l.matches("\"spanId\"").count())
        .sum();
    assert_eq!(f.events as usize, expected);
}

#[test]
fn a_missing_path_is_an_error_but_the_other_inputs_are_analysed() {
    let root = repo();
    let out = tracejoin(&[
        "analyze",
        "no/such/dir",
        root.join("sample-logs/gateway").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error: no/such/dir:"));
    assert!(stdout(&out).contains("300 requests"));
}

#[test]
fn stdin_is_an_input() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracejoin"))
        .args(["analyze", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let text = gateway_lines().join("\n") + "\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 50);
}
