//! The smallest HTTP/1.1 server Prometheus needs: `GET /metrics`, one request per connection
//! (`Connection: close`), and nothing else.
//!
//! Everything a client sends is bounded: the request head is read up to [`MAX_HEAD`] bytes
//! within [`HEAD_DEADLINE`], and the answer is written within [`WRITE_TIMEOUT`]; a client
//! that says too much gets 431, one that says nothing valid gets 400, one that is too slow is
//! dropped. A fixed number of [`WORKERS`] serve the connections the accepting thread queues;
//! when [`QUEUED`] are waiting, further ones are closed at once, so a flood costs file
//! descriptors for a moment, never memory or threads.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The largest request head read: request line and headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its whole request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// How long writing the answer may block on a client that does not read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Threads serving connections.
pub const WORKERS: usize = 8;
/// Connections accepted and waiting for a worker before further ones are closed.
pub const QUEUED: usize = 512;

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
    let (tx, rx) = mpsc::sync_channel::<TcpStream>(QUEUED);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..WORKERS {
        let (rx, handler) = (Arc::clone(&rx), Arc::clone(&handler));
        thread::Builder::new()
            .name(format!("lsports-http-{i}"))
            .spawn(move || work(&rx, &*handler))?;
    }
    thread::Builder::new()
        .name("lsports-accept".into())
        .spawn(move || accept(&listener, &tx))?;
    Ok(())
}

fn accept(listener: &TcpListener, queue: &SyncSender<TcpStream>) {
    for stream in listener.incoming() {
        // A failed accept (a client that reset, no file descriptor left) concerns that
        // connection only; the pause keeps a lasting EMFILE from spinning a core.
        let Ok(stream) = stream else {
            thread::sleep(ACCEPT_PAUSE);
            continue;
        };
        match queue.try_send(stream) {
            Ok(()) => {}
            Err(TrySendError::Full(stream)) => drop(stream),
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

fn work(queue: &Mutex<Receiver<TcpStream>>, handler: &Handler) {
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .recv();
        let Ok(mut stream) = next else { return };
        // The client may be gone already; nothing to tell anyone.
        let _ = serve(&mut stream, handler);
    }
}

/// Read one request from `stream` and answer it.
fn serve(stream: &mut TcpStream, handler: &Handler) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let answer = match read_head(stream)? {
        Head::Complete(head) => route(&head),
        Head::TooLarge => Answer::status(431, "Request Header Fields Too Large"),
        Head::Cut => return Ok(()),
    };
    let body = match answer.code {
        200 => handler(),
        _ => format!("{}\n", answer.reason).into_bytes(),
    };
    respond(stream, &answer, &body)
}

/// What was read of a request head.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Up to and without the blank line.
    Complete(Vec<u8>),
    /// Longer than [`MAX_HEAD`].
    TooLarge,
    /// The client closed, or was too slow, before the end of its head.
    Cut,
}

fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Head::Cut);
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(Head::Cut),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Head::Cut);
            }
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(if end > MAX_HEAD {
                Head::TooLarge
            } else {
                Head::Complete(head)
            });
        }
        if head.len() > MAX_HEAD {
            return Ok(Head::TooLarge);
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

fn respond(stream: &mut TcpStream, answer: &Answer, body: &[u8]) -> io::Result<()> {
    let content_type = match answer.code {
        200 => CONTENT_TYPE,
        _ => "text/plain; charset=utf-8",
    };
    let allow = match answer.code {
        405 => "Allow: GET\r\n",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}\
         Connection: close\r\n\r\n",
        answer.code,
        answer.reason,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    linger(stream);
    Ok(())
}

/// Most input read after the answer before closing, and for how long at most.
const LINGER_BYTES: usize = 256 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(1);

/// Say the answer is complete, then read what the client sent beyond its head (bounded) until
/// it closes: closing with unread input would reset the connection, and the reset can reach
/// the client before it has read the answer.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut buffer = [0u8; 8192];
    let mut read = 0;
    while read < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
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
