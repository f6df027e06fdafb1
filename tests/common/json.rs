//! Checking what lsports prints against what a test built: `--json` parsed and projected onto
//! comparable rows, sockets found by inode or port, the documented schema, and readings of
//! unpacked proc roots.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::run::{assert_success, run_host};
use super::world::Truth;

/// Parse lsports' `--json` output, which must be an array.
pub fn parse_json(stdout: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "lsports --json output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    });
    assert!(v.is_array(), "--json must print an array, got {v}");
    v
}

/// lsports on the host (outside any namespace) over an unpacked proc root: `--json` of
/// `--proc-root ROOT --source proc ARGS`, which must succeed.
pub fn json_of_root(root: &Path, args: &[&str]) -> Value {
    let root = root.to_str().expect("proc root paths are UTF-8");
    let mut a = vec!["--proc-root", root, "--source", "proc", "--json"];
    a.extend_from_slice(args);
    let out = run_host(&a);
    assert_success(&out, &a);
    parse_json(&out.stdout)
}

/// A file or directory under the repository's `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// The captured proc tree `fixtures/proc-roots/CASE`.
pub fn fixture_root(case: &str) -> PathBuf {
    fixture("proc-roots").join(case)
}

// ---------------------------------------------------------------------------
// Comparable projection: (proto, family, local addr, local port, pids)

/// One socket reduced to what a listing and the world must agree on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row {
    pub proto: String,
    pub family: String,
    pub addr: String,
    pub port: u16,
    pub pids: Vec<u32>,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = if self.family == "ipv6" {
            format!("[{}]", self.addr)
        } else {
            self.addr.clone()
        };
        write!(
            f,
            "{:<3} {} {}:{} pids={:?}",
            self.proto, self.family, addr, self.port, self.pids
        )
    }
}

/// The rows of truth entries, sorted.
pub fn rows_from_truth<'a>(it: impl IntoIterator<Item = &'a Truth>) -> Vec<Row> {
    let mut v: Vec<Row> = it
        .into_iter()
        .map(|t| Row {
            proto: t.proto.clone(),
            family: t.family.clone(),
            addr: t.addr.clone(),
            port: t.port,
            pids: t.pids.clone(),
        })
        .collect();
    v.sort();
    v
}

/// The pids of a JSON socket object, sorted.
pub fn json_pids(sock: &Value) -> Vec<u32> {
    let mut pids: Vec<u32> = sock["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("processes is not an array in {sock}"))
        .iter()
        .map(|p| p["pid"].as_u64().expect("pid is an integer") as u32)
        .collect();
    pids.sort();
    pids
}

/// The rows of a whole `--json` listing, sorted.
pub fn rows_from_json(v: &Value) -> Vec<Row> {
    let mut rows: Vec<Row> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| Row {
            proto: s["proto"].as_str().expect("proto").to_string(),
            family: s["family"].as_str().expect("family").to_string(),
            addr: s["local_addr"].as_str().expect("local_addr").to_string(),
            port: s["local_port"].as_u64().expect("local_port") as u16,
            pids: json_pids(s),
        })
        .collect();
    rows.sort();
    rows
}

/// Compare as multisets and panic with a readable diff on mismatch.
pub fn assert_same_rows(what: &str, got: &[Row], want: &[Row]) {
    let count = |rows: &[Row]| {
        let mut m: BTreeMap<Row, usize> = BTreeMap::new();
        for r in rows {
            *m.entry(r.clone()).or_default() += 1;
        }
        m
    };
    let (g, w) = (count(got), count(want));
    if g == w {
        return;
    }
    let mut msg = format!(
        "{what}: lsports listed {} sockets, the world has {}\n",
        got.len(),
        want.len()
    );
    for (r, n) in &w {
        let have = g.get(r).copied().unwrap_or(0);
        for _ in have..*n {
            msg.push_str(&format!("  missing: {r}\n"));
        }
    }
    for (r, n) in &g {
        let expect = w.get(r).copied().unwrap_or(0);
        for _ in expect..*n {
            msg.push_str(&format!("  extra:   {r}\n"));
        }
    }
    panic!("{msg}");
}

/// Find the JSON socket object with this inode.
pub fn by_inode(v: &Value, inode: u64) -> &Value {
    let found: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["inode"].as_u64() == Some(inode))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one socket with inode {inode} in:\n{}",
        serde_json::to_string_pretty(v).unwrap()
    );
    found[0]
}

/// Find the only JSON socket object with this local port.
pub fn by_port(v: &Value, port: u16) -> &Value {
    let found: Vec<&Value> = v
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter(|s| s["local_port"].as_u64() == Some(u64::from(port)))
        .collect();
    assert_eq!(found.len(), 1, "expected one socket on port {port} in {v}");
    found[0]
}

/// The local ports of a listing, sorted (repeats kept).
pub fn ports_of(v: &Value) -> Vec<u64> {
    let mut ports: Vec<u64> = v
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| s["local_port"].as_u64().expect("local_port"))
        .collect();
    ports.sort();
    ports
}

/// Check every object has the documented fields with the documented types.
pub fn assert_json_schema(v: &Value) {
    for s in v.as_array().expect("array") {
        let o = s
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {s}"));
        let ctx = || serde_json::to_string(s).unwrap();
        let is_str = |k: &str| o.get(k).is_some_and(Value::is_string);
        let is_uint = |k: &str| o.get(k).is_some_and(Value::is_u64);
        let is_uint_or_null = |k: &str| o.get(k).is_some_and(|x| x.is_u64() || x.is_null());
        assert!(
            matches!(o.get("proto").and_then(Value::as_str), Some("tcp" | "udp")),
            "proto in {}",
            ctx()
        );
        assert!(
            matches!(
                o.get("family").and_then(Value::as_str),
                Some("ipv4" | "ipv6")
            ),
            "family in {}",
            ctx()
        );
        for k in ["local_addr", "remote_addr", "state"] {
            assert!(is_str(k), "{k} must be a string in {}", ctx());
        }
        for k in ["local_port", "remote_port", "inode"] {
            assert!(is_uint(k), "{k} must be an integer in {}", ctx());
        }
        for k in ["recv_q", "send_q", "uid"] {
            assert!(is_uint_or_null(k), "{k} must be integer|null in {}", ctx());
        }
        assert!(
            o.get("user").is_some_and(|x| x.is_string() || x.is_null()),
            "user in {}",
            ctx()
        );
        assert!(
            o.get("v6only")
                .is_some_and(|x| x.is_boolean() || x.is_null()),
            "v6only in {}",
            ctx()
        );
        assert!(
            o.get("interface")
                .is_some_and(|x| x.is_string() || x.is_null()),
            "interface in {}",
            ctx()
        );
        assert!(
            matches!(
                o.get("source").and_then(Value::as_str),
                Some("netlink" | "proc" | "event" | "bpf")
            ),
            "source in {}",
            ctx()
        );
        assert!(
            o.get("unknown_fields")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "unknown_fields in {}",
            ctx()
        );
        assert!(
            matches!(o.get("owner_unknown_reason"), Some(Value::Null))
                || matches!(
                    o.get("owner_unknown_reason").and_then(Value::as_str),
                    Some(
                        "kernel"
                            | "permission"
                            | "not_found"
                            | "outside_pid_namespace"
                            | "hidden_from_proc"
                    )
                ),
            "owner_unknown_reason in {}",
            ctx()
        );
        let procs = o
            .get("processes")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("processes in {}", ctx()));
        for p in procs {
            let po = p.as_object().expect("process object");
            for k in ["pid", "uid", "fd"] {
                assert!(
                    po.get(k).is_some_and(Value::is_u64),
                    "process {k} in {}",
                    ctx()
                );
            }
            for k in ["name", "cmdline"] {
                assert!(
                    po.get(k).is_some_and(Value::is_string),
                    "process {k} in {}",
                    ctx()
                );
            }
            assert!(
                po.get("user").is_some_and(|x| x.is_string() || x.is_null()),
                "process user in {}",
                ctx()
            );
        }
    }
}
