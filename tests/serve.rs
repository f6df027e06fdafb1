//! `lsports serve` (issue #15) against a real Prometheus (Debian package `prometheus`, which
//! `.ci/run` installs) and real clients, all inside a world's private network namespace, so
//! the fixed ports used here never meet another test's or the host's.
//!
//! The test's own HTTP clients run on threads that entered the namespace (`setns` moves only
//! the calling thread), so a hundred concurrent scrapers are a hundred threads.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Where serve listens inside the namespace.
const SERVE_PORT: u16 = 10150;
/// Where Prometheus listens inside the namespace.
const PROMETHEUS_PORT: u16 = 9090;

/// Run `f` on a thread that entered the network namespace of `world`.
fn in_world<T: Send>(world: &World, f: impl FnOnce() -> T + Send) -> T {
    let ns = File::open(format!("/proc/{}/ns/net", world.pid())).expect("the world's netns");
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("client thread")
    })
}

/// Send `request` to `port` on the namespace's loopback (from a thread already in it) and
/// read the answer until the server closes: (status code, body). `None` when the server
/// closed without a status line.
fn exchange(port: u16, request: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    stream.write_all(request).ok()?;
    let mut answer = Vec::new();
    // A reset after the answer (the server closing on input it did not read) still leaves
    // what was read.
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    exchange(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `lsports serve ARGS` started in the world (as nobody with `as_nobody`), once it answers.
fn start_serve(world: &World, args: &[&str], as_nobody: bool) -> Spawned {
    start_serve_from(&lsports_bin(), world, args, as_nobody)
}

/// [`start_serve`] running the lsports binary at `binary`.
fn start_serve_from(binary: &Path, world: &World, args: &[&str], as_nobody: bool) -> Spawned {
    let log = File::create(world.dir().join("serve.log")).unwrap();
    let mut cmd = world.enter();
    if as_nobody {
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ]);
    }
    cmd.arg(binary)
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{SERVE_PORT}")])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut serve = Spawned::start(cmd, "lsports serve");
    serve.wait_for("serve to answer", || {
        in_world(world, || get(SERVE_PORT, "/metrics"))
    });
    serve
}

fn serve_log(world: &World) -> String {
    std::fs::read_to_string(world.dir().join("serve.log")).unwrap_or_default()
}

/// The value of the sample `name` (exactly, labels included) in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The samples of a metric family whose label set contains every `label="value"` of `has`.
fn samples_with<'a>(text: &'a str, family: &str, has: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .filter(|l| has.iter().all(|h| l.contains(h)))
        .collect()
}

/// Names itself (before its socket exists, so that every poll sees the name), binds one
/// socket, says it is ready, and holds it until killed (two minutes at most).
const NAMED_LISTENER_PY: &str = r#"
import ctypes, signal, socket, sys, time
libc = ctypes.CDLL(None)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
kind = socket.SOCK_STREAM if sys.argv[2] == "tcp" else socket.SOCK_DGRAM
sock = socket.socket(socket.AF_INET, kind)
sock.bind((sys.argv[3], int(sys.argv[4])))
if kind == socket.SOCK_STREAM:
    sock.listen(8)
open(sys.argv[5], "w").close()
time.sleep(120)
"#;

/// A listener called `name` on `proto` `addr`:`port`, in the world, until dropped.
fn listener(world: &World, name: &str, proto: &str, addr: &str, port: u16) -> Spawned {
    let ready = world.dir().join(format!("{name}.up"));
    let port = port.to_string();
    let ready_arg = ready.to_str().unwrap();
    let args = ["-c", NAMED_LISTENER_PY, name, proto, addr, &port, ready_arg];
    let mut spawned = world.spawn(name, "python3", &args);
    spawned.wait_for_file(&ready);
    spawned
}

/// A world with one ssh-like listener the baseline records.
fn world() -> World {
    World::start(&json!([group_with(
        "tcp",
        "0.0.0.0",
        "sshd",
        json!({"port": 2222})
    )]))
}

/// Percent-encode a query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Ask Prometheus for `query` (an instant query) until a series has a value for which `want`
/// holds; the series' labels and value. Fails after a minute, with Prometheus' last answer.
fn query_until(world: &World, query: &str, want: impl Fn(f64) -> bool) -> (Value, f64) {
    let path = format!("/api/v1/query?query={}", encode(query));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some((code, body)) = in_world(world, || get(PROMETHEUS_PORT, &path)) {
            assert_eq!(code, 200, "{query}: {body}");
            let answer: Value = serde_json::from_str(&body).expect("Prometheus answers JSON");
            let results = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let found = results.into_iter().find_map(|r| {
                let value: f64 = r["value"][1].as_str()?.parse().ok()?;
                want(value).then(|| (r["metric"].clone(), value))
            });
            if let Some(found) = found {
                return found;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let scrape = in_world(world, || get(SERVE_PORT, "/metrics")).map(|(_, text)| text);
    panic!(
        "Prometheus never answered {query} as wanted; last answer: {last}\nserve's log:\n{}\n\
         serve's /metrics now:\n{}",
        serve_log(world),
        scrape.unwrap_or_default()
    );
}

/// Prometheus in the world, scraping serve every second.
fn start_prometheus(world: &World) -> Spawned {
    let dir = world.dir().join("prometheus");
    std::fs::create_dir(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: lsports\n    static_configs:\n      \
             - targets: ['127.0.0.1:{SERVE_PORT}']\n"
        ),
    )
    .unwrap();
    let log = File::create(dir.join("prometheus.log")).unwrap();
    let mut cmd = world.enter();
    cmd.arg("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut prometheus = Spawned::start(cmd, "prometheus");
    prometheus.wait_for("prometheus to be ready", || {
        in_world(world, || get(PROMETHEUS_PORT, "/-/ready")).filter(|(code, _)| *code == 200)
    });
    prometheus
}

/// Record the world's listeners into a baseline as an operator would, with serve running (as
/// a service would be), so that serve's own socket is expected too.
fn baseline(world: &World) -> String {
    let path = world.dir().join("baseline.toml");
    let path = path.to_str().unwrap().to_string();
    let serve = start_serve(world, &[], false);
    assert_success(&world.run(&["baseline", "save", &path]), &["baseline save"]);
    drop(serve);
    path
}

/// The issue's target: a real Prometheus scrapes serve, and the series come back through its
/// HTTP API: the listening sockets, lsports_up, a listener that opened and closed (counted by
/// program), and the audit's unexpected listener while it listened.
#[test]
fn prometheus_scrapes_the_listeners_events_and_audit() {
    if !need_root("entering the world's namespace from a test thread") || !have("prometheus") {
        return;
    }
    let world = world();
    // Prometheus listens too, and is part of what the baseline expects.
    let _prometheus = start_prometheus(&world);
    let baseline = baseline(&world);
    let _serve = start_serve(
        &world,
        &["--interval", "1s", "--baseline", &baseline],
        false,
    );
    let (up, _) = query_until(&world, "lsports_up", |v| v == 1.0);
    assert_eq!(up["job"], "lsports", "{up}");
    let (sshd, _) = query_until(&world, r#"lsports_listening_socket{port="2222"}"#, |v| {
        v == 1.0
    });
    assert_eq!(
        (&sshd["program"], &sshd["proto"], &sshd["exposure"]),
        (&json!("sshd"), &json!("tcp"), &json!("all")),
        "{sshd}"
    );
    // Nothing unexpected yet: the baseline is what listens.
    query_until(&world, "lsports_audit_unexpected_listeners", |v| v == 0.0);

    let blip = listener(&world, "blip", "tcp", "0.0.0.0", 4444);
    let (unexpected, _) = query_until(&world, "lsports_audit_unexpected", |v| v == 1.0);
    assert_eq!(
        (
            &unexpected["port"],
            &unexpected["program"],
            &unexpected["reason"]
        ),
        (&json!("4444"), &json!("blip"), &json!("new")),
        "{unexpected}"
    );
    query_until(&world, "lsports_audit_unexpected_listeners", |v| v == 1.0);
    drop(blip);
    // The close is counted by the event source, whether or not a scrape saw the listener.
    for event in ["open", "close"] {
        let query = format!(r#"lsports_listener_events_total{{event="{event}",program="blip"}}"#);
        query_until(&world, &query, |v| v == 1.0);
    }
    query_until(&world, "lsports_audit_unexpected_listeners", |v| v == 0.0);
    assert!(
        !serve_log(&world).contains("panicked"),
        "{}",
        serve_log(&world)
    );
}

/// `promtool check metrics` accepts every family serve adds: counters with samples, the
/// audit's series, an empty family.
#[test]
fn promtool_accepts_what_serve_serves() {
    if !need_root("entering the world's namespace from a test thread") || !have("promtool") {
        return;
    }
    let world = world();
    let baseline = baseline(&world);
    let _serve = start_serve(
        &world,
        &["--interval", "1s", "--baseline", &baseline],
        false,
    );
    let _blip = listener(&world, "blip", "udp", "127.0.0.1", 5353);
    let text = wait_until("the unexpected listener in a scrape", || {
        let (_, text) = in_world(&world, || get(SERVE_PORT, "/metrics"))?;
        let seen = sample(&text, "lsports_audit_unexpected_listeners") == Some(1.0);
        let counted = !samples_with(&text, "lsports_listener_events_total", &[]).is_empty();
        (seen && counted).then_some(text)
    });
    let mut cmd = scrubbed("promtool");
    cmd.args(["check", "metrics"]);
    let out = output_with_input(cmd, Some(text.as_bytes()), "promtool check metrics");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics ({}):\n{}{}\n--- input ---\n{text}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    let unexpected = samples_with(&text, "lsports_audit_unexpected", &[r#"port="5353""#]);
    assert_eq!(unexpected.len(), 1, "{text}");
    assert!(unexpected[0].contains(r#"proto="udp""#), "{text}");
}

/// A hundred scrapers at once all get the exposition, made by one listing: the scrapes that
/// arrive while it runs wait for it instead of starting their own.
#[test]
fn a_hundred_concurrent_scrapers_share_one_listing() {
    if !need_root("entering the world's namespace from a test thread") {
        return;
    }
    let world = world();
    let _serve = start_serve(&world, &["--interval", "10m"], false);
    let started = Barrier::new(100);
    let (started, world_ref) = (Arc::new(started), &world);
    let answers: Vec<Option<(u16, String)>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..100)
            .map(|_| {
                let started = Arc::clone(&started);
                scope.spawn(move || {
                    in_world(world_ref, || {
                        started.wait();
                        get(SERVE_PORT, "/metrics")
                    })
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for answer in &answers {
        let (code, text) = answer.as_ref().expect("every scraper is answered");
        assert_eq!(*code, 200, "{text}");
        assert_eq!(sample(text, "lsports_up"), Some(1.0), "{text}");
        assert_eq!(
            samples_with(text, "lsports_listening_socket", &[r#"port="2222""#]).len(),
            1,
            "{text}"
        );
    }
    // The one listing of start_serve's first request served all of them.
    let (_, text) = in_world(&world, || get(SERVE_PORT, "/metrics")).unwrap();
    assert_eq!(sample(&text, "lsports_listings_total"), Some(1.0), "{text}");
}

/// Oversized, slow, garbage and wrong requests are answered with an error or dropped, and
/// the server keeps serving: a slow client holds a worker for the head deadline at most.
#[test]
fn bad_requests_do_no_harm() {
    if !need_root("entering the world's namespace from a test thread") {
        return;
    }
    let world = world();
    let mut serve = start_serve(&world, &["--interval", "1s"], false);
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        ("an oversized head", huge.into_bytes(), Some(431)),
        ("an endless header line", vec![b'x'; 100_000], Some(431)),
        (
            "binary garbage",
            b"\x16\x03\x01\x00\xff\x00\r\n\r\n".to_vec(),
            Some(400),
        ),
        ("HTTP/0.9", b"GET /metrics\r\n\r\n".to_vec(), Some(400)),
        (
            "a POST",
            b"POST /metrics HTTP/1.1\r\n\r\n".to_vec(),
            Some(405),
        ),
        (
            "another path",
            b"GET /debug HTTP/1.1\r\n\r\n".to_vec(),
            Some(404),
        ),
        (
            "a traversal",
            b"GET /metrics/../../etc/passwd HTTP/1.1\r\n\r\n".to_vec(),
            Some(404),
        ),
        ("a closed connection", b"GET /met".to_vec(), None),
    ];
    in_world(&world, || {
        for (what, request, want) in &cases {
            let got = match want {
                None => {
                    let mut s = TcpStream::connect(("127.0.0.1", SERVE_PORT)).unwrap();
                    s.write_all(request).unwrap();
                    drop(s);
                    None
                }
                Some(_) => exchange(SERVE_PORT, request).map(|(code, _)| code),
            };
            assert_eq!(got, *want, "{what}");
        }
    });
    // Slow clients on every worker and more: each is cut at the head deadline, and a real
    // scrape behind them is still answered.
    let slow_started = Instant::now();
    in_world(&world, || {
        let slow: Vec<TcpStream> = (0..12)
            .map(|_| {
                let mut s = TcpStream::connect(("127.0.0.1", SERVE_PORT)).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
                s
            })
            .collect();
        let (code, text) = get(SERVE_PORT, "/metrics").expect("a scrape behind slow clients");
        assert_eq!((code, sample(&text, "lsports_up")), (200, Some(1.0)));
        for mut s in slow {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            assert!(rest.is_empty(), "a slow client is dropped, not answered");
        }
    });
    assert!(
        slow_started.elapsed() < Duration::from_secs(30),
        "the head deadline bounds a slow client"
    );
    assert_eq!(serve.try_status(), None, "serve is still running");
    let log = serve_log(&world);
    assert!(!log.contains("panicked"), "{log}");
}

/// Unprivileged, serve lists what it can: every socket, with the owners it may see (none of
/// root's here), and says up.
#[test]
fn unprivileged_serve_lists_what_it_can() {
    if !need_root("running serve as nobody") {
        return;
    }
    let world = world();
    let _serve = start_serve(&world, &["--interval", "1s"], true);
    let (code, text) = in_world(&world, || get(SERVE_PORT, "/metrics")).unwrap();
    assert_eq!(
        (code, sample(&text, "lsports_up")),
        (200, Some(1.0)),
        "{text}"
    );
    let sshd = samples_with(&text, "lsports_listening_socket", &[r#"port="2222""#]);
    assert_eq!(sshd.len(), 1, "{text}");
    assert!(
        sshd[0].contains(r#"program="""#),
        "root's process is not nobody's to see: {text}"
    );
    // `program="lsports` with no closing quote: while serve spawns `nft` for the rules, the
    // child holds the listener between its clone and its exec, under the spawning thread's
    // name (`lsports;lsports-rules`), as any spawning program's children do.
    let serve = samples_with(&text, "lsports_listening_socket", &[r#"program="lsports"#]);
    assert_eq!(serve.len(), 1, "its own socket has its owner: {text}");
}

/// Names itself, then three times listens on TCP for 5 ms and closes, binds UDP for 5 ms and
/// releases it, and binds a UDP client socket on an ephemeral port (which serve leaves out).
const FLASH_PY: &str = r#"
import ctypes, socket, time
ctypes.CDLL(None).prctl(15, b"flash", 0, 0, 0)  # PR_SET_NAME
for port in (4001, 4002, 4003):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", port))
    s.listen(8)
    time.sleep(0.005)
    s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 5005))
time.sleep(0.005)
u.close()
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.bind(("127.0.0.1", 0))
client.close()
"#;

/// `--events kernel`: listeners living 5 ms each, too short for any poll, are counted opened
/// and closed under their program, read from /metrics directly; the listener there at the
/// start is learned, not counted; nothing is lost.
#[test]
fn kernel_events_count_listeners_too_short_for_a_poll() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let world = world();
    let _serve = start_serve(&world, &["--events", "kernel", "-v"], false);
    let mut flash = world.enter();
    flash.args(["python3", "-c", FLASH_PY]);
    let out = output_guarded(flash, "the flashing listeners");
    assert!(out.status.success(), "{}", stderr(&out));
    let counted = |text: &str, event: &str| {
        let name = format!(r#"lsports_listener_events_total{{event="{event}",program="flash"}}"#);
        sample(text, &name)
    };
    let text = wait_until("the four closes counted", || {
        let (_, text) = in_world(&world, || get(SERVE_PORT, "/metrics"))?;
        (counted(&text, "close") == Some(4.0)).then_some(text)
    });
    assert_eq!(
        (
            counted(&text, "open"),
            sample(
                &text,
                r#"lsports_listener_event_source_info{source="kernel"}"#
            ),
            sample(&text, "lsports_listener_events_lost_total"),
        ),
        (Some(4.0), Some(1.0), Some(0.0)),
        "{text}"
    );
    // Every event counted is flash's: not sshd's (there before serve), not serve's own.
    let all = samples_with(&text, "lsports_listener_events_total", &[]);
    assert_eq!(all.len(), 2, "{text}");
    assert!(
        serve_log(&world).contains("counting listener events from kernel events"),
        "{}",
        serve_log(&world)
    );
}

/// Unprivileged, `--events auto` counts by polling and says why under -v; `--events kernel`
/// exits 1 saying what it needs.
#[test]
fn unprivileged_serve_polls_for_events_and_kernel_fails() {
    if !need_root("running serve as nobody") {
        return;
    }
    let world = world();
    let _serve = start_serve(&world, &["--events", "auto", "-v"], true);
    let (_, text) = in_world(&world, || get(SERVE_PORT, "/metrics")).unwrap();
    assert_eq!(
        sample(
            &text,
            r#"lsports_listener_event_source_info{source="poll"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        serve_log(&world).contains(
            "kernel events unavailable, counting events by polling instead: kernel events need root"
        ),
        "{}",
        serve_log(&world)
    );
    let out = world
        .run_as_nobody(&["serve", "--events", "kernel", "--listen", "127.0.0.1:10151"])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("lsports: --events kernel: kernel events need root"),
        "{}",
        stderr(&out)
    );
}

/// The address in use is a clear error, exit 1; a broken baseline exits 2 naming the file,
/// before anything listens.
#[test]
fn startup_errors_are_clear() {
    if !need_root("entering the world's namespace from a test thread") {
        return;
    }
    let world = world();
    let taken = world.run(&["serve", "--listen", "0.0.0.0:2222"]);
    assert_eq!(taken.status.code(), Some(1), "{}", stderr(&taken));
    assert!(
        stderr(&taken).contains("cannot listen on 0.0.0.0:2222")
            && stderr(&taken).contains("--listen"),
        "{}",
        stderr(&taken)
    );
    let broken = world.dir().join("broken.toml");
    std::fs::write(&broken, "[[listener]]\nport = \"x\"\n").unwrap();
    let out = world.run(&["serve", "--baseline", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("broken.toml"), "{}", stderr(&out));
}

#[test]
fn flags_that_make_no_sense_for_serve_are_usage_errors() {
    for (args, says) in [
        (&["serve", "--format", "json"][..], "Prometheus format"),
        (&["serve", "-a"], "-a/--all"),
        (&["serve", "-c"], "-c/--continuous"),
        (&["serve", "--snapshot", "s.tar"], "live system"),
        (
            &["serve", "--include-ephemeral", "--ignore-ephemeral"],
            "contradict",
        ),
        (&["serve", "--listen", "localhost"], "--listen"),
    ] {
        let text = usage_error(args);
        assert!(text.contains(says), "{args:?}: {text}");
    }
}

/// The README's code block that begins with `first_line`.
fn readme_block(first_line: &str) -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find(&format!("```yaml\n{first_line}\n"))
        .unwrap_or_else(|| panic!("README has no yaml block starting {first_line}"));
    let block = &readme[start + "```yaml\n".len()..];
    block[..block.find("```").unwrap()].to_string()
}

/// The README's scrape configuration and alert rules pass promtool, and the "unexpected
/// listener" alert fires on a series as serve writes it, with the summary filled in.
#[test]
fn readme_scrape_config_and_alert_rules_pass_promtool() {
    if !have("promtool") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, readme_block("# /etc/prometheus/prometheus.yml")).unwrap();
    let rules = dir.path().join("lsports-rules.yml");
    std::fs::write(&rules, readme_block("# /etc/prometheus/lsports-rules.yml")).unwrap();
    let unit_test = dir.path().join("test.yml");
    std::fs::write(
        &unit_test,
        r#"rule_files: [lsports-rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'lsports_audit_unexpected{proto="tcp",address="0.0.0.0",port="4444",interface="",exposure="all",user="root",program="nc",exe="/usr/bin/nc",reason="new"}'
        values: '1 1 1'
      - series: 'lsports_listener_events_total{event="close",program="flappy"}'
        values: '0 2 4 6 8'
    alert_rule_test:
      - eval_time: 2m
        alertname: UnexpectedListener
        exp_alerts:
          - exp_labels: {proto: tcp, address: 0.0.0.0, port: "4444", exposure: all, user: root, program: nc, exe: /usr/bin/nc, reason: new}
            exp_annotations:
              summary: "nc (root) listens on tcp 0.0.0.0:4444, which the baseline does not know (new)"
      - eval_time: 4m
        alertname: ListenerFlapping
        exp_alerts:
          - exp_labels: {event: close, program: flappy}
            exp_annotations:
              summary: "flappy closed a listener more than 3 times in 15 minutes"
"#,
    )
    .unwrap();
    for args in [
        vec!["check", "config", config.to_str().unwrap()],
        vec!["check", "rules", rules.to_str().unwrap()],
        vec!["test", "rules", unit_test.to_str().unwrap()],
    ] {
        let mut cmd = scrubbed("promtool");
        cmd.args(&args).current_dir(dir.path());
        let out = output_guarded(cmd, &format!("promtool {}", args.join(" ")));
        assert!(
            out.status.success(),
            "promtool {args:?} ({}):\n{}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
    }
}

/// What a bare `lsports serve` means: loopback on the documented port, one listing per 15
/// seconds, UDP client sockets left out; and the flags that change it.
#[test]
fn serve_defaults_and_flags_resolve() {
    use lsports::cli::Cli;
    use lsports::config::Action;
    let resolve = |args: &[&str]| {
        let config = Cli::config_from(["lsports", "serve"].iter().chain(args)).unwrap();
        let Action::Serve(spec) = config.action.clone() else {
            panic!("not serve: {:?}", config.action)
        };
        (spec, config)
    };
    let (spec, config) = resolve(&[]);
    assert_eq!(spec.listen.to_string(), "127.0.0.1:10150");
    assert_eq!(spec.interval, Duration::from_secs(15));
    assert!(spec.audit().is_none());
    assert_eq!(spec.events, lsports::config::EventsChoice::Auto);
    assert!(
        config.filter.ephemeral.is_some(),
        "ephemeral UDP left out by default"
    );
    let (spec, config) = resolve(&[
        "--listen",
        "[::1]:9999",
        "--interval",
        "2s",
        "--include-ephemeral",
        "--netns",
        "all",
        "-t",
    ]);
    assert_eq!(
        (spec.listen.to_string(), spec.interval),
        ("[::1]:9999".to_string(), Duration::from_secs(2))
    );
    assert!(config.filter.ephemeral.is_none());
    let (spec, _) = resolve(&["--events", "kernel"]);
    assert_eq!(spec.events, lsports::config::EventsChoice::Kernel);
    let (spec, _) = resolve(&["--policy", "p.toml"]);
    assert!(
        spec.audit()
            .is_some_and(|a| a.policy.is_some() && a.baseline.is_none())
    );
}

/// Connections that say nothing cost serve no worker: behind 40 of them (more than its
/// workers) and behind more than it keeps open at once (the oldest of the busiest peer is
/// closed), a scrape is answered before any idle client's head deadline (5 s) has passed —
/// which a server giving each connection a worker until then cannot do.
#[test]
fn idle_connections_do_not_starve_a_scrape() {
    if !need_root("entering the world's namespace from a test thread") {
        return;
    }
    let world = world();
    let mut serve = start_serve(&world, &["--interval", "1s"], false);
    in_world(&world, || {
        for count in [40, 900] {
            let idle: Vec<TcpStream> = (0..count)
                .map(|_| TcpStream::connect(("127.0.0.1", SERVE_PORT)).expect("connect"))
                .collect();
            let mut scrape = TcpStream::connect(("127.0.0.1", SERVE_PORT)).expect("connect");
            scrape
                .set_read_timeout(Some(Duration::from_secs(4)))
                .unwrap();
            scrape
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            let mut answer = Vec::new();
            let _ = scrape.read_to_end(&mut answer);
            let text = String::from_utf8_lossy(&answer);
            assert!(
                text.starts_with("HTTP/1.1 200 "),
                "behind {count} idle connections, a scrape got {text:?}"
            );
            assert_eq!(sample(&text, "lsports_up"), Some(1.0), "{text}");
            drop(idle);
        }
    });
    assert_eq!(serve.try_status(), None, "serve is still running");
    let log = serve_log(&world);
    assert!(!log.contains("panicked"), "{log}");
}

/// Unprivileged, serve cannot tell whether root's listener is the program a deny rule names:
/// nothing is unexpected, and the audit says it is incomplete; as root, the rule fires.
#[test]
fn unprivileged_serve_says_a_deny_rule_could_not_be_evaluated() {
    if !need_root("running serve as nobody") {
        return;
    }
    let world = world();
    let files = tempfile::tempdir().unwrap();
    let policy = files.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = \"allow\"\n[[rule]]\naction = \"deny\"\nprogram = \"sshd\"\n",
    )
    .unwrap();
    for (path, mode) in [(files.path(), 0o755), (policy.as_path(), 0o644)] {
        let permissions = std::os::unix::fs::PermissionsExt::from_mode(mode);
        std::fs::set_permissions(path, permissions).unwrap();
    }
    // Only root's listener is audited: serve's own (a binary wherever the tests were built,
    // perhaps under a world-writable /tmp, which fails the audit by its flag) would decide it.
    let args = [
        "--interval",
        "1s",
        "--port",
        "2222",
        "--policy",
        policy.to_str().unwrap(),
    ];
    let audit = |text: &str| {
        ["unexpected_listeners", "not_checked", "incomplete"]
            .map(|name| sample(text, &format!("lsports_audit_{name}")))
    };
    for (as_nobody, want) in [(true, [0.0, 1.0, 1.0]), (false, [1.0, 0.0, 0.0])] {
        let mut serve = start_serve(&world, &args, as_nobody);
        let (_, text) = in_world(&world, || get(SERVE_PORT, "/metrics")).unwrap();
        assert_eq!(
            audit(&text),
            want.map(Some),
            "as nobody: {as_nobody}\n{text}"
        );
        serve.signal(nix::sys::signal::Signal::SIGTERM);
        serve.wait();
    }
}

/// A listener flagged `exe-writable-dir` (serve's own, run from a world-writable directory,
/// as a binary built or dropped under /tmp is) is not a failure serve exports: it must not
/// hide that a deny rule could not be evaluated for root's listener.
#[test]
fn a_flagged_listener_does_not_hide_an_incomplete_audit_from_serve() {
    if !need_root("running serve as nobody") {
        return;
    }
    let world = world();
    let files = tempfile::tempdir().unwrap();
    let policy = files.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = \"allow\"\n[[rule]]\naction = \"deny\"\nprogram = \"sshd\"\n",
    )
    .unwrap();
    // A directory anyone may write to (as /tmp), holding serve's binary and the policy.
    let binary = files.path().join("lsports");
    std::fs::copy(lsports_bin(), &binary).unwrap();
    for (path, mode) in [(files.path(), 0o1777), (policy.as_path(), 0o644)] {
        let permissions = std::os::unix::fs::PermissionsExt::from_mode(mode);
        std::fs::set_permissions(path, permissions).unwrap();
    }
    let ports = format!("2222,{SERVE_PORT}");
    let args = [
        "--interval",
        "1s",
        "--port",
        &ports,
        "--policy",
        policy.to_str().unwrap(),
    ];
    let mut serve = start_serve_from(&binary, &world, &args, true);
    let (_, text) = in_world(&world, || get(SERVE_PORT, "/metrics")).unwrap();
    serve.signal(nix::sys::signal::Signal::SIGTERM);
    serve.wait();
    let listed = samples_with(
        &text,
        "lsports_listening_socket",
        &[&format!("port=\"{SERVE_PORT}\"")],
    );
    assert!(
        !listed.is_empty(),
        "serve's own listener is audited: {text}"
    );
    let audit = [
        "unexpected_listeners",
        "missing_listeners",
        "not_checked",
        "incomplete",
    ]
    .map(|name| sample(&text, &format!("lsports_audit_{name}")));
    assert_eq!(audit, [0.0, 0.0, 1.0, 1.0].map(Some), "{text}");
}
