//! JSON strings written without serde_json's escape check, which looks at one byte at a time
//! and was most of the cost of a token response (BENCHMARKS.md, round 15). Tokens, secrets
//! and log fields rarely hold anything JSON escapes, so they are checked all at once and
//! copied as they are; what does need escapes is escaped as serde_json escapes it.
//! A leaf module: it imports nothing of the crate.

use std::fmt;

/// Whether `text` reads the same inside a JSON string: no `"`, `\` or control character
/// (RFC 8259 §7). Checked without stopping early, so the compiler checks many bytes at once.
pub fn is_plain(text: &str) -> bool {
    !text.bytes().fold(false, |escape, b| {
        escape | (b < b' ') | (b == b'"') | (b == b'\\')
    })
}

/// `text` escaped for the inside of a JSON string, into `out`.
pub fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    if is_plain(text) {
        return out.write_str(text);
    }
    for c in text.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            c if c < ' ' => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// `text` as a JSON string, quotes included: the bytes serde_json would write.
pub fn push_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    if is_plain(text) {
        out.extend_from_slice(text.as_bytes());
    } else {
        let mut escaped = String::with_capacity(text.len() + 8);
        // Writing into a String cannot fail.
        let _ = write_escaped(&mut escaped, text);
        out.extend_from_slice(escaped.as_bytes());
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any text, quotes, backslashes, controls and non-ASCII included.
        #[test]
        fn strings_are_written_as_serde_json_writes_them(text in "[a-z\"\\\\\u{0}-\u{1f}\u{7f}é.~-]{0,40}") {
            let mut ours = Vec::new();
            push_string(&mut ours, &text);
            proptest::prop_assert_eq!(ours, serde_json::to_vec(&text).expect("a str"));
            let escaped = text.chars().any(|c| c == '"' || c == '\\' || c < ' ');
            proptest::prop_assert_eq!(is_plain(&text), !escaped);
        }
    }
}
