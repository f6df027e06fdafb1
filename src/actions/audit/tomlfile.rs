//! Reading the hand-editable TOML files (baselines, policies) with errors that point at the
//! file and line, as a compiler's would: `policy.toml:14: rule 3: unknown field `prot``.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A baseline or policy file that could not be used. `Display` is the whole message.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// "baseline" or "policy".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any baseline or policy ([`MAX_FILE`]): the wrong file (a
    /// device, a log), read no further.
    #[error(
        "{path}: the {what} is larger than {} MiB, the most lsports reads (a baseline of \
         100,000 listeners is about 15 MiB); is it the right file?",
        MAX_FILE >> 20
    )]
    TooLarge {
        /// "baseline" or "policy".
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Root was asked to trust a file another user may change: whoever can write a baseline or
    /// policy decides what the audit accepts (as sshd's StrictModes, sudo's sudoers check).
    #[error(
        "refusing the {what} {path}: {why}, so someone other than root could change what the \
         audit accepts. Make it root's and writable by root alone (chown root FILE; chmod \
         go-w FILE and its directories), or run the audit as that user"
    )]
    Untrusted {
        /// "baseline" or "policy".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Who else may change it: `it is writable by others (mode 0666)`.
        why: String,
    },
    /// The file was read but is not valid.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What is wrong, and what to do where that is not obvious.
        message: String,
    },
}

/// The largest baseline or policy read: a listener's line is 100 to 200 bytes, so this holds
/// hundreds of thousands of them, and `--policy /dev/zero` stops here instead of filling
/// the memory.
pub const MAX_FILE: u64 = 64 << 20;

/// A file and, when known, a 1-based line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it.
    pub path: PathBuf,
    /// The line.
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// A file's text, to parse and to place errors in.
#[derive(Debug)]
pub struct Source {
    /// The file, as named (`-` is standard input).
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
}

impl Source {
    /// Read `path` (`-`: standard input); `what` names the kind of file in errors.
    pub fn read(path: &Path, what: &'static str) -> Result<Source, FileError> {
        let read_error = |source| FileError::Read {
            what,
            path: path.to_owned(),
            source,
        };
        let input: Box<dyn Read> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            // The user's own rights: a binary given capabilities must not read a root-only
            // file for a user who names it (and echo it back in errors).
            let file = crate::sys::privilege::as_invoker(|| std::fs::File::open(path));
            let file = file.map_err(read_error)?;
            if rustix::process::geteuid().is_root() {
                if let Some(why) = changeable_by_others(&file, path) {
                    return Err(FileError::Untrusted {
                        what,
                        path: path.to_owned(),
                        why,
                    });
                }
            }
            Box::new(file)
        };
        let mut bytes = Vec::new();
        (input.take(MAX_FILE + 1))
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(FileError::TooLarge {
                what,
                path: path.to_owned(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let line = line_of(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            );
            FileError::Invalid {
                at: Location {
                    path: path.to_owned(),
                    line: Some(line),
                },
                message: "not valid UTF-8 (TOML files are UTF-8 text)".into(),
            }
        })?;
        Ok(Source {
            path: path.to_owned(),
            text,
        })
    }

    /// A source from text in memory (tests, examples); `path` names it in errors.
    pub fn from_text(path: &str, text: &str) -> Source {
        Source {
            path: PathBuf::from(path),
            text: text.to_owned(),
        }
    }

    /// Deserialize the whole file, turning a TOML error into a located one.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, FileError> {
        toml::from_str(&self.text).map_err(|e| self.toml_error(&e))
    }

    /// An error at the start of `span` (a byte range of the text).
    pub fn error_at(&self, span: Option<Range<usize>>, message: impl Into<String>) -> FileError {
        FileError::Invalid {
            at: Location {
                path: self.path.clone(),
                line: span.map(|s| line_of(&self.text, s.start)),
            },
            message: message.into(),
        }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        line_of(&self.text, offset)
    }

    fn toml_error(&self, error: &toml::de::Error) -> FileError {
        // toml's messages can span lines (a caret diagram); the location says the same.
        // They quote keys and values from the file, which may hold any character: escaped.
        let message: Vec<&str> = error.message().lines().map(str::trim).collect();
        let message =
            crate::text::sanitize::terminal_safe(message.join("; ").as_bytes()).into_owned();
        self.error_at(error.span(), message)
    }
}

/// Who besides root could change the opened `file` (named `path`), if anyone: its owner
/// when not root, group or others when they may write it, or the same of a directory on its
/// path, through which it could be replaced. A sticky directory (`/tmp`) lets nobody replace
/// a file root owns. The file itself is judged by its descriptor, the file that is read;
/// its directories by their path (a swap there needs root's cooperation once they pass).
fn changeable_by_others(file: &std::fs::File, path: &Path) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    const GROUP_OR_OTHER_WRITE: u32 = 0o022;
    const STICKY: u32 = 0o1000;
    let by = |meta: &std::fs::Metadata, what: &str| -> Option<String> {
        if meta.uid() != 0 {
            return Some(format!("{what} is owned by uid {}", meta.uid()));
        }
        let writable = meta.mode() & GROUP_OR_OTHER_WRITE != 0;
        let sticky_dir = meta.is_dir() && meta.mode() & STICKY != 0;
        // Writing to a device (`--policy /dev/null`) changes no file anyone reads back.
        let file_type = meta.file_type();
        let device = file_type.is_char_device() || file_type.is_block_device();
        (writable && !sticky_dir && !device).then(|| {
            format!(
                "{what} is writable by {} (mode {:04o})",
                if meta.mode() & 0o002 != 0 {
                    "every user"
                } else {
                    "its group"
                },
                meta.mode() & 0o7777
            )
        })
    };
    if let Some(why) = by(&file.metadata().ok()?, "it") {
        return Some(why);
    }
    let real = std::fs::canonicalize(path).ok()?;
    real.ancestors().skip(1).find_map(|dir| {
        let meta = std::fs::metadata(dir).ok()?;
        let shown = crate::text::sanitize::terminal_safe(dir.as_os_str().as_encoded_bytes());
        by(&meta, &format!("its directory {shown}"))
    })
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        a: u32,
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let source = Source::from_text("x.toml", "# comment\n\nb = 1\n");
        let error = source.parse::<Doc>().unwrap_err().to_string();
        assert!(error.starts_with("x.toml:3: unknown field `b`"), "{error}");
        let source = Source::from_text("x.toml", "a = 1\na = [\n");
        let error = source.parse::<Doc>().unwrap_err().to_string();
        assert!(error.starts_with("x.toml:2: "), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }

    #[test]
    fn a_file_larger_than_the_limit_is_refused_unread() {
        let error = Source::read(Path::new("/dev/zero"), "policy").unwrap_err();
        assert!(matches!(error, FileError::TooLarge { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with("/dev/zero: the policy is larger than 64 MiB"),
            "{message}"
        );
        let dir = tempfile::tempdir().unwrap();
        let exact = dir.path().join("exact.toml");
        let file = std::fs::File::create(&exact).unwrap();
        file.set_len(MAX_FILE).unwrap();
        // At the limit it is read (zero bytes are valid UTF-8).
        let read = Source::read(&exact, "baseline").unwrap();
        assert_eq!(read.text.len() as u64, MAX_FILE);
    }

    #[test]
    fn unreadable_files_name_the_path() {
        let error = Source::read(Path::new("/nonexistent/b.toml"), "baseline").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read baseline /nonexistent/b.toml: ")
        );
    }
}
