//! Links the functions a listing runs together, at the start of the binary's code
//! (`link/hotcode.ld`, written by `bench/hotcode.py`).
//!
//! Why: the kernel maps a program's code 64 KiB around each page it faults in, so what a run
//! keeps resident of the binary is every 64 KiB window holding a function it calls. In the
//! compiler's own order a listing's 1.1 MB of functions were spread over 54 of the 62 windows
//! of the 4 MB text, 3.1-3.5 MiB resident; linked together, about 2 MiB. The script only
//! names input sections (one per function) and `INSERT`s one output section before `.text`, so
//! the linker's own layout stays for everything else, and a function it does not name is
//! linked where it would have been.
//!
//! Only for Linux targets linked through the C compiler driver with the default linker (GNU ld
//! and LLD both take the script; gold and mold do not): a build whose linker was chosen
//! (`linker` in Cargo's configuration, `-C linker`, `-fuse-ld`) links as before, and so does
//! one with `LSPORTS_NO_HOTCODE=1` (to measure the compiler's layout).

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hotcode.ld");
    println!("cargo:rerun-if-env-changed=LSPORTS_NO_HOTCODE");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    if env::var_os("LSPORTS_NO_HOTCODE").is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    // A linker someone chose may not take a linker script, or the `-Wl,` form.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if env::var_os("RUSTC_LINKER").is_some()
        || flags.contains("linker")
        || flags.contains("fuse-ld")
    {
        return;
    }
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = Path::new(&manifest).join("link").join("hotcode.ld");
    let Some(script) = script.to_str() else {
        return;
    };
    // `-Wl,` splits its argument at commas.
    if !script.contains(',') && Path::new(script).is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{script}");
    }
}
