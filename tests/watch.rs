//! `lsports watch` and `-c` in private network namespaces: listeners start and stop while
//! lsports polls, and the events must be exactly those, in order. One run is in a real
//! terminal (tmux), stopped with Ctrl-C. No timing is asserted: every wait polls for an
//! outcome, with a generous guard against a hang.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Generous bound on any single wait of a script's shell loop; a hang guard, not a performance
/// assertion (the harness guards the script as a whole).
const GUARD: Duration = Duration::from_secs(120);

/// Names itself *before* binding, so no poll can see the socket under python's name, then
/// marks readiness and sleeps until killed (or until its shell exits: PR_SET_PDEATHSIG).
const LISTEN_PY: &str = r#"
import ctypes, os, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)
name, proto, addr, port, ready = sys.argv[1:6]
libc.prctl(15, ctypes.create_string_buffer(name.encode(), 16), 0, 0, 0)
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((addr, int(port)))
if proto == "tcp":
    s.listen(8)
open(ready + ".tmp", "w").write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
time.sleep(300)
"#;

/// Shell functions every script here uses: `wait_for FILE PATTERN` (grep, with a guard),
/// `start NAME PROTO ADDR PORT` (a listener; its pid in `$NAME`), `stop NAME`.
fn prelude(world: &World) -> String {
    let py = world.dir().join("listen.py");
    std::fs::write(&py, LISTEN_PY).unwrap();
    format!(
        "wait_for() {{ for _ in $(seq {n}); do grep -q -- \"$2\" \"$1\" 2>/dev/null && return 0; sleep 0.05; done; \
           echo \"gave up waiting for $2 in $1:\" >&2; cat \"$1\" >&2; cat \"$WORLD_DIR\"/*.err >&2; exit 91; }}\n\
         start() {{ python3 {py} \"$1\" \"$2\" \"$3\" \"$4\" \"$WORLD_DIR/$1.ready\" & eval \"$1=$!\"; \
           wait_for \"$WORLD_DIR/$1.ready\" .; }}\n\
         stop() {{ eval \"kill \\${{$1}}; wait \\${{$1}}\" 2>/dev/null; true; }}\n",
        n = GUARD.as_secs() * 20,
        py = py.display(),
    )
}

/// Run `script` (after the prelude) in the world; require exit 0; its stdout's sections.
fn run_script(world: &World, script: &str) -> std::collections::BTreeMap<String, String> {
    world
        .script_sections(&format!("{}{script}", prelude(world)))
        .0
}

fn read(world: &World, name: &str) -> String {
    std::fs::read_to_string(world.dir().join(name)).unwrap()
}

/// An event projected onto what a log reader cares about.
type Seen = (String, String, String, String, u64, String, u64);

fn seen(event: &Value) -> Seen {
    let text = |k: &str| {
        event[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {event}"))
            .to_string()
    };
    (
        text("event"),
        text("proto"),
        text("family"),
        text("address"),
        event["port"].as_u64().unwrap(),
        text("program"),
        event["pid"].as_u64().unwrap(),
    )
}

fn event(
    kind: &str,
    proto: &str,
    family: &str,
    address: &str,
    port: u64,
    program: &str,
    pid: u64,
) -> Seen {
    (
        kind.into(),
        proto.into(),
        family.into(),
        address.into(),
        port,
        program.into(),
        pid,
    )
}

#[test]
fn jsonl_events_are_exactly_what_happened() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "resident",
        json!({"port": 18200})
    )]));
    let resident = world.one(0, "listen").pids[0];
    let out = "$WORLD_DIR/w.out";
    let script = format!(
        "$LSPORTS watch --format jsonl --interval 100ms >{out} 2>$WORLD_DIR/w.err & W=$!\n\
         wait_for {out} '\"event\":\"present\"'\n\
         start alpha tcp 0.0.0.0 18201; echo '=== alpha'; echo $alpha\n\
         wait_for {out} '\"event\":\"opened\".*\"port\":18201'\n\
         start beta udp :: 18202; echo '=== beta'; echo $beta\n\
         wait_for {out} '\"event\":\"opened\".*\"port\":18202'\n\
         stop alpha\n\
         wait_for {out} '\"event\":\"closed\".*\"port\":18201'\n\
         stop beta\n\
         wait_for {out} '\"event\":\"closed\".*\"port\":18202'\n\
         kill -TERM $W; wait $W; rc=$?; echo '=== rc'; echo $rc\n"
    );
    let s = run_script(&world, &script);
    assert_eq!(
        s["rc"].trim(),
        "0",
        "SIGTERM is a clean stop: {s:?}\n{}",
        read(&world, "w.err")
    );
    let alpha: u64 = s["alpha"].trim().parse().unwrap();
    let beta: u64 = s["beta"].trim().parse().unwrap();
    let text = read(&world, "w.out");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let got: Vec<Seen> = events.iter().map(seen).collect();
    assert_eq!(
        got,
        [
            event(
                "present",
                "tcp",
                "ipv4",
                "127.0.0.1",
                18200,
                "resident",
                u64::from(resident)
            ),
            event("opened", "tcp", "ipv4", "0.0.0.0", 18201, "alpha", alpha),
            event("opened", "udp", "ipv6", "::", 18202, "beta", beta),
            event("closed", "tcp", "ipv4", "0.0.0.0", 18201, "alpha", alpha),
            event("closed", "udp", "ipv6", "::", 18202, "beta", beta),
        ],
        "{text}"
    );
    // Times are RFC 3339 and never go backwards; every event says who held the socket.
    let times: Vec<std::time::SystemTime> = events
        .iter()
        .map(|e| humantime::parse_rfc3339(e["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
    assert_eq!(events[1]["exposure"], "all");
    assert_eq!(events[1]["processes"][0]["pid"], alpha);
    assert!(
        events[1]["processes"][0]["exe"]
            .as_str()
            .is_some_and(|e| e.contains("python")),
        "{text}"
    );
    // The one line allowed: some processes could not be inspected (on a host with a guarded
    // init, a sandbox's, even root is told), which is no error.
    let err = read(&world, "w.err");
    let errors = err
        .lines()
        .filter(|l| !l.contains("could not be inspected"));
    assert_eq!(errors.count(), 0, "{err}");
}

/// The `lsports:` lines of a screen other than the hint that some processes could not be
/// inspected (see above).
fn errors_on_screen(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| l.starts_with("lsports:") && !l.contains("could not be inspected"))
        .collect()
}

#[test]
fn text_lines_with_changes_only_print_no_initial_set() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "resident",
        json!({"port": 18300})
    )]));
    let out = "$WORLD_DIR/w.out";
    let script = format!(
        "$LSPORTS watch --changes-only -v --interval 100ms >{out} 2>$WORLD_DIR/w.err & W=$!\n\
         wait_for $WORLD_DIR/w.err 'watching 1 listener,'\n\
         start gamma tcp 127.0.0.1 18301; echo '=== gamma'; echo $gamma\n\
         wait_for {out} ' opened '\n\
         stop gamma\n\
         wait_for {out} ' closed '\n\
         kill -TERM $W; wait $W; rc=$?; echo '=== rc'; echo $rc\n"
    );
    let s = run_script(&world, &script);
    assert_eq!(s["rc"].trim(), "0");
    let gamma = s["gamma"].trim();
    let text = read(&world, "w.out");
    let lines: Vec<(&str, &str)> = text.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(
        lines.iter().map(|(_, rest)| *rest).collect::<Vec<_>>(),
        [
            format!("opened  tcp   127.0.0.1:18301        {gamma}/gamma"),
            format!("closed  tcp   127.0.0.1:18301        {gamma}/gamma"),
        ],
        "{text}"
    );
    for (time, _) in lines {
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
    }
}

#[test]
fn continuous_reprints_the_table_until_sigterm() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "steady",
        json!({"port": 18400})
    )]));
    let pid = world.one(0, "listen").pids[0];
    let script = "$LSPORTS -tln -c --interval 100ms >$WORLD_DIR/c.out 2>$WORLD_DIR/c.err & W=$!\n\
         for _ in $(seq 2400); do [ \"$(grep -c '^Proto' $WORLD_DIR/c.out)\" -ge 3 ] && break; sleep 0.05; done\n\
         kill -TERM $W; wait $W; rc=$?; echo '=== rc'; echo $rc\n";
    let s = run_script(&world, script);
    assert_eq!(s["rc"].trim(), "0");
    let text = read(&world, "c.out");
    let tables: Vec<&str> = text.split("Proto").skip(1).collect();
    assert!(tables.len() >= 3, "{text}");
    // Every table is whole (the stop waits for the poll to be printed) and the same.
    for table in &tables {
        assert_eq!(*table, tables[0], "{text}");
    }
    let row = tables[0]
        .lines()
        .find(|l| l.contains("127.0.0.1:18400"))
        .expect("the row");
    assert!(
        row.contains(" LISTEN ") && row.ends_with(&format!("  {pid}/steady")),
        "{text}"
    );
}

/// A private tmux server, killed when dropped.
struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    fn start(session: &str, command: &[String]) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let tmux = Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        };
        let mut args: Vec<String> = ["new-session", "-d", "-s", session, "-x", "160", "-y", "40"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend_from_slice(command);
        let out = tmux.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "tmux new-session: {}", stderr(&out));
        tmux
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = scrubbed("tmux");
        cmd.arg("-S").arg(&self.socket).args(args);
        output_guarded(cmd, &format!("tmux {args:?}"))
    }

    fn screen(&self, session: &str) -> String {
        stdout(&self.run(&["capture-pane", "-p", "-t", session]))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn watch_in_a_terminal_stops_on_ctrl_c() {
    // lsports runs in a real terminal.
    if !have("tmux") {
        return;
    }
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "terminal",
        json!({"port": 18500})
    )]));
    let pid = world.one(0, "listen").pids[0];
    let rc = world.dir().join("rc");
    let mut inner: Vec<String> = vec!["nsenter".into()];
    inner.extend(world.nsenter_args());
    inner.push("--".into());
    inner.push(lsports_bin().display().to_string());
    inner.extend(["watch", "--interval", "100ms"].map(String::from));
    let quoted: Vec<String> = inner.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "{}; echo \"exit=$?\" > '{}'; sleep 600",
        quoted.join(" "),
        rc.display()
    );
    let tmux = Tmux::start("lsports", &["bash".into(), "-c".into(), script]);
    let present = format!("present tcp   127.0.0.1:18500        {pid}/terminal");
    eventually("the initial set on the screen", || {
        tmux.screen("lsports").contains(&present)
    });
    let out = tmux.run(&["send-keys", "-t", "lsports", "C-c"]);
    assert!(out.status.success(), "send-keys: {}", stderr(&out));
    // The shell creates the file before it writes the status: wait for the whole line.
    let status = || std::fs::read_to_string(&rc).unwrap_or_default();
    eventually("lsports to exit after Ctrl-C", || status().ends_with('\n'));
    assert_eq!(status().trim(), "exit=130");
    let screen = tmux.screen("lsports");
    assert!(screen.contains(&present), "{screen}");
    assert!(!screen.contains("closed"), "{screen}");
    assert!(
        errors_on_screen(&screen).is_empty(),
        "no error on the way out:\n{screen}"
    );
}

#[test]
fn watch_and_continuous_refuse_what_cannot_apply() {
    for args in [
        &["watch", "--json"][..],
        &["watch", "-a"],
        &["watch", "--interval", "0"],
        &["--snapshot", "x.tar", "watch"],
        &["--interval", "1s"],
    ] {
        usage_error(args);
    }
    let out = run_host(&["watch", "--json"]);
    assert!(
        stderr(&out).contains("use --format jsonl"),
        "{}",
        stderr(&out)
    );
}

/// The holders of a watch text line's program cell, `(pids, name)`, read as a parser would:
/// `PIDS/NAME` groups split by `;`, a name in double quotes (with `\"` and `\\` inside) when it
/// holds a space, a quote or a `;`; and what follows the cell.
fn parse_program_cell(cell: &str) -> (Vec<(String, String)>, String) {
    let mut holders = Vec::new();
    let mut rest = cell;
    loop {
        let (pids, after) = rest.split_once('/').unwrap_or_else(|| panic!("{cell}"));
        let mut name = String::new();
        let mut chars = after.char_indices();
        let end = if after.starts_with('"') {
            chars.next();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => name.extend(
                        chars
                            .next()
                            .map(|(_, c)| c)
                            .filter(|c| *c == '"' || *c == '\\'),
                    ),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => name.push(c),
                }
            }
            end.unwrap_or_else(|| panic!("unterminated name: {cell}"))
        } else {
            let end = after.find([' ', ';']).unwrap_or(after.len());
            name.push_str(&after[..end]);
            end
        };
        holders.push((pids.to_string(), name));
        match after[end..].strip_prefix(';') {
            Some(next) => rest = next,
            None => return (holders, after[end..].to_string()),
        }
    }
}

#[test]
fn a_name_with_spaces_quotes_or_separators_cannot_forge_a_watch_line() {
    let world = World::start(&json!([]));
    let py = world.dir().join("listen.py");
    let out = "$WORLD_DIR/w.out";
    // prctl(PR_SET_NAME) names: 15 bytes each, as the kernel keeps them.
    let names = ["evil open tcp 0", "a\"b;9/c", "x\\\"y z"];
    let mut script = format!(
        "$LSPORTS watch --changes-only -v --interval 100ms >{out} 2>$WORLD_DIR/w.err & W=$!\n\
         wait_for $WORLD_DIR/w.err 'watching 0 listeners,'\n"
    );
    for (i, name) in names.iter().enumerate() {
        script.push_str(&format!(
            "python3 {py} {name} tcp 127.0.0.1 {port} $WORLD_DIR/{i}.ready & P{i}=$!\n\
             wait_for $WORLD_DIR/{i}.ready .\necho '=== pid{i}'; echo $P{i}\n\
             wait_for {out} ':{port} '\n",
            py = py.display(),
            name = sh_quote(name),
            port = 18310 + i,
        ));
    }
    script.push_str("kill -TERM $W; wait $W\n");
    let s = run_script(&world, &script);
    let text = read(&world, "w.out");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), names.len(), "{text}");
    for (i, name) in names.iter().enumerate() {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!(":{} ", 18310 + i)))
            .unwrap_or_else(|| panic!("{name}: {text}"));
        // time, event, proto, local address, then the program cell, and nothing after it.
        let mut words = line.split_whitespace();
        let head: Vec<&str> = words.by_ref().take(4).collect();
        assert_eq!(
            head[1..],
            ["opened", "tcp", &format!("127.0.0.1:{}", 18310 + i)],
            "{line}"
        );
        let cell = line[line.find(head[3]).unwrap() + head[3].len()..].trim_start();
        let (holders, after) = parse_program_cell(cell);
        assert_eq!(
            holders,
            [(s[&format!("pid{i}")].trim().to_string(), name.to_string())],
            "{line}"
        );
        assert!(after.is_empty(), "{line}: {after:?} after the program");
    }
}
