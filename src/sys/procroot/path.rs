//! Paths built on the stack, for files opened relative to a directory descriptor (through
//! [`super::ProcRoot`]): the fd walk and the details reader open hundreds of thousands of
//! `PID/…` paths under `/proc`, and neither a path string per open nor a lookup of the proc
//! root each time is worth paying.

use std::ffi::CStr;

/// A NUL-terminated relative path like `1234/fd` on the stack.
pub struct StackPath {
    bytes: [u8; 32],
    len: usize,
}

impl StackPath {
    /// `PID/name`, e.g. `1234/comm`. `name` is one of this crate's short constant names.
    pub fn pid_file(pid: u32, name: &[u8]) -> Self {
        let mut path = StackPath {
            bytes: [0; 32],
            len: 0,
        };
        path.push_u32(pid);
        path.push_bytes(b"/");
        path.push_bytes(name);
        path
    }

    /// `PID`, a process's own directory.
    pub fn pid(pid: u32) -> Self {
        let mut path = StackPath::name(b"");
        path.push_u32(pid);
        path
    }

    /// A name relative to a process's own directory, e.g. `comm`.
    pub fn name(name: &[u8]) -> Self {
        let mut path = StackPath {
            bytes: [0; 32],
            len: 0,
        };
        path.push_bytes(name);
        path
    }

    /// `fd/FD`, one fd link relative to a process's own directory.
    pub fn fd_link(fd: u32) -> Self {
        let mut path = StackPath::name(b"fd/");
        path.push_u32(fd);
        path
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        // At most 10 digits, a slash and a name of under 20 bytes: always fits with the NUL.
        let end = (self.len + bytes.len()).min(self.bytes.len() - 1);
        let take = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&bytes[..take]);
        self.len = end;
    }

    fn push_u32(&mut self, value: u32) {
        let mut buf = [0u8; 20];
        self.push_bytes(crate::text::digits::decimal(value.into(), &mut buf));
    }

    /// The path as a C string.
    pub fn as_cstr(&self) -> &CStr {
        // The buffer is zeroed beyond `len`, and `len` < 32.
        CStr::from_bytes_until_nul(&self.bytes[..=self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_paths_hold_any_pid_and_name() {
        assert_eq!(StackPath::pid_file(0, b"fd").as_cstr(), c"0/fd");
        assert_eq!(StackPath::pid(4242).as_cstr(), c"4242");
        assert_eq!(StackPath::fd_link(17).as_cstr(), c"fd/17");
        assert_eq!(
            StackPath::pid_file(u32::MAX, b"cmdline").as_cstr(),
            c"4294967295/cmdline"
        );
        // Too long is cut, never a panic.
        let long = StackPath::pid_file(u32::MAX, &[b'x'; 40]);
        assert_eq!(long.as_cstr().to_bytes().len(), 31);
    }
}
