//! Where sockets come from.
pub mod procnet;
