//! Whether the BPF programs can be loaded here (root and kernel BTF), for the tests that load
//! them; otherwise skip, failing under `CI=true` (see [`super::skip_unless_ci`]).

use std::path::Path;

use lsports::process::bpf::BTF_PATH;

use super::{need_root, skip_unless_ci};

/// Whether BPF programs can be loaded for `what` (root and a kernel with BTF); otherwise skip
/// saying what is missing (failing under CI).
pub fn can_load_bpf(what: &str) -> bool {
    if !need_root(what) {
        return false;
    }
    if !Path::new(BTF_PATH).exists() {
        skip_unless_ci(&format!("no kernel BTF at {BTF_PATH}"));
        return false;
    }
    true
}
