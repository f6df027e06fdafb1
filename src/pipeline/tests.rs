//! The enrich stage reads, the render stage only formats.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::model::{OwnerProcess, Protocol};

/// A proc tree where pid 7 holds socket 99 as fd 3 and runs `/srv/drop/implant`, in a
/// directory every user may write to (as the process's own root shows it).
fn proc_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("7/fd")).unwrap();
    symlink("socket:[99]", dir.join("7/fd/3")).unwrap();
    symlink("/srv/drop/implant", dir.join("7/exe")).unwrap();
    let drop = dir.join("7/root/srv/drop");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::set_permissions(&drop, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// A root process's listener on every address: `root-exposed` whatever its executable.
fn implant() -> Entry {
    Entry {
        socket: Socket {
            inode: 99,
            ..Socket::listening(Protocol::Tcp, "0.0.0.0", 4444)
        },
        processes: thin_vec::thin_vec![OwnerProcess {
            pid: 7,
            fd: 3,
            name: Some(b"implant".as_slice().into()),
            cmdline: None,
            uid: Some(0),
            labels: None,
        }],
        owner_unknown: None,
        findings: Default::default(),
        labels: None,
        reach: Default::default(),
    }
}

/// The `Flags` cell of the one row of a `-n -o port,flags` table.
fn flags_cell(listing: &Listing, options: &RenderOptions) -> String {
    let mut out = Vec::new();
    render(listing, options, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let row = text.lines().nth(1).unwrap_or_else(|| panic!("{text}"));
    row.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn flags_are_found_in_enrich_and_only_formatted_by_render() {
    let dir = tempfile::tempdir().unwrap();
    proc_tree(dir.path());
    let root = dir.path().to_str().unwrap();
    let args = ["lsports", "--proc-root", root, "-n", "-o", "port,flags"];
    let config = crate::cli::Cli::config_from(args).unwrap();
    let plan = Plan::new(&config, config.needs());
    assert!(plan.needs.findings, "the flags column asks for findings");
    let listing = Listing {
        entries: vec![implant()],
        ..Listing::default()
    };
    let enriched = enrich(listing, &plan);
    // The proc tree is gone: whatever the rendering shows was found before it.
    drop(dir);
    let options = config.render_options();
    assert_eq!(
        flags_cell(&enriched, &options),
        "exe-writable-dir,root-exposed"
    );
    // An entry enrich did not inspect shows no flag, whatever it would raise: render
    // inspects nothing itself.
    let bare = Listing {
        entries: vec![implant()],
        ..Listing::default()
    };
    assert_eq!(flags_cell(&bare, &options), "-");
}

#[test]
fn enrich_reads_only_what_the_plan_needs() {
    let dir = tempfile::tempdir().unwrap();
    proc_tree(dir.path());
    let root = dir.path().to_str().unwrap();
    let config = crate::cli::Cli::config_from(["lsports", "--proc-root", root]).unwrap();
    let listing = || Listing {
        entries: vec![implant()],
        ..Listing::default()
    };
    // The default table shows neither executables nor flags.
    let plain = enrich(listing(), &Plan::new(&config, config.needs()));
    assert!(plain.entries[0].findings.is_empty());
    assert_eq!(plain.exes.get(7), None);
    let full = enrich(listing(), &Plan::new(&config, Needs::EVERYTHING));
    assert_eq!(full.exes.get(7), Some(b"/srv/drop/implant".as_slice()));
    let flags: Vec<_> = full.entries[0].findings.iter().map(|f| f.flag).collect();
    use crate::model::finding::Flag;
    assert_eq!(flags, [Flag::ExeWritableDir, Flag::RootExposed]);
}
