//! Shell-style glob patterns for `--program`: `*`, `?`, `[abc]`, `[a-z]`, `[!x]` and `\`
//! escapes, whole-string matches. A pattern without those characters matches exactly, so one
//! type serves both "exact or glob". Written by hand: a regex engine for process names would
//! cost more than the whole tool.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This character.
    Literal(char),
    /// `?`: any one character.
    Any,
    /// `*`: any run of characters, also none.
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::Any => true,
            Token::Star => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

impl Glob {
    /// Compile `pattern`. Every string is a valid pattern: an unclosed `[` is a literal.
    pub fn new(pattern: &str) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let (token, used) = next_token(&chars[i..]);
            if !(token == Token::Star && tokens.last() == Some(&Token::Star)) {
                tokens.push(token);
            }
            i += used;
        }
        Glob {
            text: pattern.to_string(),
            tokens,
        }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `text` matches. Bytes that are not UTF-8 count as one U+FFFD
    /// each, which `?` and `*` match.
    pub fn matches(&self, text: &[u8]) -> bool {
        self.matches_from_start(text, false)
    }

    /// Whether `text` or a start of it matches, as if the pattern ended in `*`: the way an id
    /// is given by a prefix (`docker stop 3f2a9c`).
    pub fn matches_start_of(&self, text: &[u8]) -> bool {
        self.matches_from_start(text, true)
    }

    fn matches_from_start(&self, text: &[u8], prefix: bool) -> bool {
        let text: Vec<char> = String::from_utf8_lossy(text).chars().collect();
        let tokens = &self.tokens;
        let (mut p, mut t) = (0, 0);
        // Where the last `*` was and how much text it has swallowed, to backtrack to.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if prefix && p == tokens.len() {
                return true;
            }
            match tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(token) if token.matches(text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            let Some((star_p, star_t)) = star else {
                return false;
            };
            star = Some((star_p, star_t + 1));
            p = star_p + 1;
            t = star_t + 1;
        }
        tokens[p..].iter().all(|token| *token == Token::Star)
    }
}

/// The token at the start of `chars` and how many chars it used.
fn next_token(chars: &[char]) -> (Token, usize) {
    match chars[0] {
        '*' => (Token::Star, 1),
        '?' => (Token::Any, 1),
        '\\' if chars.len() > 1 => (Token::Literal(chars[1]), 2),
        '[' => parse_class(chars).unwrap_or((Token::Literal('['), 1)),
        c => (Token::Literal(c), 1),
    }
}

/// `[!a-z_]` and friends; `None` when the bracket is never closed.
fn parse_class(chars: &[char]) -> Option<(Token, usize)> {
    let mut i = 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let start = i;
    loop {
        let c = *chars.get(i)?;
        // A `]` right after `[` or `[!` is a member, as in the shell.
        if c == ']' && i > start {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        let (lo, used) = class_char(&chars[i..]);
        i += used;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let (hi, used) = class_char(&chars[i + 1..]);
            ranges.push((lo, hi));
            i += 1 + used;
        } else {
            ranges.push((lo, lo));
        }
    }
}

fn class_char(chars: &[char]) -> (char, usize) {
    match chars {
        ['\\', c, ..] => (*c, 2),
        [c, ..] => (*c, 1),
        [] => unreachable!("class_char is only called on a non-empty slice"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text.as_bytes())
    }

    #[test]
    fn a_start_of_the_text_matches_as_if_the_pattern_ended_in_a_star() {
        let id = b"3f2a9c01bd44e0c5a1b2";
        let start = |pattern: &str| Glob::new(pattern).matches_start_of(id);
        assert!(start("3f2a9c01bd44"));
        assert!(start("3f2a9c01bd44e0c5a1b2"), "the whole id too");
        assert!(start("3f2a?c") && start("3f[0-9]a") && start("*9c01"));
        assert!(!start("3f2a9c01bd44e0c5a1b2ff"), "longer than the id");
        assert!(!start("3f2b") && !start("f2a9"));
        assert!(!Glob::new("x").matches_start_of(b""));
        assert!(Glob::new("").matches_start_of(b"anything"));
    }

    #[test]
    fn plain_pattern_is_an_exact_match() {
        assert!(matches("nginx", "nginx"));
        assert!(!matches("nginx", "nginx2"));
        assert!(!matches("nginx", "ngin"));
        assert!(!matches("nginx", "NGINX"));
    }

    #[test]
    fn star_and_question_mark() {
        assert!(matches("py*", "python3"));
        assert!(matches("py*", "py"));
        assert!(matches("*sql*", "postgresql"));
        assert!(matches("*d", "sshd"));
        assert!(!matches("*d", "sshd2"));
        assert!(matches("ssh?", "sshd"));
        assert!(!matches("ssh?", "ssh"));
        assert!(matches("a*b*c", "aXXbYYbc"));
        assert!(matches("**", ""));
        assert!(!matches("?", ""));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches("python[23]", "python3"));
        assert!(!matches("python[23]", "python4"));
        assert!(matches("worker-[0-9]", "worker-7"));
        assert!(matches("[!a-m]*", "nginx"));
        assert!(!matches("[!a-m]*", "apache2"));
        assert!(matches("[^a]", "b"));
        assert!(matches("[]x]", "]"));
        assert!(matches("[a-]", "-"));
    }

    #[test]
    fn escapes_and_unclosed_brackets_are_literal() {
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
        assert!(matches("[abc", "[abc"));
        assert!(matches("x\\", "x\\"));
    }

    #[test]
    fn non_utf8_names_match_wildcards() {
        let glob = Glob::new("ev?l*");
        assert!(glob.matches(b"ev\xffl\x1b[2J"));
        assert!(Glob::new("*").matches(b"\xff\xfe"));
    }

    #[test]
    fn multibyte_characters_are_one_character() {
        assert!(matches("na?ve", "naïve"));
        assert!(matches("日?", "日本"));
    }
}
