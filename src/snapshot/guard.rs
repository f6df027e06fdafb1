//! A reader in front of the tar parser that bounds what a hostile archive can make it do.
//!
//! The `tar` crate reads a GNU long name or long link (`L`, `K`) and a PAX header (`x`, `g`)
//! into memory in full before handing out the entry it describes, so a 1 MB `.gz` declaring a
//! 1 GiB long name would cost 1 GiB of memory before any check of the unpacker ran. This
//! reader follows the tar block structure on its own (a 512-byte header, then the member's
//! data padded to 512), refuses such an extension header once it declares more than
//! [`MAX_EXTENSION`] bytes, and refuses a stream longer than its byte budget, which bounds the
//! time spent skipping data of entries a snapshot does not use.

use std::io::{self, Read};

/// Largest extension header accepted: a long name is a path (PATH_MAX is 4096), and a
/// snapshot never needs PAX records.
pub const MAX_EXTENSION: u64 = 16 << 10;

const BLOCK: usize = 512;

/// Why the guard stopped the stream; carried in an `io::Error` of kind `InvalidData`.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// An extension header declared more than [`MAX_EXTENSION`] bytes.
    #[error("a tar extension header (long name, long link or PAX) of {size} bytes")]
    Extension {
        /// The declared size.
        size: u64,
    },
    /// The stream went on past the budget.
    #[error("more than {budget} bytes of tar stream")]
    Stream {
        /// The budget.
        budget: u64,
    },
}

/// The guarded reader.
pub struct TarGuard<R> {
    inner: R,
    /// Bytes of the current member's data (with padding) still to pass before a header.
    data_left: u64,
    /// A header read ahead for inspection, and how much of it was passed on.
    header: [u8; BLOCK],
    header_len: usize,
    header_sent: usize,
    /// Bytes passed on so far, and the most allowed.
    passed: u64,
    budget: u64,
}

impl<R: Read> TarGuard<R> {
    /// Guard `inner`, allowing at most `budget` bytes of tar stream.
    pub fn new(inner: R, budget: u64) -> Self {
        TarGuard {
            inner,
            data_left: 0,
            header: [0; BLOCK],
            header_len: 0,
            header_sent: 0,
            passed: 0,
            budget,
        }
    }

    /// Read the next header in full and check it; false at the end of the stream.
    fn next_header(&mut self) -> io::Result<bool> {
        self.header_len = 0;
        self.header_sent = 0;
        while self.header_len < BLOCK {
            match self.inner.read(&mut self.header[self.header_len..]) {
                Ok(0) => break,
                Ok(n) => self.header_len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.header_len < BLOCK {
            // A short tail: let the tar parser report the truncation.
            return Ok(self.header_len > 0);
        }
        let header = tar::Header::from_byte_slice(&self.header);
        // An unreadable size is the parser's error to report; it reads no data then.
        let size = header.size().unwrap_or(0);
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if extension && size > MAX_EXTENSION {
            return Err(refused(Refused::Extension { size }));
        }
        self.data_left = size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
        Ok(true)
    }

    fn count(&mut self, n: usize) -> io::Result<usize> {
        self.passed += n as u64;
        if self.passed > self.budget {
            return Err(refused(Refused::Stream {
                budget: self.budget,
            }));
        }
        Ok(n)
    }
}

fn refused(why: Refused) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.header_sent < self.header_len {
            let n = (self.header_len - self.header_sent).min(buf.len());
            buf[..n].copy_from_slice(&self.header[self.header_sent..self.header_sent + n]);
            self.header_sent += n;
            return self.count(n);
        }
        if self.data_left == 0 {
            if !self.next_header()? {
                return Ok(0);
            }
            return self.read(buf);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.data_left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            // Truncated data: the parser reports it.
            self.data_left = 0;
            return Ok(0);
        }
        self.data_left -= n as u64;
        self.count(n)
    }
}

/// The guard's refusal inside `error`, if that is what it is.
pub fn refusal(error: &io::Error) -> Option<&Refused> {
    error.get_ref()?.downcast_ref::<Refused>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(tar::EntryType, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(kind, size) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_path("x").unwrap();
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.resize(out.len() + size.div_ceil(512) as usize * 512, b'a');
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn pass(bytes: &[u8], budget: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // Small reads, to cross every block boundary mid-read.
        let mut guard = TarGuard::new(bytes, budget);
        let mut buf = [0; 100];
        loop {
            let n = guard.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn an_ordinary_archive_passes_unchanged() {
        let bytes = archive(&[
            (tar::EntryType::GNULongName, 300),
            (tar::EntryType::Regular, 5000),
            (tar::EntryType::Directory, 0),
        ]);
        assert_eq!(pass(&bytes, u64::MAX).unwrap(), bytes);
    }

    #[test]
    fn a_huge_long_name_is_refused_at_its_header() {
        for kind in [
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
        ] {
            let mut bytes = archive(&[(kind, 1)]);
            // Declare 1 GiB without supplying it: the refusal comes from the header alone.
            let mut h = tar::Header::from_byte_slice(&bytes[..512]).clone();
            h.set_size(1 << 30);
            h.set_cksum();
            bytes[..512].copy_from_slice(h.as_bytes());
            let error = pass(&bytes, u64::MAX).unwrap_err();
            assert!(
                matches!(refusal(&error), Some(Refused::Extension { size }) if *size == 1 << 30),
                "{kind:?}: {error}"
            );
        }
    }

    #[test]
    fn the_stream_budget_holds() {
        let bytes = archive(&[(tar::EntryType::Regular, 10_000)]);
        let error = pass(&bytes, 4096).unwrap_err();
        assert!(matches!(
            refusal(&error),
            Some(Refused::Stream { budget: 4096 })
        ));
    }
}
