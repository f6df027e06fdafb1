//! Sockets read by BPF programs out of the kernel's own socket structures.
//!
//! [`record`] decodes `struct socket_record`, which any program including
//! `socket_record.h` writes with `read_socket()`: one shared reader, so every program
//! describes a socket the same way, and the way sock_diag does.
//!
//! This module sits under `source`, not `process`, so that both can use the decoder without
//! an import cycle.

pub mod record;
