//! What the kernel itself says about a socket a test made, over sock_diag: the truth a
//! test compares lsports' libraries with (here, the socket's cgroup id).

use std::fs;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

/// `INET_DIAG_CGROUP_ID`: the cgroup v2 id of the socket's creator when it was made.
const INET_DIAG_CGROUP_ID: u16 = 21;

/// The cgroup id sock_diag reports for the socket `inode` of `family` (`libc::AF_INET` or
/// `AF_INET6`) and `protocol` (`libc::IPPROTO_TCP`, `IPPROTO_UDP`), in any state, asked
/// from the network namespace of `pid` (on a thread of its own, which alone enters it).
/// `None` if the socket is not there or the kernel sent no cgroup id.
pub fn socket_cgroup_id(pid: u32, inode: u64, family: i32, protocol: i32) -> Option<u64> {
    let netns = fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    std::thread::spawn(move || {
        // SAFETY: setns on a valid descriptor changes only this thread's network namespace.
        let entered = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
        let sockets = diag_dump(family as u8, protocol as u8);
        sockets.into_iter().find(|s| s.0 == inode)?.1
    })
    .join()
    .unwrap()
}

/// Every socket of `family` and `protocol`: (inode, cgroup id).
fn diag_dump(family: u8, protocol: u8) -> Vec<(u64, Option<u64>)> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .unwrap();
    // nlmsghdr (16 bytes), then inet_diag_req_v2: family, protocol, ext, pad, states (all),
    // and a zeroed inet_diag_sockid (48 bytes).
    let mut request = Vec::with_capacity(72);
    request.extend_from_slice(&72u32.to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    request.extend_from_slice(&[0; 8]);
    request.extend_from_slice(&[family, protocol, 0, 0]);
    request.extend_from_slice(&u32::MAX.to_ne_bytes());
    request.extend_from_slice(&[0; 48]);
    send(fd.as_raw_fd(), &request, MsgFlags::empty()).unwrap();
    let mut found = Vec::new();
    let mut buffer = vec![0u8; 65536];
    loop {
        let len = recv(fd.as_raw_fd(), &mut buffer, MsgFlags::empty()).unwrap();
        let mut at = 0;
        while at + 16 <= len {
            let msg_len = diag_u32(&buffer, at) as usize;
            let kind = u16::from_ne_bytes([buffer[at + 4], buffer[at + 5]]);
            match kind as i32 {
                libc::NLMSG_DONE => return found,
                libc::NLMSG_ERROR => panic!("sock_diag answered with an error"),
                _ => {}
            }
            let msg = &buffer[at + 16..at + msg_len];
            let inode = u64::from(diag_u32(msg, 68));
            found.push((inode, diag_attribute_u64(&msg[72..], INET_DIAG_CGROUP_ID)));
            at += (msg_len + 3) & !3;
        }
    }
}

fn diag_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The u64 value of the netlink attribute `kind` in `attrs`.
fn diag_attribute_u64(mut attrs: &[u8], kind: u16) -> Option<u64> {
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let this = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return None;
        }
        if this == kind && len == 12 {
            return Some(u64::from_ne_bytes(attrs[4..12].try_into().unwrap()));
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    None
}
