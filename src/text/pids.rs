//! Lists of process ids as every output writes them.

/// Without `-W`, a group of more PIDs than this is shortened to its first few and a count.
const PIDS_SHOWN: usize = 4;

/// PIDs joined by commas; without `wide`, a list of many shows its first few and how many
/// more (`812,813,814,+37`).
pub fn pid_list(pids: &[u32], wide: bool) -> String {
    let shown = if wide || pids.len() <= PIDS_SHOWN {
        pids.len()
    } else {
        PIDS_SHOWN - 1
    };
    let mut text: Vec<String> = pids[..shown].iter().map(u32::to_string).collect();
    if shown < pids.len() {
        text.push(format!("+{}", pids.len() - shown));
    }
    text.join(",")
}
