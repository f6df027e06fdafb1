//! Snapshot archives: any bytes (plain or gzip) opened as a snapshot; never a panic, and an
//! opened snapshot's tree stays inside its temporary directory.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lsports::snapshot::{layout, open_reader};

fuzz_target!(|data: &[u8]| {
    let _ = layout::classify(data);
    if let Ok(opened) = open_reader(data, Path::new("fuzz.tar")) {
        assert!(opened.proc_root().starts_with(opened.dir()));
    }
});
