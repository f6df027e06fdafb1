//! The `lsports` binary: parse arguments, run, map the outcome to an exit status in one place.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use lsports::cli::Cli;

fn main() -> ExitCode {
    lsports::timing::enable_from_env();
    let config = match Cli::try_parse().and_then(Cli::resolve) {
        Ok(config) => config,
        Err(error) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = error.print();
            return ExitCode::from(error.exit_code().clamp(0, 255) as u8);
        }
    };
    let mut stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut stderr = io::stderr().lock();
    let outcome = lsports::run(&config, &mut stdout, &mut stderr);
    let _ = stdout.flush();
    let _ = lsports::timing::report(&mut stderr);
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
