//! The evaluator: follow one packet through every base chain on the ingress, prerouting and
//! input hooks (forward instead of input, for a packet whose DNAT to another host it follows;
//! input with the new port, for one DNAT-ed or redirected to this host: [`Follow`]), in
//! the kernel's order, splitting the path wherever a match depends on what the question leaves
//! open, and combine where the paths end into one [`Reach`].

use std::sync::Arc;

use super::merge::merge;
use super::path::{CT_STATUS_DNAT, Path};
use super::ranges::{RangeSet, addr_num};
use super::rules::{Action, Chain, CondKind, Effect, Field, Hook, Match, Rule, Step};
use super::verdict::{Packet, Reach, Verdict};
use crate::model::Protocol;

/// More paths than this and the verdict is `unknown`: a ruleset that forks on every rule
/// would otherwise take exponential time.
pub const MAX_PATHS: usize = 4096;
/// Deeper jumps than this are a loop nft would have refused; say `unknown`.
const MAX_DEPTH: usize = 64;

/// How a path leaves a chain.
#[derive(Debug, Clone)]
enum Flow {
    /// Off the end, or `return`: back to the caller, or the policy.
    Return,
    /// Accepted by this base chain: on to the next one.
    Accept(Arc<str>),
    /// The packet's fate is sealed here.
    Final(End, Arc<str>),
}

/// How a path ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Accept,
    Drop,
    Reject,
    Unknown,
}

/// One evaluation of one packet.
pub struct Eval<'a> {
    chains: &'a [Chain],
    paths: usize,
    follow: Option<&'a Follow>,
}

/// A DNAT or redirect target whose packets the evaluation follows (a published port's),
/// instead of ending their path as not this listener's: through the forward hook when the
/// target is another host, through the input hook with the new port when it is this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// The target address; `None` for a redirect (to this host, the address unchanged).
    pub addr: Option<std::net::IpAddr>,
    /// The target port.
    pub port: u16,
    /// The interface the host routes the target through; `None` when unknown (then a match
    /// on the output interface is `unknown`).
    pub oif: Option<String>,
    /// Whether the target is one of this host's own addresses (always, for a redirect): the
    /// kernel then delivers the rewritten packet locally, so it passes the input hook, where
    /// a rule on the target port decides it, not forward.
    pub local: bool,
}

impl<'a> Eval<'a> {
    /// An evaluation over `chains`.
    pub fn new(chains: &'a [Chain]) -> Eval<'a> {
        Eval {
            chains,
            paths: 0,
            follow: None,
        }
    }

    /// The same evaluation, following a DNAT to `follow` into the forward hook.
    pub fn following(self, follow: &'a Follow) -> Eval<'a> {
        Eval {
            follow: Some(follow),
            ..self
        }
    }

    /// The verdict for `packet`, passing the base chains `order` (already sorted by hook and
    /// priority). For TCP, where the first packet (the SYN) is accepted, the client's ACK that
    /// completes the handshake (`ct state established`, same source and interface) must get
    /// through too: a listener whose clients cannot finish the handshake is not reached.
    pub fn run(&mut self, packet: &Packet, order: &[usize]) -> Reach {
        let start = Path::start(packet, false);
        let Some(syn) = self.walk(start.clone(), order) else {
            return self.too_many(packet);
        };
        if packet.proto != Protocol::Tcp {
            return combine(packet, &start, self.forwarded_first(syn));
        }
        let mut ended = Vec::new();
        for (p, end, by) in syn {
            if end != End::Accept {
                ended.push((p, end, by));
                continue;
            }
            let Some(ack) = self.walk(p.handshake_ack(), order) else {
                return self.too_many(packet);
            };
            for (q, e, ack_by) in ack {
                let by = match e {
                    End::Accept => by.clone(),
                    _ => format!("the handshake's ACK (ct state established): {ack_by}").into(),
                };
                ended.push((q, e, by));
            }
        }
        combine(packet, &start, self.forwarded_first(ended))
    }

    /// When following a DNAT, its paths first: the verdict of a published port is named by
    /// what its own packets met, not by a packet that went to the host's port instead.
    fn forwarded_first(&self, mut ended: Vec<(Path, End, Arc<str>)>) -> Vec<(Path, End, Arc<str>)> {
        if self.follow.is_some() {
            ended.sort_by_key(|(p, _, _)| !p.followed);
        }
        ended
    }

    /// Where the paths starting as `start` end after every base chain; `None` past
    /// [`MAX_PATHS`]. An established packet skips the `nat` chains (first packets only).
    fn walk(&mut self, start: Path, order: &[usize]) -> Option<Vec<(Path, End, Arc<str>)>> {
        let (family, established) = (start.family, start.established);
        let mut live = vec![start];
        let mut ended: Vec<(Path, End, Arc<str>)> = Vec::new();
        for &ci in order {
            let chain = &self.chains[ci];
            let base = chain.base.as_ref().expect("order holds base chains");
            if !chain.family.sees(family) || (established && base.nat) {
                continue;
            }
            // A forwarded packet passes the forward hook, any other the input hook.
            let (mut entering, mut skipping): (Vec<Path>, Vec<Path>) = match base.hook {
                Hook::Input => live.into_iter().partition(|p| !p.forwarded),
                Hook::Forward => live.into_iter().partition(|p| p.forwarded),
                _ => (live, Vec::new()),
            };
            if let Some(dev) = &base.device {
                let m = Match::Iface {
                    names: vec![dev.clone()],
                    neg: false,
                };
                let (dev_in, dev_out) = self.split_all(&m, entering);
                entering = dev_in;
                skipping.extend(dev_out);
            }
            live = skipping;
            let policy: Arc<str> = format!(
                "{} policy {}",
                chain.label,
                if base.policy_drop { "drop" } else { "accept" }
            )
            .into();
            for mut p in entering {
                p.enter(base.hook, base.prio);
                p.last_policy = Some(policy.clone());
                for (mut q, flow) in self.chain(ci, p, 0) {
                    match flow {
                        Flow::Return if base.policy_drop => {
                            ended.push((q, End::Drop, policy.clone()))
                        }
                        Flow::Return => live.push(q),
                        Flow::Accept(by) => {
                            q.accepted_by.get_or_insert(by);
                            live.push(q);
                        }
                        Flow::Final(end, by) => ended.push((q, end, by)),
                    }
                }
            }
            if self.paths > MAX_PATHS {
                return None;
            }
        }
        let default: Arc<str> = "no rule on the input path of this family".into();
        for p in live {
            let by = (p.accepted_by.clone())
                .or_else(|| p.last_policy.clone())
                .unwrap_or_else(|| default.clone());
            ended.push((p, End::Accept, by));
        }
        Some(ended)
    }

    /// The verdict when the paths ran out.
    fn too_many(&self, packet: &Packet) -> Reach {
        Reach::new(
            Verdict::Unknown,
            packet.family,
            format!("the ruleset forks into more than {MAX_PATHS} cases for this packet"),
        )
    }

    /// Where the paths entering chain `ci` leave it.
    fn chain(&mut self, ci: usize, path: Path, depth: usize) -> Vec<(Path, Flow)> {
        let chain = &self.chains[ci];
        if depth > MAX_DEPTH {
            let by: Arc<str> =
                format!("{}: jumps nested deeper than {MAX_DEPTH}", chain.label).into();
            return vec![(path, Flow::Final(End::Unknown, by))];
        }
        let mut live = vec![path];
        let mut out = Vec::new();
        // A redirect to its own port keeps the port; any other ends the path, so every path
        // in a chain has the port it entered with.
        let port = live[0].dport;
        for &ri in chain.index.candidates(port) {
            let rule = &chain.rules[ri as usize];
            if live.is_empty() || self.paths > MAX_PATHS {
                break;
            }
            if live.iter().all(|p| passes_by(rule, p)) {
                continue;
            }
            let mut next = Vec::new();
            for p in live {
                self.rule(rule, p, depth, &mut next, &mut out);
            }
            live = next;
        }
        out.extend(live.into_iter().map(|p| (p, Flow::Return)));
        out
    }

    /// Run one rule on one path: paths that go on to the next rule into `next`, paths that
    /// leave the chain into `out`.
    fn rule(
        &mut self,
        rule: &Rule,
        path: Path,
        depth: usize,
        next: &mut Vec<Path>,
        out: &mut Vec<(Path, Flow)>,
    ) {
        let mut cur = vec![path];
        for step in &rule.steps {
            match step {
                Step::Match(m) => {
                    let (hold, fail) = self.split_all(m, cur);
                    next.extend(fail);
                    cur = hold;
                }
                Step::Effect(e) => cur.iter_mut().for_each(|p| apply(e, p)),
                Step::Verdict(a) => {
                    for p in cur {
                        self.action(a, &rule.by, p, depth, next, out);
                    }
                    return;
                }
            }
        }
        next.extend(cur);
    }

    /// Apply a verdict to one path.
    fn action(
        &mut self,
        a: &Action,
        by: &Arc<str>,
        p: Path,
        depth: usize,
        next: &mut Vec<Path>,
        out: &mut Vec<(Path, Flow)>,
    ) {
        match a {
            Action::Accept => out.push((p, Flow::Accept(by.clone()))),
            Action::Drop => out.push((p, Flow::Final(End::Drop, by.clone()))),
            Action::Reject => out.push((p, Flow::Final(End::Reject, by.clone()))),
            Action::Return => out.push((p, Flow::Return)),
            Action::Unknown(why) => {
                out.push((p, Flow::Final(End::Unknown, format!("{by} ({why})").into())));
            }
            Action::Jump(c) => {
                for (q, flow) in self.chain(*c, p, depth + 1) {
                    match flow {
                        Flow::Return => next.push(q),
                        other => out.push((q, other)),
                    }
                }
            }
            Action::Goto(c) => out.extend(self.chain(*c, p, depth + 1)),
            Action::Choice(elems) => {
                let mut rest = vec![p];
                for (ms, act) in elems {
                    let (hold, fail) = self.split_conj(ms, rest);
                    rest = fail;
                    for q in hold {
                        self.action(act, by, q, depth, next, out);
                    }
                }
                next.extend(rest);
            }
            Action::Dnat { addr, port } => self.nat(*addr, *port, by, p, out),
            Action::Redirect { port } => self.nat(None, *port, by, p, out),
        }
    }

    /// A dnat or redirect: on to the input hook when it keeps the destination (then it acts as
    /// this chain's accept); elsewhere the packet leaves this listener's path.
    fn nat(
        &mut self,
        addr: Option<std::net::IpAddr>,
        port: Option<u16>,
        by: &Arc<str>,
        mut p: Path,
        out: &mut Vec<(Path, Flow)>,
    ) {
        let same_addr = addr.is_none_or(|a| p.daddr == RangeSet::point(addr_num(a)));
        let same_port = port.is_none_or(|n| n == p.dport);
        if same_addr && same_port {
            p.ct_status |= CT_STATUS_DNAT;
            out.push((p, Flow::Accept(by.clone())));
            return;
        }
        let to_port = port.unwrap_or(p.dport);
        if let Some(follow) = self.follow.filter(|f| addr == f.addr && f.port == to_port) {
            p.ct_status |= CT_STATUS_DNAT;
            let target = match follow.addr {
                Some(a) => RangeSet::point(addr_num(a)),
                // A redirect sends it to an address of the interface it came in on.
                None => p.daddr.clone(),
            };
            p.before_nat = Some((std::mem::replace(&mut p.daddr, target), p.dport));
            p.dport = to_port;
            p.followed = true;
            // To another host: the forward hook, out through its route. To this host: the
            // input hook, as a packet sent to the target port (its rules decide).
            if !follow.local {
                p.forwarded = true;
                p.oif = follow.oif.clone();
            }
            out.push((p, Flow::Accept(by.clone())));
            return;
        }
        let to = match (addr, port) {
            (Some(a), Some(n)) => format!("forwarded to {a} port {n}"),
            (Some(a), None) => format!("forwarded to {a}"),
            (None, n) => format!("redirected to port {}", n.unwrap_or(p.dport)),
        };
        let by = format!("{by} ({to}: not this listener)").into();
        out.push((p, Flow::Final(End::Unknown, by)));
    }

    /// Split every path on a match: (where it holds, where it fails).
    fn split_all(&mut self, m: &Match, paths: Vec<Path>) -> (Vec<Path>, Vec<Path>) {
        let (mut hold, mut fail) = (Vec::new(), Vec::new());
        for p in paths {
            self.split(m, p, &mut hold, &mut fail);
        }
        (hold, fail)
    }

    /// Split paths on a conjunction of matches.
    fn split_conj(&mut self, ms: &[Match], paths: Vec<Path>) -> (Vec<Path>, Vec<Path>) {
        let (mut cur, mut fail) = (paths, Vec::new());
        for m in ms {
            let (h, f) = self.split_all(m, cur);
            fail.extend(f);
            cur = h;
        }
        (cur, fail)
    }

    /// Split one path on one match.
    fn split(&mut self, m: &Match, p: Path, hold: &mut Vec<Path>, fail: &mut Vec<Path>) {
        match m {
            Match::Const(b) => {
                if *b {
                    hold.push(p)
                } else {
                    fail.push(p)
                }
            }
            Match::Values {
                field: Field::Saddr(f) | Field::Daddr(f),
                ..
            } if *f != p.family => fail.push(p),
            Match::Values {
                field: Field::Saddr(_),
                set,
                neg,
            } => self.narrow(p, set, *neg, |p| &mut p.saddr, hold, fail),
            Match::Values {
                field: Field::Daddr(_),
                set,
                neg,
            } => self.narrow(p, set, *neg, |p| &mut p.daddr, hold, fail),
            Match::Values { field, set, neg } => match p.value(*field) {
                Some(v) if set.contains(v) != *neg => hold.push(p),
                _ => fail.push(p),
            },
            Match::Bits { field, mask, neg } => {
                if (p.bits(*field) & mask != 0) != *neg {
                    hold.push(p)
                } else {
                    fail.push(p)
                }
            }
            Match::TcpFlags {
                mask,
                value,
                any,
                neg,
                text,
            } => match p.tcp_flags_match(*mask, *value, *any, *neg) {
                Some(true) => hold.push(p),
                Some(false) => fail.push(p),
                None => {
                    let m = Match::Cond {
                        kind: CondKind::Unknown,
                        text: text.clone(),
                    };
                    self.split(&m, p, hold, fail);
                }
            },
            Match::Iface { names, neg } => self.iface(p, names, *neg, hold, fail),
            Match::Oif { names, neg } => match (&p.oif, p.forwarded) {
                // No output interface on the input path: no name matches.
                (_, false) => {
                    if *neg {
                        hold.push(p)
                    } else {
                        fail.push(p)
                    }
                }
                (Some(oif), true) => {
                    if names.iter().any(|n| super::path::name_matches(n, oif)) != *neg {
                        hold.push(p)
                    } else {
                        fail.push(p)
                    }
                }
                (None, true) => {
                    let text = format!("oifname {names:?} (the output interface is not known)");
                    let m = Match::Cond {
                        kind: CondKind::Unknown,
                        text: text.into(),
                    };
                    self.split(&m, p, hold, fail);
                }
            },
            Match::Cond { kind, text } => {
                // Already decided on this path (the same rule met again, or the handshake's
                // ACK after its SYN): the same answer.
                if let Some((_, _, held)) = p.conds.iter().find(|(_, t, _)| t == text) {
                    if *held {
                        hold.push(p)
                    } else {
                        fail.push(p)
                    }
                    return;
                }
                for held in [true, false] {
                    let mut q = p.clone();
                    q.conds.push((*kind, text.clone(), held));
                    if q.conds_possible() {
                        self.paths += 1;
                        if held { hold.push(q) } else { fail.push(q) }
                    }
                }
            }
            Match::Any(conjs) => {
                let mut rest = vec![p];
                for c in conjs {
                    let (h, f) = self.split_conj(c, rest);
                    hold.extend(h);
                    rest = f;
                }
                fail.extend(rest);
            }
        }
    }

    /// Split a path on an address match: the addresses in the set, and those not.
    fn narrow(
        &mut self,
        mut p: Path,
        set: &RangeSet,
        neg: bool,
        addrs: fn(&mut Path) -> &mut RangeSet,
        hold: &mut Vec<Path>,
        fail: &mut Vec<Path>,
    ) {
        let all = addrs(&mut p);
        let (inside, outside) = (all.intersect(set), all.subtract(set));
        let (yes, no) = if neg {
            (outside, inside)
        } else {
            (inside, outside)
        };
        if no.is_empty() {
            hold.push(p);
        } else if yes.is_empty() {
            fail.push(p);
        } else {
            let mut q = p.clone();
            *addrs(&mut q) = yes;
            *addrs(&mut p) = no;
            self.paths += 1;
            hold.push(q);
            fail.push(p);
        }
    }

    /// Split a path on an interface-name match.
    fn iface(
        &mut self,
        p: Path,
        names: &[String],
        neg: bool,
        hold: &mut Vec<Path>,
        fail: &mut Vec<Path>,
    ) {
        let mut inside = p.clone();
        if !inside.iif_in.iter().any(|s| s.as_slice() == names) {
            inside.iif_in.push(names.to_vec());
        }
        let mut outside = p;
        outside.iif_not.extend(names.iter().cloned());
        let (yes, no) = if neg {
            (outside, inside)
        } else {
            (inside, outside)
        };
        for (q, to) in [(yes, &mut *hold), (no, &mut *fail)] {
            if q.iif_possible() {
                self.paths += 1;
                to.push(q);
            }
        }
    }
}

/// Whether one of the rule's leading matches on what the packet fixes (the port, the
/// protocol, conntrack: they come first, see `concrete_first`) fails for this path, so the
/// path goes on to the next rule untouched. The common case, checked without allocating.
fn passes_by(rule: &Rule, p: &Path) -> bool {
    for step in &rule.steps {
        let Step::Match(m) = step else { return false };
        let holds = match m {
            Match::Const(b) => *b,
            Match::Values {
                field: Field::Saddr(f) | Field::Daddr(f),
                ..
            } if *f != p.family => false,
            Match::Values {
                field: Field::Saddr(_) | Field::Daddr(_),
                ..
            } => return false,
            Match::Values { field, set, neg } => {
                p.value(*field).is_some_and(|v| set.contains(v) != *neg)
            }
            Match::Bits { field, mask, neg } => (p.bits(*field) & mask != 0) != *neg,
            Match::TcpFlags {
                mask,
                value,
                any,
                neg,
                ..
            } => match p.tcp_flags_match(*mask, *value, *any, *neg) {
                Some(holds) => holds,
                None => return false,
            },
            _ => return false,
        };
        if !holds {
            return true;
        }
    }
    false
}

/// Apply a statement to a path.
fn apply(e: &Effect, p: &mut Path) {
    match e {
        Effect::SetMark(m) => p.mark = *m,
        Effect::Notrack => p.notrack(),
    }
}

/// One verdict from where the paths ended: the same end everywhere decides it whatever the
/// open conditions; otherwise an undecidable match on any path makes it `unknown`, and else
/// the paths that accept name the conditions of `restricted`.
fn combine(packet: &Packet, start: &Path, ended: Vec<(Path, End, Arc<str>)>) -> Reach {
    let family = packet.family;
    let Some((_, first_end, first_by)) = ended.first() else {
        return Reach::new(
            Verdict::Unknown,
            family,
            "no path left (contradictory rules)",
        );
    };
    if *first_end != End::Unknown && ended.iter().all(|(_, e, _)| e == first_end) {
        let verdict = match first_end {
            End::Accept => Verdict::Open,
            End::Drop => Verdict::Filtered,
            _ => Verdict::Rejected,
        };
        return Reach::new(verdict, family, first_by.to_string());
    }
    if let Some((_, _, by)) = ended.iter().find(|(_, e, _)| *e == End::Unknown) {
        return Reach::new(Verdict::Unknown, family, by.to_string());
    }
    let unknown_cond = ended
        .iter()
        .flat_map(|(p, _, _)| &p.conds)
        .find(|(k, _, _)| *k == CondKind::Unknown);
    if let Some((_, text, _)) = unknown_cond {
        return Reach::new(Verdict::Unknown, family, text.to_string());
    }
    let ending = |end: End| -> Vec<Path> {
        let paths = ended.iter().filter(|(_, e, _)| *e == end);
        merge(paths.map(|(p, _, _)| p.clone()).collect())
    };
    let by_of = |end: End| {
        ended
            .iter()
            .find(|(_, e, _)| *e == end)
            .map(|(_, _, b)| b.to_string())
    };
    let (verdict, by, conds) = match by_of(End::Accept) {
        Some(by) => (
            Verdict::Restricted,
            by,
            describe_all(start, &ending(End::Accept), ""),
        ),
        None => (
            Verdict::Filtered,
            by_of(End::Drop).unwrap_or_default(),
            describe_all(start, &ending(End::Reject), "rejected if "),
        ),
    };
    Reach {
        verdict,
        family,
        by,
        conditions: conds,
    }
}

/// The distinct conditions of `paths`, each prefixed.
fn describe_all(start: &Path, paths: &[Path], prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let text = format!("{prefix}{}", p.describe(start));
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}
