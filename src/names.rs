//! Names for numbers, as netstat shows them without `-n`: ports from `/etc/services`, users
//! from the passwd database, hosts by reverse lookup under a hard time budget.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::model::Protocol;

/// Port names from a services database.
#[derive(Debug, Default, Clone)]
pub struct Services {
    names: HashMap<(u16, Protocol), String>,
}

impl Services {
    /// Load `/etc/services`; a missing or unreadable file gives an empty table (ports stay
    /// numeric), as netstat does.
    pub fn load_system() -> Self {
        std::fs::File::open("/etc/services")
            .map(|f| Self::parse(std::io::BufReader::new(f)))
            .unwrap_or_default()
    }

    /// Parse services(5) lines: `name port/proto [aliases…] [# comment]`. The first name
    /// listed for a port wins, as with `getservbyport`.
    pub fn parse(reader: impl BufRead) -> Self {
        let mut names = HashMap::new();
        for line in reader.split(b'\n').map_while(Result::ok) {
            if let Some((key, name)) = parse_service_line(&line) {
                names.entry(key).or_insert(name);
            }
        }
        Services { names }
    }

    /// The service name of `port`/`protocol`, if any.
    pub fn name(&self, port: u16, protocol: Protocol) -> Option<&str> {
        self.names.get(&(port, protocol)).map(String::as_str)
    }
}

fn parse_service_line(line: &[u8]) -> Option<((u16, Protocol), String)> {
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
    if !name.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some(((port.parse().ok()?, protocol), name.to_string()))
}

/// User names by uid, looked up once each: a miss in the passwd database can cost a
/// millisecond or more (NSS), and the same uid recurs on every row.
#[derive(Debug, Default)]
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
        let _ = std::thread::Builder::new().spawn(move || lookup_worker(&queue, &tx));
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
fn lookup_worker(queue: &Mutex<Vec<IpAddr>>, tx: &mpsc::Sender<(IpAddr, Option<String>)>) {
    loop {
        let next = queue.lock().ok().and_then(|mut q| q.pop());
        let Some(addr) = next else {
            return;
        };
        if tx.send((addr, reverse_lookup(addr))).is_err() {
            return;
        }
    }
}

/// `getnameinfo` with `NI_NAMEREQD`: a name, or `None`.
fn reverse_lookup(addr: IpAddr) -> Option<String> {
    let storage = nix::sys::socket::SockaddrStorage::from(std::net::SocketAddr::new(addr, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: the sockaddr pointer and length come from a valid SockaddrStorage, and `host`
    // is a writable buffer of the given length that getnameinfo NUL-terminates.
    let rc = unsafe {
        libc::getnameinfo(
            nix::sys::socket::SockaddrLike::as_ptr(&storage),
            nix::sys::socket::SockaddrLike::len(&storage),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn root_is_named_and_cached() {
        let mut users = UserNames::default();
        assert_eq!(users.name(0), Some("root"));
        assert_eq!(users.name(0), Some("root"));
        assert_eq!(users.name(4_000_000_123), None);
    }

    #[test]
    fn many_peers_are_looked_up_by_a_bounded_pool_within_the_budget() {
        // Documentation-range addresses: no name, and no thread per address either.
        let addrs: Vec<IpAddr> = (0..2000u32)
            .map(|i| IpAddr::from([203, 0, 113, (i % 250) as u8]))
            .chain((0..300u32).map(|i| IpAddr::from([198, 51, 100, (i % 250) as u8])))
            .collect();
        let started = Instant::now();
        let names = resolve_hosts(&addrs, Duration::from_millis(300));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the budget holds"
        );
        assert!(names.keys().all(|a| addrs.contains(a)));
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
