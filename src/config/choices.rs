//! The choices of how to read the system: where sockets come from, which states, how owners
//! are found, and which process details and enrichments a run needs.

/// Which source the user asked for (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceChoice {
    /// Netlink, falling back to `/proc/net` per table.
    Auto,
    /// Netlink only; a table it cannot dump is an error.
    Netlink,
    /// `/proc/net` only.
    Proc,
}

/// Which sockets a dump asks the kernel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSelection {
    /// TCP LISTEN, or UDP bound-and-unconnected (`TCP_CLOSE`).
    Listening,
    /// Every state.
    All,
}

/// How to find the processes holding each socket (`--attribution`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttributionChoice {
    /// The BPF iterator when it can run here and the host is big enough for it to pay off,
    /// otherwise the fd walk.
    #[default]
    Auto,
    /// The BPF iterator only; when it cannot run, that is an error.
    Bpf,
    /// The `/proc/*/fd` walk only.
    Walk,
}

/// Which details to read beyond the name: each is one more file per process, and the default
/// table shows only the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailFields {
    /// Read `cmdline`.
    pub cmdline: bool,
    /// Read `status` for the effective uid.
    pub uid: bool,
}

impl DetailFields {
    /// Every detail.
    pub const ALL: DetailFields = DetailFields {
        cmdline: true,
        uid: true,
    };
    /// The name alone.
    pub const NONE: DetailFields = DetailFields {
        cmdline: false,
        uid: false,
    };

    /// Every detail either asks for.
    pub fn and(self, other: DetailFields) -> DetailFields {
        DetailFields {
            cmdline: self.cmdline || other.cmdline,
            uid: self.uid || other.uid,
        }
    }
}

/// What a run must read beyond the sockets themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Find the processes holding each socket.
    pub processes: bool,
    /// Read the executable of each of those processes.
    pub executables: bool,
    /// Which details of those processes to read beyond their names.
    pub details: DetailFields,
    /// Inspect each listener for the suspicious-listener flags (which needs the executables
    /// and the uids too: [`Needs::and`] does not add them, the column asks for them).
    pub findings: bool,
    /// Label each socket and holder with its systemd unit and container (which needs the
    /// holders: the columns and filters that use labels ask for them too).
    pub labels: bool,
    /// Label each holder too, not only each socket: JSON shows every process's unit and
    /// container, and `--container`/`--unit` keep a socket by any holder's labels. Without it
    /// (the table's and CSV's columns, Prometheus' labels) a socket whose own cgroup names its
    /// unit or container costs no `/proc/PID/cgroup` read. Set only beside `labels`.
    pub holder_labels: bool,
    /// Evaluate the firewall for each socket (`reach`): the ruleset is read once per run
    /// (once per poll for `watch` and `-c`), and only when this is set.
    pub reach: bool,
}

impl Needs {
    /// Nothing beyond the sockets.
    pub const NOTHING: Needs = Needs {
        processes: false,
        executables: false,
        details: DetailFields::NONE,
        findings: false,
        labels: false,
        holder_labels: false,
        reach: false,
    };
    /// Everything: a listener's full identity, and its findings.
    pub const EVERYTHING: Needs = Needs {
        processes: true,
        executables: true,
        details: DetailFields::ALL,
        findings: true,
        labels: true,
        holder_labels: true,
        reach: true,
    };

    /// Everything either needs.
    pub fn and(self, other: Needs) -> Needs {
        Needs {
            processes: self.processes || other.processes,
            executables: self.executables || other.executables,
            details: self.details.and(other.details),
            findings: self.findings || other.findings,
            labels: self.labels || other.labels,
            holder_labels: self.holder_labels || other.holder_labels,
            reach: self.reach || other.reach,
        }
    }
}

/// Which network namespaces to list (`--netns`, `-N`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetnsChoice {
    /// The one lsports runs in, as ss and netstat do.
    #[default]
    Current,
    /// Every namespace of the host, each read from inside it.
    All,
    /// The one `ip netns` names so (`/run/netns/NAME`).
    Named(std::ffi::OsString),
    /// The one bind-mounted at (or linked from) this path.
    Path(std::path::PathBuf),
    /// The one this process lives in.
    Pid(u32),
}

impl NetnsChoice {
    /// Read a `--netns` value: `all`, `current`, `pid:PID`, a path (it has a `/`), else an
    /// `ip netns` name.
    pub fn parse(value: &std::ffi::OsStr) -> Result<NetnsChoice, String> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = value.as_bytes();
        Ok(match bytes {
            b"all" => NetnsChoice::All,
            b"current" => NetnsChoice::Current,
            b"" => {
                return Err(
                    "an empty namespace name; use all, current, NAME, PATH or pid:PID".into(),
                );
            }
            _ if bytes.starts_with(b"pid:") => {
                let digits = String::from_utf8_lossy(&bytes[4..]);
                let pid = digits
                    .parse::<u32>()
                    .ok()
                    .filter(|&pid| pid > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
                    // Debug formatting escapes whatever control characters were typed.
                    .ok_or_else(|| format!("{digits:?} after pid: is not a process id"))?;
                NetnsChoice::Pid(pid)
            }
            _ if bytes.contains(&b'/') => NetnsChoice::Path(value.into()),
            _ => NetnsChoice::Named(value.into()),
        })
    }
}

/// Where `watch` learns that a listener opened or closed (`--events`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsChoice {
    /// Kernel events where their programs load here, otherwise polling (said under `-v`).
    #[default]
    Auto,
    /// Kernel events only; when their programs cannot load, that is an error.
    Kernel,
    /// Poll the socket tables every interval.
    Poll,
}
