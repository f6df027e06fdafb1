//! Running programs from a test: a scrubbed environment, a hang guard on every wait, and a
//! process group per child that is killed whole when the test lets go of it, so that neither
//! a hang nor a failed assertion leaves a process behind.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

/// Generous guard against a hung world, lsports or helper; not a performance assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// The lsports binary under test.
pub fn lsports_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lsports"))
}

/// The environment every program a test starts runs with: nothing inherited from the runner.
pub fn scrubbed_env() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("LANG", "C"),
        ("LC_ALL", "C"),
        ("HOME", "/"),
        ("TERM", "dumb"),
    ]
}

/// A command with a scrubbed environment, `/` as working directory, and SIGPIPE back to its
/// default disposition (the test runner ignores it, a user's shell does not).
pub fn scrubbed(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(scrubbed_env()).current_dir("/");
    // SAFETY: signal() is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd
}

/// `cmd` extended to re-run this test binary for its single test `helper`: a "not a test of
/// its own" function that acts only when the environment the caller sets asks it to.
pub fn this_test_binary(mut cmd: Command, helper: &str) -> Command {
    cmd.arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", helper, "--test-threads=1", "--nocapture"]);
    cmd
}

/// lsports outside any test namespace (flag parsing, proc roots, snapshots).
pub fn run_host(args: &[&str]) -> Output {
    let mut cmd = scrubbed(lsports_bin());
    cmd.args(args);
    output_guarded(cmd, &format!("lsports {}", args.join(" ")))
}

/// Run `cmd` to completion with stdin closed, collecting stdout and stderr, under the hang
/// guard. Whatever it left running in its process group is killed once it exits.
pub fn output_guarded(cmd: Command, what: &str) -> Output {
    output_with_input(cmd, None, what)
}

/// [`output_guarded`], with `input` (when given) written to the program's stdin.
pub fn output_with_input(cmd: Command, input: Option<&[u8]>, what: &str) -> Output {
    run_to_end(cmd, input, HANG_GUARD, what)
}

/// [`output_guarded`] with a shorter `limit`, for a test whose failure is a hang.
pub fn output_within(cmd: Command, limit: Duration, what: &str) -> Output {
    run_to_end(cmd, None, limit, what)
}

fn run_to_end(mut cmd: Command, input: Option<&[u8]>, limit: Duration, what: &str) -> Output {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Spawned::start(cmd, what);
    if let (Some(input), Some(mut pipe)) = (input, child.child_mut().stdin.take()) {
        let input = input.to_vec();
        // On a thread: a program may fill its output pipes before it reads all of its input.
        thread::spawn(move || std::io::Write::write_all(&mut pipe, &input));
    }
    let stdout = drain(child.child_mut().stdout.take().expect("piped stdout"));
    let stderr = drain(child.child_mut().stderr.take().expect("piped stderr"));
    let status = child.wait_within(limit);
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Read `pipe` to its end on a thread of its own (two pipes read in turn can deadlock).
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// A child in a process group of its own. Dropping it kills the whole group (the child and
/// everything it started that did not leave the group), so a panicking test leaks nothing.
pub struct Spawned {
    child: Child,
    what: String,
    status: Option<ExitStatus>,
}

impl Spawned {
    /// Start `cmd` as the leader of a new process group; `what` names it in messages.
    pub fn start(mut cmd: Command, what: &str) -> Spawned {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Spawned {
            child,
            what: what.to_string(),
            status: None,
        }
    }

    /// The child's pid (also its process group's id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Send `signal` to the child alone (not its group).
    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(self.pid(), signal)
            .unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.what));
    }

    /// The exit status once the child has exited; then also kills what it left in its group.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() && self.has_exited() {
            // The leader is a zombie until reaped, so the group id cannot be reused yet.
            self.kill_group();
            self.status = Some(self.child.wait().expect("reap an exited child"));
        }
        self.status
    }

    /// Wait for the child to exit (bounded by the hang guard).
    pub fn wait(&mut self) -> ExitStatus {
        self.wait_within(HANG_GUARD)
    }

    /// Wait for the child to exit; after `limit`, kill its group and fail (a hang).
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let what = format!("{} to exit", self.what);
        wait_until_within(&what, limit, || self.try_status())
    }

    /// Wait until `found` finds something, failing early if the child exits first.
    pub fn wait_for<T>(&mut self, what: &str, mut found: impl FnMut() -> Option<T>) -> T {
        wait_until(what, || {
            if let Some(t) = found() {
                return Some(t);
            }
            if let Some(status) = self.try_status() {
                panic!("{}: exited ({status}) before {what}", self.what);
            }
            None
        })
    }

    /// Wait until the file at `path` exists, failing early if the child exits first.
    pub fn wait_for_file(&mut self, path: &Path) {
        let what = format!("{} to appear", path.display());
        self.wait_for(&what, || path.exists().then_some(()));
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Whether the child has exited, without reaping it.
    fn has_exited(&self) -> bool {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        !matches!(
            waitid(Id::Pid(self.pid()), flags),
            Ok(WaitStatus::StillAlive)
        )
    }

    fn kill_group(&self) {
        let _ = killpg(self.pid(), Signal::SIGKILL);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill_group();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `found` until it returns something; panic naming `what` after the hang guard. Polls
/// fast at first (a state may last only moments) and backs off to a few times a second.
pub fn wait_until<T>(what: &str, found: impl FnMut() -> Option<T>) -> T {
    wait_until_within(what, HANG_GUARD, found)
}

/// [`wait_until`] with a `limit` of its own.
pub fn wait_until_within<T>(
    what: &str,
    limit: Duration,
    mut found: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(t) = found() {
            return t;
        }
        assert!(
            start.elapsed() < limit,
            "gave up waiting for {what} after {limit:?} (hang)"
        );
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Poll `check` until it holds; panic naming `what` after the hang guard.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    wait_until(what, || check().then_some(()));
}

/// Run lsports `args` on the host and require a usage error: exit 2, nothing on stdout, a
/// message (no panic) on stderr, which is returned.
pub fn usage_error(args: &[&str]) -> String {
    let out = run_host(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "lsports {args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "lsports {args:?}: stdout {out:?}");
    assert!(
        !err.trim().is_empty() && !err.contains("panicked"),
        "lsports {args:?}: {err}"
    );
    err
}

/// Require exit 0 of lsports `args`, showing both streams otherwise.
pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "lsports {} failed: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// stdout as UTF-8 text (lsports writes nothing else).
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// stderr as text, invalid UTF-8 replaced (to show it in a message).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stderr as UTF-8 text, which it must be (for checks that invalid bytes would slip past).
pub fn stderr_utf8(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// The non-blank lines of stderr.
pub fn stderr_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}
