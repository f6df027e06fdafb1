//! [`Owners`]: the processes holding one socket, the usual single holder kept in place.

use std::ops::{Deref, DerefMut};

use super::{OwnerProcess, ThinVec};

/// Every process holding a socket, by pid; reads and writes as a slice of [`OwnerProcess`].
///
/// Nearly every held socket has one holder. In a list of its own (a [`ThinVec`]: 16 bytes of
/// header and the 40-byte owner) each took a 64-byte allocation; kept here in place it makes
/// the entry 32 bytes larger and allocates nothing, 32 bytes less per held socket, and the
/// peak of a listing is its entries. Measured with `LSPORTS_TIMING=1` at "owners found" in
/// the large world (25,000 held sockets): anonymous memory 5.9 → 5.2 MiB. A socket nobody
/// holds allocates nothing either way; two or more holders take one list, as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owners(Held);

/// How the owners are kept: one in place, or none and more in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    One(OwnerProcess),
    List(ThinVec<OwnerProcess>),
}

impl Owners {
    /// No owner (allocates nothing).
    pub const fn new() -> Owners {
        Owners(Held::List(ThinVec::new()))
    }

    /// Exactly `owner`.
    pub const fn one(owner: OwnerProcess) -> Owners {
        Owners(Held::One(owner))
    }

    /// No owner yet, with room for `count` (none is taken for one: it is kept in place).
    pub fn with_capacity(count: usize) -> Owners {
        match count {
            0 | 1 => Owners::new(),
            _ => Owners(Held::List(ThinVec::with_capacity(count))),
        }
    }

    /// Add `owner` after the others.
    pub fn push(&mut self, owner: OwnerProcess) {
        match &mut self.0 {
            Held::List(list) if list.is_empty() && list.capacity() == 0 => {
                self.0 = Held::One(owner)
            }
            Held::List(list) => list.push(owner),
            Held::One(_) => {
                let Held::One(first) = std::mem::replace(&mut self.0, Held::List(ThinVec::new()))
                else {
                    unreachable!("matched as one owner just above")
                };
                let mut list = ThinVec::with_capacity(2);
                list.push(first);
                list.push(owner);
                self.0 = Held::List(list);
            }
        }
    }

    /// Remove every owner.
    pub fn clear(&mut self) {
        *self = Owners::new();
    }
}

impl Default for Owners {
    fn default() -> Owners {
        Owners::new()
    }
}

impl Deref for Owners {
    type Target = [OwnerProcess];

    fn deref(&self) -> &[OwnerProcess] {
        match &self.0 {
            Held::One(owner) => std::slice::from_ref(owner),
            Held::List(list) => list,
        }
    }
}

impl DerefMut for Owners {
    fn deref_mut(&mut self) -> &mut [OwnerProcess] {
        match &mut self.0 {
            Held::One(owner) => std::slice::from_mut(owner),
            Held::List(list) => list,
        }
    }
}

impl FromIterator<OwnerProcess> for Owners {
    fn from_iter<I: IntoIterator<Item = OwnerProcess>>(owners: I) -> Owners {
        let mut all = Owners::new();
        for owner in owners {
            all.push(owner);
        }
        all
    }
}

impl From<Vec<OwnerProcess>> for Owners {
    fn from(owners: Vec<OwnerProcess>) -> Owners {
        owners.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Owners {
    type Item = &'a OwnerProcess;
    type IntoIter = std::slice::Iter<'a, OwnerProcess>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Owners {
    type Item = &'a mut OwnerProcess;
    type IntoIter = std::slice::IterMut<'a, OwnerProcess>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pid: u32) -> OwnerProcess {
        OwnerProcess {
            pid,
            fd: pid + 3,
            name: Some(format!("p{pid}").as_str().into()),
            cmdline: None,
            uid: Some(pid * 10),
            labels: None,
        }
    }

    #[test]
    fn reads_as_the_owners_pushed_in_order_whatever_their_count() {
        for count in 0..5u32 {
            let want: Vec<OwnerProcess> = (1..=count).map(owner).collect();
            let pushed: Owners = want.iter().cloned().collect();
            assert_eq!(&*pushed, want.as_slice(), "{count} owners");
            let sized = {
                let mut owners = Owners::with_capacity(want.len());
                want.iter().cloned().for_each(|o| owners.push(o));
                owners
            };
            assert_eq!(&*sized, want.as_slice(), "{count} owners, sized");
            assert_eq!(Owners::from(want.clone()), pushed);
        }
        assert_eq!(&*Owners::one(owner(7)), [owner(7)].as_slice());
    }

    #[test]
    fn owners_are_written_in_place_and_cleared() {
        for count in [1u32, 3] {
            let mut owners: Owners = (1..=count).map(owner).collect();
            for process in &mut owners {
                process.uid = None;
            }
            assert!(owners.iter().all(|p| p.uid.is_none()), "{count} owners");
            owners.clear();
            assert!(owners.is_empty());
        }
    }

    #[test]
    fn one_owner_is_kept_in_the_owners_own_room() {
        // The point of the type: no larger than an owner, where a list would allocate.
        assert_eq!(
            std::mem::size_of::<Owners>(),
            std::mem::size_of::<OwnerProcess>()
        );
    }
}
