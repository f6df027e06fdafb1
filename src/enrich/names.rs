//! Names for numbers, as netstat shows them without `-n`: ports from `/etc/services`, users
//! from the passwd database, hosts by reverse lookup under a hard time budget.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, BufRead, Read};
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::model::Protocol;

/// The services database the table names ports from, and `--port NAME` reads.
pub const SERVICES_PATH: &str = "/etc/services";

/// The most of a services file read: the full IANA list is under 1 MiB.
const SERVICES_MAX_BYTES: u64 = 4 << 20;

/// Port names from a services database.
#[derive(Debug, Default, Clone)]
pub struct Services {
    names: HashMap<(u16, Protocol), String>,
    ports: HashMap<String, BTreeSet<u16>>,
}

impl Services {
    /// Load [`SERVICES_PATH`]; a missing or unreadable file gives an empty table (ports stay
    /// numeric), as netstat does.
    pub fn load_system() -> Self {
        Self::load(Path::new(SERVICES_PATH)).unwrap_or_default()
    }

    /// Load a services file. It must be a regular file reached without following a symbolic
    /// link (a link or a FIFO planted there is not a database), and at most 4 MiB.
    pub fn load(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            // O_NONBLOCK: opening a FIFO must not wait for a writer.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => io::Error::other("a symbolic link, which is not followed"),
                _ => e,
            })?;
        let kind = file.metadata()?.file_type();
        if !kind.is_file() {
            let what = if kind.is_fifo() {
                "a FIFO"
            } else {
                "not a regular file"
            };
            return Err(io::Error::other(what));
        }
        let mut bytes = Vec::new();
        file.take(SERVICES_MAX_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > SERVICES_MAX_BYTES {
            return Err(io::Error::other("larger than 4 MiB"));
        }
        Ok(Self::parse(&bytes[..]))
    }

    /// Parse services(5) lines: `name port/proto [aliases…] [# comment]`. The first name
    /// listed for a port wins, as with `getservbyport`.
    pub fn parse(reader: impl BufRead) -> Self {
        let mut services = Services::default();
        for line in reader.split(b'\n').map_while(Result::ok) {
            if let Some(entry) = parse_service_line(&line) {
                services.add(entry);
            }
        }
        services
    }

    fn add(&mut self, entry: ServiceLine) {
        for alias in &entry.aliases {
            self.ports
                .entry(alias.clone())
                .or_default()
                .insert(entry.port);
        }
        let key = (entry.port, entry.protocol);
        self.names
            .entry(key)
            .or_insert_with(|| entry.aliases[0].clone());
    }

    /// The service name of `port`/`protocol`, if any.
    pub fn name(&self, port: u16, protocol: Protocol) -> Option<&str> {
        self.names.get(&(port, protocol)).map(String::as_str)
    }

    /// The ports of the service called `name` (its name or an alias) for TCP or UDP,
    /// ascending; empty when there is no such service.
    pub fn ports_named(&self, name: &str) -> Vec<u16> {
        self.ports
            .get(name)
            .map(|ports| ports.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// One line of a services file: the name first, then its aliases.
struct ServiceLine {
    port: u16,
    protocol: Protocol,
    aliases: Vec<String>,
}

fn parse_service_line(line: &[u8]) -> Option<ServiceLine> {
    let text = std::str::from_utf8(line).ok()?;
    let text = text.split('#').next()?;
    let mut fields = text.split_ascii_whitespace();
    let name = fields.next()?;
    let (port, proto) = fields.next()?.split_once('/')?;
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    // Names go into a terminal cell: keep only plain printable ones.
    let printable = |name: &&str| name.bytes().all(|b| b.is_ascii_graphic());
    if !printable(&name) {
        return None;
    }
    let aliases = std::iter::once(name)
        .chain(fields.filter(printable))
        .map(str::to_string)
        .collect();
    Some(ServiceLine {
        port: port.parse().ok()?,
        protocol,
        aliases,
    })
}

/// User names by uid, looked up once each: a miss in the passwd database can cost a
/// millisecond or more (NSS), and the same uid recurs on every row.
#[derive(Debug, Default, Clone)]
pub struct UserNames {
    cache: HashMap<u32, Option<String>>,
}

impl UserNames {
    /// The name of `uid`, or `None` when the passwd database has none.
    pub fn name(&mut self, uid: u32) -> Option<&str> {
        self.cache
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .as_deref()
    }
}

/// At most this many reverse lookups run at once: a busy host's `-a` listing can have
/// thousands of distinct peers, and one thread each would be a thread storm.
const LOOKUP_THREADS: usize = 16;

/// Reverse-resolve `addrs` with a total time budget. Loopback is `localhost` without a lookup;
/// an address that does not resolve in time is left out (shown numeric). Each distinct address
/// is looked up once, by a small pool of detached threads, so a hung resolver costs at most
/// `budget`.
pub fn resolve_hosts(addrs: &[IpAddr], budget: Duration) -> HashMap<IpAddr, String> {
    resolve_with(addrs, budget, reverse_lookup)
}

/// A lookup of one address's name: `getnameinfo`, or a stand-in in tests.
type Lookup = fn(IpAddr) -> Option<String>;

/// [`resolve_hosts`] with `lookup` for each address that needs one.
fn resolve_with(addrs: &[IpAddr], budget: Duration, lookup: Lookup) -> HashMap<IpAddr, String> {
    let mut names = HashMap::new();
    let mut queue: Vec<IpAddr> = Vec::new();
    let mut seen = HashSet::new();
    for &addr in addrs {
        if addr.is_unspecified() || !seen.insert(addr) {
            continue;
        }
        if addr.is_loopback() {
            names.insert(addr, "localhost".to_string());
        } else {
            queue.push(addr);
        }
    }
    let pending = queue.len();
    let queue = Arc::new(Mutex::new(queue));
    let (tx, rx) = mpsc::channel();
    for _ in 0..pending.min(LOOKUP_THREADS) {
        let (queue, tx) = (Arc::clone(&queue), tx.clone());
        // A pool that cannot grow only makes more addresses stay numeric.
        let _ = std::thread::Builder::new().spawn(move || lookup_worker(&queue, &tx, lookup));
    }
    drop(tx);
    let deadline = Instant::now() + budget;
    for _ in 0..pending {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((addr, name)) = rx.recv_timeout(left) else {
            break;
        };
        if let Some(name) = name {
            names.insert(addr, name);
        }
    }
    names
}

/// Take addresses off `queue` until it is empty (or nobody listens any more), sending each
/// one's name.
fn lookup_worker(
    queue: &Mutex<Vec<IpAddr>>,
    tx: &mpsc::Sender<(IpAddr, Option<String>)>,
    lookup: Lookup,
) {
    loop {
        let next = queue.lock().ok().and_then(|mut q| q.pop());
        let Some(addr) = next else {
            return;
        };
        if tx.send((addr, lookup(addr))).is_err() {
            return;
        }
    }
}

/// `getnameinfo` with `NI_NAMEREQD`: a name, or `None`.
fn reverse_lookup(addr: IpAddr) -> Option<String> {
    let storage = nix::sys::socket::SockaddrStorage::from(std::net::SocketAddr::new(addr, 0));
    let mut host = [0u8; 1025];
    // SAFETY: neither nix nor rustix wraps getnameinfo (the C library's resolver, through
    // NSS: only libc can answer as `getent hosts` does). The sockaddr pointer and length come
    // from a valid SockaddrStorage, and `host` is a writable buffer of the given length that
    // getnameinfo NUL-terminates.
    let rc = unsafe {
        libc::getnameinfo(
            nix::sys::socket::SockaddrLike::as_ptr(&storage),
            nix::sys::socket::SockaddrLike::len(&storage),
            host.as_mut_ptr().cast(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    let name = std::ffi::CStr::from_bytes_until_nul(&host).ok()?;
    name.to_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn services_parse_first_name_and_ignore_comments() {
        let text = b"# comment\nssh\t\t22/tcp\t\t\t# SSH\nssh 22/udp\nshell 22/tcp\ndomain 53/udp\nbad x/tcp\nweird 9/sctp\n";
        let services = Services::parse(&text[..]);
        assert_eq!(services.name(22, Protocol::Tcp), Some("ssh"));
        assert_eq!(services.name(22, Protocol::Udp), Some("ssh"));
        assert_eq!(services.name(53, Protocol::Udp), Some("domain"));
        assert_eq!(services.name(53, Protocol::Tcp), None);
        assert_eq!(services.name(9, Protocol::Tcp), None);
    }

    #[test]
    fn services_are_found_by_name_and_alias() {
        let text =
            b"http 80/tcp www\nhttp 80/udp\nhttp-alt 8080/tcp webcache\nodd 7/tcp\nodd 9/udp\n";
        let services = Services::parse(&text[..]);
        assert_eq!(services.ports_named("http"), [80]);
        assert_eq!(services.ports_named("www"), [80]);
        assert_eq!(services.ports_named("http-alt"), [8080]);
        assert_eq!(services.ports_named("webcache"), [8080]);
        assert_eq!(services.ports_named("odd"), [7, 9], "each protocol's port");
        assert!(services.ports_named("gopher").is_empty());
    }

    #[test]
    fn services_file_is_read_without_following_links_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("services");
        std::fs::write(&real, "ssh 22/tcp\n").unwrap();
        assert_eq!(Services::load(&real).unwrap().ports_named("ssh"), [22]);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let error = Services::load(&link).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = Services::load(&fifo).unwrap_err().to_string();
        assert!(error.contains("FIFO"), "{error}");
        let huge = dir.path().join("huge");
        let file = std::fs::File::create(&huge).unwrap();
        file.set_len(SERVICES_MAX_BYTES + 1).unwrap();
        let error = Services::load(&huge).unwrap_err().to_string();
        assert!(error.contains("larger than 4 MiB"), "{error}");
    }

    #[test]
    fn root_is_named_and_cached() {
        let mut users = UserNames::default();
        assert_eq!(users.name(0), Some("root"));
        assert_eq!(users.name(0), Some("root"));
        assert_eq!(users.name(4_000_000_123), None);
    }

    /// Lookups running now, and the most that ever ran at once, across the stand-in lookups.
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static MOST_AT_ONCE: AtomicUsize = AtomicUsize::new(0);
    /// How many times each address was looked up.
    static LOOKED_UP: Mutex<Vec<IpAddr>> = Mutex::new(Vec::new());

    /// A resolver that names every address `hA-B-C-D` after a short wait, counting how many
    /// lookups run at once; addresses in 198.51.100.0/24 never answer within the budget.
    fn stand_in(addr: IpAddr) -> Option<String> {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_AT_ONCE.fetch_max(now, Ordering::SeqCst);
        LOOKED_UP.lock().unwrap().push(addr);
        let hangs = matches!(addr, IpAddr::V4(v4) if v4.octets()[..3] == [198, 51, 100]);
        std::thread::sleep(Duration::from_millis(if hangs { 3_000 } else { 1 }));
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        Some(format!("h{}", addr.to_string().replace('.', "-")))
    }

    #[test]
    fn many_peers_are_looked_up_by_a_bounded_pool_within_the_budget() {
        // 500 distinct answering peers, each given 4 times, then 16 that hang: every answering
        // peer is named, once, by at most 16 lookups at a time, and the hung ones cost only
        // the budget (they take the whole pool once the others are done).
        let answering: Vec<IpAddr> = (0..500u32)
            .map(|i| IpAddr::from([203, 0, (113 + i / 250) as u8, (i % 250) as u8]))
            .collect();
        let hanging = (0..16u8).map(|i| IpAddr::from([198, 51, 100, i]));
        let mut addrs: Vec<IpAddr> = answering.iter().copied().cycle().take(2000).collect();
        addrs.extend(hanging);
        // Popped from the end of the queue: put the hung peers first so they are asked last.
        addrs.reverse();
        let started = Instant::now();
        let names = resolve_with(&addrs, Duration::from_millis(1_500), stand_in);
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2_500),
            "the budget holds: {took:?}"
        );
        for addr in &answering {
            let want = format!("h{}", addr.to_string().replace('.', "-"));
            assert_eq!(names.get(addr), Some(&want), "{addr}");
        }
        assert_eq!(names.len(), answering.len(), "hung peers stay numeric");
        let most = MOST_AT_ONCE.load(Ordering::SeqCst);
        assert!(most <= LOOKUP_THREADS, "{most} lookups at once");
        let mut looked_up = LOOKED_UP.lock().unwrap().clone();
        looked_up.sort_unstable();
        let asked = looked_up.len();
        looked_up.dedup();
        assert_eq!(asked, looked_up.len(), "each address is looked up once");
    }

    #[test]
    fn loopback_is_localhost_and_wildcards_are_not_looked_up() {
        let addrs: Vec<IpAddr> = vec![
            "127.0.0.1".parse().unwrap(),
            "::1".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
        ];
        let names = resolve_hosts(&addrs, Duration::from_millis(10));
        assert_eq!(names.get(&addrs[0]).map(String::as_str), Some("localhost"));
        assert_eq!(names.get(&addrs[1]).map(String::as_str), Some("localhost"));
        assert!(!names.contains_key(&addrs[2]));
    }
}
