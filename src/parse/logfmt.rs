//! logfmt: `key=value` pairs separated by spaces, values with spaces in double
//! quotes with `\"` escapes. No maintained crate handles the escapes and bare
//! words the way Go's and Heroku's writers emit them, so this is a small
//! tokenizer; words without `=` are returned apart (`split`).

use std::borrow::Cow;

/// `key=value` pairs, borrowed from the line where no escape was undone.
pub type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

pub fn pairs(line: &str) -> Pairs<'_> {
    split(line).0
}

/// The pairs, and the bare words (no `=`) between them.
pub fn split(line: &str) -> (Pairs<'_>, Vec<&str>) {
    let mut out = Vec::new();
    let mut bare = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] == b' ' {
            if i > key_start {
                bare.push(&line[key_start..i]);
            }
            continue;
        }
        let key = &line[key_start..i];
        i += 1; // '='
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let start = i;
            let mut escaped = false;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    escaped = true;
                    i += 1;
                }
                i += 1;
            }
            let raw = &line[start..i.min(b.len())];
            i += 1;
            let value = if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            if !key.is_empty() {
                out.push((Cow::Borrowed(key), value));
            }
        } else {
            let start = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            if !key.is_empty() {
                out.push((Cow::Borrowed(key), Cow::Borrowed(&line[start..i])));
            }
        }
    }
    (out, bare)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heroku_router_line() {
        // Heroku Dev Center, "Error codes" page (docs/FORMATS.md §11).
        let line = r#"2010-10-06T21:51:37-07:00 heroku[router]: at=error code=H12 desc="Request timeout" method=GET path="/" host=myapp.herokuapp.com fwd=17.17.17.17 dyno=web.1 connect=6ms service=30001ms status=503 bytes=0"#;
        let p = pairs(line);
        let get = |k: &str| p.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.to_string());
        assert_eq!(get("desc").as_deref(), Some("Request timeout"));
        assert_eq!(get("status").as_deref(), Some("503"));
        assert_eq!(get("service").as_deref(), Some("30001ms"));
        assert_eq!(p.len(), 12);
    }

    #[test]
    fn escaped_quotes_and_empty_values() {
        let p = pairs(r#"msg="say \"hi\"" empty= n=1"#);
        assert_eq!(p[0].1, "say \"hi\"");
        assert_eq!(p[1].1, "");
        assert_eq!(p[2].1, "1");
    }
}
