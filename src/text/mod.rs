//! Text helpers shared by every output: terminal-safe escaping ([`sanitize`]), JSON that stays
//! safe on a terminal ([`safe_json`]), durations as people write them ([`duration`]), pid lists
//! ([`pids`]), counts with their nouns ([`counts`]), and numbers' digits ([`digits`]).

pub mod counts;
pub mod digits;
pub mod duration;
pub mod pids;
pub mod safe_json;
pub mod sanitize;
