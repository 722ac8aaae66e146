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
//! `pkg/stanza/fileconsumer/attrs` (the attribute names), the fileconsumer
//! reader (`RecordNum` incremented before it is set: the first line is 1),
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

/// A file's gateway format, and the file's name as origins carry it.
type Chosen = (Arc<Format>, Arc<str>);

/// Reads log records that carry a gateway's line as that line. Which gateway
/// format a file's lines are is found on its first record and remembered.
pub struct ShippedLines {
    registry: Arc<Registry>,
    /// File → its gateway format and its name as origins carry it, or
    /// `None` when its lines are not a gateway's (an application's log
    /// shipped the same way).
    chosen: Mutex<HashMap<String, Option<Chosen>>>,
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
    /// as if the file were followed.
    pub fn reread(&self, events: &mut [Event]) {
        for ev in events.iter_mut() {
            self.reread_one(ev);
        }
    }

    /// [`Self::reread`] of one event; whether it was a gateway line. The
    /// record's trace id completes the line's when the format found none (the
    /// Collector parsed it from a part of the line the format does not read);
    /// without a record number the event keeps the record's origin.
    pub fn reread_one(&self, ev: &mut Event) -> bool {
        if ev.source != Some(Source::OtelLog) {
            return false;
        }
        let attribute = |name: &str| {
            (ev.attributes.iter())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(file) = FILE_ATTRIBUTES.iter().find_map(|a| attribute(a)) else {
            return false;
        };
        let line_number = attribute(RECORD_NUMBER).and_then(|n| n.parse::<u64>().ok());
        let Some((mut gateway, name)) =
            ev.message.as_deref().and_then(|line| self.read(file, line))
        else {
            return false;
        };
        gateway.origin = match line_number {
            Some(line) => Some(Origin {
                file: name,
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
        true
    }

    /// The line's event by the file's gateway format, chosen on first sight,
    /// and the file's name as origins carry it.
    fn read(&self, file: &str, line: &str) -> Option<(Event, Arc<str>)> {
        let known = self.chosen.lock().ok()?.get(file).cloned();
        let (format, name) = match known {
            Some(f) => f?,
            None => {
                let f = self.choose(line).map(|f| (f, Arc::from(file)));
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
        format.parse(line, &name, 0, &mut out).ok()?;
        let event = out.pop().filter(|_| out.is_empty())?;
        Some((event, name))
    }

    /// The format that reads the line with the most fields (then the higher
    /// priority), as detection picks a followed file's, when it is a
    /// gateway's: an application's log shipped the same way stays a log
    /// record even where a gateway format would also read it.
    fn choose(&self, line: &str) -> Option<Arc<Format>> {
        let name: Arc<str> = Arc::from("shipped");
        let mut best: Option<(&Arc<Format>, (usize, i32))> = None;
        let mut scratch = Vec::new();
        for f in &self.registry.formats {
            if f.is_otlp() {
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
            .filter(|f| matches!(f.source, Source::Gateway | Source::GatewayLog))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(file: &str, line: &str) -> Event {
        Event {
            source: Some(Source::OtelLog),
            message: Some(line.into()),
            attributes: vec![
                ("log.file.path".into(), file.to_string()),
                ("log.file.record_number".into(), "7".to_string()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_gateway_line_becomes_its_event_and_an_application_line_stays_a_log_record() {
        let shipped = ShippedLines::new(Arc::new(Registry::load(None).unwrap()));
        // Lines of the bundled sample: nginx's access log, the orders service's JSON log.
        let nginx = r#"127.0.0.1 - - [25/Nov/2026:21:09:39 +0000] "GET /v1/orders/3471 HTTP/1.1" 200 14 "-" "realstack-client/1.0" rid=474713c22c411e2d06d2743f520357bc rt=0.006 uct="0.001" urt="0.006" us="200" ua="127.0.0.1:46223" xrid=cli-81e74ef5 tp=00-1818e811892f902bd23f0824128b2f33-9531985d5d9dc9f9-01 lrs=- consumer=globex host=127.0.0.1 msec=1795640979.327"#;
        let app = r#"{"timestamp": "2026-11-25T21:09:39.326808Z", "level": "info", "service": "orders", "logger": "orders", "event": "order fetched", "request_id": "474713c22c411e2d06d2743f520357bc", "trace_id": "1818e811892f902bd23f0824128b2f33", "span_id": "9a152fda7e105fe9", "order": "3471"}"#;
        let mut events = vec![
            record("/var/log/nginx/access.log", nginx),
            record("/var/log/orders/orders.log", app),
        ];
        shipped.reread(&mut events);
        let g = &events[0];
        assert_eq!(g.source, Some(Source::Gateway));
        assert_eq!(g.status, Some(200));
        assert_eq!(
            g.request_id.as_deref(),
            Some("474713c22c411e2d06d2743f520357bc")
        );
        assert_eq!(
            g.origin.as_ref().map(|o| o.to_string()).as_deref(),
            Some("/var/log/nginx/access.log:7")
        );
        assert_eq!(events[1].source, Some(Source::OtelLog));
        assert_eq!(events[1].message.as_deref(), Some(app));
    }
}
