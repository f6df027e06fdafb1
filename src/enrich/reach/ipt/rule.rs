//! One `-A CHAIN …` line of iptables-save compiled into steps. Evaluated: `-p`, `-s`, `-d`,
//! `-i`, `-o`, and the modules tcp/udp (`--dport`), multiport (`--dports`), conntrack
//! (`--ctstate`, `--ctstatus`), state, addrtype (`--dst-type`), mark, comment; limit,
//! hashlimit, connlimit and recent are conditions; targets ACCEPT, DROP, REJECT, RETURN, user
//! chains (`-j`, `-g`), DNAT, REDIRECT, MARK, NOTRACK/CT --notrack, and LOG-like targets that
//! do not decide. Everything else is `unknown`, named by the rule's text.

use std::collections::HashMap;
use std::net::IpAddr;

use super::super::ranges::{RangeSet, addr_num, prefix_range};
use super::super::rules::{Action, BitsField, CondKind, Effect, Field, Match, Step};
use crate::model::Family;

/// The compiled rule: its chain's index and its steps; `None` when the chain is undeclared.
pub fn compile(
    line: &str,
    family: Family,
    chains: &HashMap<String, usize>,
) -> Option<(usize, Vec<Step>)> {
    let words = split(line);
    let mut r = Reader {
        words: &words,
        i: 0,
        family,
        proto: None,
        steps: vec![],
        action: None,
        module: None,
        chains,
    };
    while r.i < r.words.len() {
        if let Err(why) = r.option() {
            r.steps.push(Step::Verdict(Action::Unknown(why.into())));
            r.action = None;
            break;
        }
    }
    let chain = words
        .iter()
        .position(|w| w == "-A")
        .and_then(|i| words.get(i + 1))?;
    let ci = *chains.get(chain.as_str())?;
    let mut steps = r.steps;
    steps.extend(r.action.map(Step::Verdict));
    Some((ci, steps))
}

struct Reader<'a> {
    words: &'a [String],
    i: usize,
    family: Family,
    /// The protocol `-p` named, for port matches.
    proto: Option<u8>,
    steps: Vec<Step>,
    action: Option<Action>,
    /// The module the last `-m` loaded.
    module: Option<String>,
    chains: &'a HashMap<String, usize>,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<String, String> {
        let w = self
            .words
            .get(self.i)
            .cloned()
            .ok_or("an option without its value")?;
        self.i += 1;
        Ok(w)
    }

    fn push(&mut self, m: Match) {
        self.steps.push(Step::Match(m));
    }

    fn cond(&mut self, kind: CondKind, text: String) {
        self.push(Match::Cond {
            kind,
            text: text.into(),
        });
    }

    /// Read one option (with a preceding `!`) and its values.
    fn option(&mut self) -> Result<(), String> {
        let mut opt = self.next()?;
        let neg = opt == "!";
        if neg {
            opt = self.next()?;
        }
        match opt.as_str() {
            "-A" => {
                self.next()?;
            }
            "-c" => {
                self.next()?;
                self.next()?;
            }
            w if w.starts_with('[') => {}
            "-p" | "--protocol" => self.protocol(neg)?,
            "-s" | "--source" => self.address(neg, true)?,
            "-d" | "--destination" => self.address(neg, false)?,
            "-i" | "--in-interface" => {
                let name = self.next()?;
                let name = name
                    .strip_suffix('+')
                    .map_or(name.clone(), |p| format!("{p}*"));
                self.push(Match::Iface {
                    names: vec![name],
                    neg,
                });
            }
            // Only a forwarded packet has an output interface.
            "-o" | "--out-interface" => {
                let name = self.next()?;
                let name = name
                    .strip_suffix('+')
                    .map_or(name.clone(), |p| format!("{p}*"));
                self.push(Match::Oif {
                    names: vec![name],
                    neg,
                });
            }
            "-m" | "--match" => self.module = Some(self.next()?),
            "-j" | "--jump" => self.target(false)?,
            "-g" | "--goto" => self.target(true)?,
            _ => self.module_option(&opt, neg)?,
        }
        Ok(())
    }

    fn protocol(&mut self, neg: bool) -> Result<(), String> {
        let p = self.next()?;
        let n: Option<u8> = match p.as_str() {
            "tcp" => Some(6),
            "udp" => Some(17),
            "icmp" => Some(1),
            "ipv6-icmp" | "icmpv6" => Some(58),
            "sctp" => Some(132),
            "all" | "0" => return Ok(()),
            other => other.parse().ok(),
        };
        let n = n.ok_or_else(|| format!("protocol {p} is not evaluated"))?;
        if !neg {
            self.proto = Some(n);
        }
        self.push(Match::Values {
            field: Field::L4proto,
            set: RangeSet::point(n.into()),
            neg,
        });
        Ok(())
    }

    fn address(&mut self, neg: bool, source: bool) -> Result<(), String> {
        let text = self.next()?;
        let mut parts = Vec::new();
        for a in text.split(',') {
            parts
                .push(cidr(a, self.family).ok_or_else(|| format!("address {a} is not evaluated"))?);
        }
        let field = if source {
            Field::Saddr(self.family)
        } else {
            Field::Daddr(self.family)
        };
        self.push(Match::Values {
            field,
            set: RangeSet::from_ranges(parts),
            neg,
        });
        Ok(())
    }

    /// An option of the module loaded last.
    fn module_option(&mut self, opt: &str, neg: bool) -> Result<(), String> {
        let module = self.module.clone().unwrap_or_default();
        let shown = |v: &str| format!("{}-m {module} {opt} {v}", if neg { "! " } else { "" });
        match (module.as_str(), opt) {
            (_, "--dport" | "--destination-port" | "--dports" | "--destination-ports") => {
                let v = self.next()?;
                let set = ports(&v).ok_or_else(|| format!("ports {v} are not evaluated"))?;
                let field = Field::Dport(self.proto.filter(|p| [6, 17, 132, 33, 136].contains(p)));
                self.push(Match::Values { field, set, neg });
            }
            (_, "--sport" | "--source-port" | "--sports" | "--source-ports" | "--ports") => {
                let v = self.next()?;
                self.cond(CondKind::Sport, shown(&v));
            }
            ("conntrack", "--ctstate") | ("state", "--state") => {
                self.ct(BitsField::CtState, neg)?
            }
            ("conntrack", "--ctstatus") => self.ct(BitsField::CtStatus, neg)?,
            ("tcp", "--tcp-flags" | "--syn") => {
                let (mask, comp) = match opt {
                    "--syn" => ("FIN,SYN,RST,ACK".to_string(), "SYN".to_string()),
                    _ => (self.next()?, self.next()?),
                };
                let (Some(m), Some(c)) = (tcp_flag_bits(&mask), tcp_flag_bits(&comp)) else {
                    self.cond(CondKind::Unknown, shown(&format!("{mask} {comp}")));
                    return Ok(());
                };
                self.push(Match::TcpFlags {
                    mask: m,
                    value: c & m,
                    any: false,
                    neg,
                    text: shown(&format!("{mask} {comp}")).into(),
                });
            }
            ("addrtype", "--dst-type") => {
                let v = self.next()?;
                let local = v.split(',').any(|t| t == "LOCAL");
                self.push(Match::Const(local != neg));
            }
            ("mark", "--mark") => {
                let v = self.next()?;
                let n = parse_u32(&v).ok_or_else(|| format!("mark {v} is not evaluated"))?;
                self.push(Match::Values {
                    field: Field::Mark,
                    set: RangeSet::point(n.into()),
                    neg,
                });
            }
            // IPv6 routing headers (ufw drops type 0): a new connection's first packet from
            // outside carries none, which is the packet evaluated.
            ("rt", _) => {
                self.module_rest();
                self.push(Match::Const(neg));
            }
            ("comment", "--comment") => {
                self.next()?;
            }
            ("limit" | "hashlimit" | "connlimit" | "recent", _) => {
                let rest = self.module_rest();
                self.cond(CondKind::Limit, shown(&rest));
            }
            _ => {
                let rest = self.module_rest();
                self.cond(CondKind::Unknown, shown(&rest));
            }
        }
        Ok(())
    }

    /// The rest of a module's options (up to the next `-m`, target or basic match), as one
    /// condition's text.
    fn module_rest(&mut self) -> String {
        const NEXT: [&str; 12] = [
            "-m", "--match", "-j", "--jump", "-g", "--goto", "-p", "-s", "-d", "-i", "-o", "!",
        ];
        let start = self.i;
        while self
            .words
            .get(self.i)
            .is_some_and(|w| !NEXT.contains(&w.as_str()))
        {
            self.i += 1;
        }
        self.words[start..self.i].join(" ")
    }

    fn ct(&mut self, field: BitsField, neg: bool) -> Result<(), String> {
        let v = self.next()?;
        let mut mask = 0;
        for s in v.split(',') {
            mask |= ct_bit(field, s).ok_or_else(|| format!("conntrack {s} is not evaluated"))?;
        }
        self.push(Match::Bits { field, mask, neg });
        Ok(())
    }

    /// `-j TARGET [options]` or `-g CHAIN`.
    fn target(&mut self, goto: bool) -> Result<(), String> {
        let t = self.next()?;
        let rest: Vec<String> = self.words[self.i..].to_vec();
        self.i = self.words.len();
        let opt = |name: &str| {
            rest.iter()
                .position(|w| w == name)
                .and_then(|i| rest.get(i + 1))
                .cloned()
        };
        let action = match t.as_str() {
            "ACCEPT" => Action::Accept,
            "DROP" => Action::Drop,
            "REJECT" => Action::Reject,
            "RETURN" => Action::Return,
            "DNAT" => dnat(opt("--to-destination").as_deref(), self.family),
            "REDIRECT" => match opt("--to-ports") {
                None => Action::Redirect { port: None },
                Some(p) => p.parse().map_or_else(
                    |_| Action::Unknown(format!("redirect to ports {p}").into()),
                    |p| Action::Redirect { port: Some(p) },
                ),
            },
            "MASQUERADE" | "SNAT" => Action::Accept,
            "MARK" => return self.mark(opt("--set-mark").or(opt("--set-xmark"))),
            "NOTRACK" => return self.effect(Effect::Notrack),
            "CT" if rest.iter().any(|w| w == "--notrack") => return self.effect(Effect::Notrack),
            "LOG" | "NFLOG" | "ULOG" | "CT" | "CONNMARK" | "TCPMSS" | "TRACE" | "AUDIT" => {
                return Ok(());
            }
            chain => match self.chains.get(chain) {
                Some(&c) if goto => Action::Goto(c),
                Some(&c) => Action::Jump(c),
                None => Action::Unknown(format!("target {chain} is not evaluated").into()),
            },
        };
        self.action = Some(action);
        Ok(())
    }

    /// A statement that changes the packet; the rule goes on.
    fn effect(&mut self, e: Effect) -> Result<(), String> {
        self.steps.push(Step::Effect(e));
        Ok(())
    }

    fn mark(&mut self, value: Option<String>) -> Result<(), String> {
        let v = value.unwrap_or_default();
        let (n, mask) = v
            .split_once('/')
            .map_or((v.as_str(), None), |(n, m)| (n, Some(m)));
        match (parse_u32(n), mask.map(parse_u32)) {
            (Some(n), None | Some(Some(0xffff_ffff))) => self.effect(Effect::SetMark(n)),
            _ => Err(format!("MARK {v} is not evaluated")),
        }
    }
}

/// DNAT's `--to-destination ADDR[:PORT]`.
fn dnat(to: Option<&str>, family: Family) -> Action {
    let unknown = |to: &str| Action::Unknown(format!("DNAT to {to} is not evaluated").into());
    let Some(to) = to else {
        return unknown("nothing");
    };
    let (addr, port) = match to.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .map_or((rest, ""), |(a, p)| (a, p.trim_start_matches(':'))),
        None if family == Family::Ipv4 => to.split_once(':').unwrap_or((to, "")),
        None => (to, ""),
    };
    let addr = if addr.is_empty() {
        None
    } else {
        addr.parse::<IpAddr>().ok()
    };
    let port = if port.is_empty() {
        None
    } else {
        port.parse::<u16>().ok()
    };
    match (addr, port) {
        (None, None) => unknown(to),
        (addr, port) => Action::Dnat { addr, port },
    }
}

/// `192.0.2.0/24`, `192.0.2.0/255.255.255.0` or an address, as a range.
fn cidr(text: &str, family: Family) -> Option<(u128, u128)> {
    let (a, len) = text
        .split_once('/')
        .map_or((text, None), |(a, l)| (a, Some(l)));
    let addr: IpAddr = a.parse().ok()?;
    if addr.is_ipv4() != (family == Family::Ipv4) {
        return None;
    }
    let len = match len {
        None => {
            if addr.is_ipv4() {
                32
            } else {
                128
            }
        }
        Some(l) => match l.parse::<u8>() {
            Ok(n) => n,
            Err(_) => mask_len(l.parse().ok()?)?,
        },
    };
    let _ = addr_num(addr);
    Some(prefix_range(addr, len))
}

/// The prefix length of a contiguous dotted netmask.
fn mask_len(mask: IpAddr) -> Option<u8> {
    let n = match mask {
        IpAddr::V4(m) => u32::from(m),
        IpAddr::V6(_) => return None,
    };
    (n.leading_ones() + n.trailing_zeros() == 32).then_some(n.leading_ones() as u8)
}

/// `22`, `1000:2000`, `22,80,1000:2000` as a port set.
fn ports(text: &str) -> Option<RangeSet> {
    let mut parts = Vec::new();
    for p in text.split(',') {
        let (lo, hi) = p.split_once(':').unwrap_or((p, p));
        let lo: u16 = if lo.is_empty() { 0 } else { lo.parse().ok()? };
        let hi: u16 = if hi.is_empty() {
            u16::MAX
        } else {
            hi.parse().ok()?
        };
        parts.push((lo.into(), hi.into()));
    }
    Some(RangeSet::from_ranges(parts))
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The bit of a conntrack state or status name.
fn ct_bit(field: BitsField, s: &str) -> Option<u32> {
    let table: &[(&str, u32)] = match field {
        BitsField::CtState => &[
            ("INVALID", 1),
            ("ESTABLISHED", 2),
            ("RELATED", 4),
            ("NEW", 8),
            ("UNTRACKED", 64),
        ],
        BitsField::CtStatus => &[
            ("EXPECTED", 1),
            ("SEEN_REPLY", 2),
            ("ASSURED", 4),
            ("CONFIRMED", 8),
            ("SNAT", 16),
            ("DNAT", 32),
        ],
    };
    table.iter().find(|(n, _)| *n == s).map(|(_, b)| *b)
}

/// Split a line into words as iptables-save quotes them (`--comment "a b"`, `\"`).
fn split(line: &str) -> Vec<String> {
    let (mut words, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            '"' => {
                quoted = !quoted;
                any = true;
                continue;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() || any {
                    words.push(std::mem::take(&mut cur));
                }
                any = false;
                continue;
            }
            c => cur.push(c),
        }
        any = true;
    }
    if !cur.is_empty() || any {
        words.push(cur);
    }
    words
}

/// `FIN,SYN,RST,ACK`, `ALL`, `NONE` as iptables names TCP flags.
fn tcp_flag_bits(names: &str) -> Option<u8> {
    names.split(',').try_fold(0u8, |acc, n| {
        let bit = match n {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            "ECE" => 0x40,
            "CWR" => 0x80,
            "ALL" => 0xff,
            "NONE" => 0,
            _ => return None,
        };
        Some(acc | bit)
    })
}
