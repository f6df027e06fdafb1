//! Sorting a listing into display order without a copy of every entry's key.
//!
//! Entries are large (about 180 bytes), so they are not sorted by comparison, which moves each
//! many times: they are ordered through a list of indices, then each moved once. The list
//! does not hold each entry's whole key either, as `sort_by_cached_key` would: the display
//! key (two addresses, ports, the inode) is 48 bytes, and with its index 56 bytes an entry,
//! 1.4 MB for 25,000 sockets, allocated while the entries are whole, at the run's peak. It
//! holds an 8-byte *prefix* of the key that orders like the key wherever two prefixes differ
//! (protocol, port, the start of the address); entries with equal prefixes, which share a
//! port, compare their whole keys, read from the entries. 16 bytes an entry, and most
//! comparisons stay on the prefixes.

/// Sort `items` by `key`, stably (equal keys keep their order), with `prefix` a summary of
/// the key: `prefix(a) < prefix(b)` must imply `key(a) < key(b)`.
pub fn sort_by_prefixed_key<T, K: Ord>(
    items: &mut [T],
    prefix: impl Fn(&T) -> u64,
    key: impl Fn(&T) -> K,
) {
    let mut order: Vec<(u64, usize)> = items
        .iter()
        .enumerate()
        .map(|(index, item)| (prefix(item), index))
        .collect();
    // The index last makes the unstable sort stable, and the order total.
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| key(&items[a.1]).cmp(&key(&items[b.1])))
            .then(a.1.cmp(&b.1))
    });
    permute(items, &mut order);
}

/// Put the item at `order[i].1` at position `i`, for every `i`, each by one swap: where an
/// item has moved since `order` was made, the chain of earlier swaps says where it went.
fn permute<T>(items: &mut [T], order: &mut [(u64, usize)]) {
    for i in 0..order.len() {
        let mut from = order[i].1;
        // Positions before `i` are final; what was there was swapped to `order[from].1`.
        while from < i {
            from = order[from].1;
        }
        order[i].1 = from;
        items.swap(i, from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A prefix that orders like the pair: the first element's top bits.
    fn prefix(item: &(u16, u8, usize)) -> u64 {
        u64::from(item.0 >> 4)
    }

    fn key(item: &(u16, u8, usize)) -> (u16, u8) {
        (item.0, item.1)
    }

    proptest! {
        /// The order is the standard library's stable sort by the whole key, whatever the
        /// input: ties on the prefix, ties on the key (kept in input order), any length.
        #[test]
        fn sorts_like_a_stable_sort_by_the_whole_key(
            values in prop::collection::vec((0u16..64, 0u8..4), 0..300)
        ) {
            let items: Vec<(u16, u8, usize)> =
                values.iter().enumerate().map(|(i, &(a, b))| (a, b, i)).collect();
            let mut want = items.clone();
            want.sort_by_key(key);
            let mut got = items;
            sort_by_prefixed_key(&mut got, prefix, key);
            prop_assert_eq!(got, want);
        }
    }
}
