//! `/proc/PID/{status,comm}` and `mountinfo` parsers: any bytes; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lsports::process::info::{effective_uid, parse_comm, parse_mountinfo};

fuzz_target!(|data: &[u8]| {
    if let Err(warning) = effective_uid(data, "status") {
        assert_eq!(warning.field, "Uid");
    }
    let _ = parse_comm(data);
    let _ = parse_mountinfo(data, Path::new("/proc"));
});
