//! Merging paths that end the same way, so that `restricted` names the conditions that
//! matter: a path that went one way at a rule and its twin that went the other way, both
//! ending in accept, are one path that never depended on that rule (A∧X ∨ A∧¬X = A).

use std::collections::BTreeSet;

use super::path::Path;

/// Past this many paths, merging (quadratic) is skipped: the conditions are then longer,
/// never wrong.
const MAX_MERGE: usize = 256;

/// Merge `paths` (all ending the same way) until no two merge.
pub fn merge(mut paths: Vec<Path>) -> Vec<Path> {
    if paths.len() > MAX_MERGE {
        return paths;
    }
    'again: loop {
        for i in 0..paths.len() {
            for j in i + 1..paths.len() {
                if let Some(m) = pair(&paths[i], &paths[j]) {
                    paths[i] = m;
                    paths.remove(j);
                    continue 'again;
                }
            }
        }
        return paths;
    }
}

/// The interface constraints in a comparable form.
type Iif = (BTreeSet<Vec<String>>, BTreeSet<String>);

fn iif(p: &Path) -> Iif {
    let ins = p.iif_in.iter().map(|s| {
        let mut s = s.clone();
        s.sort();
        s.dedup();
        s
    });
    (ins.collect(), p.iif_not.iter().cloned().collect())
}

fn conds(p: &Path) -> BTreeSet<(String, bool)> {
    p.conds
        .iter()
        .map(|(_, t, h)| (t.to_string(), *h))
        .collect()
}

/// One path standing for both, if they differ in one constraint only, and there in a way
/// that their union has a shape a path can hold.
fn pair(p: &Path, q: &Path) -> Option<Path> {
    let (pi, qi, pc, qc) = (iif(p), iif(q), conds(p), conds(q));
    let same_iif = pi == qi;
    let same_conds = pc == qc;
    let (same_s, same_d) = (p.saddr == q.saddr, p.daddr == q.daddr);
    let mut m = p.clone();
    if same_iif && same_conds && same_d {
        m.saddr = p.saddr.union(&q.saddr);
        return Some(m);
    }
    if same_iif && same_conds && same_s {
        m.daddr = p.daddr.union(&q.daddr);
        return Some(m);
    }
    if !(same_s && same_d) {
        return None;
    }
    if same_conds {
        let merged = iif_union(&pi, &qi).or_else(|| iif_union(&qi, &pi))?;
        m.iif_in = merged.0.into_iter().collect();
        m.iif_not = merged.1.into_iter().collect();
        return Some(m);
    }
    if same_iif {
        let diff: Vec<_> = pc.symmetric_difference(&qc).collect();
        if let [a, b] = diff[..] {
            if a.0 == b.0 && a.1 != b.1 {
                m.conds.retain(|(_, t, _)| **t != *a.0);
                return Some(m);
            }
        }
    }
    None
}

/// `a` required the interface in a set S and `b` required it outside S, all else equal:
/// neither constraint is needed.
fn iif_union(a: &Iif, b: &Iif) -> Option<Iif> {
    let extra: Vec<&Vec<String>> = a.0.difference(&b.0).collect();
    let [set] = extra[..] else { return None };
    if b.0.len() + 1 != a.0.len() {
        return None;
    }
    let expected: BTreeSet<String> = a.1.iter().cloned().chain(set.iter().cloned()).collect();
    (b.1 == expected).then(|| (b.0.clone(), a.1.clone()))
}
