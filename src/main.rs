//! The `lsports` binary: parse arguments, run, map the outcome to an exit status in one place.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use lsports::cli::Cli;

fn main() -> ExitCode {
    let stdout_closed = stdout_was_closed();
    lsports::sys::memory::tune_allocator();
    lsports::sys::timing::enable_from_env();
    let config = match Cli::config_from(std::env::args_os()) {
        Ok(config) => config,
        Err(error) => return parse_failed(&error, stdout_closed),
    };
    // A watch writes only when a listener opens or closes, which may be never: with nowhere
    // to write it would run unheard forever, so it fails now, as a listing does at once.
    if stdout_closed && matches!(config.action, lsports::config::Action::Watch(_)) {
        let error = ClosedOutput.write(b"").unwrap_err();
        eprintln!("lsports: {error}");
        return ExitCode::from(lsports::ExitCode::Failed.code());
    }
    // An audit or a wait answers with its exit status: a reader closing the pipe early
    // (`| head -1`) drops the rest of the text, not the verdict.
    let verdict = config.action.answers_by_exit_status();
    let mut stdout = io::BufWriter::with_capacity(
        64 * 1024,
        reader_may_leave(standard_output(stdout_closed), verdict),
    );
    // Every message is escaped where it quotes a name, but one that forgets must still not
    // reach the terminal raw: the last line of defence.
    let mut stderr = lsports::text::sanitize::SafeLines(reader_may_leave(
        Box::new(io::stderr().lock()),
        verdict,
    ));
    for note in &config.notes {
        let _ = writeln!(stderr, "lsports: {note}");
    }
    // A reader gone at the last flush leaves the exit status the action chose: 0 for a listing,
    // 1 for a capture it cut short.
    let outcome =
        lsports::run(&config, &mut stdout, &mut stderr).and_then(|code| match stdout.flush() {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(code),
            flushed => flushed.map(|()| code),
        });
    let _ = lsports::sys::timing::report(&mut stderr);
    match outcome {
        Ok(code) => ExitCode::from(code.code()),
        // `lsports | head` closes the pipe early: that is the reader's choice, not a failure.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(stderr, "lsports: {error}");
            ExitCode::from(lsports::ExitCode::NoSource.code())
        }
    }
}

/// Help and version go to stdout with 0, or 1 with a message when they cannot be written (a
/// full disk, a closed stdout; a reader closing the pipe early is its choice). Usage errors
/// go to stderr with 2, escaped as every message is: clap quotes the rejected value as typed
/// (`-o`, `--format`, an unknown subcommand), and it must not reach the terminal raw. Both are
/// plain text on stderr: clap's colours could not be told from a value's own escape codes.
fn parse_failed(error: &clap::Error, stdout_closed: bool) -> ExitCode {
    use std::io::IsTerminal;
    let code = ExitCode::from(error.exit_code().clamp(0, 255) as u8);
    if error.use_stderr() {
        let mut stderr = lsports::text::sanitize::SafeLines(io::stderr().lock());
        let _ = write!(stderr, "{}", error.render());
        return code;
    }
    // Help and version quote nothing the user typed: styled on a terminal, as clap prints them.
    let text = match !stdout_closed && io::stdout().is_terminal() {
        true => error.render().ansi().to_string(),
        false => error.render().to_string(),
    };
    let mut stdout = standard_output(stdout_closed);
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => code,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => code,
        Err(error) => {
            let _ = writeln!(io::stderr(), "lsports: {error}");
            ExitCode::from(lsports::ExitCode::Failed.code())
        }
    }
}

/// Whether standard output was closed when lsports was started (`lsports >&-`), as
/// [`note_closed_stdout`] saw it before Rust's runtime started.
fn stdout_was_closed() -> bool {
    STDOUT_CLOSED_AT_START.load(Ordering::Relaxed)
}

/// Set when fd 1 was closed at exec.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

/// Looks at fd 1 before `main`: Rust's runtime opens /dev/null on a standard stream that is
/// closed at start (so that no file opened later takes its number), after which a closed
/// stdout cannot be told from `>/dev/null` or Python's `subprocess.DEVNULL` (which opens it
/// read-write too). Functions in the ELF `.init_array` run before the runtime's set-up.
extern "C" fn note_closed_stdout() {
    use nix::errno::Errno;
    use nix::fcntl::{FcntlArg, fcntl};
    let closed = fcntl(1, FcntlArg::F_GETFD) == Err(Errno::EBADF);
    STDOUT_CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

// SAFETY: `.init_array` holds `extern "C" fn()` pointers the loader calls once, before `main`
// and before Rust's runtime set-up; `note_closed_stdout` only makes one fcntl call and stores a
// flag, needing nothing from the runtime.
#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_CLOSED_STDOUT: extern "C" fn() = note_closed_stdout;

/// Standard output, or, when it was closed, a writer that refuses every write: the output
/// would be lost, and a script must hear of it as it does of `>/dev/full`.
fn standard_output(closed: bool) -> Box<dyn Write> {
    match closed {
        true => Box::new(ClosedOutput),
        false => Box::new(io::stdout().lock()),
    }
}

/// `output`, going on past a reader that closed the pipe when `verdict` (the exit status is the
/// answer).
fn reader_may_leave<'a>(output: Box<dyn Write + 'a>, verdict: bool) -> Box<dyn Write + 'a> {
    match verdict {
        true => Box::new(lsports::sys::pipe::ReaderMayLeave::new(output)),
        false => output,
    }
}

/// Standard output closed by the caller.
struct ClosedOutput;

impl Write for ClosedOutput {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other(
            "standard output is closed, so the output would be lost (to discard it, redirect \
             it to /dev/null)",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
