//! Text helpers shared by every output: terminal-safe escaping ([`sanitize`]), JSON that stays
//! safe on a terminal ([`safe_json`]), and durations as people write them ([`duration`]).

pub mod duration;
pub mod safe_json;
pub mod sanitize;
