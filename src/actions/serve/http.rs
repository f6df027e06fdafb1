//! The smallest HTTP/1.1 server Prometheus needs: `GET /metrics`, one request per connection
//! (`Connection: close`), and nothing else.
//!
//! One thread owns every connection and waits on all of them at once (`poll`): it reads
//! request heads, writes answers and lingers before closing, never blocking on one client, so
//! a client that connects and says nothing costs a file descriptor, not a thread. Only a
//! complete head reaches the [`WORKERS`], which make the answer (the listing, at most one per
//! interval) and hand it back to be written.
//!
//! Everything a client sends is bounded: the head up to [`MAX_HEAD`] bytes within
//! [`HEAD_DEADLINE`] ([`BUSY_HEAD_DEADLINE`] while more than half of [`MAX_CONNECTIONS`] are
//! open), the answer written within [`WRITE_TIMEOUT`]; a client that says too much gets 431,
//! one that says nothing valid gets 400, one that is too slow is dropped. At
//! [`MAX_CONNECTIONS`] open, a new connection closes the oldest one of the peer address with
//! the most open: a flood from one address (or from loopback, for a local user) evicts its
//! own connections first, and a scraper's fresh connection is never the one refused.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// The largest request head read: request line and headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its whole request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// How long, while more than half of [`MAX_CONNECTIONS`] are open.
pub const BUSY_HEAD_DEADLINE: Duration = Duration::from_secs(1);
/// How long writing the answer may take for a client that does not read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Threads making answers.
pub const WORKERS: usize = 8;
/// Complete requests waiting for a worker before further ones are closed.
pub const QUEUED: usize = 512;
/// Connections open at once (reading, waiting for an answer, writing, lingering); past it
/// the oldest of the busiest peer is closed. Below the usual 1,024 file descriptors.
pub const MAX_CONNECTIONS: usize = 768;

/// The pause after a failed accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// The one path served.
pub const METRICS_PATH: &str = "/metrics";
/// The exposition format served.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What answers `GET /metrics`: the exposition to send.
pub type Handler = dyn Fn() -> Vec<u8> + Send + Sync;

/// Serve `listener` on a thread of its own and [`WORKERS`] more; they run until the process
/// ends.
pub fn start(listener: TcpListener, handler: Arc<Handler>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let (jobs, queue) = mpsc::sync_channel::<(u64, Head)>(QUEUED);
    let (done, answers) = mpsc::channel::<(u64, Vec<u8>)>();
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let queue = Arc::new(Mutex::new(queue));
    let wake_tx = Arc::new(wake_tx);
    for i in 0..WORKERS {
        let (queue, handler) = (Arc::clone(&queue), Arc::clone(&handler));
        let (done, wake) = (done.clone(), Arc::clone(&wake_tx));
        thread::Builder::new()
            .name(format!("lsports-http-{i}"))
            .spawn(move || work(&queue, &*handler, &done, &wake))?;
    }
    thread::Builder::new()
        .name("lsports-accept".into())
        .spawn(move || {
            Connections::new(listener, jobs, answers, wake_rx).run();
        })?;
    Ok(())
}

/// Make answers to complete heads, and hand them back to be written.
fn work(
    queue: &Mutex<Receiver<(u64, Head)>>,
    handler: &Handler,
    done: &Sender<(u64, Vec<u8>)>,
    wake: &UnixStream,
) {
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .recv();
        let Ok((token, head)) = next else { return };
        if done.send((token, answer(&head, handler))).is_err() {
            return;
        }
        // A full pipe already wakes the poller; nothing else can fail that matters.
        let _ = (&*wake).write(&[1]);
    }
}

/// The whole answer (status line, headers and body) to a request head.
fn answer(head: &Head, handler: &Handler) -> Vec<u8> {
    let answer = match head {
        Head::Complete(head) => route(head),
        Head::TooLarge => Answer::status(431, "Request Header Fields Too Large"),
    };
    let body = match answer.code {
        200 => handler(),
        _ => format!("{}\n", answer.reason).into_bytes(),
    };
    let mut out = response_head(&answer, body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// What was read of a request head.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Up to and without the blank line.
    Complete(Vec<u8>),
    /// Longer than [`MAX_HEAD`].
    TooLarge,
}

/// Where one connection is.
enum State {
    /// Reading its head (what was read so far).
    Reading(Vec<u8>),
    /// Its head is with a worker.
    Answering,
    /// Writing the answer, from this offset.
    Writing(Vec<u8>, usize),
    /// The answer is sent and the write side shut: reading (and dropping) what the client
    /// still sends until it closes, so closing does not reset the answer away (`read` so far).
    Lingering(usize),
}

struct Conn {
    stream: TcpStream,
    peer: Option<IpAddr>,
    /// When the current state began (each has its own time limit).
    since: Instant,
    /// When the connection was accepted (the eviction order).
    opened: Instant,
    state: State,
}

/// Most input read after the answer before closing, and for how long at most.
const LINGER_BYTES: usize = 256 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(1);

/// The thread that owns every connection.
struct Connections {
    listener: TcpListener,
    jobs: SyncSender<(u64, Head)>,
    answers: Receiver<(u64, Vec<u8>)>,
    wake: UnixStream,
    conns: HashMap<u64, Conn>,
    next: u64,
}

impl Connections {
    fn new(
        listener: TcpListener,
        jobs: SyncSender<(u64, Head)>,
        answers: Receiver<(u64, Vec<u8>)>,
        wake: UnixStream,
    ) -> Connections {
        Connections {
            listener,
            jobs,
            answers,
            wake,
            conns: HashMap::new(),
            next: 0,
        }
    }

    fn run(mut self) {
        loop {
            let busy = self.conns.len() > MAX_CONNECTIONS / 2;
            let now = Instant::now();
            self.expire(now, busy);
            // A connection whose answer is being made is not watched: a client that closed
            // meanwhile would report a hang-up on every poll until the answer comes.
            let tokens: Vec<u64> = (self.conns.iter())
                .filter(|(_, c)| !matches!(c.state, State::Answering))
                .map(|(t, _)| *t)
                .collect();
            let mut ready = vec![false; tokens.len()];
            let (accept_ready, woken);
            {
                let mut fds = Vec::with_capacity(tokens.len() + 2);
                fds.push(PollFd::new(&self.listener, PollFlags::IN));
                fds.push(PollFd::new(&self.wake, PollFlags::IN));
                for t in &tokens {
                    let conn = &self.conns[t];
                    let flags = match conn.state {
                        State::Writing(..) => PollFlags::OUT,
                        _ => PollFlags::IN,
                    };
                    fds.push(PollFd::new(&conn.stream, flags));
                }
                let wait = self.next_deadline(now, busy).map(|d| Timespec {
                    tv_sec: d.as_secs() as _,
                    tv_nsec: d.subsec_nanos() as _,
                });
                match poll(&mut fds, wait.as_ref()) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => {
                        thread::sleep(ACCEPT_PAUSE);
                        continue;
                    }
                }
                let any = |f: &PollFd<'_>| !f.revents().is_empty();
                accept_ready = any(&fds[0]);
                woken = any(&fds[1]);
                for (i, f) in fds[2..].iter().enumerate() {
                    ready[i] = any(f);
                }
            }
            if woken {
                let mut sink = [0u8; 256];
                while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
            }
            while let Ok((token, bytes)) = self.answers.try_recv() {
                self.answered(token, bytes);
            }
            for (token, _) in tokens.iter().zip(&ready).filter(|(_, r)| **r) {
                self.progress(*token);
            }
            if accept_ready {
                self.accept();
            }
        }
    }

    /// The time limit of a connection's state.
    fn limit(state: &State, busy: bool) -> Option<Duration> {
        match state {
            State::Reading(_) if busy => Some(BUSY_HEAD_DEADLINE),
            State::Reading(_) => Some(HEAD_DEADLINE),
            State::Answering => None,
            State::Writing(..) => Some(WRITE_TIMEOUT),
            State::Lingering(_) => Some(LINGER_TIME),
        }
    }

    /// Close every connection past its state's time limit.
    fn expire(&mut self, now: Instant, busy: bool) {
        self.conns.retain(|_, c| {
            Self::limit(&c.state, busy).is_none_or(|limit| now.duration_since(c.since) < limit)
        });
    }

    /// How long until the first time limit.
    fn next_deadline(&self, now: Instant, busy: bool) -> Option<Duration> {
        (self.conns.values())
            .filter_map(|c| {
                Some((c.since + Self::limit(&c.state, busy)?).saturating_duration_since(now))
            })
            .min()
            .map(|d| d + Duration::from_millis(1))
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.conns.len() >= MAX_CONNECTIONS {
                        self.evict();
                    }
                    let now = Instant::now();
                    self.next += 1;
                    self.conns.insert(
                        self.next,
                        Conn {
                            stream,
                            peer: Some(peer.ip()),
                            since: now,
                            opened: now,
                            state: State::Reading(Vec::new()),
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A client that reset concerns that connection only; no file descriptor
                // left: the pause keeps a lasting EMFILE from spinning a core.
                Err(_) => {
                    thread::sleep(ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Close the oldest connection of the peer with the most open.
    fn evict(&mut self) {
        let mut per_peer: HashMap<Option<IpAddr>, usize> = HashMap::new();
        for c in self.conns.values() {
            *per_peer.entry(c.peer).or_default() += 1;
        }
        let Some((&busiest, _)) = per_peer.iter().max_by_key(|(_, n)| **n) else {
            return;
        };
        let oldest = (self.conns.iter())
            .filter(|(_, c)| c.peer == busiest)
            .min_by_key(|(_, c)| c.opened)
            .map(|(t, _)| *t);
        if let Some(t) = oldest {
            self.conns.remove(&t);
        }
    }

    /// A worker's answer to connection `token`: write it.
    fn answered(&mut self, token: u64, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.state = State::Writing(bytes, 0);
        conn.since = Instant::now();
        self.progress(token);
    }

    /// Read or write what connection `token` is ready for.
    fn progress(&mut self, token: u64) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let keep = match &mut conn.state {
            State::Reading(head) => match read_more(&mut conn.stream, head) {
                Progress::More => true,
                Progress::Done(h) => {
                    conn.state = State::Answering;
                    match self.jobs.try_send((token, h)) {
                        Ok(()) => true,
                        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                    }
                }
                Progress::Closed => false,
            },
            State::Answering => true,
            State::Writing(bytes, off) => loop {
                match conn.stream.write(&bytes[*off..]) {
                    Ok(0) => break false,
                    Ok(n) => {
                        *off += n;
                        if *off == bytes.len() {
                            let shut = conn.stream.shutdown(std::net::Shutdown::Write).is_ok();
                            conn.state = State::Lingering(0);
                            conn.since = Instant::now();
                            break shut;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break false,
                }
            },
            State::Lingering(read) => {
                let mut buffer = [0u8; 8192];
                loop {
                    match conn.stream.read(&mut buffer) {
                        Ok(0) => break false,
                        Ok(n) => {
                            *read += n;
                            if *read >= LINGER_BYTES {
                                break false;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break false,
                    }
                }
            }
        };
        if !keep {
            self.conns.remove(&token);
        }
    }
}

/// What reading a head got to.
enum Progress {
    /// Not the end of the head yet.
    More,
    /// The head (complete or too large).
    Done(Head),
    /// The client closed (or failed) before its head ended.
    Closed,
}

/// Read what `stream` has (without blocking) onto `head`.
fn read_more(stream: &mut TcpStream, head: &mut Vec<u8>) -> Progress {
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Progress::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::More,
            Err(_) => return Progress::Closed,
        };
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(head) {
            head.truncate(end);
            return Progress::Done(if end > MAX_HEAD {
                Head::TooLarge
            } else {
                Head::Complete(std::mem::take(head))
            });
        }
        if head.len() > MAX_HEAD {
            return Progress::Done(Head::TooLarge);
        }
    }
}

/// Where the head ends: the first blank line (`\r\n\r\n`, or `\n\n` from a lax client).
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    crlf.into_iter().chain(lf).min()
}

/// The status line of an answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    code: u16,
    reason: &'static str,
}

impl Answer {
    fn status(code: u16, reason: &'static str) -> Answer {
        Answer { code, reason }
    }
}

/// The answer to a request head: 200 for `GET /metrics` (a query string is ignored), 405 for
/// another method on it, 404 for another path, 400 for what is not HTTP/1.x.
fn route(head: &[u8]) -> Answer {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Answer::status(400, "Bad Request");
    };
    if !version.starts_with(b"HTTP/1.") || !target.starts_with(b"/") {
        return Answer::status(400, "Bad Request");
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (path == METRICS_PATH.as_bytes(), method == b"GET") {
        (true, true) => Answer::status(200, "OK"),
        (true, false) => Answer::status(405, "Method Not Allowed"),
        (false, _) => Answer::status(404, "Not Found"),
    }
}

/// The status line and headers of an answer whose body is `length` bytes.
fn response_head(answer: &Answer, length: usize) -> String {
    let content_type = match answer.code {
        200 => CONTENT_TYPE,
        _ => "text/plain; charset=utf-8",
    };
    let allow = match answer.code {
        405 => "Allow: GET\r\n",
        _ => "",
    };
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n{allow}\
         Connection: close\r\n\r\n",
        answer.code, answer.reason,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(request: &str) -> u16 {
        route(request.as_bytes()).code
    }

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(code("GET /metrics HTTP/1.1\r\nHost: x"), 200);
        assert_eq!(code("GET /metrics?x=1 HTTP/1.0"), 200);
        assert_eq!(code("POST /metrics HTTP/1.1"), 405);
        assert_eq!(code("HEAD /metrics HTTP/1.1"), 405);
        assert_eq!(code("GET / HTTP/1.1"), 404);
        assert_eq!(code("GET /metrics/../etc HTTP/1.1"), 404);
        assert_eq!(code("GET /metrics"), 400);
        assert_eq!(code("\x16\x03\x01\x02\x00"), 400);
        assert_eq!(code("GET http://x/metrics HTTP/1.1"), 400);
        assert_eq!(code("GET /metrics SPDY/3"), 400);
        assert_eq!(code(""), 400);
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
