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

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_are_neutralised() {
        assert_eq!(super::terminal("ok"), "ok");
        assert_eq!(super::terminal("\x1b[2Jpwned\r\n"), "\\x1b[2Jpwned\\x0d\\n");
    }
}
