//! JSON output that is safe to `cat` to a terminal.
//!
//! `serde_json` escapes only what JSON requires (`"`, `\` and C0 controls).
//! Process names and command lines are attacker-controlled, though, so a raw
//! C1 CSI (U+009B), DEL, bidi override or zero-width char would otherwise
//! reach `out.json` as-is and later act on whoever runs `cat out.json`.
//! [`SafeJsonFormatter`] also writes those as `\uXXXX`. The document stays
//! valid JSON and parses back to exactly the same strings.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

use crate::text::sanitize::is_terminal_unsafe;

/// A `serde_json` [`Formatter`] that escapes, as `\uXXXX`, every char
/// [`is_terminal_unsafe`] flags (C0, DEL, C1, bidi, zero-width, U+2028/2029,
/// the rest of category Cf), on top of what JSON itself requires.
///
/// Layout (whitespace, indentation) is delegated unchanged to `serde_json`'s
/// compact or pretty formatter, so safe output of ordinary data is
/// byte-identical to `serde_json::to_writer{,_pretty}`.
#[derive(Clone, Debug)]
pub struct SafeJsonFormatter {
    layout: Layout,
}

/// Which `serde_json` formatter decides the whitespace.
#[derive(Clone, Debug)]
enum Layout {
    Compact(CompactFormatter),
    Pretty(PrettyFormatter<'static>),
}

impl SafeJsonFormatter {
    /// Single-line output, like `serde_json::to_writer`.
    #[must_use]
    pub fn compact() -> Self {
        Self {
            layout: Layout::Compact(CompactFormatter),
        }
    }

    /// Output indented by two spaces, like `serde_json::to_writer_pretty`.
    #[must_use]
    pub fn pretty() -> Self {
        Self {
            layout: Layout::Pretty(PrettyFormatter::new()),
        }
    }
}

/// Serialize `value` as JSON into `writer` with the safe formatter
/// (pretty = indented). Like `serde_json`, it writes no trailing newline.
///
/// # Errors
///
/// Fails if `writer` fails, or if `value`'s `Serialize` impl fails (e.g. a
/// map with non-string keys).
pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(
    writer: W,
    value: &T,
    pretty: bool,
) -> serde_json::Result<()> {
    let formatter = if pretty {
        SafeJsonFormatter::pretty()
    } else {
        SafeJsonFormatter::compact()
    };
    value.serialize(&mut serde_json::Serializer::with_formatter(
        writer, formatter,
    ))
}

/// Implement each listed `Formatter` method by passing it to the wrapped
/// layout formatter. Without this, the trait's defaults (compact layout)
/// would silently replace `PrettyFormatter`'s overrides.
macro_rules! forward_to_layout {
    ($(fn $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name<W: ?Sized + io::Write>(
            &mut self,
            writer: &mut W
            $(, $arg: $ty)*
        ) -> io::Result<()> {
            match &mut self.layout {
                Layout::Compact(f) => f.$name(writer $(, $arg)*),
                Layout::Pretty(f) => f.$name(writer $(, $arg)*),
            }
        }
    )*};
}

impl Formatter for SafeJsonFormatter {
    forward_to_layout! {
        fn write_null();
        fn write_bool(value: bool);
        fn write_i8(value: i8);
        fn write_i16(value: i16);
        fn write_i32(value: i32);
        fn write_i64(value: i64);
        fn write_i128(value: i128);
        fn write_u8(value: u8);
        fn write_u16(value: u16);
        fn write_u32(value: u32);
        fn write_u64(value: u64);
        fn write_u128(value: u128);
        fn write_f32(value: f32);
        fn write_f64(value: f64);
        fn write_number_str(value: &str);
        fn begin_string();
        fn end_string();
        fn write_char_escape(char_escape: serde_json::ser::CharEscape);
        fn begin_array();
        fn end_array();
        fn begin_array_value(first: bool);
        fn end_array_value();
        fn begin_object();
        fn end_object();
        fn begin_object_key(first: bool);
        fn end_object_key();
        fn begin_object_value();
        fn end_object_value();
    }

    /// `serde_json` has already split out `"`, `\` and C0 (they go through
    /// `write_char_escape`). What reaches this method may still hold DEL, C1,
    /// bidi and invisible chars, so those are escaped here.
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_escaped(writer, fragment, is_terminal_unsafe)
    }

    /// Raw JSON (`serde_json`'s `RawValue`, if another crate turns that feature
    /// on) could carry dangerous chars too. In valid JSON, any char other
    /// than ASCII structure or whitespace must sit inside a string, where
    /// `\uXXXX` means the same thing. So we escape everything except the
    /// whitespace between tokens.
    fn write_raw_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_escaped(writer, fragment, |c| {
            !matches!(c, '\t' | '\n' | '\r') && is_terminal_unsafe(c)
        })
    }
}

/// Write `text`, with each char matching `must_escape` replaced by its JSON
/// `\uXXXX` escape. Safe runs in between are written in one piece.
fn write_escaped<W: ?Sized + io::Write>(
    writer: &mut W,
    text: &str,
    must_escape: impl Fn(char) -> bool,
) -> io::Result<()> {
    // Printable ASCII, nearly all text, is never escaped here: skip the per-char checks.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return writer.write_all(text.as_bytes());
    }
    let mut start = 0;
    for (i, c) in text.char_indices().filter(|&(_, c)| must_escape(c)) {
        writer.write_all(&text.as_bytes()[start..i])?;
        write_unicode_escape(writer, c)?;
        start = i + c.len_utf8();
    }
    writer.write_all(&text.as_bytes()[start..])
}

/// Write `c` as `\uXXXX`, as a surrogate pair for astral chars (such as the
/// tag block), in lowercase hex to match `serde_json`'s own escapes.
fn write_unicode_escape<W: ?Sized + io::Write>(writer: &mut W, c: char) -> io::Result<()> {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        write!(writer, "\\u{unit:04x}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Everything an attacker might put in a process name or cmdline.
    const HOSTILE: &str = "\x1b[2J\x1b]0;pwn\x07\n\r\t\x08\x0c\x00\x7f\u{0085}\u{009B}\
                           \u{202E}\u{2067}\u{200B}\u{200D}\u{2028}\u{2029}\u{FEFF}\u{00AD}\
                           \u{E0041}\"\\ naïve 日本 \u{FFFD}";

    fn render<T: Serialize + ?Sized>(value: &T, pretty: bool) -> String {
        let mut out = Vec::new();
        to_writer(&mut out, value, pretty).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_output_has_no_control_bytes() {
        let json = render(HOSTILE, false);
        assert!(json.bytes().all(|b| b >= 0x20 && b != 0x7f), "{json}");
        assert!(!json.chars().any(is_terminal_unsafe), "{json}");
    }

    #[test]
    fn c1_bidi_and_zero_width_are_escaped() {
        let json = render("\u{0085}\u{009B}\u{202E}\u{200B}\u{2028}\u{7f}", false);
        assert_eq!(json, r#""\u0085\u009b\u202e\u200b\u2028\u007f""#);
    }

    #[test]
    fn astral_tag_chars_use_surrogate_pairs() {
        assert_eq!(render("a\u{E0041}", false), r#""a\udb40\udc41""#);
    }

    #[test]
    fn hostile_string_parses_back_exactly() {
        for pretty in [false, true] {
            let json = render(HOSTILE, pretty);
            assert_eq!(serde_json::from_str::<String>(&json).unwrap(), HOSTILE);
        }
    }

    #[test]
    fn quote_and_backslash_still_escape() {
        assert_eq!(render("a\"b\\c", false), r#""a\"b\\c""#);
        assert_eq!(render("\x1b\n", false), r#""\u001b\n""#);
    }

    #[test]
    fn hostile_map_keys_are_escaped_too() {
        let map = BTreeMap::from([(HOSTILE, HOSTILE)]);
        for pretty in [false, true] {
            let json = render(&map, pretty);
            assert!(!json.chars().any(|c| c != '\n' && is_terminal_unsafe(c)));
            let back: BTreeMap<String, String> = serde_json::from_str(&json).unwrap();
            assert_eq!(back.get(HOSTILE).map(String::as_str), Some(HOSTILE));
        }
    }

    #[test]
    fn pretty_output_only_breaks_lines_between_tokens() {
        let value = serde_json::json!({ "name": HOSTILE, "cmd": [HOSTILE, 1] });
        let json = render(&value, true);
        assert!(json.contains("\n  \"cmd\": [\n    \""), "{json}");
        assert!(json.bytes().all(|b| b >= 0x20 || b == b'\n'), "{json}");
        assert!(!json.chars().any(|c| c != '\n' && is_terminal_unsafe(c)));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            value
        );
    }

    #[test]
    fn plain_output_matches_serde_json() {
        let value = serde_json::json!({
            "port": 443, "neg": -1, "f": 1.5, "ok": true, "none": null,
            "name": "naïve-日本", "empty": [], "obj": {}, "list": [{"a": [1, 2]}],
        });
        assert_eq!(
            render(&value, false),
            serde_json::to_string(&value).unwrap()
        );
        assert_eq!(
            render(&value, true),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }

    #[test]
    fn raw_fragment_keeps_whitespace_but_escapes_the_rest() {
        let mut out = Vec::new();
        let raw = "{\n\t\"a\": \"\u{202E}\u{9B}\"\r\n}";
        SafeJsonFormatter::compact()
            .write_raw_fragment(&mut out, raw)
            .unwrap();
        let json = String::from_utf8(out).unwrap();
        assert_eq!(json, "{\n\t\"a\": \"\\u202e\\u009b\"\r\n}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["a"], "\u{202E}\u{9B}");
    }
}
