//! Record raw sock_diag replies for the offline tests:
//! `cargo run --example record_netlink -- OUT_DIR` writes `{tcp,udp}{4,6}-{listen,all}.bin`,
//! each starting with the 4-byte little-endian sequence number the request used.

use std::path::PathBuf;

use lsports::config::StateSelection;
use lsports::model::{Family, Protocol};
use lsports::source::netlink::SockDiag;

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: record_netlink OUT_DIR"))?
        .into();
    let mut diag = SockDiag::open()?;
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        for family in [Family::Ipv4, Family::Ipv6] {
            for (states, label) in [
                (StateSelection::Listening, "listen"),
                (StateSelection::All, "all"),
            ] {
                let (raw, sequence) = diag.record(protocol, family, states)?;
                let v = if family == Family::Ipv4 { 4 } else { 6 };
                let path = out.join(format!("{}{v}-{label}.bin", protocol.name()));
                let mut bytes = sequence.to_le_bytes().to_vec();
                bytes.extend_from_slice(&raw);
                std::fs::write(&path, bytes)?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}
