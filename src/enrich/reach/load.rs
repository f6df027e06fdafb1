//! Reading the rules, never writing them: `nft -j list ruleset`, then `iptables-nft-save` for
//! the tables whose `xt` rules nft's JSON leaves opaque, and `iptables-legacy-save` /
//! `ip6tables-legacy-save` when `/proc/net/ip{,6}_tables_names` says legacy tables are loaded.
//! Each program runs with an empty environment (but `PATH` and `LC_ALL=C`), no stdin, a
//! timeout and a cap on what it may print.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::Ruleset;
use super::rules::{Action, Chain, Step, Table};
use super::{ipt, nft};
use crate::model::Family;

/// Where the rules are read from, and the limits on reading them.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `nft`.
    pub nft: PathBuf,
    /// `iptables-nft-save` and `ip6tables-nft-save`.
    pub xtables_save: [PathBuf; 2],
    /// `iptables-legacy-save` and `ip6tables-legacy-save`.
    pub legacy_save: [PathBuf; 2],
    /// The namespace's `/proc/net` (for `ip_tables_names`, `ip6_tables_names`): the
    /// calling thread's, which is the namespace a thread that entered another one reads.
    pub proc_net: PathBuf,
    /// How long one program may run.
    pub timeout: Duration,
    /// How many bytes one program may print.
    pub max_bytes: usize,
}

impl Default for Sources {
    fn default() -> Sources {
        Sources {
            nft: program("nft"),
            xtables_save: [program("iptables-nft-save"), program("ip6tables-nft-save")],
            legacy_save: [
                program("iptables-legacy-save"),
                program("ip6tables-legacy-save"),
            ],
            proc_net: PathBuf::from("/proc/thread-self/net"),
            timeout: Duration::from_secs(10),
            max_bytes: 64 << 20,
        }
    }
}

/// The system directories a root-owned firewall tool lives in; the first that has `name`
/// (else `/usr/sbin/NAME`, which then reports as missing).
fn program(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new("/usr/sbin").join(name))
}

/// Why the rules could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The program is not installed.
    #[error("{} is not installed; install nftables (and iptables) to evaluate the firewall", .0.display())]
    Missing(PathBuf),
    /// The kernel refused: no root or `CAP_NET_ADMIN`.
    #[error(
        "{tool} was refused ({detail}): reading the firewall rules needs root or CAP_NET_ADMIN"
    )]
    Permission {
        /// The program.
        tool: String,
        /// What it said.
        detail: String,
    },
    /// It ran too long.
    #[error("{tool} did not finish within {secs} s")]
    Timeout {
        /// The program.
        tool: String,
        /// The limit.
        secs: u64,
    },
    /// It printed more than the cap.
    #[error("{tool} printed more than {limit} bytes, more than any ruleset lsports reads")]
    TooBig {
        /// The program.
        tool: String,
        /// The cap.
        limit: usize,
    },
    /// It failed, or could not be started.
    #[error("{tool} failed: {detail}")]
    Failed {
        /// The program.
        tool: String,
        /// Its exit status and what it said.
        detail: String,
    },
    /// What it printed is not what was expected.
    #[error("{tool}'s output is unreadable: {detail}")]
    Malformed {
        /// The program.
        tool: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// Read and compile the rules of the current network namespace.
pub fn load(sources: &Sources) -> Result<Ruleset, LoadError> {
    let json = run(sources, &sources.nft, &["-j", "list", "ruleset"])?;
    let mut legacy = Vec::new();
    for (i, (family, names)) in [
        (Family::Ipv4, "ip_tables_names"),
        (Family::Ipv6, "ip6_tables_names"),
    ]
    .into_iter()
    .enumerate()
    {
        let loaded = std::fs::read_to_string(sources.proc_net.join(names)).unwrap_or_default();
        if loaded.split_whitespace().next().is_some() {
            legacy.push((family, run(sources, &sources.legacy_save[i], &[])?));
        }
    }
    let xtables = |family: Family, table: &str| {
        let tool = &sources.xtables_save[usize::from(family == Family::Ipv6)];
        tool.is_file()
            .then(|| run(sources, tool, &["-t", table]).ok())
            .flatten()
    };
    // Only for a table with a `reject with tcp reset` whose family nft's JSON leaves out.
    let netlink = |family: &str, table: &str| {
        let args = ["--debug=netlink", "list", "table", family, table];
        run(sources, &sources.nft, &args).ok()
    };
    // Only when chains of equal priority from different tables might run either way.
    let hooks = || run(sources, &sources.nft, &["list", "hooks"]).ok();
    compile_listed(&json, xtables, &legacy, netlink, hooks)
}

/// Compile nft's JSON, with the iptables-nft-save text of a table that has `xt` rules (from
/// `xtables`, `None` leaves those rules `unknown`) and the iptables-legacy-save texts.
pub fn compile(
    nft_json: &[u8],
    xtables: impl Fn(Family, &str) -> Option<Vec<u8>>,
    legacy: &[(Family, Vec<u8>)],
) -> Result<Ruleset, LoadError> {
    compile_with(nft_json, xtables, legacy, |_, _| None)
}

/// [`compile`], with the netlink listing of an inet or netdev table (from `netlink`, by
/// family and name) that has a `reject with tcp reset` whose family the JSON leaves out
/// ([`nft::reset`]); `None` leaves that rule `unknown`.
pub fn compile_with(
    nft_json: &[u8],
    xtables: impl Fn(Family, &str) -> Option<Vec<u8>>,
    legacy: &[(Family, Vec<u8>)],
    netlink: impl Fn(&str, &str) -> Option<Vec<u8>>,
) -> Result<Ruleset, LoadError> {
    compile_listed(nft_json, xtables, legacy, netlink, || None)
}

/// [`compile_with`], with `nft list hooks` (from `hooks`, asked only when base chains of
/// different tables share a hook and priority: see [`super::order`]).
pub fn compile_listed(
    nft_json: &[u8],
    xtables: impl Fn(Family, &str) -> Option<Vec<u8>>,
    legacy: &[(Family, Vec<u8>)],
    netlink: impl Fn(&str, &str) -> Option<Vec<u8>>,
    hooks: impl Fn() -> Option<Vec<u8>>,
) -> Result<Ruleset, LoadError> {
    let malformed = |tool: &str, detail: String| LoadError::Malformed {
        tool: tool.into(),
        detail,
    };
    let mut tables = nft::parse(nft_json).map_err(|d| malformed("nft", d))?;
    for t in tables.iter_mut().filter(|t| nft::reset::needs_netlink(t)) {
        if let Some(text) = netlink(&t.family, &t.name) {
            nft::reset::resolve(t, &String::from_utf8_lossy(&text));
        }
    }
    for t in tables.iter_mut().filter(|t| t.has_xt) {
        let family = match t.family.as_str() {
            "ip" => Family::Ipv4,
            "ip6" => Family::Ipv6,
            _ => continue,
        };
        let Some(text) = xtables(family, &t.name) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        let parsed = ipt::parse(&text, family, "iptables-nft")
            .map_err(|d| malformed("iptables-nft-save", d))?;
        if let Some(found) = parsed.into_iter().find(|p| p.name == t.name) {
            t.chains = found.chains;
        }
    }
    for (family, text) in legacy {
        let text = String::from_utf8_lossy(text);
        tables.extend(
            ipt::parse(&text, *family, "iptables-legacy")
                .map_err(|d| malformed("iptables-legacy-save", d))?,
        );
    }
    let chains = merge(tables);
    let mut listed = super::order::Listed::default();
    if !super::order::orders(&chains, &listed).ties.is_empty() {
        if let Some(text) = hooks() {
            listed = super::order::Listed::parse(&String::from_utf8_lossy(&text));
        }
    }
    Ok(Ruleset::from_chains_listed(chains, &listed))
}

/// All tables' chains in one list, jump targets renumbered.
pub fn merge(tables: Vec<Table>) -> Vec<Chain> {
    let mut all = Vec::new();
    for (ti, t) in tables.into_iter().enumerate() {
        let offset = all.len();
        for mut chain in t.chains {
            if let Some(base) = &mut chain.base {
                base.table = ti;
            }
            for rule in &mut chain.rules {
                for step in &mut rule.steps {
                    if let Step::Verdict(a) = step {
                        shift(a, offset);
                    }
                }
            }
            all.push(chain);
        }
    }
    all
}

fn shift(a: &mut Action, offset: usize) {
    match a {
        Action::Jump(c) | Action::Goto(c) => *c += offset,
        Action::Choice(elems) => elems.iter_mut().for_each(|(_, a)| shift(a, offset)),
        _ => {}
    }
}

/// Run `tool` with `args`: its stdout, or why not.
pub fn run(sources: &Sources, tool: &Path, args: &[&str]) -> Result<Vec<u8>, LoadError> {
    let name = tool.file_name().map_or_else(
        || tool.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if !tool.is_file() {
        return Err(LoadError::Missing(tool.to_path_buf()));
    }
    let mut child = Command::new(tool)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LoadError::Failed {
            tool: name.clone(),
            detail: format!("cannot start {}: {e}", tool.display()),
        })?;
    let cap = sources.max_bytes;
    let full = Arc::new(AtomicBool::new(false));
    let out = capped_reader(child.stdout.take(), cap + 1, Some(full.clone()));
    let err = capped_reader(child.stderr.take(), 4096, None);
    let deadline = Instant::now() + sources.timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline || full.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(2));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default())
        .trim()
        .to_string();
    if stdout.len() > cap {
        return Err(LoadError::TooBig {
            tool: name,
            limit: cap,
        });
    }
    let Some(status) = status else {
        return Err(LoadError::Timeout {
            tool: name,
            secs: sources.timeout.as_secs(),
        });
    };
    if status.success() {
        return Ok(stdout);
    }
    if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        return Err(LoadError::Permission {
            tool: name,
            detail: first_line(&stderr),
        });
    }
    Err(LoadError::Failed {
        tool: name,
        detail: format!("{status}: {}", first_line(&stderr)),
    })
}

/// Read a pipe to its end or to `cap` bytes, on a thread.
/// `full` is set when the cap is reached, so the program can be stopped.
fn capped_reader(
    pipe: Option<impl Read + Send + 'static>,
    cap: usize,
    full: Option<Arc<AtomicBool>>,
) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = pipe {
            let _ = p.take(cap as u64).read_to_end(&mut buf);
        }
        if buf.len() >= cap {
            full.inspect(|f| f.store(true, Ordering::Relaxed));
        }
        buf
    })
}

/// The first line of a program's complaint, printable.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("no message");
    line.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}
