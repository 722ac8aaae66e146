//! Compiles an nginx `log_format` string into a regex, and knows which event
//! field each nginx variable fills, so a user can paste their `log_format`
//! into a definition and have it work.

use super::definition::FieldOptions;
use anyhow::{bail, Result};

/// nginx variables that fill event fields without any `[fields]` entry
/// [src: nginx.org ngx_http_log_module, ngx_http_upstream_module, ngx_http_core_module].
const VARIABLES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    // (variable, event field, unit, time format)
    ("remote_addr", "client_ip", None, None),
    ("remote_user", "consumer", None, None),
    ("time_local", "ts", None, Some("clf")),
    ("time_iso8601", "ts", None, Some("iso")),
    ("msec", "ts", None, Some("epoch")),
    ("request", "request", None, None),
    ("request_method", "method", None, None),
    ("request_uri", "uri", None, None),
    ("uri", "path", None, None),
    ("status", "status", None, None),
    ("body_bytes_sent", "bytes_out", None, None),
    ("bytes_sent", "bytes_out", None, None),
    ("request_length", "bytes_in", None, None),
    ("request_time", "duration_ms", Some("s"), None),
    (
        "upstream_response_time",
        "upstream_duration_ms",
        Some("s"),
        None,
    ),
    ("upstream_status", "upstream_status", None, None),
    ("upstream_addr", "upstream_addr", None, None),
    ("request_id", "request_id", None, None),
    ("req_id", "request_id", None, None),
    ("http_x_request_id", "correlation_id", None, None),
    ("http_x_correlation_id", "correlation_id", None, None),
    ("http_traceparent", "traceparent", None, None),
    ("host", "host", None, None),
    ("http_host", "host", None, None),
    ("proxy_upstream_name", "route", None, None),
];

/// Variables whose value may be a list (`a, b : c`) and so contain spaces.
const MULTI_VALUED: &[&str] = &[
    "upstream_addr",
    "upstream_status",
    "upstream_response_time",
    "upstream_connect_time",
    "upstream_header_time",
    "upstream_response_length",
    "upstream_bytes_received",
    "upstream_bytes_sent",
];

/// The default field mapping for the variables a format uses.
pub fn default_fields(vars: &[String]) -> Vec<(&'static str, FieldOptions)> {
    let mut out: Vec<(&'static str, FieldOptions)> = Vec::new();
    for (var, field, unit, time) in VARIABLES {
        if !vars.iter().any(|v| v == var) {
            continue;
        }
        out.push((
            field,
            FieldOptions {
                from: vec![var.to_string()],
                unit: unit.map(str::to_string),
                time: time.map(str::to_string),
                ..Default::default()
            },
        ));
    }
    if vars.iter().any(|v| v == "limit_req_status") {
        out.push((
            "gateway_error",
            FieldOptions {
                from: vec!["limit_req_status".into()],
                ignore: vec!["PASSED".into(), "DELAYED".into(), "DELAYED_DRY_RUN".into()],
                prefix: Some("limit_req=".into()),
                ..Default::default()
            },
        ));
    }
    out
}

/// Returns the regex source (anchored, without the closing `$`) and the
/// variables in order.
pub fn compile(log_format: &str) -> Result<(String, Vec<String>)> {
    let bytes = log_format.as_bytes();
    let mut re = String::from("^");
    let mut vars: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let (name, end) = if bytes.get(i + 1) == Some(&b'{') {
                let close = log_format[i..]
                    .find('}')
                    .map(|c| i + c)
                    .ok_or_else(|| anyhow::anyhow!("unclosed ${{ at byte {i}"))?;
                (&log_format[i + 2..close], close + 1)
            } else {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                (&log_format[i + 1..j], j)
            };
            if name.is_empty() {
                bail!("`$` without a variable name at byte {i}");
            }
            let next = bytes.get(end).copied();
            let value = if MULTI_VALUED.contains(&name) && next == Some(b' ') {
                r"[^ ,]*(?:(?:, | : )[^ ,]*)*".to_string()
            } else {
                match next {
                    None => ".*".to_string(),
                    Some(c) => format!("[^{}]*", regex::escape(&(c as char).to_string())),
                }
            };
            let mut group = name.to_string();
            let mut n = 2;
            while vars.contains(&group) {
                group = format!("{name}_{n}");
                n += 1;
            }
            re.push_str(&format!("(?P<{group}>{value})"));
            vars.push(group);
            i = end;
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b'$' {
                i += 1;
            }
            re.push_str(&regex::escape(&log_format[start..i]));
        }
    }
    Ok((re, vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_compiles_to_the_expected_groups() {
        let (re, vars) = compile(
            r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#,
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                "remote_addr",
                "remote_user",
                "time_local",
                "request",
                "status",
                "body_bytes_sent",
                "http_referer",
                "http_user_agent"
            ]
        );
        let re = regex::Regex::new(&format!("{re}$")).unwrap();
        let c = re
            .captures(r#"192.168.202.254 - - [20/Jul/2009:22:59:29 +0000] "GET /vmw/vSphere/default/vmkboot.gz HTTP/1.0" 404 46210 "-" "gPXE/0.9.7""#)
            .unwrap();
        assert_eq!(&c["status"], "404");
        assert_eq!(&c["time_local"], "20/Jul/2009:22:59:29 +0000");
    }

    #[test]
    fn multi_valued_upstream_fields_keep_their_lists() {
        let (re, _) = compile("$upstream_addr $upstream_status $req_id").unwrap();
        let re = regex::Regex::new(&format!("{re}$")).unwrap();
        let c = re
            .captures("10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80 502, 504 : 200 abc")
            .unwrap();
        assert_eq!(
            &c["upstream_addr"],
            "10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80"
        );
        assert_eq!(&c["upstream_status"], "502, 504 : 200");
        assert_eq!(&c["req_id"], "abc");
    }
}
