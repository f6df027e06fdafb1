//! Output whose reader may leave early (`lsports audit | head -1`) without changing the answer
//! the exit status gives.
//!
//! A plain listing stops quietly when its reader closes the pipe: nothing more is wanted. An
//! audit or a wait answers with its exit status, and a reader that has read enough of the text
//! must not turn "unexpected listeners" or "timed out" into 0. Their output goes through
//! [`ReaderMayLeave`], so the run goes on to its verdict with the rest of the text dropped.

use std::io::{self, Write};

/// A writer that drops what is written after its reader closed the pipe (`EPIPE`), instead
/// of failing. Every other error (a full disk, a closed descriptor) is still returned.
pub struct ReaderMayLeave<W> {
    inner: W,
    gone: bool,
}

impl<W: Write> ReaderMayLeave<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        ReaderMayLeave { inner, gone: false }
    }

    /// Whether the reader has closed the pipe.
    pub fn reader_gone(&self) -> bool {
        self.gone
    }

    /// `result`, or success once the reader has gone.
    fn unless_gone<T>(&mut self, result: io::Result<T>, dropped: T) -> io::Result<T> {
        match result {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.gone = true;
                Ok(dropped)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for ReaderMayLeave<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.gone {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.unless_gone(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.gone {
            return Ok(());
        }
        let result = self.inner.flush();
        self.unless_gone(result, ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `room` bytes, then fails as its `kind` says.
    struct Failing {
        room: usize,
        kind: io::ErrorKind,
        written: Vec<u8>,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(self.kind.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            match self.room {
                0 => Err(self.kind.into()),
                _ => Ok(()),
            }
        }
    }

    fn failing(room: usize, kind: io::ErrorKind) -> ReaderMayLeave<Failing> {
        ReaderMayLeave::new(Failing {
            room,
            kind,
            written: Vec::new(),
        })
    }

    #[test]
    fn a_closed_pipe_drops_the_rest_quietly() {
        let mut out = failing(4, io::ErrorKind::BrokenPipe);
        out.write_all(b"first line\nsecond line\n").unwrap();
        writeln!(out, "more").unwrap();
        out.flush().unwrap();
        assert!(out.reader_gone());
        assert_eq!(out.inner.written, b"firs");
    }

    #[test]
    fn other_errors_still_fail() {
        let mut out = failing(4, io::ErrorKind::StorageFull);
        let error = out.write_all(b"first line\n").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert!(!out.reader_gone());
    }
}
