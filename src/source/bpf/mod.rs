//! Sockets read by BPF programs out of the kernel's own socket structures.
//!
//! Every program here writes `struct socket_record` with `read_socket()` from
//! `socket_record.h`: one shared reader, so every program describes a socket the same way, and
//! the way sock_diag does. [`crate::model::socket_record`] decodes it (in `model`, so that
//! `process` can decode it too without an import cycle).

pub mod iter;
