//! lsports: which ports have a service listening, and who owns them.
pub mod error;
pub mod model;
pub mod render;
pub mod sanitize;
pub mod source;
