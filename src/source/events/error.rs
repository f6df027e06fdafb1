//! Why kernel listener events cannot be had here: one variant per missing piece, each saying
//! what would provide it (`watch --events kernel` prints it, `auto` says it under `-v`).

/// Kernel events cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum EventsUnavailable {
    /// Not privileged enough to load and attach the programs.
    #[error(
        "kernel events need root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN in the initial user \
         namespace: {0}"
    )]
    Privilege(String),
    /// No cgroup v2 hierarchy to attach the bind and release programs to.
    #[error(
        "kernel events need a cgroup v2 mount to attach to (none in /proc/self/mountinfo; \
         mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`){0}"
    )]
    NoCgroup2(String),
    /// The kernel does not describe its own types.
    #[error(
        "kernel events need the kernel's BTF at /sys/kernel/btf/vmlinux \
         (CONFIG_DEBUG_INFO_BTF): {0}"
    )]
    NoBtf(String),
    /// The listing is of a snapshot or a proc tree other than this system's `/proc`.
    #[error(
        "kernel events describe the running system; they cannot be joined to {} or a snapshot",
        .0.display()
    )]
    NotLive(std::path::PathBuf),
    /// The kernel refused a program, a map or an attachment.
    #[error("the kernel refused the listener event programs (needs Linux 5.8 or later): {0}")]
    Load(String),
}

impl EventsUnavailable {
    /// Short name of the missing piece, for tests and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            EventsUnavailable::Privilege(_) => "capability",
            EventsUnavailable::NoCgroup2(_) => "cgroup2",
            EventsUnavailable::NoBtf(_) => "btf",
            EventsUnavailable::Load(_) => "load",
            EventsUnavailable::NotLive(_) => "proc_root",
        }
    }
}
