//! A copied proc tree (`--proc-root`, a compromised host's image) may hold files no kernel
//! writes: a process's `comm`, `cmdline` or `status` of hundreds of MiB, a socket table that
//! is one endless line. lsports reads no more of them than a snapshot may hold, says which
//! file it left unread, and still lists what it can.
//!
//! The only test of this binary, so the peak memory of its children (`RUSAGE_CHILDREN`) is
//! lsports' own.

mod common;

use std::fs::File;
use std::path::Path;

use common::*;

/// Each oversized file: far beyond any limit, sparse so it costs no disk.
const HUGE: u64 = 128 << 20;

fn sparse(path: &Path, size: u64) {
    File::create(path).unwrap().set_len(size).unwrap();
}

/// The largest resident size any waited-for child reached, in KiB.
fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage writes one rusage into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_maxrss
}

#[test]
fn a_copied_trees_huge_process_files_and_endless_lines_are_read_no_further_than_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("net")).unwrap();
    std::fs::create_dir_all(root.join("100/fd")).unwrap();
    std::fs::write(
        root.join("net/tcp"),
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  \
         timeout inode\n   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 \
         00000000     0        0 1111 1 0000000000000000 100 0 0 10 0\n",
    )
    .unwrap();
    // A table that is one line with no end.
    sparse(&root.join("net/udp"), HUGE);
    std::os::unix::fs::symlink("socket:[1111]", root.join("100/fd/3")).unwrap();
    for name in ["comm", "cmdline", "status"] {
        sparse(&root.join("100").join(name), HUGE);
    }
    let tree = root.to_str().unwrap();

    // -v: a process file left unread is said as one that did not parse is.
    let table = run_host(&[
        "--proc-root",
        tree,
        "-v",
        "-tuln",
        "-o",
        "local,process,cmdline",
    ]);
    let json = run_host(&["--proc-root", tree, "-v", "--json", "-tuln"]);
    let peak_mib = children_max_rss_kib() / 1024;
    for out in [&table, &json] {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        // (`status` is read only where the uid is shown.)
        for name in ["comm", "cmdline"] {
            let said = format!("{tree}/100/{name}:1: field size: larger than 16 MiB");
            assert!(err.contains(&said), "no word of {name}: {err}");
        }
        assert!(
            err.contains(&format!(
                "{tree}/net/udp:1: field line: longer than 4096 bytes"
            )),
            "{err}"
        );
    }
    // What could be read is listed: the socket, and its holder by pid.
    let text = stdout(&table);
    assert!(
        text.contains("0.0.0.0:22") && text.contains("100"),
        "{text}"
    );
    assert!(
        peak_mib < 100,
        "lsports held {peak_mib} MiB for files it should read 16 MiB of"
    );
}
