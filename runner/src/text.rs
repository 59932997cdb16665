//! Text a package or plugin controls, made safe to keep and to show: cut to
//! a bound in bytes, and with control characters escaped so that it cannot
//! forge lines or send escape sequences to an operator's terminal.

use std::borrow::Cow;

/// `text` cut to at most `max_bytes` (at a character boundary), with `…`
/// and the number of bytes cut where it was cut.
pub fn truncate(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} more bytes)",
        &text[..end],
        text.len() - end
    ))
}

/// Characters a terminal acts on rather than shows: C0 controls (ESC, BEL,
/// CR, LF, ...), DEL, C1 controls, and the Unicode marks that reorder or
/// hide text (bidirectional overrides and isolates, zero-width marks).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` with every unsafe character written as a visible escape
/// (`\n`, `\r`, `\t`, `\u{1b}`).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if is_unsafe(c) => escaped.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// Text for one line of a terminal: escaped, then cut to `max_chars`
/// characters with `…`.
pub fn for_terminal(text: &str, max_chars: usize) -> String {
    let escaped = escape_controls(text);
    match escaped.char_indices().nth(max_chars) {
        None => escaped.into_owned(),
        Some((end, _)) => {
            let mut cut = escaped[..end].to_string();
            cut.pop();
            cut.push('…');
            cut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_obeyed() {
        assert_eq!(
            escape_controls("ok\x1b[2Jdone\r\nfake: line\x07\u{202e}"),
            "ok\\u{1b}[2Jdone\\r\\nfake: line\\u{7}\\u{202e}"
        );
        assert!(matches!(escape_controls("plain é"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("\u{9b}"), "\\u{9b}");
    }

    #[test]
    fn cuts_at_character_boundaries() {
        assert_eq!(truncate("ééé", 3), "é… (4 more bytes)");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(for_terminal("abcdef", 4), "abc…");
        assert_eq!(for_terminal("ab\ncd", 10), "ab\\ncd");
        assert_eq!(for_terminal(&"x".repeat(70_000), 10).chars().count(), 10);
    }
}
