//! Snapshot archives built entry by entry, for files no capture would write: another host's,
//! hostile, damaged or unfinished ones.

use serde_json::{Value, json};

use super::json::fixture_root;

/// A tar built entry by entry, names written raw (the tar crate's own setters refuse `..`
/// and absolute names, which hostile archives hold).
pub struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        TarBuilder(tar::Builder::new(Vec::new()))
    }

    /// A regular file `name` (at most 100 bytes) holding `data`.
    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_entry_type(tar::EntryType::Regular);
        raw_name(&mut h, name);
        self.0.append(&h, data).unwrap();
        self
    }

    /// A link entry of `kind` (symbolic or hard) from `name` to `target`.
    pub fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(kind);
        h.set_link_name_literal(target).unwrap();
        raw_name(&mut h, name);
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    /// The manifest, with `fields` (host, kernel, machine, byte order…) over defaults.
    pub fn manifest(self, fields: Value) -> Self {
        let mut m = json!({"format": "lsports-snapshot", "version": 1, "hostname": "web1",
            "kernel": "6.8.0", "machine": "x86_64", "captured_at": 1_780_000_000u64});
        for (k, v) in fields.as_object().expect("manifest fields are an object") {
            m[k] = v.clone();
        }
        self.file("lsports-snapshot.json", m.to_string().as_bytes())
    }

    /// `proc/net/tcp` of a fixture holding one listener (inode 7801).
    pub fn tcp(self) -> Self {
        self.file("proc/net/tcp", &tcp_table())
    }

    /// The archive's bytes (with its end-of-archive blocks).
    pub fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// The `net/tcp` of a fixture holding one listener (inode 7801).
pub fn tcp_table() -> Vec<u8> {
    std::fs::read(fixture_root("empty-table").join("net/tcp")).unwrap()
}

/// Write `name` into the header's name field as it is.
fn raw_name(h: &mut tar::Header, name: &str) {
    let field = &mut h.as_old_mut().name;
    assert!(name.len() <= field.len(), "tar name too long: {name}");
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
}
