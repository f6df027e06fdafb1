//! The environment switches for tests and measurements (`LSPORTS_SOCKETS`,
//! `LSPORTS_BPF_ITERATOR`, …; the man page's ENVIRONMENT lists them). Each is read where it
//! acts; a value none of them knows would be ignored there in silence, and someone measuring
//! one path would time another. So the command line checks them all once, and a value that
//! is not understood becomes a note on stderr that says which values are.

use std::ffi::OsString;

use crate::pipeline::DUMP_VARIABLE;
use crate::process::bpf::{iterator, loader};
use crate::source::bpf::iter;

/// One switch: its variable, whether a value is understood, and what is, for the note.
struct Switch {
    variable: &'static str,
    accepts: fn(&str) -> bool,
    expected: &'static str,
}

/// Every switch whose values are checked. `LSPORTS_TIMING` takes anything (empty or `0`:
/// off), so it is not here.
const SWITCHES: [Switch; 5] = [
    Switch {
        variable: iter::FORCE_VARIABLE,
        accepts: |v| matches!(v, "iter" | "diag"),
        expected: "`iter` or `diag`",
    },
    Switch {
        variable: iterator::FORCE_VARIABLE,
        accepts: |v| matches!(v, "task" | "task_file"),
        expected: "`task` or `task_file`",
    },
    Switch {
        variable: iterator::READERS_VARIABLE,
        accepts: |v| v.parse::<usize>().is_ok_and(|n| n > 0),
        expected: "a positive number",
    },
    Switch {
        variable: loader::FORCE_VARIABLE,
        accepts: |v| v == "aya",
        expected: "`aya`",
    },
    Switch {
        variable: DUMP_VARIABLE,
        accepts: |v| v == "all",
        expected: "`all`",
    },
];

/// A note for each switch set (by `env`) to a value it does not understand.
pub(super) fn notes(env: impl Fn(&str) -> Option<OsString>) -> Vec<String> {
    SWITCHES
        .iter()
        .filter_map(|switch| {
            let value = env(switch.variable)?;
            let understood = value.to_str().is_some_and(switch.accepts);
            (!understood).then(|| {
                format!(
                    "{}={:?} is not understood, and is ignored: it takes {}",
                    switch.variable,
                    value.to_string_lossy(),
                    switch.expected
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, OsString)> = (pairs.iter())
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| {
            (pairs.iter())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn known_values_and_unset_switches_say_nothing() {
        let env = with(&[
            ("LSPORTS_SOCKETS", "iter"),
            ("LSPORTS_BPF_ITERATOR", "task_file"),
            ("LSPORTS_BPF_READERS", "2"),
            ("LSPORTS_BPF_LOADER", "aya"),
            ("LSPORTS_NETNS_DUMP", "all"),
        ]);
        assert_eq!(notes(env), Vec::<String>::new());
        assert_eq!(notes(with(&[])), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_value_is_named_with_what_the_switch_takes() {
        let env = with(&[
            ("LSPORTS_SOCKETS", "iterators"),
            ("LSPORTS_BPF_READERS", "0"),
            ("LSPORTS_NETNS_DUMP", "\u{1b}[2J"),
        ]);
        assert_eq!(
            notes(env),
            [
                "LSPORTS_SOCKETS=\"iterators\" is not understood, and is ignored: it takes \
                 `iter` or `diag`",
                "LSPORTS_BPF_READERS=\"0\" is not understood, and is ignored: it takes a \
                 positive number",
                "LSPORTS_NETNS_DUMP=\"\\u{1b}[2J\" is not understood, and is ignored: it takes \
                 `all`",
            ]
        );
    }
}
