//! sock_diag reply decoder: any bytes as one `recv` worth of netlink messages; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lsports::model::Protocol;
use lsports::source::netlink::decode_chunk;

fuzz_target!(|data: &[u8]| {
    // The first four bytes choose the sequence number the decoder expects, as a recorded
    // fixture's header does; the rest is the reply.
    let (sequence, reply) = match data.split_first_chunk::<4>() {
        Some((head, rest)) => (u32::from_le_bytes(*head), rest),
        None => (0, data),
    };
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let mut sockets = Vec::new();
        let _ = decode_chunk(reply, sequence, protocol, &mut sockets);
    }
});
