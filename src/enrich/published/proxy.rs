//! `docker-proxy` processes: Docker's userland proxy, one per published port and family,
//! started as `docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip
//! 172.17.0.2 -container-port 80`. Its arguments are the mapping.
//!
//! Anyone can start a process called `docker-proxy` with any arguments, so they are parsed
//! strictly (every value must be an address, a port or a known protocol, every flag one
//! docker-proxy has) and anything else is refused with the argument escaped, never shown raw.

use std::net::IpAddr;

use crate::model::published::{Landing, Published, PublishedBy, PublishedKind};
use crate::model::{Family, Protocol};
use crate::sys::procroot::ProcRoot;
use crate::text::sanitize::terminal_safe;

/// The program's name, as its `argv[0]` ends or its `comm` reads.
pub const NAME: &str = "docker-proxy";
/// More arguments than docker-proxy ever takes: the command line is not one.
const MAX_ARGS: usize = 32;

/// Why a `docker-proxy` command line was not read as a published port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// A flag docker-proxy does not have, or a value where a flag was expected.
    #[error("unexpected argument {0:?}")]
    Unexpected(String),
    /// A flag without its value.
    #[error("{0} has no value")]
    NoValue(String),
    /// A value that is not what the flag takes.
    #[error("{flag} {value:?} is not {what}")]
    Invalid {
        /// The flag.
        flag: String,
        /// Its value, escaped.
        value: String,
        /// What it should be.
        what: &'static str,
    },
    /// A required flag is missing.
    #[error("no {0}")]
    Missing(&'static str),
    /// Too many arguments.
    #[error("more than {MAX_ARGS} arguments")]
    TooMany,
}

/// What one command line says.
#[derive(Debug, Default)]
struct Args {
    proto: Option<Protocol>,
    host_ip: Option<IpAddr>,
    host_port: Option<u16>,
    container_ip: Option<IpAddr>,
    container_port: Option<u16>,
}

/// The published port a `docker-proxy` command line (`cmdline`: arguments separated by NUL)
/// describes. `pid` names it in `by`.
pub fn parse(cmdline: &[u8], pid: u32) -> Result<Published, ProxyError> {
    // A process that rewrote its own title pads the rest of its argument area with NULs:
    // they end the arguments, they are not empty ones.
    let end = cmdline.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let argv: Vec<&[u8]> = cmdline[..end].split(|&b| b == 0).collect();
    if argv.len() > MAX_ARGS {
        return Err(ProxyError::TooMany);
    }
    let mut args = Args::default();
    let mut rest = argv.iter().skip(1);
    while let Some(word) = rest.next() {
        let word = text(word)?;
        let (flag, inline) = flag(&word)?;
        if flag == "use-listen-fd" {
            continue;
        }
        let value = match inline {
            Some(v) => v.to_string(),
            None => text(
                rest.next()
                    .ok_or_else(|| ProxyError::NoValue(flag.into()))?,
            )?,
        };
        args.set(flag, &value)?;
    }
    args.published(pid)
}

/// An argument as text; bytes that are not UTF-8 are refused, escaped.
fn text(word: &[u8]) -> Result<String, ProxyError> {
    std::str::from_utf8(word)
        .map(str::to_string)
        .map_err(|_| ProxyError::Unexpected(terminal_safe(word).into_owned()))
}

/// `-flag`, `--flag` or `-flag=value` (Go's flag syntax): the name and the inline value.
fn flag(word: &str) -> Result<(&str, Option<&str>), ProxyError> {
    let name = word
        .strip_prefix("--")
        .or_else(|| word.strip_prefix('-'))
        .ok_or_else(|| ProxyError::Unexpected(terminal_safe(word.as_bytes()).into_owned()))?;
    Ok(match name.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    })
}

impl Args {
    /// Record one flag's value.
    fn set(&mut self, flag: &str, value: &str) -> Result<(), ProxyError> {
        let invalid = |what| ProxyError::Invalid {
            flag: format!("-{flag}"),
            value: terminal_safe(value.as_bytes()).into_owned(),
            what,
        };
        let ip = || value.parse::<IpAddr>().map_err(|_| invalid("an address"));
        let port = || {
            value
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0 && value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| invalid("a port"))
        };
        match flag {
            "proto" => {
                self.proto = Some(match value {
                    "tcp" | "tcp4" | "tcp6" => Protocol::Tcp,
                    "udp" | "udp4" | "udp6" => Protocol::Udp,
                    _ => return Err(invalid("tcp or udp")),
                })
            }
            "host-ip" => self.host_ip = Some(ip()?),
            "host-port" => self.host_port = Some(port()?),
            "container-ip" => self.container_ip = Some(ip()?),
            "container-port" => self.container_port = Some(port()?),
            _ => {
                let shown = terminal_safe(flag.as_bytes()).into_owned();
                return Err(ProxyError::Unexpected(format!("-{shown}")));
            }
        }
        Ok(())
    }

    /// The published port, when every flag it needs was given.
    fn published(self, pid: u32) -> Result<Published, ProxyError> {
        let host_port = self.host_port.ok_or(ProxyError::Missing("-host-port"))?;
        let target = self
            .container_ip
            .ok_or(ProxyError::Missing("-container-ip"))?;
        let target_port = self
            .container_port
            .ok_or(ProxyError::Missing("-container-port"))?;
        // The family of the host side, which the proxy listens on: Docker starts one with
        // `-host-ip ::` for an IPv4 container too, and relays between the two.
        let host_addr = self.host_ip.unwrap_or(match target {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u16; 8]),
        });
        let family = if host_addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        Ok(Published {
            protocol: self.proto.unwrap_or(Protocol::Tcp),
            family,
            netns: None,
            host_addr,
            host_port,
            target_addr: Some(target),
            target_port,
            by: vec![PublishedBy {
                kind: PublishedKind::DockerProxy,
                text: format!("{NAME} pid {pid}"),
                pid: Some(pid),
            }],
            landing: Landing::NotSeen,
            reach: Vec::new(),
        })
    }
}

/// Whether the process whose `comm` is `comm` and command line `cmdline` is a docker-proxy.
pub fn is_proxy(comm: &[u8], cmdline: &[u8]) -> bool {
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    base == NAME.as_bytes() || comm.strip_suffix(b"\n").unwrap_or(comm) == NAME.as_bytes()
}

/// Every docker-proxy under `root`, as published ports; the ones whose arguments could not
/// be read are said in `warnings`. A process that vanished is skipped.
pub fn scan(root: &ProcRoot, warnings: &mut Vec<String>) -> Vec<Published> {
    let Ok(pids) = root.pids() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for pid in pids {
        let comm = root.read_file(&format!("{pid}/comm")).unwrap_or_default();
        let Ok(cmdline) = root.read_file(&format!("{pid}/cmdline")) else {
            continue;
        };
        if !is_proxy(&comm, &cmdline) {
            continue;
        }
        match parse(&cmdline, pid) {
            Ok(p) => found.push(p),
            Err(why) => warnings.push(format!(
                "{NAME} pid {pid}: its arguments are not a published port ({why})"
            )),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&[u8]]) -> Vec<u8> {
        words
            .iter()
            .flat_map(|w| w.iter().chain(b"\0"))
            .copied()
            .collect()
    }

    #[test]
    fn docker_arguments_are_the_mapping() {
        let line = args(&[
            b"/usr/bin/docker-proxy",
            b"-proto",
            b"tcp",
            b"-host-ip",
            b"0.0.0.0",
            b"-host-port",
            b"8080",
            b"-container-ip",
            b"172.17.0.2",
            b"-container-port",
            b"80",
            b"-use-listen-fd",
        ]);
        assert!(is_proxy(b"docker-proxy\n", &line));
        let p = parse(&line, 42).unwrap();
        assert_eq!(p.protocol, Protocol::Tcp);
        assert_eq!(p.host_addr, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!((p.host_port, p.target_port), (8080, 80));
        assert_eq!(p.target_addr, Some("172.17.0.2".parse().unwrap()));
        assert_eq!(p.by[0].text, "docker-proxy pid 42");
        let udp6 = args(&[
            b"docker-proxy",
            b"--proto=udp",
            b"-host-ip=::",
            b"-host-port=53",
            b"-container-ip=fd00::2",
            b"-container-port=5353",
        ]);
        let to_v4 = args(&[
            b"docker-proxy",
            b"-proto",
            b"tcp",
            b"-host-ip",
            b"::",
            b"-host-port",
            b"8080",
            b"-container-ip",
            b"172.17.0.2",
            b"-container-port",
            b"80",
        ]);
        let p = parse(&to_v4, 8).unwrap();
        assert_eq!(p.family, Family::Ipv6, "the host side's family");
        assert_eq!(p.target_addr, Some("172.17.0.2".parse().unwrap()));
        let mut padded = udp6.clone();
        padded.extend([0; 40]);
        let p = parse(&padded, 7).unwrap();
        assert_eq!((p.protocol, p.family), (Protocol::Udp, Family::Ipv6));
        assert_eq!((p.host_port, p.target_port), (53, 5353));
    }

    #[test]
    fn hostile_arguments_are_refused_escaped() {
        let bad = args(&[
            b"docker-proxy",
            b"-host-port",
            b"80",
            b"-container-ip",
            b"\x1b[31mevil\x07",
            b"-container-port",
            b"80",
        ]);
        let why = parse(&bad, 1).unwrap_err().to_string();
        assert!(!why.contains('\x1b') && !why.contains('\x07'), "{why:?}");
        assert!(why.contains("-container-ip"), "{why}");
        for words in [
            &[&b"docker-proxy"[..], b"-host-port", b"+80"][..],
            &[b"docker-proxy", b"-host-port", b"0"],
            &[b"docker-proxy", b"-host-port", b"65536"],
            &[b"docker-proxy", b"-host-port"],
            &[b"docker-proxy", b"stray"],
            &[b"docker-proxy", b"-exec", b"sh"],
            &[b"docker-proxy", b"-proto", b"sctp"],
            &[b"docker-proxy", b"-\xff\xfe"],
            &[b"docker-proxy", b"", b"-host-port", b"80"],
            &[
                b"docker-proxy",
                b"-host-port",
                b"80",
                b"-container-ip",
                b"10.0.0.1",
            ],
        ] {
            let line = args(words);
            let why = parse(&line, 1).expect_err("refused");
            assert!(!why.to_string().chars().any(char::is_control), "{why:?}");
        }
        let many: Vec<&[u8]> = std::iter::repeat_n(&b"-use-listen-fd"[..], 40).collect();
        assert_eq!(parse(&args(&many), 1).unwrap_err(), ProxyError::TooMany);
    }

    #[test]
    fn only_docker_proxy_is_read() {
        assert!(!is_proxy(b"python3\n", &args(&[b"python3", b"-host-port"])));
        assert!(is_proxy(b"python3\n", &args(&[b"/opt/x/docker-proxy"])));
        assert!(!is_proxy(b"x\n", &args(&[b"/docker-proxy/x"])));
    }
}
