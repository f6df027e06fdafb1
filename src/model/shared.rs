//! [`SharedBytes`]: a process's name or command line, one copy for every socket it holds,
//! behind a one-word handle.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Bytes shared by every holder of a process's sockets, behind one pointer.
///
/// `Arc<[u8]>` would do, but it is a fat pointer (16 bytes), and every [`super::OwnerProcess`]
/// carries two of them. This handle is 8 bytes: the length sits in the shared allocation
/// beside the counts, the bytes in a second one, two allocations per process rather than one,
/// none per socket. An `OwnerProcess` is then 40 bytes rather than 56, so a held socket's
/// owner list (a [`super::ThinVec`], 16 bytes of header) still takes one 64-byte allocation,
/// not 80: 400 KB less in a listing of 25,000 held sockets. It reads as `[u8]`, as the
/// `Arc<[u8]>` did.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedBytes(Arc<Box<[u8]>>);

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for SharedBytes {
    /// As the bytes themselves, like `Arc<[u8]>` shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(bytes: &[u8]) -> Self {
        SharedBytes(Arc::new(bytes.into()))
    }
}

impl<const N: usize> From<&[u8; N]> for SharedBytes {
    fn from(bytes: &[u8; N]) -> Self {
        bytes.as_slice().into()
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SharedBytes(Arc::new(bytes.into_boxed_slice()))
    }
}

impl From<&str> for SharedBytes {
    fn from(text: &str) -> Self {
        text.as_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_its_bytes_in_one_word() {
        let name = SharedBytes::from(&b"nginx"[..]);
        let copy = name.clone();
        assert_eq!(&*copy, b"nginx");
        assert_eq!(format!("{copy:?}"), format!("{:?}", b"nginx".as_slice()));
        assert_eq!(SharedBytes::from(b"nginx".to_vec()), name);
        assert_eq!(std::mem::size_of::<Option<SharedBytes>>(), 8);
    }
}
