//! The `lsports` binary: parse arguments, run, map the outcome to an exit status in one place.

use std::io::{self, Write};
use std::process::ExitCode;

use lsports::cli::Cli;

fn main() -> ExitCode {
    let stdout_closed = stdout_was_closed();
    lsports::sys::timing::enable_from_env();
    let config = match Cli::config_from(std::env::args_os()) {
        Ok(config) => config,
        Err(error) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = error.print();
            return ExitCode::from(error.exit_code().clamp(0, 255) as u8);
        }
    };
    let mut stdout = io::BufWriter::with_capacity(64 * 1024, standard_output(stdout_closed));
    let mut stderr = io::stderr().lock();
    for note in &config.notes {
        let _ = writeln!(stderr, "lsports: {note}");
    }
    let outcome = lsports::run(&config, &mut stdout, &mut stderr)
        .and_then(|code| stdout.flush().map(|()| code));
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

/// Whether standard output was closed when lsports was started (`lsports >&-`). Rust's
/// runtime opens /dev/null on a standard stream that is closed at start, so that no file
/// opened later takes its number; it opens it read-write, while a shell's `>/dev/null` opens
/// it write-only. Standard output read-write on /dev/null is therefore a closed one.
fn stdout_was_closed() -> bool {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::stat::{SFlag, fstat, major, minor};
    let read_write = fcntl(1, FcntlArg::F_GETFL)
        .is_ok_and(|flags| OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE == OFlag::O_RDWR);
    // /dev/null is character device 1:3 on every Linux.
    let dev_null = fstat(1).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && (major(st.st_rdev), minor(st.st_rdev)) == (1, 3)
    });
    read_write && dev_null
}

/// Standard output, or, when it was closed, a writer that refuses every write: the output
/// would be lost, and a script must hear of it as it does of `>/dev/full`.
fn standard_output(closed: bool) -> Box<dyn Write> {
    match closed {
        true => Box::new(ClosedOutput),
        false => Box::new(io::stdout().lock()),
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
