//! `--generate man|bash|zsh|fish|elvish|powershell`: the man page and shell completions, made
//! from the clap definition itself so they can never drift from the real flags. The man page is
//! one complete `lsports(1)` with a section per command ([`man`]); the completions are
//! clap_complete's.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::config::Generated;

mod man;
mod man_extra;
mod man_text;

/// Write the man page or completion script to `out`.
pub fn write(what: Generated, out: &mut dyn Write) -> io::Result<()> {
    // Generate into memory first: clap_complete panics on a write error, and a closed pipe
    // (`lsports --generate bash | head`) must end quietly like every other output.
    let mut command = Cli::command();
    let buffer = match shell(what) {
        Some(shell) => {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut command, "lsports", &mut buffer);
            buffer
        }
        None => man::render(command).into_bytes(),
    };
    out.write_all(&buffer)
}

fn shell(what: Generated) -> Option<Shell> {
    match what {
        Generated::Man => None,
        Generated::Bash => Some(Shell::Bash),
        Generated::Zsh => Some(Shell::Zsh),
        Generated::Fish => Some(Shell::Fish),
        Generated::Elvish => Some(Shell::Elvish),
        Generated::Powershell => Some(Shell::PowerShell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    fn generated(what: Generated) -> String {
        let mut out = Vec::new();
        write(what, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_target_generates_and_knows_the_new_flags() {
        for &what in Generated::value_variants() {
            // roff writes hyphens as `\-`.
            let text = generated(what).replace("\\-", "-");
            for flag in ["wait-free", "columns", "exposed"] {
                assert!(text.contains(flag), "{what:?} lacks --{flag}");
            }
        }
    }

    #[test]
    fn man_page_is_roff_for_lsports() {
        let man = generated(Generated::Man);
        assert!(
            man.contains(".TH LSPORTS 1"),
            "{}",
            &man[..200.min(man.len())]
        );
    }
}
