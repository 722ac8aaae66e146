//! Gateway lines shipped as OTLP log records. The OpenTelemetry Collector's
//! `filelog` receiver reads a file line by line into log records whose body is
//! the line as written and whose attribute `log.file.name` names the file
//! (its `include_file_name` option, on by default); its parsers can set the
//! record's trace id from the line (`trace_parser`, or a parser's `trace`
//! block). Routed by trace id (the `loadbalancing` exporter), such a record
//! reaches the instance that holds its trace's spans. Read as an OTLP log it
//! would only be a message; read as the gateway line it carries, it is the
//! request's gateway event, with its status, ids and indicators.
//!
//! With `include_file_path` and `include_file_record_number` the record also
//! says `log.file.path` and `log.file.record_number` (the line's number, from
//! 1): the event's origin is then `path:line`, as if the file were followed.
//!
//! Sources: opentelemetry-collector-contrib `receiver/filelogreceiver`
//! README (`include_file_name`: "add the file name as the attribute
//! `log.file.name`"; `include_file_path`, `include_file_record_number`),
//! `pkg/stanza/docs/operators/trace_parser.md`.

use super::registry::{Format, Registry};
use crate::event::{Event, Origin, Source};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The attributes the filelog receiver names a record's file with
/// (`include_file_path`, `include_file_name`), the more precise first.
const FILE_ATTRIBUTES: [&str; 2] = ["log.file.path", "log.file.name"];

/// The record's line number in its file (`include_file_record_number`).
const RECORD_NUMBER: &str = "log.file.record_number";

/// Files remembered with the format their lines read as.
const REMEMBERED: usize = 1024;

/// Reads log records that carry a gateway's line as that line. Which gateway
/// format a file's lines are is found on its first record and remembered.
pub struct ShippedLines {
    registry: Arc<Registry>,
    /// File name → its gateway format, or `None` when its lines are not a
    /// gateway's (an application's log shipped the same way).
    chosen: Mutex<HashMap<String, Option<Arc<Format>>>>,
}

impl ShippedLines {
    pub fn new(registry: Arc<Registry>) -> ShippedLines {
        ShippedLines {
            registry,
            chosen: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces every OTLP log event that carries a gateway line (a file
    /// name attribute, a body a gateway format reads) by the line's event,
    /// as if the file were followed. The record's trace id completes the
    /// line's when the format found none (the Collector parsed it from a part
    /// of the line the format does not read); the event keeps the record's
    /// origin (message and item).
    pub fn reread(&self, events: &mut [Event]) {
        for ev in events.iter_mut() {
            if ev.source != Some(Source::OtelLog) {
                continue;
            }
            let attribute = |name: &str| {
                ev.attributes
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let Some(file) = FILE_ATTRIBUTES.iter().find_map(|a| attribute(a)) else {
                continue;
            };
            let line_number = attribute(RECORD_NUMBER).and_then(|n| n.parse::<u64>().ok());
            let Some(line) = ev.message.as_deref() else {
                continue;
            };
            let Some(mut gateway) = self.read(&file, line) else {
                continue;
            };
            gateway.origin = match line_number {
                Some(line) => Some(Origin {
                    file: Arc::from(file.as_str()),
                    line,
                    item: None,
                }),
                None => ev.origin.take(),
            };
            if gateway.trace_id.is_none() {
                gateway.trace_id = ev.trace_id.take();
            }
            if gateway.ts.is_none() {
                gateway.ts = ev.ts;
            }
            *ev = gateway;
        }
    }

    /// The line's event by the file's gateway format, chosen on first sight.
    fn read(&self, file: &str, line: &str) -> Option<Event> {
        let known = self.chosen.lock().ok()?.get(file).cloned();
        let format = match known {
            Some(f) => f?,
            None => {
                let f = self.choose(line);
                if let Ok(mut chosen) = self.chosen.lock() {
                    if chosen.len() >= REMEMBERED {
                        chosen.clear();
                    }
                    chosen.insert(file.to_string(), f.clone());
                }
                f?
            }
        };
        let mut out = Vec::with_capacity(1);
        let name: Arc<str> = Arc::from(file);
        format.parse(line, &name, 0, &mut out).ok()?;
        out.pop().filter(|_| out.is_empty())
    }

    /// The gateway format that reads the line with the most fields (then the
    /// higher priority), as detection picks a file's format.
    fn choose(&self, line: &str) -> Option<Arc<Format>> {
        let name: Arc<str> = Arc::from("shipped");
        let mut best: Option<(&Arc<Format>, (usize, i32))> = None;
        let mut scratch = Vec::new();
        for f in &self.registry.formats {
            if !matches!(f.source, Source::Gateway | Source::GatewayLog) {
                continue;
            }
            scratch.clear();
            if f.parse(line, &name, 0, &mut scratch).is_err() || scratch.len() != 1 {
                continue;
            }
            let key = (super::stream::mapped_fields(&scratch[0]), f.def.priority);
            if best.as_ref().is_none_or(|(_, k)| key > *k) {
                best = Some((f, key));
            }
        }
        best.map(|(f, _)| f.clone())
    }
}
