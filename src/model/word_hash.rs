//! A hasher for machine-word keys that nobody chooses to collide: socket inodes the kernel
//! numbers, addresses the allocator picks. One multiplication, its high bits folded into the
//! low ones that pick a bucket (an allocation's address has its low bits all zero).
//!
//! SipHash, the standard default, guards against keys chosen to collide; for these keys it was
//! most of the cost of the lookups that use this one instead: keeping the BPF walk's 25,000
//! socket records once each in the namespaces world (`process::bpf::records`), and the table's
//! per-row labels cache, in each of its two passes (`render::columns`).

use std::hash::Hasher;

/// The one-multiplication hasher (see the module doc); use with
/// `BuildHasherDefault<WordHasher>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        let mixed = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        mixed ^ (mixed >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only word keys are meant; any other is folded in a byte at a time.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }

    fn write_usize(&mut self, word: usize) {
        self.0 = word as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};

    /// The kernel numbers sockets from per-CPU counters (runs of consecutive inodes, and runs
    /// a stride apart), and the allocator aligns addresses (64 bytes apart here): the low 7
    /// bits of such keys, which pick a bucket among 128, are alike; the hashes' are not.
    #[test]
    fn strided_inodes_and_aligned_addresses_spread_over_the_buckets() {
        let build = BuildHasherDefault::<WordHasher>::default();
        for stride in [1u64, 2, 64, 1024] {
            let buckets: HashSet<u64> = (0..256u64)
                .map(|i| build.hash_one(4_000_000 + i * stride) & 127)
                .collect();
            assert!(
                buckets.len() > 64,
                "stride {stride}: {} of 128",
                buckets.len()
            );
        }
        let buckets: HashSet<u64> = (0..256usize)
            .map(|i| build.hash_one(0x5555_0000_1000 + i * 64) & 127)
            .collect();
        assert!(buckets.len() > 64, "addresses: {} of 128", buckets.len());
    }
}
