//! Compiles a gateway's own format string — nginx `log_format`, Envoy format
//! strings, Apache `LogFormat`, HAProxy `log-format` — into a parser, and knows
//! which event field each variable fills, so a user pastes the directive from
//! their config into a definition and it works.
//!
//! Every dialect is cut into the same pieces (literal text, variables); the
//! regex (the reference) and the memchr tokenizer (the fast path) are built
//! from those pieces whatever the dialect.

use super::definition::FieldOptions;
use anyhow::{bail, Result};

/// The format-string languages tracejoin compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Nginx,
    Envoy,
    Apache,
    Haproxy,
}

/// (variable, event field, unit, time format)
type VarTable = &'static [(
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
)];

/// nginx variables that fill event fields without any `[fields]` entry
/// [src: nginx.org ngx_http_log_module, ngx_http_upstream_module, ngx_http_core_module].
const NGINX: VarTable = &[
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

/// Envoy command operators, named as [`pieces`] names them (lowercase, `_`):
/// `%REQ(X-REQUEST-ID)%` is `req_x_request_id`
/// [src: envoy docs configuration/observability/access_log/usage.rst; docs/FORMATS.md §2].
const ENVOY: VarTable = &[
    ("start_time", "ts", None, Some("iso")),
    ("req_method", "method", None, None),
    ("req_x_envoy_original_path_path", "uri", None, None),
    ("req_path", "uri", None, None),
    ("response_code", "status", None, None),
    ("bytes_received", "bytes_in", None, None),
    ("bytes_sent", "bytes_out", None, None),
    ("duration", "duration_ms", Some("ms"), None),
    (
        "resp_x_envoy_upstream_service_time",
        "upstream_duration_ms",
        Some("ms"),
        None,
    ),
    ("req_x_forwarded_for", "client_ip", None, None),
    ("downstream_remote_address", "client_ip", None, None),
    ("req_x_request_id", "request_id", None, None),
    ("req_authority", "host", None, None),
    ("upstream_host", "upstream_addr", None, None),
    ("route_name", "route", None, None),
    ("req_traceparent", "traceparent", None, None),
    ("trace_id", "trace_id", None, None),
    ("req_x_b3_traceid", "trace_id", None, None),
];

/// Apache `LogFormat` directives, named `letter` or `letter_argument`
/// (`%{Referer}i` is `i_referer`, `%>s` is `s_final`)
/// [src: httpd.apache.org docs mod_log_config; docs/FORMATS.md §8].
const APACHE: VarTable = &[
    ("h", "client_ip", None, None),
    ("a", "client_ip", None, None),
    ("u", "consumer", None, None),
    ("t", "ts", None, Some("clf")),
    ("r", "request", None, None),
    ("s_final", "status", None, None),
    ("s", "status", None, None),
    ("b", "bytes_out", None, None),
    ("B", "bytes_out", None, None),
    ("D", "duration_ms", Some("us"), None),
    ("T_ms", "duration_ms", Some("ms"), None),
    ("T_us", "duration_ms", Some("us"), None),
    ("T", "duration_ms", Some("s"), None),
    ("e_unique_id", "request_id", None, None),
    ("i_x_request_id", "correlation_id", None, None),
    ("i_traceparent", "traceparent", None, None),
    ("v", "host", None, None),
    ("V", "host", None, None),
    ("m", "method", None, None),
    ("U", "path", None, None),
];

/// HAProxy log-format variables, case-sensitive as HAProxy writes them
/// [src: haproxy doc/configuration.txt §8.2.6; docs/FORMATS.md §6].
const HAPROXY: VarTable = &[
    ("ci", "client_ip", None, None),
    ("tr", "ts", None, Some("%d/%b/%Y:%H:%M:%S%.3f")),
    ("t", "ts", None, Some("%d/%b/%Y:%H:%M:%S%.3f")),
    ("r", "request", None, None),
    ("ST", "status", None, None),
    ("B", "bytes_out", None, None),
    ("U", "bytes_in", None, None),
    ("Ta", "duration_ms", Some("ms"), None),
    ("Tt", "duration_ms", Some("ms"), None),
    ("b", "route", None, None),
    ("ID", "request_id", None, None),
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

fn table(d: Dialect) -> VarTable {
    match d {
        Dialect::Nginx => NGINX,
        Dialect::Envoy => ENVOY,
        Dialect::Apache => APACHE,
        Dialect::Haproxy => HAPROXY,
    }
}

/// A failure indicator field: where it comes from, the values that mean
/// "nothing to report", and the prefix naming the gateway in `gateway_error`.
fn indicator(from: &str, ok: &str, prefix: &str) -> (&'static str, FieldOptions) {
    (
        "gateway_error",
        FieldOptions {
            from: vec![from.into()],
            ok_pattern: Some(ok.into()),
            prefix: Some(prefix.into()),
            ..Default::default()
        },
    )
}

/// The default field mapping for the variables a format uses.
pub fn default_fields(dialect: Dialect, vars: &[String]) -> Vec<(&'static str, FieldOptions)> {
    let mut out: Vec<(&'static str, FieldOptions)> = Vec::new();
    for (var, field, unit, time) in table(dialect) {
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
    let has = |v: &str| vars.iter().any(|x| x == v);
    match dialect {
        Dialect::Nginx if has("limit_req_status") => out.push(indicator(
            "limit_req_status",
            "^(PASSED|DELAYED|DELAYED_DRY_RUN|REJECTED_DRY_RUN)$",
            "limit_req=",
        )),
        // `-` = no flag; RFCF = served from cache, DI = delayed by fault
        // injection: neither is a failure.
        Dialect::Envoy if has("response_flags") => {
            out.push(indicator("response_flags", "^(-|RFCF|DI)$", "envoy="))
        }
        // Termination state: `--` in the first two characters is a normal end;
        // `L` = HAProxy answered locally (a redirect, stats, `return`): the
        // status says whether that was a failure.
        Dialect::Haproxy if has("tsc") => out.push(indicator("tsc", "^(--|L)", "haproxy=")),
        _ => {}
    }
    if dialect == Dialect::Haproxy && has("s") {
        // `<NOSRV>`: no server was reached.
        out.push((
            "upstream_addr",
            FieldOptions {
                from: vec!["s".into()],
                ok_pattern: Some("^<(NOSRV|STATS)>$".into()),
                ..Default::default()
            },
        ));
    }
    if dialect == Dialect::Haproxy && has("Tr") {
        // -1: the server never answered.
        out.push((
            "upstream_duration_ms",
            FieldOptions {
                from: vec!["Tr".into()],
                ok_pattern: Some("^-1$".into()),
                ..Default::default()
            },
        ));
    }
    out
}

/// How a variable's value is delimited in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Up to the next literal character.
    Plain,
    /// `[...]` (Apache `%t`), captured without the brackets.
    Bracketed,
    /// `{...}` (HAProxy captured headers `%hr`), captured without the braces.
    Braced,
    /// `"..."` (HAProxy `%{+Q}r`), captured without the quotes.
    Quoted,
}

/// A format string cut into literal text and variables.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Var(String, Shape),
}

/// Lowercase, every run of other characters one `_`: `X-REQUEST-ID` → `x_request_id`.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

fn pieces(dialect: Dialect, format: &str) -> Result<Vec<Piece>> {
    let unescaped;
    let format = if dialect == Dialect::Haproxy {
        // haproxy.cfg escapes spaces: `%ci:%cp\ [%tr]`.
        unescaped = format.replace("\\ ", " ");
        unescaped.as_str()
    } else {
        format
    };
    let marker = if dialect == Dialect::Nginx {
        b'$'
    } else {
        b'%'
    };
    let bytes = format.as_bytes();
    let mut out: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != marker {
            let start = i;
            while i < bytes.len() && bytes[i] != marker {
                i += 1;
            }
            lit.push_str(&format[start..i]);
            continue;
        }
        if marker == b'%' && bytes.get(i + 1) == Some(&b'%') {
            lit.push('%');
            i += 2;
            continue;
        }
        let (var, end) = match dialect {
            Dialect::Nginx => nginx_var(format, i)?,
            Dialect::Envoy => envoy_var(format, i)?,
            Dialect::Apache => apache_var(format, i)?,
            Dialect::Haproxy => haproxy_var(format, i)?,
        };
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        out.push(var);
        i = end;
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

fn nginx_var(f: &str, i: usize) -> Result<(Piece, usize)> {
    let b = f.as_bytes();
    let (name, end) = if b.get(i + 1) == Some(&b'{') {
        let close = f[i..]
            .find('}')
            .map(|c| i + c)
            .ok_or_else(|| anyhow::anyhow!("unclosed ${{ at byte {i}"))?;
        (&f[i + 2..close], close + 1)
    } else {
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        (&f[i + 1..j], j)
    };
    if name.is_empty() {
        bail!("`$` without a variable name at byte {i}");
    }
    Ok((Piece::Var(name.to_string(), Shape::Plain), end))
}

/// `%START_TIME%`, `%REQ(X-REQUEST-ID)%`, `%REQ(:PATH):10%`.
fn envoy_var(f: &str, i: usize) -> Result<(Piece, usize)> {
    let close = f[i + 1..]
        .find('%')
        .map(|c| i + 1 + c)
        .ok_or_else(|| anyhow::anyhow!("unclosed % at byte {i}"))?;
    let mut cmd = &f[i + 1..close];
    if let Some(p) = cmd.rfind(')') {
        cmd = &cmd[..=p]; // drop a `:LENGTH` suffix
    } else if let Some((c, _)) = cmd.split_once(':') {
        cmd = c;
    }
    let name = sanitize(cmd);
    if name.is_empty() {
        bail!("empty %% command at byte {i}");
    }
    Ok((Piece::Var(name, Shape::Plain), close + 1))
}

/// `%h`, `%>s`, `%{Referer}i`, `%{ms}T`.
fn apache_var(f: &str, i: usize) -> Result<(Piece, usize)> {
    let b = f.as_bytes();
    let mut j = i + 1;
    let mut modifier = "";
    while j < b.len()
        && (b[j] == b'<' || b[j] == b'>' || b[j] == b'!' || b[j] == b',' || b[j].is_ascii_digit())
    {
        if b[j] == b'>' {
            modifier = "_final";
        } else if b[j] == b'<' {
            modifier = "_orig";
        }
        j += 1;
    }
    let mut arg = String::new();
    if b.get(j) == Some(&b'{') {
        let close = f[j..]
            .find('}')
            .map(|c| j + c)
            .ok_or_else(|| anyhow::anyhow!("unclosed %{{ at byte {i}"))?;
        arg = f[j + 1..close].to_string();
        j = close + 1;
    }
    let letter = f[j..]
        .chars()
        .next()
        .filter(|c| c.is_ascii_alphabetic())
        .ok_or_else(|| anyhow::anyhow!("% without a directive letter at byte {i}"))?;
    let mut name = format!("{letter}{modifier}");
    let mut shape = Shape::Plain;
    if arg.is_empty() {
        if letter == 't' {
            shape = Shape::Bracketed;
        }
    } else {
        name = format!("{letter}_{}", sanitize(&arg));
        if letter == 'T' {
            name = format!("T_{}", sanitize(&arg));
        }
    }
    Ok((Piece::Var(name, shape), j + 1))
}

/// `%ci`, `%{+Q}r`, `%[ssl_fc_err,hex]`.
fn haproxy_var(f: &str, i: usize) -> Result<(Piece, usize)> {
    let b = f.as_bytes();
    let mut j = i + 1;
    let mut quoted = false;
    if b.get(j) == Some(&b'{') {
        let close = f[j..]
            .find('}')
            .map(|c| j + c)
            .ok_or_else(|| anyhow::anyhow!("unclosed %{{ at byte {i}"))?;
        quoted = f[j + 1..close].split(',').any(|flag| flag == "+Q");
        j = close + 1;
    }
    let (name, end) = if b.get(j) == Some(&b'[') {
        let close = f[j..]
            .find(']')
            .map(|c| j + c)
            .ok_or_else(|| anyhow::anyhow!("unclosed %[ at byte {i}"))?;
        (format!("fetch_{}", sanitize(&f[j + 1..close])), close + 1)
    } else {
        let mut k = j;
        while k < b.len() && b[k].is_ascii_alphabetic() {
            k += 1;
        }
        (f[j..k].to_string(), k)
    };
    if name.is_empty() {
        bail!("% without a variable name at byte {i}");
    }
    let shape = if quoted {
        Shape::Quoted
    } else if name == "hr" || name == "hs" {
        Shape::Braced
    } else {
        Shape::Plain
    };
    Ok((Piece::Var(name, shape), end))
}

/// Group names in order; a repeated variable gets `_2`, `_3`...
fn group_names(pieces: &[Piece]) -> Vec<String> {
    let mut vars: Vec<String> = Vec::new();
    for p in pieces {
        if let Piece::Var(name, _) = p {
            let mut group = name.clone();
            let mut n = 2;
            while vars.contains(&group) {
                group = format!("{name}_{n}");
                n += 1;
            }
            vars.push(group);
        }
    }
    vars
}

/// Returns the regex source (anchored, without the closing `$`) and the
/// variables in order.
pub fn compile(dialect: Dialect, format: &str) -> Result<(String, Vec<String>)> {
    let pieces = pieces(dialect, format)?;
    let vars = group_names(&pieces);
    let mut re = String::from("^");
    let mut v = 0;
    // A captured-headers block (`{...}`) and the space after it are both
    // absent when nothing is captured.
    let mut drop_space = false;
    for (i, p) in pieces.iter().enumerate() {
        match p {
            Piece::Lit(l) => {
                let l = if std::mem::take(&mut drop_space) {
                    l.strip_prefix(' ').unwrap_or(l)
                } else {
                    l
                };
                re.push_str(&regex::escape(l))
            }
            Piece::Var(name, shape) => {
                let next = match pieces.get(i + 1) {
                    Some(Piece::Lit(l)) => l.chars().next(),
                    Some(Piece::Var(..)) => Some('$'),
                    None => None,
                };
                let group = &vars[v];
                v += 1;
                let value = match shape {
                    Shape::Bracketed => {
                        re.push_str(&format!(r"\[(?P<{group}>[^\]]*)\]"));
                        continue;
                    }
                    Shape::Braced => {
                        let space =
                            matches!(pieces.get(i + 1), Some(Piece::Lit(l)) if l.starts_with(' '));
                        if space {
                            re.push_str(&format!(r"(?:\{{(?P<{group}>[^}}]*)\}} )?"));
                            drop_space = true;
                        } else {
                            re.push_str(&format!(r"(?:\{{(?P<{group}>[^}}]*)\}})?"));
                        }
                        continue;
                    }
                    Shape::Quoted => {
                        re.push_str(&format!(r#""(?P<{group}>[^"]*)""#));
                        continue;
                    }
                    Shape::Plain if MULTI_VALUED.contains(&name.as_str()) && next == Some(' ') => {
                        r"[^ ,]*(?:(?:, | : )[^ ,]*)*".to_string()
                    }
                    Shape::Plain => match next {
                        None => ".*".to_string(),
                        Some(c) => format!("[^{}]*", regex::escape(&c.to_string())),
                    },
                };
                re.push_str(&format!("(?P<{group}>{value})"));
            }
        }
    }
    Ok((re, vars))
}

#[derive(Debug, Clone)]
enum Step {
    Lit(Vec<u8>),
    /// Read up to (not including) this byte.
    Until(u8),
    /// An nginx list (`a, b : c`) followed by a space.
    List,
    Rest,
}

/// The same `log_format` as a sequence of "read until this separator" steps
/// driven by memchr: several times faster than the regex, which stays the
/// reference (and the fallback for a line the steps do not take).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    steps: Vec<Step>,
    tail: bool,
}

impl Tokenizer {
    /// `None` when the format has two variables with nothing between them or
    /// a delimited value (`[...]`, `{...}`, `"..."`): the regex handles those.
    pub fn compile(dialect: Dialect, format: &str, tail: bool) -> Result<Option<Tokenizer>> {
        let pieces = pieces(dialect, format)?;
        let mut steps = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            match p {
                Piece::Lit(l) => steps.push(Step::Lit(l.as_bytes().to_vec())),
                Piece::Var(_, shape) if *shape != Shape::Plain => return Ok(None),
                Piece::Var(name, _) => steps.push(match pieces.get(i + 1) {
                    Some(Piece::Lit(l))
                        if MULTI_VALUED.contains(&name.as_str()) && l.starts_with(' ') =>
                    {
                        Step::List
                    }
                    Some(Piece::Lit(l)) => Step::Until(l.as_bytes()[0]),
                    Some(Piece::Var(..)) => return Ok(None),
                    None if tail => Step::Until(b' '),
                    None => Step::Rest,
                }),
            }
        }
        Ok(Some(Tokenizer { steps, tail }))
    }

    /// Fills `spans` with one (start, end) per variable; returns where the
    /// logfmt tail starts, if any. `None` when the line does not fit.
    pub fn split(&self, line: &[u8], spans: &mut Vec<(usize, usize)>) -> Option<Option<usize>> {
        spans.clear();
        let mut pos = 0;
        for step in &self.steps {
            match step {
                Step::Lit(l) => {
                    if !line[pos..].starts_with(l) {
                        return None;
                    }
                    pos += l.len();
                }
                Step::Until(b) => {
                    let end = match memchr::memchr(*b, &line[pos..]) {
                        Some(i) => pos + i,
                        None if self.tail && *b == b' ' => line.len(),
                        None => return None,
                    };
                    spans.push((pos, end));
                    pos = end;
                }
                Step::List => {
                    let start = pos;
                    loop {
                        while pos < line.len() && line[pos] != b' ' && line[pos] != b',' {
                            pos += 1;
                        }
                        let rest = &line[pos..];
                        if rest.starts_with(b", ") {
                            pos += 2;
                        } else if rest.starts_with(b" : ") {
                            pos += 3;
                        } else {
                            break;
                        }
                    }
                    spans.push((start, pos));
                }
                Step::Rest => {
                    spans.push((pos, line.len()));
                    pos = line.len();
                }
            }
        }
        if pos == line.len() {
            return Some(None);
        }
        if self.tail && line[pos] == b' ' {
            return Some(Some(pos + 1));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_compiles_to_the_expected_groups() {
        let (re, vars) = compile(
            Dialect::Nginx,
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
    fn the_tokenizer_agrees_with_the_regex_on_real_lines() {
        let fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"#;
        let (re, _) = compile(Dialect::Nginx, fmt).unwrap();
        let re = regex::Regex::new(&format!("{re}$")).unwrap();
        let tok = Tokenizer::compile(Dialect::Nginx, fmt, false)
            .unwrap()
            .unwrap();
        let data = include_str!("../../tests/data/real/nginx-upstreaminfo.log");
        let extra = "10.0.0.1 - bob [24/Nov/2026:10:00:00 +0000] \"GET /x HTTP/1.1\" 502 0 \"-\" \"a b\" 10 0.2 [up] [] 10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80 0, 0 : 0 0.1, 0.05 : 0.05 502, 502 : 200 abc";
        let mut spans = Vec::new();
        for line in data.lines().chain([extra]) {
            let caps = re.captures(line).unwrap();
            assert_eq!(tok.split(line.as_bytes(), &mut spans), Some(None), "{line}");
            for (i, (a, b)) in spans.iter().enumerate() {
                assert_eq!(&line[*a..*b], caps.get(i + 1).unwrap().as_str(), "{line}");
            }
        }
        assert_eq!(tok.split(b"garbage", &mut spans), None);
    }

    #[test]
    fn multi_valued_upstream_fields_keep_their_lists() {
        let (re, _) = compile(Dialect::Nginx, "$upstream_addr $upstream_status $req_id").unwrap();
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
