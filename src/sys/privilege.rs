//! Who lsports runs as, for the messages that say what would let it see more: an unprivileged
//! user is told to run as root; root refused has no privilege left to suggest, and the
//! reason differs: a security module, or a user namespace whose root is root only inside it.

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
