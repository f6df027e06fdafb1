//! The columns of the table and the CSV (`-o/--columns`): their names, headers, defaults, and
//! what each needs read. The cells themselves are rendered by `render::columns`.

use super::{DetailFields, Needs};

/// One column. The value names are what `-o` accepts and what the CSV header says; `-` and
/// `_` are interchangeable (`recv-q`, `recv_q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Column {
    /// Protocol: `tcp`, `udp` (the table adds `6` for IPv6, as netstat).
    Proto,
    /// Address family: `ipv4`, `ipv6`.
    Family,
    /// Connections waiting to be accepted (listeners), or unread bytes.
    #[value(name = "recv_q", alias = "recv-q")]
    RecvQ,
    /// Accept backlog limit (listeners), or unsent bytes.
    #[value(name = "send_q", alias = "send-q")]
    SendQ,
    /// Local address and port, netstat's `Local Address` (`0.0.0.0:22`, `*:22`, `[::1]%lo:53`).
    Local,
    /// Local address alone.
    #[value(alias = "local_addr", alias = "local-addr")]
    Address,
    /// Local port alone.
    #[value(alias = "local_port", alias = "local-port")]
    Port,
    /// Peer address and port, netstat's `Foreign Address`.
    #[value(alias = "remote")]
    Foreign,
    /// Peer address alone.
    #[value(name = "remote_addr", alias = "remote-addr")]
    RemoteAddr,
    /// Peer port alone.
    #[value(name = "remote_port", alias = "remote-port")]
    RemotePort,
    /// Socket state: `LISTEN`, `UNCONN`, `ESTABLISHED` and so on.
    State,
    /// Owner uid of the socket.
    Uid,
    /// Owner of the socket, by name.
    User,
    /// Socket inode.
    Inode,
    /// Device the socket is bound to (`SO_BINDTODEVICE`).
    #[value(alias = "device")]
    Interface,
    /// `IPV6_V6ONLY` of an IPv6 socket.
    #[value(name = "v6only")]
    V6only,
    /// Who can reach the socket: `loopback`, `link-local`, `interface`, `specific`, `all`.
    Exposure,
    /// The socket's network namespace: its name if a mount names it, else `net:[INODE]`.
    #[value(alias = "namespace")]
    Netns,
    /// Which source described the socket: `netlink`, `proc`.
    Source,
    /// Every process id holding the socket.
    #[value(alias = "pids")]
    Pid,
    /// Names of the processes holding the socket.
    #[value(alias = "name")]
    Program,
    /// netstat's `PID/Program name`: pids grouped by name (`812,813/nginx`).
    #[value(alias = "pid/program")]
    Process,
    /// Command lines of the processes holding the socket.
    #[value(alias = "command")]
    Cmdline,
    /// Executables of the processes holding the socket (`readlink /proc/PID/exe`).
    Exe,
    /// Suspicious-listener flags (`exe-deleted`, `exe-writable-dir`, `exe-masked`,
    /// `root-exposed`, `no-owner`), as `lsports audit` explains them.
    #[value(alias = "suspicious")]
    Flags,
    /// The container that made the socket or runs its holder: its name, else its short id
    /// (`web`, `3f2a9c1e0b7d`); under Kubernetes `pod-namespace/pod/name`.
    Container,
    /// The systemd unit that made the socket or runs its holder (`nginx.service`); a socket
    /// that socket activation passed on shows both (`sshd.socket → sshd.service`).
    Unit,
    /// Whether a new connection from outside gets through the firewall: `open`,
    /// `restricted`, `filtered`, `rejected`, `local`, `unknown`; one per family
    /// (`ipv4:open ipv6:filtered`) where a dual-stack socket's families differ.
    Reach,
}

impl Column {
    /// The table's header for the column.
    pub fn header(self) -> &'static str {
        match self {
            Column::Proto => "Proto",
            Column::Family => "Family",
            Column::RecvQ => "Recv-Q",
            Column::SendQ => "Send-Q",
            Column::Local => "Local Address",
            Column::Address => "Address",
            Column::Port => "Port",
            Column::Foreign => "Foreign Address",
            Column::RemoteAddr => "Remote Address",
            Column::RemotePort => "Remote Port",
            Column::State => "State",
            Column::Uid => "UID",
            Column::User => "User",
            Column::Inode => "Inode",
            Column::Interface => "Interface",
            Column::V6only => "V6only",
            Column::Exposure => "Exposure",
            Column::Netns => "Netns",
            Column::Source => "Source",
            Column::Pid => "PID",
            Column::Program => "Program",
            Column::Process => "PID/Program name",
            Column::Cmdline => "Command",
            Column::Exe => "Executable",
            Column::Flags => "Flags",
            Column::Container => "Container",
            Column::Unit => "Unit",
            Column::Reach => "Reach",
        }
    }

    /// The CSV's header for the column: the name `-o` accepts.
    pub fn key(self) -> &'static str {
        match self {
            Column::Proto => "proto",
            Column::Family => "family",
            Column::RecvQ => "recv_q",
            Column::SendQ => "send_q",
            Column::Local => "local",
            Column::Address => "address",
            Column::Port => "port",
            Column::Foreign => "foreign",
            Column::RemoteAddr => "remote_addr",
            Column::RemotePort => "remote_port",
            Column::State => "state",
            Column::Uid => "uid",
            Column::User => "user",
            Column::Inode => "inode",
            Column::Interface => "interface",
            Column::V6only => "v6only",
            Column::Exposure => "exposure",
            Column::Netns => "netns",
            Column::Source => "source",
            Column::Pid => "pid",
            Column::Program => "program",
            Column::Process => "process",
            Column::Cmdline => "cmdline",
            Column::Exe => "exe",
            Column::Flags => "flags",
            Column::Container => "container",
            Column::Unit => "unit",
            Column::Reach => "reach",
        }
    }

    /// Queues are numbers and read best right-aligned, as in netstat.
    pub fn right_aligned(self) -> bool {
        matches!(self, Column::RecvQ | Column::SendQ)
    }

    /// What the column needs read: the holders for every process column, and beyond their
    /// names the command line (`cmdline`), the executable (`exe`), or the executable and the
    /// uid (`flags`, for `exe-writable-dir` and `root-exposed`).
    pub fn needs(self) -> Needs {
        let holders = Needs {
            processes: true,
            ..Needs::NOTHING
        };
        match self {
            Column::Pid | Column::Program | Column::Process => holders,
            Column::Cmdline => Needs {
                details: DetailFields {
                    cmdline: true,
                    uid: false,
                },
                ..holders
            },
            Column::Exe => Needs {
                executables: true,
                ..holders
            },
            Column::Flags => Needs {
                executables: true,
                findings: true,
                details: DetailFields {
                    cmdline: false,
                    uid: true,
                },
                ..holders
            },
            Column::Container | Column::Unit => Needs {
                labels: true,
                ..holders
            },
            Column::Reach => Needs {
                reach: true,
                ..Needs::NOTHING
            },
            _ => Needs::NOTHING,
        }
    }

    /// netstat's table: `Proto Recv-Q Send-Q Local Address Foreign Address State`, then
    /// `User Inode` under `-e`, then `PID/Program name`, then `Reach` under `-e` (last, so
    /// netstat's columns keep their places).
    pub fn table_default(extend: bool) -> Vec<Column> {
        let mut columns = vec![
            Column::Proto,
            Column::RecvQ,
            Column::SendQ,
            Column::Local,
            Column::Foreign,
            Column::State,
        ];
        if extend {
            columns.extend([Column::User, Column::Inode]);
        }
        columns.push(Column::Process);
        if extend {
            columns.push(Column::Reach);
        }
        columns
    }

    /// The CSV's default: one value per cell, the peer only when every state is shown.
    pub fn csv_default(all_states: bool) -> Vec<Column> {
        let mut columns = vec![Column::Proto, Column::Family, Column::Address, Column::Port];
        if all_states {
            columns.extend([Column::RemoteAddr, Column::RemotePort]);
        }
        columns.extend([
            Column::State,
            Column::RecvQ,
            Column::SendQ,
            Column::Uid,
            Column::User,
            Column::Inode,
            Column::Interface,
            Column::Exposure,
            Column::Pid,
            Column::Program,
        ]);
        columns
    }
}
