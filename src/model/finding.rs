//! What inspecting a listener can find: the suspicious-listener flags and their explanations.
//! Plain data, so the configuration can name flags (`--fail-on`) and every output can show
//! them; the inspection itself is `enrich::suspicious`.

/// One reason to look twice at a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// The executable was deleted or replaced since the process started.
    ExeDeleted,
    /// The executable lies in a temporary or world-writable directory.
    ExeWritableDir,
    /// The executable's path holds only in mounts an unprivileged user made (a user
    /// namespace's bind mount): what really runs is that user's choice.
    ExeMasked,
    /// Reachable from outside and held by root.
    RootExposed,
    /// Nobody holds it, although every process could be inspected.
    NoOwner,
}

impl Flag {
    /// Every flag, in report order.
    pub const EVERY: [Flag; 5] = [
        Flag::ExeDeleted,
        Flag::ExeWritableDir,
        Flag::ExeMasked,
        Flag::RootExposed,
        Flag::NoOwner,
    ];

    /// The flag's name in every output (`exe-deleted`, …).
    pub fn name(self) -> &'static str {
        match self {
            Flag::ExeDeleted => "exe-deleted",
            Flag::ExeWritableDir => "exe-writable-dir",
            Flag::ExeMasked => "exe-masked",
            Flag::RootExposed => "root-exposed",
            Flag::NoOwner => "no-owner",
        }
    }
}

/// A flag raised on one listener, with the explanation shown beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which flag.
    pub flag: Flag,
    /// One line saying what was seen and why it matters (terminal-safe).
    pub explanation: String,
}
