use std::borrow::Cow;

/// Makes log text safe for a terminal: control characters (ESC sequences that
/// could recolour or rewrite the screen, CR, NUL...) are shown as `\xNN`.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control()) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Makes text safe inside HTML element content and attribute values.
pub fn html(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Makes text safe in a Markdown table cell: `<`, `>` and `&` are escaped
/// (Markdown renders HTML; with no `<` no tag can form, so quotes stay as
/// written and the raw text reads as the log said it), pipes and backticks
/// cannot break the table, newlines become spaces.
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("\\|"),
            '`' => out.push_str("\\`"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_and_markdown_are_escaped() {
        assert_eq!(
            super::html("<script>alert('x')</script>&"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
        assert_eq!(
            super::markdown_cell("a|b `c` <i> 'q' \"d\"\n&"),
            "a\\|b \\`c\\` &lt;i&gt; 'q' \"d\" &amp;"
        );
    }

    #[test]
    fn escape_sequences_are_neutralised() {
        assert_eq!(super::terminal("ok"), "ok");
        assert_eq!(super::terminal("\x1b[2Jpwned\r\n"), "\\x1b[2Jpwned\\x0d\\n");
    }
}
