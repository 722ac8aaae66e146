//! Application logs as the logging libraries write them (real lines in
//! tests/data/backend-formats/, their sources in its SOURCES.md): each file is
//! taken by the right definition with no input error, its error line is an
//! error with the library's error object read, and its ids are found.

use crate::common::*;
use std::sync::Arc;
use tracejoin::event::{Event, Level};
use tracejoin::parse::{self as stream, Registry};

struct Expect {
    file: &'static str,
    format: &'static str,
    /// Events the file holds (continuation lines folded).
    events: usize,
    /// The first event at error level or above, or with an error (formats
    /// that write no level): its error's type (if the library names it) and a
    /// piece of its message.
    error_type: Option<&'static str>,
    error_message: &'static str,
    /// The trace id of the error event, where the library wrote one.
    trace_id: Option<&'static str>,
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

const FILES: &[Expect] = &[
    Expect {
        file: "zap_json.log",
        format: "backend_json",
        events: 4,
        error_type: None,
        error_message: "connection refused",
        trace_id: Some(TRACE),
    },
    Expect {
        file: "zap_console.log",
        format: "zap_console",
        events: 4,
        error_type: None,
        error_message: "connection refused",
        trace_id: Some(TRACE),
    },
    Expect {
        file: "logrus_json.log",
        format: "backend_json",
        events: 4,
        error_type: None,
        error_message: "connection refused",
        trace_id: Some(TRACE),
    },
    Expect {
        file: "logrus_text.log",
        format: "backend_logfmt",
        events: 4,
        error_type: None,
        error_message: "connection refused",
        trace_id: Some(TRACE),
    },
    Expect {
        file: "slog_json.log",
        format: "backend_json",
        events: 5,
        error_type: None,
        error_message: "connection refused",
        trace_id: Some(TRACE),
    },
    Expect {
        file: "slog_text.log",
        format: "backend_logfmt",
        events: 5,
        error_type: None,
        error_message: "connection refused",
        trace_id: Some(TRACE),
    },
    Expect {
        file: "logback_default.log",
        format: "logback_pattern",
        events: 6,
        error_type: Some("java.sql.SQLException"),
        error_message: "Connection refused",
        trace_id: None,
    },
    Expect {
        file: "logback_basic.log",
        format: "logback_pattern",
        events: 6,
        error_type: Some("java.sql.SQLException"),
        error_message: "Connection refused",
        trace_id: None,
    },
    Expect {
        file: "logstash_logback.log",
        format: "backend_json",
        events: 6,
        error_type: Some("java.sql.SQLException"),
        error_message: "Connection refused",
        trace_id: Some(TRACE),
    },
    Expect {
        file: "ecs_json.log",
        format: "backend_json",
        events: 7,
        error_type: Some("ConnectionRefusedError"),
        error_message: "Connection refused",
        trace_id: Some("8624efb129b9217ba5e64aabea817fd7"),
    },
    Expect {
        file: "dotnet_json_console.log",
        format: "dotnet_json_console",
        events: 6,
        error_type: Some("System.InvalidOperationException"),
        error_message: "Invalid value",
        trace_id: None,
    },
    Expect {
        file: "aspnetcore_console.log",
        format: "dotnet_simple_console",
        events: 3,
        error_type: Some("System.InvalidOperationException"),
        error_message: "Operation is not valid",
        trace_id: None,
    },
    Expect {
        file: "spring_boot2_sleuth.log",
        format: "spring_boot",
        events: 6,
        error_type: Some("java.lang.IllegalStateException"),
        error_message: "getReader() has already been called",
        trace_id: None,
    },
    Expect {
        file: "spring_boot3.log",
        format: "spring_boot",
        events: 5,
        error_type: Some("java.sql.SQLSyntaxErrorException"),
        error_message: "Unknown column",
        trace_id: None,
    },
    Expect {
        file: "rails.log",
        format: "rails",
        events: 8,
        error_type: None,
        error_message: "No route matches [GET] \"/x\"",
        trace_id: None,
    },
    Expect {
        file: "django.log",
        format: "django_runserver",
        events: 5,
        error_type: Some("KeyError"),
        error_message: "'amount'",
        trace_id: None,
    },
    Expect {
        file: "uwsgi.log",
        format: "uwsgi_request",
        events: 4,
        error_type: Some("RuntimeError"),
        error_message: "payment backend unavailable",
        trace_id: None,
    },
];

/// The file's events as its detected definition parses them (events without
/// any id never reach a request, so they are read here, not from an analysis).
fn parse_file(path: &std::path::Path) -> (String, Vec<Event>, usize) {
    let registry = Registry::load(None).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<(u64, String)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i as u64 + 1, l.to_string()))
        .collect();
    let file: Arc<str> = Arc::from(path.display().to_string());
    let format = stream::detect(&registry, &lines, &file)
        .unwrap_or_else(|| panic!("{}: no format detected", path.display()))
        .clone();
    let name = format.name.to_string();
    let parsed = stream::parse_chunk(&stream::Chunk::from_lines(
        format,
        &stream::Wrapping::default(),
        file,
        &lines,
    ));
    (name, parsed.events, parsed.errors.len())
}

#[test]
fn library_log_lines_are_read_with_their_errors_and_ids() {
    let dir = repo().join("tests/data/backend-formats");
    for x in FILES {
        let path = dir.join(x.file);
        let (format, events, errors) = parse_file(&path);
        assert_eq!(format, x.format, "{}", x.file);
        assert_eq!(errors, 0, "{}: lines that did not parse", x.file);
        assert_eq!(events.len(), x.events, "{}: events", x.file);
        // And as a whole run reads it: no input error.
        assert_eq!(analyze(&[&path]).input_error_count(), 0, "{}", x.file);
        let err = events
            .iter()
            .find(|e| e.level.is_some_and(|l| l >= Level::Error) || e.error_type.is_some())
            .unwrap_or_else(|| panic!("{}: no error event", x.file));
        assert_eq!(
            err.error_type.as_deref(),
            x.error_type,
            "{}: error type",
            x.file
        );
        let message = err
            .error_message
            .as_deref()
            .or(err.message.as_deref())
            .unwrap_or("");
        assert!(
            message.contains(x.error_message),
            "{}: error message {message:?} lacks {:?}",
            x.file,
            x.error_message
        );
        assert_eq!(err.trace_id.as_deref(), x.trace_id, "{}: trace id", x.file);
    }
    // .NET 5–7 write the stack on the exception's line: the message ends
    // before its first frame.
    let (_, events, _) = parse_file(&dir.join("dotnet_json_console.log"));
    let kestrel = events
        .iter()
        .find(|e| e.attr("Category") == Some("Microsoft.AspNetCore.Server.Kestrel"))
        .unwrap();
    assert_eq!(
        kestrel.error_message.as_deref(),
        Some("No authenticationScheme was specified, and there was no DefaultChallengeScheme found. The default schemes can be set using either AddAuthentication(string defaultScheme) or AddAuthentication(Action<AuthenticationOptions> configureOptions).")
    );
}
