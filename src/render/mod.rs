//! Turning entries into text.
pub mod safe_json;
