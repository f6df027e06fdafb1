//! The integration-test harness every `tests/*.rs` file shares (`mod common;`).
//!
//! - [`run`]: running programs with a scrubbed environment and a hang guard; every child in
//!   a process group killed on drop ([`Spawned`]); `eventually` with a deadline.
//! - [`tools`]: root and tools a test needs; skip on a laptop, fail under `CI=true`.
//! - [`world`]: private network namespaces with the sockets and processes of a spec, built by
//!   `tests/support/world.py`, and the truth to compare lsports with; worlds in private pid
//!   and mount namespaces too ([`Isolated`]).
//! - [`json`], [`table`]: reading lsports' output and comparing it with the truth.
//! - [`archive`]: snapshot archives built by hand.
//! - [`bpf_load`]: whether BPF programs can be loaded here.
//! - [`scripting`]: listeners that come and go inside a world's shell scripts, the JSON
//!   Schema, CSV, terminal safety and `=== NAME` sections.

#![allow(dead_code, unused_imports)]

pub mod archive;
pub mod bpf_load;
pub mod cgroups;
pub mod json;
pub mod reach_lab;
pub mod run;
pub mod scripting;
pub mod table;
pub mod tools;
pub mod world;

pub use archive::*;
pub use bpf_load::*;
pub use cgroups::*;
pub use json::*;
pub use reach_lab::*;
pub use run::*;
pub use scripting::*;
pub use table::*;
pub use tools::*;
pub use world::*;

/// [`sockdiag`]: what the kernel says about a socket a test made (its cgroup id).
pub mod sockdiag;
pub use sockdiag::*;

/// [`private_host`]: a test re-run as pid 1 of private namespaces, to see "every" namespace.
pub mod private_host;
pub use private_host::*;
