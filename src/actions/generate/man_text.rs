//! Help text into roff: the clap definition's help is written for a terminal, with Markdown-ish
//! backticks around commands and paths (`lsports capture`). In the man page those spans are set
//! in bold instead of showing literal backticks, paragraphs become paragraphs, and the finished
//! page is made pure ASCII so that every `man` and `groff` reads it the same way.

use clap_mangen::roff::{Inline, Roff, bold, roman};

/// The paragraphs of `text` (separated by blank lines), each as one line of inlines. Single
/// line breaks inside a paragraph are only wrapping, and become spaces.
pub fn paragraphs(text: &str) -> Vec<Vec<Inline>> {
    text.split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|paragraph| !paragraph.is_empty())
        .map(|paragraph| inlines(&paragraph))
        .collect()
}

/// One line of help: text between backticks is bold, the rest roman. An unpaired backtick is
/// kept as text, so nothing the help says is lost.
pub fn inlines(text: &str) -> Vec<Inline> {
    let pieces: Vec<&str> = text.split('`').collect();
    let paired = pieces.len() % 2 == 1;
    let mut out = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        let last = index + 1 == pieces.len();
        if !paired && last {
            out.push(roman(format!("`{piece}")));
        } else if index % 2 == 1 {
            out.push(bold(*piece));
        } else if !piece.is_empty() {
            out.push(roman(*piece));
        }
    }
    out
}

/// Write `text` as paragraphs at the current indentation: the first continues the current
/// paragraph (a `.TP` body, or after `.PP`), the others start with `separator` (`PP` at the
/// margin, `IP` inside a tagged paragraph so that they stay indented).
pub fn write_paragraphs(roff: &mut Roff, text: &str, separator: &str) {
    for (index, paragraph) in paragraphs(text).into_iter().enumerate() {
        if index > 0 {
            roff.control(separator, []);
        }
        roff.text(paragraph);
    }
}

/// The roff source with every character outside ASCII written as a groff escape (`…` as
/// `\[u2026]`): groff reads input as Latin-1 unless told otherwise, and would print UTF-8 as
/// mojibake.
pub fn ascii(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    for c in roff.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(inlines: Vec<Inline>) -> String {
        let mut roff = Roff::default();
        roff.text(inlines);
        roff.to_roff()
    }

    #[test]
    fn backticks_become_bold_not_literal() {
        let text = rendered(inlines("read it with `lsports --snapshot OUT` anywhere"));
        assert_eq!(
            text,
            "read it with \\fBlsports \\-\\-snapshot OUT\\fR anywhere\n"
        );
    }

    #[test]
    fn an_unpaired_backtick_is_kept() {
        let text = rendered(inlines("a `b` c `d"));
        assert_eq!(text, "a \\fBb\\fR c `d\n");
    }

    #[test]
    fn a_leading_dot_or_backslash_cannot_become_roff() {
        let text = rendered(inlines(".TH evil\\fB"));
        assert_eq!(text, "\\&.TH evil\\\\fB\n");
        let text = rendered(inlines("'br"));
        assert!(text.starts_with("\\&"), "{text}");
    }

    #[test]
    fn paragraphs_split_on_blank_lines_and_join_wrapped_lines() {
        let found = paragraphs("one\ntwo\n\n\nthree");
        assert_eq!(found.len(), 2);
        assert_eq!(rendered(found[0].clone()), "one two\n");
    }

    #[test]
    fn non_ascii_becomes_a_groff_escape() {
        assert_eq!(ascii("a\u{2026}b \u{2014}"), "a\\[u2026]b \\[u2014]");
    }
}
