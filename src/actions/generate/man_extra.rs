//! The man page's hand-written sections: EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE
//! ALSO. They are data rather than prose in the renderer so that the tests can hold them to the
//! CLI: every example's arguments must parse, and every page named in SEE ALSO is a system
//! page, not one lsports promises and does not install.

use clap_mangen::roff::{Roff, bold, italic, roman};

use super::man_text;

/// One term and its explanation (a `.TP` entry); the explanation may use backticks for bold.
pub type Entry = (&'static str, &'static str);

/// EXIT STATUS, as the README's "Exit codes" table says.
pub const EXIT_STATUS: &[Entry] = &[
    (
        "0",
        "Success, also when nothing listens and when a wait ends as wanted. `audit`: nothing \
         unexpected. `watch`, `-c` and `serve`: stopped by SIGTERM.",
    ),
    (
        "1",
        "No source could enumerate sockets; `--wait` or `--wait-free` timed out; `audit`: \
         something unexpected, a check named by `--fail-on`, or an unmet `required` policy \
         rule; `capture`, `--snapshot`, `baseline save`: the file could not be written or read; \
         the output could not be written (standard output full or closed, but not a pipe closed \
         by its reader); `serve`: the address given to `--listen` cannot be listened on.",
    ),
    (
        "2",
        "Usage error: an unknown option, a bad value, options that cannot be combined. \
         `audit`: the audit could not be done (an unreadable or invalid baseline or policy, \
         named with file and line, or no socket source); `serve`: its baseline or policy is \
         unreadable or invalid.",
    ),
    (
        "130",
        "`watch`, `-c` and `serve`: stopped by Ctrl-C (SIGINT).",
    ),
];

/// ENVIRONMENT: the variables lsports itself reads.
pub const ENVIRONMENT: &[Entry] = &[
    (
        "LSPORTS_TIMING",
        "Set to anything but empty or `0`: when the run ends, write to standard error when \
         each phase ended, in milliseconds since the start, and on which thread.",
    ),
    (
        "LSPORTS_BPF_ITERATOR",
        "For tests and measurements: `task` or `task_file` makes the BPF path load that \
         iterator only (the fd-table walk, or its fallback), instead of the walk falling back \
         to `task_file` where the kernel refuses it. Both give the same listing.",
    ),
    (
        "LSPORTS_BPF_READERS",
        "For tests and measurements: how many iterators read the fd-table walk at once, each on \
         its own thread, sharing the processes out (default: one per core, at most 8; `1`: one \
         reads them all). Every count gives the same listing.",
    ),
    (
        "TMPDIR",
        "Where `--snapshot` unpacks the archive, into a private directory (mode 0700) removed \
         when lsports exits. `capture` and `baseline save` write their temporary file beside \
         the file they create instead, so that the final rename stays on one filesystem.",
    ),
];

/// FILES: what lsports reads, besides the kernel's netlink sock_diag interface.
pub const FILES: &[Entry] = &[
    (
        "/proc/net/tcp, /proc/net/tcp6, /proc/net/udp, /proc/net/udp6",
        "The socket tables, read where netlink fails for a protocol, with `--source proc`, and \
         under `--proc-root` and `--snapshot`.",
    ),
    (
        "/proc/PID/fd/, /proc/PID/comm, /proc/PID/cmdline, /proc/PID/status, /proc/PID/exe",
        "Which processes hold each socket, their names, command lines, users and executables.",
    ),
    (
        "/proc/sys/net/ipv4/ip_local_port_range",
        "The ephemeral port range: UDP client sockets on these ports are matched by program \
         rather than port in baselines and audits, and left out by `--ignore-ephemeral`.",
    ),
    (
        "/sys/kernel/btf/vmlinux",
        "The kernel's type information, needed by the BPF iterator of `--attribution`.",
    ),
    (
        "/usr/sbin/nft, /usr/sbin/iptables-nft-save, /usr/sbin/iptables-legacy-save",
        "The firewall rules, read (never changed) when reach is shown or used: `-o reach`, \
         `-e`, `--reach`, `--reachable`, JSON, `audit`. Needs root or `CAP_NET_ADMIN`; \
         without it every verdict is `unknown`, said once on standard error.",
    ),
    (
        "/etc/services",
        "Port names, shown in the table unless `-n` or `--numeric-ports`, and accepted by \
         `--port`, `--wait` and `--wait-free`. Read only as a regular file of at most 4 MiB, \
         never through a symbolic link.",
    ),
];

/// One example: what it does, the arguments after `lsports`, and the shell around it.
pub struct Example {
    /// What the example does, one sentence.
    pub what: &'static str,
    /// The arguments given to lsports; each must parse (a test checks).
    pub args: &'static [&'static str],
    /// Shell text after the command (a pipe, a redirection), shown as is.
    pub shell: &'static str,
}

/// EXAMPLES, most common first.
pub const EXAMPLES: &[Example] = &[
    Example {
        what: "Listening TCP sockets, numeric, with the processes holding them, as netstat \
               -tlnp:",
        args: &["-tlnp"],
        shell: "",
    },
    Example {
        what: "What the network can reach: every socket not bound to loopback:",
        args: &["--exposed", "-n"],
        shell: "",
    },
    Example {
        what: "What the firewall lets through: open and restricted listeners, and those it \
               cannot tell (unknown), with the rule that decides each:",
        args: &[
            "--reachable",
            "-n",
            "--wide",
            "-o",
            "proto,local,process,reach",
        ],
        shell: "",
    },
    Example {
        what: "Is it postgres that listens on port 5432?",
        args: &["--port", "5432", "--program", "postgres"],
        shell: "",
    },
    Example {
        what: "Choose the columns, here with each holder's executable:",
        args: &["-n", "-o", "proto,port,exposure,pid,program,exe"],
        shell: "",
    },
    Example {
        what: "One JSON object per socket, for scripts:",
        args: &["--format", "jsonl", "--port", "22"],
        shell: " | jq -c '{port: .local_port, who: [.processes[].name]}'",
    },
    Example {
        what: "Wait for the database to listen, at most 30 seconds, then connect:",
        args: &["--wait", "5432", "--timeout", "30s"],
        shell: " && psql",
    },
    Example {
        what: "Wait until nothing listens on port 80 any more:",
        args: &["--wait-free", "80", "--timeout", "10s"],
        shell: "",
    },
    Example {
        what: "Record what listens now, as root, so that every owner is known:",
        args: &["baseline", "save", "/etc/lsports/baseline.toml"],
        shell: "",
    },
    Example {
        what: "Later, from cron: exit 1 and say what is unexpected, missing or suspicious:",
        args: &["audit", "--baseline", "/etc/lsports/baseline.toml"],
        shell: "",
    },
    Example {
        what: "Audit against a hand-written allowlist, failing on every suspicious flag too:",
        args: &[
            "audit",
            "--policy",
            "/etc/lsports/policy.toml",
            "--fail-on",
            "all",
        ],
        shell: "",
    },
    Example {
        what: "Log each listener opened or closed as JSON Lines, polling every 5 seconds:",
        args: &[
            "watch",
            "--changes-only",
            "--format",
            "jsonl",
            "--interval",
            "5s",
        ],
        shell: "",
    },
    Example {
        what: "As root, catch every listener of every network namespace, even one that lives a \
               millisecond, from kernel events (exit 1 where they cannot load):",
        args: &["watch", "--events", "kernel", "--netns", "all"],
        shell: "",
    },
    Example {
        what: "Save everything lsports reads into one file, and read it on another machine:",
        args: &["capture", "web1.tar.gz"],
        shell: "",
    },
    Example {
        what: "",
        args: &["--snapshot", "web1.tar.gz", "-tulnp"],
        shell: "",
    },
    Example {
        what: "Metrics for node_exporter's textfile collector:",
        args: &["--format", "prometheus", "--ignore-ephemeral"],
        shell: " > lsports.prom.tmp && mv lsports.prom.tmp lsports.prom",
    },
    Example {
        what: "Serve /metrics to Prometheus on 127.0.0.1:10150, with the baseline's audit:",
        args: &["serve", "--baseline", "/etc/lsports/baseline.toml"],
        shell: "",
    },
    Example {
        what: "Install the bash completion:",
        args: &["--generate", "bash"],
        shell: " > /usr/share/bash-completion/completions/lsports",
    },
    Example {
        what: "Ports Docker publishes (DNAT rules, docker-proxy), each joined to its \
               container's listener; a published port nothing listens behind is flagged:",
        args: &["--netns", "all", "--published", "-n"],
        shell: "",
    },
];

/// SEE ALSO: system pages, by (name, section). None of them is lsports's own.
pub const SEE_ALSO: &[(&str, &str)] = &[
    ("ss", "8"),
    ("netstat", "8"),
    ("lsof", "8"),
    ("fuser", "1"),
    ("ip", "8"),
    ("proc", "5"),
    ("services", "5"),
];

/// Write every hand-written section.
pub fn write(roff: &mut Roff) {
    write_entries(roff, "EXIT STATUS", EXIT_STATUS);
    write_entries(roff, "ENVIRONMENT", ENVIRONMENT);
    write_entries(roff, "FILES", FILES);
    write_examples(roff);
    write_see_also(roff);
}

fn write_entries(roff: &mut Roff, heading: &str, entries: &[Entry]) {
    roff.control("SH", [heading]);
    for (term, explanation) in entries {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        man_text::write_paragraphs(roff, explanation, "IP");
    }
}

fn write_examples(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    for example in EXAMPLES {
        if !example.what.is_empty() {
            roff.control("PP", []);
            roff.text(man_text::inlines(example.what));
        }
        roff.control("RS", []);
        roff.control("nf", []);
        roff.text([
            bold("lsports "),
            bold(shell_words(example.args)),
            roman(example.shell),
        ]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

fn write_see_also(roff: &mut Roff) {
    roff.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (index, (name, section)) in SEE_ALSO.iter().enumerate() {
        if index > 0 {
            line.push(roman(", "));
        }
        line.push(bold(*name));
        line.push(roman(format!("({section})")));
    }
    roff.text(line);
    roff.control("PP", []);
    roff.text([
        roman("The README of the source distribution describes every output format, and "),
        italic("schema/lsports.schema.json"),
        roman(" is the JSON Schema of "),
        bold("--format json"),
        roman(" and "),
        bold("jsonl"),
        roman("."),
    ]);
}

/// The arguments as a shell would need them: quoted where they hold a shell special.
fn shell_words(args: &[&str]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.,/:=".contains(c))
            {
                (*arg).to_owned()
            } else {
                format!("'{arg}'")
            }
        })
        .collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn every_example_parses_and_resolves() {
        for example in EXAMPLES {
            let args = std::iter::once("lsports").chain(example.args.iter().copied());
            let parsed = Cli::try_parse_from(args).and_then(Cli::resolve);
            assert!(
                parsed.is_ok(),
                "lsports {:?}: {:?}",
                example.args,
                parsed.err()
            );
        }
    }

    #[test]
    fn see_also_names_no_page_of_lsports() {
        for (name, _) in SEE_ALSO {
            assert!(!name.starts_with("lsports"), "{name}");
        }
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        assert_eq!(shell_words(&["-o", "port,pid"]), "-o port,pid");
        assert_eq!(
            shell_words(&["--program", "python*"]),
            "--program 'python*'"
        );
    }
}
