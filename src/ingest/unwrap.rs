//! Lines inside a wrapper: how a log reaches a file when it did not write the
//! file itself. A syslog header (RFC 3164 or 5424: nginx's `access_log
//! syslog:`, HAProxy logging to syslog), a container runtime's line (the
//! Kubernetes CRI format of `/var/log/containers/*.log`, Docker's json-file
//! driver) or `docker compose logs`' service prefix is peeled off whatever the
//! inner format is; the wrapper's time, host and stream are kept beside the
//! inner line. Formats are detected on the inner lines.
//!
//! Sources of the shapes (samples in tests/data/gateway-logs, README there):
//! RFC 3164 §4.1 and RFC 5424 §6; kubelet `pkg/kubelet/kuberuntime/logs/logs.go`
//! (`parseCRILog`: `TIMESTAMP STREAM TAG CONTENT`, tag `F` full or `P`
//! partial); moby `daemon/logger/jsonfilelog/jsonlog` (`{"log","stream","time"}`);
//! compose `cmd/formatter/logs.go` (`%-Ns | ` with the padding of the longest
//! service name).

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// The wrappers tracejoin peels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// `<190>Nov 30 13:37:57 host tag[pid]: line` (the `<PRI>` is optional in files).
    Syslog3164,
    /// `<190>1 2026-11-30T13:37:57.123Z host app procid msgid [sd] line`.
    Syslog5424,
    /// `2026-11-30T11:57:47.123456789Z stdout F line`.
    Cri,
    /// `{"log":"line\n","stream":"stdout","time":"2026-11-30T11:57:47.123456789Z"}`.
    DockerJson,
    /// `caddy-1  | line`.
    Compose,
}

impl Wrapper {
    pub fn name(self) -> &'static str {
        match self {
            Wrapper::Syslog3164 => "syslog (RFC 3164)",
            Wrapper::Syslog5424 => "syslog (RFC 5424)",
            Wrapper::Cri => "container runtime (CRI)",
            Wrapper::DockerJson => "docker json-file",
            Wrapper::Compose => "docker compose logs",
        }
    }
}

/// An inner line and what its wrapper said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Peeled<'a> {
    pub line: Cow<'a, str>,
    /// The wrapper's time, as written (RFC 3339 for all but RFC 3164).
    pub time: Option<&'a str>,
    /// The host (syslog) or service (compose) that wrote it.
    pub host: Option<&'a str>,
    /// The program (syslog tag or app name) or compose service: lines of one
    /// wrapped stream with different tags may be in different formats
    /// (nginx's access and error logs both sent to one syslog).
    pub tag: Option<&'a str>,
    /// `stdout` or `stderr` (container runtimes).
    pub stream: Option<&'a str>,
    /// A CRI partial line (`P`): the line continues in the next one.
    pub partial: bool,
}

static SYSLOG_3164: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:<\d{1,3}>)?(?P<time>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) (?P<tag>[^:\[\s]+)(?:\[\d+\])?: ",
    )
    .expect("valid regex")
});
static SYSLOG_5424: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^<\d{1,3}>1 (?P<time>\S+) (?P<host>\S+) (?P<app>\S+) \S+ \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+) ?(?:\x{FEFF})?",
    )
    .expect("valid regex")
});
static CRI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (?P<stream>stdout|stderr) (?P<tag>[FP]) ")
        .expect("valid regex")
});
static COMPOSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<service>[A-Za-z0-9][A-Za-z0-9_.-]*?)(?:[-_]\d+)? +\| ").expect("valid regex")
});

#[derive(serde::Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    stream: Option<&'a str>,
    time: Option<&'a str>,
}

/// Peels one line; `None` when it is not in this wrapper.
pub fn peel(w: Wrapper, line: &str) -> Option<Peeled<'_>> {
    let plain = |re: &Regex, time: &str, host: &str, stream: Option<&str>| {
        let c = re.captures(line)?;
        let end = c.get(0)?.end();
        Some(Peeled {
            line: Cow::Borrowed(&line[end..]),
            time: c.name(time).map(|m| m.as_str()),
            host: c.name(host).map(|m| m.as_str()),
            tag: c
                .name("tag")
                .filter(|_| w != Wrapper::Cri)
                .or_else(|| c.name("app"))
                .or_else(|| c.name("service"))
                .map(|m| m.as_str()),
            stream: stream.and_then(|s| c.name(s)).map(|m| m.as_str()),
            partial: c.name("tag").is_some_and(|t| t.as_str() == "P") && w == Wrapper::Cri,
        })
    };
    match w {
        Wrapper::Syslog3164 => plain(&SYSLOG_3164, "time", "host", None),
        Wrapper::Syslog5424 => plain(&SYSLOG_5424, "time", "host", None),
        Wrapper::Cri => plain(&CRI, "time", "none", Some("stream")),
        Wrapper::Compose => plain(&COMPOSE, "none", "service", None),
        Wrapper::DockerJson => {
            if !line.starts_with("{\"log\":") {
                return None;
            }
            let d: DockerLine = serde_json::from_str(line).ok()?;
            // The json-file driver splits lines longer than 16 KiB: only the
            // last piece ends with the newline.
            let partial = !d.log.ends_with('\n');
            let log = match d.log {
                Cow::Borrowed(s) => Cow::Borrowed(s.strip_suffix('\n').unwrap_or(s)),
                Cow::Owned(s) => Cow::Owned(s.strip_suffix('\n').unwrap_or(&s).to_string()),
            };
            Some(Peeled {
                line: log,
                time: d.time,
                host: None,
                tag: None,
                stream: d.stream,
                partial,
            })
        }
    }
}

/// The wrapper most of these lines are in (all of them but one in ten at
/// most), or `None` for bare lines.
pub fn detect<'a>(lines: impl Iterator<Item = &'a str> + Clone) -> Option<Wrapper> {
    let n = lines.clone().count();
    if n == 0 {
        return None;
    }
    [
        Wrapper::Cri,
        Wrapper::DockerJson,
        Wrapper::Syslog5424,
        Wrapper::Syslog3164,
        Wrapper::Compose,
    ]
    .into_iter()
    .find(|w| {
        let ok = lines.clone().filter(|l| peel(*w, l).is_some()).count();
        ok * 10 >= n * 9 && ok > 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wrapper_gives_back_the_inner_line_and_its_metadata() {
        let inner = r#"127.0.0.1 - - [30/Nov/2026:13:37:57 +0000] "GET /v1/orders HTTP/1.1" 200 13 "-" "curl/7.88.1""#;
        let cases = [
            (Wrapper::Syslog3164, format!("<190>Nov 30 13:37:57 vm nginx: {inner}"), Some("vm"), None),
            (Wrapper::Syslog3164, format!("Mar 24 14:02:50 web1 nginx: {inner}"), Some("web1"), None),
            (
                Wrapper::Syslog5424,
                format!("<190>1 2026-11-30T13:37:57.123Z vm nginx 812 - - {inner}"),
                Some("vm"),
                None,
            ),
            (
                Wrapper::Cri,
                format!("2026-11-30T11:57:47.123456789Z stdout F {inner}"),
                None,
                Some("stdout"),
            ),
            (
                Wrapper::DockerJson,
                format!(
                    "{{\"log\":\"{}\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-30T11:57:47.123456789Z\"}}",
                    inner.replace('"', "\\\"")
                ),
                None,
                Some("stdout"),
            ),
            (Wrapper::Compose, format!("caddy-1  | {inner}"), Some("caddy"), None),
        ];
        for (w, line, host, stream) in cases {
            let p = peel(w, &line).unwrap_or_else(|| panic!("{w:?}: {line}"));
            assert_eq!(p.line, inner, "{w:?}");
            assert_eq!((p.host, p.stream), (host, stream), "{w:?}");
            assert_eq!(detect([line.as_str()].into_iter()), Some(w), "{line}");
        }
        assert_eq!(
            detect([inner].into_iter()),
            None,
            "a bare line is in no wrapper"
        );
    }
}
