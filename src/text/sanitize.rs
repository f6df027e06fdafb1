//! Make process names and command lines safe to print.
//!
//! Any local user picks their process's `comm` (up to 15 bytes) and `cmdline`
//! (any bytes), so both are attacker-controlled. `ss -p` prints them raw, which
//! lets a process clear the screen, recolour it, forge extra rows or reorder
//! text with bidi controls on the screen of whoever runs the tool. Everything
//! headed for a terminal therefore goes through [`terminal_safe`]. Machine
//! formats use [`lossy`] and leave escaping to the JSON formatter in
//! [`super::safe_json`], which escapes the same characters, using
//! [`is_terminal_unsafe`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must never reach a terminal raw, because it could move the
/// cursor, change colours, break the line, reorder text or hide itself.
///
/// This covers general category Cc (C0, DEL and C1 controls, including ESC,
/// CR, LF and the C1 CSI U+009B), Cf (bidi controls, zero-width and other
/// invisible format characters) and Zl/Zp (U+2028/U+2029). The backslash is
/// not in this set: it is harmless to a terminal, and [`terminal_safe`]
/// doubles it only so that its own escapes stay unambiguous.
#[must_use]
pub fn is_terminal_unsafe(c: char) -> bool {
    c.is_control() || is_format_or_separator(c)
}

/// General categories Cf, Zl and Zp as of Unicode 16.0.
///
/// These are written out by hand because std has no general-category lookup,
/// and ~20 ranges don't justify pulling in a crate. The rare astral entries
/// are here too: Egyptian format controls, musical format controls and the
/// tag block (U+E0020..U+E007F). Tag characters are invisible and have been
/// used to hide text from readers.
fn is_format_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{2029}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Render bytes for a terminal cell: valid UTF-8 printable text passes
/// through unchanged (borrowed, no allocation in the common case);
/// everything dangerous is escaped visibly.
///
/// Escapes: `\` becomes `\\`; ESC, LF, CR, TAB and BEL become `\e`, `\n`,
/// `\r`, `\t` and `\a`; other C0 controls and DEL become `\xNN`; every other
/// [`is_terminal_unsafe`] char becomes `\u{XXXX}` (at least 4 hex digits);
/// each byte of invalid UTF-8 becomes `\xNN`. Hex digits are uppercase.
#[must_use]
pub fn terminal_safe(bytes: &[u8]) -> Cow<'_, str> {
    // Printable ASCII without backslashes, nearly every name: nothing to look up per char.
    if bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\')
    {
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(needs_terminal_escape) => Cow::Borrowed(text),
        _ => Cow::Owned(escape_for_terminal(bytes)),
    }
}

/// Join a raw NUL-separated cmdline into one line with spaces (trailing NUL
/// dropped), as ps does, then make it terminal-safe.
///
/// An empty result means the process has no cmdline (kernel threads,
/// zombies); callers usually show the `comm` name instead.
#[must_use]
pub fn cmdline_terminal_safe(raw: &[u8]) -> String {
    terminal_safe(&join_args(raw)).into_owned()
}

/// Bytes to a String for machine formats: lossy UTF-8 (invalid bytes become
/// U+FFFD), nothing else changed (JSON escaping is done by the formatter).
#[must_use]
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Join cmdline args with spaces, lossy UTF-8 (for JSON).
///
/// Joining works exactly as in [`cmdline_terminal_safe`], so the JSON and
/// table outputs agree.
#[must_use]
pub fn cmdline_lossy(raw: &[u8]) -> String {
    lossy(&join_args(raw)).into_owned()
}

/// Replace the NUL separators with spaces after dropping *all* trailing NULs.
///
/// Dropping all of them, not just one, matches procps: a process that
/// rewrites its argv (setproctitle) often leaves NUL padding, which would
/// otherwise show up as trailing spaces. Doing this on bytes is safe because
/// 0x00 never occurs inside a multi-byte UTF-8 sequence.
fn join_args(raw: &[u8]) -> Vec<u8> {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    raw[..end]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect()
}

/// `text` from a file lsports writes in terminal-safe form (a baseline's host, user, program
/// and exe): kept as it is when it holds nothing unsafe, so that escapes already in it are not
/// doubled; escaped with [`terminal_safe`] when a hand (or an attacker) put a control, bidi or
/// invisible character in it.
#[must_use]
pub fn terminal_safe_text(text: String) -> String {
    if text.chars().any(is_terminal_unsafe) {
        terminal_safe(text.as_bytes()).into_owned()
    } else {
        text
    }
}

/// Whether [`terminal_safe`] has to rewrite `c`.
fn needs_terminal_escape(c: char) -> bool {
    c == '\\' || is_terminal_unsafe(c)
}

/// The slow path of [`terminal_safe`], used once any byte needs escaping.
fn escape_for_terminal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        chunk.valid().chars().for_each(|c| push_char(&mut out, c));
        chunk
            .invalid()
            .iter()
            .for_each(|&b| push_hex_byte(&mut out, b));
    }
    out
}

/// Append `c`, escaped if it is unsafe.
fn push_char(out: &mut String, c: char) {
    if let Some(escape) = short_escape(c) {
        out.push_str(escape);
    } else if c.is_ascii_control() {
        push_hex_byte(out, c as u8);
    } else if is_terminal_unsafe(c) {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
    } else {
        out.push(c);
    }
}

/// The short escapes people already know from C and shells. Each one is
/// easier to read than `\xNN`.
fn short_escape(c: char) -> Option<&'static str> {
    match c {
        '\\' => Some("\\\\"),
        '\x1b' => Some("\\e"),
        '\n' => Some("\\n"),
        '\r' => Some("\\r"),
        '\t' => Some("\\t"),
        '\x07' => Some("\\a"),
        _ => None,
    }
}

/// Append `\xNN` for one raw byte (a C0 control, DEL or invalid UTF-8).
fn push_hex_byte(out: &mut String, byte: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "\\x{byte:02X}");
}

/// A writer that passes text on with every terminal-unsafe character of each line escaped as
/// [`terminal_safe`] does, line breaks kept: stderr's last line of defence against a message
/// that quotes a hostile name (a path, a file's bytes) unescaped. Text with nothing unsafe in
/// it, nearly all, is written as it is, escapes included.
#[derive(Debug)]
pub struct SafeLines<W>(pub W);

impl<W: std::io::Write> std::io::Write for SafeLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for (i, line) in buf.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                self.0.write_all(b"\n")?;
            }
            match std::str::from_utf8(line) {
                Ok(text) if !text.chars().any(is_terminal_unsafe) => self.0.write_all(line)?,
                _ => self.0.write_all(terminal_safe(line).as_bytes())?,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn safe_lines_escape_controls_but_keep_line_breaks_and_safe_text() {
        use std::io::Write;
        let mut out = SafeLines(Vec::new());
        write!(out, "plain \\e stays\nbad \x1b[31m\u{202E}x\n").unwrap();
        let text = String::from_utf8(out.0).unwrap();
        assert_eq!(text, "plain \\e stays\nbad \\e[31m\\u{202E}x\n");
    }

    use super::*;

    fn safe(bytes: &[u8]) -> String {
        terminal_safe(bytes).into_owned()
    }

    #[test]
    fn escape_sequence_cannot_clear_screen() {
        assert_eq!(safe(b"\x1b[2J"), "\\e[2J");
    }

    #[test]
    fn newline_cannot_split_a_row() {
        assert_eq!(safe(b"a\nb"), "a\\nb");
    }

    #[test]
    fn carriage_return_cannot_overwrite() {
        assert_eq!(safe(b"evil\rsshd"), "evil\\rsshd");
    }

    #[test]
    fn tab_cannot_shift_columns() {
        assert_eq!(safe(b"a\tb"), "a\\tb");
    }

    #[test]
    fn bell_is_escaped() {
        assert_eq!(safe(b"\x07"), "\\a");
    }

    #[test]
    fn other_c0_and_del_are_shown_as_hex() {
        assert_eq!(
            safe(b"\x00\x01\x08\x0b\x0c\x7f"),
            "\\x00\\x01\\x08\\x0B\\x0C\\x7F"
        );
    }

    #[test]
    fn c1_csi_is_escaped() {
        assert_eq!(safe("\u{009B}2J".as_bytes()), "\\u{009B}2J");
        assert_eq!(safe("\u{0085}".as_bytes()), "\\u{0085}");
    }

    #[test]
    fn bidi_override_cannot_reorder() {
        assert_eq!(safe("a\u{202E}fdp.exe".as_bytes()), "a\\u{202E}fdp.exe");
        assert_eq!(safe("\u{2067}x\u{2069}".as_bytes()), "\\u{2067}x\\u{2069}");
        assert_eq!(safe("\u{061C}\u{200F}".as_bytes()), "\\u{061C}\\u{200F}");
    }

    #[test]
    fn zero_width_space_is_visible() {
        assert_eq!(safe("ss\u{200B}hd".as_bytes()), "ss\\u{200B}hd");
        assert_eq!(safe("\u{FEFF}\u{00AD}".as_bytes()), "\\u{FEFF}\\u{00AD}");
    }

    #[test]
    fn line_separators_cannot_break_the_line() {
        assert_eq!(safe("\u{2028}\u{2029}".as_bytes()), "\\u{2028}\\u{2029}");
    }

    #[test]
    fn tag_characters_cannot_hide_text() {
        assert_eq!(safe("a\u{E0041}".as_bytes()), "a\\u{E0041}");
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(safe(b"\xff\xfeab"), "\\xFF\\xFEab");
        // A raw 0x9B byte (8-bit CSI) is invalid UTF-8 and escaped too.
        assert_eq!(safe(b"\x9b2J"), "\\x9B2J");
    }

    #[test]
    fn backslash_is_doubled_so_escapes_are_unambiguous() {
        assert_eq!(safe(b"\\e[2J"), "\\\\e[2J");
        assert_ne!(safe(b"\\e"), safe(b"\x1b"));
    }

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        for name in ["nginx", "naïve-日本", "", "sshd: root@pts/0"] {
            let out = terminal_safe(name.as_bytes());
            assert!(matches!(out, Cow::Borrowed(_)), "{name:?} was copied");
            assert_eq!(out, name);
        }
    }

    #[test]
    fn no_unsafe_char_survives_escaping() {
        for c in (0..=0x0010_FFFF).filter_map(char::from_u32) {
            let out = safe(c.encode_utf8(&mut [0; 4]).as_bytes());
            assert!(!out.chars().any(is_terminal_unsafe), "{c:?} -> {out:?}");
        }
    }

    #[test]
    fn cmdline_args_are_joined_with_spaces() {
        assert_eq!(
            cmdline_terminal_safe(b"python3\0-m\0http.server\0"),
            "python3 -m http.server"
        );
    }

    #[test]
    fn cmdline_trailing_nul_padding_is_dropped() {
        assert_eq!(
            cmdline_terminal_safe(b"nginx: worker\0\0\0\0"),
            "nginx: worker"
        );
        assert_eq!(cmdline_terminal_safe(b""), "");
        assert_eq!(cmdline_terminal_safe(b"\0\0"), "");
    }

    #[test]
    fn cmdline_cannot_smuggle_escapes() {
        assert_eq!(
            cmdline_terminal_safe(b"sh\0-c\0\x1b[2J\n\0"),
            "sh -c \\e[2J\\n"
        );
    }

    #[test]
    fn lossy_keeps_controls_for_the_json_formatter() {
        assert_eq!(lossy(b"a\x1b\xffb"), "a\x1b\u{FFFD}b");
        assert!(matches!(lossy(b"nginx"), Cow::Borrowed("nginx")));
    }

    #[test]
    fn cmdline_lossy_joins_like_ps() {
        assert_eq!(cmdline_lossy(b"a\0b\xff\0\0"), "a b\u{FFFD}");
    }
}
