//! The one pipeline every action goes through, as five stages over plain data:
//!
//! ```text
//! collect    Plan -> Collected        the configured tables, narrowed to the wanted ports
//!                                     (by the kernel) and to what the socket filters keep
//! attribute  Vec<Socket> -> Listing   who holds each socket, when something needs it
//! select     Listing -> Listing       what the process filters keep, in display order
//! enrich     Listing -> Listing       executables and suspicious-listener findings, read
//!                                     once per entry and only when shown or used
//! render     &Listing -> bytes        formatting only: no lookup on the file system
//! ```
//!
//! An action picks what to collect and what it needs read ([`Plan`], built from the one
//! configuration, so `--source`, `--attribution` and `--proc-root` apply to every action) and
//! what to do with the result. [`gather`] runs the first four stages for the one-shot actions;
//! the polling ones (`watch`, `-c`, `--wait`) call the stages themselves, since they collect
//! every interval and attribute only some polls.
//!
//! Attribution is [`begin`]-ed before collecting: the walk starts reading processes, and the
//! BPF iterator loads, while the sockets are collected. The iterator's pass over the fds runs
//! after the collection, once every socket it must find exists.

pub mod firewalls;
pub mod report;
mod walked;

pub use walked::DUMP_VARIABLE;

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::config::{
    AttributionChoice, Column, Config, Needs, NetnsChoice, RenderOptions, StateSelection,
};
use crate::enrich::exe::Executables;
use crate::enrich::reach::{self, apply::RulesFrom};
use crate::enrich::{labels, published, suspicious};
use crate::filter::{self, Filter, PortSet};
use crate::model::{Entry, OwnerUnknownReason, Socket};
use crate::process::info::{self, HidePid, ProcVisibility};
use crate::process::{self, BpfUnavailable};
use crate::render;
use crate::source::netns;
use crate::source::{CollectRequest, Collected};
use crate::sys::timing::mark;

/// What an action asks of the pipeline: which sockets, how their owners are found, and what
/// is read about them.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What to collect: tables, states, source, proc root, ports.
    pub request: CollectRequest,
    /// Which sockets and entries to keep.
    pub filter: Filter,
    /// How owners are found (`--attribution`).
    pub attribution: AttributionChoice,
    /// What to read beyond the sockets.
    pub needs: Needs,
    /// When `--attribution bpf` cannot run: fail (a one-shot action, which says why and
    /// exits), or walk instead and say why under `-v` (a polling action, which keeps going).
    pub walk_if_refused: bool,
    /// Root of the proc filesystem, where processes and executables are read.
    pub proc_root: PathBuf,
    /// Root of the runtime state and unit files labels are read from (`/`).
    pub state_root: PathBuf,
    /// Which network namespaces to collect in (`--netns`).
    pub netns: NetnsChoice,
    /// Find the published ports too (`--published`), in enrich.
    pub published: bool,
}

impl Plan {
    /// The plan of `config` for an action that needs `needs` read: every flag about where
    /// sockets and owners come from applies, whatever the action.
    pub fn new(config: &Config, needs: Needs) -> Plan {
        Plan {
            request: CollectRequest {
                tables: config.tables(),
                states: config.states,
                choice: config.source,
                proc_root: config.proc_root.clone(),
                snapshot: config.snapshot.clone(),
                ports: config.filter.ports.clone(),
            },
            filter: config.filter.clone(),
            attribution: config.attribution,
            needs,
            walk_if_refused: false,
            proc_root: config.proc_root.clone(),
            state_root: config.state_root.clone(),
            netns: config.netns.clone(),
            published: config.published,
        }
    }

    /// The same plan for an action that polls: a refused `--attribution bpf` walks instead.
    pub fn polling(self) -> Plan {
        Plan {
            walk_if_refused: true,
            ..self
        }
    }

    /// The same plan narrowed to the listeners on `ports` (`--wait`): the kernel sends only
    /// those.
    pub fn listeners_on(mut self, ports: &PortSet) -> Plan {
        self.request.ports = Some(ports.clone());
        self.request.states = StateSelection::Listening;
        self
    }
}

/// The entries as they go from attribute through select and enrich to render, with what the
/// process scan could not see.
#[derive(Debug, Default)]
pub struct Listing {
    /// One entry per socket; from select on, only those kept, in display order.
    pub entries: Vec<Entry>,
    /// From select on, the entries the process filters left out without knowing
    /// ([`crate::filter::Filter::may_keep_entry`]): no holder of theirs could be seen, so
    /// they may be what the filters ask for. `--wait-free` counts them as still in the way,
    /// and every action says why they are not shown.
    pub undecided: Vec<Entry>,
    /// Executables of their holders (empty unless asked for).
    pub exes: Executables,
    /// Whether processes were scanned at all.
    pub attributed: bool,
    /// Processes whose fds could not be read.
    pub denied: usize,
    /// Why `/proc` itself could not be scanned, if it could not.
    pub scan_error: Option<io::Error>,
    /// Set when the proc mount hides other users' processes from this reader (`hidepid=`):
    /// they cannot be counted as denied, since they are not listed at all.
    pub hidden: Option<ProcVisibility>,
    /// Processes hidden from `/proc` by a mount over their directory, that may hold a socket
    /// shown without owner ([`process::Attributed::hidden_pids`]).
    pub hidden_pids: Vec<u32>,
    /// Whether `hidden_pids` hold those sockets, not only may ([`process::Attributed::hidden_named`]).
    pub hidden_named: bool,
    /// Which way owners were found (for `--verbose`).
    pub method: Option<process::Method>,
    /// What went wrong while finding owners (a failed walking thread; under `--verbose`, a
    /// process file that did not parse).
    pub scan_warnings: Vec<process::ScanWarning>,
    /// The firewall rules reach was evaluated with (`None` unless asked for), and why some
    /// could not be read.
    pub firewalls: Option<reach::apply::Firewalls>,
    /// The published ports (`--published`), found in enrich; `None` when not asked for.
    pub published: Option<published::Found>,
    /// The firewall rules begun reading with the attribution ([`begin`]), for reach and
    /// `--published` to join in enrich; `None`: read there, when needed.
    pub rules: Option<firewalls::Rules>,
    /// Which other network namespaces were read and which not (`--netns`), for an audit to
    /// tell a listener gone from one it could not look for.
    pub coverage: crate::model::coverage::Coverage,
    /// The cgroup v2 id of each holder where the kernel iterator found it (empty from the
    /// walk): label reads no cgroup file for these.
    pub holder_cgroups: HashMap<u32, u64>,
}

/// Attribution begun before the sockets are collected ([`begin`]); `None` when nothing the
/// action shows or uses needs the processes. With it, the firewall rules, when reach or
/// `--published` needs them: reading them takes longer than evaluating them, so they are read
/// beside collection and attribution rather than after.
#[derive(Debug)]
pub struct Begun(Option<process::Started>, Option<firewalls::Rules>);

/// Run collect, attribute, select and enrich for `plan`. Source failures and parse warnings
/// are reported on `err` (every table's source too under `verbose`); `None` when no source
/// could read any table, or `--attribution bpf` cannot run (said on `err`).
pub fn gather(plan: &Plan, verbose: bool, err: &mut dyn Write) -> io::Result<Option<Listing>> {
    let mut begun = begin(plan);
    let (mut collected, pending) = collect_deferring(plan, &mut begun);
    if collected.nothing_read() {
        report::sources(&collected, verbose, err)?;
        return Ok(None);
    }
    mark("sockets collected");
    if let Some(rules) = &begun.1 {
        rules.begin_namespaces(&collected.sockets);
    }
    let sockets = std::mem::take(&mut collected.sockets);
    let attributed = attribute_following(sockets, begun, plan, pending, &mut collected);
    // After attribution: the `--netns all` note counts the namespaces it led to.
    report::sources(&collected, verbose, err)?;
    let mut listing = match attributed {
        Ok(listing) => listing,
        Err(why) => {
            writeln!(err, "lsports: --attribution bpf: {why}")?;
            return Ok(None);
        }
    };
    mark("owners found");
    listing.coverage = std::mem::take(&mut collected.coverage);
    listing.coverage.unread_tables = collected.unread_tables();
    Ok(Some(refine(listing, plan)))
}

/// How much of a poll's collection must be read for its listing to mean anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MustRead {
    /// Some table: a listing of what could be read (`-c`).
    AnyTable,
    /// Every table: a port of an unreadable table could be listening or free (`--wait`).
    EveryTable,
}

/// One poll of a repeating action (`-c`, `--wait`) through every stage but render; `None`
/// when less could be read than `must` asks. Which source fed each table is said on the first
/// poll under `verbose`; failures and warnings when they start (`repeats`).
pub fn poll(
    plan: &Plan,
    must: MustRead,
    verbose: bool,
    repeats: &mut report::Repeats,
    err: &mut dyn Write,
) -> io::Result<Option<Listing>> {
    let mut begun = begin(plan);
    let (mut collected, pending) = collect_deferring(plan, &mut begun);
    let unreadable = match must {
        MustRead::AnyTable => collected.nothing_read(),
        MustRead::EveryTable => collected.reports.iter().any(|r| r.source.is_none()),
    };
    if unreadable {
        repeats.report(report::source_lines(&collected, verbose), err)?;
        return Ok(None);
    }
    let sockets = std::mem::take(&mut collected.sockets);
    // A polling plan walks where the BPF iterator is refused: attribution cannot fail.
    let listing =
        attribute_following(sockets, begun, plan, pending, &mut collected).unwrap_or_default();
    repeats.report(report::source_lines(&collected, verbose), err)?;
    Ok(Some(refine(listing, plan)))
}

/// The stages after attribution, in their one order: label, select, enrich. Every action
/// that attributes goes on through here, so a filter on labels, and what enrich reads, work
/// alike in a listing, an audit, a watch, `-c` and `--wait`.
pub fn refine(listing: Listing, plan: &Plan) -> Listing {
    enrich(select(label(listing, plan), &plan.filter), plan)
}

/// Start finding owners the way `plan` says, if it needs them, and reading this namespace's
/// firewall rules, if reach or `--published` needs them, before the sockets are known.
pub fn begin(plan: &Plan) -> Begun {
    let rules = (plan.needs.reach && reads_live_rules(plan) || plan.published).then(|| {
        match lists_here(plan) {
            true => firewalls::Rules::begin(&plan.proc_root),
            false => firewalls::Rules::lazy(&plan.proc_root),
        }
    });
    Begun(start_attribution(plan), rules)
}

/// Start finding owners the way `plan` says, if it needs them; for a `--netns all` whose
/// namespaces the kernel iterator may answer, with the iterator reading sockets too
/// ([`walked::emit`]).
fn start_attribution(plan: &Plan) -> Option<process::Started> {
    let needs = plan.needs;
    let emit = walked::emit(plan);
    needs
        .processes
        .then(|| process::start_emitting(&plan.proc_root, plan.attribution, needs.details, emit))
}

/// Start finding the owners of sockets found late, with a pass of their own, if `plan` needs
/// them.
fn start_plain_attribution(plan: &Plan) -> Option<process::Started> {
    let needs = plan.needs;
    needs
        .processes
        .then(|| process::start(&plan.proc_root, plan.attribution, needs.details))
}

/// Whether the listing may hold this namespace's sockets. `--netns X` lists X's, whose rules
/// a thread entering X reads: this namespace's are then read only if asked for (X is this
/// one), never begun or waited for without need (a second `nft -j list ruleset`, hundreds of
/// milliseconds on a large ruleset: `--netns X --json` run from a namespace with the same
/// 20,000-rule ruleset as X, 7 runs each interleaved, median 1.23 s before, 0.89 s after).
fn lists_here(plan: &Plan) -> bool {
    matches!(plan.netns, NetnsChoice::Current | NetnsChoice::All)
}

/// Whether reach reads this machine's rules: they describe a snapshot's sockets, or those of
/// another proc tree, no more than its processes do.
fn reads_live_rules(plan: &Plan) -> bool {
    plan.request.snapshot.is_none() && plan.proc_root == Path::new("/proc")
}

/// Collect the plan's tables in the plan's namespaces, keeping what the socket filters keep,
/// with their devices named (each in its own namespace) and their namespace noted.
/// [`Collected::nothing_read`] says when no table could be read.
pub fn collect(plan: &Plan) -> Collected {
    let mut collected = netns::collect(&plan.netns, &plan.request);
    let sockets = std::mem::take(&mut collected.sockets);
    collected.sockets = filter::keep_sockets(sockets, &plan.filter);
    collected
}

/// [`collect`], or for `--netns all` with owners to find by walking `/proc/*/fd` or by the
/// kernel iterator, its first step ([`netns::collect_known`]): the namespaces only a socket
/// keeps alive are then found from the sockets that attribution sees ([`attribute_following`]),
/// not from a walk of their own.
///
/// Where the kernel iterator reads the sockets too ([`walked::emit`]), the first step is
/// [`netns::collect_counting`] instead, which lets the iterator's pass go once every other
/// namespace's counts are read, before dumping this one.
fn collect_deferring(plan: &Plan, begun: &mut Begun) -> (Collected, Option<netns::Pending>) {
    let sees_sockets = |begun: &Begun| {
        begun
            .0
            .as_ref()
            .is_some_and(|s| s.names_socket_netns() || s.keep_unwanted())
    };
    let walks = walked::emit(plan) != process::bpf::Emit::Holders
        && begun.0.as_ref().is_some_and(|s| s.names_socket_netns());
    if plan.netns != NetnsChoice::All || !sees_sockets(begun) {
        let mut collected = collect(plan);
        collected
            .verbose_notes
            .extend(walked::why_dumped(plan, walks));
        return (collected, None);
    }
    let (mut collected, mut pending) = match (&mut begun.0, walks) {
        (Some(started), true) => netns::collect_counting(&plan.request, || started.go()),
        _ => netns::collect_known(&plan.request),
    };
    // The counts to judge the walk by are read again as soon as it ends, beside the gathering.
    let end = begun.0.as_ref().and_then(process::Started::first_pass_end);
    if let (Some(pending), Some(end)) = (&mut pending, end) {
        pending.count_after_walk(move || end.wait());
    }
    collected
        .verbose_notes
        .extend(walked::why_dumped(plan, walks));
    let sockets = std::mem::take(&mut collected.sockets);
    collected.sockets = filter::keep_sockets(sockets, &plan.filter);
    (collected, pending)
}

/// [`attribute`], then, for a `pending` `--netns all`, the sockets held in no namespace read
/// so far are followed to the namespaces only they keep alive: their sockets are added to the
/// listing (attributed by a pass of their own: such namespaces are rare) and the note on what
/// could not be read to `collected`.
fn attribute_following(
    sockets: Vec<Socket>,
    begun: Begun,
    plan: &Plan,
    pending: Option<netns::Pending>,
    collected: &mut Collected,
) -> Result<Listing, BpfUnavailable> {
    let Some(pending) = pending else {
        return attribute(sockets, begun, plan);
    };
    let mut walking = walked::Walking::new(pending, plan);
    let (mut listing, seen) =
        attribute_keeping(sockets, begun, plan, |scan| walking.complete(scan))?;
    let (pending, dumped, mut more) = walking.finish();
    let late = match pending {
        Some(pending) => follow(pending, seen, plan),
        None => Collected::default(),
    };
    walked::absorb(&mut more, late);
    collected.notes.append(&mut more.notes);
    collected.verbose_notes.append(&mut more.verbose_notes);
    collected.warnings.append(&mut more.warnings);
    collected.coverage.absorb(more.coverage);
    let mut sockets = filter::keep_sockets(more.sockets, &plan.filter);
    let (late, kernel) = walked::unheld(&mut listing.entries, &dumped);
    collected.verbose_notes.extend(kernel);
    if !late.is_empty() {
        collected.verbose_notes.push(format!(
            "--netns all: {} in the namespaces dumped after the walk, held by no process it \
             saw, looked for by a pass of their own",
            crate::text::counts::count(late.len(), "socket")
        ));
    }
    sockets.extend(late);
    if !sockets.is_empty() {
        let begun = Begun(start_plain_attribution(plan), None);
        let extra = attribute(sockets, begun, &plan.clone().polling())?;
        listing.entries.extend(extra.entries);
        listing.holder_cgroups.extend(extra.holder_cgroups);
    }
    Ok(listing)
}

/// The rest of a pending `--netns all`, from what attribution saw of the sockets held: the
/// kernel iterator names each one's namespace, so only the namespaces not read yet are opened;
/// the walk's socket fds are each asked theirs; where neither came (the iterator fell back to
/// a walk of its own), a walk looks for the held sockets again.
fn follow(pending: netns::Pending, seen: HeldSeen, plan: &Plan) -> Collected {
    if let Some(namespaces) = seen.socket_netns {
        let seen: Vec<netns::SocketInNetns> = namespaces
            .into_iter()
            .map(|(netns, h)| netns::SocketInNetns {
                netns,
                pid: h.pid,
                fd: h.fd,
            })
            .collect();
        return pending.follow_namespaces(&seen);
    }
    // The walk ran beside the dumps, and saw this process's own netlink sockets, opened in
    // the namespaces it entered and closed since: they keep nothing alive.
    let me = std::process::id();
    let held: Vec<netns::HeldSocket> = match seen.unwanted {
        Some(unwanted) => unwanted
            .into_iter()
            .filter(|(_, h)| h.pid != me)
            .map(|(inode, h)| netns::HeldSocket {
                inode,
                pid: h.pid,
                fd: h.fd,
            })
            .collect(),
        None => netns::held_sockets_under(&plan.proc_root),
    };
    pending.follow(&held)
}

/// One entry per socket, with its holders when `begun` looks for them. Fails only when
/// `--attribution bpf` cannot run and the plan does not walk instead.
pub fn attribute(
    sockets: Vec<Socket>,
    begun: Begun,
    plan: &Plan,
) -> Result<Listing, BpfUnavailable> {
    attribute_keeping(sockets, begun, plan, |_| Vec::new()).map(|(listing, _)| listing)
}

/// What attribution saw of the sockets held beyond those it attributed.
#[derive(Debug, Default)]
struct HeldSeen {
    /// Socket fds a walk saw that hold none of the sockets it attributed, by (inode, holder),
    /// where the walk kept them ([`process::Started::keep_unwanted`]).
    unwanted: Option<Vec<(u64, crate::model::Holder)>>,
    /// Every socket's namespace with one holder, where the kernel iterator ran.
    socket_netns: Option<std::collections::BTreeMap<u64, crate::model::Holder>>,
}

/// [`attribute`], with what it saw of the other sockets held ([`HeldSeen`]).
/// `more` adds sockets out of the scan before the entries are built (see
/// [`process::Started::finish_adding`]).
fn attribute_keeping(
    sockets: Vec<Socket>,
    begun: Begun,
    plan: &Plan,
    more: impl FnOnce(&mut process::Scan) -> Vec<Socket>,
) -> Result<(Listing, HeldSeen), BpfUnavailable> {
    let Begun(started, rules) = begun;
    let Some(started) = started else {
        let listing = Listing {
            entries: unattributed(sockets),
            rules,
            ..Listing::default()
        };
        return Ok((listing, HeldSeen::default()));
    };
    let mut attributed = started.finish_adding(sockets, plan.walk_if_refused, more)?;
    let seen = HeldSeen {
        unwanted: attributed.unwanted.take(),
        socket_netns: attributed.socket_netns.take(),
    };
    let mut listing = Listing {
        undecided: Vec::new(),
        attributed: true,
        method: Some(attributed.method),
        denied: attributed.denied,
        scan_error: attributed.scan_error,
        hidden: hiding(&plan.proc_root),
        hidden_pids: attributed.hidden_pids,
        hidden_named: attributed.hidden_named,
        entries: attributed.entries,
        exes: Executables::default(),
        scan_warnings: attributed.warnings,
        firewalls: None,
        published: None,
        rules,
        coverage: Default::default(),
        holder_cgroups: std::mem::take(&mut attributed.cgroups),
    };
    if listing.hidden.is_some() {
        blame_hidden_processes(&mut listing.entries);
    }
    Ok((listing, seen))
}

/// Label every entry with its systemd unit and container, when the plan needs them (an output
/// shows them, or `--container`/`--unit` selects by them), and every holder too when the plan
/// needs holders' labels (JSON shows them, the filters match them): before select, which
/// filters on them.
pub fn label(mut listing: Listing, plan: &Plan) -> Listing {
    if plan.needs.labels {
        let sources = labels::apply::Sources {
            proc_root: &plan.proc_root,
            state_root: &plan.state_root,
        };
        let scope = match plan.needs.holder_labels {
            true => labels::apply::Scope::SocketsAndHolders,
            false => labels::apply::Scope::Sockets,
        };
        let known = &listing.holder_cgroups;
        labels::apply::label_entries(&mut listing.entries, sources, scope, known);
        mark("labels read");
    }
    listing
}

/// Keep the entries the process filters keep, in display order.
pub fn select(mut listing: Listing, filter: &Filter) -> Listing {
    let (kept, undecided) = filter::keep_entries_or_undecided(listing.entries, filter);
    listing.entries = kept;
    listing.undecided = undecided;
    listing
}

/// Read what the plan needs beyond the holders, once per entry: each listener's reach through
/// the firewall (first, since `--reachable` selects by it), their executables, and the
/// suspicious-listener findings (which look at those executables' directories).
pub fn enrich(mut listing: Listing, plan: &Plan) -> Listing {
    let needs = plan.needs;
    // One read of each namespace's rules, for reach and `--published` alike.
    let rules = (listing.rules.take()).unwrap_or_else(|| firewalls::Rules::lazy(&plan.proc_root));
    if needs.reach {
        if reads_live_rules(plan) && lists_here(plan) {
            // Joined here, not inside the evaluation, so LSPORTS_TIMING tells the wait for
            // the reader apart from the evaluation.
            let _ = rules.here();
            mark("firewall rules read");
        }
        let here = || rules.here();
        let elsewhere = |inode| rules.elsewhere(inode);
        let from = match reads_live_rules(plan) {
            true => RulesFrom::Live {
                here: &here,
                elsewhere: &elsewhere,
            },
            false => RulesFrom::Captured,
        };
        listing.firewalls = Some(reach::apply::evaluate(&mut listing.entries, from));
        listing.entries.retain(|e| plan.filter.keeps_reach(e));
        mark("reach evaluated");
    }
    if needs.executables || needs.findings {
        listing.exes = Executables::read(&plan.proc_root, &listing.entries);
    }
    if needs.findings {
        for entry in &mut listing.entries {
            entry.findings = suspicious::inspect(entry, &listing.exes, &plan.proc_root).into();
        }
    }
    if plan.published {
        let sources = published::Sources {
            proc_root: &plan.proc_root,
            netns: &plan.netns,
            rules: &rules.here(),
            elsewhere: &|inode| rules.elsewhere(inode),
            tables: &plan.request.tables,
            filter: &plan.filter,
        };
        listing.published = Some(published::find(&listing.entries, sources));
        mark("published ports found");
    }
    listing
}

/// How `config` says to render a listing whose sockets are in `namespaces` network
/// namespaces: with the `netns` column first and the `container` and `unit` columns last in a
/// table or CSV whose columns were not chosen, when every namespace was listed (`--netns all`)
/// or the sockets are in more than one. Otherwise two namespaces' `0.0.0.0:80` would look
/// like one, and the namespaces are most often containers' and units'. Decided by what was
/// listed, not by what the filters left: a container's `:22` alone must not read as the
/// host's, and a script's CSV columns must not change with the data.
pub fn listing_options(config: &Config, namespaces: usize) -> RenderOptions {
    let mut options = config.render_options();
    if config.columns.is_none() && (config.netns == NetnsChoice::All || namespaces > 1) {
        options.columns.insert(0, Column::Netns);
        options.columns.extend([Column::Container, Column::Unit]);
    }
    options
}

/// Write `listing` as `options` say: formatting only, everything it shows was read before.
pub fn render(listing: &Listing, options: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    match &listing.published {
        Some(found) => {
            render::published::render(&listing.entries, &found.ports, options, &listing.exes, out)
        }
        None => render::render(&listing.entries, options, &listing.exes, out),
    }
}

impl Listing {
    /// How `config` says to render this listing ([`listing_options`], with the namespaces
    /// its sockets are in).
    pub fn render_options(&self, config: &Config) -> RenderOptions {
        listing_options(config, self.namespace_count())
    }

    /// How many network namespaces the entries' sockets belong to.
    pub fn namespace_count(&self) -> usize {
        let inodes: std::collections::HashSet<u64> = self
            .entries
            .iter()
            .filter_map(|e| e.socket.netns.as_ref().map(|ns| ns.inode))
            .collect();
        inodes.len()
    }

    /// Say on `err` what the process scan could not see, and what would fix it.
    pub fn report_attribution(&self, config: &Config, err: &mut dyn Write) -> io::Result<()> {
        if let Some(note) = self.firewalls.as_ref().and_then(|f| f.note.as_ref()) {
            report::reach_once(note, err)?;
        }
        if !self.attributed {
            return Ok(());
        }
        if let (true, Some(method)) = (config.verbose, &self.method) {
            writeln!(err, "lsports: {method}")?;
        }
        let warnings = self.scan_warnings.iter();
        for warning in warnings.filter(|w| config.verbose || w.always_shown()) {
            writeln!(err, "lsports: {warning}")?;
        }
        // Said only when a shown socket lacks its owner because of it: `--port 9` showing
        // nothing, or every socket with its owner, has nothing to explain.
        let blamed = self
            .entries
            .iter()
            .any(|e| e.owner_unknown == Some(OwnerUnknownReason::Permission));
        if let (Some(hidden), true) = (&self.hidden, blamed) {
            report::hidden_processes(hidden, config, err)?;
        }
        let denied = if blamed { self.denied } else { 0 };
        report::attribution(denied, self.scan_error.as_ref(), config, err)?;
        let outside = self
            .entries
            .iter()
            .filter(|e| e.owner_unknown == Some(OwnerUnknownReason::OutsidePidNamespace))
            .count();
        report::held_outside(outside, err)?;
        let hidden = self
            .entries
            .iter()
            .filter(|e| e.owner_unknown == Some(OwnerUnknownReason::Hidden))
            .count();
        let named = match self.hidden_named {
            false => report::Named::Maybe,
            true if matches!(self.method, Some(process::Method::Bpf(_))) => report::Named::Kernel,
            true => report::Named::PastTheMount,
        };
        report::hidden_from_proc(hidden, &self.hidden_pids, named, &config.proc_root, err)?;
        report::undecided(self.undecided.len(), err)
    }

    /// Whether every process could be inspected, so a socket without holders truly has none.
    pub fn saw_everything(&self) -> bool {
        self.attributed
            && self.denied == 0
            && self.scan_error.is_none()
            && self.hidden.is_none()
            && self.hidden_pids.is_empty()
            && !self.scan_warnings.iter().any(|w| w.hides_owners())
    }
}

/// The proc mount's `hidepid=` restriction, when it hides processes from this reader: not
/// root, not in the mount's `gid=` group, and processes left out of the listing rather than
/// merely closed (`hidepid=1` closes them, and the walk counts those as denied).
fn hiding(proc_root: &std::path::Path) -> Option<ProcVisibility> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let visibility = info::proc_visibility(proc_root)?;
    if visibility.hidepid == HidePid::NoAccess {
        return None;
    }
    let exempt = visibility.gid.is_some_and(|gid| {
        let gid = nix::unistd::Gid::from_raw(gid);
        nix::unistd::getegid() == gid || nix::unistd::getgroups().is_ok_and(|g| g.contains(&gid))
    });
    (!exempt).then_some(visibility)
}

/// Under `hidepid`, an ownerless socket's holder is most likely a hidden process: say
/// "permission", not "kernel" or "not found". Inode 0 sockets have no holder at all.
fn blame_hidden_processes(entries: &mut [Entry]) {
    for entry in entries {
        if entry.socket.inode != 0 && entry.owner_unknown.is_some() {
            entry.owner_unknown = Some(OwnerUnknownReason::Permission);
        }
    }
}

/// Entries for an output that shows nothing about processes: the scan is skipped, so no owner
/// is known and none is claimed missing (`owner_unknown` stays `None`).
fn unattributed(sockets: Vec<Socket>) -> Vec<Entry> {
    process::entries::each_socket(sockets, Entry::bare)
}

#[cfg(test)]
mod tests;
