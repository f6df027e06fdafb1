//! Who lsports runs as, for the messages that say what would let it see more: an unprivileged
//! user is told to run as root; root refused has no privilege left to suggest, and the
//! reason differs: a security module, or a user namespace whose root is root only inside it.
//!
//! And what a user names is opened with that user's own rights ([`as_invoker`]): lsports
//! tells an unprivileged user to have the binary given `CAP_DAC_READ_SEARCH` and
//! `CAP_SYS_PTRACE` (`setcap … lsports`), and those are for `/proc`, not for reading a
//! root-only file the user names as a baseline, policy, snapshot or proc root.

/// The inode of the initial user namespace (`PROC_USER_INIT_INO`): fixed by the kernel.
const INITIAL_USER_NAMESPACE: u64 = 0xEFFF_FFFD;

/// How much this process may look into others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Not root: other users' processes need root or capabilities.
    Unprivileged,
    /// Root of the host: what is still refused, a security module refused.
    Root,
    /// Root of a user namespace other than the host's (`unshare -U`, a rootless container):
    /// it may not look into processes outside that namespace.
    NamespacedRoot,
}

impl Privilege {
    /// This process's.
    pub fn current() -> Privilege {
        if !nix::unistd::geteuid().is_root() {
            return Privilege::Unprivileged;
        }
        // `ns/user` is a magic link whose target names the namespace: `user:[4026531837]`.
        let link = std::fs::read_link("/proc/self/ns/user").ok();
        let target = link.as_deref().and_then(|path| path.to_str());
        match target.and_then(namespace_inode) {
            Some(inode) if inode != INITIAL_USER_NAMESPACE => Privilege::NamespacedRoot,
            _ => Privilege::Root,
        }
    }
}

/// The inode in a namespace link's target: `user:[4026531837]` gives 4026531837.
fn namespace_inode(target: &str) -> Option<u64> {
    let (_, inode) = target.split_once(":[")?;
    inode.strip_suffix(']')?.parse().ok()
}

/// Run `open` (the opening of a file or directory the user named) with this thread's
/// effective capabilities cleared when the real user is not root, so that a binary given
/// capabilities (`setcap`) opens only what its user could open without them; the
/// capabilities are restored afterwards, for `/proc`. Capabilities are per thread, so other
/// threads keep theirs meanwhile. Root (real uid 0) is left as it is: its rights are its
/// capabilities. Should the capabilities not be lowered, nothing is opened.
pub fn as_invoker<T>(open: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let _lowered = Lowered::now()?;
    open()
}

/// This thread's capabilities as they were before [`as_invoker`] cleared the effective set;
/// put back when dropped.
struct Lowered(Option<rustix::thread::CapabilitySets>);

impl Lowered {
    fn now() -> std::io::Result<Lowered> {
        if rustix::process::getuid().is_root() {
            return Ok(Lowered(None));
        }
        let sets = rustix::thread::capabilities(None)?;
        if sets.effective.is_empty() {
            return Ok(Lowered(None));
        }
        let lowered = rustix::thread::CapabilitySets {
            effective: rustix::thread::CapabilitySet::empty(),
            ..sets
        };
        rustix::thread::set_capabilities(None, lowered)?;
        Ok(Lowered(Some(sets)))
    }
}

impl Drop for Lowered {
    fn drop(&mut self) {
        if let Some(sets) = self.0 {
            // Failing leaves fewer rights, never more: /proc then shows less, and says so.
            let _ = rustix::thread::set_capabilities(None, sets);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_links_give_their_inode() {
        assert_eq!(
            namespace_inode("user:[4026531837]"),
            Some(INITIAL_USER_NAMESPACE)
        );
        assert_eq!(namespace_inode("user:[]"), None);
        assert_eq!(namespace_inode("user:4026531837"), None);
    }

    /// The host's root (tests run as root in CI) is told apart from a user namespace's root
    /// as the kernel sees them: a child process made by `unshare -Ur` is the latter.
    #[test]
    fn root_of_a_user_namespace_is_not_the_hosts() {
        let link = std::fs::read_link("/proc/self/ns/user").unwrap();
        let initial = link.to_str() == Some("user:[4026531837]");
        let want = match (nix::unistd::geteuid().is_root(), initial) {
            (false, _) => Privilege::Unprivileged,
            (true, true) => Privilege::Root,
            (true, false) => Privilege::NamespacedRoot,
        };
        assert_eq!(Privilege::current(), want);
    }
}
