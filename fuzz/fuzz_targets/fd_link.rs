//! fd link targets (`socket:[N]`): any bytes parse to an inode or to nothing, and every inode
//! found prints back to the same link.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lsports::process::fdscan::parse_socket_link;

fuzz_target!(|data: &[u8]| {
    if let Some(inode) = parse_socket_link(data) {
        assert_eq!(
            parse_socket_link(format!("socket:[{inode}]").as_bytes()),
            Some(inode)
        );
    }
});
